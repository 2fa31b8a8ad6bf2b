"""Task specifications: what each column of ``y`` is, and how it is encoded.

A fitted model is a list of :class:`TaskSpec`, one per task: the columns of
``y``, then those of ``aux_targets``. Classification tasks map labels to class
indices; regression tasks are standardised. Missing labels (``NaN``, ``None``,
``pandas.NA``) become a zero weight, so they never reach the loss.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

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
            labelled = typed_labels(labelled, f"A task of {source}")
            _check_label_kind(self.classes, labelled, source)
        if self.kind == CLASSIFICATION and _is_range(self.classes, labelled):
            # labels 0..K-1 and such; small types widened (no wrap-around)
            wide = _widened(labelled)
            encoded[~missing] = wide - wide.dtype.type(self.classes[0])
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
        low, high = values.min(), values.max()
        if int(high) - int(low) <= max(1024, 4 * len(values)):
            # Offsets from the lowest (int8 labels -100 and 100 are 200
            # apart), as intp.
            wide = _widened(values)
            offsets = (wide - wide.dtype.type(low)).astype(np.intp)
            present = np.flatnonzero(np.bincount(offsets, minlength=1))
            distinct = present.astype(wide.dtype) + wide.dtype.type(low)
            return distinct.astype(values.dtype)
    return np.unique(values)


def _widened(values):
    """Integers of fewer than 64 bits as ``int64``, so that differences
    between them do not wrap around."""
    return values.astype(np.int64) if values.dtype.itemsize < 8 else values


_BOOLS = (bool, np.bool_)


def typed_labels(labelled, what="A task of y"):
    """Labelled values of an object column as the numpy type they share:
    booleans as ``bool``; integers in their numpy type when they all have
    one, else as ``int64`` (``uint64`` above its range), so that its classes,
    and ``predict``, are of that type; other columns unchanged. Booleans
    mixed with integers are an error naming ``what``: ``True == 1`` would
    merge two labels."""
    if labelled.dtype != object or not len(labelled):
        return labelled
    types = {type(v) for v in labelled}
    if all(issubclass(t, _BOOLS) for t in types):
        return labelled.astype(bool)
    if not all(issubclass(t, (int, np.integer, *_BOOLS)) for t in types):
        return labelled
    if any(issubclass(t, _BOOLS) for t in types):
        raise ValueError(
            f"{what} mixes booleans and integers among its labels; the labels of "
            f"one task must be of one type (True == 1 would merge two of them)."
        )
    if len(types) == 1 and issubclass(next(iter(types)), np.integer):
        return labelled.astype(next(iter(types)))
    low, high = min(labelled), max(labelled)
    if -(2**63) <= low and high < 2**63:
        return labelled.astype(np.int64)
    if low >= 0 and high < 2**64:
        return labelled.astype(np.uint64)
    return labelled


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
