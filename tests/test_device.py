"""Training on a CUDA device (skipped where torch finds none), and CUDA models on the CPU."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor, save

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
PARAMS = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=40, random_state=0,
              dropout=0.2, batch_norm=True)


@cuda
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_fit_and_predict_on_cuda(two_task_data, device):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size.astype(str)])
    est = MultiTaskNetClassifier(**PARAMS, device=device).fit(X, y)
    assert all(p.is_cuda for p in est.net_.module_.parameters())
    proba = est.predict_proba(X)
    assert all(isinstance(p, np.ndarray) for p in proba)
    assert est.score(X, y) > 0.85
    again = MultiTaskNetClassifier(**PARAMS, device=device).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X)[1], proba[1], rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X)[1], proba[1])


@cuda
def test_cuda_matches_cpu_quality(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([X[:, 0] * 3 + X[:, 1], size * 100.0])
    scores = {
        device: MultiTaskNetRegressor(**PARAMS, device=device).fit(X, y).score(X, y)
        for device in ("cpu", "cuda")
    }
    assert scores["cuda"] > 0.8
    assert abs(scores["cuda"] - scores["cpu"]) < 0.05


# Unpickling and loading where torch finds no CUDA device: a fresh process
# with CUDA hidden reads the pickled and the saved model and writes the
# probabilities of each.
NO_CUDA_SCRIPT = """
import pickle, sys, warnings
import numpy as np
import torch
import sklearn_mtl
assert not torch.cuda.is_available()
pickle_path, saved_path, X_path, out_path = sys.argv[1:]
X = np.load(X_path)
probabilities = []
for kind, path in (("pickle", pickle_path), ("load", saved_path)):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "pickle":
            with open(path, "rb") as f:
                est = pickle.load(f)
        else:
            est = sklearn_mtl.load(path)
    assert str(est.net_.device) == "cpu", (kind, est.net_.device)
    assert all(not p.is_cuda for p in est.net_.module_.parameters()), kind
    messages = [str(w.message) for w in caught]
    assert any("CUDA" in m for m in messages), (kind, messages)
    probabilities.append(np.concatenate(est.predict_proba(X), axis=1))
np.save(out_path, np.stack(probabilities))
"""


def _probabilities_without_cuda(tmp_path, est, X):
    """Probabilities of ``est`` pickled, and saved, then read with CUDA hidden."""
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(est, f)
    save(est, tmp_path / "model.pt")
    script = tmp_path / "no_cuda.py"
    script.write_text(NO_CUDA_SCRIPT)
    np.save(tmp_path / "X.npy", X)
    paths = [tmp_path / name for name in ("model.pkl", "model.pt", "X.npy", "proba.npy")]
    done = subprocess.run(
        [sys.executable, str(script), *map(str, paths)],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return np.load(paths[-1])


@cuda
def test_cuda_model_predicts_on_a_machine_without_cuda(tmp_path, two_task_data):
    X, colour, size = two_task_data
    est = MultiTaskNetClassifier(**PARAMS, device="cuda").fit(X, np.column_stack([colour, size]))
    assert all(p.is_cuda for p in est.net_.module_.parameters())
    expected = np.concatenate(est.predict_proba(X), axis=1)
    for proba in _probabilities_without_cuda(tmp_path, est, X):
        np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-5)


def test_recorded_cuda_device_falls_back_to_cpu(tmp_path, two_task_data):
    """The fallback itself, on any machine: files whose recorded device is cuda.

    The weights are CPU tensors here (the model is fitted on the CPU and then
    marked as a CUDA one), so this runs the no-CUDA path of unpickling and of
    ``load`` (the warning, ``net_`` on the CPU, the same predictions) but not
    the move of CUDA tensors, which the test above covers on a GPU.
    """
    X, colour, size = two_task_data
    params = {**PARAMS, "max_iter": 5}
    est = MultiTaskNetClassifier(**params).fit(X, np.column_stack([colour, size]))
    expected = np.concatenate(est.predict_proba(X), axis=1)
    est.set_params(device="cuda")
    est.net_.device = "cuda"
    for proba in _probabilities_without_cuda(tmp_path, est, X):
        np.testing.assert_array_equal(proba, expected)
