"""Monte-Carlo dropout: T batched passes against T separate stochastic predicts.

For each input size (rows x features) and trunk, one fitted classifier
(``dropout=0.2``, 3 classes) predicts with:

* ``batched``: ``predict_proba`` with ``mc_samples=T``: the trunk before the
  first dropout layer runs once, the rest on the rows repeated ``T`` times;
* ``separate``: ``T`` calls of ``predict_proba`` with ``mc_samples=1`` (one
  stochastic pass each, the loop a user would write without the option);
* ``deterministic``: ``T`` plain ``predict_proba`` calls (no masks), the cost
  of ``T`` forward passes for reference.

Reported: the median over ``--repeats`` of each time, and ``speed-up =
separate / batched``. The batched passes save the work before the first
dropout layer (the input layer, the widest matrix product when features
outnumber units) and the per-call overhead; what follows the first dropout
layer has to run ``T`` times in either case.

    python benchmarks/bench_mc.py                 # the full table
    python benchmarks/bench_mc.py --quick         # a smaller run
    python benchmarks/bench_mc.py --json results.json
"""

import argparse
import platform
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_mtl import MultiTaskNetClassifier

from _common import FIXED_EPOCHS, write_json  # benchmarks/_common.py


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_one(n_rows, n_features, trunk, args):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(max(n_rows, 500), n_features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    net = MultiTaskNetClassifier(
        trunk, dropout=0.2, max_iter=2, random_state=0, **FIXED_EPOCHS
    ).fit(X[:500], y[:500])
    X = X[:n_rows]
    batched = net.set_params(mc_samples=args.samples)
    t_batched = median_time(lambda: batched.predict_proba(X), args.repeats)

    def separate():
        for seed in range(args.samples):
            net.set_params(mc_samples=1, random_state=seed).predict_proba(X)

    t_separate = median_time(separate, args.repeats)
    net.set_params(mc_samples=0)

    def deterministic():
        for _ in range(args.samples):
            net.predict_proba(X)

    t_plain = median_time(deterministic, args.repeats)
    return dict(
        rows=n_rows,
        features=n_features,
        trunk=list(trunk),
        batched_s=t_batched,
        separate_s=t_separate,
        deterministic_s=t_plain,
        speedup=t_separate / t_batched,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="T, the passes")
    parser.add_argument("--rows", type=int, nargs="+", default=[100, 2000, 20000])
    parser.add_argument("--features", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (1 gives steady timings on a shared machine)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    trunks = [(100,), (256, 256)]
    if args.quick:
        args.rows, args.features, args.repeats = [100, 2000], [20, 200], 3
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)

    print(
        f"T = {args.samples} passes, dropout 0.2, median of {args.repeats}, "
        f"{torch.get_num_threads()} torch thread(s), {platform.processor() or 'cpu'}"
    )
    header = (
        f"{'rows':>6} {'features':>8} {'trunk':>10} {'batched (s)':>12} "
        f"{'separate (s)':>13} {'T plain (s)':>12} {'speed-up':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for trunk in trunks:
        for n_features in args.features:
            for n_rows in args.rows:
                row = run_one(n_rows, n_features, trunk, args)
                rows.append(row)
                print(
                    f"{n_rows:>6} {n_features:>8} {str(trunk):>10} "
                    f"{row['batched_s']:>12.4f} {row['separate_s']:>13.4f} "
                    f"{row['deterministic_s']:>12.4f} {row['speedup']:>8.1f}x",
                    flush=True,
                )
    if args.json:
        write_json(
            args.json,
            args,
            rows=rows,
        )


if __name__ == "__main__":
    main()
