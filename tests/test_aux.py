"""Auxiliary tasks: trained through their own heads, never predicted."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._labels import infer_kind, is_missing
from sklearn_mtl._tasks import MAX_INFERRED_CLASSES

FAST = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=40, random_state=0)


@pytest.fixture(scope="module")
def data():
    """Main task on features 0-1; a class aux task on 3, a value aux task on 4-5."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    aux = np.column_stack([(X[:, 3] > 0).astype(int), 2 * X[:, 4] - X[:, 5] + 10])
    return X[:400], y[:400], aux[:400], X[400:], aux[400:]


def aux_scores(est, X, aux):
    """Accuracy of the class aux head and correlation of the value aux head."""
    classes, values = est._task_outputs(X, auxiliary=True)
    accuracy = np.mean(est.tasks_[-2].classes[classes.argmax(axis=1)] == aux[:, 0])
    return accuracy, np.corrcoef(values[:, 0], aux[:, 1])[0, 1]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, aux, _, _ = data
    return MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=aux)


def test_aux_tasks_are_trained_but_not_predicted(data, fitted):
    X, y, _, X_test, aux_test = data
    clf = fitted
    assert clf.n_outputs_ == 1 and clf.n_aux_tasks_ == 2
    assert [spec.kind for spec in clf.tasks_] == ["classification", "classification", "regression"]
    np.testing.assert_array_equal(clf.classes_, ["no", "yes"])
    assert clf.predict(X_test).shape == (200,)
    assert clf.predict_proba(X_test).shape == (200, 2)
    assert clf.score(X, y) > 0.9
    accuracy, correlation = aux_scores(clf, X_test, aux_test)
    assert accuracy > 0.9 and correlation > 0.9


def test_shuffled_aux_targets_are_not_learnt(data, fitted):
    X, y, aux, X_test, aux_test = data
    shuffled = aux[np.random.RandomState(1).permutation(len(aux))]
    clf = MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=shuffled)
    accuracy, correlation = aux_scores(clf, X_test, aux_test)
    aligned_accuracy, aligned_correlation = aux_scores(fitted, X_test, aux_test)
    assert accuracy < 0.7 < aligned_accuracy
    assert correlation < 0.4 < aligned_correlation


def test_aux_tasks_next_to_a_multi_task_y(data):
    X, y, aux, X_test, aux_test = data
    Y = np.column_stack([y, np.where(X[:, 2] > 0, "up", "down")])
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y, aux_targets=aux)
    assert clf.n_outputs_ == 2 and len(clf.classes_) == 2 and len(clf.tasks_) == 4
    assert clf.predict(X_test).shape == (200, 2)
    assert [p.shape for p in clf.predict_proba(X_test)] == [(200, 2), (200, 2)]
    assert clf.score(X, Y) > 0.9
    assert aux_scores(clf, X_test, aux_test)[0] > 0.9


def test_regressor_with_a_classification_aux_task(data):
    X, _, aux, X_test, aux_test = data
    target = X[:, 0] - 2 * X[:, 2]
    reg = MultiTaskNetRegressor(**FAST).fit(X, target, aux_targets=aux)
    assert [spec.kind for spec in reg.tasks_] == ["regression", "classification", "regression"]
    assert reg.n_outputs_ == 1 and reg.predict(X_test).shape == (200,)
    assert reg.score(X, target) > 0.9
    assert aux_scores(reg, X_test, aux_test)[0] > 0.9


def test_missing_aux_labels_are_masked(data):
    X, y, aux, X_test, aux_test = data
    sparse_labels = aux.astype(object)
    sparse_labels[::2, 0] = None
    sparse_labels[1::2, 1] = np.nan
    # Labels on the masked entries are the opposite class: if they reached the
    # loss, the head could not fit the task.
    poisoned = sparse_labels.copy()
    poisoned[::2, 0] = 1 - aux[::2, 0]
    clf = MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=sparse_labels)
    assert aux_scores(clf, X_test, aux_test)[0] > 0.9
    poisoned_fit = MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=poisoned)
    assert aux_scores(poisoned_fit, X_test, aux_test)[0] < 0.8


