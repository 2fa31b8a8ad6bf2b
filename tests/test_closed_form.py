"""The training step with its gradients in closed form (``_closed_form``)."""

import numpy as np
import pytest
import torch

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier
from sklearn_mtl._closed_form import ClosedFormStep

KINDS = ["classification", "classification", "regression", "classification"]


def _data(n=90, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    Y = np.column_stack([
        X[:, 0] > 0, rng.randint(0, 3, n), 2 * X[:, 1] + 1, X[:, 2] + X[:, 3] > 0,
    ]).astype(object)
    return X, Y


def _batch(n, seed=1):
    # Encoded targets (class indices, standardised values) and loss weights
    # with missing labels, uneven weights and a task without any label.
    rng = np.random.RandomState(seed)
    targets = np.column_stack([
        rng.randint(0, 2, n), rng.randint(0, 3, n), rng.normal(size=n), rng.randint(0, 2, n),
    ])
    weights = (rng.rand(n, 4) > 0.25) * rng.uniform(0.5, 2.0, size=(n, 4))
    weights[:, 3] = 0
    return torch.as_tensor(targets, dtype=torch.float32), torch.as_tensor(
        weights, dtype=torch.float32
    )


def _gradients(net, run):
    torch.manual_seed(3)  # the same dropout masks for both
    net._zero_grad_optimizer(set_to_none=True)
    outputs, loss = run()
    return outputs.detach(), loss.detach(), [p.grad.clone() for p in net.module_.parameters()]


@pytest.mark.parametrize(
    "activation, hidden, dropout, l1_ratio",
    [
        *[
            (activation, hidden, dropout, 0.0)
            for activation in ["relu", "tanh", "logistic", "identity"]
            for hidden in [(), (7,), (7, 5)]
            for dropout in [0.0, 0.3]
        ],
        ("relu", (7, 5), 0.3, 0.5),
        ("tanh", (7,), 0.0, 1.0),
    ],
)
def test_closed_form_step_matches_autograd(activation, hidden, dropout, l1_ratio):
    # The gradients as train_step leaves them for the optimizer: the
    # closed form writes the penalty's L2 part, penalty_gradient adds the
    # rest (all of it after autograd's backward pass).
    X, Y = _data()
    est = MultiTaskNet(
        hidden, activation=activation, dropout=dropout, task_types=KINDS,
        task_weights=[1.0, 2.0, 0.5, 1.0], alpha=1e-2, l1_ratio=l1_ratio, max_iter=1,
        early_stopping=False, random_state=0,
    ).fit(X, Y)
    net = est.net_
    step = ClosedFormStep.build(net)
    assert step is not None
    net._set_training(True)
    Xb = torch.as_tensor(X)
    targets, weights = _batch(len(X))

    def autograd():
        outputs = net.infer(Xb)
        loss = net.get_loss(outputs, (targets, weights), training=True)
        loss.backward()
        net.penalty_gradient()
        return outputs, loss

    def closed_form():
        outputs, loss = step(Xb, targets, weights)
        net.penalty_gradient(l2=False)
        return outputs, loss

    out_a, loss_a, grads_a = _gradients(net, autograd)
    sums_a = net.criterion_.last_sums_.clone()
    losses_a = net.criterion_.last_losses_.detach().clone()
    out_c, loss_c, grads_c = _gradients(net, closed_form)
    torch.testing.assert_close(out_c, out_a)
    torch.testing.assert_close(loss_c, loss_a)
    torch.testing.assert_close(net.criterion_.last_sums_, sums_a)
    torch.testing.assert_close(net.criterion_.last_losses_, losses_a)
    assert net.criterion_.last_losses_.grad_fn is None
    for grad_c, grad_a in zip(grads_c, grads_a):
        torch.testing.assert_close(grad_c, grad_a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {"batch_norm": True},
        {"dropout": "concrete"},
        {"head_layer_sizes": (4,)},
        {"architecture": "mmoe", "n_experts": 2},
        {"activation": "gelu"},
        {"task_balancing": "uncertainty"},
        {"task_balancing": "gradnorm"},
        {"task_balancing": "pcgrad"},
        {"adversarial_epsilon": 0.01},
        {"trunk_learning_rate": 0.0},
    ],
)
def test_other_networks_train_through_autograd(params):
    X, Y = _data()
    est = MultiTaskNet(
        (5,), task_types=KINDS, max_iter=1, early_stopping=False, random_state=0, **params
    ).fit(X, Y)
    assert ClosedFormStep.build(est.net_) is None


