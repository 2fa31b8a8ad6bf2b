"""Concrete dropout against a grid search over fixed dropout rates.

On datasets that ship with scikit-learn, for several seeds (each seed draws
its own train/test split and seeds the networks):

* ``concrete``: one ``fit`` with ``dropout="concrete"``, which learns one rate
  per trunk layer;
* ``grid``: ``GridSearchCV`` over fixed rates (``--rates``, 3-fold, refit on
  the whole training set), the way the rate is usually chosen.

Both use the same network, a ``StandardScaler`` in front, and the same
epochs. Reported per method: test score (accuracy for digits, R² for
diabetes), total fit time (the whole search for ``grid``) and the rates
chosen or learned, as mean ± standard deviation over the seeds.

    python benchmarks/bench_concrete.py                    # the full table
    python benchmarks/bench_concrete.py --quick            # a smaller run
    python benchmarks/bench_concrete.py --json results.json
"""

import argparse
import sys
import time
import warnings

import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor

from _common import summarise, write_json  # benchmarks/_common.py

DATASETS = {
    "digits": (load_digits, MultiTaskNetClassifier),
    "diabetes": (load_diabetes, MultiTaskNetRegressor),
}


def run_one(name, seed, args):
    loader, estimator = DATASETS[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed
    )
    params = dict(
        hidden_layer_sizes=tuple(args.hidden),
        max_iter=args.epochs,
        learning_rate_init=args.lr,
        random_state=seed,
    )
    rows = {}

    model = make_pipeline(StandardScaler(), estimator(dropout="concrete", **params))
    start = time.perf_counter()
    model.fit(X_train, y_train)
    rows["concrete"] = dict(
        score=model.score(X_test, y_test),
        fit_s=time.perf_counter() - start,
        rates=list(model[-1].dropout_),
    )

    search = GridSearchCV(
        make_pipeline(StandardScaler(), estimator(**params)),
        {f"{estimator.__name__.lower()}__dropout": args.rates},
        cv=3,
    )
    start = time.perf_counter()
    search.fit(X_train, y_train)
    rows["grid"] = dict(
        score=search.score(X_test, y_test),
        fit_s=time.perf_counter() - start,
        rates=list(search.best_estimator_[-1].dropout_),
    )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (1 gives steady timings on a shared machine)",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, 30 epochs, 3 rates")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.rates = [0], 30, [0.0, 0.2, 0.5]
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)

    raw = {}
    for name in args.datasets:
        raw[name] = []
        for seed in args.seeds:
            raw[name].append(run_one(name, seed, args))
            print(f"{name} seed {seed}: {raw[name][-1]}", file=sys.stderr, flush=True)

    print(
        f"{len(args.seeds)} seeds, trunk {args.hidden}, {args.epochs} epochs, "
        f"grid over {args.rates} (3-fold), {torch.get_num_threads()} threads"
    )
    header = f"{'dataset':<9} {'method':<9} {'test score':>16} {'fit time (s)':>16}  rates"
    print(header)
    print("-" * len(header))
    summary = {}
    for name, runs in raw.items():
        for method in ("concrete", "grid"):
            score = summarise([r[method]["score"] for r in runs])
            fit_s = summarise([r[method]["fit_s"] for r in runs])
            rates = [[round(x, 3) for x in r[method]["rates"]] for r in runs]
            summary[f"{name}/{method}"] = dict(score=score, fit_s=fit_s, rates=rates)
            print(
                f"{name:<9} {method:<9} {score[0]:>9.4f} ± {score[1]:.4f} "
                f"{fit_s[0]:>9.2f} ± {fit_s[1]:<5.2f}  {rates}"
            )
    if args.json:
        write_json(
            args.json,
            args,
            summary=summary,
            runs=raw,
        )


if __name__ == "__main__":
    main()
