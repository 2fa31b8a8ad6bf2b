"""Task balancing: each method does what its paper claims, on data built for it."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._balancing import BALANCERS
from sklearn_mtl._balancing.dwa import dwa_weights
from sklearn_mtl._balancing.pcgrad import project_conflicts

FAST = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=40, random_state=0)


@pytest.fixture(scope="module")
def signal_and_noise():
    """Task 0 is a function of X; task 1 is pure noise, unrelated to X."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 8))
    signal = X[:, 0] + 0.5 * X[:, 1] ** 2
    return X, np.column_stack([signal, rng.normal(size=600)])


@pytest.mark.parametrize("balancing", list(BALANCERS))
@pytest.mark.parametrize("Estimator", [MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet])
def test_every_estimator_takes_every_method(Estimator, balancing, signal_and_noise):
    X, y = signal_and_noise
    if Estimator is MultiTaskNetClassifier:
        y = y > 0
    elif Estimator is MultiTaskNet:
        y = np.column_stack([y[:, 0] > 0, y[:, 1]]).astype(object)
    est = Estimator(**FAST, task_balancing=balancing, task_weights=[1.0, 2.0]).fit(X, y)
    weights = est.task_weights_
    assert weights.shape == (2,) and np.all(np.isfinite(weights)) and np.all(weights > 0)
    history = est.net_.history
    if balancing == "fixed":
        np.testing.assert_allclose(weights, [1.0, 2.0])
        assert "task_weight0" not in history[-1]
    else:
        assert history[-1, "task_weight1"] == pytest.approx(weights[1], rel=1e-6)
    if balancing in ("fixed", "pcgrad"):  # the static weights, untouched
        np.testing.assert_allclose(weights, [1.0, 2.0])
    assert est.score(X, y) > 0.4


def test_uncertainty_weighting_down_weighs_a_noise_task(signal_and_noise):
    # Kendall et al.: the learned weight of a task tends to 1 / its loss, so
    # a task whose targets are noise (loss ~1 on standardised targets) ends
    # far below one the trunk learns (loss -> small).
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**{**FAST, "max_iter": 60}, task_balancing="uncertainty")
    reg.fit(X, y)
    signal, noise = reg.task_weights_
    assert signal > 5 * noise
    # exp(-s_t) settles near 1 / L_t: the noise task's training loss is ~1.
    assert noise == pytest.approx(1 / reg.net_.history[-1, "train_loss_task1"], rel=0.3)
    fixed = MultiTaskNetRegressor(**{**FAST, "max_iter": 60}).fit(X, y)
    # Weighing the noise task down leaves the signal task better fitted.
    signal_fit = [np.corrcoef(est.predict(X)[:, 0], y[:, 0])[0, 1] for est in (reg, fixed)]
    assert signal_fit[0] >= signal_fit[1] - 0.01


def test_uncertainty_leaves_an_unweighted_task_alone(signal_and_noise):
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**FAST, task_balancing="uncertainty", task_weights=[1, 0])
    reg.fit(X, y)
    assert reg.net_.criterion_.balancer.log_variances[1].item() == 0.0
    assert reg.task_weights_[1] == 0.0 and reg.task_weights_[0] > 1


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slowly(signal_and_noise):
    # Chen et al.: a task whose loss falls slower than the others' (here the
    # noise task, whose loss cannot fall) gets larger gradients, so a larger
    # weight; the weights stay positive and sum to the number of tasks.
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**FAST, task_balancing="gradnorm").fit(X, y)
    signal, noise = reg.task_weights_
    assert noise > 2 * signal
    assert signal + noise == pytest.approx(2.0, rel=1e-4)


