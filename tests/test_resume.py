"""Resuming a killed fit with skorch's Checkpoint and LoadInitState callbacks.

The recipe of README "Saving and loading": fit with ``Checkpoint(dirname=...,
monitor=None)`` in ``callbacks``; after a crash, fit a new estimator with the
same hyperparameters and ``callbacks=[checkpoint, LoadInitState(checkpoint)]``.
These tests check what that restores (weights, optimizer, criterion state,
history) and what it does not (the torch random stream, early stopping's
patience), as the README states. ``n_iter_`` counts the epochs the resumed
call trained, as ``MLPClassifier``'s does; the history and ``loss_curve_``
hold the checkpointed epochs too.
"""

import json
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from sklearn_mtl import MultiTaskNetRegressor

# shuffle=False and no dropout: an uninterrupted fit draws nothing random
# after its initial weights, so a resumed fit can match it exactly.
DETERMINISTIC = {"hidden_layer_sizes": (8,), "shuffle": False, "random_state": 0,
                 "tol": 0.0, "n_iter_no_change": 100, "batch_size": 32}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = np.column_stack([X[:, 0] + X[:, 1], 3 * X[:, 2] + 10])
    return X, y


def _max_difference(a, b):
    return max(
        (p - q).abs().max().item()
        for p, q in zip(a.net_.module_.state_dict().values(),
                        b.net_.module_.state_dict().values())
    )


def _resume(checkpoint, X, y, max_iter, **params):
    est = MultiTaskNetRegressor(
        max_iter=max_iter, callbacks=[checkpoint, LoadInitState(checkpoint)], **params
    )
    return est.fit(X, y)


@pytest.mark.parametrize("balancing", ["fixed", "uncertainty", "dwa", "gradnorm"])
def test_resumed_fit_continues_the_checkpointed_one_exactly(tmp_path, data, balancing):
    X, y = data
    params = {**DETERMINISTIC, "task_balancing": balancing}
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None)
    first = MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint], **params).fit(X, y)
    resumed = _resume(checkpoint, X, y, 2, **params)
    reference = MultiTaskNetRegressor(max_iter=5, **params).fit(X, y)
    assert _max_difference(resumed, reference) < 1e-6
    for key, value in reference.net_.criterion_.state_dict().items():
        torch.testing.assert_close(resumed.net_.criterion_.state_dict()[key], value,
                                   rtol=0, atol=1e-6, msg=key)
    # The history goes on from the checkpoint: 3 epochs loaded, 2 trained.
    assert resumed.n_iter_ == 2 and len(resumed.net_.history) == 5
    assert resumed.net_.history[:, "epoch"] == [1, 2, 3, 4, 5]
    assert resumed.loss_curve_[:3] == first.loss_curve_
    np.testing.assert_allclose(resumed.loss_curve_, reference.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(resumed.task_weights_, reference.task_weights_, rtol=1e-6)


def test_each_checkpointed_state_is_needed(tmp_path, data):
    # Leaving the optimizer or the criterion (the learned log-variances) out
    # of the checkpoint changes the continued fit.
    X, y = data
    params = {**DETERMINISTIC, "task_balancing": "uncertainty"}
    reference = MultiTaskNetRegressor(max_iter=5, **params).fit(X, y)
    for left_out in ("f_optimizer", "f_criterion"):
        checkpoint = Checkpoint(dirname=str(tmp_path / left_out), monitor=None,
                                **{left_out: None})
        MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint], **params).fit(X, y)
        resumed = _resume(checkpoint, X, y, 2, **params)
        assert resumed.n_iter_ == 2 and len(resumed.loss_curve_) == 5
        assert abs(resumed.loss_curve_[-1] - reference.loss_curve_[-1]) > 1e-6, left_out


class TorchRandomState(Callback):
    """Keep torch's random state with a checkpoint, and set it back on resume.

    Place it after LoadInitState. (CPU generator only.)
    """

    def __init__(self, path):
        self.path = path

    def on_train_begin(self, net, **kwargs):
        if os.path.exists(self.path):
            torch.set_rng_state(torch.load(self.path, weights_only=True))

    def on_epoch_end(self, net, **kwargs):
        torch.save(torch.get_rng_state(), self.path)


def test_random_stream_restarts_unless_its_state_is_checkpointed(tmp_path, data):
    # With shuffling and dropout, the resumed epochs draw their batch order
    # and dropout masks from random_state afresh, not where the killed fit
    # was: same weights to start from, other batches after. Checkpointing
    # torch's random state as well makes the resumed fit the same again.
    X, y = data
    params = {**DETERMINISTIC, "shuffle": True, "dropout": 0.2}
    reference = MultiTaskNetRegressor(max_iter=5, **params).fit(X, y)
    checkpoint = Checkpoint(dirname=str(tmp_path / "plain"), monitor=None)
    MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint], **params).fit(X, y)
    resumed = _resume(checkpoint, X, y, 2, **params)
    np.testing.assert_allclose(resumed.loss_curve_[:3], reference.loss_curve_[:3], rtol=1e-6)
    assert _max_difference(resumed, reference) > 1e-4

    checkpoint = Checkpoint(dirname=str(tmp_path / "rng"), monitor=None)
    state = str(tmp_path / "rng" / "torch_rng.pt")
    MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint, TorchRandomState(state)],
                          **params).fit(X, y)
    resumed = MultiTaskNetRegressor(
        max_iter=2, callbacks=[checkpoint, LoadInitState(checkpoint), TorchRandomState(state)],
        **params,
    ).fit(X, y)
    assert _max_difference(resumed, reference) < 1e-6


