"""Which tasks help each other: lookahead inter-task affinity and task groups.

:func:`task_affinity` measures, during one training run, how much a step on
one task's loss lowers every other task's loss (Fifty et al., "Efficiently
Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021);
:func:`suggest_task_groups` splits the tasks into groups that help each
other most. :class:`~sklearn_mtl.TaskAffinityDisplay` draws the affinities.
"""

import math
import numbers

import numpy as np
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, check_random_state
from skorch.callbacks import Callback

from ._classifier import MultiTaskNetClassifier
from ._mixed import MultiTaskNet
from ._regressor import MultiTaskNetRegressor

__all__ = ["suggest_task_groups", "task_affinity"]

ESTIMATORS = (MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor)

# Partitions scored by brute force at most (S(10, 5) = 42,525: every split of
# up to 10 tasks); beyond, a local search.
MAX_EXACT_PARTITIONS = 100_000
PARTITION_CHUNK = 20_000


class TaskAffinity(Callback):
    """Lookahead inter-task affinity, measured on the training batches.

    Every ``every``-th training batch (from the first), before the
    optimiser's step, the callback computes each task's gradient on the
    shared parameters (``module_.shared_parameters()``), takes for each task
    ``i`` a plain SGD step ``theta_s - lr * grad_i`` on a copy of them, and
    records ``Z[i, j] = 1 - L_j(after) / L_j(before)`` on the same batch.
    Everything it changes (shared parameters, the module's buffers, torch's
    random generators) is put back exactly, so training goes on as without
    it. Read the result from :attr:`affinity_`.

    Parameters
    ----------
    every : int
        Measure on every ``every``-th training batch.
    learning_rate : float or None
        Step size of the lookahead; None takes the net's ``lr``.

    Attributes
    ----------
    affinity_ : ndarray of shape (n_tasks, n_tasks)
        Mean of ``Z[i, j]`` over the measured batches where both tasks had a
        labelled entry; NaN where they never had.
    n_measurements_ : ndarray of shape (n_tasks, n_tasks)
        Number of batches averaged into each entry.
    n_steps_ : int
        Training batches measured.
    """

    def __init__(self, every=1, learning_rate=None):
        self.every = every
        self.learning_rate = learning_rate

    def initialize(self):
        self.batches_seen_ = 0
        self.n_steps_ = 0
        self.sums_ = None
        self.counts_ = None
        return self

    @property
    def affinity_(self):
        if self.sums_ is None:
            return None
        sums, counts = self.sums_.cpu().numpy(), self.counts_.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)

    @property
    def n_measurements_(self):
        return None if self.counts_ is None else self.counts_.cpu().numpy().astype(int)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        seen = self.batches_seen_
        self.batches_seen_ += 1
        if seen % self.every == 0:
            self._measure(net, batch)

    def _measure(self, net, batch):
        module = net.module_
        params = [p for p in module.shared_parameters() if p.requires_grad]
        Xi, (targets, weights) = batch
        n_tasks = targets.shape[1]
        if self.sums_ is None:
            self.sums_ = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
            self.counts_ = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
        self.n_steps_ += 1
        if not params:
            return
        lr = net.lr if self.learning_rate is None else self.learning_rate
        criterion = net.criterion_
        devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
        buffers = [(b, b.clone()) for b in module.buffers()]
        saved = [p.detach().clone() for p in params]
        # Every pass draws the dropout masks the training step is about to
        # draw: the generators are reset to their state before each pass, and
        # restored on exit, so that training draws what it would have drawn.
        with torch.random.fork_rng(devices=devices):
            states = _rng_states(devices)
            with torch.enable_grad():
                losses = criterion.per_task(net.infer(Xi), targets, weights)
            before = losses.detach()
            labelled = (weights > 0).any(dim=0)
            movers = torch.nonzero(labelled).flatten().tolist()
            grads = []
            for k, i in enumerate(movers):
                grads.append(
                    torch.autograd.grad(
                        losses[i], params, retain_graph=k + 1 < len(movers),
                        allow_unused=True,
                    )
                )
            del losses
            _restore(buffers)
            after = torch.full((n_tasks, n_tasks), float("nan"), device=before.device)
            with torch.no_grad():
                for i, grad in zip(movers, grads):
                    for param, g in zip(params, grad):
                        if g is not None:
                            param.sub_(g, alpha=lr)
                    _set_rng_states(devices, states)
                    after[i] = criterion.per_task(net.infer(Xi), targets, weights)
                    for param, value in zip(params, saved):
                        param.copy_(value)
                    _restore(buffers)
        valid = (labelled[:, None] & labelled[None, :] & (before > 0)[None, :]).cpu()
        ratio = (1.0 - after / before.clamp_min(1e-30)).double().cpu()
        self.sums_ += torch.where(valid, ratio, 0.0)
        self.counts_ += valid


