"""Per-task losses in the history, the verbose table and the progress bar."""

import numpy as np
import pytest

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor

PARAMS = dict(hidden_layer_sizes=(16,), max_iter=4, early_stopping=False, random_state=0)


def test_history_has_each_tasks_training_loss(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size.astype(str)])
    est = MultiTaskNetClassifier(**PARAMS, learning_rate_init=1e-2).fit(X, y)
    history = est.net_.history
    task0 = np.array(history[:, "train_loss_task0"])
    task1 = np.array(history[:, "train_loss_task1"])
    assert len(task0) == len(task1) == est.n_iter_
    assert task0[-1] < task0[0] and task1[-1] < task1[0]
    # The total is their sum (task weights 1) plus the small penalty.
    total = np.array(history[:, "train_loss"])
    assert np.all(total >= task0 + task1 - 1e-5)
    np.testing.assert_allclose(total, task0 + task1, rtol=0.05)


def test_task_loss_counts_labelled_entries_only(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([X[:, 0] * 2.0, X[:, 1] - 1.0])
    y[::2, 1] = np.nan
    est = MultiTaskNetRegressor(**PARAMS, alpha=0.0, shuffle=False, batch_size=300)
    est.fit(X, y)
    # Full-batch: the per-task losses of an epoch are those of its one step,
    # whose total is their sum, so missing labels must be left out of task 1.
    history = est.net_.history
    np.testing.assert_allclose(
        history[:, "train_loss"],
        np.add(history[:, "train_loss_task0"], history[:, "train_loss_task1"]),
        rtol=1e-5,
    )


def test_verbose_table_shows_each_tasks_train_and_validation(two_task_data, capsys):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size])
    MultiTaskNetClassifier(**{**PARAMS, "early_stopping": True}, verbose=1).fit(X, y)
    header = capsys.readouterr().out.splitlines()[0].split()
    for key in (
        "train_loss_task0", "train_loss_task1", "valid_loss_task0",
        "valid_loss_task1", "valid_score_task0", "valid_score_task1",
    ):
        assert key in header


def test_silent_without_verbose(two_task_data, capsys):
    X, colour, _ = two_task_data
    MultiTaskNetClassifier(**PARAMS).fit(X, colour)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar(two_task_data, capsys):
    X, colour, _ = two_task_data
    est = MultiTaskNetClassifier(**PARAMS, progress_bar=True, batch_size=50).fit(X, colour)
    assert "progress_bar" in dict(est.net_.callbacks_)
    assert "/6" in capsys.readouterr().err  # tqdm's bar over the 6 batches
    with pytest.raises(ValueError, match="progress_bar"):
        MultiTaskNetClassifier(progress_bar="yes").fit(X, colour)