@pytest.mark.parametrize(
    "column, kind",
    [
        (np.array(["a", "b", None, "a"], dtype=object), "classification"),
        (np.array([True, False, True]), "classification"),
        (np.array([True, None, False], dtype=object), "classification"),
        (np.array([0.5, 1.25, np.nan, 3.0]), "regression"),
        (np.array([0.0, 1.0, np.nan, 2.0]), "classification"),
        (np.arange(MAX_INFERRED_CLASSES), "classification"),
        (np.arange(MAX_INFERRED_CLASSES + 1), "regression"),
        (np.array([1, None, 3], dtype=object), "classification"),
        (pd.array([1, None, 2], dtype="Int64").to_numpy(), "classification"),
    ],
)
def test_aux_kind_is_inferred_from_labelled_values(column, kind):
    assert infer_kind(column, is_missing(column)) == kind


def test_aux_kinds_follow_dataframe_dtypes_and_overrides(data):
    X, y, _, _, _ = data
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {
            "region": pd.Categorical(rng.randint(0, 30, len(X))),  # many ints, category
            "grade": rng.randint(1, 4, len(X)),  # few ints
            "colour": rng.choice(["red", "blue"], len(X)),
            "income": rng.normal(size=len(X)),
        }
    )
    params = dict(FAST, max_iter=2)
    kinds = lambda est: [spec.kind for spec in est.tasks_[1:]]  # noqa: E731
    inferred = MultiTaskNetClassifier(**params).fit(X, y, aux_targets=frame)
    assert kinds(inferred) == ["classification", "classification", "classification", "regression"]
    assert len(inferred.tasks_[1].classes) == 30
    by_name = MultiTaskNetClassifier(**params, aux_task_types={"grade": "regression"})
    assert kinds(by_name.fit(X, y, aux_targets=frame))[1] == "regression"
    by_position = MultiTaskNetClassifier(**params, aux_task_types={0: "regression"})
    assert kinds(by_position.fit(X, y, aux_targets=frame))[0] == "regression"
    as_list = MultiTaskNetClassifier(
        **params, aux_task_types=[None, "regression", None, None]
    ).fit(X, y, aux_targets=frame.to_numpy(dtype=object))
    # Without its category dtype, "region" is 30 integers: a regression task.
    assert kinds(as_list) == ["regression", "regression", "classification", "regression"]


def test_bad_aux_targets_are_clear_errors(data):
    X, y, aux, _, _ = data
    clf = MultiTaskNetClassifier(**dict(FAST, max_iter=1))
    expected = "aux_targets must be a 2-D array or DataFrame with one column per auxiliary task"
    with pytest.raises(TypeError, match=f"{expected}; got a dict"):
        clf.fit(X, y, aux_targets={"a": aux[:, 0]})
    with pytest.raises(TypeError, match=f"{expected}; got a list"):
        clf.fit(X, y, aux_targets=[aux[:, 0], aux[:, 1]])
    with pytest.raises(TypeError, match=f"{expected}; got a tuple"):
        clf.fit(X, y, aux_targets=(aux[:, 0],))
    with pytest.raises(TypeError, match=f"{expected}; got a sparse matrix"):
        clf.fit(X, y, aux_targets=sp.csr_matrix(aux))
    with pytest.raises(ValueError, match=f"{expected}; got an array with shape \\(400, 2, 1\\)"):
        clf.fit(X, y, aux_targets=aux[:, :, None])
    with pytest.raises(ValueError, match="one row per sample of X \\(400 rows\\); got 399 rows"):
        clf.fit(X, y, aux_targets=aux[:-1])
    with pytest.raises(ValueError, match="got 0 columns"):
        clf.fit(X, y, aux_targets=aux[:, :0])
    unlabelled = aux.copy()
    unlabelled[:, 1] = np.nan
    with pytest.raises(ValueError, match="Task 1 of aux_targets has no labelled sample"):
        clf.fit(X, y, aux_targets=unlabelled)
    one_class = np.column_stack([np.array(["a"] * len(X)), aux[:, 1]])
    with pytest.raises(ValueError, match="Task 0 of aux_targets has only one class"):
        clf.fit(X, y, aux_targets=one_class)
    infinite = aux.copy()
    infinite[0, 1] = np.inf
    with pytest.raises(ValueError, match="Input aux_targets contains infinity"):
        clf.fit(X, y, aux_targets=infinite)


BAD_AUX_TASK_TYPES = [
    ("regression", InvalidParameterError, "aux_task_types"),
    (["regression"], ValueError, "one entry per column of aux_targets; got 1 entries for 2"),
    ({"income": "regression"}, ValueError, "key 'income', which is neither a column name"),
    ({5: "regression"}, ValueError, "key 5, which is neither"),
    ({1: "ordinal"}, ValueError, "'classification', 'regression' or None .* got 'ordinal' for column 1"),
]