def test_gradnorm_evens_out_unequal_static_weights():
    # Two equally hard tasks, one given 10 times the static weight: GradNorm
    # learns weights that bring the weighted gradients back together.
    rng = np.random.RandomState(1)
    X = rng.normal(size=(600, 8))
    y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], np.sin(X[:, 2]) + X[:, 3]])
    reg = MultiTaskNetRegressor(**FAST, task_balancing="gradnorm", task_weights=[10, 1])
    reg.fit(X, y)
    learned = reg.net_.criterion_.balancer.loss_weights.detach().numpy()
    assert learned[0] < learned[1] / 3
    effective = reg.task_weights_
    assert effective[0] / effective[1] < 10 / 3


def test_dwa_weights_follow_the_last_two_epoch_losses(signal_and_noise):
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**FAST, task_balancing="dwa").fit(X, y)
    history = reg.net_.history
    losses = np.array([[epoch[f"train_loss_task{t}"] for t in range(2)] for epoch in history])
    weights = np.array([[epoch[f"task_weight{t}"] for t in range(2)] for epoch in history])
    np.testing.assert_allclose(weights[:2], 1.0)
    for e in range(2, len(history)):
        # Liu et al.: w = n_tasks * softmax(r / 2), r = L(e-1) / L(e-2).
        ratio = losses[e - 1] / losses[e - 2]
        expected = 2 * np.exp(ratio / 2) / np.exp(ratio / 2).sum()
        np.testing.assert_allclose(weights[e], expected, rtol=1e-5)
    # Early on the signal task's loss falls faster: the noise task weighs more.
    assert weights[2, 1] > 1 > weights[2, 0]


def test_dwa_counts_a_task_without_labels_as_unchanged():
    weights = dwa_weights([0.5, float("nan")], [1.0, float("nan")])
    ratio = torch.tensor([0.5, 1.0])
    torch.testing.assert_close(weights, 2 * torch.softmax(ratio / 2, dim=0))


