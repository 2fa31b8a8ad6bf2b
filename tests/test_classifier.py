import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from sklearn_mtl import MultiTaskNetClassifier

FAST = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=60, random_state=0)


@pytest.fixture(scope="module")
def fitted(two_task_data):
    X, colour, size = two_task_data
    y = np.empty((len(X), 2), dtype=object)
    y[:, 0], y[:, 1] = colour, size
    return MultiTaskNetClassifier(**FAST).fit(X, y), X, y


def test_multi_output_string_and_int_tasks(fitted):
    clf, X, y = fitted
    assert clf.n_outputs_ == 2
    assert list(clf.classes_[0]) == ["blue", "red"]
    assert list(clf.classes_[1]) == [0, 1, 2]
    pred = clf.predict(X)
    assert pred.shape == (len(X), 2)
    assert set(pred[:, 0]) <= {"blue", "red"} and set(pred[:, 1]) <= {0, 1, 2}
    proba = clf.predict_proba(X)
    assert [p.shape for p in proba] == [(len(X), 2), (len(X), 3)]
    np.testing.assert_allclose([p.sum(axis=1) for p in proba], 1, rtol=1e-5)
    per_task_dummy = [DummyClassifier().fit(X, y[:, t].astype(str)).score(X, y[:, t].astype(str)) for t in range(2)]
    assert clf.score(X, y) > max(per_task_dummy) + 0.3


def test_predict_keeps_each_label_dtype(two_task_data):
    X, colour, size = two_task_data
    clf = MultiTaskNetClassifier(**FAST).fit(X, size.astype(bool))
    assert clf.predict(X).dtype == bool
    frame = pd.DataFrame({"colour": colour, "big": size > 0})
    clf = MultiTaskNetClassifier(**FAST).fit(X, frame)
    pred = clf.predict(X)
    assert pred.dtype == object
    assert isinstance(pred[0, 0], str) and isinstance(pred[0, 1], (bool, np.bool_))
    clf = MultiTaskNetClassifier(**FAST).fit(X, np.column_stack([size, size > 0]))
    assert clf.predict(X).dtype.kind == "i"


def test_integer_and_boolean_labels_with_missing_entries_stay_so(two_task_data):
    # pandas hands a nullable Int64 column with NA over as floats; objects
    # with None keep their type too.
    X, colour, size = two_task_data
    missing = np.arange(len(X)) % 7 == 0
    labels = pd.Series(size * 10 + 3, dtype="Int64").mask(missing)
    flags = pd.Series(size > 0, dtype="boolean").mask(missing)
    clf = MultiTaskNetClassifier(**FAST).fit(X, pd.DataFrame({"n": labels, "b": flags}))
    assert clf.classes_[0].dtype == np.int64 and clf.classes_[1].dtype == bool
    assert clf.classes_[0].tolist() == sorted(set(size * 10 + 3))
    assert [type(v) for v in clf.predict(X[:1])[0]] == [int, bool]
    objects = np.where(missing, None, size * 10 + 3).astype(object)
    clf = MultiTaskNetClassifier(**FAST).fit(X, objects)
    assert clf.classes_.dtype == np.int64 and clf.predict(X).dtype == np.int64
    clf.partial_fit(X, objects)  # later calls read them the same way


