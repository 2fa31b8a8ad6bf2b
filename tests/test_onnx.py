"""ONNX export: onnxruntime reproduces predict and predict_proba."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import BaggingClassifier, StackingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_mtl import (
    MultiTaskNet,
    MultiTaskNetClassifier,
    MultiTaskNetRegressor,
    load,
    register_onnx_converters,
    save,
    to_onnx,
)

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

FAST = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: small fits on a busy machine are many times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(onx, feeds):
    """Every output of the ONNX model on ``feeds``, by name."""
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def assert_reproduces(model, outputs, X, scales=None):
    """``outputs`` hold model.predict(X) and predict_proba(X), task by task."""
    predicted = np.asarray(model.predict(X))
    predicted = predicted.reshape(len(predicted), -1)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else []
    proba = [proba] if isinstance(proba, np.ndarray) else list(proba)
    n_proba = 0
    for t in range(predicted.shape[1]):
        if f"label_{t}" in outputs:
            np.testing.assert_array_equal(outputs[f"label_{t}"], predicted[:, t])
            np.testing.assert_allclose(
                outputs[f"probabilities_{t}"], proba[n_proba], rtol=0, atol=1e-5
            )
            n_proba += 1
        else:
            value = predicted[:, t].astype(np.float64)
            scale = 1.0 if scales is None else scales[t]
            np.testing.assert_allclose(
                outputs[f"value_{t}"], value, rtol=1e-5, atol=1e-5 * scale
            )
    assert n_proba == len(proba)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 6)).astype(np.float32)
    Y = np.empty((240, 3), dtype=object)
    Y[:, 0] = (X[:, 0] + X[:, 1] > 0).astype(int)
    Y[:, 1] = np.where(X[:, 2] > 0.5, "high", np.where(X[:, 2] < -0.5, "low", "mid"))
    Y[:, 2] = 40.0 * X[:, 3] - 10.0 * X[:, 4] + 500.0
    return X, Y


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(batch_norm=True, dropout=0.2),
        dict(head_layer_sizes=(8,), activation="tanh"),
        dict(architecture="mmoe", n_experts=3),
        dict(architecture="mmoe", hidden_layer_sizes=(12, 8), head_layer_sizes=(6,)),
        dict(
            architecture="mmoe",
            hidden_layer_sizes=(12, 8),
            batch_norm=True,
            activation="gelu",
        ),
        dict(hidden_layer_sizes=(12, 8), activation="logistic", dropout="concrete"),
        dict(hidden_layer_sizes=(), head_layer_sizes=(8,), activation="identity"),
    ],
    ids=[
        "shared",
        "batch_norm",
        "head_layers",
        "mmoe",
        "mmoe_head_layers",
        "mmoe_batch_norm_gelu",
        "concrete_logistic",
        "no_trunk",
    ],
)
def test_classifier_int_and_string_labels(data, params):
    X, Y = data
    clf = MultiTaskNetClassifier(**{**FAST, **params}).fit(X, Y[:, :2])
    onx = to_onnx(clf, X[:1])
    outputs = run(onx, {"X": X})
    assert list(outputs) == ["label_0", "probabilities_0", "label_1", "probabilities_1"]
    assert outputs["label_0"].dtype == np.int64
    assert set(outputs["label_1"]) <= {"high", "low", "mid"}
    assert outputs["probabilities_1"].shape == (len(X), 3)
    assert_reproduces(clf, outputs, X)


def test_one_task_string_labels(data):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y[:, 1].astype(str))
    outputs = run(to_onnx(clf, X[:1]), {"X": X[:7]})
    assert list(outputs) == ["label_0", "probabilities_0"]
    np.testing.assert_array_equal(outputs["label_0"], clf.predict(X[:7]))
    np.testing.assert_allclose(
        outputs["probabilities_0"], clf.predict_proba(X[:7]), atol=1e-5
    )


def test_bool_and_float_labels(data):
    X, Y = data
    y = np.empty((len(X), 2), dtype=object)
    y[:, 0] = Y[:, 0] == 1
    y[:, 1] = np.where(Y[:, 1] == "high", 2.0, -1.0)
    clf = MultiTaskNetClassifier(**FAST).fit(X, y)
    outputs = run(to_onnx(clf, X[:1]), {"X": X})
    assert outputs["label_0"].dtype == np.bool_
    assert outputs["label_1"].dtype == np.float64
    assert_reproduces(clf, outputs, X)


@pytest.mark.parametrize("architecture", ["shared", "mmoe"])
def test_regressor(data, architecture):
    X, Y = data
    y = np.column_stack([Y[:, 2].astype(float), X[:, 5] * 0.01])
    reg = MultiTaskNetRegressor(**FAST, architecture=architecture, batch_norm=True)
    reg.fit(X, y)
    outputs = run(to_onnx(reg, X[:1]), {"X": X})
    assert list(outputs) == ["value_0", "value_1"]
    assert outputs["value_0"].shape == (len(X),)
    assert outputs["value_0"].dtype == np.float64
    assert_reproduces(reg, outputs, X, scales=y.std(axis=0))


@pytest.mark.parametrize("head_layer_sizes", [(), (6,)])
def test_mixed_tasks(data, head_layer_sizes):
    X, Y = data
    net = MultiTaskNet(
        **FAST, head_layer_sizes=head_layer_sizes, architecture="mmoe"
    ).fit(X, Y)
    outputs = run(to_onnx(net, X[:1]), {"X": X})
    assert list(outputs) == [
        "label_0",
        "probabilities_0",
        "label_1",
        "probabilities_1",
        "value_2",
    ]
    assert_reproduces(net, outputs, X, scales=[1, 1, Y[:, 2].astype(float).std()])


def test_loaded_model_exports_the_same_graph_outputs(data, tmp_path):
    X, Y = data
    net = MultiTaskNet(**FAST, batch_norm=True).fit(X, Y)
    save(net, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    before = run(to_onnx(net, X[:1]), {"X": X})
    after = run(to_onnx(loaded, X[:1]), {"X": X})
    assert list(after) == list(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_auxiliary_tasks_are_not_exported(data):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y[:, 1], aux_targets=Y[:, [0, 2]])
    outputs = run(to_onnx(clf, X[:1]), {"X": X})
    assert list(outputs) == ["label_0", "probabilities_0"]
    assert_reproduces(clf, outputs, X)


def test_float64_and_sparse_samples_type_the_input(data):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y[:, 0].astype(int))
    X64 = X.astype(np.float64)
    outputs = run(to_onnx(clf, X64[:1]), {"X": X64})
    assert_reproduces(clf, outputs, X64)
    onx = to_onnx(clf, sp.csr_matrix(X[:2]))
    assert onx.graph.input[0].type.tensor_type.elem_type == 1  # float32
    assert_reproduces(clf, run(onx, {"X": X}), X)


def test_frame_sample_gives_one_input_per_column(data):
    X, Y = data
    df = pd.DataFrame(X.astype(np.float64), columns=[f"x{j}" for j in range(6)])
    reg = MultiTaskNetRegressor(**FAST).fit(df, Y[:, 2].astype(float))
    onx = to_onnx(reg, df[:1])
    assert [i.name for i in onx.graph.input] == list(df.columns)
    outputs = run(onx, {c: df[[c]].to_numpy() for c in df.columns})
    assert_reproduces(reg, outputs, df, scales=[Y[:, 2].astype(float).std()])


@pytest.fixture(scope="module")
def frame():
    rng = np.random.RandomState(1)
    n = 240
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
        }
    )
    Y = pd.DataFrame(
        {
            "buys": np.where((X.age > 40) ^ (X.city == "nice"), "yes", "no"),
            "spend": 0.01 * X.income + 3 * X.age,
        }
    )
    return X, Y


def frame_feeds(X):
    return {c: X[[c]].to_numpy() for c in X.columns}


@pytest.mark.parametrize("via", ["sklearn_mtl", "skl2onnx"])
def test_column_transformer_pipeline(frame, via):
    X, Y = frame
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "income"]),
                ("cat", OneHotEncoder(), ["city"]),
            ]
        ),
        MultiTaskNet(**FAST),
    ).fit(X, Y)
    if via == "sklearn_mtl":
        onx = to_onnx(pipe, X[:1])
    else:
        register_onnx_converters()
        onx = skl2onnx.to_onnx(pipe, X[:1])
    assert [i.name for i in onx.graph.input] == ["age", "income", "city"]
    outputs = run(onx, frame_feeds(X))
    assert list(outputs) == ["label_0", "probabilities_0", "value_1"]
    assert_reproduces(pipe, outputs, X, scales=[1, Y.spend.std()])


@pytest.mark.parametrize("via", ["sklearn_mtl", "skl2onnx"])
def test_scaler_pipeline(data, via):
    X, Y = data
    X = X.astype(np.float64) * 100 + 7
    pipe = make_pipeline(StandardScaler(), MultiTaskNetClassifier(**FAST))
    pipe.fit(X, Y[:, :2])
    if via == "sklearn_mtl":
        onx = to_onnx(pipe, X[:1])
    else:
        register_onnx_converters()
        onx = skl2onnx.to_onnx(pipe, X[:1])
    assert_reproduces(pipe, run(onx, {"X": X}), X)


@pytest.mark.parametrize("ensemble", ["bagging", "stacking", "calibrated"])
def test_scikit_learn_ensembles_through_skl2onnx(data, ensemble):
    """skl2onnx's converters of ensembles read our label and probabilities."""
    X, Y = data
    net = MultiTaskNetClassifier(**FAST)
    model = {
        "bagging": BaggingClassifier(net, n_estimators=2, random_state=0),
        "stacking": StackingClassifier([("net", net), ("lr", LogisticRegression())]),
        "calibrated": CalibratedClassifierCV(net, cv=2),
    }[ensemble].fit(X, Y[:, 1].astype(str))
    register_onnx_converters()
    onx = skl2onnx.to_onnx(model, X[:1], options={"zipmap": False})
    label, proba = run(onx, {"X": X}).values()
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)


