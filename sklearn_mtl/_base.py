"""The estimator skeleton: hyperparameters, ``fit`` and ``partial_fit`` once,
prediction and scoring.

The classifier, the regressor and the mixed model are thin leaves over it:
they say which kind each column of ``y`` is and how predictions are
returned. Data flows one way: the estimator encodes the targets into task
specifications (``_targets``, ``_tasks``), resolves its hyperparameters into
a configuration (``_config``), builds and trains the net (``_net``) through a
few methods, and decodes the net's outputs with the task specifications.
"""

import re
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context
from sklearn_compat.utils.validation import validate_data

from ._balancing import BALANCERS
from ._callbacks import training_callbacks
from ._config import (
    SOLVERS,
    pretrained_trunk,
    resolve_config,
    resolve_early_stopping,
    resolve_task_weights,
)
from ._data import early_stopping_datasets, make_dataset
from ._module import ACTIVATIONS
from ._net import build_net
from ._representation import RepresentationMixin
from ._targets import encode_targets, task_columns_text
from ._tasks import CLASSIFICATION, REGRESSION, OutputLayout, TaskDecoder
from .metrics import mean_score, per_task_scores


def _raise_naming(error, names, expected):
    """Re-raise ``error``, prefixed with what was ``expected`` unless its
    message already matches ``names`` (the argument it is about): scikit-learn's
    and numpy's messages do not always say which argument they concern."""
    if re.search(names, str(error)):
        raise error
    raise type(error)(f"{expected}; {error}") from error


