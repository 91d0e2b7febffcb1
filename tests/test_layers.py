"""The package's layers stand in a strict order, checked on the imports read from the source.

grimp reads every import statement, those inside functions included, so a lazy import that
goes back up a layer fails here as any other would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_gpt2"
PYPROJECT = PACKAGE.parent / "pyproject.toml"


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("sklearn_gpt2")


def test_the_import_linter_contract_is_kept():
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        capture_output=True,
        text=True,
        cwd=PYPROJECT.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def _cycles(graph) -> list[list[str]]:
    modules = sorted(m for m in graph.modules if m.startswith("sklearn_gpt2"))
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        path.append(module)
        for target in edges.get(module, ()):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target in edges and not state.get(target):
                visit(target, path)
        path.pop()
        state[module] = 2

    for module in modules:
        if not state.get(module):
            visit(module, [])
    return found


def test_no_module_imports_another_that_imports_it_back(graph):
    assert _cycles(graph) == []


def test_no_module_imports_the_package_root(graph):
    # The root re-exports the estimators: importing it from below would go back up.
    assert sorted(graph.find_modules_that_directly_import("sklearn_gpt2")) == []


def test_leaf_modules_import_nothing_of_the_package(graph):
    for leaf in ("sklearn_gpt2.runtime", "sklearn_gpt2._version"):
        assert graph.find_modules_directly_imported_by(leaf) == set(), leaf


def test_every_folder_is_a_regular_package():
    # import-linter's graph does not see namespace packages: a folder without __init__.py
    # would silently escape the contract.
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert folders
    assert [f for f in folders if not (f / "__init__.py").is_file()] == []


def test_the_row_pipeline_and_manifest_reader_import_no_torch():
    code = (
        "import sys; import sklearn_gpt2.text.rows, sklearn_gpt2.text.runner, "
        "sklearn_gpt2.text.tokenize, sklearn_gpt2.text.validation, "
        "sklearn_gpt2.persistence.manifest; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'skorch') if m in sys.modules); "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_saved_manifest_is_read_and_verified_without_torch():
    saved = PACKAGE.parent / "tests" / "artifacts" / "v0_2_0" / "sequence_lora_dir"
    code = (
        "import sys, pathlib; from sklearn_gpt2.persistence.format import read_manifest, "
        "check_saved_files; d = pathlib.Path(sys.argv[1]); m = read_manifest(d); "
        "check_saved_files(d, m['files']); print(m['params']['tuning'], sorted(m['files'])[0]); "
        "heavy = sorted(x for x in ('torch', 'transformers', 'skorch') if x in sys.modules); "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(saved)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[0] == "lora"


def test_the_architecture_page_names_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).with_suffix("").as_posix()
        if name.endswith("__init__") and name != "__init__":
            continue  # a folder: its modules are named
        if f"`{name}`" not in page and name not in ("__init__",):
            missing.append(name)
    assert missing == []
