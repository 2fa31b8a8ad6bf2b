"""Which tasks help each other: lookahead task affinity and task groups
=====================================================================

Five regression tasks on 12 features, as a DataFrame with named columns:
``price`` and ``rent`` read features 0-5 (the same signal with their own
noise and scale), ``commute`` and ``traffic_noise`` read features 6-11 (two
functions of another signal), and ``lottery`` is pure noise. Nothing tells
the network which task is related to which.

:func:`~sklearn_mtl.inspection.task_affinity` trains one network on all five
tasks and measures, every few training steps, how much a step on each task's
loss lowers every task's loss (Fifty et al., NeurIPS 2021).
:class:`~sklearn_mtl.TaskAffinityDisplay` draws the matrix (rows: the task
stepped on; columns: the task whose loss is read) and
:func:`~sklearn_mtl.inspection.suggest_task_groups` splits the tasks into
groups; one network per group is then scored against the one network for
every task on held-out rows.

Run (under a minute on 2 CPU cores; ``--quick`` trains 5 epochs on 400 rows)::

    python examples/plot_task_affinity.py [--quick] [--output PATH]
"""

import argparse

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from sklearn_mtl import MultiTaskNetRegressor, TaskAffinityDisplay  # noqa: E402
from sklearn_mtl.inspection import suggest_task_groups, task_affinity  # noqa: E402


def make_tasks(n_rows, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, 12))
    homes = np.tanh(X[:, :6] @ rng.normal(size=6) / 2)
    roads = np.tanh(X[:, 6:] @ rng.normal(size=6) / 2)
    noise = rng.normal(size=(n_rows, 5))
    Y = pd.DataFrame({
        "price": homes + 0.2 * noise[:, 0],
        "rent": 0.5 * homes + 0.1 * noise[:, 1],
        "commute": roads + 0.2 * noise[:, 2],
        "traffic_noise": roads**2 - roads + 0.2 * noise[:, 3],
        "lottery": noise[:, 4],
    })
    return X, Y


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs on a few rows")
    parser.add_argument("--output", default="task_affinity.png", help="PNG to write")
    args = parser.parse_args()

    X, Y = make_tasks(400 if args.quick else 2000)
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, random_state=0)
    net = MultiTaskNetRegressor(
        hidden_layer_sizes=(64,),
        learning_rate_init=3e-3,
        batch_size=100,
        max_iter=5 if args.quick else 200,  # early stopping ends the full run
        random_state=0,
    )
    result = task_affinity(net, X_train, Y_train)
    print(f"Measured on {result.n_steps} training batches "
          f"(rows: step on task i; columns: loss of task j):")
    print(pd.DataFrame(result.affinity, index=result.task_names,
                       columns=result.task_names).round(4))

    groups = suggest_task_groups(result.affinity, 3)
    print("Suggested groups:", [[result.task_names[t] for t in g] for g in groups])

    # One net for every task (the one task_affinity trained) against one net
    # per suggested group, on held-out rows.
    one_net = r2_score(Y_test, result.estimator.predict(X_test), multioutput="raw_values")
    grouped = np.zeros(Y.shape[1])
    for group in groups:
        columns = Y_train.columns[group]
        y = Y_train[columns] if len(group) > 1 else Y_train[columns[0]]
        model = clone(net).fit(X_train, y)
        predicted = np.asarray(model.predict(X_test)).reshape(len(X_test), -1)
        grouped[group] = r2_score(Y_test[columns], predicted, multioutput="raw_values")
    print(pd.DataFrame({"one net": one_net, "net per group": grouped},
                       index=result.task_names).round(3))

    display = TaskAffinityDisplay.from_affinity(
        result.affinity, task_names=result.task_names, values_format=".1e",
        xticks_rotation=30, text_kw={"fontsize": 8},
    )
    display.ax_.set_title("Lookahead task affinity")
    display.figure_.set_size_inches(6.4, 4.8)
    display.figure_.tight_layout()
    display.figure_.savefig(args.output, dpi=80)
    print(f"Saved {args.output}")


if __name__ == "__main__":
    main()
