r"""Compare GPT2SequenceClassifier with the tools people use today, on this machine.

Runs, one after another and each in a fresh process, the tutorial loop, a skorch Pipeline,
the Hugging Face Trainer, the Hugging Face text-classification pipeline (predict only) and our
estimator, on the same checkpoint, data and hyperparameters; then a grid search with and
without our caches, the memory of predicting many long texts, and our training modes
(``tuning="full"``, ``"lora"``, ``"head"``) side by side. Every job writes a JSON
file under the results directory; the report (docs/benchmark_results.md, docs/benchmark.png)
is assembled from those files, so a run can be resumed or extended tool by tool.

Examples
--------
Quick check of the whole harness (minutes)::

    python benchmarks/run.py --shape small --sst2-train 256 --sst2-dev 256 \
        --imdb-train 64 --imdb-test 128 --memory-texts 2000

The GPT-2 124M comparison (hours on 2 cores at the default sizes; the reduced sizes below
take about 30 minutes on a quiet machine), then a re-run of our estimator only, then the
report again::

    python benchmarks/run.py
    python benchmarks/run.py --sst2-train 256 --sst2-dev 256 --imdb-train 32 --imdb-test 64
    python benchmarks/run.py --tools ours --no-extras \
        --sst2-train 256 --sst2-dev 256 --imdb-train 32 --imdb-test 64
    python benchmarks/run.py --report-only

GPT2PromptClassifier zero-shot against skorch's ZeroShotClassifier (124M shape, minutes)::

    python benchmarks/run.py --tools '' --no-extras --zero-shot-texts 96 \
        --results-dir benchmarks/results/zero_shot

The training modes on the 124M shape only (about 15 minutes on 2 cores), ratios printed::

    python benchmarks/run.py --tools '' --no-extras --modes-texts 64 \
        --results-dir benchmarks/results/modes

See docs/benchmarks.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS,
    SHAPES,
    Workload,
    build_checkpoint,
    git_revision,
    load_workload,
    machine_info,
    model_sizes,
    real_token_counts,
)
from _report import load_results
from _tools import TOOLS

WORKLOADS = ("sst2", "imdb")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="124m",
        help="GPT-2 shape of the tool comparison: 124m (GPT2Config defaults), "
        "small (2 layers, 128 wide) or tiny, for quick runs (default: %(default)s)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help="comma-separated tools to run; '' runs none (default: %(default)s)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated workloads (default: %(default)s)",
    )
    parser.add_argument("--sst2-train", type=int, default=1024, help="SST-2 training sentences")
    parser.add_argument("--sst2-dev", type=int, default=872, help="SST-2 dev sentences")
    parser.add_argument("--imdb-train", type=int, default=256, help="IMDB training reviews")
    parser.add_argument("--imdb-test", type=int, default=500, help="IMDB test reviews")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of our estimator; the report shows the median (default: 3)",
    )
    parser.add_argument("--anchor-repeats", type=int, default=1, help="runs of each anchor")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per job")
    parser.add_argument(
        "--search-texts",
        type=int,
        default=400,
        help="SST-2 sentences for the grid-search timing; 0 skips it",
    )
    parser.add_argument(
        "--search-shape",
        choices=sorted(SHAPES),
        default="small",
        help="GPT-2 shape of the grid-search timing (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-texts",
        type=int,
        default=20_000,
        help="IMDB-length texts predicted in the memory check; 0 skips it",
    )
    parser.add_argument(
        "--memory-fit-texts",
        type=int,
        default=1000,
        help="IMDB reviews fitted before the memory check (fit memory)",
    )
    parser.add_argument(
        "--memory-shape",
        choices=sorted(SHAPES),
        default="tiny",
        help="GPT-2 shape of the memory check (default: %(default)s: the point "
        "is how memory grows with the input, not speed)",
    )
    parser.add_argument(
        "--modes-texts",
        type=int,
        default=0,
        help="training texts per workload for the training-modes comparison (tuning='full', "
        "'lora', 'head', each in its own process, GPT-2 shape --shape); 0 skips it",
    )
    parser.add_argument("--modes-test", type=int, default=64, help="test texts of that comparison")
    parser.add_argument(
        "--zero-shot-texts",
        type=int,
        default=0,
        help="SST-2 dev texts GPT2PromptClassifier classifies zero-shot, beside skorch's "
        "ZeroShotClassifier on a quarter of them per round (GPT-2 shape --shape); 0 skips it",
    )
    parser.add_argument("--modes-epochs", type=int, default=3, help="epochs of that comparison")
    parser.add_argument(
        "--no-extras", action="store_true", help="skip the grid-search and memory jobs"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where job results go (default: benchmarks/results/<shape>)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="keep the generated checkpoints here (default: a temporary dir)",
    )
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs",
        help="where the report and plot are written",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip jobs whose result file exists with the same settings",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per job")
    parser.add_argument(
        "--report-only", action="store_true", help="only assemble the report from existing results"
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    args = parser.parse_args(argv)
    args.tools = _choices(args.tools, TOOLS, "--tools")
    args.workloads = _choices(args.workloads, WORKLOADS, "--workloads")
    args.results_dir = args.results_dir or RESULTS / args.shape
    return args


def _choices(value: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    return chosen


def workloads(args: argparse.Namespace) -> list[Workload]:
    table = {
        "sst2": Workload(
            "sst2",
            "sst2/train.csv",
            "sst2/dev.csv",
            args.sst2_train,
            args.sst2_dev,
            max_length=64,
            batch_size=32,
        ),
        "imdb": Workload(
            "imdb",
            "imdb_sample/train.csv",
            "imdb_sample/test.csv",
            args.imdb_train,
            args.imdb_test,
            max_length=256,
            batch_size=16,
        ),
    }
    return [table[name] for name in args.workloads]


#: The learning rate each training mode is compared at (a usual value for each).
MODE_LRS = {"full": 2e-5, "lora": 5e-4, "head": 5e-3}


def mode_jobs(args: argparse.Namespace, checkpoint: Path) -> list[dict[str, Any]]:
    """One fit per (workload, training mode), same data and epochs, each in its own process."""
    jobs = []
    for workload in workloads(args):
        sized = replace(workload, n_train=args.modes_texts, n_test=args.modes_test)
        for tuning, lr in MODE_LRS.items():
            jobs.append(
                {
                    "kind": "modes",
                    "name": f"modes__{workload.name}__{tuning}",
                    "shape": args.shape,
                    "checkpoint": str(checkpoint),
                    "workload": sized.to_dict(),
                    "tuning": tuning,
                    "lr": lr,
                    "epochs": args.modes_epochs,
                }
            )
    return jobs


def zero_shot_jobs(args: argparse.Namespace, checkpoint: Path) -> list[dict[str, Any]]:
    """GPT2PromptClassifier against skorch's ZeroShotClassifier: one- and two-token labels."""
    return [
        {
            "kind": "zero_shot",
            "name": f"zero_shot__{labels}__{precision}",
            "shape": args.shape,
            "checkpoint": str(checkpoint),
            "file": "sst2/dev.csv",
            "n_texts": args.zero_shot_texts,
            "n_anchor_texts": max(4, args.zero_shot_texts // 4),
            "labels": labels,
            "max_length": 128,
            "batch_size": 32,
            "precision": precision,
            "rounds": 3,
        }
        for labels in ("one-token", "two-token")
        # skorch runs the model as loaded (float32); ours also at "auto", its default.
        for precision in ("float32", "auto")
    ]


def plan(args: argparse.Namespace, checkpoints: dict[str, Path]) -> list[dict[str, Any]]:
    """Every job of this run, as the spec its worker reads."""
    jobs: list[dict[str, Any]] = []
    if args.modes_texts:
        jobs += mode_jobs(args, checkpoints[args.shape])
    if args.zero_shot_texts:
        jobs += zero_shot_jobs(args, checkpoints[args.shape])
    for workload in workloads(args) if args.tools else []:
        checkpoint = checkpoints[args.shape]
        model = model_sizes(checkpoint)
        train_x, _, test_x, _ = load_workload(workload)
        common = {
            "kind": "tool",
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
        for tool in args.tools:
            repeats = args.repeats if tool == "ours" else args.anchor_repeats
            for repeat in range(1, repeats + 1):
                name = f"{workload.name}__{tool}__r{repeat}"
                jobs.append(common | {"name": name, "tool": tool, "repeat": repeat})
    if args.no_extras:
        return jobs
    if args.search_texts:
        for variant in ("cached", "naive"):
            jobs.append(
                {
                    "kind": "search",
                    "name": f"search__{variant}",
                    "variant": variant,
                    "shape": args.search_shape,
                    "checkpoint": str(checkpoints[args.search_shape]),
                    "n_texts": args.search_texts,
                    "lrs": [2e-5, 5e-5],
                    "max_lengths": [32, 64],
                    "folds": 3,
                    "batch_size": 32,
                }
            )
    if args.memory_texts:
        for variant in ("ours", "naive"):
            jobs.append(
                {
                    "kind": "memory",
                    "name": f"memory__{variant}",
                    "variant": variant,
                    "shape": args.memory_shape,
                    "checkpoint": str(checkpoints[args.memory_shape]),
                    "n_texts": args.memory_texts,
                    "fit_texts": args.memory_fit_texts,
                    "max_length": 256,
                    "batch_size": 16,
                }
            )
    return jobs


_VOLATILE = {"out", "checkpoint", "command", "revision"}


def _same_job(path: Path, spec: dict[str, Any]) -> bool:
    """Whether ``path`` holds a finished result of the same job (paths aside).

    Jobs that run this package must also come from the same code revision; the anchors' do not
    depend on it.
    """
    try:
        done = json.loads(path.read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return False
    strip = lambda d: {k: v for k, v in d.items() if k not in _VOLATILE}  # noqa: E731
    uses_package = spec["kind"] != "tool" or spec["tool"] == "ours"
    if uses_package and done.get("revision") != spec["revision"]:
        return False
    return strip(done) == strip(spec)


def run_job(spec: dict[str, Any], args: argparse.Namespace) -> bool:
    out = Path(spec["out"])
    log = out.with_suffix(".log")
    spec_file = out.with_suffix(".spec.json")
    out.unlink(missing_ok=True)  # a failed job must not leave an older result behind
    spec_file.write_text(json.dumps(spec, indent=1))
    worker = Path(__file__).resolve().parent / "_worker.py"
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {spec['name']} ...", end=" ", flush=True)
    try:
        with log.open("w") as stream:
            status = subprocess.run(
                [sys.executable, str(worker), str(spec_file)],
                stdout=stream,
                stderr=subprocess.STDOUT,
                timeout=args.timeout,
                check=False,
            ).returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    elapsed = time.perf_counter() - start
    if status != 0:
        print(f"FAILED ({status}) after {elapsed:.0f}s; see {log}")
        return False
    print(f"done in {elapsed:.0f}s")
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        command = shlex.join([Path(sys.executable).name, *sys.argv])
        revision = git_revision()
        info = machine_info() | {"command": command, "threads": args.threads}
        (args.results_dir / "machine.json").write_text(json.dumps(info, indent=1))
        with tempfile.TemporaryDirectory(prefix="gpt2-bench-") as scratch:
            root = args.checkpoint_dir or Path(scratch)
            shapes = (
                {args.shape}
                if (args.tools or args.modes_texts or args.zero_shot_texts) and args.workloads
                else set()
            )
            if not args.no_extras:
                shapes |= {args.search_shape} if args.search_texts else set()
                shapes |= {args.memory_shape} if args.memory_texts else set()
            checkpoints = {s: build_checkpoint(s, root / f"gpt2-{s}") for s in sorted(shapes)}
            failures = 0
            for spec in plan(args, checkpoints):
                spec |= {
                    "threads": args.threads,
                    "command": command,
                    "revision": revision,
                    "out": str(args.results_dir / f"{spec['name']}.json"),
                }
                if args.resume and _same_job(Path(spec["out"]), spec):
                    print(f"{spec['name']}: result exists, skipped (--resume)")
                    continue
                failures += not run_job(spec, args)
        if failures:
            print(f"{failures} job(s) failed; the report shows the others.")
    from _report_extras import modes_section, zero_shot_section

    results = load_results(args.results_dir)
    print("\n".join([*modes_section(results), *zero_shot_section(results)]))
    if not args.no_report:
        from _report import write_report

        written = write_report(args.results_dir, args.docs_dir)
        print("wrote", ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
