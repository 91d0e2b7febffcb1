"""The benchmark plot: real tokens per second of each tool, fit and predict, per workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt

from ._tools import TOOLS

NAMES = {
    "tutorial": "tutorial loop",
    "skorch": "skorch Pipeline",
    "trainer": "HF Trainer",
    "pipeline": "HF pipeline",
    "ours": "GPT2SequenceClassifier",
}
COLORS = {
    "tutorial": "#9e9e9e",
    "skorch": "#f4a261",
    "trainer": "#e76f51",
    "pipeline": "#8ab17d",
    "ours": "#264653",
}
TITLES = {"sst2": "SST-2", "imdb": "IMDB sample"}


def plot(grouped: dict[str, dict[str, Any]], path: Path, machine: str | None = None) -> Path:
    """Grouped bars with the measured ceiling and half of it per workload.

    ``machine`` names the machine in the title (else the title points to the results table).
    """
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(TOOLS)
    for axis, phase in zip(axes, ("fit", "predict"), strict=True):
        for group, workload in enumerate(grouped.values()):
            tools = workload["tools"]
            for slot, tool in enumerate(TOOLS):
                row = tools.get(tool, {}).get(phase)
                if row is None:
                    continue
                x = group + (slot - (len(TOOLS) - 1) / 2) * width
                axis.bar(
                    x,
                    row["tokens_per_s"],
                    width,
                    color=COLORS[tool],
                    label=NAMES[tool] if group == 0 else None,
                )
                axis.annotate(
                    f"{row['tokens_per_s']:,.0f}",
                    (x, row["tokens_per_s"]),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
            # The ceiling measured in our estimator's jobs, else in the first tool's.
            reference = tools.get("ours", {}).get(phase) or next(
                (s[phase] for s in tools.values() if phase in s), None
            )
            if reference is not None:
                ceiling = reference["ceiling_tokens_per_s"]
                span = (group - 0.45, group + 0.45)
                axis.plot(
                    span,
                    (ceiling, ceiling),
                    "k-",
                    lw=1,
                    label="measured ceiling" if group == 0 else None,
                )
                axis.plot(
                    span,
                    (ceiling / 2, ceiling / 2),
                    "k:",
                    lw=1,
                    label="half of the measured ceiling" if group == 0 else None,
                )
        axis.set_xticks(range(len(grouped)))
        axis.set_xticklabels([TITLES.get(name, name) for name in grouped])
        axis.set_ylim(bottom=0)  # linear from zero: bar heights compare as ratios
        axis.set_ylabel("real tokens / second")
        axis.set_title(phase)
        axis.grid(axis="y", which="both", alpha=0.3)
    handles, labels = [], []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    shape = next(iter(grouped.values()))["spec"]["shape"]
    where = machine or "machine as in the results table"
    figure.suptitle(f"GPT-2 {shape}, 1 epoch, {where} (higher is better)")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
