"""Sparse input: CSR batches, the layer that reads their non-zeros, the lazy
step and penalty of its weight, and every feature on sparse X."""

import io
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from sklearn_mtl import (
    MultiTaskNetClassifier,
    MultiTaskNetRegressor,
    load,
    save,
)
from sklearn_mtl._data import BatchIterator, make_dataset
from sklearn_mtl._sparse import (
    LazyAdam,
    SparseLinear,
    _CSRProduct,
    coalesced,
    csr_batch,
    lazy_penalty_gradient,
    repeat_rows,
    take_rows,
)

SMALL = {"hidden_layer_sizes": (8,), "learning_rate_init": 1e-2, "max_iter": 4, "random_state": 0}


@pytest.fixture(autouse=True)
def quiet_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    """CSR 160 x 30 (about 5 non-zeros a row, features 25-29 never set) and
    two binary tasks read from the first features."""
    rng = np.random.RandomState(0)
    X = sp.random(160, 25, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    X = sp.hstack([X, sp.csr_matrix((160, 5), dtype=np.float32)], format="csr")
    dense = X.toarray()
    Y = np.column_stack([dense[:, :3].sum(1) > 0.3, dense[:, 3:6].sum(1) > 0.3])
    return X, Y.astype(int)


def _proba_close(a, b, atol=1e-5):
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pa, pb, atol=atol, rtol=0)


# -- the layer and the batches -----------------------------------------------


def test_sparse_linear_draws_and_stores_what_linear_does():
    torch.manual_seed(3)
    linear = nn.Linear(7, 4)
    torch.manual_seed(3)
    layer = SparseLinear(7, 4)
    assert layer.weight.shape == (7, 4)
    torch.testing.assert_close(layer.weight.t(), linear.weight, rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, linear.bias, rtol=0, atol=0)
    state = layer.state_dict()
    assert state["weight"].shape == (4, 7)  # nn.Linear's layout
    other = nn.Linear(7, 4)
    other.load_state_dict(state)
    torch.testing.assert_close(other.weight, linear.weight)
    back = SparseLinear(7, 4)
    back.load_state_dict(linear.state_dict())
    torch.testing.assert_close(back.weight, layer.weight)


def test_sparse_linear_reads_csr_from_its_non_zeros():
    X = sp.random(6, 9, density=0.3, format="csr", random_state=0, dtype=np.float32)
    batch = csr_batch(X, slice(None), "cpu")
    assert batch.layout == torch.sparse_csr and batch.shape == (6, 9)
    layer = SparseLinear(9, 3, sparse_gradient=True)
    dense = torch.from_numpy(X.toarray())
    expected = dense @ layer.weight.detach() + layer.bias.detach()
    out = layer(batch)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(layer(dense), expected)
    out.sum().backward()
    grad = layer.weight.grad
    assert grad.is_sparse
    used = np.unique(X.indices)
    assert set(grad.coalesce().indices()[0].tolist()) == set(used.tolist())
    torch.testing.assert_close(grad.to_dense(), dense.t() @ torch.ones(6, 3))


