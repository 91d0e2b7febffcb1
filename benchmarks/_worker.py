"""Run one benchmark spec in this fresh process and write its result as JSON.

``python -m benchmarks._worker SPEC.json`` (the harness writes the spec). A fresh process per
spec keeps the tools from sharing caches, warm-ups or memory: each job's peak memory is its own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(spec_path: str) -> None:
    from ._harness import execute
    from .jobs import JOBS

    spec = json.loads(Path(spec_path).read_text())
    execute(JOBS[spec["kind"]], spec)


if __name__ == "__main__":
    main(sys.argv[1])
