"""Wall time of one training step on a small table, and what adds to it.

Builds ``MultiTaskNetClassifier()`` (trunk (100,), Adam) on the first small
table of ``bench_speed.py --regime small`` (1,500 x 103, 14 binary tasks)
and times, on one batch of 200 rows and one thread:

* the parts of its step through autograd: the forward pass, with the loss,
  with the backward pass, and the whole ``train_step`` (zeroing, penalty,
  optimizer step); and the ``train_step`` a fit takes, with the gradients
  in closed form (``sklearn_mtl/_closed_form.py``);
* hand-written steps of the same network, from the leanest (one logit per
  label, the mean logistic loss, fused Adam: what a torch step costs with
  nothing else) adding one by one what the estimator's step does: each
  task's mean over its labelled entries (missing labels, sample and class
  weights), two logits per binary task (their margin in the loss), and the
  L2 penalty (its value and its gradient).

Every variant runs ``--steps`` times in rounds of 25, the variants
alternating; printed are the minimum and the median over the rounds.

    python benchmarks/step_costs.py
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from _regimes import dense_tasks
from _common import FIXED_EPOCHS  # benchmarks/_common.py
from sklearn_mtl import MultiTaskNetClassifier
from sklearn_mtl._closed_form import ClosedFormStep
from sklearn_mtl._data import make_dataset

warnings.filterwarnings("ignore", category=ConvergenceWarning)

ROUND = 25


def hand_written(Xb, targets, weights, outputs, weighted, penalty):
    """A step of Linear(103, 100) -> ReLU -> Linear(100, outputs): logits of
    one (``outputs == n_tasks``) or two (their margin) per label; the plain
    mean loss or each task's mean over its weights; an L2 penalty or none."""
    n_tasks = targets.shape[1]
    net = nn.Sequential(nn.Linear(Xb.shape[1], 100), nn.ReLU(), nn.Linear(100, outputs))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    margin = torch.tensor([-1.0, 1.0])
    task_weights = torch.ones(n_tasks)
    matrices = [net[0].weight, net[2].weight]

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = net(Xb)
        if outputs == 2 * n_tasks:
            logits = logits.reshape(-1, n_tasks, 2) @ margin
        if weighted:
            losses = nn.functional.binary_cross_entropy_with_logits(
                logits, targets, reduction="none"
            )
            total = weights.sum(dim=0)
            loss = ((losses * weights).sum(dim=0) / total.clamp_min(1e-12)) @ task_weights
        else:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        if penalty:
            with torch.no_grad():
                value = torch.stack(torch._foreach_norm(matrices)).square().sum()
            loss = loss + 0.5e-4 * value
        loss.backward()
        if penalty:
            torch._foreach_add_([w.grad for w in matrices], matrices, alpha=1e-4)
        optimizer.step()

    return step


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
    closed_form = ClosedFormStep.build(net)

    def train_step(step):
        net.closed_form_ = step  # as a fit sets it
        return net.train_step(batch)

    parts = {
        "forward": lambda: module(Xb),
        "forward + loss": lambda: criterion(module(Xb), targets, weights),
        "forward + loss + backward": lambda: criterion(
            module(Xb), targets, weights
        ).backward(),
        "train_step, autograd": lambda: train_step(None),
        "train_step, closed form": lambda: train_step(closed_form),
        "lean: 14 logits, mean loss": hand_written(Xb, targets, weights, 14, False, False),
        "+ per-task weighted means": hand_written(Xb, targets, weights, 14, True, False),
        "28 logits (margins), mean loss": hand_written(
            Xb, targets, weights, 28, False, False
        ),
        "28 logits + weighted means": hand_written(Xb, targets, weights, 28, True, False),
        "+ L2 penalty": hand_written(Xb, targets, weights, 28, True, True),
    }
    times = {name: [] for name in parts}
    for fn in parts.values():
        for _ in range(50):
            fn()
    for _ in range(max(1, args.steps // ROUND)):
        for name, fn in parts.items():
            start = time.perf_counter()
            for _ in range(ROUND):
                fn()
            times[name].append((time.perf_counter() - start) / ROUND)
    for name, values in times.items():
        print(f"{name:<32} min {min(values) * 1e6:7.1f} µs   "
              f"median {np.median(values) * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
