"""The first calls of ``predict_proba`` after a fit, ours against MLP's.

``bench_speed.py --regime small`` times the first ``predict_proba`` after
each fit; this script times four successive calls after each of
``--repeats`` fits (20 epochs, the small tables, the variants alternating;
with ``--tasks``, 2 epochs of ``--regime tasks``'s 512 tasks on 20,000 rows)
and prints each call's median, so the first call's extra cost can be told
from the steady one.

    python benchmarks/first_calls.py --repeats 5
    python benchmarks/first_calls.py --tasks --repeats 3
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
    parser.add_argument("--tasks", action="store_true")
    args = parser.parse_args()
    print(f"median ms of each successive predict_proba after a fit, {args.repeats} fits")
    tables = [(20_000, 100, 512)] if args.tasks else SMALL
    hidden, epochs = ((256, 256), 2) if args.tasks else ((100,), 20)
    for n, d, t in tables:
        X, Y = dense_tasks(n, d, t)
        batch = 256 if args.tasks else min(200, n)
        makers = {
            "sklearn_mtl": lambda: MultiTaskNetClassifier(
                hidden_layer_sizes=hidden, max_iter=epochs, early_stopping=False,
                batch_size=batch, random_state=0,
            ),
            "MLPClassifier": lambda: MLPClassifier(
                hidden_layer_sizes=hidden, max_iter=epochs, batch_size=batch,
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
