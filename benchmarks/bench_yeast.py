"""Multi-task nets against single-task baselines on the Yeast multi-label data.

Mulan's Yeast as shipped by ``river`` (``river.datasets.Yeast()``): 2,417
genes, 103 features, 14 functional classes (labels), each a binary task.
Rows 0-916 are Mulan's ``yeast-test`` split and rows 917-2416 its
``yeast-train``; we train on the latter and score on the former. The
features are used as given (they are already centred, of standard deviation
about 0.1). The models, a table of named configurations (``MODELS``):

* ``logreg``: ``MultiOutputClassifier(LogisticRegression())``, one logistic
  regression per label;
* ``chain``: ``ClassifierChain(LogisticRegression())`` in a random order
  drawn from the seed;
* ``mlp``: scikit-learn's ``MLPClassifier``, one network with a sigmoid
  output per label;
* ``net_single``: ``MultiOutputClassifier(MultiTaskNetClassifier())``, one
  ``sklearn_mtl`` net per label;
* ``net_multi``: one ``MultiTaskNetClassifier`` for the 14 labels.

Hyperparameters (C, alpha, width, dropout, epochs) are chosen by 5-fold
cross-validation on the training split only: seed 0 runs each model's grid
and keeps the configuration of lowest cross-validated Hamming loss (labels
predicted at probability 0.5), the other seeds run that configuration with
their own weights and chain order. Each model is scored twice on the
test split: with ``predict`` (threshold 0.5) and with one threshold for all
labels chosen on the out-of-fold probabilities of seed 0 to maximise
micro-F1. Reported: Hamming loss, micro-F1 and macro-F1 (mean ± standard
deviation over the seeds), the fit time of one final model, and the scores
of the seeds' mean probability (an ensemble of the seeds' models).

    python benchmarks/bench_yeast.py                    # the full table
    python benchmarks/bench_yeast.py --quick            # a smaller run
    python benchmarks/bench_yeast.py --json results.json

Needs ``pip install -e ".[benchmarks]"`` (river; see README).
"""

import argparse
import functools
import itertools
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, hamming_loss
from sklearn.model_selection import KFold
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from sklearn_mtl import MultiTaskNetClassifier

from _common import FIXED_EPOCHS, summarise, write_json  # benchmarks/_common.py

N_TEST = 917  # rows 0-916 are Mulan's yeast-test

# Named configurations: a function of (parameters, seed) that builds the
# model, and the grid searched by cross-validation on the training split.
MODELS = {
    "logreg": dict(
        make=lambda p, seed: MultiOutputClassifier(LogisticRegression(max_iter=2000, **p)),
        grid=dict(C=[0.1, 1.0, 10.0, 100.0]),
    ),
    "chain": dict(
        make=lambda p, seed: ClassifierChain(
            LogisticRegression(max_iter=2000, **p), order="random", random_state=seed
        ),
        grid=dict(C=[0.1, 1.0, 10.0, 100.0]),
    ),
    "mlp": dict(
        make=lambda p, seed: MLPClassifier(random_state=seed, **p),
        grid=dict(hidden_layer_sizes=[(100,), (256,)], alpha=[1e-4, 1e-1, 1.0]),
    ),
    "net_single": dict(
        make=lambda p, seed: MultiOutputClassifier(
            MultiTaskNetClassifier(**FIXED_EPOCHS, random_state=seed, **p)
        ),
        grid=dict(hidden_layer_sizes=[(256,)], dropout=[0.3, 0.5], max_iter=[30, 60]),
    ),
    "net_multi": dict(
        make=lambda p, seed: MultiTaskNetClassifier(**FIXED_EPOCHS, random_state=seed, **p),
        grid=dict(
            hidden_layer_sizes=[(256,), (512,)], dropout=[0.3, 0.5, 0.7],
            max_iter=[30, 60],
        ),
    ),
}

PUBLISHED = {"CAMEL (AAAI 2019)": dict(hamming=0.190, micro_f1=0.655, macro_f1=0.411)}


def load_yeast():
    from river.datasets import Yeast

    X, Y = [], []
    for x, y in Yeast():
        X.append(list(x.values()))
        Y.append([int(v) for v in y.values()])
    X, Y = np.asarray(X, dtype=np.float32), np.asarray(Y)
    return X[N_TEST:], Y[N_TEST:], X[:N_TEST], Y[:N_TEST]


def proba_matrix(model, X):
    """``(n, n_labels)`` probabilities of the positive class, whatever the model."""
    proba = model.predict_proba(X)
    if isinstance(proba, list):
        return np.column_stack([p[:, 1] for p in proba])
    return np.asarray(proba)


def scores(Y, P, threshold):
    pred = (P >= threshold).astype(int)
    return dict(
        hamming=float(hamming_loss(Y, pred)),
        micro_f1=float(f1_score(Y, pred, average="micro", zero_division=0)),
        macro_f1=float(f1_score(Y, pred, average="macro", zero_division=0)),
        label_f1=f1_score(Y, pred, average=None, zero_division=0).round(4).tolist(),
    )


def out_of_fold(make, X, Y, folds, seed):
    P = np.zeros(Y.shape)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        P[test] = proba_matrix(make().fit(X[train], Y[train]), X[test])
    return P


