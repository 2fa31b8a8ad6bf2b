"""The callbacks of a fit: one scoring path for early stopping, records."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier


class CaptureValidation(Callback):
    """Keep the validation rows the net was given."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.X_ = dataset_valid.X.numpy()
        self.targets_ = dataset_valid.targets.numpy()
        self.weights_ = dataset_valid.weights.numpy()


def _rows_of(X, rows):
    index = {row.tobytes(): i for i, row in enumerate(X)}
    return np.array([index[row.tobytes()] for row in rows])


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = ((X[:, 0] + rng.normal(scale=1.0, size=400)) > 0.4).astype(int)
    sample_weight = np.where(X[:, 1] > 0, 10.0, 1.0)
    return X, y, sample_weight


def _fit(X, y, **fit_params):
    est = MultiTaskNetClassifier(
        (8,), max_iter=3, early_stopping=True, validation_fraction=0.5, random_state=0,
        callbacks=[("capture", CaptureValidation())], **fit_params.pop("params", {}),
    )
    est.fit(X, y, **fit_params)
    return est, dict(est.net_.callbacks_)["capture"]


def test_validation_score_is_score_weighted_by_sample_weight(noisy):
    X, y, sample_weight = noisy
    est, valid = _fit(X, y, sample_weight=sample_weight)
    rows = _rows_of(X, valid.X_)
    np.testing.assert_allclose(valid.weights_[:, 0], sample_weight[rows])
    weighted = est.score(X[rows], y[rows], sample_weight=sample_weight[rows])
    # The weights matter on these rows, so the test tells the two apart.
    assert abs(weighted - est.score(X[rows], y[rows])) > 1e-3
    assert est.best_validation_score_ == pytest.approx(weighted, abs=1e-6)


def test_validation_score_includes_class_weights(noisy):
    X, y, _ = noisy
    class_weight = {0: 1.0, 1: 5.0}
    est, valid = _fit(X, y, params={"class_weight": class_weight})
    rows = _rows_of(X, valid.X_)
    expected_weights = np.where(y[rows] == 1, 5.0, 1.0)
    np.testing.assert_allclose(valid.weights_[:, 0], expected_weights)
    weighted = est.score(X[rows], y[rows], sample_weight=expected_weights)
    assert abs(weighted - est.score(X[rows], y[rows])) > 1e-3
    assert est.best_validation_score_ == pytest.approx(weighted, abs=1e-6)


def test_validation_score_of_a_mixed_model_is_its_score(noisy):
    X, y, sample_weight = noisy
    Y = np.column_stack([y, X[:, 2] * 3 + X[:, 3]])
    est = MultiTaskNet(
        (8,), max_iter=3, early_stopping=True, validation_fraction=0.5, random_state=0,
        callbacks=[("capture", CaptureValidation())],
    ).fit(X, Y, sample_weight=sample_weight)
    valid = dict(est.net_.callbacks_)["capture"]
    rows = _rows_of(X, valid.X_)
    expected = est.score(X[rows], Y[rows], sample_weight=sample_weight[rows])
    assert est.best_validation_score_ == pytest.approx(expected, abs=1e-5)
    history = est.net_.history
    best = int(np.argmax(history[:, "valid_score"]))
    assert history[best, "valid_score"] == pytest.approx(
        np.mean([history[best, "valid_score_task0"], history[best, "valid_score_task1"]])
    )


def test_per_batch_calls_reach_a_callback_that_listens_only():
    # Without a per-batch listener the loop sends no per-batch notification
    # (the history still gets one record per batch); a callback with its own
    # on_batch_begin / on_grad_computed / on_batch_end gets every call.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    sent = []
    est = MultiTaskNetClassifier((4,), max_iter=2, batch_size=25, random_state=0)
    est.fit(X, y)
    net = est.net_
    notify = net.notify
    net.notify = lambda name, **kw: (sent.append(name), notify(name, **kw))
    est.set_params(warm_start=True).fit(X, y)
    assert not net.batch_listeners_
    assert not {"on_batch_begin", "on_batch_end", "on_grad_computed"} & set(sent)
    assert [len(epoch["batches"]) for epoch in net.history] == [4] * 4
    assert all("train_loss" in batch for epoch in net.history for batch in epoch["batches"])

    class Count(Callback):
        def initialize(self):
            self.calls = {"begin": 0, "grad": 0, "end": 0}
            return self

        def on_batch_begin(self, net, **kwargs):
            self.calls["begin"] += 1

        def on_grad_computed(self, net, named_parameters, **kwargs):
            self.calls["grad"] += 1

        def on_batch_end(self, net, **kwargs):
            self.calls["end"] += 1

    counter = Count()
    est = MultiTaskNetClassifier(
        (4,), max_iter=2, batch_size=25, random_state=0, callbacks=[counter]
    ).fit(X, y)
    assert est.net_.batch_listeners_
    (used,) = [cb for _, cb in est.net_.callbacks_ if isinstance(cb, Count)]
    assert used.calls == {"begin": 8, "grad": 8, "end": 8}
    assert [len(epoch["batches"]) for epoch in est.net_.history] == [4, 4]


