"""From ``y``, ``aux_targets`` and ``sample_weight`` to per-task columns,
kinds, specifications and loss weights."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from ._tasks import CLASSIFICATION, REGRESSION, declared_specs, infer_kind, infer_spec


def task_columns_text(n_aux):
    """How the tasks are laid out, for messages: "column of y" or more."""
    return "column of y, then of aux_targets" if n_aux else "column of y"


def declared_kinds(overrides, names, declared, param, source):
    """Kind of each column of ``source``: from ``overrides``, its dtype or None.

    ``overrides`` is the value of the hyperparameter ``param``: None, a
    list with one kind per column (by position, whatever the column
    names), or a dict from column names (or positions) to kinds.
    """
    kinds = list(declared)
    if overrides is None:
        return kinds
    if isinstance(overrides, list):
        if len(overrides) != len(names):
            raise ValueError(
                f"{param} must have one entry per column of {source}; "
                f"got {len(overrides)} entries for {len(names)} columns."
            )
        positions = dict(enumerate(overrides))
    else:
        positions = {}
        for key, kind in overrides.items():
            if key in names:
                positions[names.index(key)] = kind
            elif isinstance(key, Integral) and 0 <= key < len(names):
                positions[int(key)] = kind
            else:
                raise ValueError(
                    f"{param} has the key {key!r}, which is neither a column "
                    f"name nor a position of {source} (columns: {names})."
                )
    for position, kind in positions.items():
        if kind not in (CLASSIFICATION, REGRESSION, None):
            raise ValueError(
                f"{param} must give 'classification', 'regression' or None "
                f"for each column; got {kind!r} for column {names[position]!r}."
            )
        if kind is not None:
            kinds[position] = kind
    return kinds


def sample_weight_matrix(sample_weight, X, n_tasks, n_aux):
    """``sample_weight`` as float32 ``(n_samples, 1)`` or ``(n_samples, n_tasks)``."""
    if sample_weight is None:
        return np.ones((X.shape[0], 1), dtype=np.float32)
    if np.asarray(sample_weight).ndim == 2:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (X.shape[0], n_tasks):
            raise ValueError(
                f"sample_weight must be 1-D (n_samples,) or 2-D (n_samples, "
                f"n_tasks) = {(X.shape[0], n_tasks)}, one column per task "
                f"({task_columns_text(n_aux)}); got shape {weights.shape}."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("sample_weight must be finite and non-negative.")
    else:
        weights = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )[:, None]
    return weights.astype(np.float32)


def infer_specs(columns, missing, sample_weights, n_main, kinds, one_d, classes):
    """Task specifications of the columns of y, then of aux_targets.

    ``kinds`` holds each column's kind, or None to infer it from the
    column's labelled values; ``classes`` the label sets of the tasks of
    y, when given.
    """
    specs = [] if classes is None else declared_specs(classes, one_d, n_main)
    for t in range(len(specs), len(columns)):
        source, position = ("y", t) if t < n_main else ("aux_targets", t - n_main)
        kind = kinds[t] or infer_kind(columns[t], missing[t])
        specs.append(
            infer_spec(
                columns[t], missing[t], kind, position, source=source,
                weights=sample_weights[:, t],
            )
        )
    return specs


def check_task_counts(n_main, n_aux, fitted_main, fitted_aux):
    if n_main != fitted_main:
        raise ValueError(
            f"y has {n_main} tasks (columns) but the model was fitted on {fitted_main}."
        )
    if n_aux != fitted_aux:
        raise ValueError(
            f"aux_targets has {n_aux} columns but the model was fitted with "
            f"{fitted_aux} auxiliary tasks."
        )