def test_unfitted_model_is_an_error(data):
    X, _ = data
    with pytest.raises(NotFittedError, match="model must be fitted.*MultiTaskNetReg"):
        to_onnx(MultiTaskNetRegressor(), X[:1])
    pipe = make_pipeline(StandardScaler(), MultiTaskNetClassifier())
    with pytest.raises(NotFittedError, match="step 'multitasknetclassifier'"):
        to_onnx(pipe, X[:1])


def test_not_our_model_is_an_error(data):
    X, Y = data
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        X, Y[:, 0].astype(int)
    )
    with pytest.raises(TypeError, match="last step 'logisticregression' is a Log"):
        to_onnx(pipe, X[:1])
    with pytest.raises(TypeError, match="model must be a fitted.*got a LogisticReg"):
        to_onnx(pipe[-1], X[:1])


def test_monte_carlo_model_is_an_error(data):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST, dropout=0.3, mc_samples=5)
    clf.fit(X, Y[:, 0].astype(int))
    with pytest.raises(ValueError, match=r"set_params\(mc_samples=0\)"):
        to_onnx(clf, X[:1])
    clf.set_params(mc_samples=0)
    assert_reproduces(clf, run(to_onnx(clf, X[:1]), {"X": X}), X)


def test_bad_sample_is_an_error(data):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y[:, 0].astype(int))
    with pytest.raises(ValueError, match="X_sample has 4 features.*fitted with 6"):
        to_onnx(clf, X[:1, :4])
    with pytest.raises(ValueError, match="X_sample must be 2-D.*got shape \\(6,\\)"):
        to_onnx(clf, X[0])
    with pytest.raises(ValueError, match="X_sample must be a few rows"):
        to_onnx(clf, None)
    with pytest.raises(TypeError, match="X_sample has dtype complex128"):
        to_onnx(clf, X[:1].astype(complex))


def test_missing_skl2onnx_is_an_import_error_with_the_fix(data, monkeypatch):
    X, Y = data
    clf = MultiTaskNetClassifier(**FAST).fit(X, Y[:, 0].astype(int))
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'sklearn-mtl\[onnx\]'"):
        to_onnx(clf, X[:1])
