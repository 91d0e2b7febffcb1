"""Report sections of the grid-search, memory, training-mode and zero-shot jobs."""

from __future__ import annotations

from typing import Any


def search_section(results: list[dict[str, Any]]) -> list[str]:
    runs = {r["spec"]["variant"]: r for r in results if r["spec"]["kind"] == "search"}
    if not runs:
        return []
    spec = next(iter(runs.values()))["spec"]
    lines = [
        "## Grid search: what the per-process caches save",
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
        "## Memory: predicting many long texts",
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


def modes_section(results: list[dict[str, Any]]) -> list[str]:
    """The training modes side by side, with their ratios to ``tuning="full"``."""
    runs = [r for r in results if r["spec"]["kind"] == "modes"]
    if not runs:
        return []
    spec = runs[0]["spec"]
    lines = [
        "## Training modes",
        "",
        f"GPT-2 shape `{spec['shape']}` (random weights), {spec['epochs']} epochs, "
        f"precision {runs[0]['precision']}; each fit in its own process. Speed-up is "
        "`full`'s time over the mode's (fit: the whole `fit`; epoch: the median epoch); "
        "head mode computes its features once, before its first epoch: that pass is in "
        "its fit time, not in its epochs. Memory is the fit's peak resident set.",
        "",
        "| workload | tuning | lr | trainable params | fit s | epochs s | fit speed-up "
        "| epoch speed-up | fit peak RSS MiB | predict s |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    by_workload: dict[str, dict[str, Any]] = {}
    for run in runs:
        by_workload.setdefault(run["spec"]["workload"]["name"], {})[run["spec"]["tuning"]] = run
    for name, modes in sorted(by_workload.items(), key=lambda item: item[0] != "sst2"):
        full = modes.get("full")
        w = next(iter(modes.values()))["spec"]["workload"]
        for tuning in ("full", "lora", "head"):
            if tuning not in modes:
                continue
            r = modes[tuning]
            epochs = ", ".join(f"{s:.1f}" for s in r["epoch_s"])
            fit_ratio = epoch_ratio = "-"
            if full:
                fit_ratio = f"{full['fit_s'] / r['fit_s']:.1f}x"
                epoch_ratio = f"{_median(full['epoch_s']) / _median(r['epoch_s']):.1f}x"
            lines.append(
                f"| {name} ({w['n_train']} texts, max_length {w['max_length']}) | {tuning} "
                f"| {r['spec']['lr']} | {r['trainable_parameters']:,} of {r['parameters']:,} "
                f"| {r['fit_s']:.1f} | {epochs} | {fit_ratio} | {epoch_ratio} "
                f"| {r['fit_peak_rss_mb']:,.0f} | {r['predict_s']:.1f} |"
            )
    return [*lines, ""]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def zero_shot_section(results: list[dict[str, Any]]) -> list[str]:
    """GPT2PromptClassifier and skorch's ZeroShotClassifier on the same texts and prompt."""
    runs = sorted(
        (r for r in results if r["spec"]["kind"] == "zero-shot"), key=lambda r: r["spec"]["name"]
    )
    if not runs:
        return []
    spec = runs[0]["spec"]
    lines = [
        "## Zero-shot with the language-model head",
        "",
        f"GPT-2 shape `{spec['shape']}` (random weights), SST-2 dev texts, prompt "
        f"`{runs[0]['template']!r}`, batch size "
        f"{spec['batch_size']}; both tools in one process, alternating over "
        f"{spec['rounds']} rounds (skorch gets new texts each round: it caches every prompt "
        "it has scored). Best round of each; agreement on all texts skorch scored.",
        "",
        "skorch runs the model in float32 as loaded; ours in the precision shown "
        '(`precision="auto"` is bfloat16 where the CPU has native bfloat16).',
        "",
        "| labels | label tokens | our precision | ours texts/s | skorch texts/s | ratio "
        "| same top class | max abs difference |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {', '.join(r['label_words'].values())} | {r['label_tokens']} "
            f"| {r['precision']} | {r['ours_texts_per_s']:.1f} | {r['skorch_texts_per_s']:.2f} "
            f"| {r['ratio']:.1f}x | {r['same_ranking']:.0%} of {r['n_anchor_texts']} "
            f"| {r['max_abs_difference']:.1e} |"
        )
    return [*lines, ""]