def test_task_scores_match_per_task_scores():
    from sklearn_mtl._callbacks import TaskScores
    from sklearn_mtl.metrics import per_task_scores

    rng = np.random.RandomState(0)
    n = 40
    targets = np.column_stack([
        rng.randint(0, 3, n), rng.normal(size=n), np.full(n, 2.0), rng.randint(0, 2, n),
        np.full(n, 1.5),
    ])
    predicted = np.column_stack([
        rng.randint(0, 3, n), targets[:, 1] + rng.normal(size=n), np.full(n, 2.0),
        rng.randint(0, 2, n), np.full(n, 1.0),
    ])
    weights = rng.uniform(0.5, 2.0, size=(n, 5))
    weights[rng.rand(n, 5) < 0.3] = 0.0  # missing labels
    weights[:, 3] = 0.0  # a task without a label
    kinds = ["classification", "regression", "regression", "classification", "regression"]
    scores = TaskScores(targets, np.array([k == "classification" for k in kinds]), weights)
    predicted[weights == 0] = np.inf  # not read where there is no label
    got = scores(predicted)
    assert np.array_equal(scores(predicted), got, equal_nan=True)  # stateless
    truth = np.where(weights > 0, targets, np.nan)
    expected = per_task_scores(truth, predicted, kinds, sample_weight=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.isnan(got[3]) and got[2] == 1.0 and got[4] == 0.0
    # A regression task with one labelled entry has no R² (r2_score: NaN).
    single = np.zeros((n, 1))
    single[0] = 1.0
    one = TaskScores(targets[:, [1]], np.array([False]), single)
    assert np.isnan(one(predicted[:, [1]])[0])
    # Tasks of one kind only: every column is read in place.
    for kind in ("classification", "regression"):
        same = [t for t, k in enumerate(kinds) if k == kind]
        one_kind = TaskScores(
            targets[:, same], np.array([kind == "classification"] * len(same)),
            weights[:, same],
        )
        np.testing.assert_allclose(one_kind(predicted[:, same]), got[same], rtol=1e-14)


def test_epoch_losses_are_the_batch_means_skorch_records():
    # EpochLoss takes the mean the epoch's loop computed; it is skorch's
    # PassthroughScoring figure (the batch losses weighted by batch size),
    # with its "_best" flags.
    from skorch.callbacks import PassthroughScoring

    from sklearn_mtl._callbacks import EpochLoss

    rng = np.random.RandomState(0)
    X = rng.normal(size=(230, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = MultiTaskNetClassifier(
        (6,), batch_size=64, early_stopping=True, max_iter=4, n_iter_no_change=10,
        random_state=0,
    ).fit(X, y)
    callbacks = dict(est.net_.callbacks_)
    assert type(callbacks["train_loss"]) is EpochLoss
    assert type(callbacks["valid_loss"]) is EpochLoss
    best = {"train": np.inf, "valid": np.inf}
    for epoch in est.net_.history:
        for phase in ("train", "valid"):
            losses = [b[f"{phase}_loss"] for b in epoch["batches"] if f"{phase}_loss" in b]
            sizes = [b[f"{phase}_batch_size"] for b in epoch["batches"] if f"{phase}_loss" in b]
            expected = np.average(losses, weights=sizes)
            assert epoch[f"{phase}_loss"] == pytest.approx(expected, rel=1e-12)
            assert epoch[f"{phase}_loss_best"] == (expected < best[phase])
            best[phase] = min(best[phase], expected)
    assert len(est.net_.history[0]["batches"]) > 2  # several batches of uneven size
    assert issubclass(EpochLoss, PassthroughScoring)


class FreezeAt(Callback):
    """Freeze the trunk's weights at the start of epoch ``epoch``; keep them."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            net.module_.freeze_trunk(True)
            self.frozen_ = [p.detach().clone() for p in net.module_.trunk.parameters()]


def test_a_callback_that_freezes_mid_fit_changes_the_step(noisy):
    # The closed-form step is kept from epoch to epoch, but not once the
    # parameters that learn change: then the frozen weights stay as they are.
    X, y, _ = noisy
    est = MultiTaskNetClassifier(
        (8,), max_iter=6, early_stopping=False, random_state=0,
        callbacks=[("freeze", FreezeAt(3))],
    ).fit(X, y)
    freeze = dict(est.net_.callbacks_)["freeze"]
    for before, after in zip(freeze.frozen_, est.net_.module_.trunk.parameters()):
        assert not torch.equal(before, torch.zeros_like(before))
        torch.testing.assert_close(after.detach(), before, rtol=0, atol=0)
    # The heads still learned after the freeze.
    assert est.net_.history[-1, "train_loss"] < est.net_.history[2, "train_loss"]


class Modes(Callback):
    """Each batch's phase and every module's training flag."""

    def on_train_begin(self, net, **kwargs):
        self.seen_ = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        modules = [*net.module_.modules(), *net.criterion_.modules()]
        self.seen_.append((training, {m.training for m in modules}))


def test_every_module_is_in_the_mode_of_its_phase(noisy):
    X, y, _ = noisy
    est = MultiTaskNetClassifier(
        (8,), dropout=0.3, batch_norm=True, max_iter=3, early_stopping=True,
        random_state=0, callbacks=[("modes", Modes())],
    ).fit(X, y)
    modes = dict(est.net_.callbacks_)["modes"]
    assert {training for training, _ in modes.seen_} == {True, False}
    assert all(flags == {training} for training, flags in modes.seen_)
    assert not any(m.training for m in est.net_.module_.modules())
    # A frozen trunk's batch norm stays in evaluation mode while the heads train.
    est.set_params(warm_start=True, max_iter=2, trunk_learning_rate=0).fit(X, y)
    modes = dict(est.net_.callbacks_)["modes"]
    norms = [m for m in est.net_.module_.trunk if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms
    for training, flags in modes.seen_:
        assert flags == ({True, False} if training else {False})
