"""MultiTaskNetRegressor: every column of ``y`` is a regression task."""

from sklearn.base import RegressorMixin

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

    # Not RegressorMixin's: R² over the labelled entries of each task.
    score = BaseMultiTaskNet.score
