"""Per-task learning curves drawn from a fitted estimator's history."""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted


def _check_matplotlib():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "MultiTaskLearningCurveDisplay needs matplotlib, which is not installed; "
            "install it with `pip install matplotlib`."
        ) from error
    return plt


class MultiTaskLearningCurveDisplay:
    """Each task's training (and validation) loss per epoch.

    Build it with :meth:`from_estimator`, which reads ``net_.history`` of a
    fitted estimator; the losses are those of each task on its labelled
    entries, without the penalty (``train_loss_task{t}`` and, with
    ``early_stopping=True``, ``valid_loss_task{t}``).

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers, from 1.
    train_losses : list of ndarray of shape (n_epochs,)
        Training loss of each task.
    valid_losses : list of ndarray of shape (n_epochs,) or None
        Validation loss of each task, or None without a validation set.
    task_names : list of str
        Legend label of each task.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One line per task and split: the training curves, then the
        validation curves.
    ax_ : matplotlib Axes
        Axes with the curves.
    figure_ : matplotlib Figure
        Figure holding the axes.
    """

    def __init__(self, *, epochs, train_losses, valid_losses=None, task_names=None):
        self.epochs = epochs
        self.train_losses = train_losses
        self.valid_losses = valid_losses
        self.task_names = task_names

    def plot(self, ax=None, *, log_scale=False):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        log_scale : bool, default=False
            Whether the loss axis is logarithmic.

        Returns
        -------
        self : MultiTaskLearningCurveDisplay
        """
        plt = _check_matplotlib()
        if ax is None:
            _, ax = plt.subplots()
        names = self.task_names or [f"task {t}" for t in range(len(self.train_losses))]
        self.lines_ = []
        for t, (name, losses) in enumerate(zip(names, self.train_losses)):
            (line,) = ax.plot(self.epochs, losses, color=f"C{t}", label=f"{name} (train)")
            self.lines_.append(line)
        for t, (name, losses) in enumerate(zip(names, self.valid_losses or [])):
            (line,) = ax.plot(
                self.epochs, losses, color=f"C{t}", linestyle="--",
                label=f"{name} (validation)",
            )
            self.lines_.append(line)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Loss")
        if log_scale:
            ax.set_yscale("log")
        ax.legend()
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, log_scale=False):
        """Plot the per-task learning curves of a fitted estimator.

        Parameters
        ----------
        estimator : MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet \
                or Pipeline
            A fitted estimator, or a fitted pipeline ending in one. The
            curves are named after the columns of ``y`` (and of
            ``aux_targets``) when they were DataFrames.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        log_scale : bool, default=False
            Whether the loss axis is logarithmic.

        Returns
        -------
        display : MultiTaskLearningCurveDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_classification
        >>> from sklearn_mtl import MultiTaskLearningCurveDisplay, MultiTaskNetClassifier
        >>> X, y = make_classification(n_samples=100, random_state=0)
        >>> clf = MultiTaskNetClassifier(max_iter=5, random_state=0).fit(X, y)
        >>> display = MultiTaskLearningCurveDisplay.from_estimator(clf)
        >>> len(display.lines_)
        1
        """
        _check_matplotlib()
        if isinstance(estimator, Pipeline):  # the curves are its last step's
            estimator = estimator[-1]
        check_is_fitted(estimator, "net_")
        history = estimator.net_.history
        n_tasks = len(estimator.tasks_)
        n_main = n_tasks - estimator.n_aux_tasks_
        y_names, aux_names = getattr(estimator, "_target_names", (None, None))
        names = [
            f"y[{t}]" if y_names is None else str(y_names[t]) for t in range(n_main)
        ] + [
            f"aux_targets[{j}]" if aux_names is None else str(aux_names[j])
            for j in range(n_tasks - n_main)
        ]
        if y_names is None and (n_tasks == 1 or (n_main == 1 and estimator._y_1d)):
            names[0] = "y"

        def curves(prefix):
            keys = [f"{prefix}_loss_task{t}" for t in range(n_tasks)]
            if not all(key in history[-1] for key in keys):
                return None
            return [np.asarray(history[:, key], dtype=float) for key in keys]

        train = curves("train")
        if train is None:
            raise ValueError(
                "The estimator's net_.history has no per-task training losses "
                "(train_loss_task0, ...); refit it with this version of sklearn_mtl."
            )
        valid = curves("valid")
        if valid is not None:  # held-out rows carry no auxiliary labels
            valid = valid[:n_main]
        display = cls(
            epochs=np.asarray(history[:, "epoch"]),
            train_losses=train,
            valid_losses=valid,
            task_names=names,
        )
        return display.plot(ax=ax, log_scale=log_scale)