@pytest.mark.parametrize("case", ["random", "duplicates", "empty rows", "no non-zero"])
def test_csr_gradient_is_embedding_bags_coalesced(case):
    rng = np.random.RandomState(0)
    X = sp.random(7, 40, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    if case == "empty rows":
        X = X.tolil()
        X[[1, 4]] = 0
        X = X.tocsr()
    if case == "no non-zero":
        X = sp.csr_matrix((7, 40), dtype=np.float32)
    if case == "duplicates":  # a non-canonical matrix: (0, 3) held twice
        X = sp.csr_matrix(
            (np.array([1.0, 2.0, 0.5, 4.0], dtype=np.float32),
             np.array([3, 3, 9, 3]), np.array([0, 3, 3, 3, 4, 4, 4, 4])), shape=(7, 40),
        )
    batch = csr_batch(X, slice(None), "cpu")
    crow, col = batch.crow_indices(), batch.col_indices()
    grad = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    weight = torch.randn(40, 5, requires_grad=True)
    values = batch.values().clone().requires_grad_(True)
    torch.nn.functional.embedding_bag(
        col, weight, crow, mode="sum", per_sample_weights=values,
        include_last_offset=True, sparse=True,
    ).backward(grad)
    expected_weight, expected_values = weight.grad.coalesce(), values.grad
    if case != "no non-zero":  # one row per non-zero: coalesced sums them
        unsorted = coalesced(weight.grad)
        torch.testing.assert_close(unsorted.indices(), expected_weight.indices())
        torch.testing.assert_close(unsorted.values(), expected_weight.values())
    weight.grad = values.grad = None
    out = _CSRProduct.apply(crow, col, values, weight)
    torch.testing.assert_close(out, torch.from_numpy(X.toarray()) @ weight.detach())
    out.backward(grad)
    got = coalesced(weight.grad)  # sorted rows: flagged, nothing summed
    assert got.is_coalesced() and got._values().data_ptr() == weight.grad._values().data_ptr()
    torch.testing.assert_close(got.indices(), expected_weight.indices())
    torch.testing.assert_close(got.values(), expected_weight.values())
    torch.testing.assert_close(values.grad, expected_values)


def test_dense_rows_still_give_a_row_sparse_gradient():
    layer = SparseLinear(5, 2, sparse_gradient=True)
    X = torch.tensor([[1.0, 0, 2, 0, 0], [0, 0, 3, 0, 0]], requires_grad=True)
    layer(X).sum().backward()
    grad = layer.weight.grad.coalesce()
    assert grad.is_sparse and grad.indices()[0].tolist() == [0, 2]
    torch.testing.assert_close(X.grad, layer.weight.detach().sum(1).expand(2, 5))


def test_row_helpers_slice_and_repeat_csr_as_dense():
    X = sp.random(5, 4, density=0.5, format="csr", random_state=1, dtype=np.float32)
    batch, dense = csr_batch(X, slice(None), "cpu"), torch.from_numpy(X.toarray())
    torch.testing.assert_close(take_rows(batch, 1, 4).to_dense(), dense[1:4])
    torch.testing.assert_close(take_rows(batch, 3, 99).to_dense(), dense[3:])
    torch.testing.assert_close(repeat_rows(batch, 3).to_dense(), dense.repeat(3, 1))


def test_net_fitted_on_csr_reads_csr_batches(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    module = est.net_.module_
    assert module.sparse_input and isinstance(module.trunk[0], SparseLinear)
    assert module.input_layers == [module.trunk[0]]
    dataset = make_dataset(X)
    batch, _ = next(iter(est.net_.get_iterator(dataset)))
    assert batch.layout == torch.sparse_csr
    torch.testing.assert_close(batch.to_dense(), torch.from_numpy(X[:len(batch)].toarray()))
    # A dataset read by no sparse net keeps dense batches.
    plain, _ = next(iter(BatchIterator(make_dataset(X), batch_size=16)))
    assert plain.layout == torch.strided


def test_net_fitted_on_dense_keeps_dense_layers_and_reads_csr_densified(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL).fit(X.toarray(), Y)
    assert type(est.net_.module_.trunk[0]) is nn.Linear
    assert not hasattr(est.net_, "optimizer_sparse_")
    _proba_close(est.predict_proba(X), est.predict_proba(X.toarray()), atol=1e-6)


# -- equivalence ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"architecture": "mmoe", "n_experts": 2},
        {"hidden_layer_sizes": ()},
        {"head_layer_sizes": (4,), "hidden_layer_sizes": ()},
        {"batch_norm": True, "alpha": 1e-2, "l1_ratio": 0.5},
    ],
)
def test_sgd_fit_on_csr_equals_fit_on_dense(data, params):
    X, Y = data
    kwargs = {**SMALL, "solver": "sgd", **params}
    sparse = MultiTaskNetClassifier(**kwargs).fit(X, Y)
    assert not hasattr(sparse.net_, "optimizer_sparse_")  # dense gradient
    dense = MultiTaskNetClassifier(**kwargs).fit(X.toarray(), Y)
    _proba_close(sparse.predict_proba(X), dense.predict_proba(X.toarray()))
    _proba_close(sparse.predict_proba(X.toarray()), sparse.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-5)


