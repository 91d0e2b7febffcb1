"""Sphinx configuration: the sklearn-gpt2 site (markdown pages, API reference, example gallery).

Build it from the repository root with::

    python -m sphinx -W -b html docs docs/_build/html

and look at it page by page with ``python docs/screenshots.py`` (headless Chromium; the PNGs
go to docs/_build/screenshots/).
"""

from __future__ import annotations

import os
from pathlib import Path

# Set before torch and transformers are imported: tqdm reads its TQDM_* settings at import.
# The gallery runs offline on the demo checkpoint; never look anything up on the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Progress bars redraw their line with carriage returns, which a web page cannot show; the
# epoch log of verbose=1 stays. (A plain run of an example on a terminal shows the bars.)
os.environ.setdefault("TQDM_DISABLE", "1")

import torch

import sklearn_gpt2

# The demo model is tiny: on a small CPU a second thread costs more in synchronisation than
# it computes, so the gallery (run in this process) uses one.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]

project = "sklearn-gpt2"
author = "the sklearn-gpt2 developers"
copyright = "the sklearn-gpt2 developers"
release = version = sklearn_gpt2.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**/*.ipynb_checkpoints", "auto_examples/*.md5"]

# Markdown pages link to headings as page.md#heading-slug; generate those anchors.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# API reference: autosummary writes one page per object into generated/; numpydoc renders the
# docstrings. Only the members listed in the class template are documented, so skorch's own
# (non-numpydoc) methods do not enter the reference.
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
# numpydoc gives the types in words; annotations in the signatures would repeat them.
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
templates_path = ["_templates"]

# Links to other projects need the network; the build must work offline, so none are fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# The gallery's order: the tutorial first, then the scikit-learn tools, then the rest.
GALLERY_ORDER = [
    "plot_tutorial.py",
    "plot_cross_validation.py",
    "plot_grid_search.py",
    "plot_save_load.py",
    "dask_grid_search.py",
]


class GalleryOrder:
    """Sort key of the gallery: the files of ``GALLERY_ORDER`` in that order, then by name."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        """Return the key of ``filename``: its place in ``GALLERY_ORDER``, then its name."""
        name = Path(filename).name
        rank = GALLERY_ORDER.index(name) if name in GALLERY_ORDER else len(GALLERY_ORDER)
        return rank, name

    def __repr__(self) -> str:
        # Sphinx compares config values by repr to decide whether to rebuild.
        return f"GalleryOrder({GALLERY_ORDER})"


# The sort key above is a class, which Sphinx cannot pickle into its cache of the config; it
# says so in a warning. sphinx-gallery documents silencing it: the cost is a full re-read of
# the sources on every build, which the test suite does anyway.
suppress_warnings = ["config.cache"]

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    # Scripts named plot_*.py run at build time; others (the Dask example) are only shown.
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": GalleryOrder,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    "write_computation_times": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-gpt2 {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # The header lists the first pages of the navigation; the rest are under "More".
    "header_links_before_dropdown": 4,
    # The contents on the right, except on the page of wide result tables, which needs the room.
    "secondary_sidebar_items": {"**": ["page-toc"], "benchmark_results": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False

# The left sidebar lists the pages below the current one in the navigation. Top-level pages
# have none, so it stays off there (an empty column otherwise); it is on for the pages that
# have sub-pages: the API reference and the gallery. Sphinx warns when two wildcard patterns
# match a page, so these pages are named one by one.
API_PAGES = [
    "GPT2SequenceClassifier",
    "GPT2PromptClassifier",
    "clear_checkpoint_cache",
    "datasets.load_demo",
    "datasets.make_demo_checkpoint",
    "datasets.build_tiny_gpt2",
]
SECTION_PAGES = [
    "api",
    *(f"generated/sklearn_gpt2.{name}" for name in API_PAGES),
    "auto_examples/index",
    *(f"auto_examples/{path.stem}" for path in sorted((ROOT / "examples").glob("*.py"))),
]
html_sidebars = {"**": [], **{page: ["sidebar-nav-bs"] for page in SECTION_PAGES}}
