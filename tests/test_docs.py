"""The documentation site builds without a single warning, with its gallery run and rendered.

This is the docs build command of the README (``python -m sphinx -W -b html docs
docs/_build/html``), run on a copy of ``docs/`` and ``examples/`` in a temporary folder, so
every gallery example is executed afresh: an example that the package no longer supports
fails here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
TOOLS = ["sphinx", "numpydoc", "pydata_sphinx_theme", "sphinx_gallery", "myst_parser", "matplotlib"]
# The whole CI run must stay well under 15 minutes on a 2-core machine; the build takes well
# under a minute there. Far beyond that, something (an example) has grown too expensive.
BUILD_BUDGET_S = 300

missing = [name for name in TOOLS if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(missing),
    reason=f"the docs build needs {', '.join(missing)}: pip install -e '.[docs]' (Python >= 3.11)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    # Build from a copy of docs/ and examples/, so that the gallery and API pages generated
    # into the source tree never meet those of a build the developer runs meanwhile.
    source = out / "src"
    ignore = shutil.ignore_patterns(
        "_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__"
    )
    shutil.copytree(DOCS, source / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", source / "examples", ignore=ignore)
    html = out / "html"
    command = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
        "-d", str(out / "doctrees"),
                str(source / "docs"), str(html),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"docs build failed (exit {result.returncode}):\n{log[-8000:]}"
    assert "build succeeded" in log
    print(f"docs build: {seconds:.1f} s")
    assert seconds < BUILD_BUDGET_S, f"the docs build took {seconds:.0f} s"
    executed = re.search(r"executed (\d+) out of (\d+) files", log)
    assert executed, log[-3000:]
    assert int(executed.group(1)) == len(EXAMPLES), executed.group(0)
    return html


def test_every_markdown_page_is_rendered(site):
    pages = sorted(path.stem for path in DOCS.glob("*.md"))
    assert "index" in pages
    for page in pages:
        assert (site / f"{page}.html").is_file(), f"docs/{page}.md was not rendered"
    # Each page is reachable from the navigation (the toctree of index.md).
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in [*pages, "auto_examples/index"]:
        if page != "index":
            assert f'href="{page}.html' in index, f"{page} is missing from the navigation"


def test_api_reference_is_generated_from_the_docstrings(site):
    page = (site / "generated" / "sklearn_gpt2.GPT2SequenceClassifier.html").read_text(
        encoding="utf-8"
    )
    # Parameters, attributes and methods come from the docstring, rendered by numpydoc.
    for text in ["validation_fraction", "history_", "predict_proba", "save_pretrained"]:
        assert text in page, f"{text!r} is missing from the class's page"
    assert 'id="sklearn_gpt2.GPT2SequenceClassifier.fit"' in page
    for name in ["clear_checkpoint_cache", "datasets.load_demo", "datasets.make_demo_checkpoint"]:
        assert (site / "generated" / f"sklearn_gpt2.{name}.html").is_file(), name
    api = (site / "api.html").read_text(encoding="utf-8")
    assert 'href="generated/sklearn_gpt2.GPT2SequenceClassifier.html' in api


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_gallery_example_ran_and_shows_its_figures(site, example):
    page = site / "auto_examples" / f"{example.stem}.html"
    text = page.read_text(encoding="utf-8")
    images = re.findall(rf'<img src="\.\./_images/(sphx_glr_{example.stem}_\d+\.png)"', text)
    assert images, f"{page.name} shows no figure"
    for image in images:
        assert (site / "_images" / image).stat().st_size > 5_000, f"{image} is (nearly) empty"
    assert "Traceback" not in text, f"{page.name} shows a traceback"
    assert "sphx-glr-script-out" in text, f"{page.name} shows no output"


# ---------------------------------------------------------------- layout and navigation
# The order a reader meets the pages in: the site's header follows the toctree of index.md.
READING_ORDER = [
    "quickstart", "user_guide", "choosing", "prompting", "long_texts", "auto_examples/index",
    "api", "cli",
    "deploying", "scaling_out", "benchmarks", "architecture",
]  # fmt: skip
TOP_LEVEL = [path.stem for path in sorted(DOCS.glob("*.md"))]
WITH_SECTIONS = ["api", "auto_examples/index", "auto_examples/plot_tutorial",
                 "generated/sklearn_gpt2.GPT2SequenceClassifier"]  # fmt: skip


def test_navigation_is_in_reading_order(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    header = index[: index.index('class="bd-main"')]
    links = re.findall(r'class="nav-link[^"]*" href="([^"#]+)\.html"', header)
    assert links, "no navigation links in the header"
    places = [links.index(page) for page in READING_ORDER]
    assert places == sorted(places), [links[i] for i in sorted(places)]


def test_page_titles_are_unique(site):
    titles = {}
    for page in [*TOP_LEVEL, "auto_examples/index"]:
        html = (site / f"{page}.html").read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()
        assert title not in titles, f"{page} and {titles[title]} share the title {title!r}"
        titles[title] = page


@pytest.mark.parametrize("page", [page for page in TOP_LEVEL if page not in WITH_SECTIONS])
def test_top_level_pages_have_no_empty_left_sidebar(site, page):
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    # The theme keeps the sidebar only for small screens (its menu) when it has no items.
    sidebar = re.search(r'<div id="pst-primary-sidebar" class="([^"]*)"', html)
    assert sidebar and "hide-on-wide" in sidebar.group(1), f"{page} shows a left sidebar"


@pytest.mark.parametrize("page", WITH_SECTIONS)
def test_pages_with_sub_pages_keep_their_navigation(site, page):
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    sidebar = re.search(r'<div id="pst-primary-sidebar" class="([^"]*)"', html)
    assert sidebar and "hide-on-wide" not in sidebar.group(1), page
    assert "Section Navigation" in html


def test_api_titles_are_the_short_names(site):
    for name in ["GPT2SequenceClassifier", "GPT2PromptClassifier"]:
        html = (site / "generated" / f"sklearn_gpt2.{name}.html").read_text(encoding="utf-8")
        assert re.search(rf"<h1>{name}<a", html), f"the {name} page's title is not {name!r}"


def test_benchmark_figure_is_embedded_with_its_ratios(site):
    html = (site / "benchmarks.html").read_text(encoding="utf-8")
    assert re.search(r'<img[^>]+src="_images/benchmark\.png"', html), "no benchmark figure"
    assert "2.9x" in html and "Results at a glance" in html
    assert (site / "_images" / "benchmark.png").stat().st_size > 20_000