def test_labels_keep_their_numpy_type_and_range(two_task_data):
    X, colour, size = two_task_data
    n = len(X)
    missing = np.arange(n) % 7 == 0
    small = pd.DataFrame({
        "a": pd.Series(np.where(size > 0, 100, -100), dtype="Int8").mask(missing),
        "b": pd.Series(size, dtype="UInt16"),
    })
    clf = MultiTaskNetClassifier(**FAST).fit(X, small)
    assert [c.dtype for c in clf.classes_] == [np.int8, np.uint16]
    assert clf.classes_[0].tolist() == [-100, 100]  # 200 apart: no wrap-around
    assert clf.predict(X).dtype == object  # two types
    huge = np.array([2**63 + int(v > 0) for v in size], dtype=object)
    clf = MultiTaskNetClassifier(**FAST).fit(X, huge)
    assert clf.classes_.dtype == np.uint64 and clf.classes_.tolist() == [2**63, 2**63 + 1]
    mixed = np.array([0, 1, True, False] * (n // 4), dtype=object)
    with pytest.raises(ValueError, match="Task 0 of y mixes booleans and integers"):
        MultiTaskNetClassifier(**FAST).fit(X[: len(mixed)], mixed)
    ints = MultiTaskNetClassifier(**FAST).fit(X[: len(mixed)], mixed.astype(int))
    with pytest.raises(ValueError, match="A task of y mixes booleans and integers"):
        ints.partial_fit(X[: len(mixed)], mixed)


def test_missing_labels_are_masked(two_task_data):
    X, colour, size = two_task_data
    y = np.empty((len(X), 2), dtype=object)
    y[:, 0], y[:, 1] = colour, size
    # Half of task 0 is missing; the missing half carries deliberately wrong
    # labels in a copy, which must not matter.
    missing = np.arange(len(X)) % 2 == 0
    y[missing, 0] = None
    clf = MultiTaskNetClassifier(**FAST).fit(X, y)
    wrong = y.copy()
    wrong[missing, 0] = np.where(colour[missing] == "red", "blue", "red")
    assert clf.score(X, y) == pytest.approx(
        np.mean([np.mean(clf.predict(X)[~missing, 0] == y[~missing, 0]),
                 np.mean(clf.predict(X)[:, 1] == y[:, 1])])
    )
    # Trained only on the labelled half, it still predicts the unlabelled half.
    truth = np.empty_like(y)
    truth[:, 0], truth[:, 1] = colour, size
    assert np.mean(clf.predict(X)[missing, 0] == colour[missing]) > 0.85
    float_y = np.column_stack([(colour == "red").astype(float), size]).astype(float)
    float_y[missing, 0] = np.nan
    clf = MultiTaskNetClassifier(**FAST).fit(X, float_y)
    assert list(clf.classes_[0]) == [0.0, 1.0]


def test_missing_labels_do_not_reach_the_loss(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([(colour == "red").astype(float), size]).astype(float)
    y[::2, 0] = np.nan
    flipped = y.copy()
    # A model trained where the "missing" rows carry labels learns from them;
    # one trained with NaN there must equal one trained on those rows dropped
    # for task 0 via a zero sample weight on that task.
    weights = np.ones_like(y)
    weights[::2, 0] = 0
    flipped[::2, 0] = 1 - (colour[::2] == "red")
    a = MultiTaskNetClassifier(**FAST).fit(X, y)
    b = MultiTaskNetClassifier(**FAST).fit(X, flipped, sample_weight=weights)
    np.testing.assert_allclose(a.predict_proba(X)[0], b.predict_proba(X)[0], rtol=1e-5)


def test_class_weight_shifts_predictions(two_task_data):
    X, _, _ = two_task_data
    noise = np.random.RandomState(3).normal(scale=2.0, size=len(X))
    colour = np.where(X[:, 0] + noise > 0.5, "red", "blue")
    plain = MultiTaskNetClassifier(**FAST).fit(X, colour)
    heavy = MultiTaskNetClassifier(**FAST, class_weight={"red": 20.0, "blue": 1.0}).fit(
        X, colour
    )
    assert np.mean(heavy.predict(X) == "red") > np.mean(plain.predict(X) == "red") + 0.05
    per_task = MultiTaskNetClassifier(**FAST, class_weight=[{"red": 20.0, "blue": 1.0}, None])
    per_task.fit(X, np.column_stack([colour, colour]))
    assert np.mean(per_task.predict(X)[:, 0] == "red") > np.mean(
        per_task.predict(X)[:, 1] == "red"
    )


def test_class_weight_errors(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size.astype(str)])
    with pytest.raises(ValueError, match="class_weight must have one entry per task"):
        MultiTaskNetClassifier(**FAST, class_weight=["balanced"]).fit(X, y)
    with pytest.raises(ValueError, match="class_weight as a dict is for a single task"):
        MultiTaskNetClassifier(**FAST, class_weight={"red": 2}).fit(X, y)


def test_partial_fit_with_classes(two_task_data):
    X, colour, size = two_task_data
    clf = MultiTaskNetClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e-2, random_state=0)
    y = np.column_stack([colour, size.astype(str)])
    classes = [["blue", "red"], ["0", "1", "2"]]
    for epoch in range(30):
        clf.partial_fit(X[:150], y[:150], classes=classes)
        clf.partial_fit(X[150:], y[150:])
    # As MLPClassifier's: n_iter_ counts the latest call's epochs.
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 60
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="not among the model's classes"):
        clf.partial_fit(X[:5], np.column_stack([["green"] * 5, ["0"] * 5]))


def test_a_warm_start_does_not_take_booleans_for_integer_labels():
    # True == 1, but a model of 0/1/2 labels is not one of False/True.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = rng.randint(0, 3, 60)
    clf = MultiTaskNetClassifier((8,), max_iter=2, warm_start=True, random_state=0)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="y holds bool labels but the model's classes"):
        clf.fit(X, y == 0)
    clf.fit(X, y.astype(float))  # 0.0 is the label 0, as in MLPClassifier
    boolean = MultiTaskNetClassifier((8,), max_iter=2, warm_start=True, random_state=0)
    boolean.fit(X, y == 0)
    with pytest.raises(ValueError, match="y holds int64 labels but the model's classes"):
        boolean.fit(X, (y == 0).astype(np.int64))


def test_predict_log_proba(fitted):
    clf, X, _ = fitted
    np.testing.assert_allclose(
        np.exp(clf.predict_log_proba(X[:5])[1]), clf.predict_proba(X[:5])[1], rtol=1e-6
    )


def test_partial_fit_classes_include_labels_absent_from_first_batch(two_task_data):
    X, colour, _ = two_task_data
    clf = MultiTaskNetClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X, colour, classes=["blue", "green", "red"])
    np.testing.assert_array_equal(clf.classes_, ["blue", "green", "red"])
    assert clf.predict_proba(X[:2]).shape == (2, 3)
    clf.partial_fit(X[:3], np.array(["green"] * 3))
    with pytest.raises(ValueError, match="classes must have one array of labels per task"):
        MultiTaskNetClassifier().partial_fit(
            X, np.column_stack([colour, colour]), classes=[["blue", "red"]]
        )
    with pytest.raises(ValueError, match="classes of task 0 must hold at least 2 labels"):
        MultiTaskNetClassifier().partial_fit(X, colour, classes=["red"])
