"""The regimes of ``bench_speed.py --regime``: where most users fit.

Each regime times ``sklearn_mtl`` against ``MLPClassifier`` (multi-label, the
same network) and a hand-written PyTorch loop in one process, the variants
alternating in every repetition; figures are medians with the min-max over
the repetitions, and the ratio to MLP's median.

* ``small``: the three small tables (1,500 x 103 with 14 labels, the shape of
  Yeast; 2,000 x 20 and 5,000 x 50 with 3), trunk (100,), the default batch
  size (``min(200, n)``), 20 epochs; fit, ``predict_proba`` on every row and
  the latency of ``predict`` on one row (median of 200 calls). Also timed:
  ``MinimalLoop``, the leanest torch loop for the same problem.
* ``sparse``: CSR 20,000 x 50,000 with 100 non-zeros a row, 20 tasks, trunk
  (256,), batch 256; then ``sklearn_mtl``'s fit time as ``n_features`` goes
  from 10,000 to 1,000,000 at 100 non-zeros a row, the columns drawn
  uniformly (the issue's measurement) and by Zipf's law (as words are).
* ``tasks``: 20,000 x 100 dense, 512 binary tasks, trunk (256, 256), batch 256.
* ``busy``: the fits of ``small``'s 5,000 x 50 table and of the default case
  (50,000 x 100, 4 tasks, trunk 256-256, batch 256), on an idle machine and
  while another process keeps one core busy (a spinning Python loop),
  alternating; the slowdown is the busy median over the idle one.

Data are synthetic (a noisy linear model of Gaussian features per label),
seeded; the tables have the shapes of the issue's measurements.
"""

import multiprocessing
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from torch import nn

from _common import FIXED_EPOCHS  # benchmarks/_common.py
from sklearn_mtl import MultiTaskNetClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)

SMALL = [(1500, 103, 14), (2000, 20, 3), (5000, 50, 3)]


