"""Task specifications: what each column of ``y`` is, and how it is encoded.

A fitted model is a list of :class:`TaskSpec`, one per task: the columns of
``y``, then those of ``aux_targets``. Classification tasks map labels to class
indices; regression tasks are standardised. Missing labels (``NaN``, ``None``,
``pandas.NA``) become a zero weight, so they never reach the loss.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.multiclass import check_classification_targets

CLASSIFICATION = "classification"
REGRESSION = "regression"

# An integral column is a classification task when it takes at most this many
# distinct values (a digit, a rating, a few levels), else a regression task
# (ages, counts, prices in whole units).
MAX_INFERRED_CLASSES = 10


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """One task of a multi-task model.

    Attributes
    ----------
    kind : {"classification", "regression"}
    classes : ndarray or None
        Sorted labels of a classification task, in their original dtype.
    mean, scale : float
        Standardisation of a regression task's target.
    """

    kind: str
    classes: np.ndarray = None
    mean: float = 0.0
    scale: float = 1.0

    @property
    def n_outputs(self):
        return len(self.classes) if self.kind == CLASSIFICATION else 1

    def encode(self, column, missing, source="y"):
        """Class indices or standardised values as float32; NaN where missing."""
        encoded = np.full(len(column), np.nan, dtype=np.float32)
        labelled = column[~missing]
        if self.kind == CLASSIFICATION and len(labelled):
            labelled = typed_labels(labelled)
            _check_label_kind(self.classes, labelled, source)
        if self.kind == CLASSIFICATION and _is_range(self.classes, labelled):
            encoded[~missing] = labelled - self.classes[0]  # labels 0..K-1 and such
        elif self.kind == CLASSIFICATION:
            index = np.searchsorted(self.classes, labelled)
            index = np.minimum(index, len(self.classes) - 1)
            unknown = self.classes[index] != labelled
            if np.any(unknown):
                raise ValueError(
                    f"{source} contains labels {np.unique(labelled[unknown])!r} that "
                    f"are not among the model's classes {self.classes!r}, which "
                    f"are fixed when training starts. For partial_fit, pass every "
                    f"label with classes= on its first call; with warm_start, "
                    f"refit with warm_start=False."
                )
            encoded[~missing] = index
        else:
            values = real_values(labelled, f"A task of {source}")
            encoded[~missing] = (values - self.mean) / self.scale
        return encoded


def real_values(labelled, what):
    """A regression task's labelled values as float64: real numbers only
    (numpy would parse strings and drop an imaginary part)."""
    text_or_complex = labelled.dtype.kind in "USc" or (
        labelled.dtype == object
        and any(isinstance(v, (str, bytes, complex)) for v in labelled)
    )
    try:
        if text_or_complex:
            raise TypeError
        return labelled.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} is a regression task but holds values that are not real "
            f"numbers, such as {labelled[:1].tolist()[0]!r}."
        ) from None


def _check_label_kind(classes, labels, source):
    """Booleans and numbers compare equal (``True == 1``), but a model of
    one does not take the other's labels."""
    kinds = {classes.dtype.kind, labels.dtype.kind}
    if "b" in kinds and kinds & set("iuf"):
        raise ValueError(
            f"{source} holds {labels.dtype} labels but the model's classes "
            f"{classes!r} are {classes.dtype}: the labels' type is fixed when "
            f"training starts. With warm_start, refit with warm_start=False."
        )


def _is_range(classes, labels):
    """Whether integer ``labels`` all fall in ``classes``, a run of
    consecutive integers (then a label's index is its offset)."""
    return (
        classes.dtype.kind in "iu" and labels.dtype.kind in "iu" and len(labels)
        and int(classes[-1]) - int(classes[0]) == len(classes) - 1
        and labels.min() >= classes[0] and labels.max() <= classes[-1]
    )