@pytest.mark.parametrize("solver", ["adam", "adagrad", "rmsprop", "adamw"])
def test_csr_fit_predicts_the_same_for_csr_and_dense_X(data, solver):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL, solver=solver).fit(X, Y)
    lazy = solver in ("adam", "adagrad")
    assert hasattr(est.net_, "optimizer_sparse_") == lazy
    assert est.net_.module_.trunk[0].sparse_gradient == lazy
    _proba_close(est.predict_proba(X), est.predict_proba(X.toarray()), atol=1e-6)
    assert est.score(X, Y) > 0.5


def test_adagrad_sparse_step_is_exact(data):
    # An untouched row has a zero gradient: Adagrad's sparse step equals its
    # dense step (up to float rounding).
    X, Y = data
    kwargs = {**SMALL, "solver": "adagrad", "alpha": 0.0}
    sparse = MultiTaskNetClassifier(**kwargs).fit(X, Y)
    dense = MultiTaskNetClassifier(**kwargs).fit(X.toarray(), Y)
    _proba_close(sparse.predict_proba(X), dense.predict_proba(X.toarray()), atol=1e-4)


# -- the lazy step and the lazy penalty ----------------------------------------


def test_lazy_adam_is_sparse_adams_step():
    torch.manual_seed(0)
    start = torch.randn(10, 3)
    ours, theirs = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    a = LazyAdam([ours], lr=0.1)
    b = torch.optim.SparseAdam([theirs], lr=0.1)
    for step in range(4):
        rows = torch.tensor([[step, 2, 7, 2]])
        grad = torch.sparse_coo_tensor(rows, torch.randn(4, 3), (10, 3))
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        a.step()
        b.step()
    torch.testing.assert_close(ours, theirs)
    untouched = [4, 5, 6, 8, 9]
    torch.testing.assert_close(ours.detach()[untouched], start[untouched], rtol=0, atol=0)
    assert a.state[ours]["step"] == 4
    dense = nn.Parameter(start.clone())
    dense.grad = torch.ones_like(dense)
    with pytest.raises(RuntimeError, match="row-sparse"):
        LazyAdam([dense]).step()
    with pytest.raises(ValueError, match="lr must be positive"):
        LazyAdam([dense], lr=0.0)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3, 1.0])
def test_lazy_penalty_gradient_decays_the_batch_rows_only(l1_ratio):
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(6, 2))
    values = torch.randn(3, 2)
    weight.grad = torch.sparse_coo_tensor(torch.tensor([[1, 4, 1]]), values, (6, 2))
    lazy_penalty_gradient(weight, alpha=0.5, l1_ratio=l1_ratio)
    W = weight.detach()
    expected = torch.zeros(6, 2)
    expected[1] = values[0] + values[2]
    expected[4] = values[1]
    penalty = 0.5 * ((1 - l1_ratio) * W + l1_ratio * W.sign())
    expected[[1, 4]] += penalty[[1, 4]]
    torch.testing.assert_close(weight.grad.to_dense(), expected)


