"""Report sections of the grid-search and memory jobs (issue 3, items 4 and 5)."""

from __future__ import annotations

from typing import Any


def search_section(results: list[dict[str, Any]]) -> list[str]:
    runs = {r["spec"]["variant"]: r for r in results if r["spec"]["kind"] == "search"}
    if not runs:
        return []
    spec = next(iter(runs.values()))["spec"]
    lines = [
        "## Grid search: what the per-process caches save (issue 3, item 4)",
        "",
        f"`GridSearchCV` over lr {spec['lrs']} x max_length {spec['max_lengths']} x "
        f"{spec['folds']} folds (+ refit), n_jobs=1, on {spec['n_texts']} SST-2 sentences, "
        f"GPT-2 shape `{spec['shape']}`, 1 epoch, batch {spec['batch_size']}. *naive* is our "
        "estimator with `clear_checkpoint_cache()` called before every fit: it reads the "
        "checkpoint from disk and tokenizes its texts in every fit, as a tool without those "
        "caches does.",
        "",
        "| variant | fits | wall seconds | checkpoint reads | texts tokenized (per max_length) |",
        "|---|---:|---:|---:|---|",
    ]
    for variant in ("cached", "naive"):
        if variant in runs:
            r = runs[variant]
            counts = ", ".join(f"{k}: {v:,}" for k, v in sorted(r["texts_tokenized"].items()))
            lines.append(
                f"| {variant} | {r['n_fits']} | {r['search_s']:.1f} "
                f"| {r['checkpoint_loads']} | {counts} |"
            )
    if len(runs) == 2:
        saved = runs["naive"]["search_s"] - runs["cached"]["search_s"]
        lines += [
            "",
            f"Saving: {saved:.1f} s of {runs['naive']['search_s']:.1f} s "
            f"({100 * saved / runs['naive']['search_s']:.0f}%).",
        ]
    return [*lines, ""]


def memory_section(results: list[dict[str, Any]]) -> list[str]:
    runs = {r["spec"]["variant"]: r for r in results if r["spec"]["kind"] == "memory"}
    if not runs:
        return []
    spec = next(iter(runs.values()))["spec"]
    lines = [
        "## Memory: predicting many long texts (issue 3, item 5)",
        "",
        f"{spec['n_texts']:,} texts drawn with replacement from the IMDB sample, max_length "
        f"{spec['max_length']}, batch {spec['batch_size']}, GPT-2 shape `{spec['shape']}` "
        "(memory shape, not speed, is the point here). *naive* tokenizes everything, padded to "
        "max_length, into one tensor and then predicts batch by batch under `no_grad`. Each "
        "runs in its own process; RSS is the resident set (VmHWM for peaks, reset per phase).",
        "",
        "| approach | model MiB | RSS before predict | predict peak RSS | predict working set "
        "| padded input of all texts | one padded batch | predict s | fit peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in ("ours", "naive"):
        if variant not in runs:
            continue
        r = runs[variant]
        working = r["predict_peak_rss_mb"] - r["predict_rss_before_mb"]
        fit = (
            f"{r['fit_peak_rss_mb']:,.0f} MiB ({r['fit_texts']:,} texts; "
            f"{r['fit_rss_before_mb']:,.0f} before)"
            if "fit_peak_rss_mb" in r
            else "-"
        )
        lines.append(
            f"| {variant} | {r['model_mb']:,.0f} | {r['predict_rss_before_mb']:,.0f} "
            f"| {r['predict_peak_rss_mb']:,.0f} | {working:,.0f} | {r['padded_input_mb']:,.0f} "
            f"| {r['batch_input_mb']:.2f} | {r['predict_s']:.1f} | {fit} |"
        )
    return [*lines, ""]
