"""Behaviour shared by both estimators: training, inputs, errors, ecosystem."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from skorch.callbacks import Callback
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._data import BatchIterator, make_dataset
from sklearn_mtl._module import MultiTaskModule
from sklearn_mtl._targets import encode_targets

# A fixed budget of epochs (no early stopping) keeps these fits comparable.
FAST = dict(
    hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=40, early_stopping=False,
    random_state=0,
)


@pytest.fixture(scope="module")
def data(two_task_data):
    X, colour, size = two_task_data
    return X, np.column_stack([colour, size.astype(str)])


def test_pipeline_with_column_transformer_on_pandas():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=300),
            "x2": rng.normal(size=300),
            "city": rng.choice(["paris", "oslo", "rome"], size=300),
        }
    )
    y = pd.DataFrame(
        {
            "north": frame["city"] == "oslo",
            "positive": np.where(frame["x1"] + frame["x2"] > 0, "yes", "no"),
        }
    )
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["x1", "x2"]), ("cat", OneHotEncoder(), ["city"])]
    )
    pipe = make_pipeline(pre, MultiTaskNetClassifier(**FAST)).fit(frame, y)
    assert pipe.score(frame, y) > 0.9
    est = MultiTaskNetClassifier(**FAST).fit(frame[["x1", "x2"]], y)
    assert list(est.feature_names_in_) == ["x1", "x2"]


def test_grid_search_over_dropout_batch_norm_alpha(data):
    X, y = data
    grid = {"dropout": [0.0, 0.3], "batch_norm": [False, True], "alpha": [1e-4, 1e-2]}
    search = GridSearchCV(MultiTaskNetClassifier(**FAST), grid, cv=KFold(3)).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert search.best_score_ > 0.8
    assert set(search.best_params_) == set(grid)


def test_pickle_round_trip_gives_identical_predictions(data):
    X, y = data
    est = MultiTaskNetClassifier(**FAST, dropout=0.2, batch_norm=True).fit(X, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))
    for a, b in zip(clone.predict_proba(X), est.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_same_random_state_gives_identical_predictions(data):
    X, y = data
    params = dict(FAST, dropout=0.3, batch_norm=True, early_stopping=True)
    a = MultiTaskNetClassifier(**params).fit(X, y).predict_proba(X)
    b = MultiTaskNetClassifier(**params).fit(X, y).predict_proba(X)
    c = MultiTaskNetClassifier(**dict(params, random_state=1)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_fit_leaves_global_torch_rng_alone(data):
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MultiTaskNetClassifier(**FAST).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_zero_sample_weight_removes_samples_influence(data):
    X, y = data
    weights = np.ones(len(X))
    weights[:100] = 0
    garbage = y.copy()
    garbage[:100] = garbage[:100][::-1]  # wrong labels on the zero-weight rows
    a = MultiTaskNetClassifier(**FAST).fit(X, garbage, sample_weight=weights)
    b = MultiTaskNetClassifier(**FAST).fit(X[100:], y[100:])
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_allclose(pa, pb, rtol=1e-6, atol=1e-7)


def test_sample_weight_changes_the_fit(data):
    X, y = data
    weights = np.where(y[:, 0] == "red", 10.0, 1.0)
    plain = MultiTaskNetClassifier(**FAST).fit(X, y)
    weighted = MultiTaskNetClassifier(**FAST).fit(X, y, sample_weight=weights)
    assert np.mean(weighted.predict(X)[:, 0] == "red") > np.mean(plain.predict(X)[:, 0] == "red")


def test_early_stopping_restores_best_weights(data):
    X, y = data
    est = MultiTaskNetClassifier(
        **dict(FAST, max_iter=200, learning_rate_init=3e-2, early_stopping=True),
        n_iter_no_change=5,
    ).fit(X, y)
    assert est.n_iter_ < 200
    assert est.best_loss_ is None
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    # The restored weights are those of the best epoch, not the last.
    best_epoch = int(np.argmax(est.validation_scores_))
    assert best_epoch < est.n_iter_ - 1
    stopper = dict(est.net_.callbacks_)["stopping"]
    assert stopper.best_epoch_ == best_epoch + 1


def test_convergence_stops_training_and_max_iter_warns(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MultiTaskNetClassifier(**dict(FAST, max_iter=500), tol=1e-2).fit(X, y)
    assert est.n_iter_ < 500
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MultiTaskNetClassifier(**dict(FAST, max_iter=3)).fit(X, y)


def test_warm_start_continues_training(data):
    X, y = data
    est = MultiTaskNetClassifier(**dict(FAST, max_iter=5), warm_start=True)
    est.fit(X, y)
    first = est.net_.module_
    est.fit(X, y)
    assert est.n_iter_ == 5 and len(est.loss_curve_) == 10
    assert est.net_.module_ is first
    cold = MultiTaskNetClassifier(**dict(FAST, max_iter=5)).fit(X, y)
    cold_module = cold.net_.module_
    cold.fit(X, y)
    assert cold.n_iter_ == 5 and cold.net_.module_ is not cold_module


@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd", "rmsprop", "adagrad"])
def test_every_solver_learns(data, solver):
    X, y = data
    est = MultiTaskNetClassifier(**FAST, solver=solver).fit(X, y)
    assert type(est.net_.optimizer_).__name__.lower() == solver
    assert est.score(X, y) > 0.75


def test_architecture_follows_hyperparameters(data):
    X, y = data
    est = MultiTaskNetClassifier(
        **dict(FAST, hidden_layer_sizes=(16, 8)), head_layer_sizes=(4,),
        dropout=(0.1, 0.5), batch_norm=True, activation="tanh",
    ).fit(X, y)
    module = est.net_.module_
    assert isinstance(module, MultiTaskModule)
    names = [type(m).__name__ for m in module.trunk]
    assert names == ["Linear", "BatchNorm1d", "Tanh", "Dropout"] * 2
    assert [m.p for m in module.trunk if isinstance(m, torch.nn.Dropout)] == [0.1, 0.5]
    assert len(module.heads) == 2
    assert [m.out_features for m in module.heads[1] if isinstance(m, torch.nn.Linear)] == [4, 3]
    fused = MultiTaskNetClassifier(**FAST).fit(X, y).net_.module_
    assert len(fused.heads) == 1 and fused.heads[0].out_features == 5


def test_penalty_is_on_weight_matrices_only(data):
    X, y = data
    est = MultiTaskNetClassifier(**FAST, alpha=0.1, l1_ratio=0.3, batch_norm=True).fit(X, y)
    net = est.net_
    weights = [p for n, p in net.module_.named_parameters() if n.endswith("weight") and p.ndim == 2]
    expected = sum(0.3 * w.abs().sum() + 0.35 * w.square().sum() for w in weights)
    assert net.penalty().item() == pytest.approx(0.1 * expected.item(), rel=1e-5)
    # The gradient written after the backward pass is the penalty's gradient.
    params = list(net.module_.parameters())
    for p in params:
        p.grad = torch.zeros_like(p)
    net.penalty_gradient()
    written = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    (0.1 * expected).backward()
    for p, grad in zip(params, written):
        reference = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(grad, reference)
    strong = MultiTaskNetClassifier(**FAST, alpha=0.1, l1_ratio=1.0).fit(X, y)
    weak = MultiTaskNetClassifier(**FAST, alpha=0.0).fit(X, y)
    first = lambda e: e.net_.module_.trunk[0].weight.detach().abs()
    assert (first(strong) < 1e-2).float().mean() > (first(weak) < 1e-2).float().mean() + 0.3


def test_task_weights_favour_a_task(data):
    X, y = data
    est = MultiTaskNetClassifier(**FAST, task_weights=[1.0, 0.0]).fit(X, y)
    losses = est.net_.criterion_.task_weights
    assert losses.tolist() == [1.0, 0.0]
    assert (est.predict(X)[:, 0] == y[:, 0]).mean() > 0.85


def test_sparse_input_is_batched_without_densifying(data):
    X, y = data
    sparse = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0))
    # SGD: with Adam a CSR fit takes lazy steps, which a dense fit does not.
    dense_fit = MultiTaskNetClassifier(**FAST, solver="sgd").fit(sparse.toarray(), y)
    sparse_fit = MultiTaskNetClassifier(**FAST, solver="sgd").fit(sparse, y)
    np.testing.assert_allclose(
        sparse_fit.predict_proba(sparse)[0], dense_fit.predict_proba(sparse.toarray())[0],
        rtol=1e-4, atol=1e-6,
    )
    dataset = make_dataset(sparse)
    assert sp.issparse(dataset.X)
    batch, _ = next(iter(BatchIterator(dataset, batch_size=50)))
    assert batch.shape == (50, X.shape[1]) and isinstance(batch, torch.Tensor)


def test_batches_are_tensor_slices_not_dataloader(data):
    X, y = data
    est = MultiTaskNetClassifier(**FAST, batch_size=64).fit(X, y)
    assert est.net_.iterator_train is BatchIterator
    dataset = make_dataset(X, np.zeros((len(X), 2), np.float32), np.ones((len(X), 2), np.float32))
    torch.manual_seed(0)
    batches = list(BatchIterator(dataset, batch_size=64, shuffle=True))
    assert [len(b[0]) for b in batches] == [64, 64, 64, 64, 44]
    rows = torch.cat([b[0] for b in batches])
    assert not torch.equal(rows, dataset.X)  # shuffled
    assert torch.equal(rows.sum(0), dataset.X.sum(0)) or torch.allclose(rows.sum(0), dataset.X.sum(0))


def test_verbose_prints_epoch_table(data, capsys):
    X, y = data
    MultiTaskNetClassifier(**dict(FAST, max_iter=2), verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "epoch" in out


def test_user_callbacks_run_and_are_not_mutated(data):
    X, y = data

    class CountEpochs(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    counter = CountEpochs()
    est = MultiTaskNetClassifier(**dict(FAST, max_iter=3), callbacks=[("count", counter)]).fit(X, y)
    assert dict(est.net_.callbacks_)["count"].epochs_ == 3
    assert not hasattr(counter, "epochs_")


def test_regressor_and_classifier_share_one_engine():
    from sklearn_mtl._base import BaseMultiTaskNet

    assert issubclass(MultiTaskNetClassifier, BaseMultiTaskNet)
    assert issubclass(MultiTaskNetRegressor, BaseMultiTaskNet)
    assert "_fit" not in vars(MultiTaskNetClassifier) and "_fit" not in vars(MultiTaskNetRegressor)


# -- bad input -----------------------------------------------------------------

BAD = [
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=(0.1, 0.2)), ValueError, "dropout must have one rate per trunk layer"),
    (dict(dropout=(0.1, 1.5)), ValueError, "dropout"),
    (dict(device="tpu"), ValueError, "device"),
    (dict(task_weights=[1, 2, 3]), ValueError, "task_weights must have one entry per task.*got 3 entries for 2 tasks"),
    (dict(task_weights=[1, -1]), ValueError, "task_weights must be finite and non-negative"),
    (dict(hidden_layer_sizes=(10, 0)), ValueError, "hidden_layer_sizes must be a sequence of positive integers"),
    (dict(solver="lbfgs"), ValueError, "solver"),
    (dict(learning_rate_init=0), ValueError, "learning_rate_init"),
]


@pytest.mark.parametrize("params, error, message", BAD)
def test_bad_hyperparameters(data, params, error, message):
    X, y = data
    with pytest.raises(error, match=message):
        MultiTaskNetClassifier(**dict(FAST, max_iter=1, **params)).fit(X, y)


def test_bad_input_messages(data):
    X, y = data
    est = MultiTaskNetClassifier(**dict(FAST, max_iter=2))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="too large for float32"):
        est.fit(X.astype(np.float64) * 1e300, y)
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    one_class = y.copy()
    one_class[:, 1] = "7"
    with pytest.raises(ValueError, match="Task 1 of y has only one class \\(7\\)"):
        est.fit(X, one_class)
    unlabelled = y.astype(object)
    unlabelled[:, 0] = None
    with pytest.raises(ValueError, match="Task 0 of y has no labelled sample"):
        est.fit(X, unlabelled)
    with pytest.raises(ValueError, match="Unknown label type"):
        est.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="sample_weight must be 1-D .* or 2-D"):
        est.fit(X, y, sample_weight=np.ones((len(X), 3)))
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 9 features, but MultiTaskNetClassifier is expecting 10"):
        est.predict(X[:, :9])
    with pytest.raises(ValueError, match="y has 1 tasks .* fitted on 2"):
        est.partial_fit(X, y[:, 0])


def test_regressor_bad_targets(data):
    X, _ = data
    y = X[:, :2].astype(float).copy()
    y[0, 1] = np.inf
    with pytest.raises(ValueError, match="Input y contains infinity"):
        MultiTaskNetRegressor(**FAST).fit(X, y)
    not_real = "Task 0 of y is a regression task but holds values that are not real"
    with pytest.raises(ValueError, match=not_real):
        MultiTaskNetRegressor(**FAST).fit(X, np.array(["a", "b"] * 150))
    # Neither parsed from text nor cut to their real part, as numpy would.
    with pytest.raises(ValueError, match=not_real + ".* '1.5'"):
        MultiTaskNetRegressor(**FAST).fit(X, np.array(["1.5", "2.5"] * 150))
    with pytest.raises(ValueError, match=not_real + r".* \(1\+2j\)"):
        MultiTaskNetRegressor(**FAST).fit(X, np.array([1 + 2j, 3] * 150))
    mixed = np.array([1.5, "2.5"] * 150, dtype=object)
    with pytest.raises(ValueError, match=not_real):
        MultiTaskNetRegressor(**FAST).fit(X, mixed)
    est = MultiTaskNetRegressor(**FAST, warm_start=True).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="A task of y is a regression task but holds"):
        est.fit(X, X[:, 0].astype(str))


def test_diverging_fit_stops_with_advice():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5)) * 1e3
    y = rng.normal(size=200)
    est = MultiTaskNetRegressor(
        solver="sgd", learning_rate_init=10.0, max_iter=50, early_stopping=False, random_state=0
    )
    with pytest.raises(ValueError, match="diverged.*Lower learning_rate_init \\(currently 10.0\\)"):
        est.fit(X, y)
    # The fit's own state does not outlive it (MultiTaskNetRegressor's
    # network takes the closed-form step, which holds the net).
    assert est.net_.closed_form_ is None and est.net_.valid_outputs_ is None


def test_cuda_without_gpu_is_a_clear_error(data):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, y = data
    with pytest.raises(ValueError, match="device='cuda' was requested but torch finds no CUDA"):
        MultiTaskNetClassifier(**FAST, device="cuda").fit(X, y)
    assert MultiTaskNetClassifier(**dict(FAST, max_iter=2), device="auto").fit(X, y).net_.device == "cpu"


def test_sample_weight_is_normalised_by_its_sum(data):
    X, y = data
    weights = np.random.RandomState(0).uniform(0.5, 2.0, size=len(X))
    counts = MultiTaskNetClassifier(**FAST).fit(X, y, sample_weight=weights)
    summing_to_one = MultiTaskNetClassifier(**FAST).fit(X, y, sample_weight=weights / weights.sum())
    for a, b in zip(counts.predict_proba(X), summing_to_one.predict_proba(X)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_joblib_workers_run_one_torch_thread_each(data):
    # joblib's loky workers cap OpenMP (which torch's intra-op pool follows)
    # at cores // n_jobs, so parallel searches do not oversubscribe the cores.
    import os

    from sklearn.model_selection import cross_validate

    X, y = data

    class RecordThreads(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.history.record("threads", torch.get_num_threads())

    est = MultiTaskNetClassifier(**dict(FAST, max_iter=2), callbacks=[RecordThreads()])
    result = cross_validate(est, X, y, cv=KFold(2), n_jobs=2, return_estimator=True)
    expected = max(os.cpu_count() // 2, 1)
    for fitted in result["estimator"]:
        assert fitted.net_.history[:, "threads"] == [expected, expected]


def test_a_layer_replaced_by_a_callback_is_trained_and_switched():
    # A callback that replaces a trunk layer in place (the module object
    # unchanged) gets the new layer trained and put in each phase's mode.
    from skorch.callbacks import Callback

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    modes, fresh = [], {}

    class Swap(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 2:
                fresh["layer"] = torch.nn.Linear(4, 6)
                fresh["weight"] = fresh["layer"].weight.detach().clone()
                net.module_.trunk[0] = fresh["layer"]
                net.optimizer_.add_param_group({"params": list(fresh["layer"].parameters())})

        def on_batch_begin(self, net, training=False, **kwargs):
            modes.append((training, net.module_.trunk[0].training))

    MultiTaskNetClassifier(
        (6,), max_iter=3, batch_size=50, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=0, callbacks=[Swap()],
    ).fit(X, y)
    assert all(training == mode for training, mode in modes)
    assert not torch.equal(fresh["layer"].weight.detach(), fresh["weight"])  # trained


def test_prediction_and_validation_set_the_mode_once(monkeypatch):
    # Prediction and validation switch the module to evaluation once per
    # pass, not once per batch, and predict without building a graph. After
    # fit the module is in evaluation mode already: predictions switch nothing.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(9000, 4)).astype(np.float32)  # three prediction batches
    y = (X[:, 0] > 0).astype(int)
    clf = MultiTaskNetClassifier((8,), max_iter=1, random_state=0).fit(X, y)
    net = clf.net_
    switches = []
    set_training = net._set_training

    def record(training=True):
        switches.append(training)
        set_training(training)

    monkeypatch.setattr(net, "_set_training", record)
    assert not net.module_.training
    clf.predict_proba(X)
    assert switches == []
    net.module_.train()
    outputs = list(net.forward_iter(make_dataset(X)))
    assert len(outputs) == 3 and all(torch.is_inference(out) for out in outputs)
    assert switches == [False]
    switches.clear()
    targets, weights = encode_targets(clf, X, y, None, None, reset=False)
    valid = net.get_iterator(make_dataset(X, targets, weights), training=False)
    net.history.new_epoch()
    net.run_single_epoch(valid, training=False, prefix="valid", step_fn=net.validation_step)
    assert switches == [False] and net.history[-1, "valid_batch_count"] == 3


def test_prediction_skips_checks_only_for_arrays_they_would_pass(data, monkeypatch):
    import sklearn_mtl._base as base

    X, y = data
    est = MultiTaskNetClassifier(**dict(FAST, max_iter=2)).fit(X, y)
    full = est.predict_proba(X.astype(np.float64))
    calls = []
    checked = base.validate_data
    monkeypatch.setattr(
        base, "validate_data", lambda *a, **k: calls.append(1) or checked(*a, **k)
    )
    # Plain finite float arrays: no scikit-learn check, the same outputs.
    for plain in (X, X.astype(np.float64), np.asfortranarray(X), X[:1]):
        for got, want in zip(est.predict_proba(plain), full):
            np.testing.assert_allclose(got, want[: len(plain)], rtol=1e-6)
    assert calls == []
    # Anything else is checked, with scikit-learn's own errors.
    for bad, message in (
        (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), "contains NaN"),
        (np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), "infinity"),
        (X[:, :9], "X has 9 features"),
        (X[:0], "0 sample"),
        (X[0], "Expected 2D array, got 1D array"),
    ):
        with pytest.raises(ValueError, match=message):
            est.predict(bad)
    # Finite float32 values whose sum overflows take the checked path and pass.
    big = np.full((4, X.shape[1]), 3e38, dtype=np.float32)
    calls.clear()
    assert est.predict(big).shape == (4, 2)
    assert calls == [1]
    est.predict(X.tolist())
    assert len(calls) == 2
    # A model fitted on a DataFrame still warns about arrays without names.
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    named = MultiTaskNetClassifier(**dict(FAST, max_iter=2)).fit(frame, y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        named.predict(X)
