"""Profile one training epoch of sklearn_mtl and of the hand-written loop.

Prints, per training step, the wall time and the number of kernel launches
(CUDA) or operator calls (CPU) for both, and the top operators by CPU time,
so the per-step overhead of each can be compared with torch's profiler.

    python benchmarks/profile_step.py --device cuda --batch-size 4096
"""

import argparse
import time
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning
from torch.profiler import ProfilerActivity, profile

from bench_speed import LoopNet, make_data, multi_ce
from _common import FIXED_EPOCHS  # benchmarks/_common.py
from sklearn_mtl import MultiTaskNetClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def loop_epoch(Xt, Yt, model, optimizer, batch_size):
    order = torch.randperm(len(Xt), device=Xt.device)
    for i in range(0, len(Xt), batch_size):
        idx = order[i : i + batch_size]
        optimizer.zero_grad()
        multi_ce(model(Xt[idx]), Yt[idx]).backward()
        optimizer.step()


def report(name, prof, steps, seconds, device):
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel"))
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    print(f"{name}: {seconds / steps * 1e3:.2f} ms/step, "
          + (f"{launches / steps:.0f} kernel launches/step, " if device == "cuda" else "")
          + f"{ops / steps:.0f} aten calls/step")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=40_000)
    args = parser.parse_args()
    X, Y = make_data(args.n_samples, 100, 4)
    steps = -(-args.n_samples // args.batch_size)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    est = MultiTaskNetClassifier(**FIXED_EPOCHS, hidden_layer_sizes=(256, 256), dropout=0.2, alpha=0.0,
                                 batch_size=args.batch_size, max_iter=1, random_state=0,
                                 device=args.device)
    est.fit(X, Y)  # warm-up
    est.set_params(warm_start=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]
                 if args.device == "cuda" else [ProfilerActivity.CPU]) as prof:
        sync(); start = time.perf_counter(); est.fit(X, Y); sync()
        seconds = time.perf_counter() - start
    report("sklearn_mtl (one epoch, fit overhead included)", prof, steps, seconds, args.device)

    model = LoopNet(100, 4).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, Yt = torch.as_tensor(X, device=args.device), torch.as_tensor(Y, device=args.device)
    loop_epoch(Xt, Yt, model, optimizer, args.batch_size)  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]
                 if args.device == "cuda" else [ProfilerActivity.CPU]) as prof:
        sync(); start = time.perf_counter(); loop_epoch(Xt, Yt, model, optimizer, args.batch_size); sync()
        seconds = time.perf_counter() - start
    report("torch loop (one epoch)", prof, steps, seconds, args.device)


if __name__ == "__main__":
    main()