def _rng_states(devices):
    return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]


def _set_rng_states(devices, states):
    cpu, cuda = states
    torch.set_rng_state(cpu)
    for device, state in zip(devices, cuda):
        torch.cuda.set_rng_state(state, device)


def _restore(buffers):
    """Put back the module's buffers (batch-norm statistics) as they were."""
    with torch.no_grad():
        for buffer, value in buffers:
            buffer.copy_(value)


def _final_estimator(estimator):
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        return final, f"{name}__"
    return estimator, ""


def _n_columns(data):
    shape = np.shape(data)
    return 1 if len(shape) == 1 else shape[1]


def _column_names(data, prefix):
    """Task names of the columns of ``data``: a DataFrame's column names,
    a named Series' name, else ``prefix[k]`` (``prefix`` alone for 1-D)."""
    columns = getattr(data, "columns", None)
    if columns is not None:
        return [str(c) for c in columns]
    if np.ndim(data) == 1:
        name = getattr(data, "name", None)
        return [prefix if name is None else str(name)]
    return [f"{prefix}[{k}]" for k in range(_n_columns(data))]


def task_affinity(
    estimator,
    X,
    y,
    *,
    aux_targets=None,
    sample_weight=None,
    every="auto",
    learning_rate=None,
):
    """Lookahead inter-task affinity, measured while training a copy.

    The affinity of Fifty et al. (NeurIPS 2021): at a training step on batch
    ``B``, with shared parameters ``theta_s`` and task heads ``theta_j``,

        ``Z[i, j] = 1 - L_j(B; theta_s - lr * grad_s L_i, theta_j) / L_j(B; theta_s, theta_j)``

    is how much a step on task ``i``'s loss alone lowers task ``j``'s loss
    (negative: it raises it). Entry ``[i, j]`` of ``affinity`` is the mean
    of ``Z[i, j]`` over the training steps where it is measured. It is
    measured during one training run of ``sklearn.base.clone(estimator)``,
    which is returned fitted: the measurement leaves the training as it is
    (the clone ends up with the same weights as an unmeasured fit).

    Parameters
    ----------
    estimator : MultiTaskNetClassifier, MultiTaskNetRegressor or MultiTaskNet
        The model to measure, or a :class:`~sklearn.pipeline.Pipeline`
        ending in one. It is cloned, never modified; fitted or not does not
        matter.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training inputs.
    y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        Targets of the tasks, as for the estimator's ``fit`` (missing
        labels as NaN).
    aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
            default=None
        Auxiliary tasks, as for the estimator's ``fit``; they come after the
        tasks of ``y``.
    sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
            default=None
        Sample weights, as for the estimator's ``fit``; the losses ``L_j``
        are the weighted losses the training minimises.
    every : int or "auto", default="auto"
        Measure on every ``every``-th training batch, from the first. One
        measurement costs about as much as ``n_tasks`` training steps (a
        backward pass to the shared parameters and a forward pass per task),
        so ``"auto"`` takes ``max(6, n_tasks)``, which keeps the whole run
        within about twice the time of one fit (see the Notes).
    learning_rate : float, default=None
        Step size of the lookahead; None takes the estimator's
        ``learning_rate_init``.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With the keys:

        affinity : ndarray of shape (n_tasks, n_tasks)
            ``affinity[i, j]``: mean relative decrease of task ``j``'s
            loss after a step on task ``i``'s loss. Rows: the task stepped
            on; columns: the task whose loss is read. NaN where tasks ``i``
            and ``j`` never had labelled entries in the same measured batch.
        task_names : list of str
            The tasks, those of ``y`` then those of ``aux_targets``: a
            DataFrame's column names (a named Series' name for a 1-D
            ``y``), else ``"y[0]"``, ``"y[1]"``, ... (``"y"`` for a 1-D
            ``y``) and ``"aux_targets[0]"``, ...
        n_steps : int
            Training batches measured.
        n_measurements : ndarray of shape (n_tasks, n_tasks)
            Batches averaged into each entry of ``affinity``.
        estimator : estimator
            The fitted clone (the same model as ``clone(estimator).fit``).

    Raises
    ------
    ValueError
        With fewer than two tasks, an estimator without a shared trunk
        (``hidden_layer_sizes=()``), or when ``every`` is not a positive
        integer or ``"auto"``.

    See Also
    --------
    suggest_task_groups : Groups of tasks with the highest affinity.
    sklearn_mtl.TaskAffinityDisplay : Heatmap of the affinities.

    Notes
    -----
    Choices where the paper leaves room:

    - The lookahead moves only the shared parameters,
      ``net_.module_.shared_parameters()`` (the trunk, or the experts of
      ``architecture="mmoe"``), as in the paper; heads and, for MMoE, the
      gates (one per task) stay as they are.
    - It is a plain SGD step of size ``learning_rate`` whatever the
      estimator's ``solver``, as in the paper (which measured under Adam
      too). With Adam's default rate of 1e-3 the affinities are small
      numbers; only their signs and order matter.
    - The loss of a step is each task's own loss, before ``task_weights``
      or a balancing method weigh it (the ratio does not depend on the
      weight of ``L_j``, and ``L_i``'s weight would only rescale the step).
    - The lookahead passes run in the mode of the training step (dropout
      on, batch norm on the batch's statistics), with the very dropout
      masks the step is about to draw, so ``L_j(before)`` is the loss the
      step minimises; the batch-norm statistics they update are put back.
    - A task with no labelled entry in a batch contributes nothing to that
      batch: neither its row nor its column is counted, and each entry is
      the mean over the batches that counted it (``n_measurements``). A
      task whose loss is exactly zero on a batch is skipped the same way.

    A measurement costs one forward and one backward pass to the shared
    parameters per task, plus one forward pass per task: about ``n_tasks``
    training steps. With ``every="auto"`` (every ``max(6, n_tasks)``-th
    batch) measuring adds less than one fit's time; in
    ``benchmarks/bench_affinity.py`` the measured run took 1.2-1.7 times an
    unmeasured fit (medians for 16 synthetic tasks, Yeast's 14 and 4 census
    tasks; at most 1.9). Its affinities correlated at 0.96-0.999 with those
    measured on every batch where tasks affect each other (synthetic, Yeast),
    but at 0.23 on census, whose cross-task affinities are near zero: there,
    ``every=1`` (about 4 fits) gives groups that do not change with the seed
    as much.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNetRegressor
    >>> from sklearn_mtl.inspection import task_affinity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 6))
    >>> Y = np.column_stack([X[:, 0], X[:, 0] + 0.1 * X[:, 1], X[:, 5]])
    >>> result = task_affinity(
    ...     MultiTaskNetRegressor(max_iter=5, random_state=0), X, Y, every=1
    ... )
    >>> result.affinity.shape
    (3, 3)
    >>> result.task_names
    ['y[0]', 'y[1]', 'y[2]']
    """
    final, prefix = _final_estimator(estimator)
    if not isinstance(final, ESTIMATORS):
        raise TypeError(
            f"task_affinity measures a MultiTaskNetClassifier, MultiTaskNetRegressor "
            f"or MultiTaskNet (or a Pipeline ending in one); got "
            f"{type(final).__name__}."
        )
    if y is None:
        raise ValueError("task_affinity needs the targets y; got y=None.")
    names = _column_names(y, "y")
    if aux_targets is not None:
        names += _column_names(aux_targets, "aux_targets")
    n_tasks = len(names)
    if n_tasks < 2:
        raise ValueError(
            f"task_affinity compares tasks with each other and needs at least two: "
            f"got {n_tasks} task (a 1-D y and no aux_targets). Give a 2-D y or "
            f"aux_targets."
        )
    sizes = getattr(final, "hidden_layer_sizes", None)
    if sizes is not None and np.size(sizes) == 0:
        raise ValueError(
            "task_affinity measures how the tasks move each other through the shared "
            "trunk, but hidden_layer_sizes=() gives the estimator no trunk (every "
            "task has its own parameters only). Give hidden_layer_sizes at least one "
            "layer."
        )
    if isinstance(every, str) and every == "auto":
        every = max(6, n_tasks)
    elif (
        not isinstance(every, numbers.Integral) or isinstance(every, bool) or every < 1
    ):
        raise ValueError(
            f"every must be a positive integer (measure on every every-th training "
            f"batch) or 'auto'; got {every!r}."
        )
    if learning_rate is not None and not (
        isinstance(learning_rate, numbers.Real) and learning_rate > 0
    ):
        raise ValueError(
            f"learning_rate must be a positive number or None; got {learning_rate!r}."
        )

    model = clone(estimator)
    final = model[-1] if isinstance(model, Pipeline) else model
    callbacks = final.callbacks
    final.set_params(
        callbacks=[
            *(callbacks or []),
            ("task_affinity", TaskAffinity(every=int(every), learning_rate=learning_rate)),
        ]
    )
    fit_params = {}
    if aux_targets is not None:
        fit_params[prefix + "aux_targets"] = aux_targets
    if sample_weight is not None:
        fit_params[prefix + "sample_weight"] = sample_weight
    try:
        model.fit(X, y, **fit_params)
    finally:
        # The fitted clone keeps the parameters it was given: refitting it
        # does not measure again.
        final.set_params(callbacks=callbacks)
    meter = dict(final.net_.callbacks_)["task_affinity"]
    if len(final.tasks_) != n_tasks:  # e.g. a 2-D y the estimator reads otherwise
        names = [f"task {t}" for t in range(len(final.tasks_))]
    if meter.sums_ is None:
        n = len(final.tasks_)
        affinity = np.full((n, n), np.nan)
        counts = np.zeros((n, n), dtype=int)
    else:
        affinity, counts = meter.affinity_, meter.n_measurements_
    return Bunch(
        affinity=affinity,
        task_names=names,
        n_steps=meter.n_steps_,
        n_measurements=counts,
        estimator=model,
    )


