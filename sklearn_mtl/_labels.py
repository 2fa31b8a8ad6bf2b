"""Reading targets: the per-task columns of ``y`` and ``aux_targets``, their
missing entries, and the kind and :class:`~sklearn_mtl._tasks.TaskSpec` of
each task, inferred from its labelled values or declared."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets

from ._tasks import (
    CLASSIFICATION,
    MAX_INFERRED_CLASSES,
    REGRESSION,
    TaskSpec,
    _distinct,
    real_values,
    typed_labels,
)


def is_missing(column):
    """Boolean mask of the missing entries of a 1-D target column."""
    if column.dtype.kind == "f":
        return np.isnan(column)
    if column.dtype.kind != "O":
        return np.zeros(len(column), dtype=bool)
    return np.fromiter(
        (
            v is None
            or (isinstance(v, (float, np.floating)) and np.isnan(v))
            or type(v).__name__ in ("NAType", "NaTType")
            for v in column
        ),
        dtype=bool,
        count=len(column),
    )


def _column_values(series):
    """A pandas column as a numpy array. A nullable integer or boolean
    column (``Int8``, ``UInt16``, ``boolean``...) with missing entries is
    given as objects, its values numpy scalars of its type and ``pandas.NA``
    for the missing ones, not as floats with ``NaN``: its labels keep their
    type (see :func:`typed_labels`)."""
    kind = getattr(getattr(series.dtype, "numpy_dtype", None), "kind", None)
    if kind is not None and kind in "iub" and series.hasnans:
        return np.array(list(series.array), dtype=object)
    return series.to_numpy()


def _frame_columns(frame):
    """Columns, column labels and declared kinds of a pandas DataFrame.

    A ``category`` column declares a classification task; the others are
    ``None``: their kind is inferred from the values.
    """
    columns = [_column_values(frame.iloc[:, j]) for j in range(frame.shape[1])]
    declared = [
        CLASSIFICATION if str(dtype) == "category" else None for dtype in frame.dtypes
    ]
    return columns, list(frame.columns), declared


def target_columns(y, n_samples, name="y"):
    """Split ``y`` into per-task 1-D columns, each keeping its own dtype.

    Returns the columns, their names (a DataFrame's column labels, else
    positions), the kind each column's dtype declares (see
    :func:`_frame_columns`) and whether ``y`` was 1-D. ``name`` is the
    argument that ``y`` is, for messages.
    """
    if y is None:
        raise ValueError("y must not be None: pass the targets to fit.")
    if hasattr(y, "iloc"):  # pandas Series or DataFrame: keep per-column dtypes
        columns, names, declared = _frame_columns(y.to_frame() if y.ndim == 1 else y)
        one_d = y.ndim == 1
    else:
        y = np.asarray(y)
        if y.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be 1-D (one task) or 2-D (one column per task); "
                f"got an array with shape {y.shape}."
            )
        one_d = y.ndim == 1
        columns = [y] if one_d else [y[:, j] for j in range(y.shape[1])]
        names, declared = list(range(len(columns))), [None] * len(columns)
    if not columns:
        raise ValueError(f"{name} must have at least one column (task); got 0 columns.")
    if len(columns[0]) != n_samples:
        raise ValueError(
            f"{name} must have one entry (row) per sample; got inconsistent numbers "
            f"of samples: {n_samples} expected, {len(columns[0])} in {name}."
        )
    return columns, names, declared, one_d


def infer_kind(column, missing):
    """``"classification"`` or ``"regression"``, from a column's labelled values.

    Strings and booleans are classification, numbers with a fractional part
    regression, and integral numbers classification only when they take at
    most ``MAX_INFERRED_CLASSES`` distinct values.
    """
    labelled = column[~missing]
    if labelled.dtype.kind in "USb":
        return CLASSIFICATION
    if labelled.dtype == object:
        if all(isinstance(v, (str, bool, np.bool_)) for v in labelled):
            return CLASSIFICATION
        try:
            labelled = labelled.astype(np.float64)
        except (TypeError, ValueError):
            return CLASSIFICATION  # mixed label types: infer_spec says so
    elif labelled.dtype.kind in "iu":
        return (
            CLASSIFICATION if len(_distinct(labelled)) <= MAX_INFERRED_CLASSES
            else REGRESSION
        )
    elif labelled.dtype.kind != "f":
        return CLASSIFICATION
    values = labelled.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return REGRESSION  # infer_spec reports the infinite value
    integral = np.array_equal(values, np.round(values))
    if integral and len(np.unique(values)) <= MAX_INFERRED_CLASSES:
        return CLASSIFICATION
    return REGRESSION


def auxiliary_columns(aux_targets, n_samples):
    """Split ``aux_targets`` into per-task 1-D columns, each keeping its own dtype.

    Returns the columns, their names (a DataFrame's column labels, else
    positions) and the kind each column's dtype declares (classification for
    a pandas ``category`` column, else ``None``: inferred from the values).
    """
    expected = (
        "aux_targets must be a 2-D array or DataFrame with one column per "
        "auxiliary task"
    )
    if isinstance(aux_targets, dict):
        raise TypeError(
            f"{expected}; got a dict. scikit-learn's ensembles and searches cannot "
            f"select rows of a dict: pass pandas.DataFrame(aux_targets) instead."
        )
    if isinstance(aux_targets, (list, tuple)):
        raise TypeError(
            f"{expected}; got a {type(aux_targets).__name__}. scikit-learn's "
            f"ensembles and searches would not select its rows: stack the columns "
            f"with numpy.column_stack or pass a DataFrame."
        )
    if sp.issparse(aux_targets):
        raise TypeError(f"{expected}; got a sparse matrix. Pass a dense array.")
    if hasattr(aux_targets, "iloc"):  # pandas Series or DataFrame
        frame = aux_targets.to_frame() if aux_targets.ndim == 1 else aux_targets
        columns, names, declared = _frame_columns(frame)
        n_rows = frame.shape[0]
    else:
        values = np.asarray(aux_targets)
        if values.ndim not in (1, 2):
            raise ValueError(f"{expected}; got an array with shape {values.shape}.")
        if values.ndim == 1:
            values = values[:, None]
        columns = [values[:, j] for j in range(values.shape[1])]
        names = list(range(values.shape[1]))
        declared = [None] * values.shape[1]
        n_rows = values.shape[0]
    if n_rows != n_samples:
        raise ValueError(
            f"aux_targets must have one row per sample of X ({n_samples} rows); "
            f"got {n_rows} rows."
        )
    if not columns:
        raise ValueError(f"{expected}; got 0 columns. Pass aux_targets=None instead.")
    return columns, names, declared


def infer_spec(column, missing, kind, task, source="y", weights=None):
    """Build the :class:`TaskSpec` of one column from its labelled values.

    A regression target is standardised with the sample ``weights`` of its
    entries, so that a zero weight is the same as leaving the sample out and
    a weight of ``k`` the same as repeating it ``k`` times.
    """
    labelled = column[~missing]
    if kind == CLASSIFICATION:
        labelled = typed_labels(labelled, f"Task {task} of {source}")
    if len(labelled) == 0:
        raise ValueError(
            f"Task {task} of {source} has no labelled sample (every entry is missing); "
            f"each task needs at least one label."
        )
    if kind == CLASSIFICATION:
        try:
            # An object column's labels are typed by their values (ints, bools...).
            # Integer and boolean labels are always classes: no check needed.
            if labelled.dtype.kind not in "biu":
                check_classification_targets(
                    np.array(labelled.tolist()) if labelled.dtype == object else labelled
                )
        except ValueError as exc:
            raise ValueError(f"{exc} (task {task} of {source})") from None
        try:
            classes = _distinct(labelled)
        except TypeError:
            types = sorted({type(v).__name__ for v in labelled})
            raise TypeError(
                f"Task {task} of {source} mixes label types {types}; the labels "
                f"of one task must be of one type."
            ) from None
        if len(classes) < 2:
            raise ValueError(
                f"Task {task} of {source} has only one class ({classes[0]}) among its "
                f"labelled samples; a classification task needs at least 2 classes "
                f"(with partial_fit, pass every label with classes= on its first "
                f"call)."
            )
        return TaskSpec(CLASSIFICATION, classes=classes)
    values = real_values(labelled, f"Task {task} of {source}")
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"Input {source} contains infinity or a value too large for "
            f"dtype('float64') (task {task}); mark missing labels with NaN."
        )
    w = None if weights is None else weights[~missing]
    if w is not None and not w.sum() > 0:
        w = None  # no weighted label: the fit stops with an error on that task
    mean = np.average(values, weights=w)
    scale = np.sqrt(np.average((values - mean) ** 2, weights=w))
    return TaskSpec(REGRESSION, mean=mean, scale=scale if scale > 0 else 1.0)


def per_task_classes(classes, one_d, n_tasks):
    """``partial_fit``'s ``classes`` as a list with the labels of each task:
    of a 1-D ``y``'s task; of each task of a 2-D ``y``, where one list of
    labels (``MLPClassifier``'s multi-label ``classes=[0, 1]``) is every
    task's."""
    if one_d:
        return [classes]
    per_task = list(classes)
    if all(np.ndim(labels) == 0 for labels in per_task):
        return [classes] * n_tasks
    return per_task


def declared_specs(classes, one_d, n_tasks):
    """The :class:`TaskSpec` of classification tasks whose labels are given.

    ``classes`` is the label set of the single task of a 1-D ``y``, or a
    sequence with one label set per task of a 2-D ``y``.
    """
    per_task = per_task_classes(classes, one_d, n_tasks)
    if len(per_task) != n_tasks:
        raise ValueError(
            f"classes must have one array of labels per task (column of y); got "
            f"{len(per_task)} for {n_tasks} tasks."
        )
    specs = []
    for t, labels in enumerate(per_task):
        labels = np.asarray(labels)
        if labels.ndim == 1 and is_missing(labels.astype(object)).any():
            # What scikit-learn's label encoding makes of a missing label (as
            # in cross_val_predict(method="predict_proba")): not a class.
            raise ValueError(
                f"classes of task {t} holds a missing value (NaN or None), which "
                f"marks an unlabelled sample and cannot be a class; got {labels!r}. "
                f"Pass the labels only."
            )
        labels = np.unique(labels)
        if len(labels) < 2:
            raise ValueError(
                f"classes of task {t} must hold at least 2 labels; got {labels!r}."
            )
        specs.append(TaskSpec(CLASSIFICATION, classes=labels))
    return specs


def check_finite_labels(column, missing, task, source="y"):
    if column.dtype.kind == "f" and np.any(np.isinf(column[~missing])):
        raise ValueError(
            f"Input {source} contains infinity or a value too large for "
            f"dtype('float64') (task {task}); mark missing labels with NaN."
        )
