"""Lookahead inter-task affinity, task groups, and their heatmap."""

import itertools
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import (
    MultiTaskNet,
    MultiTaskNetClassifier,
    MultiTaskNetRegressor,
    TaskAffinityDisplay,
)
from sklearn_mtl.inspection import suggest_task_groups, task_affinity

N_ROWS, BATCH, EPOCHS = 320, 40, 8


def grouped_tasks(seed=0, n=N_ROWS):
    """Tasks 0 and 1 read features 0-4, tasks 2 and 3 features 5-9; within a
    pair the targets are the same signal with their own noise."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 10))
    a = X[:, :5] @ rng.normal(size=5)
    b = X[:, 5:] @ rng.normal(size=5)
    noise = 0.1 * rng.normal(size=(n, 4))
    Y = np.column_stack([a, a, b, b]) + noise
    return X, Y


def regressor(**params):
    defaults = {
        "hidden_layer_sizes": (32,), "max_iter": EPOCHS, "batch_size": BATCH,
        "learning_rate_init": 1e-2, "early_stopping": False, "random_state": 0,
    }
    return MultiTaskNetRegressor(**{**defaults, **params})


@pytest.fixture(scope="module")
def grouped():
    X, Y = grouped_tasks()
    return X, Y, task_affinity(regressor(), X, Y, every=1)


def within_between(affinity, groups):
    within, between = [], []
    for i, j in itertools.permutations(range(affinity.shape[0]), 2):
        same = any(i in g and j in g for g in groups)
        (within if same else between).append(affinity[i, j])
    return np.mean(within), np.mean(between)


def test_affinity_separates_unrelated_groups(grouped):
    _, _, result = grouped
    within, between = within_between(result.affinity, [[0, 1], [2, 3]])
    assert within > 0
    assert within > 5 * abs(between)
    assert suggest_task_groups(result.affinity, 2) == [[0, 1], [2, 3]]


def test_result_fields(grouped):
    X, Y, result = grouped
    assert set(result) == {"affinity", "task_names", "n_steps", "n_measurements",
                           "estimator"}
    assert result.affinity.shape == (4, 4)
    assert np.isfinite(result.affinity).all()
    # A step on a task lowers its own loss more than any other's.
    assert (np.diag(result.affinity) > result.affinity.max(axis=0) - 1e-12).all()
    assert result.task_names == ["y[0]", "y[1]", "y[2]", "y[3]"]
    assert result.n_steps == EPOCHS * N_ROWS // BATCH
    assert (result.n_measurements == result.n_steps).all()
    assert result.estimator.predict(X).shape == Y.shape


def test_every_thins_the_measured_steps():
    X, Y = grouped_tasks()
    result = task_affinity(regressor(max_iter=2), X, Y, every=3)
    n_batches = 2 * N_ROWS // BATCH
    assert result.n_steps == len(range(0, n_batches, 3))
    auto = task_affinity(regressor(max_iter=2), X, Y)
    assert auto.n_steps == len(range(0, n_batches, 6))  # every="auto": max(6, n_tasks)


def test_estimator_is_cloned_and_training_unchanged():
    X, Y = grouped_tasks()
    est = regressor(max_iter=3, dropout=0.3, batch_norm=True)
    result = task_affinity(est, X, Y, every=1)
    assert not hasattr(est, "net_")
    assert est.callbacks is None and result.estimator.callbacks is None
    # Measuring leaves the training as it is: the same weights as a plain fit.
    plain = clone(est).fit(X, Y)
    np.testing.assert_array_equal(result.estimator.predict(X), plain.predict(X))
    fitted = clone(est).fit(X, Y)
    before = fitted.predict(X)
    task_affinity(fitted, X, Y, every=2)
    np.testing.assert_array_equal(fitted.predict(X), before)


@pytest.mark.parametrize(
    "params",
    [{"dropout": "concrete"}, {"task_balancing": "gradnorm"},
     {"task_balancing": "pcgrad"}, {"task_balancing": "uncertainty"}],
    ids=["concrete", "gradnorm", "pcgrad", "uncertainty"],
)
def test_training_unchanged_under_other_options(params):
    X, Y = grouped_tasks(n=120)
    est = regressor(max_iter=2, **params)
    result = task_affinity(est, X, Y, every=1)
    assert np.isfinite(result.affinity).all()
    np.testing.assert_array_equal(
        result.estimator.predict(X), clone(est).fit(X, Y).predict(X)
    )


def test_deterministic_with_random_state():
    X, Y = grouped_tasks()
    est = regressor(max_iter=2, dropout=0.2)
    first = task_affinity(est, X, Y, every=1).affinity
    np.testing.assert_array_equal(first, task_affinity(est, X, Y, every=1).affinity)
    other = task_affinity(clone(est).set_params(random_state=1), X, Y, every=1)
    assert not np.array_equal(first, other.affinity)


def test_missing_labels_count_only_labelled_batches():
    X, Y = grouped_tasks()
    Y = Y.copy()
    Y[BATCH:, 3] = np.nan  # task 3 labelled in the first batch only
    est = regressor(max_iter=3, shuffle=False)
    result = task_affinity(est, X, Y, every=1)
    counts = result.n_measurements
    assert result.n_steps == 3 * N_ROWS // BATCH
    assert counts[0, 1] == result.n_steps
    assert (counts[3, :] == 3).all() and (counts[:, 3] == 3).all()
    assert np.isfinite(result.affinity).all()


def test_pair_never_labelled_together_is_nan():
    X, Y = grouped_tasks()
    Y = Y.copy()
    Y[: N_ROWS // 2, 0] = np.nan
    Y[N_ROWS // 2 :, 1] = np.nan
    result = task_affinity(regressor(max_iter=2, shuffle=False), X, Y, every=1)
    assert np.isnan(result.affinity[0, 1]) and np.isnan(result.affinity[1, 0])
    assert result.n_measurements[0, 1] == 0
    assert np.isfinite(result.affinity[0, 2])


def test_sample_weight_changes_the_losses():
    X, Y = grouped_tasks()
    weights = np.random.RandomState(0).uniform(0.1, 2.0, size=(N_ROWS, 4))
    est = regressor(max_iter=2)
    weighted = task_affinity(est, X, Y, sample_weight=weights, every=1)
    plain = task_affinity(est, X, Y, every=1)
    assert np.isfinite(weighted.affinity).all()
    assert not np.allclose(weighted.affinity, plain.affinity)


def test_mmoe():
    X, Y = grouped_tasks()
    est = regressor(max_iter=3, architecture="mmoe", n_experts=3)
    result = task_affinity(est, X, Y, every=1)
    assert result.affinity.shape == (4, 4)
    assert np.isfinite(result.affinity).all()
    assert (np.diag(result.affinity) > 0).all()
    plain = clone(est).fit(X, Y)
    np.testing.assert_array_equal(result.estimator.predict(X), plain.predict(X))


def test_classifier_with_dataframe_names_and_aux_targets():
    X, Y = grouped_tasks()
    y = pd.Series(Y[:, 0] > 0, name="high_a")
    aux = pd.DataFrame({"a_sign": Y[:, 1] > 0, "b_sign": Y[:, 2] > 0})
    est = MultiTaskNetClassifier(hidden_layer_sizes=(16,), max_iter=2, batch_size=BATCH,
                                 random_state=0)
    result = task_affinity(est, X, y, aux_targets=aux, every=2)
    assert result.task_names == ["high_a", "a_sign", "b_sign"]
    assert result.affinity.shape == (3, 3)
    assert result.estimator.n_aux_tasks_ == 2
    assert result.estimator.predict(X).shape == (N_ROWS,)


def test_mixed_model_in_a_pipeline():
    X, Y = grouped_tasks()
    y = pd.DataFrame({"a_high": np.where(Y[:, 0] > 0, "yes", "no"), "b": Y[:, 2]})
    pipe = make_pipeline(
        StandardScaler(),
        MultiTaskNet(hidden_layer_sizes=(16,), max_iter=2, batch_size=BATCH,
                     random_state=0),
    )
    result = task_affinity(pipe, X, y, every=2)
    assert result.task_names == ["a_high", "b"]
    assert np.isfinite(result.affinity).all()
    assert result.estimator[-1].task_types_ == ["classification", "regression"]
    assert not hasattr(pipe[-1], "net_")


def test_larger_lookahead_step_larger_affinity():
    X, Y = grouped_tasks()
    est = regressor(max_iter=1)
    small = task_affinity(est, X, Y, every=1, learning_rate=1e-3).affinity
    large = task_affinity(est, X, Y, every=1, learning_rate=1e-2).affinity
    assert np.diag(large).mean() > 5 * np.diag(small).mean() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every": 0}, "every must be a positive integer"),
        ({"every": 1.5}, "every must be a positive integer"),
        ({"every": "often"}, "every must be a positive integer"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ],
)
def test_bad_arguments(kwargs, match):
    X, Y = grouped_tasks()
    with pytest.raises(ValueError, match=match):
        task_affinity(regressor(), X, Y, **kwargs)


def test_single_task_is_an_error():
    X, Y = grouped_tasks()
    with pytest.raises(ValueError, match="at least two: got 1 task"):
        task_affinity(regressor(), X, Y[:, 0])
    with pytest.raises(ValueError, match="at least two: got 1 task"):
        task_affinity(regressor(), X, Y[:, :1])


def test_no_trunk_is_an_error():
    X, Y = grouped_tasks()
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\(\) gives the estimator no trunk"):
        task_affinity(regressor(hidden_layer_sizes=()), X, Y)


def test_other_estimator_is_a_type_error():
    X, Y = grouped_tasks()
    with pytest.raises(TypeError, match="got LinearRegression"):
        task_affinity(LinearRegression(), X, Y)


# -- suggest_task_groups ----------------------------------------------------------


def brute_force_score(affinity, groups):
    total = 0.0
    for group in groups:
        for j in group:
            others = [i for i in group if i != j]
            if others:
                total += np.mean([affinity[i, j] for i in others])
    return total


def all_partitions(items, k):
    if not items:
        if k == 0:
            yield []
        return
    first, rest = items[0], items[1:]
    for partition in all_partitions(rest, k - 1):
        yield [[first], *partition]
    for partition in all_partitions(rest, k):
        for g in range(len(partition)):
            yield [*partition[:g], [first, *partition[g]], *partition[g + 1 :]]


@pytest.mark.parametrize("n_tasks, n_groups", [(5, 2), (6, 3), (7, 4)])
def test_exact_search_is_the_best_partition(n_tasks, n_groups):
    affinity = np.random.RandomState(n_tasks).normal(size=(n_tasks, n_tasks))
    groups = suggest_task_groups(affinity, n_groups)
    assert len(groups) == n_groups
    assert sorted(itertools.chain(*groups)) == list(range(n_tasks))
    best = max(
        brute_force_score(affinity, p)
        for p in all_partitions(list(range(n_tasks)), n_groups)
    )
    assert brute_force_score(affinity, groups) == pytest.approx(best)


def planted(n_tasks, n_groups, seed):
    rng = np.random.RandomState(seed)
    labels = rng.permutation(np.arange(n_tasks) % n_groups)
    affinity = 0.05 * rng.normal(size=(n_tasks, n_tasks))
    affinity += labels[:, None] == labels[None, :]
    truth = sorted(
        (sorted(np.flatnonzero(labels == g).tolist()) for g in range(n_groups)),
        key=lambda group: group[0],
    )
    return affinity, truth


def test_local_search_beyond_the_exact_limit():
    affinity, truth = planted(14, 3, seed=0)
    assert suggest_task_groups(affinity, 3, random_state=0) == truth
    again = suggest_task_groups(affinity, 3, random_state=0)
    assert again == truth


def test_local_search_many_tasks():
    affinity, truth = planted(60, 5, seed=2)
    assert suggest_task_groups(affinity, 5, n_restarts=3, random_state=0) == truth


@pytest.mark.parametrize("seed", range(5))
def test_local_search_reaches_the_exact_optimum_on_small_problems(seed):
    from sklearn_mtl import _grouping

    affinity = np.random.RandomState(seed).normal(size=(8, 8))
    exact = suggest_task_groups(affinity, 3)
    labels = _grouping._local_search(affinity, 3, 10, np.random.RandomState(seed))
    searched = [np.flatnonzero(labels == g).tolist() for g in range(3)]
    assert brute_force_score(affinity, searched) == pytest.approx(
        brute_force_score(affinity, exact)
    )


def test_local_search_scores_no_better_than_exact():
    affinity = np.random.RandomState(3).normal(size=(9, 9))
    exact = suggest_task_groups(affinity, 3)
    from sklearn_mtl import _grouping

    searched = _grouping._local_search(
        affinity, 3, 5, np.random.RandomState(0)
    )
    searched = [np.flatnonzero(searched == g).tolist() for g in range(3)]
    assert brute_force_score(affinity, searched) <= brute_force_score(
        affinity, exact
    ) + 1e-12


def test_group_order_and_extremes():
    affinity, truth = planted(6, 2, seed=1)
    assert suggest_task_groups(affinity, 2) == truth
    assert suggest_task_groups(affinity, 1) == [list(range(6))]
    assert suggest_task_groups(affinity, 6) == [[t] for t in range(6)]


def test_nan_affinity_counts_as_zero():
    affinity = np.array([[1.0, 0.5, np.nan], [0.5, 1.0, -0.2], [np.nan, -0.3, 1.0]])
    assert suggest_task_groups(affinity, 2) == [[0, 1], [2]]


@pytest.mark.parametrize("n_groups", [0, 5, -1, 2.0, True])
def test_n_groups_out_of_range(n_groups):
    with pytest.raises(ValueError, match=r"n_groups must be an integer from 1 to .*\(4\)"):
        suggest_task_groups(np.eye(4), n_groups)


@pytest.mark.parametrize("affinity", [np.ones((3, 4)), np.ones(3), np.ones((2, 2, 2))])
def test_affinity_must_be_square(affinity):
    with pytest.raises(ValueError, match="affinity must be a square"):
        suggest_task_groups(affinity, 1)


def test_infinite_affinity_is_an_error():
    with pytest.raises(ValueError, match="infinite"):
        suggest_task_groups(np.array([[0.0, np.inf], [0.0, 0.0]]), 1)


# -- TaskAffinityDisplay ----------------------------------------------------------


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_display_from_affinity(pyplot):
    affinity = np.array([[0.5, 0.1, np.nan], [-0.2, 0.4, 0.0], [0.05, 0.0, 0.3]])
    display = TaskAffinityDisplay.from_affinity(affinity, task_names=["a", "b", "c"])
    assert display.text_.shape == (3, 3)
    assert display.text_[0, 1].get_text() == "0.1"
    assert display.text_[0, 2].get_text() == ""  # NaN left blank
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["a", "b", "c"]
    assert display.ax_.get_xlabel() == "Loss of task j"
    assert display.ax_.get_ylabel() == "Step on task i"
    assert display.figure_ is display.ax_.figure
    # The colour scale is symmetric and set by the off-diagonal entries.
    assert display.im_.get_clim() == (-0.2, 0.2)
    np.testing.assert_array_equal(display.im_.get_array().data[1], affinity[1])


def test_display_options(pyplot):
    _, ax = pyplot.subplots()
    display = TaskAffinityDisplay(np.eye(2) * 0.5).plot(
        ax=ax, include_values=False, colorbar=False, im_kw={"vmin": -1, "vmax": 1}
    )
    assert display.text_ is None and display.ax_ is ax
    assert display.im_.get_clim() == (-1, 1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    display = TaskAffinityDisplay(np.eye(2)).plot(values_format=".3f")
    assert display.text_[0, 0].get_text() == "1.000"


def test_display_from_estimator_names_dataframe_columns(pyplot):
    X, Y = grouped_tasks()
    y = pd.DataFrame(Y, columns=["price", "rent", "noise", "hum"])
    display = TaskAffinityDisplay.from_estimator(regressor(max_iter=1), X, y, every=2)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == list(y.columns)
    assert display.affinity.shape == (4, 4)
    assert display.task_names == list(y.columns)


def test_display_bad_inputs(pyplot):
    with pytest.raises(ValueError, match="affinity must be a square"):
        TaskAffinityDisplay.from_affinity(np.ones((2, 3)))
    with pytest.raises(ValueError, match="one name per task \\(2\\); got 3 names"):
        TaskAffinityDisplay.from_affinity(np.eye(2), task_names=["a", "b", "c"])


def test_display_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="TaskAffinityDisplay needs matplotlib"):
        TaskAffinityDisplay.from_affinity(np.eye(2))
