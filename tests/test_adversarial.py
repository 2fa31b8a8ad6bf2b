"""Adversarial training (``adversarial_epsilon``, fast gradient sign method).

The attack used to measure robustness is the fast gradient sign method on the
fitted network in evaluation mode: ``X_adv = X + eps * sign(grad_X -log
p(y | X))`` with ``p(y | X)`` the softmax probability of each test row's true
class, computed with torch on ``est.net_.module_`` (the rows are attacked
one by one in effect: each row's gradient involves only its own loss).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor

EPS = 0.2
FAST = dict(
    hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=20, early_stopping=False,
    random_state=0,
)
SMOKE = dict(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=5, random_state=0)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fgsm(estimator, X, y, eps):
    """The FGSM attack of size ``eps`` on the rows ``X`` of true classes ``y``
    (class indices of a single classification task)."""
    module = estimator.net_.module_
    module.eval()
    X = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    log_proba = module(X).log_softmax(dim=1)
    loss = -log_proba.gather(1, torch.as_tensor(y).long()[:, None]).sum()
    (grad,) = torch.autograd.grad(loss, X)
    return (X + eps * grad.sign()).detach().numpy()


@pytest.fixture(scope="module")
def noisy_features():
    """Four informative features among 60, standardised; 500 train and 300
    test rows."""
    X, y = make_classification(
        n_samples=800, n_features=60, n_informative=4, n_redundant=0,
        n_repeated=0, class_sep=2.0, flip_y=0.0, random_state=0,
    )
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X[:500], y[:500], X[500:], y[500:]


@pytest.fixture(scope="module")
def plain_and_robust(noisy_features):
    X, y, _, _ = noisy_features
    plain = MultiTaskNetClassifier(**FAST).fit(X, y)
    robust = MultiTaskNetClassifier(adversarial_epsilon=EPS, **FAST).fit(X, y)
    return plain, robust


def test_attack_hurts_plain_training(noisy_features, plain_and_robust):
    _, _, X_test, y_test = noisy_features
    plain, _ = plain_and_robust
    clean = plain.score(X_test, y_test)
    attacked = plain.score(fgsm(plain, X_test, y_test, EPS), y_test)
    assert attacked < clean - 0.2


def test_adversarial_training_keeps_clean_accuracy_and_resists_attack(
    noisy_features, plain_and_robust
):
    _, _, X_test, y_test = noisy_features
    plain, robust = plain_and_robust
    assert robust.score(X_test, y_test) >= plain.score(X_test, y_test) - 0.03
    drop = {
        name: est.score(X_test, y_test)
        - est.score(fgsm(est, X_test, y_test, EPS), y_test)
        for name, est in (("plain", plain), ("robust", robust))
    }
    assert drop["robust"] < drop["plain"] - 0.1
    attacked = [
        est.score(fgsm(est, X_test, y_test, EPS), y_test) for est in (plain, robust)
    ]
    assert attacked[1] > attacked[0] + 0.15


def _batch(X, y):
    targets = torch.as_tensor(y, dtype=torch.float32)[:, None]
    return torch.as_tensor(X), (targets, torch.ones_like(targets))


def test_loss_is_the_mean_of_clean_and_adversarial_losses(noisy_features):
    X, y, _, _ = noisy_features
    X, y = X[:64], y[:64]
    est = MultiTaskNetClassifier(
        adversarial_epsilon=EPS, dropout=0.0, alpha=1e-2, max_iter=1,
        hidden_layer_sizes=(8,), random_state=0,
    ).fit(X, y)
    net = est.net_
    net.module_.eval()  # no dropout, no batch norm: the passes are deterministic
    Xi, (targets, weights) = _batch(X, y)
    _, loss = net.adversarial_loss(Xi, (targets, weights))
    averaged = net.criterion_.last_losses_.detach().clone()

    X_req = Xi.clone().requires_grad_(True)
    clean = net.criterion_.per_task(net.module_(X_req), targets, weights)
    (grad,) = torch.autograd.grad(clean.sum(), X_req)
    X_adv = Xi + EPS * grad.sign()
    adversarial = net.criterion_.per_task(net.module_(X_adv), targets, weights)
    expected = 0.5 * (clean + adversarial).detach()
    torch.testing.assert_close(averaged, expected)
    penalty = net.penalty()
    torch.testing.assert_close(loss.detach(), (expected.sum() + penalty).detach())


def test_zero_epsilon_takes_the_plain_step(noisy_features, monkeypatch):
    from sklearn_mtl._net import MultiTaskNeuralNet

    def fail(*args, **kwargs):
        raise AssertionError("the adversarial pass ran with adversarial_epsilon=0")

    monkeypatch.setattr(MultiTaskNeuralNet, "adversarial_loss", fail)
    X, y, _, _ = noisy_features
    MultiTaskNetClassifier(**SMOKE).fit(X, y)
    with pytest.raises(AssertionError, match="adversarial pass"):
        MultiTaskNetClassifier(adversarial_epsilon=0.1, **SMOKE).fit(X, y)


def test_reproducible_with_random_state(noisy_features):
    X, y, X_test, _ = noisy_features
    fits = [
        MultiTaskNetClassifier(adversarial_epsilon=0.1, **SMOKE).fit(X, y)
        for _ in range(2)
    ]
    plain = MultiTaskNetClassifier(**SMOKE).fit(X, y)
    first, second = (est.predict_proba(X_test) for est in fits)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, plain.predict_proba(X_test))


def test_grid_search_over_epsilon(noisy_features):
    X, y, _, _ = noisy_features
    search = GridSearchCV(
        MultiTaskNetClassifier(**SMOKE), {"adversarial_epsilon": [0.0, 0.1]}, cv=2
    ).fit(X[:200], y[:200])
    assert search.best_params_["adversarial_epsilon"] in (0.0, 0.1)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert len(search.cv_results_["params"]) == 2


@pytest.mark.parametrize("value", [-0.1, -1])
def test_negative_epsilon_is_an_error(noisy_features, value):
    X, y, _, _ = noisy_features
    with pytest.raises(InvalidParameterError, match="'adversarial_epsilon' parameter"):
        MultiTaskNetClassifier(adversarial_epsilon=value, **SMOKE).fit(X, y)


# -- composition: each fit must train (score above chance) and differ from
# the same fit without the perturbation.


def _two_tasks(noisy_features):
    X, y, _, _ = noisy_features
    Y = np.column_stack([y, (X[:, :4].sum(axis=1) > 0)]).astype(float)
    return X, Y


def _differs(Estimator, X, Y, fit_kwargs=None, **params):
    fit_kwargs = fit_kwargs or {}
    robust = Estimator(adversarial_epsilon=0.1, **params).fit(X, Y, **fit_kwargs)
    plain = Estimator(**params).fit(X, Y, **fit_kwargs)
    assert np.all(np.isfinite(robust.loss_curve_))
    n = min(len(robust.loss_curve_), len(plain.loss_curve_))
    assert not np.allclose(robust.loss_curve_[:n], plain.loss_curve_[:n])
    return robust


@pytest.mark.parametrize(
    "balancing", ["fixed", "uncertainty", "dwa", "gradnorm", "pcgrad"]
)
def test_every_task_balancing(noisy_features, balancing):
    X, Y = _two_tasks(noisy_features)
    est = _differs(MultiTaskNetClassifier, X, Y, task_balancing=balancing, **SMOKE)
    assert est.score(X, Y) > 0.6
    assert np.all(np.isfinite(est.task_weights_))


def test_missing_labels_and_sample_weight(noisy_features):
    X, Y = _two_tasks(noisy_features)
    Y[::3, 1] = np.nan
    weight = np.linspace(0.5, 2.0, len(X))
    est = _differs(
        MultiTaskNetClassifier, X, Y, fit_kwargs={"sample_weight": weight}, **SMOKE
    )
    assert est.score(X, Y) > 0.6


def test_class_weight(noisy_features):
    X, y, _, _ = noisy_features
    keep = (y == 1) | (np.arange(len(y)) % 4 == 0)  # one class a quarter as frequent
    est = _differs(
        MultiTaskNetClassifier, X[keep], y[keep], class_weight="balanced", **SMOKE
    )
    assert est.score(X[keep], y[keep]) > 0.6


def test_mmoe(noisy_features):
    X, Y = _two_tasks(noisy_features)
    est = _differs(MultiTaskNetClassifier, X, Y, architecture="mmoe", n_experts=2, **SMOKE)
    assert est.score(X, Y) > 0.6


def test_early_stopping(noisy_features):
    X, y, _, _ = noisy_features
    est = _differs(
        MultiTaskNetClassifier, X, y, early_stopping=True, n_iter_no_change=2,
        **{**SMOKE, "max_iter": 20},
    )
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ > 0.6


def test_partial_fit(noisy_features):
    X, y, _, _ = noisy_features
    est = MultiTaskNetClassifier(adversarial_epsilon=0.1, **SMOKE)
    for _ in range(3):
        est.partial_fit(X, y, classes=np.unique(y))
    assert est.net_.adversarial_epsilon == 0.1
    assert est.score(X, y) > 0.6
    est.set_params(adversarial_epsilon=0.3).partial_fit(X, y)
    assert est.net_.adversarial_epsilon == 0.3


def test_warm_start_follows_epsilon(noisy_features):
    X, y, _, _ = noisy_features
    est = MultiTaskNetClassifier(warm_start=True, **SMOKE).fit(X, y)
    assert est.net_.adversarial_epsilon == 0.0
    est.set_params(adversarial_epsilon=0.2).fit(X, y)
    assert est.net_.adversarial_epsilon == 0.2


def test_sparse_input(noisy_features):
    X, y, _, _ = noisy_features
    X = np.where(np.abs(X) > 1, X, 0).astype(np.float32)
    # SGD: with Adam a CSR fit takes lazy steps, which a dense fit does not.
    est = _differs(MultiTaskNetClassifier, sp.csr_matrix(X), y, solver="sgd", **SMOKE)
    dense = MultiTaskNetClassifier(adversarial_epsilon=0.1, solver="sgd", **SMOKE).fit(X, y)
    np.testing.assert_allclose(
        est.predict_proba(X), dense.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_regressor_and_mixed_model(noisy_features):
    X, y, _, _ = noisy_features
    target = X[:, :4] @ np.array([1.0, -1.0, 0.5, 2.0])
    reg = _differs(MultiTaskNetRegressor, X, target, **SMOKE)
    assert reg.score(X, target) > 0.3
    mixed = np.column_stack([y, target]).astype(object)
    est = _differs(MultiTaskNet, X, mixed, **SMOKE)
    assert est.score(X, mixed) > 0.4


def test_composes_with_grid_search_on_missing_labels(noisy_features):
    X, Y = _two_tasks(noisy_features)
    Y[::4, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(
            MultiTaskNetClassifier(**SMOKE), {"adversarial_epsilon": [0.0, 0.2]},
            cv=KFold(2),
        ).fit(X[:200], Y[:200])
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_save_and_load_keep_epsilon(noisy_features, tmp_path):
    from sklearn_mtl import load, save

    X, y, _, _ = noisy_features
    est = MultiTaskNetClassifier(adversarial_epsilon=0.1, **SMOKE).fit(X, y)
    save(est, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert loaded.adversarial_epsilon == 0.1
    assert loaded.net_.adversarial_epsilon == 0.1
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
