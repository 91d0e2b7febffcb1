"""The ``tools`` job: our estimator beside the tutorial loop, skorch, the Trainer, the pipeline."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ._common import (
    SHAPES,
    Phase,
    Workload,
    count_computed_tokens,
    load_workload,
    measure_ceiling,
    model_sizes,
    real_token_counts,
)
from ._harness import Context, Job, Result, Spec

WORKLOADS = ("sst2", "imdb")


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and GPT-2 shape options that every workload-based job shares."""
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="124m",
        help="GPT-2 shape: 124m (GPT2Config defaults), small (2 layers, 128 wide) or tiny, "
        "for quick runs (default: %(default)s)",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated (default: %(default)s)"
    )
    parser.add_argument("--sst2-train", type=int, default=1024, help="SST-2 training sentences")
    parser.add_argument("--sst2-dev", type=int, default=872, help="SST-2 dev sentences")
    parser.add_argument("--imdb-train", type=int, default=256, help="IMDB training reviews")
    parser.add_argument("--imdb-test", type=int, default=500, help="IMDB test reviews")


def choices(value: str | list[str], allowed: tuple[str, ...], flag: str) -> list[str]:
    """A comma-separated option as a list, refusing names not in ``allowed``."""
    if isinstance(value, list):
        return value
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def workloads(args: argparse.Namespace) -> list[Workload]:
    """The chosen workloads, with their sizes and hyperparameters (the same for every tool)."""
    table = {
        "sst2": Workload(
            "sst2", "sst2/train.csv", "sst2/dev.csv", args.sst2_train, args.sst2_dev, 64, 32
        ),
        "imdb": Workload(
            "imdb",
            "imdb_sample/train.csv",
            "imdb_sample/test.csv",
            args.imdb_train,
            args.imdb_test,
            256,
            16,
        ),
    }
    return [table[name] for name in choices(args.workloads, WORKLOADS, "--workloads")]


class ToolsJob(Job):
    name = "tools"
    summary = "fit and predict beside the tutorial loop, skorch, the HF Trainer and pipeline"
    uses_workloads = True
    smallest = (
        "--shape", "tiny", "--workloads", "sst2", "--sst2-train", "16", "--sst2-dev", "16",
        "--tools", "tutorial,ours", "--repeats", "1",
    )  # fmt: skip

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ._tools import TOOLS

        parser.add_argument(
            "--tools",
            default=",".join(TOOLS),
            help="comma-separated tools; '' runs none (default: %(default)s)",
        )
        parser.add_argument(
            "--repeats", type=int, default=3, help="runs of our estimator (median reported)"
        )
        parser.add_argument("--anchor-repeats", type=int, default=1, help="runs of each anchor")

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        from ._tools import TOOLS

        tools = choices(args.tools, TOOLS, "--tools")
        if not tools:
            return []
        checkpoint = context.checkpoint(args.shape)
        model = model_sizes(checkpoint)
        jobs = []
        for workload in workloads(args):
            train_x, _, test_x, _ = load_workload(workload)
            common = {
                "kind": self.name,
                "shape": args.shape,
                "checkpoint": str(checkpoint),
                "model": model,
                "workload": workload.to_dict(),
                "real_train_tokens": int(
                    real_token_counts(checkpoint, train_x, workload.max_length).sum()
                ),
                "real_test_tokens": int(
                    real_token_counts(checkpoint, test_x, workload.max_length).sum()
                ),
            }
            for tool in tools:
                repeats = args.repeats if tool == "ours" else args.anchor_repeats
                for repeat in range(1, repeats + 1):
                    name = f"{workload.name}__{tool}__r{repeat}"
                    jobs.append(
                        common
                        | {
                            "name": name,
                            "tool": tool,
                            "repeat": repeat,
                            "uses_package": tool == "ours",
                        }
                    )
        return jobs

    def run(self, spec: Spec) -> Result:
        """Fit (unless predict-only) and predict one workload with one tool."""
        import torch

        from ._tools import PREDICT_ONLY, make_tool

        workload = Workload(**spec["workload"])
        train_x, train_y, test_x, test_y = load_workload(workload)
        tool = make_tool(spec["tool"], spec["checkpoint"], workload)
        result: dict[str, Any] = {"ceiling_before_gflops": measure_ceiling(tool.precision)}
        torch.manual_seed(workload.seed)
        with count_computed_tokens(spec["model"]["vocab_size"]) as counter:
            if spec["tool"] in PREDICT_ONLY:
                tool.prepare(len(set(train_y)))
            else:
                with Phase() as fit:
                    tool.fit(train_x, train_y)
                result |= fit.record("fit") | {"fit_computed_tokens": counter["tokens"]}
            counter["tokens"] = 0
            with Phase() as predict:
                predictions = np.asarray(tool.predict(test_x))
            result |= predict.record("predict") | {"predict_computed_tokens": counter["tokens"]}
        # The precision the tool ran in (ours reports it after the fit).
        result["precision"] = tool.precision
        result["ceiling_after_gflops"] = measure_ceiling(tool.precision)
        if spec["tool"] not in PREDICT_ONLY:
            # Random weights: accuracy is near chance; it only shows the tool ran end to end.
            result["accuracy"] = float(np.mean(predictions == np.asarray(test_y)))
        result["n_predictions"] = len(predictions)
        return result

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        from ._report import tool_sections

        return tool_sections(results)