# -- task groups ------------------------------------------------------------------


def _check_affinity(affinity):
    affinity = np.asarray(affinity, dtype=np.float64)
    if affinity.ndim != 2 or affinity.shape[0] != affinity.shape[1]:
        raise ValueError(
            f"affinity must be a square (n_tasks, n_tasks) matrix; got an array of "
            f"shape {affinity.shape}."
        )
    if np.isinf(affinity).any():
        raise ValueError("affinity must not contain infinite values.")
    return affinity


def _stirling2(n, k):
    """Number of partitions of ``n`` items into ``k`` non-empty groups."""
    return sum(
        (-1) ** i * math.comb(k, i) * (k - i) ** n for i in range(k + 1)
    ) // math.factorial(k)


def _partitions(n, k):
    """Every partition of ``range(n)`` into ``k`` non-empty groups, as rows of
    group labels in restricted-growth form (task 0 in group 0, a new group
    numbered after the existing ones)."""
    rows = []
    labels = [0] * n

    def extend(position, n_used):
        if n - position < k - n_used:  # too few tasks left to open the groups
            return
        if position == n:
            rows.append(labels.copy())
            return
        for group in range(min(n_used + 1, k)):
            labels[position] = group
            extend(position + 1, max(n_used, group + 1))

    labels[0] = 0
    extend(1, 1)
    return np.asarray(rows, dtype=np.int64).reshape(-1, n)


