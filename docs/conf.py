"""Sphinx configuration: the sklearn-gpt2 site (markdown pages, API reference, example gallery).

Build it from the repository root with::

    python -m sphinx -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

import sklearn_gpt2

# The gallery runs offline on the demo checkpoint; never look anything up on the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
templates_path = ["_templates"]

# Links to other projects need the network; the build must work offline, so none are fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    # Scripts named plot_*.py run at build time; others (the Dask example) are only shown.
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
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
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