def test_adam_steps_only_the_rows_of_the_features_a_batch_holds(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL, alpha=1e-2).fit(X, Y)
    weight = est.net_.module_.trunk[0].weight
    assert isinstance(est.net_.optimizer_sparse_, LazyAdam)
    # Features 25-29 are never set: their rows keep their initial values,
    # also under the L2 penalty (lazy decay).
    before = weight.detach().clone()
    only_first = X.tolil()
    only_first[:, 3:] = 0
    est.partial_fit(only_first.tocsr(), Y)
    after = weight.detach()
    used = np.unique(only_first.tocsr().indices)
    others = np.setdiff1d(np.arange(X.shape[1]), used)
    torch.testing.assert_close(after[others], before[others], rtol=0, atol=0)
    assert (after[used] != before[used]).all(dim=1).all()


def test_penalty_value_of_a_lazy_weight_is_refreshed_each_epoch(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL, alpha=0.1).fit(X, Y)
    net = est.net_
    W = net.module_.trunk[0].weight.detach()
    assert net.lazy_penalty_ is not None
    net.lazy_penalty_ = None
    others = [w for w in net.module_.weight_matrices() if w is not net.module_.trunk[0].weight]
    expected = 0.1 * 0.5 * sum(float(w.detach().square().sum()) for w in [W, *others])
    assert math.isclose(float(net.penalty()), expected, rel_tol=1e-5)


# -- learning rates with two optimizers ------------------------------------------


def test_trunk_and_retuned_learning_rates_reach_both_optimizers(data):
    X, Y = data
    est = MultiTaskNetClassifier(
        **{**SMALL, "dropout": "concrete"}, trunk_learning_rate=0.002, warm_start=True
    ).fit(X, Y)
    net = est.net_
    assert [g["lr"] for g in net.optimizer_sparse_.param_groups] == [0.002]
    dense = {len(g["params"]): g["lr"] for g in net.optimizer_.param_groups}
    logit = next(g for g in net.optimizer_.param_groups if g["lr"] == 0.1)
    assert len(logit["params"]) == 1 and 0.002 in dense.values()
    est.set_params(learning_rate_init=0.02, trunk_learning_rate=0.005).fit(X, Y)
    assert [g["lr"] for g in net.optimizer_sparse_.param_groups] == [0.005]
    lrs = sorted(g["lr"] for g in net.optimizer_.param_groups)
    assert lrs == pytest.approx([0.005, 0.02, 0.2])  # trunk, heads, learned rate


def test_frozen_trunk_on_csr_keeps_the_sparse_weight(data):
    X, Y = data
    source = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    est = MultiTaskNetClassifier(**SMALL, pretrained=source, trunk_learning_rate=0.0)
    est.fit(X, Y)
    torch.testing.assert_close(
        est.net_.module_.trunk[0].weight, source.net_.module_.trunk[0].weight
    )


# -- every feature on sparse X ---------------------------------------------------


def test_group_lasso_on_csr_matches_dense_and_zeroes_features(data):
    X, Y = data
    kwargs = {**SMALL, "solver": "sgd", "group_lasso": 1.0, "max_iter": 8, "batch_size": 32}
    sparse = MultiTaskNetClassifier(**kwargs).fit(X, Y)
    dense = MultiTaskNetClassifier(**kwargs).fit(X.toarray(), Y)
    np.testing.assert_allclose(
        sparse.feature_importances_, dense.feature_importances_, rtol=1e-4, atol=1e-6
    )
    assert (sparse.feature_importances_ == 0).sum() > 0
    lazy = MultiTaskNetClassifier(**{**kwargs, "solver": "adam"}).fit(X, Y)
    norms = lazy.net_.module_.trunk[0].weight.detach().norm(dim=1).numpy()
    np.testing.assert_allclose(lazy.feature_importances_, norms, rtol=1e-5)
    assert (lazy.feature_importances_ == 0).sum() > 0


def test_mmoe_on_csr_has_sparse_gates(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL, architecture="mmoe", n_experts=3).fit(X, Y)
    module = est.net_.module_
    assert isinstance(module.gates, SparseLinear) and module.gates.sparse_gradient
    assert len(module.sparse_gradient_weights()) == 2
    _proba_close(est.predict_proba(X), est.predict_proba(X.toarray()), atol=1e-6)
    gates = module.gate_weights(csr_batch(X, slice(0, 5), "cpu"))
    torch.testing.assert_close(gates.sum(dim=2), torch.ones(5, 2))