@pytest.mark.parametrize("aux_task_types, error, message", BAD_AUX_TASK_TYPES)
def test_bad_aux_task_types(data, aux_task_types, error, message):
    X, y, aux, _, _ = data
    clf = MultiTaskNetClassifier(**dict(FAST, max_iter=1), aux_task_types=aux_task_types)
    with pytest.raises(error, match=message):
        clf.fit(X, y, aux_targets=aux)


def test_weights_cover_the_aux_tasks(data):
    X, y, aux, X_test, aux_test = data
    with pytest.raises(ValueError, match="task_weights must have one entry per task "
                       "\\(column of y, then of aux_targets\\); got 2 entries for 3 tasks"):
        MultiTaskNetClassifier(**FAST, task_weights=[1, 1]).fit(X, y, aux_targets=aux)
    with pytest.raises(ValueError, match="sample_weight must be 1-D .* \\(400, 3\\), one column "
                       "per task \\(column of y, then of aux_targets\\)"):
        MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=aux, sample_weight=np.ones((400, 2)))
    # A zero task weight (or a zero weight column) leaves an aux head untrained.
    silenced = MultiTaskNetClassifier(**FAST, task_weights=[1, 0, 1]).fit(X, y, aux_targets=aux)
    per_entry = np.ones((400, 3))
    per_entry[:, 1] = 0
    per_entry[0, 1] = 1e-9
    zero_column = MultiTaskNetClassifier(**FAST).fit(X, y, aux_targets=aux, sample_weight=per_entry)
    for est in (silenced, zero_column):
        accuracy, correlation = aux_scores(est, X_test, aux_test)
        assert accuracy < 0.75 and correlation > 0.9


def test_class_weight_applies_to_the_tasks_of_y_only(data):
    X, y, aux, _, _ = data
    clf = MultiTaskNetClassifier(**dict(FAST, max_iter=2), class_weight=["balanced"])
    clf.fit(X, y, aux_targets=aux)
    with pytest.raises(ValueError, match="got 3 entries for 1 tasks"):
        clf.set_params(class_weight=["balanced"] * 3).fit(X, y, aux_targets=aux)


def test_early_stopping_scores_the_tasks_of_y_only(data):
    X, y, aux, _, _ = data
    noise = np.random.RandomState(0).randint(0, 2, size=len(X))  # unlearnable aux task
    clf = MultiTaskNetClassifier(**FAST, early_stopping=True).fit(X, y, aux_targets=noise)
    assert clf.best_validation_score_ > 0.9  # the noise task would pull it near 0.8


def test_partial_fit_with_aux_targets(data):
    X, y, aux, X_test, aux_test = data
    clf = MultiTaskNetClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e-2, random_state=0)
    for _ in range(30):
        clf.partial_fit(X[:200], y[:200], classes=["no", "yes"], aux_targets=aux[:200])
        clf.partial_fit(X[200:], y[200:])  # aux heads rest on this half
    assert clf.n_aux_tasks_ == 2 and clf.score(X, y) > 0.9
    assert aux_scores(clf, X_test, aux_test)[0] > 0.9
    with pytest.raises(ValueError, match="aux_targets has 1 columns but the model was fitted with 2"):
        clf.partial_fit(X, y, aux_targets=aux[:, 0])
    unseen = aux.copy()
    unseen[0, 0] = 7
    with pytest.raises(ValueError, match="aux_targets contains labels array\\(\\[7"):
        clf.partial_fit(X, y, aux_targets=unseen)
    reg = MultiTaskNetRegressor(**dict(FAST, max_iter=1)).partial_fit(X, aux[:, 1], aux_targets=y)
    assert reg.tasks_[1].kind == "classification"


def test_fit_under_metadata_routing(data):
    X, y, aux, X_test, aux_test = data
    with sklearn.config_context(enable_metadata_routing=True):
        clf = MultiTaskNetClassifier(**FAST).set_fit_request(aux_targets=True, sample_weight=True)
        assert clf.get_metadata_routing().fit.requests == {
            "aux_targets": True, "sample_weight": True
        }
        clf.fit(X, y, aux_targets=aux, sample_weight=np.ones(len(X)))
        plain = MultiTaskNetRegressor(**FAST).fit(X, aux[:, 1])
    assert clf.score(X, y) > 0.9 and aux_scores(clf, X_test, aux_test)[0] > 0.9
    assert plain.score(X, aux[:, 1]) > 0.9