def best_threshold(Y, P):
    """The one threshold for every label that maximises micro-F1 on ``P``."""
    grid = np.round(np.arange(0.2, 0.61, 0.025), 3)
    f1 = [f1_score(Y, (P >= t).astype(int), average="micro") for t in grid]
    return float(grid[int(np.argmax(f1))])


def grid_points(grid):
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def run_model(name, spec, data, args):
    X, Y, X_test, Y_test = data
    points = grid_points(spec["grid"])[: 1 if args.quick else None]
    runs, search = [], []
    chosen, threshold = None, 0.5
    for seed in args.seeds:
        if chosen is None:
            best = None
            for params in points:
                start = time.perf_counter()
                make = functools.partial(spec["make"], params, seed)
                P = out_of_fold(make, X, Y, args.folds, seed)
                cv = scores(Y, P, 0.5)
                search.append(dict(params=_plain(params), cv=cv,
                                   cv_s=time.perf_counter() - start))
                print(f"  {name} {params}: CV Hamming {cv['hamming']:.4f}, micro-F1 "
                      f"{cv['micro_f1']:.4f} ({search[-1]['cv_s']:.0f} s)",
                      file=sys.stderr, flush=True)
                if best is None or cv["hamming"] < best[1]["hamming"]:
                    best = (params, cv, P)
            chosen, _, P = best
            threshold = best_threshold(Y, P)
        start = time.perf_counter()
        model = spec["make"](chosen, seed).fit(X, Y)
        fit_s = time.perf_counter() - start
        P_test = proba_matrix(model, X_test)
        runs.append(dict(
            seed=seed, fit_s=fit_s, proba=P_test,
            test={"0.5": scores(Y_test, P_test, 0.5),
                  "cv": scores(Y_test, P_test, threshold)},
        ))
        r = runs[-1]["test"]["0.5"]
        print(f"{name} seed {seed}: Hamming {r['hamming']:.4f}, micro-F1 "
              f"{r['micro_f1']:.4f}, macro-F1 {r['macro_f1']:.4f} ({fit_s:.1f} s)",
              file=sys.stderr, flush=True)
    # The seeds' mean probability: an ensemble of the seeds' models.
    P_mean = np.mean([r.pop("proba") for r in runs], axis=0)
    ensemble = {"0.5": scores(Y_test, P_mean, 0.5), "cv": scores(Y_test, P_mean, threshold)}
    return dict(params=_plain(chosen), threshold=threshold, search=search, runs=runs,
                seed_mean=ensemble)


def _plain(params):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _short(params):
    names = dict(hidden_layer_sizes="hidden", max_iter="epochs")
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in params.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch and BLAS threads (1 gives steady timings on a shared machine)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="one seed, 3 folds, the first grid point of each model only",
    )
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.folds = [0], 3
    # On a shared 2-core machine, two BLAS threads made MLPClassifier's fits
    # up to 20 times slower than one; every model gets the same thread count.
    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    wall = time.perf_counter()

    data = load_yeast()
    raw = {name: run_model(name, MODELS[name], data, args) for name in args.models}
    wall = time.perf_counter() - wall

    print(
        f"Yeast (Mulan split): {len(data[0])} training, {len(data[2])} test rows, "
        f"{data[1].shape[1]} labels; {len(args.seeds)} seeds {args.seeds}, "
        f"{args.folds}-fold CV on the training split, {torch.get_num_threads()} "
        f"torch thread(s); wall time {wall:.0f} s"
    )
    header = (f"{'model':<11} {'threshold':>9} {'Hamming loss':>16} {'micro-F1':>16} "
              f"{'macro-F1':>16} {'fit (s)':>7}  chosen")
    print(header)
    print("-" * len(header))
    summary = {}
    for name, result in raw.items():
        runs = result["runs"]
        fit_s = summarise([r["fit_s"] for r in runs])
        for key, label in (("0.5", "0.5"), ("cv", f"{result['threshold']:.3f} cv")):
            row = {m: summarise([r["test"][key][m] for r in runs])
                   for m in ("hamming", "micro_f1", "macro_f1")}
            summary[f"{name}/{key}"] = dict(row, threshold=label, fit_s=fit_s,
                                            params=result["params"],
                                            seed_mean=result["seed_mean"][key])
            print(
                f"{name:<11} {label:>9} "
                + " ".join(f"{row[m][0]:>7.4f} ± {row[m][1]:.4f}"
                           for m in ("hamming", "micro_f1", "macro_f1"))
                + f" {fit_s[0]:>7.1f}  {_short(result['params'])}"
            )
    print("Mean probability of the seeds' models (Hamming / micro-F1 / macro-F1):")
    for name, result in raw.items():
        print(f"  {name:<11} " + "; ".join(
            f"{label} " + " / ".join(f"{result['seed_mean'][key][m]:.4f}"
                                     for m in ("hamming", "micro_f1", "macro_f1"))
            for key, label in (("0.5", "0.5"), ("cv", f"{result['threshold']:.3f}"))))
    for name, p in PUBLISHED.items():
        print(f"published: {name} Hamming {p['hamming']:.3f}, micro-F1 "
              f"{p['micro_f1']:.3f}, macro-F1 {p['macro_f1']:.3f}")

    if args.json:
        write_json(
            args.json,
            args,
            wall_s=wall,
            published=PUBLISHED,
            summary=summary,
            raw=raw,
        )


if __name__ == "__main__":
    main()
