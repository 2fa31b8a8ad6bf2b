"""scikit-learn's ensembles and searches around the estimators, with auxiliary tasks.

Every fit is recorded with whether the rows of ``aux_targets`` it received
belong to its rows of ``X`` (each auxiliary label is a function of its row),
and the auxiliary heads of the fitted members must have learnt those
functions on held-out rows: both fail if an ensemble mis-slices the rows.
"""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    BaggingRegressor,
    HistGradientBoostingClassifier,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_predict,
    cross_validate,
)

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl.metrics import make_task_scorers

FAST = dict(
    hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=30, early_stopping=False,
    random_state=0,
)
# A linear final estimator for stacking that accepts aux_targets.
FINAL = dict(hidden_layer_sizes=(), learning_rate_init=1e-2, early_stopping=False, random_state=0)


def aux_of(X):
    """The auxiliary tasks of a row: a class (sign of x3) and a value."""
    X = np.asarray(X, dtype=np.float64)
    return np.column_stack([(X[:, 3] > 0).astype(int), 2 * X[:, 4] - X[:, 5]])


class _Recording:
    """Records every fit: its row count, sample_weight and row alignment."""

    fits = []

    def fit(self, X, y, aux_targets=None, sample_weight=None):
        aligned = None
        if aux_targets is not None:
            aux, expected = np.asarray(aux_targets, dtype=np.float64), aux_of(X)
            aligned = np.array_equal(aux[:, 0], expected[:, 0]) and np.allclose(
                aux[:, 1], expected[:, 1], atol=1e-5
            )
        _Recording.fits.append(
            {"rows": len(X), "aligned": aligned, "sample_weight": sample_weight}
        )
        return super().fit(X, y, aux_targets=aux_targets, sample_weight=sample_weight)


class RecordingClassifier(_Recording, MultiTaskNetClassifier):
    pass


class RecordingRegressor(_Recording, MultiTaskNetRegressor):
    pass


