"""MultiTaskNetRegressor: every column of ``y`` is a regression task."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn_compat.base import _fit_context

from ._base import BaseMultiTaskNet
from ._docs import TEMPLATE
from ._tasks import REGRESSION


class MultiTaskNetRegressor(RegressorMixin, BaseMultiTaskNet):
    __doc__ = TEMPLATE.format(
        summary="""Multi-task neural network regressor with a shared trunk.

    One network learns every column of ``y`` at once: a shared trunk of
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` blocks feeds one
    linear head per task (hard parameter sharing). Each task's target is
    standardised inside ``fit`` (and mapped back by ``predict``), so tasks on
    different scales weigh the same; the loss is the weighted sum over tasks
    of each task's squared error, averaged over its labelled entries, plus an
    L1/L2 penalty on the weight matrices. Training runs in a skorch
    ``NeuralNet`` kept as ``net_``.""",
        mc_samples="""``predict`` returns
        the mean of that many stochastic forward passes (dropout on, batch
        norm on its running statistics) and ``predict(X, return_std=True)``
        also their standard deviation.""",
        mlp="MLPRegressor",
        stratified="",
        score="R²",
        extra_parameters="",
        extra_attributes="",
        see_also="""\
    MultiTaskNetClassifier : The same network for classification tasks.
    MultiTaskNet : The same network for a mix of both.
    sklearn.neural_network.MLPRegressor : A single network without dropout.""",
        notes="""\
    Missing targets (``NaN`` in ``y``) are left out of the loss and of
    ``score``. Rows whose every weight is zero (missing or ``sample_weight ==
    0``) are dropped before training, which makes a zero weight the same as
    leaving the row out.

    ``predict(X, return_std=True)`` reports the spread of the Monte-Carlo
    passes, the model's uncertainty about the function, not the noise of
    the targets; it is zero where the passes agree (no dropout layer after
    the first block) and grows away from the training data. It raises a
    ``ValueError`` when ``mc_samples`` is 0 rather than return zeros that
    would read as certainty.
""",
        examples="""\
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_mtl import MultiTaskNetRegressor
    >>> X, y = make_regression(n_samples=200, n_targets=2, random_state=0)
    >>> reg = MultiTaskNetRegressor(max_iter=50, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3, 2)""",
    )

    def _main_kinds(self, names, declared):
        return [REGRESSION] * len(names)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, aux_targets=None, sample_weight=None):
        """Fit the network to every task of ``y`` (and of ``aux_targets``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets of each task; ``NaN`` marks a missing target.
        aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
                default=None
            Auxiliary tasks (classification or regression), trained through
            their own heads on the shared trunk but not predicted:
            ``predict``, ``score`` and ``n_outputs_`` cover the tasks of ``y``
            only. Rows match ``X`` by position; ``NaN`` or ``None`` marks a
            missing label; a 1-D array is one task. Each column's kind follows
            ``aux_task_types``. Inside scikit-learn's ensembles and searches,
            enable metadata routing and call ``set_fit_request(aux_targets=True)``
            so that they pass it with the rows of ``X`` they select.
        sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
                default=None
            Weights of the samples (or of each sample in each task: the tasks
            of ``y``, then those of ``aux_targets``) in the loss, normalised by
            their sum.

        Returns
        -------
        self : MultiTaskNetRegressor
            The fitted estimator.
        """
        self._fit(X, y, aux_targets, sample_weight, incremental=False)
        self.n_outputs_ = self._n_main_tasks
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, aux_targets=None, sample_weight=None):
        """Train the network for one epoch on ``(X, y)``.

        The targets' standardisation is fixed on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets of each task; ``NaN`` marks a missing target.
        aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
                default=None
            Auxiliary tasks, as in :meth:`fit`; their kinds, labels and
            scaling are fixed on the first call. Left out on a later call, the
            auxiliary heads are not trained in that epoch.
        sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
                default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : MultiTaskNetRegressor
            The updated estimator.
        """
        self._fit(X, y, aux_targets, sample_weight, incremental=True)
        self.n_outputs_ = self._n_main_tasks
        return self

    def predict(self, X, return_std=False):
        """Predict the value of every task.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        return_std : bool, default=False
            Also return the standard deviation of each prediction over the
            ``mc_samples`` Monte-Carlo dropout passes (as
            :class:`~sklearn.gaussian_process.GaussianProcessRegressor` does
            for its posterior). Requires ``mc_samples > 0``.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Predicted values (float64), on the scale of the training targets:
            the mean over the Monte-Carlo passes when ``mc_samples > 0``.
        y_std : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Standard deviation of the passes, on the scale of the training
            targets, with the shape of ``y``. Only with ``return_std=True``.
        """
        return self._predict(X, return_std)

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of R² on each task's labelled entries.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            True values; ``NaN`` entries are left out.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
            Mean R² over tasks.
        """
        scores = self._score_tasks(X, y, sample_weight)
        return float(np.nanmean(scores))
