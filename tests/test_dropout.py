"""Monte-Carlo dropout, concrete dropout and group-lasso input selection."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._tasks import OutputLayout


def layout(sizes):
    """An output layout with these head sizes (the module reads only the sizes)."""
    return OutputLayout(("classification",) * len(sizes), tuple(sizes))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def wave():
    """y = sin(3x) + noise, with x in [-1, 1]."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(300, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=300)
    return X, y


@pytest.fixture(scope="module")
def mc_regressor(wave):
    X, y = wave
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MultiTaskNetRegressor(
            (64, 64),
            dropout=0.2,
            mc_samples=50,
            learning_rate_init=1e-2,
            max_iter=100,
            random_state=0,
        ).fit(X, y)


# -- Monte-Carlo dropout ---------------------------------------------------------


def test_mc_std_grows_away_from_training_data(mc_regressor):
    inside = np.linspace(-0.9, 0.9, 19)[:, None]
    near = np.r_[np.linspace(-2, -1.5, 5), np.linspace(1.5, 2, 5)][:, None]
    far = np.r_[np.linspace(-4, -3.5, 5), np.linspace(3.5, 4, 5)][:, None]
    _, std_in = mc_regressor.predict(inside, return_std=True)
    _, std_near = mc_regressor.predict(near, return_std=True)
    mean_far, std_far = mc_regressor.predict(far, return_std=True)
    assert std_in.shape == (19,) and std_far.shape == (10,)
    assert std_near.mean() > 1.5 * std_in.mean()
    assert std_far.mean() > 1.5 * std_near.mean()
    assert np.all(np.isfinite(mean_far))


def test_mc_without_dropout_is_deterministic_and_reports_no_std(wave):
    # Every pass is the same without a dropout layer: the mean is the plain
    # prediction, and a standard deviation of zeros (which would read as
    # certainty) is refused, as with mc_samples=0.
    X, y = wave
    reg = MultiTaskNetRegressor(
        (32,), dropout=0.0, mc_samples=20, max_iter=20, random_state=0
    ).fit(X, y)
    mean = reg.predict(X[:50])
    with pytest.raises(ValueError, match="has no dropout layer"):
        reg.predict(X[:50], return_std=True)
    deterministic = reg.set_params(mc_samples=0).predict(X[:50])
    np.testing.assert_allclose(mean, deterministic, rtol=1e-5, atol=1e-6)


def test_mc_mean_close_to_deterministic_prediction(mc_regressor, wave):
    X, _ = wave
    mean = mc_regressor.predict(X[:100])
    deterministic = mc_regressor.set_params(mc_samples=0).predict(X[:100])
    mc_regressor.set_params(mc_samples=50)
    assert not np.allclose(mean, deterministic)
    assert np.abs(mean - deterministic).mean() < 0.1


def test_return_std_needs_mc_samples(wave):
    X, y = wave
    reg = MultiTaskNetRegressor((16,), dropout=0.2, max_iter=5, random_state=0)
    reg.fit(X, y)
    with pytest.raises(ValueError, match="mc_samples.*got mc_samples=0"):
        reg.predict(X, return_std=True)


def test_mc_std_on_target_scale_and_2d_shape(wave):
    X, y = wave
    params = dict(dropout=0.3, mc_samples=30, max_iter=30, random_state=0)
    Y = np.column_stack([y, -y])
    small = MultiTaskNetRegressor((32,), **params).fit(X, Y)
    large = MultiTaskNetRegressor((32,), **params).fit(X, Y * [1.0, 1000.0])
    mean_s, std_s = small.predict(X[:20], return_std=True)
    mean_l, std_l = large.predict(X[:20], return_std=True)
    assert std_s.shape == (20, 2) and mean_s.shape == (20, 2)
    assert np.all(std_s > 0)
    # The targets are standardised, so both nets are the same up to scale.
    np.testing.assert_allclose(std_l, std_s * [1.0, 1000.0], rtol=1e-4)


def test_mc_reproducible_and_global_rng_untouched(mc_regressor, wave):
    X, _ = wave
    state = torch.random.get_rng_state()
    first = mc_regressor.predict(X[:40], return_std=True)
    assert torch.equal(state, torch.random.get_rng_state())
    second = mc_regressor.predict(X[:40], return_std=True)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_mc_classifier_predict_matches_predict_proba(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size]).astype(object)
    clf = MultiTaskNetClassifier(
        (32, 32), dropout=0.3, mc_samples=25, max_iter=60, early_stopping=False,
        random_state=0,
    ).fit(X, y)
    proba = clf.predict_proba(X)
    pred = clf.predict(X)
    for t, p in enumerate(proba):
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(pred[:, t], clf.classes_[t][p.argmax(axis=1)])
    # Averaged probabilities are not those of the deterministic network.
    deterministic = clf.set_params(mc_samples=0).predict_proba(X)
    assert not np.allclose(proba[0], deterministic[0])
    assert clf.set_params(mc_samples=25).score(X, y) > 0.8


