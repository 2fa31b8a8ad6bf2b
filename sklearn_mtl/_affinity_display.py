"""Heatmap of the inter-task affinities (which task's step helps which task)."""

from itertools import product

import numpy as np


def _check_matplotlib(name):
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{name} needs matplotlib, which is not installed; install it with "
            f"`pip install matplotlib`."
        ) from error
    return plt


class TaskAffinityDisplay:
    """Heatmap of the lookahead inter-task affinities.

    Row ``i``, column ``j`` is ``affinity[i, j]``: how much a training step
    on task ``i``'s loss lowers task ``j``'s loss (Fifty et al., NeurIPS
    2021; see :func:`sklearn_mtl.inspection.task_affinity`). Blue cells
    help, red cells hurt. The colour scale is symmetric about zero and set
    by the off-diagonal entries, so a task's effect on itself (the diagonal,
    usually much larger) saturates the colour but keeps its number.

    Build it with :meth:`from_estimator` (which measures the affinities
    while training a copy of the estimator) or :meth:`from_affinity` (from
    a matrix already measured); both call :meth:`plot`.

    Parameters
    ----------
    affinity : ndarray of shape (n_tasks, n_tasks)
        The affinities; NaN cells are left blank.
    task_names : list of str, default=None
        Names of the tasks, for both axes; ``0, 1, ...`` when None.

    Attributes
    ----------
    im_ : matplotlib AxesImage
        The heatmap.
    text_ : ndarray of shape (n_tasks, n_tasks), dtype=object, or None
        The matplotlib Text of each cell, or None when ``include_values``
        is False.
    ax_ : matplotlib Axes
        Axes with the heatmap.
    figure_ : matplotlib Figure
        Figure holding the axes.

    See Also
    --------
    sklearn_mtl.inspection.task_affinity : Measure the affinities.
    sklearn_mtl.inspection.suggest_task_groups : Groups of tasks that help
        each other most.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_mtl import TaskAffinityDisplay
    >>> affinity = np.array([[0.3, 0.1, -0.05], [0.2, 0.4, 0.0], [-0.1, 0.0, 0.5]])
    >>> display = TaskAffinityDisplay.from_affinity(
    ...     affinity, task_names=["price", "rent", "noise"]
    ... )
    >>> display.text_.shape
    (3, 3)
    """

    def __init__(self, affinity, *, task_names=None):
        self.affinity = affinity
        self.task_names = task_names

    def plot(
        self,
        *,
        include_values=True,
        cmap="RdBu",
        xticks_rotation="horizontal",
        values_format=None,
        ax=None,
        colorbar=True,
        im_kw=None,
        text_kw=None,
    ):
        """Draw the heatmap.

        Parameters
        ----------
        include_values : bool, default=True
            Whether every cell shows its value.
        cmap : str or matplotlib Colormap, default="RdBu"
            A diverging colormap: its middle is zero.
        xticks_rotation : {"vertical", "horizontal"} or float, \
                default="horizontal"
            Rotation of the column labels.
        values_format : str, default=None
            Format of the values, e.g. ``".3f"``; ``".2g"`` when None.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        colorbar : bool, default=True
            Whether to add a colour bar.
        im_kw : dict, default=None
            Keywords for ``imshow`` (``vmin``, ``vmax`` override the
            symmetric scale).
        text_kw : dict, default=None
            Keywords for each cell's ``text``.

        Returns
        -------
        display : TaskAffinityDisplay
        """
        plt = _check_matplotlib("TaskAffinityDisplay")
        affinity = np.asarray(self.affinity, dtype=float)
        if affinity.ndim != 2 or affinity.shape[0] != affinity.shape[1]:
            raise ValueError(
                f"affinity must be a square (n_tasks, n_tasks) matrix; got an array "
                f"of shape {affinity.shape}."
            )
        n_tasks = affinity.shape[0]
        names = list(range(n_tasks)) if self.task_names is None else list(self.task_names)
        if len(names) != n_tasks:
            raise ValueError(
                f"task_names must have one name per task ({n_tasks}); got "
                f"{len(names)} names."
            )
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure

        off_diagonal = affinity[~np.eye(n_tasks, dtype=bool)]
        off_diagonal = np.abs(off_diagonal[np.isfinite(off_diagonal)])
        limit = off_diagonal.max() if off_diagonal.size else 0.0
        if limit == 0:
            finite = np.abs(affinity[np.isfinite(affinity)])
            limit = finite.max() if finite.size and finite.max() > 0 else 1.0
        im_kw = {"interpolation": "nearest", "cmap": cmap, "vmin": -limit,
                 "vmax": limit, **(im_kw or {})}
        self.im_ = ax.imshow(affinity, **im_kw)
        self.text_ = None
        if include_values:
            self.text_ = np.empty((n_tasks, n_tasks), dtype=object)
            for i, j in product(range(n_tasks), range(n_tasks)):
                value = affinity[i, j]
                text = "" if np.isnan(value) else format(value, values_format or ".2g")
                # Black on the pale middle of a diverging colormap, white on its ends.
                position = float(np.clip(self.im_.norm(value), 0, 1)) if np.isfinite(
                    value) else 0.5
                color = "black" if abs(position - 0.5) < 0.3 else "white"
                kwargs = {"ha": "center", "va": "center", "color": color,
                          **(text_kw or {})}
                self.text_[i, j] = ax.text(j, i, text, **kwargs)
        if colorbar:
            fig.colorbar(self.im_, ax=ax, label="Relative decrease of the loss")
        ax.set(
            xticks=np.arange(n_tasks),
            yticks=np.arange(n_tasks),
            xticklabels=names,
            yticklabels=names,
            xlabel="Loss of task j",
            ylabel="Step on task i",
        )
        ax.set_ylim((n_tasks - 0.5, -0.5))
        plt.setp(ax.get_xticklabels(), rotation=xticks_rotation)
        self.figure_ = fig
        self.ax_ = ax
        return self

    @classmethod
    def from_affinity(
        cls,
        affinity,
        *,
        task_names=None,
        include_values=True,
        cmap="RdBu",
        xticks_rotation="horizontal",
        values_format=None,
        ax=None,
        colorbar=True,
        im_kw=None,
        text_kw=None,
    ):
        """Plot an affinity matrix already measured.

        Parameters
        ----------
        affinity : array-like of shape (n_tasks, n_tasks)
            ``affinity[i, j]``: how much a step on task ``i`` lowers task
            ``j``'s loss, e.g. ``task_affinity(...).affinity``.
        task_names : list of str, default=None
            Names of the tasks; ``0, 1, ...`` when None.
        include_values, cmap, xticks_rotation, values_format, ax, colorbar, \
im_kw, text_kw
            As for :meth:`plot`.

        Returns
        -------
        display : TaskAffinityDisplay
        """
        _check_matplotlib("TaskAffinityDisplay")
        display = cls(np.asarray(affinity, dtype=float), task_names=task_names)
        return display.plot(
            include_values=include_values, cmap=cmap, xticks_rotation=xticks_rotation,
            values_format=values_format, ax=ax, colorbar=colorbar, im_kw=im_kw,
            text_kw=text_kw,
        )

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        aux_targets=None,
        sample_weight=None,
        every="auto",
        learning_rate=None,
        task_names=None,
        include_values=True,
        cmap="RdBu",
        xticks_rotation="horizontal",
        values_format=None,
        ax=None,
        colorbar=True,
        im_kw=None,
        text_kw=None,
    ):
        """Measure the affinities while training a copy of ``estimator``, and
        plot them.

        The measurement is :func:`sklearn_mtl.inspection.task_affinity`:
        ``estimator`` is cloned and never modified. To keep the fitted copy
        (or to suggest groups from the same numbers), call ``task_affinity``
        and then :meth:`from_affinity`.

        Parameters
        ----------
        estimator : MultiTaskNetClassifier, MultiTaskNetRegressor or MultiTaskNet
            The model to measure, or a Pipeline ending in one.
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs.
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
            Targets of the tasks (missing labels as NaN).
        aux_targets : array-like or DataFrame, default=None
            Auxiliary tasks, after those of ``y``.
        sample_weight : array-like, default=None
            Sample weights, as for the estimator's ``fit``.
        every : int or "auto", default="auto"
            Measure on every ``every``-th training batch; see
            :func:`~sklearn_mtl.inspection.task_affinity`.
        learning_rate : float, default=None
            Step size of the lookahead; None takes ``learning_rate_init``.
        task_names : list of str, default=None
            Names of the tasks; None takes the DataFrame columns of ``y``
            (and ``aux_targets``), else ``"y[0]"``, ...
        include_values, cmap, xticks_rotation, values_format, ax, colorbar, \
im_kw, text_kw
            As for :meth:`plot`.

        Returns
        -------
        display : TaskAffinityDisplay
        """
        _check_matplotlib("TaskAffinityDisplay")
        from .inspection import task_affinity

        result = task_affinity(
            estimator, X, y, aux_targets=aux_targets, sample_weight=sample_weight,
            every=every, learning_rate=learning_rate,
        )
        return cls.from_affinity(
            result.affinity,
            task_names=result.task_names if task_names is None else task_names,
            include_values=include_values, cmap=cmap, xticks_rotation=xticks_rotation,
            values_format=values_format, ax=ax, colorbar=colorbar, im_kw=im_kw,
            text_kw=text_kw,
        )
