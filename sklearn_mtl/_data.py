"""Tensors and the iterator that slices them into batches.

Batches are slices of tensors built once per fit (dense data lives on the
training device; sparse data stays a scipy matrix, and each batch of its rows
is a torch CSR tensor for a net that reads sparse input, else densified), so
no per-row ``__getitem__`` runs in the training loop.
"""

import copy
import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.model_selection import train_test_split

from ._sparse import csr_batch


class TensorDataset(torch.utils.data.Dataset):
    """Rows of ``X`` with their encoded targets and per-task loss weights.

    ``X`` is a float32 tensor (already on ``device``) or a scipy CSR matrix.
    ``targets`` holds class indices or standardised values (0 where missing)
    and ``weights`` the loss weight of each entry (0 where missing); both are
    views of one ``(n, 2 * n_tasks)`` tensor, so a batch takes one gather.
    ``sparse_batches`` (set by the net that reads them) makes the batches of
    a CSR ``X`` torch CSR tensors rather than dense ones.
    """

    def __init__(self, X, targets=None, weights=None, device="cpu"):
        self.X = X
        self.device = device
        self.sparse_batches = False
        self.labels = None
        if targets is not None:
            self.n_tasks = targets.shape[1]
            self.labels = torch.cat([targets, weights], dim=1)

    @property
    def targets(self):
        return None if self.labels is None else self.labels[:, : self.n_tasks]

    @property
    def weights(self):
        return None if self.labels is None else self.labels[:, self.n_tasks :]

    def __len__(self):
        return self.X.shape[0]

    def take(self, index):
        """The dataset of the rows ``index`` of a dense ``X``, gathered once."""
        rows = copy.copy(self)
        rows.X = _rows(self.X, index)
        rows.labels = None if self.labels is None else _rows(self.labels, index)
        return rows

    def batch(self, index):
        """``(X, (targets, weights))`` of the rows ``index`` (a slice or an
        index tensor); ``(X, None)`` without targets."""
        if torch.is_tensor(self.X):
            Xb = _rows(self.X, index)
        else:
            rows = index.cpu().numpy() if torch.is_tensor(index) else index
            if self.sparse_batches:
                Xb = csr_batch(self.X, rows, self.device)
            else:
                Xb = torch.from_numpy(self.X[rows].toarray()).to(self.device)
        if self.labels is None:
            return Xb, None
        labels = _rows(self.labels, index)
        return Xb, (labels[:, : self.n_tasks], labels[:, self.n_tasks :])


def _rows(tensor, index):
    """The rows ``index`` (a slice: a view; an index tensor: a copy by
    ``index_select``, several times faster on CPU than ``tensor[index]``)."""
    return tensor[index] if isinstance(index, slice) else tensor.index_select(0, index)


def make_dataset(X, targets=None, weights=None, device="cpu"):
    """A :class:`TensorDataset` of float32 ``X`` (dense or CSR) and, when
    given, the ``(n, n_tasks)`` float32 ``targets`` and ``weights``."""
    if not sp.issparse(X):
        with warnings.catch_warnings():
            # Read-only input (joblib's memmaps) is shared, never written.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            X = torch.as_tensor(X, device=device)
    if targets is not None:
        targets = torch.as_tensor(targets, device=device)
        weights = torch.as_tensor(weights, device=device)
    return TensorDataset(X, targets, weights, device=device)


# Dense inputs of at most this many values are shuffled with one copy per
# epoch (16 MiB of float32) rather than gathered batch by batch.
SHUFFLED_COPY_LIMIT = 1 << 22


class BatchIterator:
    """Yield batches of a :class:`TensorDataset` by slicing its tensors.

    The order is drawn with ``torch.randperm`` from torch's global generator,
    which the estimators seed from ``random_state``.
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        n, size = len(self.dataset), self.batch_size
        if self.shuffle:
            dense = torch.is_tensor(self.dataset.X)
            order = torch.randperm(n, device=self.dataset.X.device if dense else "cpu")
            if dense and self.dataset.X.numel() <= SHUFFLED_COPY_LIMIT:
                # One gather of the whole epoch, then views: the same batches
                # without two indexing operations per batch.
                epoch = self.dataset.take(order)
                for start in range(0, n, size):
                    yield epoch.batch(slice(start, start + size))
                return
            for start in range(0, n, size):
                yield self.dataset.batch(order[start : start + size])
        else:
            for start in range(0, n, size):
                yield self.dataset.batch(slice(start, start + size))


def _can_stratify(labels, validation_fraction):
    """Whether ``train_test_split`` can stratify on ``labels`` (class indices):
    every class has two rows, and each side of the split a row per class."""
    counts = np.bincount(labels.astype(np.int64))
    counts = counts[counts > 0]
    n_valid = int(np.ceil(validation_fraction * len(labels)))
    return bool(
        counts.min() >= 2 and min(n_valid, len(labels) - n_valid) >= len(counts)
    )


def early_stopping_datasets(
    X, targets, weights, device, *, validation_fraction, rng, stratify_first, n_main,
    stratify_if_possible=False,
):
    """The training and validation datasets of an early-stopping fit.

    The split is stratified on the first task when ``stratify_first`` (a
    fully labelled classification task); as in ``MLPClassifier``, a class too
    small to be split is ``train_test_split``'s error (with
    ``stratify_if_possible``, for ``early_stopping="auto"``, such a split is
    drawn unstratified instead), and a validation set of fewer than 2 rows
    is an error. The validation rows keep the labels of
    the first ``n_main`` tasks (those of ``y``) only: the validation score is
    the estimator's score, and a task without labels has a NaN score, which
    the mean over tasks skips.
    """
    # As train_test_split counts them; checked first, as MLPClassifier (which
    # stratifies two classes only) finds it.
    if math.ceil(validation_fraction * X.shape[0]) < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    if stratify_first and stratify_if_possible:
        stratify_first = _can_stratify(targets[:, 0], validation_fraction)
    try:
        train_rows, valid_rows = train_test_split(
            np.arange(X.shape[0]),
            test_size=validation_fraction,
            stratify=targets[:, 0] if stratify_first else None,
            random_state=rng,
        )
    except ValueError as exc:
        # Too few validation (test) or training rows for the first task's
        # classes: say which way validation_fraction must move.
        side = next((s for s in ("test", "train") if f"{s}_size" in str(exc)), None)
        if not stratify_first or side is None:
            raise
        raise ValueError(
            f"{exc}. The validation split of early stopping is stratified on the "
            f"first task of y: {'increase' if side == 'test' else 'decrease'} "
            f"validation_fraction (now {validation_fraction}), or use "
            f"early_stopping='auto', which splits without stratifying where it "
            f"cannot stratify."
        ) from None
    valid_weights = weights[valid_rows]
    valid_weights[:, n_main:] = 0
    return (
        make_dataset(X[train_rows], targets[train_rows], weights[train_rows], device),
        make_dataset(X[valid_rows], targets[valid_rows], valid_weights, device),
    )