def test_early_stopping_resumes_on_the_same_split_with_restarted_patience(tmp_path, data):
    X, y = data
    params = {**DETERMINISTIC, "early_stopping": True, "validation_fraction": 0.2}
    reference = MultiTaskNetRegressor(max_iter=5, **params).fit(X, y)
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor=None)
    MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint], **params).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _resume(checkpoint, X, y, 2, **params)
    # An int random_state draws the same validation rows again.
    np.testing.assert_allclose(resumed.validation_scores_, reference.validation_scores_,
                               rtol=1e-6)
    assert len(resumed.validation_scores_) == 5
    # Early stopping counts its patience from the resumed epoch; the fit ran
    # its max_iter=2 epochs without converging, which warns as any fit does.
    stopper = dict(resumed.net_.callbacks_)["stopping"]
    assert stopper.best_epoch_ == 5 and stopper.misses_ == 0
    assert resumed.n_iter_ == 2
    assert [w for w in caught if "Maximum iterations (2)" in str(w.message)]


# The child fits for 50 epochs, checkpointing each; after epoch 3 (its
# checkpoint written: the reporter runs after Checkpoint) it prints and stops
# for a minute, and the parent kills it there.
KILLED_FIT = """
import sys, time
import numpy as np
from skorch.callbacks import Callback, Checkpoint
from sklearn_mtl import MultiTaskNetRegressor

class Report(Callback):
    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        print("epoch", epoch, repr(float(net.history[-1, "train_loss"])), flush=True)
        if epoch == 3:
            time.sleep(60)

folder, params = sys.argv[1], eval(sys.argv[2])
X, y = np.load(folder + "/X.npy"), np.load(folder + "/y.npy")
checkpoint = Checkpoint(dirname=folder + "/checkpoint", monitor=None)
MultiTaskNetRegressor(max_iter=50, callbacks=[checkpoint, Report()], **params).fit(X, y)
"""


@pytest.mark.slow  # a fresh interpreter imports torch: 5-15 s
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_fit_killed_mid_run_resumes_from_its_last_checkpoint(tmp_path, data):
    X, y = data
    params = {**DETERMINISTIC, "task_balancing": "uncertainty"}
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_FIT, str(tmp_path), repr(params)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    printed = []
    try:
        for line in child.stdout:
            printed.append(float(line.split()[2]))
            if line.startswith("epoch 3 "):
                break
    finally:
        child.kill()  # SIGKILL on POSIX, in the middle of the 50-epoch fit
        child.wait(timeout=30)
    assert len(printed) == 3, child.stderr.read()
    assert child.returncode == -signal.SIGKILL

    checkpoint = Checkpoint(dirname=str(tmp_path / "checkpoint"), monitor=None)
    with open(checkpoint.f_history_) as file:
        done = len(json.load(file))
    assert done == 3
    resumed = _resume(checkpoint, X, y, 5 - done, **params)
    reference = MultiTaskNetRegressor(max_iter=5, **params).fit(X, y)
    assert resumed.n_iter_ == 5 - done and len(resumed.net_.history) == 5
    assert resumed.net_.history[:, "epoch"] == [1, 2, 3, 4, 5]
    assert resumed.loss_curve_[:3] == printed  # read back from the checkpoint
    np.testing.assert_allclose(resumed.loss_curve_, reference.loss_curve_, rtol=1e-6)
    assert _max_difference(resumed, reference) < 1e-6
    torch.testing.assert_close(resumed.net_.criterion_.balancer.log_variances,
                               reference.net_.criterion_.balancer.log_variances, rtol=0, atol=1e-6)


def test_load_init_state_loads_again_at_every_later_fit(tmp_path, data):
    # The estimator copies its callbacks into each fit, so a LoadInitState
    # left in them loads its checkpoint again at a later partial_fit: the
    # latest epoch with monitor=None, an older one with another monitor.
    X, y = data
    latest = Checkpoint(dirname=str(tmp_path / "latest"), monitor=None)
    second = Checkpoint(dirname=str(tmp_path / "second"),
                        monitor=lambda net: len(net.history) == 2)
    for checkpoint in (latest, second):
        MultiTaskNetRegressor(max_iter=3, callbacks=[checkpoint], **DETERMINISTIC).fit(X, y)
    resumed = _resume(latest, X, y, 2, **DETERMINISTIC)
    resumed.partial_fit(X, y)
    assert len(resumed.net_.history) == 6
    rolled_back = _resume(second, X, y, 2, **DETERMINISTIC)
    assert len(rolled_back.net_.history) == 4  # epochs 1-2 loaded, 2 trained
    rolled_back.partial_fit(X, y)
    assert rolled_back.n_iter_ == 1
    assert len(rolled_back.net_.history) == 3  # epochs 1-2 loaded again, 1 trained
    rolled_back.set_params(callbacks=None).partial_fit(X, y)
    assert len(rolled_back.net_.history) == 4
