"""The defaults chosen by the defaults study (README "Decisions")."""

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._config import AUTO_EARLY_STOPPING_ROWS

FAST = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0)


def rows(n, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)


@pytest.mark.parametrize("estimator", [MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet])
def test_defaults_that_differ_from_mlp(estimator):
    params, mlp = estimator().get_params(), MLPClassifier().get_params()
    assert params["early_stopping"] == "auto" and mlp["early_stopping"] is False
    assert params["n_iter_no_change"] == 20 and mlp["n_iter_no_change"] == 10
    for name in ("hidden_layer_sizes", "alpha", "learning_rate_init", "batch_size",
                 "max_iter", "validation_fraction", "tol"):
        assert params[name] == mlp[name], name


def test_auto_early_stopping_from_the_row_threshold():
    X, y = rows(AUTO_EARLY_STOPPING_ROWS)
    on = MultiTaskNetClassifier(**FAST).fit(X, y)
    assert on.early_stopping_ is True
    assert len(on.validation_scores_) == on.n_iter_ and on.best_loss_ is None
    # Same rows, one fewer: MLP's rule on the training loss.
    off = MultiTaskNetClassifier(**FAST).fit(X[1:], y[1:])
    assert off.early_stopping_ is False
    assert off.validation_scores_ is None and off.best_loss_ == min(off.loss_curve_)


def test_auto_counts_rows_with_a_positive_weight():
    X, y = rows(AUTO_EARLY_STOPPING_ROWS + 10)
    weight = np.ones(len(y))
    weight[:20] = 0.0  # dropped before training: 190 rows remain
    est = MultiTaskNetClassifier(**FAST).fit(X, y, sample_weight=weight)
    assert est.early_stopping_ is False


def test_auto_equals_explicit_early_stopping():
    X, y = rows(300)
    auto = MultiTaskNetClassifier(**FAST).fit(X, y)
    explicit = MultiTaskNetClassifier(**FAST, early_stopping=True).fit(X, y)
    assert auto.validation_scores_ == explicit.validation_scores_
    np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))


def test_explicit_false_keeps_mlp_rule_on_many_rows():
    X, y = rows(400)
    est = MultiTaskNetClassifier(**FAST, early_stopping=False).fit(X, y)
    assert est.early_stopping_ is False and est.validation_scores_ is None


def test_partial_fit_under_auto_trains_every_row():
    X, y = rows(400)
    est = MultiTaskNetClassifier(**FAST).partial_fit(X, y, classes=[0, 1])
    assert est.early_stopping_ is False and est.n_iter_ == 1
    assert est.net_.n_train_rows == 400
    with pytest.raises(ValueError, match="early_stopping=True"):
        MultiTaskNetClassifier(**FAST, early_stopping=True).partial_fit(X, y, classes=[0, 1])


def test_early_stopping_rejects_other_strings():
    X, y = rows(50)
    with pytest.raises(ValueError, match="early_stopping"):
        MultiTaskNetClassifier(early_stopping="yes").fit(X, y)


def test_auto_splits_unstratified_when_a_class_is_too_small():
    X, y = rows(250)
    y[0] = 2  # a class of one row cannot be stratified
    est = MultiTaskNetClassifier(**FAST).fit(X, y)
    assert est.early_stopping_ is True and list(est.classes_) == [0, 1, 2]
    # Asked for explicitly, it is MLP's (train_test_split's) error.
    with pytest.raises(ValueError, match="least populated class"):
        MultiTaskNetClassifier(**FAST, early_stopping=True).fit(X, y)


def test_auto_splits_unstratified_with_more_classes_than_validation_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = np.repeat(np.arange(25), 8)  # 25 classes, 20 validation rows
    est = MultiTaskNetClassifier(**FAST).fit(X, y)
    assert est.early_stopping_ is True
