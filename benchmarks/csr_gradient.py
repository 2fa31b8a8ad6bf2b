"""The first layer's row-sparse gradient on a CSR batch: ``embedding_bag``'s
own (a row per non-zero, then coalesced, as the solver needs it) against
``_CSRProduct``'s (the batch grouped by feature times the output's gradient,
born coalesced). One batch of 256 rows with 100 non-zeros each
(``bench_speed.py --regime sparse``'s data), 256 outputs, forward and
backward; the median of 20 calls each, and the two gradients compared.

    python benchmarks/csr_gradient.py
"""

import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from _regimes import sparse_tasks  # benchmarks/_regimes.py

from sklearn_mtl._sparse import _CSRProduct, coalesced, csr_batch

warnings.filterwarnings("ignore", message="Sparse")


def median_ms(step, calls=20):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def compare(n_features):
    X, _ = sparse_tasks(2048, n_features, 2)
    batch = csr_batch(X, slice(0, 256), "cpu")
    crow, col, values = batch.crow_indices(), batch.col_indices(), batch.values()
    weight = torch.randn(n_features, 256, requires_grad=True)
    grad = torch.randn(256, 256)

    def by_non_zero():
        weight.grad = None
        F.embedding_bag(
            col, weight, crow, mode="sum", per_sample_weights=values,
            include_last_offset=True, sparse=True,
        ).backward(grad)
        return weight.grad.coalesce()

    def by_feature():
        weight.grad = None
        _CSRProduct.apply(crow, col, values, weight).backward(grad)
        return coalesced(weight.grad)

    a, b = by_non_zero(), by_feature()
    torch.testing.assert_close(a.indices(), b.indices())
    torch.testing.assert_close(a.values(), b.values())
    print(f"{n_features:>9,} features: embedding_bag's gradient "
          f"{median_ms(by_non_zero):.1f} ms, grouped by feature "
          f"{median_ms(by_feature):.1f} ms (the same to float rounding)")


def main():
    for n_features in (10_000, 1_000_000):
        compare(n_features)


if __name__ == "__main__":
    main()
