"""The harness's contract: what a job kind is, and how a plan of job specs is run and stored.

A *job kind* (a ``Job`` subclass, registered in ``benchmarks.jobs.JOBS``) turns command-line
options into a plan (a list of JSON-able specs), runs one spec (in a fresh process unless it
says otherwise) and turns the results into report lines. The harness runs the plan, writes one
JSON file per spec under the results directory and hands the results to the job's report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ._common import REPO, build_checkpoint

Spec = dict[str, Any]
Result = dict[str, Any]


class Job:
    """One kind of benchmark job: plans, runs and reports. Subclass it and register it in JOBS."""

    #: The name on the command line (``python benchmarks/run.py NAME``).
    name: str = ""
    #: One line for ``--help``.
    summary: str = ""
    #: Whether each spec runs in a fresh Python process (caches, memory and warm-ups apart).
    isolated: bool = True
    #: Whether the job takes the shared workload options (``--shape``, ``--sst2-train``, ...).
    uses_workloads: bool = False
    #: Options that give this job's smallest plan (seconds; for tests and smoke runs).
    smallest: tuple[str, ...] = ()
    #: Defaults of options this job shares with others, when run on its own.
    defaults: ClassVar[dict[str, Any]] = {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this job's own options."""

    def unavailable(self, args: argparse.Namespace) -> str | None:
        """Why this job cannot run here (one line), or ``None``."""
        return None

    def plan(self, args: argparse.Namespace, context: Context) -> list[Spec]:
        """The specs of one run, each with a unique ``name`` and this job's ``kind``."""
        raise NotImplementedError

    def run(self, spec: Spec) -> Result:
        """Run one spec; return what it measured (JSON-able)."""
        raise NotImplementedError

    def report(self, args: argparse.Namespace, results: list[Result]) -> list[str]:
        """Markdown lines: the measurements, with ratios of runs made side by side."""
        raise NotImplementedError

    def failed(self, results: list[Result]) -> list[str]:
        """Checks of the results that did not hold (jobs that check something); one line each."""
        return []


@dataclass
class Context:
    """What a plan may need: the results directory and GPT-2 checkpoints built on demand."""

    results_dir: Path
    checkpoint_root: Path
    threads: int
    command: str
    revision: str
    _checkpoints: dict[str, Path] = field(default_factory=dict)

    def checkpoint(self, shape: str) -> Path:
        """A random-weight GPT-2 of ``shape`` with the real GPT-2 tokenizer, built once."""
        if shape not in self._checkpoints:
            self._checkpoints[shape] = build_checkpoint(
                shape, self.checkpoint_root / f"gpt2-{shape}"
            )
        return self._checkpoints[shape]


_VOLATILE = {"out", "checkpoint", "command", "revision"}


def same_job(path: Path, spec: Spec) -> bool:
    """Whether ``path`` holds a finished result of the same spec (paths aside).

    Specs that run this package must also come from the same code revision; the anchors' do
    not depend on it (``spec["uses_package"]`` says which).
    """
    try:
        done = json.loads(path.read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return False

    def strip(d: Spec) -> Spec:
        return {k: v for k, v in d.items() if k not in _VOLATILE}

    if spec.get("uses_package", True) and done.get("revision") != spec["revision"]:
        return False
    return strip(done) == strip(spec)


def execute(job: Job, spec: Spec) -> Result:
    """Run ``spec`` here, add what every result records, and write it to ``spec["out"]``."""
    import torch

    torch.set_num_threads(spec["threads"])
    load_before = os.getloadavg()
    result = job.run(spec)
    result |= {
        "spec": spec,
        "threads": torch.get_num_threads(),
        "loadavg_before": load_before[0],
        "loadavg_after": os.getloadavg()[0],
    }
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    return result


def run_spec(job: Job, spec: Spec, timeout: float, in_process: bool) -> bool:
    """Run one spec (in a fresh process when the job is isolated); ``False`` if it failed."""
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # a failed job must not leave an older result behind
    log = out.with_suffix(".log")
    spec_file = out.with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec, indent=1))
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {spec['name']} ...", end=" ", flush=True)
    if in_process or not job.isolated:
        execute(job, spec)
        status: int | str = 0
    else:
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        }
        try:
            with log.open("w") as stream:
                status = subprocess.run(
                    [sys.executable, "-m", "benchmarks._worker", str(spec_file)],
                    cwd=REPO,
                    env=env,
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
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


def load_results(results_dir: Path, kinds: set[str] | None = None) -> list[Result]:
    """The results stored under ``results_dir`` (of the given kinds), with their file times."""
    results = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name == "machine.json" or path.name.endswith(".spec.json"):
            continue
        result = json.loads(path.read_text())
        if kinds is not None and result["spec"]["kind"] not in kinds:
            continue
        result["mtime"] = path.stat().st_mtime
        results.append(result)
    return results
