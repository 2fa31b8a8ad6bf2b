import numpy as np
import pytest

from sklearn_mtl.metrics import per_task_scores


def test_per_task_scores_skip_missing_labels():
    y_true = np.array([["a", 1.0], [None, 2.0], ["b", np.nan], ["b", 4.0]], dtype=object)
    y_pred = np.array([["a", 1.0], ["a", 2.0], ["a", 9.0], ["b", 4.0]], dtype=object)
    scores = per_task_scores(y_true, y_pred, ["classification", "regression"])
    assert scores[0] == pytest.approx(2 / 3)
    assert scores[1] == pytest.approx(1.0)


def test_per_task_scores_nan_for_unlabelled_task_and_errors():
    y_true = np.array([[np.nan, 1.0], [np.nan, 0.0]])
    scores = per_task_scores(y_true, y_true, ["regression", "classification"])
    assert np.isnan(scores[0]) and scores[1] == 1.0
    with pytest.raises(ValueError, match="task_types must hold"):
        per_task_scores(y_true, y_true, ["regression", "ranking"])
    with pytest.raises(ValueError, match="same tasks"):
        per_task_scores(y_true, y_true, ["regression"])
