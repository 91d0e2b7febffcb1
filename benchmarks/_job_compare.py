"""The ``compare`` job: the whole comparison of docs/benchmarks.md in one run, and its report.

It plans the ``tools`` job, then the ``search`` and ``memory`` jobs (unless ``--no-extras``) and
the ``modes`` and ``zero-shot`` jobs when their sizes are given, all into one results
directory, and writes docs/benchmark_results.md and docs/benchmark.png from it. ``run.py``
without a job name runs it, with the options it always had.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import DOCS
from ._harness import Context, Job, Result, Spec
from ._job_memory import MemoryJob
from ._job_modes import ModesJob
from ._job_search import SearchJob
from ._job_tools import ToolsJob
from ._zero_shot import ZeroShotJob


class CompareJob(Job):
    name = "compare"
    summary = "tools + search + memory (+ modes, zero-shot) into docs/benchmark_results.md"
    uses_workloads = True
    smallest = (*ToolsJob.smallest, "--no-extras", "--no-report")

    def __init__(self) -> None:
        self.parts: dict[str, Job] = {
            job.name: job
            for job in (ModesJob(), ZeroShotJob(), ToolsJob(), SearchJob(), MemoryJob())
        }

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for job in self.parts.values():
            job.add_arguments(parser)
        parser.add_argument(
            "--no-extras", action="store_true", help="skip the grid-search and memory jobs"
        )
        parser.add_argument(
            "--docs-dir", type=Path, default=DOCS, help="where the report and plot are written"
        )
        parser.add_argument("--no-report", action="store_true", help="do not write the report")

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        names = ["modes", "zero-shot", "tools"] + ([] if args.no_extras else ["search", "memory"])
        return [spec for name in names for spec in self.parts[name].plan(args, context)]

    def run(self, spec: Spec) -> Result:
        return self.parts[spec["kind"]].run(spec)

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        """The modes and zero-shot ratios; the whole report goes to ``--docs-dir``."""
        from ._report import write_report
        from ._report_extras import modes_section, zero_shot_section

        lines = [*modes_section(results), *zero_shot_section(results)]
        if not args.no_report:
            written = write_report(args.results_dir, args.docs_dir)
            lines.append("wrote " + ", ".join(str(path) for path in written))
        return lines
