"""Training on a CUDA device; skipped where torch finds none."""

import pickle

import numpy as np
import pytest
import torch

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor

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