@pytest.mark.parametrize("hidden", [(8,), ()])
def test_monte_carlo_passes_on_csr_equal_dense(data, hidden):
    X, Y = data
    y = Y[:, 0] + X.toarray()[:, 0]
    est = MultiTaskNetRegressor(
        **{**SMALL, "hidden_layer_sizes": hidden}, dropout=0.3 if hidden else 0.0,
        mc_samples=5,
    ).fit(X, y)
    np.testing.assert_allclose(est.predict(X), est.predict(X.toarray()), atol=1e-5)
    if hidden:
        mean, std = est.predict(X, return_std=True)
        dense_mean, dense_std = est.predict(X.toarray(), return_std=True)
        np.testing.assert_allclose(mean, dense_mean, atol=1e-5)
        np.testing.assert_allclose(std, dense_std, atol=1e-5)
        assert (std > 0).mean() > 0.5


def test_onnx_export_of_a_csr_fit(data):
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn_mtl import to_onnx

    X, Y = data
    for params in ({}, {"hidden_layer_sizes": ()}, {"architecture": "mmoe", "n_experts": 2}):
        est = MultiTaskNetClassifier(**{**SMALL, **params}).fit(X, Y)
        onx = to_onnx(est, X[:2])
        session = ort.InferenceSession(
            onx.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, {"X": X.toarray()})))
        for t, proba in enumerate(est.predict_proba(X)):
            np.testing.assert_allclose(out[f"probabilities_{t}"], proba, atol=1e-5)


