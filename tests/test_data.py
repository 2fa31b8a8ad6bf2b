"""Datasets of tensors and the slicing batch iterator."""

import numpy as np
import scipy.sparse as sp
import torch

from sklearn_mtl._data import BatchIterator, TensorDataset, make_dataset


def test_dataset_batches_targets_and_weights_in_one_gather():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    targets = np.arange(30, dtype=np.float32).reshape(10, 3)
    weights = np.ones((10, 3), dtype=np.float32)
    dataset = make_dataset(X, targets, weights)
    assert isinstance(dataset, TensorDataset) and len(dataset) == 10
    Xb, (tb, wb) = dataset.batch(torch.tensor([7, 2]))
    np.testing.assert_array_equal(Xb.numpy(), X[[7, 2]])
    np.testing.assert_array_equal(tb.numpy(), targets[[7, 2]])
    assert wb.shape == (2, 3)
    assert make_dataset(X).batch(slice(0, 4))[1] is None


def test_sparse_rows_stay_sparse_until_batched():
    X = sp.random(50, 30, density=0.1, format="csr", random_state=0, dtype=np.float32)
    dataset = make_dataset(X)
    assert sp.issparse(dataset.X)
    batch, _ = next(iter(BatchIterator(dataset, batch_size=16)))
    assert isinstance(batch, torch.Tensor) and batch.shape == (16, 30)
    np.testing.assert_array_equal(batch.numpy(), X[:16].toarray())


def test_iterator_shuffles_every_row_once():
    X = np.arange(300, dtype=np.float32).reshape(300, 1)
    dataset = make_dataset(X, np.zeros((300, 2), np.float32), np.ones((300, 2), np.float32))
    torch.manual_seed(0)
    batches = list(BatchIterator(dataset, batch_size=64, shuffle=True))
    assert [len(b[0]) for b in batches] == [64, 64, 64, 64, 44]
    rows = torch.cat([b[0] for b in batches]).ravel()
    assert not torch.equal(rows, dataset.X.ravel())  # shuffled
    assert sorted(rows.tolist()) == list(range(300))
    assert len(BatchIterator(dataset, batch_size=64)) == 5


def test_a_small_dataset_is_shuffled_with_one_copy_and_the_same_batches(monkeypatch):
    from sklearn_mtl import _data

    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    dataset = make_dataset(X, rng.normal(size=(50, 2)).astype(np.float32), np.ones((50, 2), np.float32))

    def batches():
        torch.manual_seed(0)
        return list(BatchIterator(dataset, batch_size=16, shuffle=True))

    copied = batches()
    monkeypatch.setattr(_data, "SHUFFLED_COPY_LIMIT", 0)  # batch by batch
    gathered = batches()
    assert [len(b[0]) for b in copied] == [16, 16, 16, 2]
    for (Xa, (ta, wa)), (Xb, (tb, wb)) in zip(copied, gathered, strict=True):
        assert torch.equal(Xa, Xb) and torch.equal(ta, tb) and torch.equal(wa, wb)
