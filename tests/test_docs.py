"""The documentation builds with warnings as errors, with a page for every public name.

The build runs on a copy of ``docs/``, ``examples/`` and ``CHANGES.md`` in a
temporary directory, so that it starts clean (every gallery example runs) and
leaves the checkout's ``docs/`` alone. It takes about 30-50 s on 2 cores.
"""

import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_mtl
import sklearn_mtl.inspection
import sklearn_mtl.metrics

ROOT = Path(__file__).parents[1]
DOCS_NEEDS = [
    "sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "myst_parser"
]
BUILD_OUTPUTS = ["_build", "generated", "auto_examples", "sg_execution_times.rst"]

@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """Build the HTML docs once; the path of the built site."""
    for module in DOCS_NEEDS + ["matplotlib"]:
        pytest.importorskip(
            module, reason=f"building the docs needs {module}: pip install -e '.[docs]'"
        )
    tree = tmp_path_factory.mktemp("docs_tree")
    shutil.copytree(
        ROOT / "docs", tree / "docs", ignore=shutil.ignore_patterns(*BUILD_OUTPUTS)
    )
    shutil.copytree(ROOT / "examples", tree / "examples")
    shutil.copy(ROOT / "CHANGES.md", tree / "CHANGES.md")
    out = tree / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(tree / "docs"), str(out)],
        check=False, cwd=tree, capture_output=True, text=True, timeout=900,
        # This checkout's package, and one thread as in tests/test_examples.py.
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, (done.stdout[-2000:] + done.stderr[-4000:])
    return out


PUBLIC = [f"sklearn_mtl.{name}" for name in sklearn_mtl.__all__] + [
    f"sklearn_mtl.metrics.{name}" for name in sklearn_mtl.metrics.__all__
] + [
    f"sklearn_mtl.inspection.{name}" for name in sklearn_mtl.inspection.__all__
]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_an_api_page(html, name):
    page = html / "generated" / f"{name}.html"
    assert page.is_file(), f"no API page for {name}: add it to docs/api.rst"
    text = page.read_text(encoding="utf-8")
    # The docstring was rendered (numpydoc sections), not an empty stub.
    assert f'id="{name}"' in text
    module, _, attribute = name.rpartition(".")
    obj = getattr(importlib.import_module(module), attribute)
    if inspect.signature(obj).parameters:
        assert "Parameters" in text
    else:  # nothing to list: the summary and See Also are the page
        assert "See also" in text or "See Also" in text


def test_api_index_links_every_public_name(html):
    text = (html / "api.html").read_text(encoding="utf-8")
    for name in PUBLIC:
        assert f"generated/{name}.html" in text, name


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (ROOT / "examples").glob("*.py"))
)
def test_every_example_has_a_gallery_page(html, script):
    page = html / "auto_examples" / script.replace(".py", ".html")
    assert page.is_file(), f"no gallery page for examples/{script}"
    assert "sphx-glr-example-title" in page.read_text(encoding="utf-8")


def test_gallery_shows_the_learning_curves(html):
    page = html / "auto_examples" / "plot_learning_curves.html"
    page = page.read_text(encoding="utf-8")
    image = "sphx_glr_plot_learning_curves_001.png"
    assert image in page
    assert (html / "_images" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The example's run is on the page (skorch's epoch table).
    assert "train_loss_task0" in page


def test_user_guide_and_changelog_are_built(html):
    pages = ["getting_started", "model", "results", "dropout", "architecture",
             "ensembles", "speed", "persistence", "decisions"]
    for page in pages:
        assert (html / "user_guide" / f"{page}.html").is_file(), page
    changes = (html / "changes.html").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changes and "Unreleased" in changes
