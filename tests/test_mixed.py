"""MultiTaskNet: classification and regression tasks in one y."""

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.compose import make_column_transformer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier, load, save
from sklearn_mtl._labels import infer_kind, is_missing

FAST = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=60, random_state=0)


@pytest.fixture(scope="module")
def penguins():
    """Palmer penguins: species and sex (some missing) are labels, body mass a value."""
    frame = load_penguins().dropna(subset=["bill_length_mm"])
    X = frame[["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm"]]
    y = frame[["species", "sex", "body_mass_g"]]
    return train_test_split(X, y, test_size=0.3, random_state=0)


def _pipeline(**params):
    encode = make_column_transformer(
        (OneHotEncoder(), ["island"]), remainder=StandardScaler()
    )
    return make_pipeline(encode, MultiTaskNet(**params))


@pytest.mark.parametrize("architecture", ["shared", "mmoe"])
def test_penguins_species_sex_and_body_mass(penguins, architecture):
    X_train, X_test, y_train, y_test = penguins
    assert y_train["sex"].isna().any()  # missing labels stay missing
    model = _pipeline(random_state=0, architecture=architecture).fit(X_train, y_train)
    net = model[-1]
    # body_mass_g holds whole grams: type_of_target says "multiclass", but
    # with more than 10 distinct values it is a regression task.
    assert type_of_target(y_train["body_mass_g"]) == "multiclass"
    assert net.task_types_ == ["classification", "classification", "regression"]
    assert list(net.classes_[0]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert net.classes_[2] is None

    pred = model.predict(X_test)
    assert pred.shape == (len(X_test), 3) and pred.dtype == object
    assert set(pred[:, 1]) <= {"female", "male"}
    assert all(isinstance(v, float) for v in pred[:, 2])
    proba = model.predict_proba(X_test)
    assert [p.shape for p in proba] == [(len(X_test), 3), (len(X_test), 2)]
    np.testing.assert_allclose([p.sum(axis=1) for p in proba], 1, rtol=1e-5)

    truth = y_test.to_numpy()
    sexed = ~is_missing(truth[:, 1])
    scores = [
        accuracy_score(truth[:, 0], pred[:, 0]),
        accuracy_score(truth[sexed, 1], pred[sexed, 1]),
        r2_score(truth[:, 2].astype(float), pred[:, 2].astype(float)),
    ]
    assert model.score(X_test, y_test) == pytest.approx(np.mean(scores))
    assert scores[0] > 0.95 and scores[1] > 0.75 and scores[2] > 0.75


def test_task_types_override_inference(penguins):
    X_train, _, y_train, _ = penguins
    y = y_train.assign(year_sold=np.arange(len(y_train)) % 3)  # 3 integral values
    encode = make_column_transformer((OneHotEncoder(), ["island"]), remainder=StandardScaler())
    X = encode.fit_transform(X_train)
    inferred = MultiTaskNet(**FAST).fit(X, y)
    assert inferred.task_types_[3] == "classification"
    by_name = MultiTaskNet(**FAST, task_types={"year_sold": "regression"}).fit(X, y)
    assert by_name.task_types_ == ["classification", "classification", "regression", "regression"]
    as_list = MultiTaskNet(**FAST, task_types=[None, None, "classification", None]).fit(X, y)
    assert as_list.task_types_[2] == "classification" and len(as_list.classes_[2]) > 10


def test_task_types_errors_name_the_parameter(penguins):
    X_train, _, y_train, _ = penguins
    X = X_train.drop(columns="island")
    with pytest.raises(ValueError, match="task_types must have one entry per column of y"):
        MultiTaskNet(task_types=["regression"]).fit(X, y_train)
    with pytest.raises(ValueError, match="task_types has the key 'mass'"):
        MultiTaskNet(task_types={"mass": "regression"}).fit(X, y_train)
    with pytest.raises(ValueError, match="task_types must give 'classification'.*'ordinal'"):
        MultiTaskNet(task_types={"sex": "ordinal"}).fit(X, y_train)


@pytest.mark.parametrize(
    "column",
    [
        np.array([0.5, 1.5, 2.25, 3.0]),
        np.array([0, 1, 1, 0]),
        np.array(["a", "b", "c", "a"]),
        np.array([1.0, 2.0, 3.0, 2.0]),
        np.arange(11),
    ],
)
def test_kinds_follow_type_of_target_up_to_many_valued_integers(column):
    kind = infer_kind(column, np.zeros(len(column), dtype=bool))
    target = type_of_target(column)
    if target == "continuous" or len(np.unique(column)) > 10:
        assert kind == "regression"
    else:
        assert target in ("binary", "multiclass") and kind == "classification"


def test_one_engine_with_the_classifier(two_task_data):
    # The same tasks, the same seed: the mixed estimator is the classifier.
    X, colour, size = two_task_data
    y = np.column_stack([colour, size.astype(str)])
    mixed = MultiTaskNet(**FAST).fit(X, y)
    clf = MultiTaskNetClassifier(**FAST).fit(X, y)
    for p, q in zip(mixed.predict_proba(X), clf.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(mixed.predict(X), clf.predict(X))


def test_no_predict_proba_without_a_classification_task():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    net = MultiTaskNet(**FAST)
    assert hasattr(net, "predict_proba")  # unfitted: it may have one
    net.fit(X, X @ [1.0, 2.0, 0.5])
    assert net.task_types_ == ["regression"] and not hasattr(net, "predict_proba")
    assert net.predict(X).shape == (100,)


def test_return_std_for_values_nan_for_labels(penguins):
    X_train, X_test, y_train, _ = penguins
    model = _pipeline(**{**FAST, "dropout": 0.3, "mc_samples": 20}).fit(X_train, y_train)
    values, std = model.predict(X_test, return_std=True)
    assert values.shape == std.shape == (len(X_test), 3) and std.dtype == np.float64
    assert np.isnan(std[:, :2]).all() and (std[:, 2] > 0).all()
    with pytest.raises(ValueError, match="mc_samples"):
        _pipeline(**FAST).fit(X_train, y_train).predict(X_test, return_std=True)


def test_search_and_save(penguins, tmp_path):
    X_train, X_test, y_train, y_test = penguins
    search = GridSearchCV(
        _pipeline(**{**FAST, "max_iter": 20}),
        {"multitasknet__dropout": [0.0, 0.2], "multitasknet__task_balancing": ["fixed", "uncertainty"]},
        cv=KFold(2),  # check_cv cannot type a y of labels and values
    ).fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 4
    net = search.best_estimator_[-1]
    X = search.best_estimator_[0].transform(X_test)
    save(net, tmp_path / "net.pt")
    loaded = load(tmp_path / "net.pt")
    assert type(loaded) is MultiTaskNet and loaded.task_types_ == net.task_types_
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.score(X, y_test) == net.score(X, y_test)


def test_partial_fit_keeps_the_first_tasks(penguins):
    X_train, _, y_train, _ = penguins
    X = X_train.drop(columns="island").to_numpy()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = MultiTaskNet(**FAST)
    for _ in range(3):
        net.partial_fit(X, y_train)
    assert net.n_iter_ == 1 and len(net.loss_curve_) == 3
    assert net.task_types_[2] == "regression"
    assert isinstance(pd.DataFrame(net.predict(X)).iloc[0, 0], str)


def test_a_list_of_task_types_goes_by_position_whatever_the_column_names():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    frame = pd.DataFrame(np.column_stack([rng.randint(0, 6, 80), rng.randint(0, 3, 80)]))
    y = frame[[1, 0]]  # integer column names, not in positional order
    net = MultiTaskNet(**{**FAST, "max_iter": 2}, task_types=["classification", "regression"])
    assert net.fit(X, y).task_types_ == ["classification", "regression"]
    by_name = MultiTaskNet(**{**FAST, "max_iter": 2}, task_types={0: "regression"}).fit(X, y)
    assert by_name.task_types_ == ["classification", "regression"]
