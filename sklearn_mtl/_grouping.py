"""Task groups from an affinity matrix: exact search over partitions for
few tasks, a seeded local search beyond."""

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

# Partitions scored by brute force at most (S(10, 5) = 42,525: every split of
# up to 10 tasks); beyond, a local search.
MAX_EXACT_PARTITIONS = 100_000
PARTITION_CHUNK = 20_000


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