def test_mc_batches_bounded_rows():
    torch.manual_seed(0)
    from sklearn_mtl._module import MultiTaskModule

    module = MultiTaskModule(3, layout([1]), hidden_layer_sizes=(8, 8), dropout=(0.0, 0.3))
    module.eval()
    X = torch.randn(10, 3)
    mean, std = module.sample(X, 7, max_rows=14)  # two rows per chunk
    assert mean.shape == (10, 1) and std.shape == (10, 1)
    assert torch.all(std > 0)
    # The block before the first dropout layer is deterministic: with only
    # that block the passes agree.
    module = MultiTaskModule(3, layout([1]), hidden_layer_sizes=(8,), dropout=(0.0,))
    mean, std = module.eval().sample(X, 7)
    assert torch.all(std == 0)
    torch.testing.assert_close(mean, module(X))


# -- concrete dropout ------------------------------------------------------------


def _problem(n_samples, noise, seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 5))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + noise * rng.normal(size=n_samples)
    return X, y


def test_concrete_learns_higher_rate_on_small_noisy_problem():
    params = dict(dropout="concrete", max_iter=60, random_state=0)
    small = MultiTaskNetRegressor((64,), batch_size=20, **params)
    small.fit(*_problem(100, 1.0, 0))
    large = MultiTaskNetRegressor((64,), batch_size=200, **params)
    large.fit(*_problem(2000, 0.0, 1))
    assert len(small.dropout_) == len(large.dropout_) == 1
    # Both start at 0.1; one rises, the other falls.
    assert small.dropout_[0] > 0.2
    assert large.dropout_[0] < 0.1
    assert small.dropout_[0] > 2 * large.dropout_[0]


def test_concrete_prediction_deterministic_unless_mc(wave):
    X, y = wave
    reg = MultiTaskNetRegressor(
        (32, 32), dropout="concrete", max_iter=20, random_state=0
    ).fit(X, y)
    assert len(reg.dropout_) == 2
    assert all(0 < rate < 1 for rate in reg.dropout_)
    np.testing.assert_array_equal(reg.predict(X[:30]), reg.predict(X[:30]))
    _, std = reg.set_params(mc_samples=20).predict(X[:30], return_std=True)
    assert np.all(std > 0)


def test_concrete_regularizer_in_training_loss(wave):
    X, y = wave
    reg = MultiTaskNetRegressor(
        (16,), dropout="concrete", max_iter=3, early_stopping=False, random_state=0
    ).fit(X, y)
    net = reg.net_
    net.module_.eval()
    Xt = torch.as_tensor(X, dtype=torch.float32)
    targets = torch.as_tensor((y - y.mean()) / y.std(), dtype=torch.float32)[:, None]
    weights = torch.ones_like(targets)
    with torch.no_grad():
        out = net.module_(Xt)
        plain = net.get_loss(out, (targets, weights), training=False)
        trained = net.get_loss(out, (targets, weights), training=True)
        expected = net.module_.concrete_regularizer(300) + net.penalty()
    torch.testing.assert_close(trained - plain, expected)
    assert net.n_train_rows == 300


def test_fixed_dropout_rates_are_the_fitted_attribute(two_task_data):
    X, colour, _ = two_task_data
    clf = MultiTaskNetClassifier((16, 8), dropout=[0.1, 0.3], max_iter=2)
    assert clf.fit(X, colour).dropout_ == (0.1, 0.3)
    assert clf.set_params(dropout=0.2).fit(X, colour).dropout_ == (0.2, 0.2)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"dropout": "gaussian"}, InvalidParameterError, "'dropout' parameter"),
        ({"mc_samples": -1}, InvalidParameterError, "'mc_samples' parameter"),
        ({"mc_samples": 2.5}, InvalidParameterError, "'mc_samples' parameter"),
        ({"group_lasso": -0.1}, InvalidParameterError, "'group_lasso' parameter"),
        (
            {"dropout": ["concrete", 0.2], "hidden_layer_sizes": (8, 8)},
            ValueError,
            r"one such rate per trunk layer, or 'concrete'; got \['concrete', 0.2\]",
        ),
    ],
)
def test_new_hyperparameters_validated(two_task_data, params, error, match):
    X, colour, _ = two_task_data
    with pytest.raises(error, match=match):
        MultiTaskNetClassifier(max_iter=1, **params).fit(X, colour)


def test_grid_search_over_fixed_and_concrete_dropout(two_task_data):
    from sklearn.model_selection import GridSearchCV

    X, colour, _ = two_task_data
    search = GridSearchCV(
        MultiTaskNetClassifier(
            (16,), learning_rate_init=1e-2, max_iter=30, random_state=0
        ),
        {"dropout": [0.0, "concrete"]},
        cv=2,
    ).fit(X, colour)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_score_ > 0.85
    assert len(search.best_estimator_.dropout_) == 1


