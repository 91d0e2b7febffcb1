"""The tools job's tables, and docs/benchmark_results.md + docs/benchmark.png of the whole run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ._harness import load_results
from ._report_extras import memory_section, modes_section, search_section, zero_shot_section
from ._tools import TOOLS

LABELS = {
    "tutorial": "tutorial loop",
    "skorch": "skorch Pipeline",
    "trainer": "HF Trainer",
    "pipeline": "HF pipeline",
    "ours": "**GPT2SequenceClassifier**",
}
TITLES = {"sst2": "SST-2", "imdb": "IMDB sample"}


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ceiling(run: dict[str, Any]) -> float:
    """The best matrix-product rate seen around a job, at the precision the tool ran in."""
    precision = run["precision"]
    rates = [run[f"ceiling_{when}_gflops"] for when in ("before", "after")]
    return max(rate.get(precision, rate["float32"]) for rate in rates)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats of one tool on one workload, and the metrics derived from them."""
    spec = runs[0]["spec"]
    workload, n_params = spec["workload"], spec["model"]["non_embedding_parameters"]
    ceiling = statistics.median(_ceiling(run) for run in runs)
    out: dict[str, Any] = {
        "runs": len(runs),
        "precision": runs[0]["precision"],
        "ceiling_gflops": ceiling,
    }
    phases = {
        "fit": (
            workload["n_train"] * workload["epochs"],
            spec["real_train_tokens"] * workload["epochs"],
            6,
        ),
        "predict": (workload["n_test"], spec["real_test_tokens"], 2),
    }
    for phase, (samples, real, flops_per_param) in phases.items():
        seconds = _median([run.get(f"{phase}_s") for run in runs])
        if seconds is None:
            continue
        tokens_per_s = real / seconds
        gflops = flops_per_param * n_params * tokens_per_s / 1e9
        out[phase] = {
            "seconds": seconds,
            "samples_per_s": samples / seconds,
            "tokens_per_s": tokens_per_s,
            "padding": _median([run[f"{phase}_computed_tokens"] for run in runs]) / real,
            "gflops": gflops,
            "of_ceiling": gflops / ceiling,
            "ceiling_tokens_per_s": ceiling * 1e9 / (flops_per_param * n_params),
            # Throughput had the job had its threads' cores to itself: robust to other load.
            "cpu_tokens_per_s": real
            / _median([run[f"{phase}_cpu_s"] / run["threads"] for run in runs]),
            "cpu_share": _median(
                [run[f"{phase}_cpu_s"] / (run[f"{phase}_s"] * run["threads"]) for run in runs]
            ),
            "peak_rss_mb": _median([run[f"{phase}_peak_rss_mb"] for run in runs]),
            "spread": (
                min(run[f"{phase}_s"] for run in runs),
                max(run[f"{phase}_s"] for run in runs),
            ),
        }
    return out