def _distinct(values):
    """Sorted distinct values of a 1-D array: by counting for integers of a
    small range (one pass, no sort), else ``np.unique``."""
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= max(1024, 4 * len(values)):
            present = np.flatnonzero(np.bincount(values - low, minlength=1))
            return (present + low).astype(values.dtype)
    return np.unique(values)


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
    column (``Int64``, ``boolean``) with missing entries is given as objects
    with ``None`` for them, not as floats with ``NaN``: its labels stay
    integers (see :func:`typed_labels`)."""
    kind = getattr(getattr(series.dtype, "numpy_dtype", None), "kind", None)
    if kind is not None and kind in "iub" and series.hasnans:
        return series.to_numpy(dtype=object, na_value=None)
    return series.to_numpy()


def typed_labels(labelled):
    """Labelled values of an object column as the numpy type they share:
    booleans as ``bool``, integers as ``int64`` (so that its classes, and
    ``predict``, are of that type); other columns unchanged."""
    if labelled.dtype != object or not len(labelled):
        return labelled
    if all(isinstance(v, (bool, np.bool_)) for v in labelled):
        return labelled.astype(bool)
    if all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
        for v in labelled
    ):
        return labelled.astype(np.int64)
    return labelled


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
        labelled = typed_labels(labelled)
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


@dataclass(frozen=True)
class Block:
    """Consecutive tasks of one kind and output size, computed together.

    Attributes
    ----------
    kind : {"classification", "regression"}
    first, stop : int
        The block's tasks are ``first`` to ``stop - 1``.
    column : int
        The block's first output column.
    size : int
        Outputs per task (classes, or 1).
    """

    kind: str
    first: int
    stop: int
    column: int
    size: int

    @property
    def n_tasks(self):
        return self.stop - self.first

    @property
    def columns(self):
        """The block's output columns: ``n_tasks * size`` of them."""
        return slice(self.column, self.column + self.n_tasks * self.size)

    @property
    def binary(self):
        """Whether the block's tasks are two-class classification tasks."""
        return self.kind == CLASSIFICATION and self.size == 2


def class_index(values, n_tasks, size):
    """The ``(n, n_tasks)`` class index of each task of a block of
    ``size``-class outputs ``(n, n_tasks * size)`` (numpy): the argmax, ties
    to the first class; a boolean array for two classes (one comparison of
    the pair rather than an ``argmax`` over a dimension of two)."""
    if size == 2:
        return values[:, 1::2] > values[:, 0::2]
    return values.reshape(len(values), n_tasks, size).argmax(axis=2)


@dataclass(frozen=True)
class OutputLayout:
    """Where each task's outputs stand in the network's ``(n, n_outputs)`` output.

    Built once from the task specifications (:meth:`from_tasks`); the
    module, the loss and prediction all read it. The columns of task ``t``
    follow those of the tasks before it.

    Attributes
    ----------
    kinds : tuple of str
        Kind of each task.
    sizes : tuple of int
        Outputs of each task: its number of classes, or 1 for regression.
    slices : tuple of slice
        The output columns of each task.
    blocks : tuple of Block
        Runs of consecutive tasks with the same kind and size: four binary
        tasks are one ``(n, 4, 2)`` block, one softmax and one loss.
    """

    kinds: tuple
    sizes: tuple
    slices: tuple = field(init=False, repr=False)
    blocks: tuple = field(init=False, repr=False)

    def __post_init__(self):
        bounds = np.cumsum([0, *self.sizes])
        slices = tuple(slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]))
        blocks = []
        for t, (kind, size) in enumerate(zip(self.kinds, self.sizes)):
            last = blocks[-1] if blocks else None
            if last and last.kind == kind and last.size == size:
                blocks[-1] = Block(kind, last.first, t + 1, last.column, size)
            else:
                blocks.append(Block(kind, t, t + 1, int(bounds[t]), int(size)))
        object.__setattr__(self, "slices", slices)
        object.__setattr__(self, "blocks", tuple(blocks))

    @classmethod
    def from_tasks(cls, tasks):
        return cls(
            tuple(spec.kind for spec in tasks),
            tuple(int(spec.n_outputs) for spec in tasks),
        )

    @property
    def n_tasks(self):
        return len(self.sizes)

    @property
    def n_outputs(self):
        return int(sum(self.sizes))

    def column_task(self):
        """The task of each output column, ``(n_outputs,)`` int64."""
        return np.repeat(np.arange(self.n_tasks), self.sizes)

    def softmax(self, outputs):
        """Class probabilities in place of the logits of every classification
        task, one softmax per block (torch tensor: the input modified in
        place, or a new tensor when one block covers every column)."""
        for block in self.blocks:
            if block.kind != CLASSIFICATION:
                continue
            logits = outputs[:, block.columns]
            shape = (-1, block.n_tasks, block.size)
            if block.size == 2:
                # p_k = sigmoid(z_k - z_other), both margins from one product:
                # torch's softmax over a dimension of two is several times slower.
                margins = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], device=outputs.device)
                proba = torch.sigmoid_(logits.reshape(shape) @ margins.to(outputs.dtype))
            else:
                proba = logits.reshape(shape).softmax(dim=2)
            if len(self.blocks) == 1:
                return proba.reshape(outputs.shape)
            logits.copy_(proba.reshape(logits.shape))
        return outputs

    def from_margins(self, compact, proba=True, out=None):
        """The ``(n, n_outputs)`` outputs from the outputs of a margin head
        (see ``MultiTaskModule.margin_head``): a two-class task's margin
        ``m`` becomes its probabilities ``(sigmoid(-m), sigmoid(m))``, or
        without ``proba`` the logits ``(0, m)``, which give the same labels;
        the other tasks' columns are kept (their softmax applied with
        ``proba``). Written into ``out`` (a ``(n, n_outputs)`` tensor, which
        is returned) when given: a batch's rows of the whole output."""
        n, start, parts = compact.shape[0], 0, []
        for block in self.blocks:
            width = block.n_tasks * (1 if block.binary else block.size)
            values = compact[:, start : start + width]
            start += width
            target = None if out is None else out[:, block.columns]
            if block.binary:
                # (-m, m) written into one buffer (``out``'s columns when
                # given), then one sigmoid in place: half the passes over the
                # (n, tasks, 2) output, most of the cost of hundreds of tasks.
                shape = (n, block.n_tasks, 2)
                if target is None:
                    pair = values.new_empty(shape)
                else:
                    pair = target.unflatten(1, shape[1:])
                if proba:
                    torch.neg(values, out=pair[:, :, 0])
                else:
                    pair[:, :, 0] = 0
                pair[:, :, 1] = values
                if proba:
                    pair.sigmoid_()
                if target is None:
                    parts.append(pair.reshape(n, -1))
                continue
            if block.kind == CLASSIFICATION and proba:
                shape = (n, block.n_tasks, block.size)
                values = values.reshape(shape).softmax(dim=2).reshape(n, -1)
            if target is None:
                parts.append(values)
            else:
                target.copy_(values)
        if out is not None:
            return out
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def encoded_predictions(self, outputs):
        """The ``(n, n_tasks)`` float64 predictions of numpy ``outputs`` in
        the targets' encoding: each classification task's class index (ties
        go to the first class, as ``argmax``), each regression task's
        standardised value; one operation per block."""
        pieces = []
        for block in self.blocks:
            values = outputs[:, block.columns]
            if block.kind == CLASSIFICATION:
                values = class_index(values, block.n_tasks, block.size)
            pieces.append(values.astype(np.float64))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)

    def split(self, outputs, tasks=slice(None)):
        """Per task of ``tasks`` (a slice of the tasks), its columns of the
        numpy array ``outputs``: views, not copies (a copy per task costs as
        much as the forward pass when there are hundreds of tasks)."""
        return [outputs[:, cols] for cols in self.slices[tasks]]


