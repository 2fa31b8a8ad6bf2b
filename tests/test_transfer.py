"""transform, pretrained and trunk_learning_rate: the shared representation
and transfer to new tasks."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline

from sklearn_mtl import (
    MultiTaskNet,
    MultiTaskNetClassifier,
    MultiTaskNetRegressor,
    load,
    save,
)

ESTIMATORS = [MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet]


def make_transfer(n, n_features=20, n_latent=6, n_tasks=8, data_seed=1):
    """Tasks that are thresholds of projections of one nonlinear latent
    representation of X; the last column is a new task built the same way."""
    structure = np.random.RandomState(0)
    W = structure.normal(size=(n_features, n_latent))
    V = structure.normal(size=(n_latent, n_tasks + 1))
    X = np.random.RandomState(data_seed).normal(size=(n, n_features))
    H = np.abs(X @ W) / np.sqrt(n_features)
    logits = (H - H.mean(axis=0)) @ V
    Y = (logits > np.median(logits, axis=0)).astype(int)
    return X.astype(np.float32), Y[:, :n_tasks], Y[:, n_tasks]


@pytest.fixture(scope="module")
def source():
    X, Y, _ = make_transfer(1000)
    return MultiTaskNetClassifier(
        (32,), max_iter=25, learning_rate_init=1e-2, random_state=0
    ).fit(X, Y)


@pytest.fixture(scope="module")
def source_bn():
    X, Y, _ = make_transfer(300)
    return MultiTaskNetClassifier(
        (16, 8), batch_norm=True, dropout=0.2, max_iter=5, random_state=0
    ).fit(X, Y)


def _state(model):
    return {k: v.clone() for k, v in model.net_.module_.state_dict().items()}


# -- transform ----------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_transform_shape_names_and_determinism(Estimator):
    X, Y, _ = make_transfer(120)
    y = Y[:, :2].astype(float) if Estimator is MultiTaskNetRegressor else Y[:, :2]
    est = Estimator(
        (12, 5), dropout=0.3, batch_norm=True, max_iter=3, random_state=0
    ).fit(X, y)
    Z = est.transform(X)
    assert Z.shape == (120, 5) and Z.dtype == np.float64
    # Evaluation mode: no dropout mask, batch norm on running statistics.
    np.testing.assert_array_equal(Z, est.transform(X))
    np.testing.assert_allclose(Z[:7], est.transform(X[:7]), atol=1e-6)  # float32 ulps
    prefix = Estimator.__name__.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}{i}" for i in range(5)]
    # The trunk's output is the input of the heads: they reproduce predict.
    module = est.net_.module_
    with torch.no_grad():
        heads = module.heads[0](torch.as_tensor(Z, dtype=torch.float32))
        full = module(torch.as_tensor(X))
    np.testing.assert_allclose(heads.numpy(), full.numpy(), atol=1e-5)


def test_transform_of_mmoe_is_the_experts_side_by_side():
    X, Y, _ = make_transfer(100)
    est = MultiTaskNetClassifier(
        (6,), architecture="mmoe", n_experts=3, max_iter=3, random_state=0
    ).fit(X, Y[:, :2])
    Z = est.transform(X)
    assert Z.shape == (100, 18)
    assert len(est.get_feature_names_out()) == 18
    with torch.no_grad():
        np.testing.assert_allclose(Z, est.net_.module_.trunk(torch.as_tensor(X)).numpy())


def test_fit_transform_set_output_and_pipeline(source_bn):
    X, Y, _ = make_transfer(80)
    est = MultiTaskNetClassifier((8,), max_iter=3, random_state=0)
    Z = est.fit_transform(X, Y[:, :2])
    np.testing.assert_array_equal(Z, est.transform(X))
    frame = est.set_output(transform="pandas").transform(X)
    assert list(frame.columns) == list(est.get_feature_names_out())
    X_new, _, y_new = make_transfer(200, data_seed=3)
    pipe = make_pipeline(FrozenEstimator(source_bn), LogisticRegression()).fit(
        X_new, y_new
    )
    assert pipe[-1].coef_.shape == (1, 8)


def test_transform_without_trunk_and_before_fit_are_clear_errors():
    X, Y, _ = make_transfer(60)
    with pytest.raises(ValueError, match="not fitted"):
        MultiTaskNetClassifier().transform(X)
    linear = MultiTaskNetClassifier((), max_iter=2, random_state=0).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"no trunk \(hidden_layer_sizes=\(\)\)"):
        linear.transform(X)
    with pytest.raises(ValueError, match="no trunk"):
        linear.get_feature_names_out()
    with pytest.raises(ValueError, match="X has 3 features"):
        MultiTaskNetClassifier((4,), max_iter=2).fit(X, Y[:, 0]).transform(X[:, :3])


# -- pretrained ---------------------------------------------------------------


def test_pretrained_trunk_beats_training_from_scratch_with_few_labels(source):
    X_new, _, y_new = make_transfer(1040, data_seed=2)
    X_train, y_train, X_test, y_test = X_new[:40], y_new[:40], X_new[40:], y_new[40:]
    common = dict(max_iter=60, learning_rate_init=1e-2, random_state=0)
    scratch = MultiTaskNetClassifier((32,), **common).fit(X_train, y_train)
    frozen = MultiTaskNetClassifier(
        pretrained=source, trunk_learning_rate=0.0, **common
    ).fit(X_train, y_train)
    tuned = MultiTaskNetClassifier(
        pretrained=source, trunk_learning_rate=1e-3, **common
    ).fit(X_train, y_train)
    base = scratch.score(X_test, y_test)
    assert frozen.score(X_test, y_test) > base + 0.1
    assert tuned.score(X_test, y_test) > base + 0.1


@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd"])
def test_frozen_trunk_keeps_the_source_transform_and_leaves_it_unchanged(
    source_bn, solver
):
    X, _, y = make_transfer(200, data_seed=4)
    before = _state(source_bn)
    new = MultiTaskNetClassifier(
        pretrained=source_bn, trunk_learning_rate=0.0, alpha=0.1, solver=solver,
        dropout=0.5, max_iter=4, random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(new.transform(X), source_bn.transform(X))
    after = source_bn.net_.module_.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # The heads trained; the trunk's shape is the pretrained one.
    assert new.net_.module_.trunk_shape["hidden_layer_sizes"] == (16, 8)


def test_fine_tuning_moves_the_trunk_but_not_the_source(source_bn):
    X, _, y = make_transfer(200, data_seed=4)
    before = _state(source_bn)
    tuned = MultiTaskNetRegressor(
        pretrained=FrozenEstimator(source_bn), hidden_layer_sizes=(3,), max_iter=3,
        random_state=0,
    ).fit(X, y.astype(float))
    assert tuned.transform(X).shape == (200, 8)  # the pretrained trunk wins
    assert not np.allclose(tuned.transform(X), source_bn.transform(X))
    after = source_bn.net_.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_pretrained_mmoe_transfers_the_experts_not_the_gates():
    X, Y, y = make_transfer(150)
    src = MultiTaskNetClassifier(
        (6,), architecture="mmoe", n_experts=3, max_iter=3, random_state=0
    ).fit(X, Y[:, :4])
    new = MultiTaskNet(pretrained=src, trunk_learning_rate=0.0, max_iter=2, random_state=0)
    new.fit(X, np.column_stack([y, X[:, 0]]))
    np.testing.assert_array_equal(new.transform(X), src.transform(X))
    assert new.net_.module_.gates.out_features == 2 * 3  # its own two tasks


@pytest.mark.parametrize(
    "params", [dict(task_balancing="pcgrad"), dict(dropout="concrete")]
)
def test_frozen_trunk_with_trunk_gradients_or_learned_rates(source_bn, params):
    X, _, y = make_transfer(100, data_seed=7)
    new = MultiTaskNetClassifier(
        pretrained=source_bn, trunk_learning_rate=0.0, max_iter=3, random_state=0,
        **params,
    ).fit(X, np.column_stack([y, 1 - y]))
    np.testing.assert_array_equal(new.transform(X), source_bn.transform(X))
    if params.get("dropout") == "concrete":  # the rates learned all the same
        assert all(rate != pytest.approx(0.1, abs=1e-6) for rate in new.dropout_)


def test_a_warm_start_splits_the_trunk_off_the_default_group():
    # At the default rate the trunk is in the default group (one step); a
    # warm start with another trunk rate gives it a group of its own, with
    # the solver's state (Adam's moments and step count) kept.
    X, Y, _ = make_transfer(100)
    est = MultiTaskNetClassifier((8,), max_iter=2, random_state=0).fit(X, Y[:, 0])
    net = est.net_
    trunk = list(net.module_.trunk.parameters())
    assert len(net.optimizer_.param_groups) == 1
    before = {
        id(p): (int(net.optimizer_.state[p]["step"]), net.optimizer_.state[p]["exp_avg"].clone())
        for p in trunk
    }
    est.set_params(warm_start=True, max_iter=1, trunk_learning_rate=1e-4).fit(X, Y[:, 0])
    groups = net.optimizer_.param_groups
    assert [(g["lr"], len(g["params"])) for g in groups] == [(1e-3, 2), (1e-4, 2)]
    assert all(any(p is q for q in groups[1]["params"]) for p in trunk)
    for p in trunk:  # the state moved with the parameters, then stepped on
        steps, exp_avg = before[id(p)]
        state = net.optimizer_.state[p]
        assert int(state["step"]) == steps + 1  # one epoch of one batch
        assert not torch.equal(state["exp_avg"], exp_avg)


def test_trunk_learning_rate_without_pretrained_sets_the_trunk_group():
    X, Y, _ = make_transfer(100)
    est = MultiTaskNetClassifier(
        (8,), trunk_learning_rate=1e-4, max_iter=2, random_state=0
    ).fit(X, Y[:, 0])
    trunk = est.net_.module_.trunk[0].weight
    groups = est.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups if any(p is trunk for p in g["params"])] == [1e-4]
    assert [g["lr"] for g in groups if not any(p is trunk for p in g["params"])] == [1e-3]
    # A warm start follows the new rate, and 0 freezes it.
    est.set_params(warm_start=True, trunk_learning_rate=0.0)
    weights = trunk.detach().clone()
    est.fit(X, Y[:, 0])
    assert torch.equal(weights, est.net_.module_.trunk[0].weight)


@pytest.mark.parametrize(
    "pretrained, error, match",
    [
        (LogisticRegression(), TypeError, "pretrained must be a fitted"),
        (FrozenEstimator(LogisticRegression()), TypeError, "got a LogisticRegression"),
        (MultiTaskNetClassifier(), ValueError, "pretrained is an unfitted.*FrozenEstimator"),
    ],
)
def test_bad_pretrained_is_a_clear_error(pretrained, error, match):
    X, _, y = make_transfer(50)
    with pytest.raises(error, match=match):
        MultiTaskNetClassifier(pretrained=pretrained, max_iter=1).fit(X, y)


def test_pretrained_with_other_features_or_no_trunk_is_a_clear_error(source_bn):
    X, _, y = make_transfer(50)
    with pytest.raises(ValueError, match="pretrained was fitted on 20 features but X has 5"):
        MultiTaskNetClassifier(pretrained=source_bn, max_iter=1).fit(X[:, :5], y)
    linear = MultiTaskNetClassifier((), max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="pretrained has no trunk"):
        MultiTaskNetClassifier(pretrained=linear, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="group_lasso=0.1 .* trunk_learning_rate=0.0"):
        MultiTaskNetClassifier(
            pretrained=source_bn, trunk_learning_rate=0.0, group_lasso=0.1, max_iter=1
        ).fit(X, y)


# -- clone, searches, persistence -----------------------------------------------


@pytest.mark.parametrize("frozen", [False, True])
def test_clone_and_search_keep_the_pretrained_model(source_bn, frozen):
    source = source_bn
    X, _, y = make_transfer(120, data_seed=5)
    pretrained = FrozenEstimator(source) if frozen else source
    est = MultiTaskNetClassifier(pretrained=pretrained, max_iter=3, random_state=0)
    assert clone(est).pretrained is pretrained
    before = _state(source)
    search = GridSearchCV(
        est, {"trunk_learning_rate": [0.0, 1e-3]}, cv=KFold(2), error_score="raise"
    ).fit(X, y)
    assert search.best_estimator_.transform(X).shape == (120, 8)
    frozen_model = search.cv_results_["params"].index({"trunk_learning_rate": 0.0})
    assert np.isfinite(search.cv_results_["mean_test_score"][frozen_model])
    scores = cross_validate(est, X, y, cv=KFold(2), error_score="raise")
    assert len(scores["test_score"]) == 2
    after = source.net_.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_search_over_pretrained_models_needs_frozen_estimators(source, source_bn):
    X, _, y = make_transfer(80, data_seed=5)
    est = MultiTaskNetClassifier(max_iter=2, random_state=0)
    grid = {"pretrained": [FrozenEstimator(source), FrozenEstimator(source_bn)]}
    search = GridSearchCV(est, grid, cv=KFold(2), error_score="raise").fit(X, y)
    assert search.best_estimator_.transform(X).shape[1] in (32, 8)
    # A bare fitted model in a grid is cloned (unfitted) by the search.
    with pytest.raises(ValueError, match="unfitted.*FrozenEstimator"):
        GridSearchCV(est, {"pretrained": [source]}, cv=KFold(2), error_score="raise").fit(X, y)


def test_save_and_load_a_model_fitted_from_a_pretrained_one(source_bn, tmp_path):
    X, _, y = make_transfer(100, data_seed=6)
    new = MultiTaskNetClassifier(
        pretrained=source_bn, trunk_learning_rate=0.0, dropout=(0.1, 0.0),
        max_iter=2, random_state=0,
    ).fit(X, y)
    save(new, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert loaded.pretrained is None
    np.testing.assert_array_equal(loaded.transform(X), new.transform(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), new.predict_proba(X))
    assert loaded.net_.module_.frozen_trunk