# -- group lasso -----------------------------------------------------------------

GROUP_LASSO = dict(hidden_layer_sizes=(32,), max_iter=200, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def five_of_fifty():
    """50 standard normal features; the label depends on the first 5 alike."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 50))
    y = (X[:, :5].sum(axis=1) + 0.5 * rng.normal(size=500) > 0).astype(int)
    return X, y


def test_group_lasso_zeroes_uninformative_features(five_of_fifty):
    X, y = five_of_fifty
    clf = MultiTaskNetClassifier(group_lasso=0.1, **GROUP_LASSO).fit(X, y)
    importances = clf.feature_importances_
    assert importances.shape == (50,)
    assert np.all(importances[:5] > 0.1)
    assert np.sum(importances[5:] == 0) >= 40
    assert importances[5:].max() < 0.2 * importances[:5].min()
    weight = clf.net_.module_.trunk[0].weight.detach().numpy()
    np.testing.assert_array_equal(weight[:, importances == 0], 0)
    assert clf.score(X, y) > 0.85
    # Without the penalty every feature keeps weight.
    plain = MultiTaskNetClassifier(**GROUP_LASSO).fit(X, y)
    assert np.all(plain.feature_importances_ > 0.1)


def test_group_lasso_zeroes_every_uninformative_regression_feature():
    X, y = make_regression(
        n_samples=500, n_features=50, n_informative=5, shuffle=False,
        noise=1.0, random_state=0,
    )
    reg = MultiTaskNetRegressor(group_lasso=0.1, **GROUP_LASSO).fit(X, y)
    importances = reg.feature_importances_
    np.testing.assert_array_equal(importances[5:], 0)
    assert np.all(importances[:5] > 0)
    assert reg.score(X, y) > 0.95


def test_select_from_model_in_pipeline_classifier(five_of_fifty):
    X, y = five_of_fifty
    selector = SelectFromModel(MultiTaskNetClassifier(group_lasso=0.1, **GROUP_LASSO))
    pipe = make_pipeline(StandardScaler(), selector, LogisticRegression()).fit(X, y)
    np.testing.assert_array_equal(np.flatnonzero(selector.get_support()), range(5))
    assert pipe.score(X, y) > 0.9


def test_select_from_model_in_pipeline_regressor():
    X, y = make_regression(
        n_samples=500, n_features=50, n_informative=5, shuffle=False,
        noise=1.0, random_state=0,
    )
    reg = MultiTaskNetRegressor(group_lasso=0.1, **GROUP_LASSO)
    # Features with exactly zero weight are dropped.
    selector = SelectFromModel(reg, threshold=1e-12)
    pipe = make_pipeline(StandardScaler(), selector, Ridge()).fit(X, y)
    np.testing.assert_array_equal(np.flatnonzero(selector.get_support()), range(5))
    assert pipe.score(X, y) > 0.95


def test_feature_importances_without_penalty(two_task_data):
    X, colour, _ = two_task_data
    clf = MultiTaskNetClassifier((16,), max_iter=2, random_state=0)
    with pytest.raises(NotFittedError):
        clf.feature_importances_
    clf.fit(X, colour)
    assert "group_lasso" not in dict(clf.net_.callbacks_)
    importances = clf.feature_importances_
    weight = clf.net_.module_.trunk[0].weight.detach().numpy()
    np.testing.assert_allclose(importances, np.linalg.norm(weight, axis=0), rtol=1e-6)
    assert np.all(importances > 0)


def test_feature_importances_of_linear_model_with_heads(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size]).astype(object)
    clf = MultiTaskNetClassifier(
        (), head_layer_sizes=(8,), group_lasso=0.5, max_iter=30, random_state=0
    ).fit(X, y)
    heads = [head[0].weight.detach().numpy() for head in clf.net_.module_.heads]
    norms = np.sqrt(sum(np.square(w).sum(axis=0) for w in heads))
    np.testing.assert_allclose(clf.feature_importances_, norms, rtol=1e-5)
    # Features 4 to 9 carry no signal for either task.
    assert np.sum(clf.feature_importances_[4:] == 0) >= 4


def test_group_lasso_thresholds_with_the_first_layers_learning_rate():
    # With concrete dropout the rate logits form their own optimiser group
    # (with 10x the learning rate); the proximal step must use the group of
    # the first layer's weights.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0).astype(int)
    clf = MultiTaskNetClassifier(
        hidden_layer_sizes=(8,), dropout="concrete", group_lasso=0.01,
        learning_rate_init=1e-3, max_iter=2, random_state=0,
    ).fit(X, y)
    proximal = dict(clf.net_.callbacks_)["group_lasso"]
    assert proximal.group_["lr"] == 1e-3
    assert any(p is clf.net_.module_.input_layers[0].weight for p in proximal.group_["params"])
    # the logits; the trunk and the heads (one rate)
    assert len(clf.net_.optimizer_.param_groups) == 2
