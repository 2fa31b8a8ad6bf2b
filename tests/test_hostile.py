"""Hostile input: every outcome is a fit or a clear error naming the argument.

Property-based: hypothesis draws shapes, dtypes, NaN/inf, empty arrays,
object and sparse inputs for fit / predict / predict_proba / score; the
only acceptable outcomes are success or a ValueError / TypeError whose
message names the offending argument.
"""

import os
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skorch.callbacks import Callback

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor

SETTINGS = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", 25)), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TINY = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=8, random_state=0)
DTYPES = [np.float32, np.float64, np.int64, np.bool_, object, "U3", np.complex128]
SPECIAL = [np.nan, np.inf, -np.inf, 1e39, -1e300]


@st.composite
def matrices(draw, n_rows=None, n_cols=None):
    """2-D (sometimes 1-D or 3-D) inputs of many dtypes, dense or sparse."""
    n = draw(st.integers(0, 12)) if n_rows is None else n_rows
    d = draw(st.integers(0, 4)) if n_cols is None else n_cols
    values = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-3, 3, width=32)))
    if n * d and not draw(st.integers(0, 3)):
        values.flat[draw(st.integers(0, n * d - 1))] = draw(st.sampled_from(SPECIAL))
    # Valid numbers half of the time, so that fits happen as well.
    dtype = draw(st.sampled_from([np.float64, np.float32, *DTYPES]))
    if dtype == "U3":
        X = values.astype(str).astype("U3")
    elif dtype is object:
        X = values.astype(object)
        if n * d and draw(st.booleans()):
            X.flat[0] = draw(st.sampled_from(["a", None, [1.0], {"k": 1}]))
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            X = values.astype(dtype)
    layout = draw(st.sampled_from(["2d"] * 4 + ["sparse", "sparse", "1d", "3d"]))
    if layout == "sparse" and X.dtype.kind in "fiub":
        return sp.csr_matrix(X)
    if layout == "1d":
        return X.ravel()
    if layout == "3d":
        return X.reshape(n, d, 1)
    return X


@st.composite
def targets(draw, n):
    """1-D or 2-D labels: ints, strings, floats with NaN, objects, wrong lengths."""
    length = n if draw(st.integers(0, 5)) else draw(st.integers(0, 12))
    kind = draw(st.sampled_from(["int", "str", "float", "object", "2d", "all-nan"]))
    rng = np.random.RandomState(draw(st.integers(0, 1000)))
    if kind == "int":
        return rng.randint(0, 3, length)
    if kind == "str":
        return rng.choice(["a", "b"], length)
    if kind == "float":
        y = rng.normal(size=length)
        if length:
            y[0] = draw(st.sampled_from([np.nan, np.inf, 0.0]))
        return y
    if kind == "object":
        return np.array([rng.choice(["a", 1, None]) for _ in range(length)], dtype=object)
    if kind == "all-nan":
        return np.full(length, np.nan)
    return rng.randint(0, 2, (length, draw(st.integers(0, 3))))


def _names(error, *arguments):
    """Whether ``error`` is a clear input error naming one of ``arguments``."""
    message = str(error)
    return any(re.search(rf"\b{re.escape(a)}\b", message) for a in arguments)


def _fit_or_clear_error(est, X, y, *arguments):
    try:
        est.fit(X, y)
    except (ValueError, TypeError) as error:
        assert _names(error, *arguments), f"{type(error).__name__}: {error}"
        return False
    return True


@pytest.mark.filterwarnings("ignore")
@SETTINGS
@given(data=st.data(), regressor=st.booleans())
def test_fit_succeeds_or_names_the_argument(data, regressor):
    X = data.draw(matrices())
    y = data.draw(targets(X.shape[0] if X.ndim else 0))
    est = (MultiTaskNetRegressor if regressor else MultiTaskNetClassifier)(**TINY)
    if _fit_or_clear_error(est, X, y, "X", "y"):
        assert est.predict(X).shape[0] == X.shape[0]


@pytest.mark.filterwarnings("ignore")
@SETTINGS
@given(
    X=st.integers(2, 12).flatmap(
        lambda n: hnp.arrays(
            np.float64, st.tuples(st.just(n), st.integers(1, 4)),
            elements=st.integers(-5, 5).map(float),
        )
    ),
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
    sparse=st.booleans(),
    n_tasks=st.integers(1, 3),
    seed=st.integers(0, 100),
)
def test_valid_input_of_any_small_shape_fits(X, dtype, sparse, n_tasks, seed):
    X = X.astype(dtype)
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, (len(X), n_tasks))
    y[:2] = [[0] * n_tasks, [1] * n_tasks]  # two classes in every task
    X = sp.csr_matrix(X) if sparse else X
    est = MultiTaskNetClassifier(**TINY).fit(X, y)
    assert est.predict(X).shape == (X.shape[0], n_tasks)
    for proba in est.predict_proba(X):
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert 0 <= est.score(X, y) <= 1


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    return MultiTaskNetClassifier(**TINY).fit(X, y), y


@pytest.mark.filterwarnings("ignore")
@SETTINGS
@given(data=st.data())
def test_predict_succeeds_or_names_the_argument(fitted, data):
    est, y_fit = fitted
    X = data.draw(matrices(n_cols=data.draw(st.sampled_from([3, 3, 2, 0]))))
    y = data.draw(targets(X.shape[0] if X.ndim else 0))
    for method, args in (
        ("predict", (X,)), ("predict_proba", (X,)), ("score", (X, y)),
    ):
        try:
            out = getattr(est, method)(*args)
        except (ValueError, TypeError) as error:
            assert _names(error, "X", "y"), f"{method}: {type(error).__name__}: {error}"
        else:
            if method == "predict":
                assert out.shape == (X.shape[0], 2)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.empty((0, 3)), r"\bX\b.*0 sample"),
        (np.empty((5, 0)), r"\bX\b.*0 feature"),
        (np.array([[1.0, np.nan]] * 4), r"Input X contains NaN"),
        (np.array([[1.0, np.inf]] * 4), r"Input X contains infinity"),
        (np.array([["a", "b"]] * 4, dtype=object), r"\bX\b"),
        (np.array([[1 + 1j, 2.0]] * 4), r"\bX\b.*[Cc]omplex"),
    ],
    ids=["no rows", "no columns", "nan", "inf", "strings", "complex"],
)
def test_bad_X_messages(X, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MultiTaskNetClassifier(**TINY).fit(X, np.arange(len(X)) % 2)


class Interrupt(Callback):
    """Presses Ctrl-C at the end of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_a_usable_model(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size])
    est = MultiTaskNetClassifier(
        hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=1e-2, random_state=0,
        callbacks=[("interrupt", Interrupt(epoch=5))],
    ).fit(X, y)
    assert est.n_iter_ == 5
    assert len(est.loss_curve_) == 5
    assert est.predict(X).shape == (len(X), 2)
    assert est.score(X, y) > 0.6
