"""Training and prediction throughput of sklearn_mtl against its references.

Variants, on the same data and network (trunk n_features-256-256, ReLU, one
output head per task, Adam, fixed batch size):

* ``sklearn_mtl``: ``MultiTaskNetClassifier.fit`` / ``predict_proba``.
* ``torch loop``: a hand-written PyTorch loop (``randperm`` + tensor slicing,
  ``nn.Dropout``, one ``Linear`` per head, plain Adam), timed like the
  estimators: training from numpy arrays (network built, data moved to the
  device) and prediction from numpy ``X`` to numpy probabilities, in chunks
  of 4096 rows.
* ``skorch``: skorch's ``NeuralNet`` with its default ``DataLoader``.
* ``MLPClassifier``: scikit-learn's MLP, single task, no dropout (it has none),
  compared with ``sklearn_mtl`` on the same single task without dropout.

Variants alternate within each repetition; each figure is the median over
``--repeats`` repetitions (min-max in brackets). Rows/s count training rows
times epochs; prediction rows/s one pass over all rows.

    python benchmarks/bench_speed.py                 # CPU, the full table
    python benchmarks/bench_speed.py --quick         # a smaller run
    python benchmarks/bench_speed.py --device cuda --batch-size 4096
    python benchmarks/bench_speed.py --regime small  # or sparse, tasks, busy

``--regime`` times one of the regimes where most users fit (small tables,
sparse input, many tasks, a busy machine) against ``MLPClassifier`` and the
loop instead; see ``_regimes.py``.
"""

import argparse
import json
import platform
import time
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from torch import nn

