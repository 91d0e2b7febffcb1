"""User documentation speaks of the package, its measurements and its machines, nothing else.

No page, example or public docstring refers to how the work was organised: no issue numbers,
no "the issue", no commit hashes. (A commit hash is a run of 7 to 40 hexadecimal characters
with both letters and digits; the demo's temporary folder names are shown as ``...``.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").glob("*.py")),
    *sorted((ROOT / "examples").glob("*.rst")),
    ROOT / "README.md",
]
MODULES = sorted((ROOT / "sklearn_gpt2").rglob("*.py"))
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues?\s*#?\d+", re.I),
    "'the issue'": re.compile(r"\bthe issue(?:'s)?\b", re.I),
    "a commit hash": re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"),
    "a target from planning": re.compile(r"\btargets? (?:of|≥|>=)|\b\d+% target\b", re.I),
}


def findings(text: str) -> list[str]:
    found = []
    for what, pattern in FORBIDDEN.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"line {line}: {what}: {match.group(0)!r}")
    return found


def docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [
        tree,
        *(
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        ),
    ]
    return "\n".join(ast.get_docstring(node) or "" for node in nodes)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_pages_have_no_internal_references(page):
    assert not findings(page.read_text(encoding="utf-8")), findings(page.read_text("utf-8"))


@pytest.mark.parametrize("module", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_docstrings_have_no_internal_references(module):
    assert not findings(docstrings(module))


def test_the_check_catches_what_it_should():
    assert findings("as asked in issue 3, item 4") and findings("since f7d539b;")
    assert findings("the 10x the issue hoped for") and findings("fit (target ≥ 50%)")
    assert not findings("a SHA-256 of every file; 1e-5; float32; the target's directory")
