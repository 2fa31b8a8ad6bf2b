"""MultiTaskNetRegressor: every column of ``y`` is a regression task."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn_compat.base import _fit_context

from ._base import BaseMultiTaskNet
from ._tasks import REGRESSION


class MultiTaskNetRegressor(RegressorMixin, BaseMultiTaskNet):
    """Multi-task neural network regressor with a shared trunk.

    One network learns every column of ``y`` at once: a shared trunk of
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` blocks feeds one
    linear head per task (hard parameter sharing). Each task's target is
    standardised inside ``fit`` (and mapped back by ``predict``), so tasks on
    different scales weigh the same; the loss is the weighted sum over tasks
    of each task's squared error, averaged over its labelled entries, plus an
    L1/L2 penalty on the weight matrices. Training runs in a skorch
    ``NeuralNet`` kept as ``net_``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Widths of the shared trunk's layers. ``()`` gives a linear model.
    head_layer_sizes : array-like of int, default=()
        Widths of the hidden layers of each task's head (same blocks as the
        trunk, with the dropout rate of the last trunk layer).
    architecture : {"shared", "mmoe"}, default="shared"
        How the tasks share the network. ``"shared"``: one trunk feeds every
        head (hard parameter sharing). ``"mmoe"``: a multi-gate mixture of
        experts [4]_, ``n_experts`` trunks (experts) of ``hidden_layer_sizes``
        each and, per task, a softmax gate on the input that weighs the
        experts; each task's head reads its gated sum of the experts' outputs,
        so unrelated tasks can use different experts. ``activation``,
        ``batch_norm`` and ``dropout`` apply to every expert as to the shared
        trunk (one rate per layer, the same in every expert). The gates'
        weights count in the ``alpha`` penalty and in the group-lasso groups
        and ``feature_importances_`` (a removed feature is read by neither
        experts nor gates). Needs at least one hidden layer.
    n_experts : int, default=4
        Number of experts with ``architecture="mmoe"``; ignored with
        ``"shared"``.
    activation : {"relu", "tanh", "logistic", "identity", "gelu"}, default="relu"
        Activation of every hidden layer.
    dropout : float, array-like of float or "concrete", default=0.0
        Probability of zeroing each unit of the shared trunk during training.
        An array-like gives one rate per trunk layer. ``"concrete"`` learns
        one rate per trunk layer during ``fit`` (concrete dropout [2]_; head
        layers then have no dropout); the rates are in ``dropout_``.
        Prediction scales by the expected mask (no sampling) unless
        ``mc_samples > 0``.
    batch_norm : bool, default=False
        Whether each hidden layer has a ``BatchNorm1d`` after its ``Linear``.
    mc_samples : int, default=0
        Monte-Carlo dropout [1]_: with a positive value, ``predict`` returns
        the mean of that many stochastic forward passes (dropout on, batch
        norm on its running statistics) and ``predict(X, return_std=True)``
        also their standard deviation. The passes are batched: the trunk
        before the first dropout layer runs once per batch, the rest on the
        batch repeated ``mc_samples`` times. The masks are drawn from
        ``random_state`` (an int gives the same masks at every call; torch's
        global generator is left untouched). 0 predicts with the
        deterministic network.
    group_lasso : float, default=0.0
        Strength of a group-lasso penalty on the first layer with one group
        per input feature (the weights leaving it) [3]_. It is applied by a
        proximal step after each optimiser step, so features the model does
        not need get exactly zero weight: ``feature_importances_`` is then
        zero for them and :class:`~sklearn.feature_selection.SelectFromModel`
        drops them. 0 disables it.
    alpha : float, default=1e-4
        Strength of the penalty ``alpha * (l1_ratio * |W|_1 + 0.5 * (1 -
        l1_ratio) * |W|_2^2)`` on the ``Linear`` weight matrices, added to
        each batch's mean loss as in :class:`~sklearn.linear_model.ElasticNet`.
    l1_ratio : float, default=0.0
        Mix of the penalty: 0 is pure L2 (as in ``MLPRegressor``), 1 pure L1.
    task_weights : array-like of shape (n_tasks,), default=None
        Weight of each task's loss in the sum, for the tasks of ``y`` then
        those of ``aux_targets``; ``None`` weighs all tasks 1.
    aux_task_types : list or dict, default=None
        Kind of each auxiliary task (column of ``aux_targets`` in ``fit``),
        ``"classification"`` or ``"regression"``: a list with one entry per
        column, or a dict from column names (or positions) to kinds. Columns
        left out (or given ``None``) are typed by their dtype and labelled
        values: pandas ``category`` columns, strings and booleans are
        classification; numbers with a fractional part are regression;
        integral numbers are classification when they take at most 10
        distinct values, else regression.
    solver : {"adam", "adamw", "sgd", "rmsprop", "adagrad"}, default="adam"
        The torch optimizer. ``"sgd"`` uses Nesterov momentum 0.9.
    learning_rate_init : float, default=1e-3
        Learning rate of the optimizer.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Whether to shuffle the rows every epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stop when the validation
        R² has not improved by ``tol`` for ``n_iter_no_change`` epochs, and
        restore the best epoch's weights. Without it, training stops when the
        training loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Least improvement that counts.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split; an int makes ``fit`` exactly reproducible on the same device.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to train and predict; ``"auto"`` picks CUDA when available.
    verbose : int, default=0
        Print skorch's per-epoch table when positive: the training loss and
        each task's training loss (``train_loss_task{t}``, on its labelled
        entries, without the penalty), and with early stopping the
        validation loss and score of each task as well. The same figures are
        in ``net_.history``.
    progress_bar : bool, default=False
        Show a progress bar over each epoch's batches (skorch's
        ``ProgressBar``, through ``tqdm``), for long fits.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, copied into ``net_`` at each fit.

    Attributes
    ----------
    n_outputs_ : int
        Number of tasks of ``y`` (the predicted tasks).
    n_aux_tasks_ : int
        Number of auxiliary tasks (columns of ``aux_targets``).
    tasks_ : list of TaskSpec
        Kind and label set or target standardisation of each task: the tasks
        of ``y``, then the auxiliary tasks.
    net_ : skorch.NeuralNet
        The fitted network; ``net_.history`` holds the per-epoch records.
    dropout_ : tuple of float
        Dropout rate of each trunk layer: the learned rates with
        ``dropout="concrete"``, else the fixed rates used.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Euclidean norm of each input feature's weights in the first layer
        (the group-lasso groups); exactly zero for features removed by
        ``group_lasso``.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Training loss (penalty included, on standardised targets) per epoch.
    best_loss_ : float or None
        Lowest training loss; ``None`` with early stopping.
    validation_scores_ : list of float or None
        Validation R² of each epoch with early stopping, else ``None``.
    best_validation_score_ : float or None
        Best validation R² with early stopping, else ``None``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    MultiTaskNetClassifier : The same network for classification tasks.
    sklearn.neural_network.MLPRegressor : A single network without dropout.

    Notes
    -----
    Missing targets (``NaN`` in ``y``) are left out of the loss and of
    ``score``. Rows whose every weight is zero (missing or ``sample_weight ==
    0``) are dropped before training, which makes a zero weight the same as
    leaving the row out.

    Auxiliary tasks (``aux_targets`` in :meth:`fit`) are trained through heads
    of their own on the shared trunk but never predicted. They keep the net
    multi-task inside scikit-learn's ensembles, which pass a 1-D ``y``: with
    metadata routing enabled and ``set_fit_request(aux_targets=True)``,
    bagging, stacking, voting, calibration and the searches slice them with
    the rows of ``X``.

    ``predict(X, return_std=True)`` reports the spread of the Monte-Carlo
    passes, the model's uncertainty about the function, not the noise of
    the targets; it is zero where the passes agree (no dropout layer after
    the first block) and grows away from the training data. It raises a
    ``ValueError`` when ``mc_samples`` is 0 rather than return zeros that
    would read as certainty.

    Concrete dropout relaxes each mask to a concrete distribution of
    temperature 0.1 and adds to the training loss, per layer, ``l**2 / N *
    |W|^2 / (1 - p) + 2 / N * K * (p log p + (1 - p) log(1 - p))``, with ``N``
    the training rows, ``K`` the layer's width, ``W`` the weights that read
    the layer and a prior length scale ``l = 1e-4`` (the paper's values): the
    fewer the rows, the stronger the pull towards ``p = 1/2``. The rates start
    at 0.1 and learn with 10 times ``learning_rate_init``.

    The group-lasso step shrinks the column ``W[:, j]`` of the first layer by
    ``max(0, 1 - lr * group_lasso / |W[:, j]|)``. With an adaptive solver
    (Adam, AdamW, RMSprop, Adagrad) ``lr`` is divided by the root mean square
    the solver divides that column's gradient by, so that ``group_lasso``
    weighs against the loss's gradient as it would under SGD: a feature keeps
    weight only while its gradient norm exceeds about ``group_lasso``.

    References
    ----------
    .. [1] Y. Gal and Z. Ghahramani, "Dropout as a Bayesian Approximation:
       Representing Model Uncertainty in Deep Learning", ICML 2016.
    .. [2] Y. Gal, J. Hron and A. Kendall, "Concrete Dropout", NeurIPS 2017.
    .. [3] M. Yuan and Y. Lin, "Model selection and estimation in regression
       with grouped variables", JRSS B 68(1), 2006.
    .. [4] J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi, "Modeling
       Task Relationships in Multi-task Learning with Multi-gate
       Mixture-of-Experts", KDD 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_mtl import MultiTaskNetRegressor
    >>> X, y = make_regression(n_samples=200, n_targets=2, random_state=0)
    >>> reg = MultiTaskNetRegressor(max_iter=50, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3, 2)
    """

    def _column_kind(self, column, task):
        return REGRESSION

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
        if not return_std:
            columns = self._predict_columns(X)
            return columns[0] if self._y_1d else np.column_stack(columns)
        if self.mc_samples == 0:
            raise ValueError(
                "predict(return_std=True) needs Monte-Carlo dropout: set "
                "mc_samples to a positive number of stochastic passes (e.g. 100) "
                f"and a dropout rate above 0; got mc_samples={self.mc_samples}."
            )
        means, stds = self._task_outputs(X, return_std=True)
        tasks = self.tasks_[: self._n_main_tasks]
        mean = [spec.decode(m) for spec, m in zip(tasks, means)]
        std = [s[:, 0].astype(np.float64) * spec.scale for spec, s in zip(tasks, stds)]
        if self._y_1d:
            return mean[0], std[0]
        return np.column_stack(mean), np.column_stack(std)

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
        scores = self._score_tasks(X, y, REGRESSION, sample_weight)
        return float(np.nanmean(scores))