class TaskDecoder:
    """Predictions of the first ``n_tasks`` tasks from the network's
    ``(n, n_outputs)`` outputs (probabilities or logits, and standardised
    values): an ``(n, n_tasks)`` array in the tasks' common dtype, or
    ``object`` when they differ.

    Planned once from the task specifications (the estimator keeps one per
    fit) and applied one block at a time: one ``argmax`` for a block of
    classification tasks that share their labels and one affine map for a
    block of regression tasks, so prediction does not run a Python loop
    over hundreds of tasks.
    """

    def __init__(self, specs, n_tasks, layout):
        self.specs = specs
        self.plan = []  # (kind, columns, k, size, labels or per-task labels)
        for block in layout.blocks:
            stop = min(block.stop, n_tasks)
            if block.first >= stop:
                break
            k = stop - block.first
            columns = slice(block.column, block.column + k * block.size)
            chunk = specs[block.first : stop]
            if block.kind == CLASSIFICATION:
                first = chunk[0].classes
                # Equal labels of another dtype (0/1 and False/True) are not
                # shared: each task keeps its own.
                shared = all(
                    spec.classes.dtype == first.dtype and np.array_equal(spec.classes, first)
                    for spec in chunk
                )
                labels = first if shared else [spec.classes for spec in chunk]
            else:
                labels = (
                    np.array([spec.scale for spec in chunk]),
                    np.array([spec.mean for spec in chunk]),
                )
            self.plan.append((block.kind, columns, k, block.size, labels))

    def __call__(self, outputs):
        pieces = []
        for kind, columns, k, size, labels in self.plan:
            values = outputs[:, columns]
            if kind == REGRESSION:
                scale, mean = labels
                pieces.append(values.astype(np.float64) * scale + mean)
                continue
            index = class_index(values, k, size)
            if isinstance(labels, list):
                index = index.astype(np.intp)  # a boolean index would be a mask
                pieces.extend(cls[index[:, j : j + 1]] for j, cls in enumerate(labels))
            elif labels.dtype.kind in "iu" and np.array_equal(labels, np.arange(size)):
                pieces.append(index.astype(labels.dtype))  # labels 0..K-1
            else:
                pieces.append(labels[index.astype(np.intp)])
        if len({piece.dtype for piece in pieces}) > 1:
            pieces = [piece.astype(object) for piece in pieces]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)
