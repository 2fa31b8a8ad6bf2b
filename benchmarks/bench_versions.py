"""This checkout of sklearn_mtl against another, alternating in one process.

The machine this project is measured on is shared and noisy (a factor of two
between sittings), so a change is judged by both versions timed in the same
process, round after round, in alternating order: each figure is the median
of the rounds' ratios (this checkout's time over the other's), with the
interquartile range. The other version is imported from its own checkout
under another name (the package imports itself relatively).

* fits: the Vega ``cars`` table at the defaults (``bench_defaults.py``'s
  preprocessing, early stopping), and two of ``bench_speed.py --regime
  small``'s tables for 20 epochs and at the defaults; the fits at the
  defaults also per epoch (two versions may stop after different numbers);
* prediction, on those tables after a 20-epoch fit: ``predict_proba`` on
  every row (the median of 30 calls in a round) and ``predict`` on one row
  (the median of 200 calls); and ``predict_proba`` of ``bench_speed.py
  --regime tasks``'s 512 tasks on 20,000 rows after a 2-epoch fit (the
  median of 5 calls in a round).

    git worktree add /tmp/base <commit>
    python benchmarks/bench_versions.py --base /tmp/base --rounds 7
"""

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import FIXED_EPOCHS, write_json  # benchmarks/_common.py
from _regimes import SMALL, dense_tasks, latency
from bench_defaults import preprocessor, split
from sklearn.exceptions import ConvergenceWarning

import sklearn_mtl

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def import_checkout(root, name="sklearn_mtl_base"):
    """The ``sklearn_mtl`` package of the checkout at ``root``, as ``name``."""
    package = Path(root) / "sklearn_mtl"
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ratios(time_new, time_base, rounds):
    """Per round, both versions timed in alternating order; the quartiles of
    the ratios and each version's median."""
    new, base, ratio = [], [], []
    for r in range(rounds):
        order = (time_new, time_base) if r % 2 == 0 else (time_base, time_new)
        figures = {f: f() for f in order}
        new.append(figures[time_new])
        base.append(figures[time_base])
        ratio.append(new[-1] / base[-1])
    q1, median, q3 = np.percentile(ratio, [25, 50, 75])
    return {"ratio": median, "iqr": [q1, q3], "new": np.median(new), "base": np.median(base)}


def fit_time(make, X, Y, per_epoch=False):
    """A fit's seconds, or with ``per_epoch`` its seconds per epoch (fits
    that stop early may run different numbers of epochs in two versions)."""
    def run():
        start = time.perf_counter()
        est = make().fit(X, Y)
        seconds = time.perf_counter() - start
        return seconds / len(est.net_.history) if per_epoch else seconds
    return run


def proba_time(model, X, calls=30):
    def run():
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            model.predict_proba(X)
            times.append(time.perf_counter() - start)
        return float(np.median(times))
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="save the results to this path")
    args = parser.parse_args()
    base = import_checkout(args.base)
    packages = {"new": sklearn_mtl, "base": base}

    X_train, Y_train, *_ = split("cars")
    cases = {"cars, defaults": (
        preprocessor(X_train).fit_transform(X_train).astype(np.float32),
        Y_train.to_numpy(), "MultiTaskNetRegressor", {},
    )}
    for n, d, t in SMALL[:2]:
        X, Y = dense_tasks(n, d, t)
        fixed = dict(hidden_layer_sizes=(100,), max_iter=20, early_stopping=False)
        cases[f"{n} x {d}, {t} tasks, 20 epochs"] = (X, Y, "MultiTaskNetClassifier", fixed)
        cases[f"{n} x {d}, {t} tasks, defaults"] = (X, Y, "MultiTaskNetClassifier", {})

    results = {"fit": {}, "fit_epoch": {}, "predict_proba": {}, "one_row": {}}
    print(f"this checkout against {args.base}, {args.rounds} rounds; "
          "median ratio [interquartile range], each version's median")
    for name, (X, Y, estimator, params) in cases.items():
        makers = [
            (lambda p=p, e=estimator, kw=params: getattr(p, e)(random_state=0, **kw))
            for p in packages.values()
        ]
        for make in makers:  # warm-up
            make().fit(X, Y)
        figures = ratios(*(fit_time(make, X, Y) for make in makers), args.rounds)
        results["fit"][name] = figures
        print(f"  fit {name:<32} {figures['ratio']:.2f}x [{figures['iqr'][0]:.2f}-"
              f"{figures['iqr'][1]:.2f}]  {figures['new']:.3f} s vs {figures['base']:.3f} s")
        if "defaults" in name:  # early stopping: the epochs may differ
            epoch = ratios(*(fit_time(m, X, Y, per_epoch=True) for m in makers), args.rounds)
            results["fit_epoch"][name] = epoch
            print(f"  fit per epoch {name:<22} {epoch['ratio']:.2f}x [{epoch['iqr'][0]:.2f}-"
                  f"{epoch['iqr'][1]:.2f}]  {epoch['new'] * 1e6:.0f} µs vs "
                  f"{epoch['base'] * 1e6:.0f} µs")
    for n, d, t in SMALL:
        X, Y = dense_tasks(n, d, t)
        models = [
            p.MultiTaskNetClassifier(
                hidden_layer_sizes=(100,), max_iter=20, early_stopping=False, random_state=0
            ).fit(X, Y)
            for p in packages.values()
        ]
        name = f"{n} x {d}, {t} tasks"
        proba = ratios(*(proba_time(m, X) for m in models), args.rounds)
        row = ratios(*((lambda m=m, X=X: latency(m.predict, X)) for m in models), args.rounds)
        results["predict_proba"][name], results["one_row"][name] = proba, row
        print(f"  predict_proba {name:<22} {proba['ratio']:.2f}x [{proba['iqr'][0]:.2f}-"
              f"{proba['iqr'][1]:.2f}]  {proba['new'] * 1e3:.3f} ms vs {proba['base'] * 1e3:.3f} ms")
        print(f"  one row {name:<28} {row['ratio']:.2f}x [{row['iqr'][0]:.2f}-"
              f"{row['iqr'][1]:.2f}]  {row['new'] * 1e6:.0f} µs vs {row['base'] * 1e6:.0f} µs")
    X, Y = dense_tasks(20_000, 100, 512)
    models = [
        p.MultiTaskNetClassifier(
            **FIXED_EPOCHS, hidden_layer_sizes=(256, 256), batch_size=256, max_iter=2,
            random_state=0,
        ).fit(X, Y)
        for p in packages.values()
    ]
    name = "20000 x 100, 512 tasks"
    proba = ratios(*(proba_time(m, X, calls=5) for m in models), args.rounds)
    results["predict_proba"][name] = proba
    print(f"  predict_proba {name:<22} {proba['ratio']:.2f}x [{proba['iqr'][0]:.2f}-"
          f"{proba['iqr'][1]:.2f}]  {proba['new'] * 1e3:.1f} ms vs {proba['base'] * 1e3:.1f} ms")
    if args.json:
        write_json(args.json, args, **results)


if __name__ == "__main__":
    main()