def _scores(labels, affinity):
    """Score of each row of group labels: the sum over tasks of the mean
    affinity onto the task from the other members of its group (0 alone)."""
    n = affinity.shape[0]
    same = labels[:, :, None] == labels[:, None, :]  # (m, i, j)
    same &= ~np.eye(n, dtype=bool)
    onto = np.einsum("mij,ij->mj", same, affinity)
    others = same.sum(axis=1)
    return np.where(others > 0, onto / np.maximum(others, 1), 0.0).sum(axis=1)


def _group_value(within, sizes):
    """A group's score: the sum of the affinities between its members (both
    directions, no diagonal) over ``size - 1``; 0 for a group of one."""
    return np.where(sizes > 1, within / np.maximum(sizes - 1, 1), 0.0)


def _local_search(affinity, n_groups, n_restarts, rng):
    """Best labels of single-task moves and pairwise swaps from random starts.

    Every task of a group has the same number of other members, so a split's
    score is ``sum_g W_g / (|g| - 1)``, with ``W_g`` the sum of the
    off-diagonal affinities within group ``g``. With ``C = A + A.T`` and
    ``B[t, g]`` the sum of ``C[t, i]`` over the members ``i`` of ``g``, the
    change of ``W`` of a move or a swap is read from ``B`` and ``C``, so one
    step scores every move and every swap in ``O(n_tasks**2)``, not by
    rescoring each candidate split.
    """
    n = affinity.shape[0]
    A = affinity.copy()
    np.fill_diagonal(A, 0.0)
    C = A + A.T
    best, best_score = None, -np.inf
    for _ in range(n_restarts):
        labels = np.concatenate(
            [np.arange(n_groups), rng.randint(n_groups, size=n - n_groups)]
        )
        rng.shuffle(labels)
        while True:
            onehot = np.eye(n_groups)[labels]
            B = C @ onehot  # (n, groups)
            sizes = onehot.sum(axis=0)
            within = 0.5 * (onehot * B).sum(axis=0)
            value = _group_value(within, sizes)
            own = labels
            s_own = sizes[own]
            # Moves: task t from its group a to group b.
            leave = _group_value(within[own] - B[np.arange(n), own], s_own - 1) - value[own]
            join = _group_value(within[None, :] + B, sizes[None, :] + 1) - value[None, :]
            moves = leave[:, None] + join
            moves[np.arange(n), own] = -np.inf
            moves[s_own <= 1, :] = -np.inf  # groups stay non-empty
            # Swaps: task s of group a with task t of group b.
            a, b = own[:, None], own[None, :]
            new_a = within[a] - B[np.arange(n)[:, None], a] + B[np.arange(n)[None, :], a] - C
            new_b = within[b] - B[np.arange(n)[None, :], b] + B[np.arange(n)[:, None], b] - C
            swaps = (_group_value(new_a, sizes[a]) - value[a]
                     + _group_value(new_b, sizes[b]) - value[b])
            swaps[a == b] = -np.inf
            move_at = np.unravel_index(np.argmax(moves), moves.shape)
            swap_at = np.unravel_index(np.argmax(swaps), swaps.shape)
            if max(moves[move_at], swaps[swap_at]) <= 1e-12:
                break
            labels = labels.copy()
            if moves[move_at] >= swaps[swap_at]:
                labels[move_at[0]] = move_at[1]
            else:
                s, t = swap_at
                labels[s], labels[t] = labels[t], labels[s]
        score = _scores(labels[None], affinity)[0]
        if score > best_score:
            best, best_score = labels, score
    return best


