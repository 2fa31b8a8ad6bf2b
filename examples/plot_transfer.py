"""Transfer: a trunk pretrained on a task with many labels, for a new task with few
===================================================================================

scikit-learn's 8x8 digits. The source task, the digit itself (10 classes),
has many labels: 1,000 training images. The new task, "is the digit a prime
number?", has only ``N_NEW`` labelled images (other images than the source's).
Five models for the new task, each scored on the 700 held-out images:

* ``logistic regression``: on the raw pixels;
* ``from scratch``: a ``MultiTaskNetClassifier`` trained on the few labels;
* ``pretrained, frozen``: the same network whose trunk is the source model's
  (``pretrained=source``), frozen (``trunk_learning_rate=0.0``): only its new
  head learns;
* ``pretrained, fine-tuned``: the same, the trunk trained at a tenth of the
  head's learning rate;
* ``features + logistic``: ``make_pipeline(FrozenEstimator(source),
  LogisticRegression())``, the source's trunk as a fixed feature extractor
  (its ``transform``).

The table shows the mean test accuracy (and its spread) over three random
splits.

Run (about a minute on 2 CPU cores; ``--quick``: one split, a few epochs)::

    python examples/plot_transfer.py [--quick]
"""

import argparse
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklearn_mtl import MultiTaskNetClassifier

N_SOURCE, N_NEW = 1000, 40
SEEDS = [0, 1, 2]


def make_split(seed):
    """Source rows with the digit; a few new-task rows; test rows, all disjoint."""
    X, digit = load_digits(return_X_y=True)
    X = X / 16.0
    order = np.random.RandomState(seed).permutation(len(X))
    source, new, test = np.split(order, [N_SOURCE, N_SOURCE + N_NEW])
    prime = np.isin(digit, [2, 3, 5, 7]).astype(int)
    return (X[source], digit[source]), (X[new], prime[new]), (X[test], prime[test])


def models(source, epochs):
    net = dict(max_iter=epochs, learning_rate_init=1e-2, random_state=0)
    return {
        "logistic regression": LogisticRegression(max_iter=1000),
        "from scratch": MultiTaskNetClassifier((64,), **net),
        "pretrained, frozen": MultiTaskNetClassifier(
            pretrained=source, trunk_learning_rate=0.0, **net
        ),
        "pretrained, fine-tuned": MultiTaskNetClassifier(
            pretrained=source, trunk_learning_rate=1e-3, **net
        ),
        "features + logistic": make_pipeline(
            FrozenEstimator(source), LogisticRegression(max_iter=1000)
        ),
    }


def main(quick):
    seeds = SEEDS[:1] if quick else SEEDS
    epochs = 5 if quick else 100
    scores = {}
    for seed in seeds:
        (X_src, y_src), (X_new, y_new), (X_test, y_test) = make_split(seed)
        source = MultiTaskNetClassifier(
            (64,), max_iter=epochs, learning_rate_init=1e-2, random_state=seed
        ).fit(X_src, y_src)
        for name, model in models(source, epochs).items():
            model.fit(X_new, y_new)
            scores.setdefault(name, []).append(model.score(X_test, y_test))
    print(f"New task 'is prime', {N_NEW} labels; source: the digit, {N_SOURCE} labels")
    print(f"{'model':<24} test accuracy ({len(seeds)} split(s))")
    for name, values in scores.items():
        print(f"{name:<24} {np.mean(values):.3f} ± {np.std(values):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one split, 5 epochs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    main(args.quick)
