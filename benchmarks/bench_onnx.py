"""ONNX export: onnxruntime latency against predict / predict_proba.

For each model (a two-task classifier: a binary int task and a 3-class
string task, 20 float32 features), fitted for a few epochs on 2,000 rows:

* ``predict`` and ``predict_proba`` of the estimator (torch, one thread);
* ``onnxruntime``: one ``InferenceSession.run`` of ``sklearn_mtl.to_onnx``'s
  graph, which returns every task's labels and probabilities at once (one
  intra-op and one inter-op thread, sequential execution);

on one row and on 10,000 rows. Each call is timed on its own after a few
warm-up calls; reported: the median over ``--repeats`` calls and the
interquartile range (25th-75th percentile), in microseconds for one row and
milliseconds for 10,000 rows, and the largest difference between the
probabilities of the two paths.

    python benchmarks/bench_onnx.py
    python benchmarks/bench_onnx.py --quick
    python benchmarks/bench_onnx.py --json benchmarks/results_onnx_cpu.json
"""

import argparse
import platform
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskNetClassifier, to_onnx

from _common import FIXED_EPOCHS, write_json  # benchmarks/_common.py

MODELS = {
    "shared (100,)": lambda: MultiTaskNetClassifier((100,), **FIXED_EPOCHS),
    "shared (256, 256) bn": lambda: MultiTaskNetClassifier((256, 256), **FIXED_EPOCHS, batch_norm=True),
    "mmoe 4 x (64, 64)": lambda: MultiTaskNetClassifier(
        (64, 64), **FIXED_EPOCHS, architecture="mmoe", n_experts=4
    ),
    "scaler + shared (100,)": lambda: make_pipeline(
        StandardScaler(), MultiTaskNetClassifier((100,), **FIXED_EPOCHS)
    ),
}


def data(n_rows, n_features=20, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    y = np.empty((n_rows, 2), dtype=object)
    y[:, 0] = (X[:, 0] + X[:, 1] > 0).astype(int)
    y[:, 1] = np.where(X[:, 2] > 0.5, "high", np.where(X[:, 2] < -0.5, "low", "mid"))
    return X, y


def call_times(fn, repeats, warmup=5):
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times


def summary(times, unit):
    q25, median, q75 = np.percentile(times, [25, 50, 75]) * unit
    return dict(median=float(median), q25=float(q25), q75=float(q75))


def session_of(onx):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        onx.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run_model(name, args):
    X_train, y_train = data(2000)
    model = MODELS[name]()
    params = dict(max_iter=args.epochs, random_state=0)
    if hasattr(model, "steps"):
        params = {f"{model.steps[-1][0]}__{k}": v for k, v in params.items()}
    model.set_params(**params).fit(X_train, y_train)
    session = session_of(to_onnx(model, X_train[:1]))
    X_test, _ = data(max(args.rows), seed=1)
    results = []
    for n_rows in args.rows:
        X = X_test[:n_rows]
        repeats = args.repeats if n_rows == 1 else args.repeats_large
        unit, label = (1e6, "us") if n_rows == 1 else (1e3, "ms")
        feeds = {"X": X}
        outputs = session.run(None, feeds)
        diff = max(
            float(np.abs(outputs[2 * t + 1] - p).max())
            for t, p in enumerate(model.predict_proba(X))
        )
        same = all(
            np.array_equal(outputs[2 * t], column)
            for t, column in enumerate(model.predict(X).T)
        )
        row = dict(model=name, rows=n_rows, unit=label, max_proba_diff=diff,
                   same_labels=bool(same))
        row["predict"] = summary(call_times(lambda: model.predict(X), repeats), unit)
        row["predict_proba"] = summary(
            call_times(lambda: model.predict_proba(X), repeats), unit
        )
        row["onnxruntime"] = summary(
            call_times(lambda: session.run(None, feeds), repeats), unit
        )
        results.append(row)
        yield row


def cell(stats):
    return f"{stats['median']:.1f} [{stats['q25']:.1f}-{stats['q75']:.1f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 10000])
    parser.add_argument("--repeats", type=int, default=500, help="calls on 1 row")
    parser.add_argument(
        "--repeats-large", type=int, default=30, help="calls on more rows"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures there")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.repeats_large = 50, 5
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ConvergenceWarning)

    print(
        f"median [25th-75th percentile] per call; 1 torch thread, 1 onnxruntime "
        f"thread (onnxruntime {ort.__version__}, torch {torch.__version__}), "
        f"{platform.processor() or 'cpu'}"
    )
    header = (
        f"{'model':>24} {'rows':>6} {'unit':>4} {'predict':>22} "
        f"{'predict_proba':>22} {'onnxruntime':>22} {'speed-up':>8} {'max |dp|':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.models:
        for row in run_model(name, args):
            rows.append(row)
            speedup = row["predict_proba"]["median"] / row["onnxruntime"]["median"]
            print(
                f"{name:>24} {row['rows']:>6} {row['unit']:>4} "
                f"{cell(row['predict']):>22} {cell(row['predict_proba']):>22} "
                f"{cell(row['onnxruntime']):>22} {speedup:>7.1f}x "
                f"{row['max_proba_diff']:>9.1e}"
                + ("" if row["same_labels"] else "  labels differ!"),
                flush=True,
            )
    if args.json:
        write_json(args.json, args, onnxruntime=ort.__version__, rows=rows)


if __name__ == "__main__":
    main()
