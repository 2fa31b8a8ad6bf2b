"""From ``y``, ``aux_targets`` and ``sample_weight`` to per-task columns,
kinds, specifications and loss weights."""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from ._labels import (
    auxiliary_columns,
    check_finite_labels,
    declared_specs,
    infer_kind,
    infer_spec,
    is_missing,
    target_columns,
)
from ._tasks import CLASSIFICATION, REGRESSION


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


def encode_targets(estimator, X, y, aux_targets, sample_weight, reset, classes=None):
    """Targets and loss weights as float32 ``(n_samples, n_tasks)`` arrays.

    The tasks are the columns of ``y``, then those of ``aux_targets``. On
    ``reset`` the task specifications are inferred from the labels, or
    taken from ``classes`` (the label sets of the classification tasks of
    ``y``) when given.
    """
    n_samples = X.shape[0]
    columns, names, declared, one_d = target_columns(y, n_samples)
    n_main = len(columns)
    aux_names, aux_declared = [], []
    if aux_targets is not None:
        aux_columns, aux_names, aux_declared = auxiliary_columns(
            aux_targets, n_samples
        )
    elif reset:
        aux_columns = []
    else:  # continued training without aux_targets: those tasks are unlabelled
        aux_columns = [np.full(n_samples, np.nan)] * estimator.n_aux_tasks_
    if not reset:
        check_task_counts(
            n_main, len(aux_columns), estimator._n_main_tasks, estimator.n_aux_tasks_
        )
    columns = columns + aux_columns
    # (argument, position) of each task, for messages.
    origins = [("y", t) for t in range(n_main)] + [
        ("aux_targets", j) for j in range(len(aux_columns))
    ]
    missing = [is_missing(c) for c in columns]
    for column, miss, (source, t) in zip(columns, missing, origins):
        check_finite_labels(column, miss, t, source)
    # One column of sample weights per task (a 1-D sample_weight serves all).
    sample_weights = np.broadcast_to(
        sample_weight_matrix(sample_weight, X, len(columns), len(aux_columns)),
        (n_samples, len(columns)),
    )
    if reset:
        kinds = estimator._main_kinds(names, declared) + declared_kinds(
            estimator.aux_task_types, aux_names, aux_declared, "aux_task_types",
            "aux_targets",
        )
        estimator.tasks_ = infer_specs(
            columns, missing, sample_weights, n_main, kinds, one_d, classes
        )
        estimator.n_aux_tasks_ = len(aux_columns)
        estimator._y_1d = one_d
        # Column names of DataFrame targets, for displays.
        estimator._target_names = (
            names if hasattr(y, "iloc") and not one_d else None,
            aux_names if hasattr(aux_targets, "iloc") else None,
        )
    targets = np.column_stack(
        [
            spec.encode(column, miss, source)
            for spec, column, miss, (source, _) in zip(
                estimator.tasks_, columns, missing, origins
            )
        ]
    )
    weights = sample_weights * ~np.column_stack(missing)
    # class_weight weighs the classes of the predicted tasks: those of y.
    for t, spec in enumerate(estimator.tasks_[:n_main]):
        if spec.kind == CLASSIFICATION:
            labelled = ~missing[t]
            per_sample = estimator._class_weights(t, spec, columns[t][labelled])
            if per_sample is not None:
                weights[labelled, t] *= per_sample
    targets[np.isnan(targets)] = 0
    return targets, weights
