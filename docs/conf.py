"""Sphinx configuration of the sklearn_mtl documentation.

Build (from the repository root, warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
from pathlib import Path

# The gallery runs its examples in this process: one OpenMP thread unless the
# caller chose otherwise, as tests/test_examples.py runs them. torch's and
# scikit-learn's thread pools side by side on a small machine make the fits
# many times slower. Set before torch is imported, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
# The package of this checkout, not an installed copy, and the gallery hooks.
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "sphinxext"))

import sklearn_mtl  # noqa: E402

project = "sklearn_mtl"
author = "the sklearn_mtl developers"
copyright = "the sklearn_mtl developers"
release = sklearn_mtl.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "sklearn_refs",
]

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sphinxext"]
default_role = "literal"
pygments_style = "sphinx"
# Quotes and ellipses only: "--quick" must not turn into an en dash.
smartquotes_action = "qe"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
# "fit()" rather than "MultiTaskNetClassifier.fit()" in the page contents.
toc_object_entries_show_parents = "hide"
# The class pages list their methods themselves (see _templates/autosummary).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_attributes_as_param_list = True

# -- Markdown (the changelog is CHANGES.md) ----------------------------------
myst_heading_anchors = 3

# -- Example gallery ---------------------------------------------------------
# Files named plot_*.py run during the build; each gets the argv chosen by
# gallery_hooks.reset_argv (``--quick`` unless it is cheap to run in full).
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "reset_argv": "gallery_hooks.reset_argv",
    # Each API page lists the examples that use its object.
    "doc_module": ("sklearn_mtl",),
    "backreferences_dir": "generated/backreferences",
    "reset_modules": ("matplotlib", "gallery_hooks.reset_sklearn"),
    "reset_modules_order": "both",
    "download_all_examples": False,
    # The scripts parse sys.argv, which a notebook kernel fills with its own
    # arguments: offer the .py files only.
    "notebook_extensions": set(),
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "min_reported_time": 1,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_mtl {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # The results' wide tables get the width of the in-page contents.
    "secondary_sidebar_items": {"**": ["page-toc"], "user_guide/results": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "changes": []}
html_context = {"default_mode": "light"}
