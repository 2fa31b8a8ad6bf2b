"""Per-task scores that skip missing labels."""

import numpy as np
from sklearn.metrics import r2_score

from ._tasks import CLASSIFICATION, REGRESSION, is_missing, target_columns

__all__ = ["per_task_scores"]


def per_task_scores(y_true, y_pred, task_types, sample_weight=None):
    """Score each task (column of ``y``) on its labelled entries.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tasks)
        True labels or values; ``NaN`` or ``None`` marks a missing label, which
        is left out of that task's score.
    y_pred : array-like of the same shape
        Predicted labels or values.
    task_types : sequence of {"classification", "regression"}
        The kind of each task: accuracy for classification, R² for regression.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.

    Returns
    -------
    scores : ndarray of shape (n_tasks,)
        Accuracy or R² of each task; ``NaN`` for a task with no label.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl.metrics import per_task_scores
    >>> y_true = np.array([[0, 1.0], [1, np.nan], [1, 3.0]])
    >>> y_pred = np.array([[0, 1.0], [0, 2.0], [1, 3.0]])
    >>> per_task_scores(y_true, y_pred, ["classification", "regression"])
    array([0.66666667, 1.        ])
    """
    truth, _ = target_columns(y_true, len(y_true))
    pred, _ = target_columns(y_pred, len(y_true))
    if not len(truth) == len(pred) == len(task_types):
        raise ValueError(
            f"y_true, y_pred and task_types must describe the same tasks; got "
            f"{len(truth)}, {len(pred)} and {len(task_types)}."
        )
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    scores = np.full(len(truth), np.nan)
    for t, (true, predicted, kind) in enumerate(zip(truth, pred, task_types)):
        labelled = ~is_missing(true)
        if not labelled.any():
            continue
        w = None if weights is None else weights[labelled]
        if kind == CLASSIFICATION:
            scores[t] = np.average(true[labelled] == predicted[labelled], weights=w)
        elif kind == REGRESSION:
            scores[t] = r2_score(
                true[labelled].astype(float), predicted[labelled].astype(float),
                sample_weight=w,
            )
        else:
            raise ValueError(
                f"task_types must hold 'classification' or 'regression'; got {kind!r}."
            )
    return scores
