"""The ``modes`` job: ``tuning="full"``, ``"lora"`` and ``"head"`` side by side: speed, memory."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from ._common import Workload, load_workload, measure
from ._harness import Context, Job, Result, Spec
from ._job_tools import workloads

#: The learning rate each training mode is compared at (a usual value for each).
MODE_LRS = {"full": 2e-5, "lora": 5e-4, "head": 5e-3}


class ModesJob(Job):
    name = "modes"
    summary = "the training modes (full, lora, head) fitted side by side: time, epochs, memory"
    uses_workloads = True
    smallest = (
        "--shape", "tiny", "--workloads", "sst2", "--modes-texts", "16", "--modes-test", "8",
        "--modes-epochs", "1",
    )  # fmt: skip
    defaults: ClassVar[dict[str, Any]] = {"modes_texts": 64}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--modes-texts",
            type=int,
            default=0,
            help="training texts per workload for the training-modes comparison (each mode in "
            "its own process, GPT-2 shape --shape); 0 skips it",
        )
        parser.add_argument("--modes-test", type=int, default=64, help="test texts of that job")
        parser.add_argument("--modes-epochs", type=int, default=3, help="epochs of that job")

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        """One fit per (workload, training mode), same data and epochs, each in its own process."""
        if not args.modes_texts:
            return []
        checkpoint = str(context.checkpoint(args.shape))
        jobs = []
        for workload in workloads(args):
            sized = replace(workload, n_train=args.modes_texts, n_test=args.modes_test)
            for tuning, lr in MODE_LRS.items():
                jobs.append(
                    {
                        "kind": self.name,
                        "name": f"modes__{workload.name}__{tuning}",
                        "shape": args.shape,
                        "checkpoint": checkpoint,
                        "workload": sized.to_dict(),
                        "tuning": tuning,
                        "lr": lr,
                        "epochs": args.modes_epochs,
                    }
                )
        return jobs

    def run(self, spec: Spec) -> Result:
        """Fit one training mode for some epochs: wall time, time per epoch, peak memory."""
        from sklearn_gpt2 import GPT2SequenceClassifier

        workload = Workload(**spec["workload"])
        train_x, train_y, test_x, test_y = load_workload(workload)
        clf = GPT2SequenceClassifier(
            spec["checkpoint"],
            tuning=spec["tuning"],
            lr=spec["lr"],
            max_length=workload.max_length,
            batch_size=workload.batch_size,
            max_epochs=spec["epochs"],
            precision="auto",
            random_state=0,
        )
        predictions: list[np.ndarray] = []
        result: dict[str, Any] = measure("fit", lambda: clf.fit(train_x, train_y))
        result |= measure("predict", lambda: predictions.append(clf.predict(test_x)))
        parameters = list(clf.module_.parameters())
        return result | {
            "epoch_s": [float(row["dur"]) for row in clf.history_],
            "precision": clf.runtime_.precision,
            "parameters": sum(p.numel() for p in parameters),
            "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
            # Random weights: accuracy is near chance; it only shows the fit ran end to end.
            "accuracy": float(np.mean(predictions[0] == np.asarray(test_y))),
        }

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        from ._report_extras import modes_section

        return modes_section(results)
