"""Multi-task versus single-task networks on scikit-learn's digits
===============================================================

Three tasks share the 8x8 digit images: the digit itself (10 classes), its
parity and whether it is at least 5. Only 15% of the training rows carry the
digit label (the rest are NaN, i.e. unlabelled for that task), while parity
and size are labelled everywhere: the shared trunk lets the scarce task learn
from the plentiful ones. The dropout rate is chosen by 3-fold
cross-validation, then each task's test accuracy is printed next to
single-task baselines trained on the same labels.

Run::

    OMP_NUM_THREADS=1 python examples/demo.py
    # 23-38 s with one torch thread on a busy 2-core machine (load average
    # 8 to 12); 11-12 minutes there with torch's default two threads: see
    # README, "Threads"
    python examples/demo.py --quick   # 3 epochs per fit: checks it runs
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtl import MultiTaskNetClassifier

SEED = 0
TASKS = ["digit", "parity", "digit >= 5"]


def make_data():
    X, digit = load_digits(return_X_y=True)
    Y = np.column_stack([digit, digit % 2, digit >= 5]).astype(float)
    X_train, X_test, Y_train, Y_test = train_test_split(
        X, Y, test_size=0.3, random_state=SEED, stratify=digit
    )
    rng = np.random.RandomState(SEED)
    Y_train[rng.rand(len(Y_train)) > 0.15, 0] = np.nan  # digit labels are scarce
    return X_train, X_test, Y_train, Y_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs per fit")
    # At the defaults every net stops early (the digit's single-task net on
    # its 200 labelled rows, of which 20 are held out); --quick cuts each fit
    # to 3 epochs, which warns that it has not converged.
    epochs = 3 if parser.parse_args().quick else 200
    start = time.perf_counter()
    X_train, X_test, Y_train, Y_test = make_data()
    net = make_pipeline(
        StandardScaler(),
        MultiTaskNetClassifier(
            hidden_layer_sizes=(128,), max_iter=epochs, learning_rate_init=3e-3,
            random_state=SEED,
        ),
    )
    grid = {"multitasknetclassifier__dropout": [0.0, 0.2, 0.4]}
    # Missing labels make y "unknown" to check_cv, hence an explicit KFold.
    search = GridSearchCV(net, grid, cv=KFold(3, shuffle=True, random_state=SEED))
    search.fit(X_train, Y_train)
    print("Cross-validated dropout rate (mean accuracy over tasks):")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  dropout={params['multitasknetclassifier__dropout']:.1f}  {score:.3f}")
    multi = search.best_estimator_.predict(X_test)

    rows = []
    for t, task in enumerate(TASKS):
        labelled = ~np.isnan(Y_train[:, t])
        X_t, y_t = X_train[labelled], Y_train[labelled, t]
        single = make_pipeline(
            StandardScaler(),
            MultiTaskNetClassifier(
                hidden_layer_sizes=(128,), max_iter=epochs, learning_rate_init=3e-3,
                dropout=search.best_params_["multitasknetclassifier__dropout"],
                random_state=SEED,
            ),
        ).fit(X_t, y_t)
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_t, y_t)
        rows.append(
            (
                task,
                labelled.sum(),
                np.mean(multi[:, t] == Y_test[:, t]),
                single.score(X_test, Y_test[:, t]),
                logistic.score(X_test, Y_test[:, t]),
            )
        )

    print(f"\nTest accuracy per task (seed {SEED}, {len(X_test)} test rows):")
    print(f"  {'task':<11} {'labels':>6} {'multi-task':>10} {'single-task net':>15} {'logistic':>8}")
    for task, n, m, s, lr in rows:
        print(f"  {task:<11} {n:>6} {m:>10.3f} {s:>15.3f} {lr:>8.3f}")
    print(f"\nDone in {time.perf_counter() - start:.1f} s.")


if __name__ == "__main__":
    main()