def test_sparse_input_trains_through_autograd():
    import scipy.sparse as sp

    X, Y = _data()
    est = MultiTaskNet(
        (5,), task_types=KINDS, max_iter=1, early_stopping=False, random_state=0
    ).fit(sp.csr_matrix(X), Y)
    assert est.net_.module_.sparse_input
    assert ClosedFormStep.build(est.net_) is None


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_fit_takes_the_closed_form_and_ends_where_autograd_does(monkeypatch, dropout):
    X, Y = _data(200)
    y = Y[:, [0, 3]].astype(int)
    params = {
        "hidden_layer_sizes": (8, 6), "dropout": dropout, "max_iter": 5,
        "batch_size": 32, "early_stopping": False, "random_state": 0,
    }
    calls = []
    original = ClosedFormStep.__call__
    monkeypatch.setattr(
        ClosedFormStep, "__call__",
        lambda self, *args: calls.append(1) or original(self, *args),
    )
    closed = MultiTaskNetClassifier(**params).fit(X, y)
    assert len(calls) == 5 * 7  # every batch of every epoch
    assert closed.net_.closed_form_ is None  # not kept after the fit
    monkeypatch.setattr(ClosedFormStep, "build", classmethod(lambda cls, net: None))
    autograd = MultiTaskNetClassifier(**params).fit(X, y)
    for a, b in zip(closed.net_.module_.parameters(), autograd.net_.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(closed.loss_curve_, autograd.loss_curve_, rtol=1e-5)
    np.testing.assert_array_equal(closed.predict(X), autograd.predict(X))


def test_a_net_pickled_during_a_fit_takes_its_step_along(tmp_path):
    import pickle

    from skorch.callbacks import Checkpoint

    X, Y = _data(120)
    y = Y[:, [0, 3]].astype(int)
    est = MultiTaskNetClassifier(
        (6,), activation="tanh", max_iter=2, early_stopping=False, random_state=0,
        callbacks=[Checkpoint(monitor=None, f_pickle="net.pkl", f_params=None,
                              f_optimizer=None, f_criterion=None, f_history=None,
                              dirname=str(tmp_path))],
    ).fit(X, y)
    with open(tmp_path / "net.pkl", "rb") as f:
        net = pickle.load(f)
    assert isinstance(net.closed_form_, ClosedFormStep)  # pickled mid-fit
    for a, b in zip(net.module_.parameters(), est.net_.module_.parameters()):
        torch.testing.assert_close(a, b)


def test_dynamic_weight_average_takes_the_closed_form_with_its_weights(monkeypatch):
    # DWA's weights change between epochs, not within a step: the closed
    # form reads them (criterion.balance()) and ends where autograd does.
    X, Y = _data(150)
    params = {
        "hidden_layer_sizes": (6,), "task_types": KINDS, "task_balancing": "dwa",
        "max_iter": 6, "early_stopping": False, "random_state": 0,
    }
    closed = MultiTaskNet(**params).fit(X, Y)
    assert ClosedFormStep.build(closed.net_) is not None
    weights = closed.net_.history[:, "task_weight0"]
    assert len(set(weights)) > 1  # the weights moved
    monkeypatch.setattr(ClosedFormStep, "build", classmethod(lambda cls, net: None))
    autograd = MultiTaskNet(**params).fit(X, Y)
    np.testing.assert_allclose(
        weights, autograd.net_.history[:, "task_weight0"], rtol=1e-5
    )
    for a, b in zip(closed.net_.module_.parameters(), autograd.net_.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_parameters_frozen_by_a_callback_stay_frozen(monkeypatch):
    # skorch's Freezer turns requires_grad off in its on_epoch_begin, after
    # the net's own: that epoch goes through autograd, which leaves them be.
    from skorch.callbacks import Freezer

    X, Y = _data(120)
    y = Y[:, [0, 3]].astype(int)
    params = {
        "hidden_layer_sizes": (6,), "max_iter": 3, "early_stopping": False,
        "random_state": 0,
    }
    frozen = MultiTaskNetClassifier(**params, callbacks=[Freezer("trunk.*")]).fit(X, y)
    initial = MultiTaskNetClassifier(**params, learning_rate_init=1e-12).fit(X, y)
    torch.testing.assert_close(
        frozen.net_.module_.trunk[0].weight, initial.net_.module_.trunk[0].weight
    )
    assert not frozen.net_.module_.trunk[0].weight.requires_grad
    monkeypatch.setattr(ClosedFormStep, "build", classmethod(lambda cls, net: None))
    autograd = MultiTaskNetClassifier(**params, callbacks=[Freezer("trunk.*")]).fit(X, y)
    for a, b in zip(frozen.net_.module_.parameters(), autograd.net_.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_its_validation_outputs_are_the_modules(activation):
    # The validation pass of a closed-form network runs its layers'
    # operations directly: the module's outputs in evaluation mode, exactly.
    X, Y = _data()
    est = MultiTaskNet(
        (7, 5), activation=activation, dropout=0.3, task_types=KINDS, max_iter=2,
        early_stopping=False, random_state=0,
    ).fit(X, Y)
    net = est.net_
    step = ClosedFormStep.build(net)
    net._set_training(False)
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        assert torch.equal(step.outputs(Xt), net.module_(Xt))


def test_a_hooked_network_trains_through_its_module(monkeypatch):
    # A forward hook (here registered by a callback after the first epoch)
    # is called in every later batch of both phases: from that epoch on the
    # network trains and validates through its module and autograd.
    from skorch.callbacks import Callback

    X, Y = _data(200)
    y = Y[:, [0, 3]].astype(int)
    seen, steps = [], []

    class Hook(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if len(net.history) == 2:
                net.module_.trunk[0].register_forward_hook(
                    lambda module, args, out: seen.append(net.module_.training)
                )

    original = ClosedFormStep.__call__
    monkeypatch.setattr(
        ClosedFormStep, "__call__", lambda self, *a: steps.append(1) or original(self, *a)
    )
    est = MultiTaskNetClassifier(
        (6,), max_iter=3, batch_size=50, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=0, callbacks=[Hook()],
    ).fit(X, y)
    assert len(est.net_.history) == 3
    assert len(steps) == 4  # the first epoch's four training batches only
    assert seen == [True] * 4 + [False] + [True] * 4 + [False]
    assert ClosedFormStep.build(est.net_) is None
    from torch.nn.modules.module import register_module_forward_hook

    plain = MultiTaskNetClassifier((6,), max_iter=1, random_state=0).fit(X, y)
    assert ClosedFormStep.build(plain.net_) is not None
    handle = register_module_forward_hook(lambda *args: None)
    try:
        assert ClosedFormStep.build(plain.net_) is None  # a global hook too
    finally:
        handle.remove()
    plain.net_.module_.trunk[0].weight.register_hook(lambda grad: grad)
    assert ClosedFormStep.build(plain.net_) is None  # and a gradient hook


def test_a_hook_registered_for_one_batch_is_called():
    # A callback that listens per batch may register a hook for one batch:
    # that batch goes through the module (training and validation alike).
    from skorch.callbacks import Callback

    X, Y = _data(200)
    y = Y[:, [0, 3]].astype(int)
    calls = []

    class OneBatch(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            self.handle = net.module_.trunk[0].register_forward_hook(
                lambda module, args, out: calls.append(training)
            )

        def on_batch_end(self, net, **kwargs):
            self.handle.remove()

    MultiTaskNetClassifier(
        (6,), max_iter=2, batch_size=50, early_stopping=True, validation_fraction=0.2,
        n_iter_no_change=10, random_state=0, callbacks=[OneBatch()],
    ).fit(X, y)
    assert calls == ([True] * 4 + [False]) * 2


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": 1e-2},
        {"alpha": 1e-2, "l1_ratio": 0.5, "dropout": 0.2},
        {"alpha": 1e-3, "task_balancing": "dwa"},
    ],
)
def test_deferred_losses_are_the_steps_own(monkeypatch, params):
    # With no callback listening per batch, a phase's closed-form losses are
    # computed at its end; with one, at every step. The training and the
    # records are the same to the bit (dynamic weight average reads the
    # epoch's per-task losses: a last-bit difference would change its
    # weights, and the training from there on).
    from skorch.callbacks import Callback

    class Listener(Callback):
        def on_batch_end(self, net, **kwargs):
            pass

    returned = []
    original = ClosedFormStep.__call__
    monkeypatch.setattr(
        ClosedFormStep, "__call__",
        lambda self, *a: returned.append(original(self, *a)) or returned[-1],
    )
    X, Y = _data(400)
    fits = [
        MultiTaskNet(
            (7, 5), task_types=KINDS, max_iter=10, batch_size=32, early_stopping=True,
            validation_fraction=0.1, n_iter_no_change=20, random_state=0,
            callbacks=callbacks, **params,
        ).fit(X, Y)
        for callbacks in ([], [Listener()])
    ]
    steps = 10 * 12  # 360 training rows in batches of 32
    assert [loss is None for _, loss in returned] == [True] * steps + [False] * steps
    deferred, eager = (fit.net_ for fit in fits)
    for a, b in zip(deferred.module_.parameters(), eager.module_.parameters()):
        assert torch.equal(a, b)
    keys = ["train_loss", "valid_loss", *(f"train_loss_task{t}" for t in range(4))]
    if params.get("task_balancing") == "dwa":
        keys += [f"task_weight{t}" for t in range(4)]
        assert len(set(deferred.history[:, "task_weight0"])) > 1  # they moved
    for key in keys:
        np.testing.assert_array_equal(deferred.history[:, key], eager.history[:, key])
    np.testing.assert_array_equal(
        deferred.history[:, "batches", :, "train_loss"],
        eager.history[:, "batches", :, "train_loss"],
    )
    for name in ("last_sums_", "last_losses_"):
        assert torch.equal(getattr(deferred.criterion_, name), getattr(eager.criterion_, name))
