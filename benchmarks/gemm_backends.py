"""torch's float32 matrix products against numpy's, at the shapes of a
small fit's training step and of a small table's prediction.

``MLPClassifier`` runs on numpy's BLAS (OpenBLAS in the numpy wheels);
``sklearn_mtl`` runs on torch's (MKL in the x86 CPU wheels). This times the
same products in both, each ``--repeats`` times, alternating, on
``--threads`` threads (torch's count and numpy's BLAS limit set alike), and
prints medians with their interquartile range, so that a comparison with
MLP can be read against the two libraries' kernels on the machine at hand.

    python benchmarks/gemm_backends.py --threads 1
    python benchmarks/gemm_backends.py --threads 2
"""

import argparse
import platform
import time

import numpy as np
import threadpoolctl
import torch

# (rows, inputs, outputs): a 200-row step of the small tables and of cars,
# and the 1,500-row prediction of the Yeast-shaped table.
SHAPES = [
    (200, 103, 100), (200, 100, 28), (200, 20, 100), (200, 10, 100),
    (64, 10, 100), (200, 100, 4), (1500, 103, 100),
]


def products(m, k, n, rng):
    """name -> (torch call, numpy call) for ``x @ w.T + b``, ``g.T @ x``
    and ``g @ w`` (forward, weight gradient, input gradient)."""
    x, g = rng.standard_normal((m, k), np.float32), rng.standard_normal((m, n), np.float32)
    w, b = rng.standard_normal((n, k), np.float32), rng.standard_normal(n, np.float32)
    tx, tg, tw, tb = (torch.from_numpy(a) for a in (x, g, w, b))
    return {
        "x @ w.T + b": (lambda: torch.addmm(tb, tx, tw.T), lambda: np.matmul(x, w.T) + b),
        "g.T @ x": (lambda: tg.T @ tx, lambda: g.T @ x),
        "g @ w": (lambda: tg @ tw, lambda: g @ w),
    }


def cpu_name():
    """The CPU's model name where the system says it (Linux), else the
    architecture."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(call, calls):
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200, help="calls per timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    blas = [f"{i['internal_api']} {i.get('architecture', '')}".strip()
            for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    print(f"{cpu_name()}, torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}), numpy {np.__version__} "
          f"({', '.join(blas)}), {args.threads} thread(s)")
    print(f"median µs of a call [IQR] over {args.repeats} alternating timings "
          f"of {args.calls} calls")
    rng = np.random.default_rng(0)
    print(f"  {'rows x in -> out':<18}{'product':<13}{'torch':>22}{'numpy':>22}{'torch / numpy':>15}")
    for m, k, n in SHAPES:
        for name, pair in products(m, k, n, rng).items():
            for call in pair:  # warm-up
                timed(call, 10)
            times = np.array([[timed(call, args.calls) for call in pair]
                              for _ in range(args.repeats)]) * 1e6
            cells = []
            for column in times.T:
                q1, q2, q3 = np.percentile(column, [25, 50, 75])
                cells.append(f"{q2:8.1f} [{q1:.1f}-{q3:.1f}]")
            ratio = np.median(times[:, 0] / times[:, 1])
            print(f"  {f'{m} x {k} -> {n}':<18}{name:<13}{cells[0]:>22}{cells[1]:>22}{ratio:>14.2f}x")


if __name__ == "__main__":
    main()