@pytest.fixture(autouse=True)
def fits():
    _Recording.fits.clear()
    return _Recording.fits


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(scope="module")
def data():
    """400 training and 200 test rows; a class and a value main task."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    value = X[:, 0] - 2 * X[:, 2]
    aux = aux_of(X)
    train, test = slice(0, 400), slice(400, None)
    return {
        "X": X[train], "label": label[train], "value": value[train], "aux": aux[train],
        "X_test": X[test], "label_test": label[test], "value_test": value[test],
        "aux_test": aux[test],
    }


def classifier(**params):
    return RecordingClassifier(**{**FAST, **params}).set_fit_request(aux_targets=True)


def regressor(**params):
    return RecordingRegressor(**{**FAST, **params}).set_fit_request(aux_targets=True)


def aux_quality(member, data):
    """Test accuracy of the class aux head and correlation of the value aux head."""
    classes, values = member._task_outputs(data["X_test"], auxiliary=True)
    accuracy = np.mean(classes.argmax(axis=1) == data["aux_test"][:, 0])
    return accuracy, np.corrcoef(values[:, 0], data["aux_test"][:, 1])[0, 1]


def assert_aux_learnt(members, data):
    for member in members:
        accuracy, correlation = aux_quality(member, data)
        assert accuracy > 0.9 and correlation > 0.9


def assert_all_aligned(fits, n_fits):
    assert len(fits) == n_fits
    assert all(fit["aligned"] for fit in fits)


# -- bagging ---------------------------------------------------------------------


def test_bagging_classifier_slices_aux_targets_with_the_bootstrap_rows(data, fits, routing):
    X, y, aux = data["X"], data["label"], data["aux"]
    bag = BaggingClassifier(classifier(), n_estimators=3, random_state=0)
    bag.fit(X, y, aux_targets=aux)
    assert_all_aligned(fits, 3)
    assert {fit["rows"] for fit in fits} == {400}  # bootstrap rows, repeats included
    assert_aux_learnt(bag.estimators_, data)
    assert bag.score(data["X_test"], data["label_test"]) > 0.9

    shuffled = aux[np.random.RandomState(0).permutation(len(aux))]
    misaligned = BaggingClassifier(classifier(), n_estimators=3, random_state=0)
    misaligned.fit(X, y, aux_targets=shuffled)
    assert not any(fit["aligned"] for fit in fits[3:])
    for member in misaligned.estimators_:
        accuracy, correlation = aux_quality(member, data)
        assert accuracy < 0.7 and correlation < 0.4


def test_bagging_regressor_slices_an_aux_dataframe(data, fits, routing):
    aux = pd.DataFrame(data["aux"], columns=["sign", "trend"])
    aux["sign"] = aux["sign"].astype(int)
    bag = BaggingRegressor(regressor(), n_estimators=3, random_state=0)
    bag.fit(data["X"], data["value"], aux_targets=aux)
    assert_all_aligned(fits, 3)
    assert_aux_learnt(bag.estimators_, data)
    assert bag.score(data["X_test"], data["value_test"]) > 0.8


def test_bagging_bootstrap_counts_as_sample_weight_are_honoured(data, fits, routing):
    X, y, aux = data["X"], data["label"], data["aux"]
    estimator = classifier().set_fit_request(sample_weight=True)
    bag = BaggingClassifier(estimator, n_estimators=3, random_state=0)
    bag.fit(X, y, aux_targets=aux)
    assert_all_aligned(fits, 3)
    for fit, rows in zip(fits, bag.estimators_samples_):
        np.testing.assert_array_equal(fit["sample_weight"], np.bincount(rows, minlength=400))
    assert_aux_learnt(bag.estimators_, data)
    assert bag.score(data["X_test"], data["label_test"]) > 0.9
    # A row drawn k times weighs k, a row never drawn is left out: the member
    # is the net fitted on the drawn rows with their counts as weights.
    member, counts = bag.estimators_[0], fits[0]["sample_weight"]
    drawn = counts > 0
    refit = MultiTaskNetClassifier(**member.get_params()).fit(
        X[drawn], y[drawn], aux_targets=aux[drawn], sample_weight=counts[drawn]
    )
    np.testing.assert_allclose(
        refit.predict_proba(data["X_test"]), member.predict_proba(data["X_test"]), rtol=1e-5
    )


# -- voting, calibration, stacking -----------------------------------------------


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_voting_passes_aux_targets_to_every_member(data, fits, routing, kind):
    if kind == "classifier":
        members = [("a", classifier()), ("b", classifier(dropout=0.1, random_state=1))]
        voting = VotingClassifier(members, voting="soft")
        y, y_test, threshold = data["label"], data["label_test"], 0.9
    else:
        members = [("a", regressor()), ("b", regressor(dropout=0.1, random_state=1))]
        voting = VotingRegressor(members)
        y, y_test, threshold = data["value"], data["value_test"], 0.8
    voting.fit(data["X"], y, aux_targets=data["aux"])
    assert_all_aligned(fits, 2)
    assert_aux_learnt(voting.estimators_, data)
    assert voting.score(data["X_test"], y_test) > threshold


def test_calibrated_classifier_slices_aux_targets_per_fold(data, fits, routing):
    calibrated = CalibratedClassifierCV(classifier(), cv=3, method="sigmoid")
    calibrated.fit(data["X"], data["label"], aux_targets=data["aux"])
    assert_all_aligned(fits, 3)
    assert sorted(fit["rows"] for fit in fits) == [266, 267, 267]
    assert_aux_learnt([pair.estimator for pair in calibrated.calibrated_classifiers_], data)
    assert calibrated.score(data["X_test"], data["label_test"]) > 0.9
    assert calibrated.predict_proba(data["X_test"]).shape == (200, 2)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_stacking_with_multi_task_base_and_final_estimators(data, fits, routing, kind):
    # The final estimator receives the raw fit parameters (aux_targets
    # included), so it must accept them: a multi-task net without hidden
    # layers is a linear model that does.
    if kind == "classifier":
        stack = StackingClassifier(
            [("net", classifier()), ("boosting", HistGradientBoostingClassifier(max_iter=30))],
            final_estimator=MultiTaskNetClassifier(**FINAL),
            cv=3,
        )
        y, y_test, threshold = data["label"], data["label_test"], 0.9
    else:
        stack = StackingRegressor(
            [("net", regressor()), ("ridge", Ridge())],
            final_estimator=MultiTaskNetRegressor(**FINAL),
            cv=3,
        )
        y, y_test, threshold = data["value"], data["value_test"], 0.8
    stack.fit(data["X"], y, aux_targets=data["aux"])
    assert_all_aligned(fits, 4)  # the full-data fit, then one per fold
    assert sorted(fit["rows"] for fit in fits) == [266, 267, 267, 400]
    assert_aux_learnt([stack.named_estimators_["net"]], data)
    assert stack.final_estimator_.n_aux_tasks_ == 2
    assert stack.score(data["X_test"], y_test) > threshold


def test_stacking_final_estimator_without_aux_targets_is_a_known_limit(data, routing):
    stack = StackingClassifier(
        [("net", classifier())], final_estimator=LogisticRegression(), cv=3
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'aux_targets'"):
        stack.fit(data["X"], data["label"], aux_targets=data["aux"])


# -- boosting --------------------------------------------------------------------


def test_adaboost_weights_summing_to_one_train_the_members(data, fits):
    # AdaBoost routes no metadata (no aux_targets): it passes sample_weight only.
    # With 10% of the labels flipped no member is perfect, so boosting goes on.
    noisy = data["label"].copy()
    flip = np.random.RandomState(1).rand(len(noisy)) < 0.1
    noisy[flip] = np.where(noisy[flip] == "yes", "no", "yes")
    boost = AdaBoostClassifier(
        RecordingClassifier(**FAST), n_estimators=3, random_state=0
    ).fit(data["X"], noisy)
    assert len(fits) == len(boost.estimators_) == 3
    for fit in fits:
        assert fit["sample_weight"].sum() == pytest.approx(1.0)
    assert np.ptp(fits[1]["sample_weight"]) > 0  # the second round is reweighted
    # Each member is well better than chance on the weighted rows it was given.
    assert np.all(boost.estimator_errors_ < 0.4)
    assert boost.score(data["X_test"], data["label_test"]) > 0.9


# -- searches and cross-validation -----------------------------------------------


@pytest.mark.parametrize("search", [GridSearchCV, RandomizedSearchCV])
def test_searches_slice_aux_targets_per_fold(data, fits, routing, search):
    grid = {"task_weights": [[1, 1, 1], [1, 0.5, 0.5]]}
    extra = {"n_iter": 2, "random_state": 0} if search is RandomizedSearchCV else {}
    scoring = make_task_scorers(["accuracy", "roc_auc"], n_tasks=1)
    found = search(
        classifier(), grid, cv=KFold(3), scoring=scoring, refit="mean_roc_auc", **extra
    ).fit(data["X"], data["label"], aux_targets=data["aux"])
    assert_all_aligned(fits, 7)  # 2 candidates x 3 folds, then the refit
    assert_aux_learnt([found.best_estimator_], data)
    assert found.cv_results_["mean_test_task0_accuracy"].min() > 0.9
    assert found.best_score_ > 0.95


def test_cross_validate_and_cross_val_predict_slice_aux_targets(data, fits, routing):
    X, y, params = data["X"], data["label"], {"aux_targets": data["aux"]}
    results = cross_validate(
        classifier(), X, y, cv=KFold(3), params=params, return_estimator=True,
        scoring=make_task_scorers("accuracy", 1),
    )
    assert_all_aligned(fits, 3)
    assert_aux_learnt(results["estimator"], data)
    assert results["test_task0_accuracy"].min() > 0.9
    fits.clear()
    predicted = cross_val_predict(classifier(), X, y, cv=KFold(3), params=params)
    assert_all_aligned(fits, 3)
    assert np.mean(predicted == y) > 0.9
