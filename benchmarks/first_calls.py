"""The first calls of ``predict_proba`` after a fit, ours against MLP's.

``bench_speed.py --regime small`` times the first ``predict_proba`` after
each fit; this script times four successive calls after each of
``--repeats`` fits (20 epochs, the small tables, the variants alternating)
and prints each call's median, so the first call's extra cost can be told
from the steady one.

    python benchmarks/first_calls.py --repeats 5
"""

import argparse
import time
import warnings

import numpy as np
from _regimes import SMALL, dense_tasks
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sklearn_mtl import MultiTaskNetClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4)
    args = parser.parse_args()
    print(f"median ms of each successive predict_proba after a fit, {args.repeats} fits")
    for n, d, t in SMALL:
        X, Y = dense_tasks(n, d, t)
        makers = {
            "sklearn_mtl": lambda: MultiTaskNetClassifier(
                hidden_layer_sizes=(100,), max_iter=20, early_stopping=False,
                random_state=0,
            ),
            "MLPClassifier": lambda n=n: MLPClassifier(
                hidden_layer_sizes=(100,), max_iter=20, batch_size=min(200, n),
                random_state=0,
            ),
        }
        times = {name: [] for name in makers}
        for _ in range(args.repeats):
            for name, make in makers.items():
                est = make().fit(X, Y)
                calls = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    est.predict_proba(X)
                    calls.append(time.perf_counter() - start)
                times[name].append(calls)
        for name, rounds in times.items():
            medians = np.median(np.array(rounds), axis=0) * 1e3
            print(f"  {n} x {d}, {t} tasks  {name:<14}" + " ".join(f"{m:7.3f}" for m in medians))


if __name__ == "__main__":
    main()