def dense_tasks(n_samples, n_features, n_tasks, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    W = rng.normal(size=(n_features, n_tasks))
    noise = rng.normal(scale=2.0, size=(n_samples, n_tasks))
    return X, (X @ W + noise > 0).astype(np.int64)


def sparse_tasks(n_samples, n_features, n_tasks, nnz=100, seed=0, columns="uniform"):
    """CSR rows with ``nnz`` non-zeros each (TF-IDF-like positive values) and
    labels from a sparse linear model.

    ``columns="uniform"`` draws each non-zero's column uniformly (every
    feature as frequent as any other: the most distinct features a batch
    can hold); ``"zipf"`` draws the column of rank ``k`` with probability
    proportional to ``1 / k`` (Zipf's law of word frequencies, as in text),
    the ranks scattered over the columns at random, as a vocabulary's
    indices are.
    """
    rng = np.random.RandomState(seed)
    if columns == "uniform":
        cols = rng.randint(n_features, size=(n_samples, nnz))
    elif columns == "zipf":
        p = 1.0 / np.arange(1, n_features + 1)
        ranks = rng.choice(n_features, size=(n_samples, nnz), p=p / p.sum())
        cols = rng.permutation(n_features)[ranks]
    else:
        raise ValueError(f"columns must be 'uniform' or 'zipf'; got {columns!r}.")
    vals = rng.exponential(size=(n_samples, nnz)).astype(np.float32)
    X = sp.csr_matrix(
        (vals.ravel(), cols.ravel(), np.arange(0, n_samples * nnz + 1, nnz)),
        shape=(n_samples, n_features),
    )
    X.sum_duplicates()
    W = rng.normal(size=(n_features, n_tasks)).astype(np.float32)
    scores = X @ W
    return X, (scores > np.median(scores, axis=0)).astype(np.int64)


def distinct_per_batch(X, batch_size=256):
    """Median number of distinct columns the non-zeros of a batch of
    consecutive rows fall on (the rows a lazy step updates)."""
    counts = [
        len(np.unique(X[start : start + batch_size].indices))
        for start in range(0, X.shape[0] - batch_size + 1, batch_size)
    ]
    return int(np.median(counts))


def _now():
    return time.perf_counter()


def latency(predict, X, calls=200):
    """Median seconds of ``predict`` on one row."""
    times = []
    for i in range(calls):
        row = X[i % X.shape[0] : i % X.shape[0] + 1]
        start = _now()
        predict(row)
        times.append(_now() - start)
    return float(np.median(times))


class Loop:
    """The hand-written reference: trunk of ReLU layers, one fused head with
    two logits per task, cross-entropy, Adam; dense or ``torch.sparse.mm``
    input, timed from numpy/scipy arrays to a trained model."""

    def __init__(self, hidden, epochs, batch_size):
        self.hidden, self.epochs, self.batch_size = hidden, epochs, batch_size

    def fit(self, X, Y):
        torch.manual_seed(0)
        n_tasks = Y.shape[1]
        sizes = [X.shape[1], *self.hidden]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], 2 * n_tasks)
        params = [*self.trunk.parameters(), *self.head.parameters()]
        optimizer = torch.optim.Adam(params, lr=1e-3)
        Yt = torch.as_tensor(Y)
        sparse = sp.issparse(X)
        Xt = X if sparse else torch.as_tensor(X)
        n = X.shape[0]
        for _ in range(self.epochs):
            order = torch.randperm(n)
            for i in range(0, n, self.batch_size):
                idx = order[i : i + self.batch_size]
                optimizer.zero_grad()
                out = self.forward(self._rows(Xt, idx, sparse))
                loss = nn.functional.cross_entropy(out.view(-1, 2), Yt[idx].view(-1))
                (loss * n_tasks).backward()
                optimizer.step()
        return self

    @staticmethod
    def _rows(X, idx, sparse):
        if not sparse:
            return X[idx]
        rows = X[idx.numpy()]
        return torch.sparse_csr_tensor(
            torch.from_numpy(rows.indptr).long(), torch.from_numpy(rows.indices).long(),
            torch.from_numpy(rows.data), size=rows.shape,
        )

    def forward(self, X):
        if X.layout == torch.sparse_csr:
            first = self.trunk[0]
            h = torch.sparse.mm(X, first.weight.t()) + first.bias
            return self.head(self.trunk[1:](h))
        return self.head(self.trunk(X))

    def predict_proba(self, X):
        sparse = sp.issparse(X)
        with torch.inference_mode():
            parts = []
            for i in range(0, X.shape[0], 4096):
                rows = X[i : i + 4096]
                Xt = self._rows(rows, torch.arange(rows.shape[0]), True) if sparse else (
                    torch.as_tensor(rows))
                parts.append(self.forward(Xt).view(rows.shape[0], -1, 2).softmax(dim=2))
            return torch.cat(parts).numpy()

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=2)