def test_save_and_load_keep_sparse_input_and_both_optimizer_states(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    buffer = io.BytesIO()
    save(est, buffer)
    buffer.seek(0)
    loaded = load(buffer)
    assert loaded._sparse_input and isinstance(loaded.net_.module_.trunk[0], SparseLinear)
    _proba_close(loaded.predict_proba(X), est.predict_proba(X), atol=0)
    state = loaded.net_.optimizer_sparse_.state_dict()["state"]
    assert state and state[0]["step"] == est.net_.optimizer_sparse_.state_dict()["state"][0]["step"]
    torch.manual_seed(0)
    est.partial_fit(X, Y)
    torch.manual_seed(0)
    loaded.partial_fit(X, Y)
    _proba_close(loaded.predict_proba(X), est.predict_proba(X), atol=1e-6)


def test_a_file_written_before_sparse_input_loads_as_a_dense_net(data):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    buffer = io.BytesIO()
    save(est, buffer, include_optimizer=False)
    buffer.seek(0)
    content = torch.load(buffer, weights_only=True)
    del content["attributes"]["_sparse_input"]
    old = io.BytesIO()
    torch.save(content, old)
    old.seek(0)
    loaded = load(old)
    assert type(loaded.net_.module_.trunk[0]) is nn.Linear
    _proba_close(loaded.predict_proba(X), est.predict_proba(X), atol=1e-6)


def test_trunk_moves_between_dense_and_sparse_nets(data):
    X, Y = data
    sparse = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    state = sparse.net_.trunk_state()
    assert state["0.linear.weight"].shape == (8, X.shape[1])  # (out, in)
    dense = MultiTaskNetClassifier(**{**SMALL, "max_iter": 1}, pretrained=sparse)
    dense.fit(X.toarray(), Y)
    assert type(dense.net_.module_.trunk[0]) is nn.Linear
    back = MultiTaskNetClassifier(**SMALL, pretrained=dense, trunk_learning_rate=0.0)
    back.fit(X, Y)
    np.testing.assert_allclose(back.transform(X), dense.transform(X.toarray()), atol=1e-5)
    np.testing.assert_allclose(sparse.transform(X), sparse.transform(X.toarray()), atol=1e-6)


def test_adversarial_training_on_csr_densifies_the_batches(data):
    X, Y = data
    kwargs = {**SMALL, "adversarial_epsilon": 0.05, "solver": "sgd"}
    sparse = MultiTaskNetClassifier(**kwargs).fit(X, Y)
    dense = MultiTaskNetClassifier(**kwargs).fit(X.toarray(), Y)
    _proba_close(sparse.predict_proba(X), dense.predict_proba(X.toarray()))
    lazy = MultiTaskNetClassifier(**{**kwargs, "solver": "adam"}).fit(X, Y)
    clean = MultiTaskNetClassifier(**{**kwargs, "solver": "adam", "adversarial_epsilon": 0.0})
    clean.fit(X, Y)
    # A dense perturbation touches every feature: the rows never set move too.
    moved = lazy.net_.module_.trunk[0].weight.detach()[25:]
    kept = clean.net_.module_.trunk[0].weight.detach()[25:]
    assert not torch.equal(moved, kept)


def test_early_stopping_sample_weight_and_missing_labels_on_csr(data):
    X, Y = data
    Y = Y.astype(float)
    Y[::5, 1] = np.nan
    weight = np.linspace(0.5, 2.0, X.shape[0])
    kwargs = {**SMALL, "solver": "sgd", "early_stopping": True, "max_iter": 6}
    sparse = MultiTaskNetClassifier(**kwargs).fit(X, Y, sample_weight=weight)
    dense = MultiTaskNetClassifier(**kwargs).fit(X.toarray(), Y, sample_weight=weight)
    assert sparse.validation_scores_ == pytest.approx(dense.validation_scores_)
    _proba_close(sparse.predict_proba(X), dense.predict_proba(X.toarray()))


def test_partial_fit_on_dense_rows_trains_a_sparse_net_as_on_csr(data):
    X, Y = data
    a = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    b = MultiTaskNetClassifier(**SMALL).fit(X, Y)
    a.partial_fit(X.toarray(), Y)
    b.partial_fit(X, Y)
    assert isinstance(a.net_.module_.trunk[0], SparseLinear)
    _proba_close(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("balancing", ["pcgrad", "gradnorm"])
def test_gradient_balancing_on_csr_uses_dense_gradients(data, balancing):
    X, Y = data
    est = MultiTaskNetClassifier(**SMALL, task_balancing=balancing).fit(X, Y)
    assert not est.net_.module_.trunk[0].sparse_gradient
    assert not hasattr(est.net_, "optimizer_sparse_")
    _proba_close(est.predict_proba(X), est.predict_proba(X.toarray()), atol=1e-6)


def test_every_pass_of_a_csr_model_reads_csr_batches():
    # Training, plain and Monte-Carlo prediction, transform and validation:
    # the input layer sees CSR tensors, never a densified batch.
    # 600 rows: prediction goes through the margin head (from 512 rows).
    X = sp.random(600, 400, density=0.02, format="csr", random_state=0, dtype=np.float32)
    totals = np.asarray(X.sum(axis=1)).ravel()
    y = (totals > np.median(totals)).astype(int)
    est = MultiTaskNetClassifier(
        (8,), dropout=0.2, max_iter=2, early_stopping=True, n_iter_no_change=5,
        random_state=0,
    )
    est.fit(X, y)
    layer = est.net_.module_.input_layers[0]
    seen = []
    forward = layer.forward
    layer.forward = lambda inputs: (seen.append(inputs.layout), forward(inputs))[1]
    est.set_params(warm_start=True, max_iter=1).fit(X, y)
    est.predict_proba(X)
    est.transform(X)
    est.set_params(mc_samples=3).predict(X)
    assert seen and set(seen) == {torch.sparse_csr}
    est.set_params(mc_samples=0)
    _proba_close(est.predict_proba(X), est.predict_proba(X.toarray()), atol=1e-6)
