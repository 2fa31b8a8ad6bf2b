"""Per-task learning curves of a multi-task net, saved as a PNG
============================================================

Three tasks on scikit-learn's digits (the digit, its parity, whether it is
at least 5) share one trunk. With early stopping (the default on 200 rows or
more) the net holds out 10% of the rows, and ``net_.history`` records each task's training and
validation loss per epoch; :class:`~sklearn_mtl.MultiTaskLearningCurveDisplay`
draws them (solid: training, dashed: validation).

Run (a few seconds on 2 CPU cores; ``--quick`` trains 5 epochs on 300 rows)::

    python examples/plot_learning_curves.py [--quick] [--output PATH]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_mtl import MultiTaskLearningCurveDisplay, MultiTaskNetClassifier  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs on a few rows")
    parser.add_argument("--output", default="learning_curves.png", help="PNG to write")
    args = parser.parse_args()

    X, digit = load_digits(return_X_y=True)
    Y = np.column_stack([digit, digit % 2, digit >= 5]).astype(int)
    if args.quick:
        X, Y = X[:300], Y[:300]
    net = MultiTaskNetClassifier(
        hidden_layer_sizes=(64,),
        dropout=0.2,
        max_iter=5 if args.quick else 200,  # early stopping ends the full run
        learning_rate_init=3e-3,
        random_state=0,
        verbose=1,
    )
    model = make_pipeline(StandardScaler(), net).fit(X, Y)
    display = MultiTaskLearningCurveDisplay.from_estimator(model[-1])
    display.ax_.set_title("Digits: per-task loss (solid: train, dashed: validation)")
    display.figure_.savefig(args.output, dpi=100)
    print(f"Saved {args.output}")


if __name__ == "__main__":
    main()