def group_tools(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per workload: the current settings (those of the newest result) and each tool's summary.

    Results left from a run with other workload sizes are not mixed in; they are listed.
    """
    grouped: dict[str, dict[str, Any]] = {}
    tool_runs = [r for r in results if r["spec"]["kind"] == "tools"]
    names = dict.fromkeys(r["spec"]["workload"]["name"] for r in tool_runs)
    order = list(TITLES)  # SST-2 first
    for name in sorted(names, key=lambda n: order.index(n) if n in order else len(order)):
        runs = [r for r in tool_runs if r["spec"]["workload"]["name"] == name]
        newest = max(runs, key=lambda r: r["mtime"])["spec"]
        key = (newest["workload"], newest["shape"])
        current = [r for r in runs if (r["spec"]["workload"], r["spec"]["shape"]) == key]
        grouped[name] = {
            "spec": newest,
            "tools": {
                tool: summarize([r for r in current if r["spec"]["tool"] == tool])
                for tool in TOOLS
                if any(r["spec"]["tool"] == tool for r in current)
            },
            "stale": sorted({r["spec"]["name"] for r in runs if r not in current}),
        }
    return grouped


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _phase_table(workload: dict[str, Any], phase: str) -> list[str]:
    ours = workload["tools"].get("ours", {}).get(phase)
    lines = [
        "| tool | runs | seconds | samples/s | real tokens/s | padding overhead | GFLOP/s "
        "| ceiling GFLOP/s | % of ceiling | CPU share | real tokens per CPU-second x threads "
        "| peak RSS MiB | ours ÷ tool |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, summary in workload["tools"].items():
        row = summary.get(phase)
        if row is None:
            continue
        ratio = ours["tokens_per_s"] / row["tokens_per_s"] if ours and tool != "ours" else None
        runs = str(summary["runs"])
        if summary["runs"] > 1:
            low, high = row["spread"]
            runs += f" (median; {low:.1f}-{high:.1f} s)"
        precision = "" if summary["precision"] == "float32" else f" [{summary['precision']}]"
        lines.append(
            f"| {LABELS[tool]}{precision} | {runs} | {_fmt(row['seconds'], 1)} "
            f"| {_fmt(row['samples_per_s'], 1)} | {_fmt(row['tokens_per_s'])} "
            f"| {row['padding']:.2f}x | {_fmt(row['gflops'], 1)} "
            f"| {_fmt(summary['ceiling_gflops'])} | {100 * row['of_ceiling']:.1f}% "
            f"| {100 * row['cpu_share']:.0f}% | {_fmt(row['cpu_tokens_per_s'])} "
            f"| {_fmt(row['peak_rss_mb'])} "
            f"| {'' if ratio is None else f'{ratio:.2f}x'} |"
        )
    return lines


def _ratio(tools: dict[str, Any], phase: str, anchor: str) -> str:
    """Our real tokens/s over the anchor's, by wall time and (in brackets) by CPU time."""
    mine = tools.get("ours", {}).get(phase)
    other = tools.get(anchor, {}).get(phase)
    if not (mine and other):
        return "-"
    wall = mine["tokens_per_s"] / other["tokens_per_s"]
    cpu = mine["cpu_tokens_per_s"] / other["cpu_tokens_per_s"]
    return f"{wall:.2f}x ({cpu:.2f}x)"


def _targets(grouped: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| workload | fit: % of ceiling (bar: half) | predict: % of ceiling (bar: half) "
        "| fit ÷ tutorial | fit ÷ Trainer | predict ÷ tutorial | predict ÷ HF pipeline "
        "(2x is the bar) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, workload in grouped.items():
        tools = workload["tools"]
        if "ours" not in tools:
            continue
        pct = {
            p: f"{100 * tools['ours'][p]['of_ceiling']:.1f}%" if p in tools["ours"] else "-"
            for p in ("fit", "predict")
        }
        lines.append(
            f"| {TITLES.get(name, name)} | {pct['fit']} | {pct['predict']} "
            f"| {_ratio(tools, 'fit', 'tutorial')} | {_ratio(tools, 'fit', 'trainer')} "
            f"| {_ratio(tools, 'predict', 'tutorial')} | {_ratio(tools, 'predict', 'pipeline')} |"
        )
    return lines


def _machine(results_dir: Path, results: list[dict[str, Any]]) -> list[str]:
    info = json.loads((results_dir / "machine.json").read_text())
    bf16 = info["avx512_bf16"] or info["amx_bf16"]
    loads = [r[k] for r in results for k in ("loadavg_before", "loadavg_after")]
    commands = sorted({r["spec"]["command"] for r in results})
    lines = [
        "## Machine and run",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {info['cpu']} |",
        f"| cores | {info['usable_cpus']} usable of {info['logical_cpus']}; "
        f"{info['threads']} torch threads per job |",
        f"| bfloat16 in hardware (AVX512-BF16 or AMX) | {'yes' if bf16 else 'no'} "
        f"(AVX2 {'yes' if info['avx2'] else 'no'}, AVX512F "
        f"{'yes' if info['avx512f'] else 'no'}) |",
        f"| memory | {info['memory_gib']} GiB |",
        f"| versions | Python {info['python']}, torch {info['torch']}, transformers "
        f"{info['transformers']}, skorch {info['skorch']}, scikit-learn {info['sklearn']} |",
        f"| date | {info['date']} |",
        f"| 1-minute load average seen by the jobs | {min(loads):.1f} to {max(loads):.1f} |",
    ]
    lines += [f"| command | `{command}` |" for command in commands]
    return [*lines, ""]


def tool_sections(results: list[dict[str, Any]]) -> list[str]:
    """Per workload the fit and predict tables; then ours against the bars, as ratios."""
    grouped = group_tools(results)
    lines: list[str] = []
    for name, workload in grouped.items():
        spec, w = workload["spec"], workload["spec"]["workload"]
        model = spec["model"]
        ours_or_any = workload["tools"].get("ours") or next(iter(workload["tools"].values()))
        lines += [
            f"## {TITLES.get(name, name)}: {w['n_train']:,} train / {w['n_test']:,} test texts, "
            f"max_length {w['max_length']}, batch {w['batch_size']}, {w['epochs']} epoch, "
            f"lr {w['lr']}",
            "",
            f"GPT-2 shape `{spec['shape']}`: {model['parameters'] / 1e6:.1f}M parameters, "
            f"{model['non_embedding_parameters'] / 1e6:.1f}M without embeddings, so "
            f"{6 * model['non_embedding_parameters'] / 1e9:.3f} GFLOP per real token to train "
            f"and {2 * model['non_embedding_parameters'] / 1e9:.3f} to predict. Real tokens: "
            f"{spec['real_train_tokens']:,} train, {spec['real_test_tokens']:,} test. "
            f"Matrix-product ceiling ({ours_or_any['precision']}, 2048x2048, measured in each "
            f"job; median of our estimator's jobs): {ours_or_any['ceiling_gflops']:.0f} "
            "GFLOP/s, i.e. "
            + " and ".join(
                f"{ours_or_any[p]['ceiling_tokens_per_s']:,.0f} real tokens/s to {p}"
                for p in ("fit", "predict")
                if p in ours_or_any
            )
            + ".",
            "",
            "**Fit**",
            "",
            *_phase_table(workload, "fit"),
            "",
            "**Predict**",
            "",
            *_phase_table(workload, "predict"),
            "",
        ]
        if workload["stale"]:
            lines += [f"Not shown (other workload settings): {', '.join(workload['stale'])}.", ""]
    if any("ours" in w["tools"] for w in grouped.values()):
        lines += [
            "## GPT2SequenceClassifier against the bars: half the ceiling, 2x the tutorial loop",
            "",
            "Ratios are real tokens/s of ours over the anchor's, from wall time; in brackets "
            "from CPU time, which other processes on the machine disturb less. % of ceiling "
            "is against the matrix-product rate measured in the same job.",
            "",
            *_targets(grouped),
            "",
        ]
    return lines


def write_report(results_dir: Path, docs_dir: Path) -> list[Path]:
    """Write the markdown report and the plot of a whole run; return their paths."""
    results = load_results(results_dir)
    lines = [
        "# Benchmark results",
        "",
        "Generated by `benchmarks/run.py` from the job results in "
        f"`benchmarks/results/{results_dir.name}/`; do not edit by hand. "
        "[benchmarks.md](benchmarks.md) defines every column and says how to read them.",
        "",
        *_machine(results_dir, results),
        *tool_sections(results),
    ]
    lines += [*search_section(results), *memory_section(results), *modes_section(results)]
    lines += zero_shot_section(results)
    docs_dir.mkdir(parents=True, exist_ok=True)
    markdown = docs_dir / "benchmark_results.md"
    markdown.write_text("\n".join(lines).rstrip() + "\n")
    written = [markdown]
    grouped = group_tools(results)
    if grouped:
        from ._plot import plot

        written.append(plot(grouped, docs_dir / "benchmark.png"))
    return written
