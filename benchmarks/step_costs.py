"""CPU time of the parts of one training step on a small table.

Builds ``MultiTaskNetClassifier()`` (trunk (100,), Adam) on the first small
table of ``bench_speed.py --regime small`` (1,500 x 103, 14 binary tasks),
then times, on one batch of 200 rows and one thread, the forward pass, the
forward pass with the loss, the same with the backward pass, and skorch's
whole ``train_step`` (zeroing, penalty, optimizer step): the mean CPU time
over ``--steps`` calls after a warm-up.

    python benchmarks/step_costs.py
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from _regimes import dense_tasks
from _common import FIXED_EPOCHS  # benchmarks/_common.py
from sklearn_mtl import MultiTaskNetClassifier
from sklearn_mtl._data import make_dataset

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def cpu_time(fn, steps):
    for _ in range(50):
        fn()
    start = time.process_time()
    for _ in range(steps):
        fn()
    return (time.process_time() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, Y = dense_tasks(1500, 103, 14)
    est = MultiTaskNetClassifier(**FIXED_EPOCHS, max_iter=1, random_state=0).fit(X, Y)
    net = est.net_
    net._set_training(True)
    batch = make_dataset(
        X[:200], Y[:200].astype(np.float32), np.ones((200, 14), np.float32)
    ).batch(slice(0, 200))
    Xb, (targets, weights) = batch
    module, criterion = net.module_, net.criterion_
    parts = {
        "forward": lambda: module(Xb),
        "forward + loss": lambda: criterion(module(Xb), targets, weights),
        "forward + loss + backward": lambda: criterion(
            module(Xb), targets, weights
        ).backward(),
        "train_step": lambda: net.train_step(batch),
    }
    for name, fn in parts.items():
        print(f"{name:<28} {cpu_time(fn, args.steps) * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