def test_project_conflicts_removes_the_conflicting_component():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, 1.0]])
    projected = project_conflicts(g)
    # Tasks 0 and 1 conflict (dot -1); task 2 agrees with both.
    assert projected[0] @ g[1] == pytest.approx(0.0, abs=1e-6)
    assert projected[1] @ g[0] == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(projected[0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(projected[1], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(projected[2], g[2])
    agreeing = torch.tensor([[1.0, 0.2], [0.5, 1.0]])
    torch.testing.assert_close(project_conflicts(agreeing), agreeing)


class TrunkGradients(Callback):
    """Record, at the first step, the trunk's gradient and each task's own."""

    def on_grad_computed(self, net, named_parameters, batch=None, **kwargs):
        if hasattr(self, "step_"):
            return
        self.step_ = [p.grad.clone() for p in net.module_.shared_parameters()]
        Xb, (targets, weights) = batch
        with torch.enable_grad():
            losses = net.criterion_.per_task(net.module_(Xb), targets, weights)
            self.tasks_ = [
                torch.autograd.grad(loss, net.module_.shared_parameters(), retain_graph=True)
                for loss in losses
            ]


def test_pcgrad_steps_without_the_component_that_conflicts():
    # Two tasks that pull the trunk apart: targets y and -y read through the
    # same head weights, so their trunk gradients point in opposite directions.
    rng = np.random.RandomState(2)
    X = rng.normal(size=(200, 5))
    target = X[:, 0] - X[:, 1]
    y = np.column_stack([target, -target])
    reg = MultiTaskNetRegressor(
        (16,), alpha=0, batch_size=200, max_iter=1, early_stopping=False, random_state=0,
        warm_start=True,
        task_balancing="pcgrad", callbacks=[("grads", TrunkGradients())],
    ).fit(X, y)
    head = reg.net_.module_.heads[0]
    with torch.no_grad():
        head.weight[1] = head.weight[0]
        head.bias[1] = head.bias[0]
    reg.fit(X, y)  # one more step, recorded
    recorder = dict(reg.net_.callbacks_)["grads"]  # the net's copy of the callback
    step = torch.cat([g.ravel() for g in recorder.step_])
    g0, g1 = (torch.cat([g.ravel() for g in grads]) for grads in recorder.tasks_)
    assert g0 @ g1 < 0  # the tasks do conflict
    # Each task's gradient minus its component along the other, summed.
    expected = g0 - (g0 @ g1) / (g1 @ g1) * g1 + g1 - (g1 @ g0) / (g0 @ g0) * g0
    torch.testing.assert_close(step, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(step, g0 + g1, rtol=1e-2)
    # The step no longer goes against either task.
    assert step @ g0 >= -1e-6 and step @ g1 >= -1e-6


@pytest.mark.parametrize("balancing", ["gradnorm", "pcgrad"])
def test_gradient_methods_need_a_trunk(balancing, signal_and_noise):
    X, y = signal_and_noise
    with pytest.raises(ValueError, match="task_balancing.*hidden_layer_sizes"):
        MultiTaskNetRegressor((), task_balancing=balancing).fit(X, y)


def test_unknown_method_is_named(signal_and_noise):
    X, y = signal_and_noise
    with pytest.raises(InvalidParameterError, match="task_balancing"):
        MultiTaskNetRegressor(task_balancing="equal").fit(X, y)


def test_grid_search_chooses_the_method(signal_and_noise):
    X, y = signal_and_noise
    search = GridSearchCV(
        MultiTaskNetRegressor(**{**FAST, "max_iter": 10}),
        {"task_balancing": list(BALANCERS)},
        cv=KFold(2),
    ).fit(X, y)
    assert list(search.cv_results_["param_task_balancing"]) == list(BALANCERS)
    assert search.best_params_["task_balancing"] in BALANCERS


@pytest.mark.parametrize("balancing", list(BALANCERS))
def test_every_method_with_a_mixture_of_experts(balancing, signal_and_noise):
    # The experts are the shared part: GradNorm reads their last layer and
    # PCGrad projects their gradients; the gates stay per task.
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(
        (16, 8), architecture="mmoe", n_experts=3, task_balancing=balancing,
        **{k: v for k, v in FAST.items() if k != "hidden_layer_sizes"},
    ).fit(X, y)
    assert reg.net_.module_.last_shared_weight().shape == (3, 16, 8)
    assert np.all(reg.task_weights_ > 0) and reg.score(X, y) > 0.4


def test_warm_start_follows_the_new_weights_penalty_and_rate(signal_and_noise):
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**{**FAST, "max_iter": 3}, warm_start=True).fit(X, y)
    reg.set_params(task_weights=[0.0, 5.0], alpha=0.5, learning_rate_init=0.02).fit(X, y)
    net = reg.net_
    assert net.alpha == 0.5 and net.lr == 0.02
    # One group: the trunk follows the rate (trunk_learning_rate=None).
    assert [group["lr"] for group in net.optimizer_.param_groups] == [0.02]
    np.testing.assert_array_equal(reg.task_weights_, [0.0, 5.0])
    np.testing.assert_array_equal(net.criterion_.task_weights.numpy(), [0.0, 5.0])


def test_warm_start_refuses_another_balancing_method(signal_and_noise):
    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**{**FAST, "max_iter": 3}, task_balancing="dwa")
    reg.set_params(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="task_balancing is 'fixed'.*fitted with 'dwa'"):
        reg.set_params(task_balancing="fixed").fit(X, y)
    with pytest.raises(ValueError, match="task_balancing"):
        reg.partial_fit(X, y)


def test_gradnorm_first_losses_are_saved_with_the_model(signal_and_noise, tmp_path):
    from sklearn_mtl import load, save

    X, y = signal_and_noise
    reg = MultiTaskNetRegressor(**{**FAST, "max_iter": 3}, task_balancing="gradnorm").fit(X, y)
    first = reg.net_.criterion_.balancer.initial_losses.clone()
    assert torch.isfinite(first).all()
    save(reg, tmp_path / "reg.pt")
    torch.testing.assert_close(load(tmp_path / "reg.pt").net_.criterion_.balancer.initial_losses, first)
