import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from sklearn_mtl import MultiTaskNetRegressor

FAST = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=100, random_state=0)


@pytest.fixture(scope="module")
def scaled_tasks():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(300, 5))
    small = np.sin(X[:, 0]) + X[:, 1] ** 2
    large = 1e3 * (np.cos(X[:, 2]) + X[:, 1] * X[:, 3])
    return X, np.column_stack([small, large])


def test_tasks_on_scales_1e3_apart_both_learn(scaled_tasks):
    X, y = scaled_tasks
    reg = MultiTaskNetRegressor(**FAST).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape and pred.dtype == np.float64
    # Without standardisation the large task's loss would swamp the small one.
    linear = [r2_score(y[:, t], LinearRegression().fit(X, y[:, t]).predict(X)) for t in range(2)]
    for t in range(2):
        assert r2_score(y[:, t], pred[:, t]) > max(0.8, linear[t] + 0.2)
    assert abs(pred[:, 1].std() / pred[:, 0].std()) > 100


def test_one_d_target_gives_one_d_prediction(scaled_tasks):
    X, y = scaled_tasks
    reg = MultiTaskNetRegressor(**FAST).fit(X, y[:, 0])
    assert reg.predict(X).shape == (len(X),)
    assert reg.n_outputs_ == 1
    assert reg.score(X, y[:, 0]) > 0.8


def test_missing_targets(scaled_tasks):
    X, y = scaled_tasks
    y = y.copy()
    y[::3, 1] = np.nan
    reg = MultiTaskNetRegressor(**FAST).fit(X, y)
    pred = reg.predict(X)
    assert np.all(np.isfinite(pred))
    labelled = ~np.isnan(y[:, 1])
    expected = np.mean([r2_score(y[:, 0], pred[:, 0]), r2_score(y[labelled, 1], pred[labelled, 1])])
    assert reg.score(X, y) == pytest.approx(expected)


def test_partial_fit_keeps_first_scaling(scaled_tasks):
    X, y = scaled_tasks
    reg = MultiTaskNetRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-2, random_state=0)
    for _ in range(40):
        reg.partial_fit(X, y)
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 40
    scale = reg.tasks_[1].scale
    reg.partial_fit(X[:10], y[:10] * 5)
    assert reg.tasks_[1].scale == scale
    assert reg.score(X, y) > 0.7


def test_targets_are_standardised_with_the_sample_weights(scaled_tasks):
    X, y = scaled_tasks
    params = dict(FAST, max_iter=20)
    counts = np.random.RandomState(0).randint(0, 3, size=len(X))  # bootstrap-like
    garbage = y.copy()
    garbage[counts == 0] = 1e6  # far-off targets on the zero-weight rows
    weighted = MultiTaskNetRegressor(**params).fit(X, garbage, sample_weight=counts)
    drawn = counts > 0
    kept = MultiTaskNetRegressor(**params).fit(X[drawn], y[drawn], sample_weight=counts[drawn])
    np.testing.assert_allclose(weighted.predict(X), kept.predict(X), rtol=1e-6)
    repeated = np.repeat(np.arange(len(X)), counts)
    for t in range(2):
        assert weighted.tasks_[t].mean == pytest.approx(y[repeated, t].mean())
        assert weighted.tasks_[t].scale == pytest.approx(y[repeated, t].std())