class MinimalLoop:
    """The leanest torch loop for MLPClassifier's multi-label problem: one
    logit per label, the mean logistic loss, fused Adam, no penalty, no
    per-label weighting, one thread while fitting (as ``sklearn_mtl`` picks
    for steps this small); what a torch step costs with nothing else."""

    def __init__(self, hidden, epochs, batch_size):
        self.hidden, self.epochs, self.batch_size = hidden, epochs, batch_size

    def fit(self, X, Y):
        torch.manual_seed(0)
        sizes = [X.shape[1], *self.hidden]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], Y.shape[1]))
        optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3, fused=True)
        Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y, dtype=torch.float32)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(self.epochs):
                order = torch.randperm(len(Xt))
                for i in range(0, len(Xt), self.batch_size):
                    idx = order[i : i + self.batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    nn.functional.binary_cross_entropy_with_logits(
                        self.net(Xt[idx]), Yt[idx]
                    ).backward()
                    optimizer.step()
        finally:
            torch.set_num_threads(threads)
        return self

    def predict_proba(self, X):
        with torch.inference_mode():
            return torch.sigmoid(self.net(torch.as_tensor(X))).numpy()

    def predict(self, X):
        return self.predict_proba(X) > 0.5


def estimators(hidden, epochs, batch_size="auto"):
    """name -> a function making a fresh estimator of the variant."""
    loop_batch = 200 if batch_size == "auto" else batch_size
    return {
        "sklearn_mtl": lambda: MultiTaskNetClassifier(
            **FIXED_EPOCHS,
            hidden_layer_sizes=hidden, max_iter=epochs, batch_size=batch_size,
            random_state=0,
        ),
        "MLPClassifier": lambda: MLPClassifier(
            hidden_layer_sizes=hidden, max_iter=epochs, batch_size=batch_size,
            random_state=0,
        ),
        "torch loop": lambda: Loop(hidden, epochs, loop_batch),
    }


def time_variants(makers, X, Y, repeats, single_row=False, skip=()):
    """Per variant: lists of fit seconds, predict_proba seconds and (with
    ``single_row``) one-row predict latencies, alternating the variants."""
    makers = {k: v for k, v in makers.items() if k not in skip}
    times = {name: {"fit": [], "predict_proba": [], "one_row": []} for name in makers}
    for name, make in makers.items():  # warm-up: thread pools, allocator
        make().fit(X[:256], Y[:256])
    for _ in range(repeats):
        for name, make in makers.items():
            est = make()
            start = _now()
            est.fit(X, Y)
            times[name]["fit"].append(_now() - start)
            start = _now()
            est.predict_proba(X)
            times[name]["predict_proba"].append(_now() - start)
            if single_row:
                times[name]["one_row"].append(latency(est.predict, X))
    return times


def med(values):
    values = np.asarray(values)
    return float(np.median(values)), float(values.min()), float(values.max())


def report(title, times, reference="MLPClassifier"):
    """Print medians [min-max] and ratios to ``reference``; return the summary."""
    print(title)
    metrics = [m for m in ("fit", "predict_proba", "one_row") if times[reference][m]]
    summary = {
        name: {m: med(v[m]) for m in metrics if v[m]} for name, v in times.items()
    }
    print(f"  {'variant':<14}" + "".join(f"{m + ' s':>34}" for m in metrics))
    for name, figures in summary.items():
        cells = []
        for m in metrics:
            if m not in figures:
                cells.append(f"{'-':>34}")
                continue
            median, low, high = figures[m]
            ratio = median / summary[reference][m][0]
            cells.append(f"{median:>11.4g} [{low:.3g}-{high:.3g}] {ratio:5.2f}x")
        print(f"  {name:<14}" + "".join(f"{c:>34}" for c in cells))
    return summary


def regime_small(args):
    results = {}
    for n, d, t in SMALL:
        X, Y = dense_tasks(n, d, t)
        makers = {
            **estimators((100,), 20),
            "minimal loop": lambda: MinimalLoop((100,), 20, 200),
        }
        times = time_variants(makers, X, Y, args.repeats, single_row=True, skip=args.skip)
        results[f"{n}x{d}x{t}"] = report(
            f"{n} x {d}, {t} tasks, trunk (100,), batch auto, 20 epochs", times
        )
    return results


def regime_sparse(args):
    X, Y = sparse_tasks(20_000, 50_000, 20)
    times = time_variants(
        estimators((256,), args.sparse_epochs, 256), X, Y, args.repeats, skip=args.skip
    )
    results = {
        "csr": report(
            f"CSR 20,000 x 50,000, 100 non-zeros a row, 20 tasks, trunk (256,), "
            f"batch 256, {args.sparse_epochs} epochs", times
        )
    }
    for columns in ("uniform", "zipf"):
        results[f"scaling_{columns}"] = feature_scaling(args, columns)
    # The target reads the uniform draw (kept under the old keys).
    for key in ("scaling", "last_epoch", "growth", "distinct"):
        results[key] = results["scaling_uniform"][key]
    return results


def feature_scaling(args, columns):
    """``sklearn_mtl``'s fit time as ``n_features`` goes from 10,000 to
    1,000,000 at 100 non-zeros a row, the columns drawn as ``columns`` says
    (see :func:`sparse_tasks`)."""
    print(f"sklearn_mtl fit as n_features grows, columns drawn {columns}:")
    scaling, last_epochs, distinct, nnz = {}, {}, {}, {}
    for n_features in (10_000, 100_000, 1_000_000):
        Xf, Yf = sparse_tasks(20_000, n_features, 20, columns=columns)
        distinct[n_features] = distinct_per_batch(Xf)
        nnz[n_features] = Xf.nnz / Xf.shape[0]
        fits, lasts = [], []
        for _ in range(args.repeats):
            est = estimators((256,), args.sparse_epochs, 256)["sklearn_mtl"]()
            start = _now()
            est.fit(Xf, Yf)
            fits.append(_now() - start)
            # The last epoch: the steady state, without the one-off weight
            # draw and the first writes of the optimizer's moments.
            lasts.append(est.net_.history[-1, "dur"])
        scaling[n_features], last_epochs[n_features] = med(fits), med(lasts)
        print(f"  n_features {n_features:>9,}: "
              f"{scaling[n_features][0]:.3g} s [{scaling[n_features][1]:.3g}-"
              f"{scaling[n_features][2]:.3g}], last epoch "
              f"{last_epochs[n_features][0]:.3g} s, "
              f"{nnz[n_features]:.1f} non-zeros a row (repeated columns summed), "
              f"{distinct[n_features]:,} distinct features a batch of 256 rows")
    growth = scaling[1_000_000][0] / scaling[10_000][0]
    print(f"  fit time growth from 10,000 to 1,000,000 features: {growth:.2f}x")
    print(f"  last epoch's growth: "
          f"{last_epochs[1_000_000][0] / last_epochs[10_000][0]:.2f}x")
    return {
        "scaling": {str(k): v for k, v in scaling.items()},
        "last_epoch": {str(k): v for k, v in last_epochs.items()},
        "distinct": {str(k): v for k, v in distinct.items()},
        "nnz_per_row": {str(k): v for k, v in nnz.items()},
        "growth": growth,
    }


def regime_tasks(args):
    X, Y = dense_tasks(20_000, 100, 512)
    times = time_variants(
        estimators((256, 256), args.tasks_epochs, 256), X, Y, args.repeats, skip=args.skip
    )
    return {
        "512": report(
            f"20,000 x 100 dense, 512 tasks, trunk (256, 256), batch 256, "
            f"{args.tasks_epochs} epochs", times
        )
    }


def _spin(stop):
    while not stop.is_set():
        pass


def regime_busy(args):
    cases = {
        "5000 x 50, 3 tasks, (100,), 20 epochs": (
            dense_tasks(5000, 50, 3), (100,), 20, "auto",
        ),
        "50,000 x 100, 4 tasks, (256, 256), 2 epochs": (
            dense_tasks(50_000, 100, 4), (256, 256), 2, 256,
        ),
    }
    results = {}
    for title, ((X, Y), hidden, epochs, batch) in cases.items():
        makers = {k: v for k, v in estimators(hidden, epochs, batch).items()
                  if k != "torch loop" and k not in args.skip}
        times = {(name, state): [] for name in makers for state in ("idle", "busy")}
        for make in makers.values():
            make().fit(X[:256], Y[:256])
        for _ in range(args.repeats):
            for state in ("idle", "busy"):
                stop = multiprocessing.Event()
                spinner = None
                if state == "busy":
                    spinner = multiprocessing.Process(target=_spin, args=(stop,))
                    spinner.start()
                    time.sleep(0.5)
                for name, make in makers.items():
                    start = _now()
                    make().fit(X, Y)
                    times[name, state].append(_now() - start)
                if spinner is not None:
                    stop.set()
                    spinner.join()
        print(title)
        summary = {}
        for name in makers:
            idle, busy = med(times[name, "idle"]), med(times[name, "busy"])
            summary[name] = {"idle": idle, "busy": busy, "slowdown": busy[0] / idle[0]}
            print(f"  {name:<14} idle {idle[0]:.3g} s [{idle[1]:.3g}-{idle[2]:.3g}]  "
                  f"busy {busy[0]:.3g} s [{busy[1]:.3g}-{busy[2]:.3g}]  "
                  f"slowdown {busy[0] / idle[0]:.2f}x")
        results[title] = summary
    return results


REGIMES = {
    "small": regime_small,
    "sparse": regime_sparse,
    "tasks": regime_tasks,
    "busy": regime_busy,
}
