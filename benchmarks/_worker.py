"""Run one benchmark job in a fresh process and write its result as JSON.

``python benchmarks/_worker.py SPEC.json`` (run.py writes the spec). A fresh process per job
keeps the tools from sharing caches, warm-ups or memory: each job's peak memory is its own.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np
import torch
from _common import (
    Workload,
    count_computed_tokens,
    cpu_seconds,
    load_workload,
    measure_ceiling,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)


class _Phase:
    """Wall time, CPU time and peak memory of one phase (fit or predict)."""

    def __enter__(self) -> _Phase:
        self.peak_resettable = reset_peak_rss()
        self.rss_before_mb = rss_mb()
        self._cpu = cpu_seconds()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = cpu_seconds() - self._cpu
        self.peak_rss_mb = peak_rss_mb()

    def record(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_s": self.seconds,
            f"{prefix}_cpu_s": self.cpu_seconds,
            f"{prefix}_rss_before_mb": self.rss_before_mb,
            f"{prefix}_peak_rss_mb": self.peak_rss_mb,
            "peak_rss_resettable": self.peak_resettable,
        }


def run_tool(spec: dict[str, Any]) -> dict[str, Any]:
    """Fit (unless predict-only) and predict one workload with one tool."""
    from _tools import PREDICT_ONLY, make_tool

    workload = Workload(**spec["workload"])
    train_x, train_y, test_x, test_y = load_workload(workload)
    tool = make_tool(spec["tool"], Path(spec["checkpoint"]), workload)
    result: dict[str, Any] = {"precision": tool.precision}
    result["ceiling_before_gflops"] = measure_ceiling(tool.precision)
    torch.manual_seed(workload.seed)
    with count_computed_tokens(spec["model"]["vocab_size"]) as counter:
        if spec["tool"] in PREDICT_ONLY:
            tool.prepare(len(set(train_y)))
        else:
            with _Phase() as fit:
                tool.fit(train_x, train_y)
            result |= fit.record("fit") | {"fit_computed_tokens": counter["tokens"]}
        counter["tokens"] = 0
        with _Phase() as predict:
            predictions = tool.predict(test_x)
        result |= predict.record("predict") | {"predict_computed_tokens": counter["tokens"]}
    result["ceiling_after_gflops"] = measure_ceiling(tool.precision)
    predictions = np.asarray(predictions)
    if spec["tool"] not in PREDICT_ONLY:
        # Random weights: accuracy is near chance; it only shows the tool ran end to end.
        result["accuracy"] = float(np.mean(predictions == np.asarray(test_y)))
    result["n_predictions"] = len(predictions)
    return result


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    load_before = os.getloadavg()
    if spec["kind"] == "tool":
        result = run_tool(spec)
    elif spec["kind"] == "search":
        from _extras import run_search

        result = run_search(spec)
    elif spec["kind"] == "memory":
        from _extras import run_memory

        result = run_memory(spec)
    elif spec["kind"] == "zero_shot":
        from _zero_shot import run_zero_shot

        result = run_zero_shot(spec)
    elif spec["kind"] == "modes":
        from _extras import run_modes

        result = run_modes(spec)
    else:
        raise ValueError(f"unknown job kind {spec['kind']!r}")
    gc.collect()
    result |= {
        "spec": spec,
        "threads": torch.get_num_threads(),
        "loadavg_before": load_before[0],
        "loadavg_after": os.getloadavg()[0],
    }
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
