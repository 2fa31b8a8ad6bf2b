"""Bagged and stacked multi-task nets with auxiliary tasks, against single-task ones
=================================================================================

The task: tell whether a handwritten digit (scikit-learn's 8x8 digits) is a
prime number, from 300 labelled training images. The training images also
carry two auxiliary labels that are never predicted: the digit itself (known
for half of the images only; NaN elsewhere) and its parity. A multi-task net
learns them through extra heads on its shared trunk, which shapes the trunk
for the main task.

scikit-learn's ensembles accept a 1-D ``y`` only, so the auxiliary labels
travel as the ``aux_targets`` fit parameter. With metadata routing enabled and
``set_fit_request(aux_targets=True)`` on the net, BaggingClassifier hands each
member the auxiliary rows of its bootstrap sample, and StackingClassifier
those of each cross-validation fold. A stacking ensemble passes its raw fit
parameters to its final estimator as well, so the final estimator here is a
multi-task net without hidden layers (a logistic regression that accepts
``aux_targets``).

Each model is fitted on three random splits; the table shows the mean test
accuracy (and its spread) and the fit time of one split.

Run::

    python examples/plot_ensembles.py           # about 40 s on 2 CPU cores
    python examples/plot_ensembles.py --quick   # one split, tiny ensembles, 3 epochs
"""

import argparse
import time
import warnings

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    BaggingClassifier,
    HistGradientBoostingClassifier,
    StackingClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskNetClassifier

SEEDS = [0, 1, 2]
N_TRAIN = 300
# 300 training rows: a 10% validation set of 30 rows judges an epoch by
# steps of 1/30 accuracy, so these nets train a fixed budget on every row
# (MLP's stopping rule on the training loss) instead of stopping early.
NET = dict(
    hidden_layer_sizes=(64,), dropout=0.2, learning_rate_init=3e-3, max_iter=150,
    early_stopping=False, n_iter_no_change=10,
)
QUICK = {"n_estimators": 10}  # members of each bagging ensemble


def make_split(seed):
    X, digit = load_digits(return_X_y=True)
    y = np.isin(digit, [2, 3, 5, 7])
    aux = np.column_stack([digit, digit % 2]).astype(float)
    X_train, X_test, y_train, y_test, aux_train, _ = train_test_split(
        X, y, aux, train_size=N_TRAIN, random_state=seed, stratify=digit
    )
    rng = np.random.RandomState(seed)
    aux_train[rng.rand(N_TRAIN) < 0.5, 0] = np.nan  # the digit is known for half
    return X_train, X_test, y_train, y_test, aux_train


def net(seed, auxiliary):
    """A scaled net; one that asks its ensemble for ``aux_targets``, or not."""
    clf = MultiTaskNetClassifier(**NET, random_state=seed)
    if auxiliary:
        clf.set_fit_request(aux_targets=True)
    return make_pipeline(StandardScaler(), clf)


def models(seed):
    """name -> (estimator, whether it is fitted with aux_targets)."""
    boosting = HistGradientBoostingClassifier(random_state=seed)
    return {
        "logistic regression": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), False
        ),
        "gradient boosting": (boosting, False),
        "net": (net(seed, False), False),
        "net + aux tasks": (net(seed, True), True),
        "bagged nets": (
            BaggingClassifier(
                net(seed, False), n_estimators=QUICK["n_estimators"], random_state=seed
            ),
            False,
        ),
        "bagged nets + aux tasks": (
            BaggingClassifier(
                net(seed, True), n_estimators=QUICK["n_estimators"], random_state=seed
            ),
            True,
        ),
        "stacked net, boosting": (
            StackingClassifier(
                [("net", net(seed, False)), ("boosting", boosting)],
                final_estimator=LogisticRegression(),
            ),
            False,
        ),
        "stacked net + aux tasks, boosting": (
            StackingClassifier(
                [("net", net(seed, True)), ("boosting", boosting)],
                # It receives aux_targets too: a linear multi-task net takes them.
                final_estimator=MultiTaskNetClassifier(
                    hidden_layer_sizes=(), learning_rate_init=1e-2, early_stopping=False,
                    n_iter_no_change=10, random_state=seed,
                ),
            ),
            True,
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one split, 2 members, 3 epochs: checks it runs"
    )
    quick = parser.parse_args().quick
    if quick:
        SEEDS[1:] = []
        NET["max_iter"] = 3
        QUICK["n_estimators"] = 2
    # A fixed epoch budget: the training loss may still creep down (and each
    # fit would say so), but test accuracy no longer moves.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    sklearn.set_config(enable_metadata_routing=True)
    start = time.perf_counter()
    scores, seconds = {}, {}
    for seed in SEEDS:
        X_train, X_test, y_train, y_test, aux_train = make_split(seed)
        for name, (model, auxiliary) in models(seed).items():
            params = {"aux_targets": aux_train} if auxiliary else {}
            tic = time.perf_counter()
            model.fit(X_train, y_train, **params)
            seconds[name] = time.perf_counter() - tic
            scores.setdefault(name, []).append(model.score(X_test, y_test))

    print(
        f"Is the digit prime? Test accuracy over {len(SEEDS)} splits "
        f"({N_TRAIN} training images each):"
    )
    print(f"  {'model':<36}{'accuracy':>9}{'spread':>8}{'fit (s)':>9}")
    for name, values in scores.items():
        print(
            f"  {name:<36}{np.mean(values):>9.3f}{np.std(values):>8.3f}"
            f"{seconds[name]:>9.1f}"
        )
    print(f"Total time: {time.perf_counter() - start:.0f} s")
    if quick:
        print("--quick: 3 epochs, 2 members per ensemble, one split. This checks")
        print("that the script runs; it compares nothing (run it without --quick).")


if __name__ == "__main__":
    main()