class BaseMultiTaskNet(RepresentationMixin, BaseEstimator):
    """Fit skeleton shared by every multi-task estimator (not public).

    A transformer too (as ``LinearDiscriminantAnalysis`` is a classifier and
    a transformer): ``transform`` returns the trunk's output, and
    ``TransformerMixin`` brings ``fit_transform`` and ``set_output``.
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "head_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"shared", "mmoe"})],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [
            Interval(Real, 0, 1, closed="left"),
            "array-like",
            StrOptions({"concrete"}),
        ],
        "batch_norm": ["boolean"],
        "mc_samples": [Interval(Integral, 0, None, closed="left")],
        "group_lasso": [Interval(Real, 0, None, closed="left")],
        "adversarial_epsilon": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "task_weights": ["array-like", None],
        "task_balancing": [StrOptions(set(BALANCERS))],
        "aux_task_types": [list, dict, None],
        # Checked at fit, with messages naming what a pretrained model must be.
        "pretrained": "no_validation",
        "trunk_learning_rate": [None, Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "verbose": ["verbose"],
        "progress_bar": ["boolean"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        head_layer_sizes=(),
        architecture="shared",
        n_experts=4,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        mc_samples=0,
        group_lasso=0.0,
        adversarial_epsilon=0.0,
        alpha=1e-4,
        l1_ratio=0.0,
        task_weights=None,
        task_balancing="fixed",
        aux_task_types=None,
        pretrained=None,
        trunk_learning_rate=None,
        solver="adam",
        learning_rate_init=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        random_state=None,
        warm_start=False,
        device="cpu",
        verbose=0,
        progress_bar=False,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.head_layer_sizes = head_layer_sizes
        self.architecture = architecture
        self.n_experts = n_experts
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.mc_samples = mc_samples
        self.group_lasso = group_lasso
        self.adversarial_epsilon = adversarial_epsilon
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.task_weights = task_weights
        self.task_balancing = task_balancing
        self.aux_task_types = aux_task_types
        self.pretrained = pretrained
        self.trunk_learning_rate = trunk_learning_rate
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.device = device
        self.verbose = verbose
        self.progress_bar = progress_bar
        self.callbacks = callbacks

    # -- what the leaves decide -------------------------------------------------

    def _main_kinds(self, names, declared):
        """Kind of each column of y, or None where it is inferred from the values."""
        raise NotImplementedError

    def _class_weights(self, task, spec, labels):
        """Per-sample class weights of one classification task, or None."""
        return None

    def _set_task_attributes(self):
        """Set the leaf's fitted attributes on the tasks of y (``classes_``...)."""
        self.n_outputs_ = self._n_main_tasks

    # -- input checks -----------------------------------------------------------

    def _validate_X(self, X, reset):
        if not reset and self._passes_unchanged(X):
            return self._to_float32(X)
        try:
            X = validate_data(
                self,
                X,
                accept_sparse=("csr", "csc", "coo"),
                dtype=(np.float32, np.float64),
                reset=reset,
            )
        except (ValueError, TypeError) as error:
            _raise_naming(
                error, r"\bX\b",
                "X must be a 2-D array of numbers (n_samples, n_features) or a "
                "sparse matrix",
            )
        return self._to_float32(X)

    def _passes_unchanged(self, X):
        """Whether ``validate_data(reset=False)`` would return ``X`` as it is
        and warn nothing: a 2-D float ndarray of finite values with the
        fitted number of features, on a model fitted without feature names.

        Prediction on such arrays (the common case, and every call of a
        service predicting one row) skips scikit-learn's checks, which cost
        as much as the forward pass of a small table; anything else goes
        through them and gets their errors and warnings.
        """
        if not (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in (np.float32, np.float64)
            and X.shape[0] > 0
            and X.shape[1] == getattr(self, "n_features_in_", None)
            and not hasattr(self, "feature_names_in_")
        ):
            return False
        # NaN and inf propagate into the sum; a sum of finite values that
        # overflows takes the long way, which checks each value.
        with np.errstate(all="ignore"):
            return bool(np.isfinite(X.sum()))

    @staticmethod
    def _to_float32(X):
        cast = X.dtype != np.float32
        with np.errstate(over="ignore"):  # reported below, with the fix
            X = X.tocsr().astype(np.float32) if sp.issparse(X) else X.astype(
                np.float32, copy=False
            )
        # Finite float64 values beyond float32's range become inf in the cast.
        if cast and not np.isfinite(X.data if sp.issparse(X) else X).all():
            raise ValueError(
                "Input X contains values too large for float32 (above "
                f"{np.finfo(np.float32).max:.3g}); rescale the features."
            )
        return X

    def _task_name(self, task):
        """Which column of y or aux_targets task ``task`` of ``tasks_`` is."""
        n_main = self._n_main_tasks
        if task < n_main:
            return f"Task {task} of y"
        return f"Task {task - n_main} of aux_targets"

    @property
    def _n_main_tasks(self):
        return len(self.tasks_) - self.n_aux_tasks_

    # -- fit --------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, aux_targets=None, sample_weight=None):
        """Fit the network to every task of ``y`` (and of ``aux_targets``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
            Labels or values of each task; ``NaN`` or ``None`` marks a missing
            entry.
        aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
                default=None
            Auxiliary tasks (classification or regression), trained through
            their own heads on the shared trunk but not predicted:
            ``predict``, ``predict_proba``, ``classes_``, ``score`` and
            ``n_outputs_`` cover the tasks of ``y`` only. Rows match ``X`` by
            position; ``NaN`` or ``None`` marks a missing label; a 1-D array is
            one task. Each column's kind follows ``aux_task_types``. Inside
            scikit-learn's ensembles and searches, enable metadata routing and
            call ``set_fit_request(aux_targets=True)`` so that they pass it
            with the rows of ``X`` they select.
        sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
                default=None
            Weights of the samples (or of each sample in each task: the tasks
            of ``y``, then those of ``aux_targets``) in the loss, normalised by
            their sum.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, aux_targets, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, aux_targets=None, sample_weight=None):
        """Train the network for one epoch on ``(X, y)``.

        The tasks' kinds, label sets and target standardisation are fixed on
        the first call, from its ``y``: labels it does not show cannot be
        learned later.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
            Labels or values of each task; ``NaN`` or ``None`` marks a missing
            entry.
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
        self : object
            The updated estimator.
        """
        return self._fit(X, y, aux_targets, sample_weight, incremental=True)

    def _fit(self, X, y, aux_targets, sample_weight, *, incremental, classes=None):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if incremental and self.early_stopping is True:
            raise ValueError("partial_fit does not support early_stopping=True")
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        X = self._validate_X(X, reset=not continuing)
        if not continuing:  # a net fitted on sparse X reads CSR batches (_sparse)
            self._sparse_input = sp.issparse(X)
        source_trunk = None
        if continuing:  # the fitted trunk, whatever pretrained now says
            trunk = getattr(self, "_trunk_shape", None)
        elif self.pretrained is not None:
            trunk, source_trunk = pretrained_trunk(
                self.pretrained, X.shape[1], getattr(self, "feature_names_in_", None)
            )
        else:
            trunk = None
        config = resolve_config(self, trunk=trunk)
        targets, weights = encode_targets(
            self, X, y, aux_targets, sample_weight, reset=not continuing, classes=classes
        )
        task_weights = resolve_task_weights(
            self.task_weights, len(self.tasks_), task_columns_text(self.n_aux_tasks_)
        )
        no_weight = np.flatnonzero(weights.sum(axis=0) == 0)
        if aux_targets is None:  # unlabelled auxiliary tasks are left untrained
            no_weight = no_weight[no_weight < self._n_main_tasks]
        if len(no_weight):
            raise ValueError(
                f"{self._task_name(no_weight[0])} has no labelled sample with a "
                f"positive sample_weight; each task needs at least one."
            )
        # A row that weighs zero for every task cannot change the fit; dropping
        # it makes a zero weight exactly equivalent to removing the sample.
        keep = weights.any(axis=1)
        if not keep.all():
            X, targets, weights = X[keep], targets[keep], weights[keep]

        if not continuing:
            self._rng = check_random_state(self.random_state)
        seed = int(self._rng.randint(np.iinfo(np.int32).max))
        early_stopping = self.early_stopping_ = resolve_early_stopping(
            self.early_stopping, X.shape[0], incremental
        )
        callbacks = training_callbacks(
            config,
            dynamic_balancing=BALANCERS[config.balancing].dynamic,
            early_stopping=early_stopping,
            stop_rule=None if incremental else (self.n_iter_no_change, self.tol),
            progress_bar=self.progress_bar,
            user_callbacks=self.callbacks,
        )
        epochs = 1 if incremental else self.max_iter
        devices = [] if config.device == "cpu" else None
        with torch.random.fork_rng(devices=devices):
            # On CPU only the CPU generator: torch.manual_seed would also queue
            # a seed for every accelerator's generator, outside the fork.
            if config.device == "cpu":
                torch.default_generator.manual_seed(seed)
            else:
                torch.manual_seed(seed)
            if early_stopping:
                train, valid = early_stopping_datasets(
                    X, targets, weights, config.device,
                    validation_fraction=self.validation_fraction, rng=self._rng,
                    stratify_first=self.tasks_[0].kind == CLASSIFICATION
                    and bool(np.all(weights[:, 0] > 0)),
                    n_main=self._n_main_tasks,
                    stratify_if_possible=self.early_stopping == "auto",
                )
            else:
                train, valid = make_dataset(X, targets, weights, config.device), None
            if self.batch_size != "auto" and self.batch_size > len(train):
                warnings.warn(  # MLPClassifier's warning; a batch is all the rows
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped"
                )
            if continuing:
                self.net_.retune(config, task_weights)
            else:
                layout = OutputLayout.from_tasks(self.tasks_)
                self.net_ = build_net(config, layout, X.shape[1], task_weights)
                self.net_.initialize()
                if source_trunk is not None:
                    self.net_.load_trunk(source_trunk)
                self._trunk_shape = config.trunk_shape
            n_epochs, stopped = self.net_.train_epochs(
                train, valid, epochs, callbacks, verbose=self.verbose
            )

        history = self.net_.history
        if len(history) and "train_loss" not in history[-1]:
            n_epochs -= 1  # an epoch interrupted (Ctrl-C) before its end
        self.dropout_ = self.net_.dropout_rates()
        self.task_weights_ = self.net_.task_weights()
        self.n_iter_ = n_epochs
        self.loss_curve_ = [e["train_loss"] for e in history if "train_loss" in e]
        self.validation_scores_ = [
            epoch["valid_score"] for epoch in history if "valid_score" in epoch
        ] or None
        # The best of this call's epochs, whose weights were restored: the
        # score of the model returned (a warm start's too).
        stopper = dict(self.net_.callbacks_).get("stopping")
        best = getattr(stopper, "best_score_", None) if early_stopping else None
        self.best_validation_score_ = None if best in (None, -np.inf) else best
        self.best_loss_ = (
            None if early_stopping or not self.loss_curve_ else min(self.loss_curve_)
        )
        self._set_task_attributes()
        if not incremental and not stopped and n_epochs == epochs:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                f"and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        return self

    # -- predict ----------------------------------------------------------------

    def _outputs(self, X, return_std=False, proba=True):
        """The network's ``(n, n_outputs)`` outputs, probabilities in place of
        logits (or, with ``proba=False`` and no Monte-Carlo passes, the
        logits); with ``mc_samples > 0`` the means over that many stochastic
        passes (masks seeded from ``random_state``), and with ``return_std``
        also their standard deviations."""
        # The net is what a fit leaves: naming it spares scikit-learn's scan
        # of every attribute, a tenth of a one-row prediction.
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        net = self.net_
        dataset = make_dataset(X, device=net.device)
        if self.mc_samples == 0:
            return net.task_outputs(dataset, proba=proba)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        outputs, std = net.task_outputs(dataset, self.mc_samples, seed)
        return (outputs, std) if return_std else outputs

    def _task_outputs(self, X, auxiliary=False, return_std=False):
        """Per task: class probabilities, or standardised values ``(n, 1)``.

        The tasks of ``y``, or with ``auxiliary=True`` the auxiliary tasks;
        see :meth:`_outputs`.
        """
        outputs = self._outputs(X, return_std)
        tasks = (
            slice(self._n_main_tasks, None) if auxiliary else slice(self._n_main_tasks)
        )
        split = self.net_.layout.split
        if return_std:
            return split(outputs[0], tasks), split(outputs[1], tasks)
        return split(outputs, tasks)

    def _decoder(self):
        """The :class:`TaskDecoder` of the tasks of y, planned once per fit
        (kept on the net, so that predicting leaves the estimator as it is)."""
        decoder = getattr(self.net_, "task_decoder_", None)
        if decoder is None or decoder.specs is not self.tasks_:
            decoder = TaskDecoder(self.tasks_, self._n_main_tasks, self.net_.layout)
            self.net_.task_decoder_ = decoder
        return decoder

    def _predict(self, X, return_std=False):
        """``predict`` of every estimator: labels or values of the tasks of y.

        One column per task (1-D for a 1-D ``y``), in the tasks' common dtype
        or ``object`` when they differ; with ``return_std``, also the
        standard deviation of each value over the Monte-Carlo passes (NaN for
        classification tasks).
        """
        check_is_fitted(self, "net_")
        tasks = self.tasks_[: self._n_main_tasks]
        if not return_std:
            values = self._decoder()(self._outputs(X, proba=False))
            return values[:, 0] if self._y_1d else values
        # Zeros would read as certainty: without stochastic passes of a
        # dropout layer there is no spread to report.
        if self.mc_samples == 0:
            raise ValueError(
                "predict(return_std=True) needs Monte-Carlo dropout: set "
                "mc_samples to a positive number of stochastic passes (e.g. 100) "
                f"and a dropout rate above 0; got mc_samples={self.mc_samples}."
            )
        if not any(rate > 0 for rate in self.dropout_):
            raise ValueError(
                "predict(return_std=True) needs Monte-Carlo dropout, but the model "
                f"has no dropout layer (dropout={self.dropout!r}): every pass "
                "would be the same. Fit it with a dropout rate above 0 (e.g. "
                "dropout=0.2) or dropout='concrete'."
            )
        means, stds = self._outputs(X, return_std=True)
        values = self._decoder()(means)
        spreads = np.column_stack([
            std[:, 0].astype(np.float64) * spec.scale
            if spec.kind == REGRESSION
            else np.full(len(std), np.nan)
            for spec, std in zip(tasks, self.net_.layout.split(stds))
        ])
        if self._y_1d:
            return values[:, 0], spreads[:, 0]
        return values, spreads

    def _score_tasks(self, X, y, sample_weight):
        """Per-task scores of ``predict(X)`` against ``y``, errors naming y."""
        predicted = self.predict(X)
        kinds = [spec.kind for spec in self.tasks_[: self._n_main_tasks]]
        try:
            return per_task_scores(y, predicted, kinds, sample_weight)
        except (ValueError, TypeError) as error:
            _raise_naming(
                error, r"\b(y|sample_weight)\b",
                f"y must hold the true targets of the {self.n_outputs_} task(s) the "
                f"model predicts, one row per sample of X",
            )

    def score(self, X, y, sample_weight=None):
        """Mean over tasks of each task's score on its labelled entries.

        Accuracy for a classification task, R² for a regression task (the
        same function scores the early-stopping validation split).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            True labels or values; missing entries are left out.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
            Mean of the tasks' scores.
        """
        return mean_score(self._score_tasks(X, y, sample_weight))

    @property
    def feature_importances_(self):
        """Norm of each input feature's weights in the first layer.

        With ``group_lasso > 0`` the features the model does not use have an
        importance of exactly zero; :class:`~sklearn.feature_selection.
        SelectFromModel` reads this attribute.
        """
        check_is_fitted(self)
        return self.net_.input_norms()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
