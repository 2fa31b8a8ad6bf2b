import numpy as np
import pandas as pd
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


# -- ROC AUC and scorers -------------------------------------------------------

import sklearn  # noqa: E402
from sklearn.metrics import get_scorer, roc_auc_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_validate  # noqa: E402

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor  # noqa: E402
from sklearn_mtl.metrics import (  # noqa: E402
    make_task_scorer,
    make_task_scorers,
    per_task_roc_auc,
)

FAST = dict(
    hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=30, early_stopping=False,
    random_state=0,
)


@pytest.fixture(scope="module")
def tasks():
    """Binary 0/1 task with missing labels, three-class string task, 300 rows."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6))
    binary = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(float)
    binary[::3] = np.nan
    level = np.array(["low", "mid", "high"])[np.digitize(X[:, 1], [-0.5, 0.5])]
    Y = np.empty((300, 2), dtype=object)
    Y[:, 0], Y[:, 1] = binary, level
    Y[::3, 0] = None
    return X, Y


@pytest.fixture(scope="module")
def fitted(tasks):
    X, Y = tasks
    return MultiTaskNetClassifier(**FAST).fit(X, Y)


def test_per_task_roc_auc_matches_scikit_learn_on_labelled_rows(tasks, fitted):
    X, Y = tasks
    proba = fitted.predict_proba(X)
    scores = per_task_roc_auc(Y, proba, fitted.classes_)
    labelled = ~pd.isna(Y[:, 0])
    assert scores[0] == pytest.approx(
        roc_auc_score(Y[labelled, 0].astype(float), proba[0][labelled, 1])
    )
    assert scores[1] == pytest.approx(
        roc_auc_score(Y[:, 1], proba[1], multi_class="ovr", labels=fitted.classes_[1])
    )
    assert 0.85 < scores.min()
    # Without classes the columns follow the sorted labels of y_true.
    np.testing.assert_allclose(per_task_roc_auc(Y, proba), scores)


def test_per_task_roc_auc_undefined_and_errors():
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    one_class = np.array([1.0, 1.0, np.nan])
    assert np.isnan(per_task_roc_auc(one_class, proba, classes=np.array([0.0, 1.0]))[0])
    assert np.isnan(per_task_roc_auc(one_class, proba)[0])
    with pytest.raises(ValueError, match="Task 0 of y_true holds labels array\\(\\[7"):
        per_task_roc_auc(np.array([0, 1, 7]), proba, classes=np.array([0, 1]))
    with pytest.raises(ValueError, match="same tasks; got 1, 2 and 1"):
        per_task_roc_auc(np.array([0, 1, 1]), [proba, proba])


def test_task_scorers_skip_missing_labels(tasks, fitted):
    X, Y = tasks
    accuracy = per_task_scores(Y, fitted.predict(X), ["classification"] * 2)
    auc = per_task_roc_auc(Y, fitted.predict_proba(X), fitted.classes_)
    scoring = make_task_scorers(["accuracy", "roc_auc"], n_tasks=2)
    for t in range(2):
        assert scoring[f"task{t}_accuracy"](fitted, X, Y) == pytest.approx(accuracy[t])
        assert scoring[f"task{t}_roc_auc"](fitted, X, Y) == pytest.approx(auc[t])
    assert scoring["mean_accuracy"](fitted, X, Y) == pytest.approx(fitted.score(X, Y))
    assert scoring["mean_roc_auc"](fitted, X, Y) == pytest.approx(auc.mean())
    weights = np.linspace(0, 1, len(X))
    weighted = per_task_scores(Y, fitted.predict(X), ["classification"] * 2, weights)
    assert scoring["task1_accuracy"](fitted, X, Y, sample_weight=weights) == pytest.approx(
        weighted[1]
    )
    assert weighted[1] != pytest.approx(accuracy[1])


@pytest.mark.parametrize(
    "make_y, builtin",
    [
        (lambda X: X[:, 0] > 0, "roc_auc"),
        (lambda X: np.where(X[:, 0] > 0, "yes", "no"), "roc_auc"),
        (lambda X: np.digitize(X[:, 1], [-0.5, 0.5]), "roc_auc_ovr"),
    ],
)
def test_roc_auc_scorer_agrees_with_scikit_learn_on_one_task(tasks, make_y, builtin):
    X, _ = tasks
    y = make_y(X)
    clf = MultiTaskNetClassifier(**FAST).fit(X, y)
    ours = make_task_scorer("roc_auc", task=0)(clf, X, y)
    assert ours == pytest.approx(get_scorer(builtin)(clf, X, y))
    assert ours > 0.9


def test_roc_auc_scorer_on_binary_tasks_of_every_label_type(tasks):
    X, _ = tasks
    bits = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    for Y in (bits, bits.astype(bool), np.where(bits == 1, "on", "off")):
        clf = MultiTaskNetClassifier(**FAST).fit(X, Y)
        proba = clf.predict_proba(X)
        for t in range(2):
            expected = roc_auc_score(Y[:, t] == clf.classes_[t][1], proba[t][:, 1])
            assert make_task_scorer("roc_auc", t)(clf, X, Y) == pytest.approx(expected)


def test_per_task_scores_in_grid_search_cv_results(tasks):
    X, Y = tasks
    scoring = make_task_scorers(["accuracy", "roc_auc"], n_tasks=2)
    search = GridSearchCV(
        MultiTaskNetClassifier(**FAST),
        {"dropout": [0.0, 0.3]},
        cv=KFold(3),
        scoring=scoring,
        refit="mean_roc_auc",
    ).fit(X, Y)
    results = search.cv_results_
    for name in scoring:
        assert np.all(np.isfinite(results[f"mean_test_{name}"]))
    assert results["mean_test_task0_accuracy"].min() > 0.75
    assert results["mean_test_task1_roc_auc"].min() > 0.85
    np.testing.assert_allclose(
        results["mean_test_mean_accuracy"],
        (results["mean_test_task0_accuracy"] + results["mean_test_task1_accuracy"]) / 2,
    )
    assert search.best_score_ == results["mean_test_mean_roc_auc"].max()


def test_scorers_take_sample_weight_with_and_without_routing(tasks):
    X, Y = tasks
    weights = np.random.RandomState(0).uniform(0.5, 2, size=len(X))
    grid = {"alpha": [1e-4]}
    plain = GridSearchCV(
        MultiTaskNetClassifier(**FAST), grid, cv=KFold(3),
        scoring=make_task_scorers("accuracy", 2), refit="mean_accuracy",
    ).fit(X, Y, sample_weight=weights)
    with sklearn.config_context(enable_metadata_routing=True):
        scoring = {
            name: scorer.set_score_request(sample_weight=True)
            for name, scorer in make_task_scorers("accuracy", 2).items()
        }
        routed = GridSearchCV(
            MultiTaskNetClassifier(**FAST).set_fit_request(sample_weight=True),
            grid, cv=KFold(3), scoring=scoring, refit="mean_accuracy",
        ).fit(X, Y, sample_weight=weights)
    for name in scoring:
        key = f"mean_test_{name}"
        assert routed.cv_results_[key] == pytest.approx(plain.cv_results_[key])
    assert plain.cv_results_["mean_test_mean_accuracy"][0] > 0.8


def test_r2_scorer_for_regression_tasks(tasks):
    X, _ = tasks
    Y = np.column_stack([X[:, 0] * 3, X[:, 1] - X[:, 2]])
    Y[::4, 1] = np.nan
    results = cross_validate(
        MultiTaskNetRegressor(**FAST), X, Y, cv=KFold(3), scoring=make_task_scorers("r2", 2)
    )
    assert results["test_task0_r2"].min() > 0.8 and results["test_task1_r2"].min() > 0.8
    with pytest.raises(AttributeError, match="predict_proba"):
        make_task_scorer("roc_auc")(MultiTaskNetRegressor(**FAST).fit(X, Y), X, Y)


def test_scorer_factory_errors(tasks, fitted):
    X, Y = tasks
    with pytest.raises(ValueError, match="metric must be one of \\['accuracy', 'r2', 'roc_auc', 'score'\\]; got 'f1'"):
        make_task_scorer("f1")
    with pytest.raises(ValueError, match="task must be a column index of y .* got -1"):
        make_task_scorer("accuracy", task=-1)
    with pytest.raises(ValueError, match="n_tasks must be a positive int; got 0"):
        make_task_scorers("accuracy", 0)
    with pytest.raises(ValueError, match="scorer is for task 2 but y has 2 tasks"):
        make_task_scorer("accuracy", task=2)(fitted, X, Y)


def test_mean_score_is_the_mean_over_the_scored_tasks():
    from sklearn_mtl.metrics import mean_score

    scores = np.random.RandomState(0).uniform(-1, 1, size=300)
    scores[::7] = np.nan
    assert mean_score(scores) == pytest.approx(np.nanmean(scores), rel=1e-15)
    assert mean_score([0.5, np.nan, 0.25]) == 0.375
    assert np.isnan(mean_score([np.nan, np.nan])) and np.isnan(mean_score([]))
    assert type(mean_score(np.float32([0.5]))) is float
    with np.errstate(invalid="ignore", over="ignore"):  # as numpy's mean: no error
        assert mean_score([-1e308, -1e308]) == -np.inf
        assert np.isnan(mean_score([np.inf, -np.inf]))