from _regimes import REGIMES
from _common import FIXED_EPOCHS  # benchmarks/_common.py
from sklearn_mtl import MultiTaskNetClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def make_data(n_samples, n_features, n_tasks, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    W = rng.normal(size=(n_features, n_tasks))
    Y = (X @ W + rng.normal(scale=2.0, size=(n_samples, n_tasks)) > 0).astype(np.int64)
    return X, Y


class LoopNet(nn.Module):
    """The hand-written reference: trunk + one ``Linear`` per head."""

    def __init__(self, n_features, n_tasks, width=256, dropout=0.2):
        super().__init__()
        layers = []
        for n_in in (n_features, width):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList([nn.Linear(width, 2) for _ in range(n_tasks)])

    def forward(self, X):
        h = self.trunk(X)
        return torch.stack([head(h) for head in self.heads], dim=1)  # (n, T, 2)


def multi_ce(logits, Y):
    return nn.functional.cross_entropy(logits.reshape(-1, 2), Y.reshape(-1)) * Y.shape[1]


def torch_loop(X, Y, args):
    # Timed like the estimators: from numpy arrays to a trained model (network
    # built, data moved to the device), and from numpy X to numpy probabilities.
    device = args.device
    torch.manual_seed(0)
    start = _now(device)
    model = LoopNet(X.shape[1], Y.shape[1], dropout=args.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, Yt = torch.as_tensor(X, device=device), torch.as_tensor(Y, device=device)
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(Xt), device=device)
        for i in range(0, len(Xt), args.batch_size):
            idx = order[i : i + args.batch_size]
            optimizer.zero_grad()
            loss = multi_ce(model(Xt[idx]), Yt[idx])
            loss.backward()
            optimizer.step()
    fit_time = _now(device) - start
    start = _now(device)
    model.eval()
    Xt = torch.as_tensor(X, device=device)
    with torch.inference_mode():
        proba = [
            torch.softmax(model(Xt[i : i + 4096]), dim=2).cpu()
            for i in range(0, len(Xt), 4096)
        ]
        torch.cat(proba).numpy()
    return fit_time, _now(device) - start


def skorch_net(X, Y, args):
    torch.manual_seed(0)
    net = NeuralNet(
        LoopNet,
        module__n_features=X.shape[1],
        module__n_tasks=Y.shape[1],
        module__dropout=args.dropout,
        criterion=_MultiCE,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        train_split=None,
        device=args.device,
        iterator_valid__batch_size=4096,
        verbose=0,
    )
    start = _now(args.device)
    net.fit(X, Y)
    fit_time = _now(args.device) - start
    start = _now(args.device)
    torch.softmax(net.forward(X), dim=2).numpy()
    return fit_time, _now(args.device) - start


class _MultiCE(nn.Module):
    def forward(self, logits, Y):
        return multi_ce(logits, Y)


def sklearn_mtl(X, Y, args, dropout=None):
    est = MultiTaskNetClassifier(
        **FIXED_EPOCHS,
        hidden_layer_sizes=(256, 256),
        dropout=args.dropout if dropout is None else dropout,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        alpha=0.0,
        random_state=0,
        device=args.device,
    )
    start = _now(args.device)
    est.fit(X, Y)
    fit_time = _now(args.device) - start
    start = _now(args.device)
    est.predict_proba(X)
    return fit_time, _now(args.device) - start


def mlp(X, y, args):
    est = MLPClassifier(
        hidden_layer_sizes=(256, 256), batch_size=args.batch_size, max_iter=args.epochs,
        alpha=0.0, random_state=0, n_iter_no_change=args.epochs + 1,
    )
    start = time.perf_counter()
    est.fit(X, y)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    est.predict_proba(X)
    return fit_time, time.perf_counter() - start


def grid_search(X, Y, n_jobs, args):
    est = MultiTaskNetClassifier(
        **FIXED_EPOCHS,
        hidden_layer_sizes=(256, 256), batch_size=args.batch_size,
        max_iter=args.grid_epochs, random_state=0,
    )
    start = time.perf_counter()
    GridSearchCV(est, {"dropout": [0.0, 0.2, 0.5]}, cv=3, n_jobs=n_jobs).fit(X, Y)
    return time.perf_counter() - start


def grid_searches(X, Y, args):
    """n_jobs=1, then n_jobs=2 twice: cold (workers start and import torch)
    and warm (joblib reuses its workers)."""
    runs = [("n_jobs=1", 1), ("n_jobs=2 cold", 2), ("n_jobs=2 warm", 2)]
    return {name: grid_search(X, Y, n_jobs, args) for name, n_jobs in runs}


def _now(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def summarise(times, rows):
    rates = rows / np.asarray(times)
    return {"median": float(np.median(rates)), "min": float(rates.min()), "max": float(rates.max())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--n-tasks", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grid-epochs", type=int, default=5, help="epochs per fit in the search")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--small-batch", type=int, default=64, help="second batch size compared with the loop")
    parser.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    parser.add_argument("--quick", action="store_true", help="10k rows, 2 repeats")
    parser.add_argument("--json", help="save the results to this path")
    parser.add_argument("--regime", choices=sorted(REGIMES), help="time a regime instead")
    parser.add_argument("--sparse-epochs", type=int, default=2)
    parser.add_argument("--tasks-epochs", type=int, default=2)
    args = parser.parse_args()
    if args.regime:
        print(f"regime {args.regime}, {args.repeats} repeats, torch threads "
              f"{torch.get_num_threads()}")
        results = REGIMES[args.regime](args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"config": vars(args), "results": results}, f, indent=2)
        return
    if args.quick:
        args.n_samples, args.repeats = 10_000, 2

    X, Y = make_data(args.n_samples, args.n_features, args.n_tasks)
    n_train = args.n_samples * args.epochs
    variants = {
        "sklearn_mtl": lambda: sklearn_mtl(X, Y, args),
        "torch loop": lambda: torch_loop(X, Y, args),
        "skorch": lambda: skorch_net(X, Y, args),
        "sklearn_mtl 1 task, dropout 0": lambda: sklearn_mtl(X, Y[:, 0], args, dropout=0.0),
        "MLPClassifier 1 task": lambda: mlp(X, Y[:, 0], args),
    }
    if args.device != "cpu":
        args.skip = list(args.skip) + ["MLPClassifier 1 task"]
    small = argparse.Namespace(**{**vars(args), "batch_size": args.small_batch})
    if args.small_batch:
        variants[f"sklearn_mtl batch {args.small_batch}"] = lambda: sklearn_mtl(X, Y, small)
        variants[f"torch loop batch {args.small_batch}"] = lambda: torch_loop(X, Y, small)
    variants = {k: v for k, v in variants.items() if k not in args.skip}

    for fn in variants.values():  # warm-up: imports, allocator, thread pools
        fn()
    fit_times = {name: [] for name in variants}
    predict_times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            fit_time, predict_time = fn()
            fit_times[name].append(fit_time)
            predict_times[name].append(predict_time)

    results = {
        "config": {**vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "machine": platform.processor() or platform.machine()},
        "fit_rows_per_s": {k: summarise(v, n_train) for k, v in fit_times.items()},
        "predict_rows_per_s": {k: summarise(v, args.n_samples) for k, v in predict_times.items()},
    }
    if args.device == "cpu" and "grid" not in args.skip:
        results["grid_search_s"] = grid_searches(X, Y, args)

    loop = results["fit_rows_per_s"].get("torch loop", {}).get("median")
    loop_pred = results["predict_rows_per_s"].get("torch loop", {}).get("median")
    print(f"{args.n_samples} x {args.n_features} float32, {args.n_tasks} tasks, trunk 256-256, "
          f"dropout {args.dropout}, batch {args.batch_size}, {args.epochs} epochs, "
          f"{args.repeats} repeats, device {args.device}, torch threads {torch.get_num_threads()}")
    print(f"{'variant':<32} {'fit rows/s':>22} {'vs loop':>8} {'predict rows/s':>24} {'vs loop':>8}")
    for name in variants:
        fit = results["fit_rows_per_s"][name]
        pred = results["predict_rows_per_s"][name]
        ref = results["fit_rows_per_s"].get(f"torch loop batch {args.small_batch}", {}).get(
            "median") if "batch" in name else loop
        print(f"{name:<32} {fit['median']:>10,.0f} [{fit['min']:,.0f}-{fit['max']:,.0f}]"
              f" {fit['median'] / ref if ref else float('nan'):>7.2f}x"
              f" {pred['median']:>12,.0f} [{pred['min']:,.0f}-{pred['max']:,.0f}]"
              f" {pred['median'] / loop_pred if loop_pred else float('nan'):>7.2f}x")
    if "grid_search_s" in results:
        g = results["grid_search_s"]
        print(f"GridSearchCV over 3 dropout rates, cv=3, {args.grid_epochs} epochs: "
              + ", ".join(f"{k}: {v:.1f} s" for k, v in g.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