def suggest_task_groups(affinity, n_groups, *, n_restarts=20, random_state=None):
    """Split the tasks into groups that help each other most.

    The selection rule of Fifty et al. (NeurIPS 2021) for a partition: the
    score of a split is the sum over tasks of the mean affinity onto the
    task from the other members of its group,
    ``sum_j mean_{i in group(j), i != j} affinity[i, j]`` (a task alone in
    its group scores 0: nothing helps it, nothing hurts it); the split of
    highest score is returned.

    Parameters
    ----------
    affinity : array-like of shape (n_tasks, n_tasks)
        ``affinity[i, j]``: how much a step on task ``i`` lowers task
        ``j``'s loss, as :func:`task_affinity` returns it. The diagonal is
        not used; NaN entries (pairs never measured) count as 0.
    n_groups : int
        Number of groups, from 1 to ``n_tasks``; every group is non-empty.
    n_restarts : int, default=20
        Random starts of the local search, used when the exact search is
        too large.
    random_state : int, RandomState instance or None, default=None
        Seeds the local search's starts; the exact search ignores it.

    Returns
    -------
    groups : list of list of int
        The groups: each a sorted list of task indices (rows of
        ``affinity``), the groups in the order of their first task.

    Raises
    ------
    ValueError
        When ``affinity`` is not a square matrix or holds infinite values,
        or ``n_groups`` is not an integer in ``[1, n_tasks]``.

    See Also
    --------
    task_affinity : Measure the affinities.

    Notes
    -----
    The paper lets groups overlap (a task may be trained in several groups
    and served by its best one); here the groups are a partition: every task
    is in exactly one group, so the groups can be trained as separate
    networks and every task predicted by one. When the number of splits
    into ``n_groups`` groups (a Stirling number of the second kind) is at
    most 100,000 — every split of up to 10 tasks — all of them are scored
    and the best is exact (ties go to the first in restricted-growth order).
    Beyond, a local search from ``n_restarts`` random splits moves one task
    to another group or swaps two tasks while the score improves, and keeps
    the best split found: a local optimum, not always the global one.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl.inspection import suggest_task_groups
    >>> affinity = np.array([[1.0, 0.5, -0.1, 0.0],
    ...                      [0.4, 1.0, 0.0, -0.2],
    ...                      [-0.1, 0.0, 1.0, 0.3],
    ...                      [0.0, -0.1, 0.6, 1.0]])
    >>> suggest_task_groups(affinity, 2)
    [[0, 1], [2, 3]]
    """
    affinity = _check_affinity(affinity)
    n_tasks = affinity.shape[0]
    if (
        not isinstance(n_groups, numbers.Integral)
        or isinstance(n_groups, bool)
        or not 1 <= n_groups <= n_tasks
    ):
        raise ValueError(
            f"n_groups must be an integer from 1 to the number of tasks "
            f"({n_tasks}); got n_groups={n_groups!r}."
        )
    if not isinstance(n_restarts, numbers.Integral) or n_restarts < 1:
        raise ValueError(f"n_restarts must be a positive integer; got {n_restarts!r}.")
    affinity = np.nan_to_num(affinity, nan=0.0)
    if _stirling2(n_tasks, n_groups) <= MAX_EXACT_PARTITIONS:
        partitions = _partitions(n_tasks, n_groups)
        best, best_score = None, -np.inf
        for start in range(0, len(partitions), PARTITION_CHUNK):
            chunk = partitions[start : start + PARTITION_CHUNK]
            scores = _scores(chunk, affinity)
            top = int(np.argmax(scores))
            if scores[top] > best_score:
                best, best_score = chunk[top], scores[top]
        labels = best
    else:
        labels = _local_search(
            affinity, n_groups, n_restarts, check_random_state(random_state)
        )
    groups = [sorted(np.flatnonzero(labels == g).tolist()) for g in np.unique(labels)]
    return sorted(groups, key=lambda group: group[0])
