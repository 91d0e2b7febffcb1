"""The ``head-grid`` job: a 45-fit head-mode grid search beside one full fine-tuning fit.

Two specs, each in a fresh process, timed side by side on the same machine: a
``GridSearchCV`` in ``tuning="head"`` over 3 learning rates x 3 max lengths x 5 folds (45
fits, and the refit) on ``--head-grid-texts`` SST-2 sentences, and one ``tuning="full"`` fit
of 1 epoch on 80% of them. The report prints the ratio, and how many rows the backbone ran
in the grid (one pass per text when every ``max_length`` derives from one pass).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ._common import SHAPES, cpu_seconds, read_split
from ._harness import Context, Job, Result, Spec


class HeadGridJob(Job):
    name = "head-grid"
    summary = "45-fit head-mode GridSearchCV (3 lr x 3 max_length x 5 folds) vs one full fit"
    smallest = ("--head-grid-texts", "40", "--head-grid-shape", "tiny")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--head-grid-texts", type=int, default=1000, help="SST-2 sentences; 0 skips the job"
        )
        parser.add_argument(
            "--head-grid-shape",
            choices=sorted(SHAPES),
            default="124m",
            help="GPT-2 shape, random weights (default: %(default)s)",
        )

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        if not args.head_grid_texts:
            return []
        checkpoint = str(context.checkpoint(args.head_grid_shape))
        common = {
            "kind": self.name,
            "shape": args.head_grid_shape,
            "checkpoint": checkpoint,
            "n_texts": args.head_grid_texts,
            "batch_size": 32,
        }
        return [
            {
                **common,
                "name": "head_grid__grid",
                "variant": "grid",
                "lrs": [1e-3, 1e-2, 1e-1],
                "max_lengths": [16, 32, 64],
                "folds": 5,
            },
            {**common, "name": "head_grid__full", "variant": "full", "max_length": 64},
        ]

    def run(self, spec: Spec) -> Result:
        from unittest import mock

        from sklearn.model_selection import GridSearchCV

        import sklearn_gpt2
        from sklearn_gpt2 import GPT2SequenceClassifier
        from sklearn_gpt2.models.sequence import SequenceClassifierModule

        texts, labels = read_split("sst2/train.csv", spec["n_texts"], seed=0)
        sklearn_gpt2.clear_checkpoint_cache()
        rows: list[int] = []
        backbone = SequenceClassifierModule.features

        def counting(module: Any, input_ids: Any, *args: Any, **kwargs: Any) -> Any:
            rows.append(int(input_ids.shape[0]))
            return backbone(module, input_ids, *args, **kwargs)

        cpu, start = cpu_seconds(), time.perf_counter()
        with mock.patch.object(SequenceClassifierModule, "features", counting):
            if spec["variant"] == "grid":
                search = GridSearchCV(
                    GPT2SequenceClassifier(
                        spec["checkpoint"],
                        tuning="head",
                        batch_size=spec["batch_size"],
                        random_state=0,
                    ),
                    {"lr": spec["lrs"], "max_length": spec["max_lengths"]},
                    cv=spec["folds"],
                    n_jobs=1,
                ).fit(texts, labels)
                n_fits = len(search.cv_results_["params"]) * spec["folds"] + 1
                extra: dict[str, Any] = {"best_params": search.best_params_}
            else:
                n_train = int(0.8 * len(texts))
                GPT2SequenceClassifier(
                    spec["checkpoint"],
                    tuning="full",
                    max_length=spec["max_length"],
                    max_epochs=1,
                    batch_size=spec["batch_size"],
                    random_state=0,
                ).fit(texts[:n_train], labels[:n_train])
                n_fits, extra = 1, {"n_train": n_train}
        return {
            "seconds": time.perf_counter() - start,
            "cpu_s": cpu_seconds() - cpu,
            "n_fits": n_fits,
            "backbone_rows": sum(rows) if spec["variant"] == "grid" else None,
            "n_texts": len(texts),
            **extra,
        }

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        runs = {r["spec"]["variant"]: r for r in results if r["spec"]["kind"] == self.name}
        if not runs:
            return []
        spec = next(iter(runs.values()))["spec"]
        lines = [
            "## A head-mode grid search against one full fine-tuning fit",
            "",
            f"GPT-2 shape `{spec['shape']}` (random weights), {spec['n_texts']} SST-2 "
            f"sentences, batch {spec['batch_size']}, each run in its own process.",
            "",
            "| run | fits | wall seconds | CPU seconds | backbone rows |",
            "|---|---:|---:|---:|---:|",
        ]
        for variant, label in (
            ("grid", "head grid: 3 lr x 3 max_length x 5 folds (+ refit)"),
            ("full", "tuning='full', 1 epoch on 80%, max_length 64"),
        ):
            if variant in runs:
                r = runs[variant]
                rows = "" if r["backbone_rows"] is None else f"{r['backbone_rows']:,}"
                lines.append(
                    f"| {label} | {r['n_fits']} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {rows} |"
                )
        if len(runs) == 2:
            ratio = runs["grid"]["seconds"] / runs["full"]["seconds"]
            lines += ["", f"The grid costs {ratio:.2f}x the single full fit (wall time)."]
        return lines
