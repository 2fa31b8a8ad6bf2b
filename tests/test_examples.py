"""Every script in examples/ runs to the end in its quick mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_every_example_is_collected():
    assert {p.name for p in EXAMPLES} >= {
        "demo.py", "plot_ensembles.py", "plot_learning_curves.py",
        "plot_task_affinity.py",
    }


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_in_quick_mode(script, tmp_path):
    if script.name.startswith(("plot_learning", "plot_task_affinity")):
        pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        # One thread each: scikit-learn's OpenMP pool and torch's spinning
        # side by side on a small CI machine make the fits ten times slower.
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "the example printed nothing"
    pngs = {"plot_learning_curves.py": "learning_curves.png",
            "plot_task_affinity.py": "task_affinity.png"}
    if script.name in pngs:
        png = tmp_path / pngs[script.name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
