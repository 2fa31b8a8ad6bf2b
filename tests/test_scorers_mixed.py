"""Per-task scorers for a model that mixes classification and regression tasks."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, cross_validate

from sklearn_mtl import MultiTaskNet
from sklearn_mtl.metrics import make_task_scorer, make_task_scorers, per_task_roc_auc

FAST = dict(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=30, random_state=0)


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 4))
    Y = pd.DataFrame(
        {
            "sex": np.where(X[:, 0] > 0, "M", "F"),
            "mass": 3.0 * X[:, 1] + X[:, 2] + 0.1 * rng.normal(size=240),
            "species": np.array(["a", "b", "c"])[(X[:, 3] > -0.4).astype(int) + (X[:, 3] > 0.4)],
        }
    )
    return X, Y, MultiTaskNet(**FAST).fit(X, Y)


def test_mixed_scorers_score_each_task_by_its_kind(mixed):
    X, Y, net = mixed
    kinds = net.task_types_
    assert kinds == ["classification", "regression", "classification"]
    scoring = make_task_scorers(["accuracy", "roc_auc", "r2"], task_types=kinds)
    assert sorted(scoring) == [
        "mean_accuracy", "mean_r2", "mean_roc_auc", "mean_score",
        "task0_accuracy", "task0_roc_auc", "task1_r2", "task2_accuracy", "task2_roc_auc",
    ]
    pred = net.predict(X)
    assert scoring["task0_accuracy"](net, X, Y) == pytest.approx(np.mean(pred[:, 0] == Y["sex"]))
    r2 = scoring["task1_r2"](net, X, Y)
    assert r2 > 0.8
    aucs = per_task_roc_auc(Y[["sex", "species"]], net.predict_proba(X), [net.classes_[0], net.classes_[2]])
    assert scoring["mean_roc_auc"](net, X, Y) == pytest.approx(aucs.mean())
    assert scoring["mean_score"](net, X, Y) == pytest.approx(net.score(X, Y))
    results = cross_validate(MultiTaskNet(**FAST), X, Y, cv=KFold(3), scoring=scoring)
    assert results["test_mean_score"].min() > 0.7


def test_a_metric_for_the_other_kind_is_an_error_naming_the_task(mixed):
    X, Y, net = mixed
    kinds = net.task_types_
    with pytest.raises(ValueError, match="'accuracy' scorer is for classification tasks, but task 1"):
        make_task_scorer("accuracy", 1, task_types=kinds)(net, X, Y)
    with pytest.raises(ValueError, match="'r2' scorer is for regression tasks, but task 0"):
        make_task_scorer("r2", 0, task_types=kinds)(net, X, Y)
    # Without the kinds, a wrong metric fails loudly rather than scoring 0.
    with pytest.raises(ValueError, match="non-integral values for task 1 .*task_types="):
        make_task_scorer("accuracy")(net, X, Y)
    with pytest.raises(ValueError, match="Task 0 of y_true is scored as a regression task"):
        make_task_scorer("r2")(net, X, Y)
    with pytest.raises(ValueError, match="probabilities of 2 task.*for the 3 classification"):
        make_task_scorer("roc_auc")(net, X, Y)
    with pytest.raises(ValueError, match="metric='score' scores each task by its kind"):
        make_task_scorer("score")
