"""Hooks that sphinx-gallery calls around each example it runs.

sphinx-gallery runs an example with ``sys.argv = [path] + reset_argv(...)``;
every example takes ``--quick`` (a few epochs on a few rows, as
``tests/test_examples.py`` runs them), which keeps the build short.
"""

import os
from pathlib import Path

import sklearn

# scikit-learn's configuration before any example runs.
_SKLEARN_CONFIG = sklearn.get_config()

# Examples cheap enough to run in full (seconds), so that the gallery shows
# the real picture rather than a few epochs of it.
FULL = {"plot_learning_curves.py"}


def reset_argv(gallery_conf, script_vars):
    """Command-line arguments of one example in the documentation build.

    ``SKLEARN_MTL_GALLERY=full`` runs every example in full,
    ``SKLEARN_MTL_GALLERY=quick`` every one with ``--quick``; by default the
    examples in ``FULL`` run in full and the others with ``--quick``.
    """
    name = Path(script_vars["src_file"]).name
    mode = os.environ.get("SKLEARN_MTL_GALLERY", "")
    if mode not in ("", "full", "quick"):
        raise ValueError(
            f"SKLEARN_MTL_GALLERY must be 'full', 'quick' or unset; got {mode!r}."
        )
    argv = [] if mode == "full" or (not mode and name in FULL) else ["--quick"]
    pictures = {
        "plot_learning_curves.py": "learning_curves.png",
        "plot_task_affinity.py": "task_affinity.png",
    }
    if name in pictures:
        # Its PNG goes next to the generated page, not into examples/.
        target = Path(script_vars["target_file"]).with_name(pictures[name])
        argv += ["--output", str(target)]
    return argv


def reset_sklearn(gallery_conf, fname):
    """Undo an example's ``sklearn.set_config`` (metadata routing) for the next."""
    sklearn.set_config(**_SKLEARN_CONFIG)
