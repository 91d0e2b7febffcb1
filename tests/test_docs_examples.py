"""Every Python block of every documentation page runs offline and shows what the page says.

Blocks written as ``>>>`` sessions are run with doctest, so their printed output is compared
with the page. The other blocks of a page run in order, as one script, in a fresh process and
an empty folder: a block may use what an earlier block of its page defined. Where a page shows
a fragment, the names such fragments take for granted (``texts``, ``labels``, ``new_texts``)
come from ``load_demo()``, and the hub name ``"gpt2"`` resolves to a folder of that name
holding the tiny demo checkpoint (transformers looks for a local folder first), as does
``"gpt2-local"``, the pages' name for a local copy of it; so the code runs exactly as printed.

A block that cannot run here (it starts a cluster, or is a signature) is preceded on the page by
a line ``% not run by the tests: <reason>``; the reason is required and the number of such
blocks is kept small.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
SKIP = re.compile(r"^% not run by the tests: (?P<reason>\S.*)$")
MOST_SKIPPED = 8

PREAMBLE = """
import os, shutil
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
torch.set_num_threads(1)
from sklearn_gpt2.datasets import load_demo, make_demo_checkpoint
for name in ("gpt2", "gpt2-local"):  # the hub name, and the docs' name for a local copy
    if not os.path.isdir(name):
        shutil.copytree(make_demo_checkpoint(), name)
texts, labels = load_demo()
new_texts = ["a wonderful film", "dull and far too long"]
"""


def blocks(page: Path) -> list[tuple[str | None, str]]:
    """The page's python blocks, each with the reason it is not run (None: it is run)."""
    found = []
    for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
        skip = SKIP.match(match["before"].strip())
        found.append((skip["reason"] if skip else None, match["code"]))
    return found


def test_few_blocks_are_left_out():
    skipped = [(page.name, reason) for page in PAGES for reason, _ in blocks(page) if reason]
    assert len(skipped) <= MOST_SKIPPED, skipped


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if any(reason is None for reason, _ in blocks(p))],
    ids=lambda p: p.stem,
)
def test_python_blocks_run(page, tmp_path):
    sessions = [code for reason, code in blocks(page) if reason is None and ">>>" in code]
    scripts = [code for reason, code in blocks(page) if reason is None and ">>>" not in code]
    if sessions:
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        result = doctest.testfile(str(page), module_relative=False, optionflags=flags)
        assert result.failed == 0, f"{page.name}: {result.failed} example(s) differ from the page"
        assert result.attempted > 0
    if scripts:
        script = PREAMBLE + "\n".join(textwrap.dedent(code) for code in scripts)
        (tmp_path / "page.py").write_text(script, encoding="utf-8")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        result = subprocess.run([sys.executable, "page.py"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, f"{page.name}:\n{result.stderr[-4000:]}"
    shutil.rmtree(tmp_path, ignore_errors=True)
