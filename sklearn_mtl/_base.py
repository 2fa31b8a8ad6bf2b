"""Shared estimator logic: hyperparameters, the fit skeleton, building ``net_``.

The classifier and the regressor are thin views over this engine: they only
say which kind each column of ``y`` is and how predictions are returned.
"""

import copy
import re
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from sklearn_compat.utils.validation import validate_data

from ._balancing import BALANCING, NEEDS_TRUNK
from ._module import ACTIVATIONS, NO_EXPERT_LAYERS, MultiTaskModule
from ._net import (
    BatchIterator,
    GroupLassoProximal,
    MultiTaskLoss,
    MultiTaskNeuralNet,
    StopOnNonFinite,
    TaskBalancing,
    TensorDataset,
    ValidationScore,
)
from ._tasks import (
    CLASSIFICATION,
    REGRESSION,
    auxiliary_columns,
    check_finite_labels,
    declared_specs,
    infer_kind,
    infer_spec,
    is_missing,
    target_columns,
)
from .metrics import per_task_scores

SOLVERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    # MLPClassifier's SGD defaults: momentum 0.9 with Nesterov's correction.
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
}


def _optimizer_kwargs(solver, device):
    """The solver's defaults plus torch's fastest step for the device.

    A fused step updates all parameters in one kernel instead of a handful of
    ops per parameter; torch has it for Adam, AdamW and SGD on CPU and CUDA
    and for Adagrad on CPU. RMSprop gets the multi-tensor (foreach) step.
    """
    kwargs = dict(SOLVERS[solver][1])
    if solver in ("adam", "adamw", "sgd") or (solver == "adagrad" and device == "cpu"):
        kwargs["fused"] = True
    else:
        kwargs["foreach"] = True
    return kwargs

# Rows per forward pass in prediction and validation: cache-sized on a CPU,
# large enough on a GPU that kernel launches do not dominate.
PREDICT_BATCH_SIZE = {"cpu": 4096, "cuda": 65536}
# Learning rate of the concrete dropout logits and of the learned task weights
# (log-variances, GradNorm weights), relative to learning_rate_init: one
# number per layer or task moves too little at the weights' rate to settle
# within a few hundred steps.
LEARNED_LR_FACTOR = 10.0
# Rows per forward pass of Monte-Carlo prediction (a batch times its copies).
MC_MAX_ROWS = {"cpu": 16384, "cuda": 2**20}


def _positive_int_tuple(value, name):
    sizes = np.atleast_1d(np.asarray(value, dtype=object))
    if sizes.ndim != 1 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(
            f"{name} must be a sequence of positive integers; got {value!r}."
        )
    return tuple(int(s) for s in sizes)


def _silent(*args, **kwargs):
    """A skorch ``sink`` that prints nothing."""


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch finds no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return device


def _stack_columns(columns):
    """``(n, n_tasks)`` array of per-task predictions; object dtype if they differ."""
    if len({c.dtype for c in columns}) == 1:
        return np.column_stack(columns)
    return np.column_stack([c.astype(object) for c in columns])


class BaseMultiTaskNet(BaseEstimator):
    """Fit skeleton shared by every multi-task estimator (not public)."""

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
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "task_weights": ["array-like", None],
        "task_balancing": [StrOptions(set(BALANCING))],
        "aux_task_types": [list, dict, None],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
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
        alpha=1e-4,
        l1_ratio=0.0,
        task_weights=None,
        task_balancing="fixed",
        aux_task_types=None,
        solver="adam",
        learning_rate_init=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
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
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.task_weights = task_weights
        self.task_balancing = task_balancing
        self.aux_task_types = aux_task_types
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

    # -- what subclasses decide -------------------------------------------------

    def _class_weights(self, task, spec, labels):
        """Per-sample class weights of one classification task, or None."""
        return None

    # -- input checks -----------------------------------------------------------

    def _validate_X(self, X, reset):
        try:
            X = validate_data(
                self,
                X,
                accept_sparse=("csr", "csc", "coo"),
                dtype=(np.float32, np.float64),
                reset=reset,
            )
        except (ValueError, TypeError) as error:
            if re.search(r"\bX\b", str(error)):
                raise
            # scikit-learn's and numpy's messages do not always say which
            # argument they are about.
            raise type(error)(
                f"X must be a 2-D array of numbers (n_samples, n_features) or a "
                f"sparse matrix; {error}"
            ) from error
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

    def _head_sizes(self):
        if not np.size(self.head_layer_sizes):
            return ()
        return _positive_int_tuple(self.head_layer_sizes, "head_layer_sizes")

    def _trunk_dropout(self):
        sizes = _positive_int_tuple(self.hidden_layer_sizes, "hidden_layer_sizes") if (
            np.size(self.hidden_layer_sizes)
        ) else ()
        if isinstance(self.dropout, str):  # "concrete", checked by the constraints
            return sizes, self.dropout
        try:
            rates = np.atleast_1d(np.asarray(self.dropout, dtype=float))
        except (TypeError, ValueError):
            rates = np.array([np.nan])  # reported below
        if rates.ndim != 1 or not np.all((rates >= 0) & (rates < 1)):
            raise ValueError(
                f"dropout must be a float in [0, 1), one such rate per trunk layer, "
                f"or 'concrete'; got {self.dropout!r}."
            )
        if np.ndim(self.dropout) == 0:
            rates = np.repeat(rates, len(sizes))
        elif len(rates) != len(sizes):
            raise ValueError(
                f"dropout must have one rate per trunk layer (hidden_layer_sizes has "
                f"{len(sizes)}); got {len(rates)} rates."
            )
        return sizes, tuple(float(r) for r in rates)

    @staticmethod
    def _task_columns(n_aux):
        """How the tasks are laid out, for messages: "column of y" or more."""
        return "column of y, then of aux_targets" if n_aux else "column of y"

    def _task_name(self, task):
        """Which column of y or aux_targets task ``task`` of ``tasks_`` is."""
        n_main = self._n_main_tasks
        if task < n_main:
            return f"Task {task} of y"
        return f"Task {task - n_main} of aux_targets"

    @property
    def _n_main_tasks(self):
        return len(self.tasks_) - self.n_aux_tasks_

    def _task_weight_vector(self, n_tasks):
        if self.task_weights is None:
            return np.ones(n_tasks, dtype=np.float32)
        weights = np.asarray(self.task_weights, dtype=np.float64).ravel()
        if len(weights) != n_tasks:
            raise ValueError(
                f"task_weights must have one entry per task "
                f"({self._task_columns(self.n_aux_tasks_)}); "
                f"got {len(weights)} entries for {n_tasks} tasks."
            )
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError(
                f"task_weights must be finite and non-negative; got {self.task_weights!r}."
            )
        return weights.astype(np.float32)

    def _sample_weights(self, sample_weight, X, n_tasks, n_aux):
        if sample_weight is None:
            return np.ones((X.shape[0], 1), dtype=np.float32)
        if np.asarray(sample_weight).ndim == 2:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != (X.shape[0], n_tasks):
                raise ValueError(
                    f"sample_weight must be 1-D (n_samples,) or 2-D (n_samples, "
                    f"n_tasks) = {(X.shape[0], n_tasks)}, one column per task "
                    f"({self._task_columns(n_aux)}); got shape {weights.shape}."
                )
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError("sample_weight must be finite and non-negative.")
        else:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )[:, None]
        return weights.astype(np.float32)

    # -- encoding ---------------------------------------------------------------

    @staticmethod
    def _declared_kinds(overrides, names, declared, param, source):
        """Kind of each column of ``source``: from ``overrides``, its dtype or None.

        ``overrides`` is the value of the hyperparameter ``param``: None, a
        list with one kind per column (by position, whatever the column
        names), or a dict from column names (or positions) to kinds.
        """
        kinds = list(declared)
        if overrides is None:
            return kinds
        if isinstance(overrides, list):
            if len(overrides) != len(names):
                raise ValueError(
                    f"{param} must have one entry per column of {source}; "
                    f"got {len(overrides)} entries for {len(names)} columns."
                )
            positions = dict(enumerate(overrides))
        else:
            positions = {}
            for key, kind in overrides.items():
                if key in names:
                    positions[names.index(key)] = kind
                elif isinstance(key, Integral) and 0 <= key < len(names):
                    positions[int(key)] = kind
                else:
                    raise ValueError(
                        f"{param} has the key {key!r}, which is neither a column "
                        f"name nor a position of {source} (columns: {names})."
                    )
        for position, kind in positions.items():
            if kind not in (CLASSIFICATION, REGRESSION, None):
                raise ValueError(
                    f"{param} must give 'classification', 'regression' or None "
                    f"for each column; got {kind!r} for column {names[position]!r}."
                )
            if kind is not None:
                kinds[position] = kind
        return kinds

    def _main_kinds(self, names, declared):
        """Kind of each column of y, or None where it is inferred from the values."""
        raise NotImplementedError

    def _encode(self, X, y, aux_targets, sample_weight, reset, classes=None):
        """Targets and loss weights as float32 ``(n_samples, n_tasks)`` arrays.

        The tasks are the columns of ``y``, then those of ``aux_targets``. On
        ``reset`` the task specifications are inferred from the labels, or
        taken from ``classes`` (the label sets of the classification tasks of
        ``y``) when given.
        """
        n_samples = X.shape[0]
        columns, names, declared, one_d = target_columns(y, n_samples)
        n_main = len(columns)
        aux_names, aux_declared = [], []
        if aux_targets is not None:
            aux_columns, aux_names, aux_declared = auxiliary_columns(
                aux_targets, n_samples
            )
        elif reset:
            aux_columns = []
        else:  # continued training without aux_targets: those tasks are unlabelled
            aux_columns = [np.full(n_samples, np.nan)] * self.n_aux_tasks_
        if not reset:
            self._check_task_counts(n_main, len(aux_columns))
        columns = columns + aux_columns
        # (argument, position) of each task, for messages.
        origins = [("y", t) for t in range(n_main)] + [
            ("aux_targets", j) for j in range(len(aux_columns))
        ]
        missing = [is_missing(c) for c in columns]
        for column, miss, (source, t) in zip(columns, missing, origins):
            check_finite_labels(column, miss, t, source)
        # One column of sample weights per task (a 1-D sample_weight serves all).
        sample_weights = np.broadcast_to(
            self._sample_weights(sample_weight, X, len(columns), len(aux_columns)),
            (n_samples, len(columns)),
        )
        if reset:
            kinds = self._main_kinds(names, declared) + self._declared_kinds(
                self.aux_task_types, aux_names, aux_declared, "aux_task_types",
                "aux_targets",
            )
            self.tasks_ = self._infer_specs(
                columns, missing, sample_weights, n_main, kinds, one_d, classes
            )
            self.n_aux_tasks_ = len(aux_columns)
            self._y_1d = one_d
        targets = np.column_stack(
            [
                spec.encode(column, miss, source)
                for spec, column, miss, (source, _) in zip(
                    self.tasks_, columns, missing, origins
                )
            ]
        )
        weights = sample_weights * ~np.column_stack(missing)
        # class_weight weighs the classes of the predicted tasks: those of y.
        for t, spec in enumerate(self.tasks_[:n_main]):
            if spec.kind == CLASSIFICATION:
                labelled = ~missing[t]
                per_sample = self._class_weights(t, spec, columns[t][labelled])
                if per_sample is not None:
                    weights[labelled, t] *= per_sample
        targets[np.isnan(targets)] = 0
        return targets, weights

    def _infer_specs(
        self, columns, missing, sample_weights, n_main, kinds, one_d, classes
    ):
        """Task specifications of the columns of y, then of aux_targets.

        ``kinds`` holds each column's kind, or None to infer it from the
        column's labelled values; ``classes`` the label sets of the tasks of
        y, when given.
        """
        specs = [] if classes is None else declared_specs(classes, one_d, n_main)
        for t in range(len(specs), len(columns)):
            source, position = ("y", t) if t < n_main else ("aux_targets", t - n_main)
            specs.append(
                infer_spec(
                    columns[t], missing[t], kinds[t] or infer_kind(columns[t], missing[t]),
                    position, source=source, weights=sample_weights[:, t],
                )
            )
        return specs

    def _check_task_counts(self, n_main, n_aux):
        if n_main != self._n_main_tasks:
            raise ValueError(
                f"y has {n_main} tasks (columns) but the model was fitted on "
                f"{self._n_main_tasks}."
            )
        if n_aux != self.n_aux_tasks_:
            raise ValueError(
                f"aux_targets has {n_aux} columns but the model was fitted with "
                f"{self.n_aux_tasks_} auxiliary tasks."
            )

    # -- fit --------------------------------------------------------------------

    def _fit(self, X, y, aux_targets, sample_weight, *, incremental, classes=None):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        X = self._validate_X(X, reset=not continuing)
        sizes, dropout = self._trunk_dropout()
        if self.architecture == "mmoe" and not sizes:
            raise ValueError(NO_EXPERT_LAYERS)
        head_sizes = self._head_sizes()
        if self.task_balancing in NEEDS_TRUNK and not sizes:
            raise ValueError(
                f"task_balancing={self.task_balancing!r} balances the tasks' gradients "
                f"on the shared trunk, but hidden_layer_sizes is empty (no trunk); "
                f"give hidden_layer_sizes at least one layer or use another "
                f"task_balancing."
            )
        targets, weights = self._encode(
            X, y, aux_targets, sample_weight, reset=not continuing, classes=classes
        )
        task_weights = self._task_weight_vector(len(self.tasks_))
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

        device = _resolve_device(self.device)
        if not continuing:
            self._rng = check_random_state(self.random_state)
        seed = int(self._rng.randint(np.iinfo(np.int32).max))
        early_stopping = self.early_stopping and not incremental
        with torch.random.fork_rng(devices=[] if device == "cpu" else None):
            torch.manual_seed(seed)
            train, valid = self._datasets(X, targets, weights, device, early_stopping)
            if not continuing:
                self.net_ = self._build_net(X.shape[1], sizes, head_sizes, dropout,
                                            task_weights, device)
                self.net_.initialize()
            net = self.net_
            if continuing:
                self._update_net(net, task_weights)
            net.verbose = self.verbose
            net.batch_size = 200 if self.batch_size == "auto" else self.batch_size
            net.train_split = predefined_split(valid) if early_stopping else None
            net.n_train_rows = len(train)
            net.callbacks = self._net_callbacks(early_stopping, incremental)
            net.initialize_callbacks()
            epochs = 1 if incremental else self.max_iter
            n_before = len(net.history)
            net.partial_fit(train, epochs=epochs)

        history = net.history
        self.dropout_ = net.module_.dropout_rates()
        self.task_weights_ = net.criterion_.balance().cpu().numpy().astype(np.float64)
        self.n_iter_ = len(history)
        self.loss_curve_ = [epoch["train_loss"] for epoch in history]
        self.validation_scores_ = [
            epoch["valid_score"] for epoch in history if "valid_score" in epoch
        ] or None
        self.best_validation_score_ = (
            max(self.validation_scores_) if self.validation_scores_ else None
        )
        self.best_loss_ = None if early_stopping else min(self.loss_curve_)
        stopper = dict(net.callbacks_).get("stopping")
        converged = stopper is not None and stopper.misses_ >= stopper.patience
        if not incremental and not converged and len(history) - n_before == epochs:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                f"and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        return self

    def _update_net(self, net, task_weights):
        """Carry the current hyperparameters into a network trained on.

        The penalty, the learning rate and the task weights follow the
        current values (as ``MLPClassifier`` does on a warm start); the
        balancing method is part of what was trained and cannot change.
        """
        if net.criterion_.balancing != self.task_balancing:
            raise ValueError(
                f"task_balancing is {self.task_balancing!r} but the network being "
                f"trained on was fitted with {net.criterion_.balancing!r}; "
                f"warm_start and partial_fit keep the balancing of the first fit. "
                f"Set warm_start=False (or call fit) to start afresh."
            )
        net.alpha, net.l1_ratio = self.alpha, self.l1_ratio
        net.criterion_.task_weights.copy_(torch.as_tensor(task_weights))
        ratio = self.learning_rate_init / net.lr
        for group in net.optimizer_.param_groups:  # learned groups keep their factor
            group["lr"] *= ratio
        net.lr = self.learning_rate_init

    def _datasets(self, X, targets, weights, device, early_stopping):
        if early_stopping:
            first = self.tasks_[0]
            stratify = None
            if first.kind == CLASSIFICATION and np.all(weights[:, 0] > 0):
                counts = np.bincount(targets[:, 0].astype(int))
                if counts[counts > 0].min() >= 2:
                    stratify = targets[:, 0]
            rows = np.arange(X.shape[0])
            train_rows, valid_rows = train_test_split(
                rows,
                test_size=self.validation_fraction,
                stratify=stratify,
                random_state=self._rng,
            )
            valid_weights = weights[valid_rows]
            # The validation score is the estimator's score, over the tasks of y
            # only: held-out rows keep no auxiliary label, and a task without
            # labels has a NaN score, which the mean over tasks skips.
            valid_weights[:, self._n_main_tasks :] = 0
            return (
                self._dataset(X[train_rows], targets[train_rows], weights[train_rows], device),
                self._dataset(X[valid_rows], targets[valid_rows], valid_weights, device),
            )
        return self._dataset(X, targets, weights, device), None

    @staticmethod
    def _dataset(X, targets=None, weights=None, device="cpu"):
        if not sp.issparse(X):
            with warnings.catch_warnings():
                # Read-only input (joblib's memmaps) is shared, never written.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                X = torch.as_tensor(X, device=device)
        if targets is not None:
            targets = torch.as_tensor(targets, device=device)
            weights = torch.as_tensor(weights, device=device)
        return TensorDataset(X, targets, weights, device=device)

    def _build_net(self, n_features, sizes, head_sizes, dropout, task_weights, device):
        optimizer = SOLVERS[self.solver][0]
        optimizer_kwargs = _optimizer_kwargs(self.solver, device)
        learned = ["log_variances", "loss_weights"]
        if isinstance(dropout, str):  # "concrete"
            learned.append("trunk.*.logit")
        optimizer_kwargs["param_groups"] = [
            (pattern, {"lr": LEARNED_LR_FACTOR * self.learning_rate_init})
            for pattern in learned
        ]
        return MultiTaskNeuralNet(
            module=MultiTaskModule,
            module__n_features=n_features,
            module__output_sizes=[spec.n_outputs for spec in self.tasks_],
            module__hidden_layer_sizes=sizes,
            module__head_layer_sizes=head_sizes,
            module__architecture=self.architecture,
            module__n_experts=self.n_experts,
            module__activation=self.activation,
            module__dropout=dropout,
            module__batch_norm=self.batch_norm,
            criterion=MultiTaskLoss,
            criterion__kinds=[spec.kind for spec in self.tasks_],
            criterion__output_sizes=[spec.n_outputs for spec in self.tasks_],
            criterion__task_weights=task_weights,
            criterion__balancing=self.task_balancing,
            optimizer=optimizer,
            lr=self.learning_rate_init,
            **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
            batch_size=200 if self.batch_size == "auto" else self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=self.shuffle,
            iterator_valid=BatchIterator,
            iterator_valid__batch_size=PREDICT_BATCH_SIZE["cpu" if device == "cpu" else "cuda"],
            dataset=TensorDataset,
            train_split=None,
            device=device,
            verbose=self.verbose,
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
        )

    def _net_callbacks(self, early_stopping, incremental):
        callbacks = [("non_finite", StopOnNonFinite(self.learning_rate_init))]
        if self.group_lasso > 0:
            callbacks.append(("group_lasso", GroupLassoProximal(self.group_lasso)))
        if self.task_balancing != "fixed":
            callbacks.append(("task_balancing", TaskBalancing()))
        if early_stopping:
            callbacks.append(("valid_score", ValidationScore()))
            monitor, lower_is_better = "valid_score", False
        else:
            monitor, lower_is_better = "train_loss", True
        if not incremental:
            callbacks.append(
                (
                    "stopping",
                    EarlyStopping(
                        monitor=monitor,
                        lower_is_better=lower_is_better,
                        patience=self.n_iter_no_change,
                        threshold=self.tol,
                        threshold_mode="abs",
                        load_best=early_stopping,
                        sink=_silent,
                    ),
                )
            )
        if self.progress_bar:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks + copy.deepcopy(list(self.callbacks or []))

    # -- predict ----------------------------------------------------------------

    def _softmax(self, outputs):
        """Class probabilities in place of logits, one softmax per block of
        same-sized classification tasks."""
        for kind, first, stop, column, size in self.net_.criterion_.groups:
            if kind == CLASSIFICATION:
                block = outputs[:, column : column + (stop - first) * size]
                shape = (-1, stop - first, size)
                block.copy_(block.reshape(shape).softmax(dim=2).reshape(block.shape))
        return outputs

    def _mc_outputs(self, dataset):
        """Mean and standard deviation over ``mc_samples`` stochastic passes.

        The masks are drawn from a torch generator seeded from
        ``random_state``, inside ``fork_rng`` so torch's global state is left
        as it was.
        """
        net = self.net_
        device = net.device
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        max_rows = MC_MAX_ROWS["cpu" if device == "cpu" else "cuda"]
        means, stds = [], []
        net.check_is_fitted()
        net._set_training(False)
        with torch.random.fork_rng(devices=[] if device == "cpu" else None):
            torch.manual_seed(seed)
            for Xi, _ in net.get_iterator(dataset, training=False):
                with torch.inference_mode():
                    mean, std = net.module_.sample(
                        Xi, self.mc_samples, self._softmax, max_rows=max_rows
                    )
                means.append(mean)
                stds.append(std)
        return torch.cat(means), torch.cat(stds)

    def _task_outputs(self, X, auxiliary=False, return_std=False):
        """Per task: class probabilities, or standardised values ``(n, 1)``.

        The tasks of ``y``, or with ``auxiliary=True`` the auxiliary tasks.
        With ``mc_samples > 0`` the means over that many stochastic passes;
        ``return_std=True`` (which needs them) also returns their standard
        deviations.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        net = self.net_
        dataset = self._dataset(X, device=net.device)
        if self.mc_samples > 0:
            outputs, std = self._mc_outputs(dataset)
        else:
            outputs = self._softmax(net.forward(dataset, device=net.device))
        tasks = (
            slice(self._n_main_tasks, None) if auxiliary else slice(self._n_main_tasks)
        )
        slices = net.criterion_.slices[tasks]
        outputs = outputs.cpu().numpy()
        means = [np.ascontiguousarray(outputs[:, cols]) for cols in slices]
        if not return_std:
            return means
        std = std.cpu().numpy()
        return means, [np.ascontiguousarray(std[:, cols]) for cols in slices]

    def _score_tasks(self, X, y, sample_weight):
        """Per-task scores of ``predict(X)`` against ``y``, errors naming y."""
        predicted = self.predict(X)
        kinds = [spec.kind for spec in self.tasks_[: self._n_main_tasks]]
        try:
            return per_task_scores(y, predicted, kinds, sample_weight)
        except (ValueError, TypeError) as error:
            if re.search(r"\b(y|sample_weight)\b", str(error)):
                raise
            raise type(error)(
                f"y must hold the true targets of the {self.n_outputs_} task(s) the "
                f"model predicts, one row per sample of X; {error}"
            ) from error

    def _predict(self, X, return_std=False):
        """``predict`` of every estimator: labels or values of the tasks of y.

        One column per task (1-D for a 1-D ``y``), in the tasks' common dtype
        or ``object`` when they differ; with ``return_std``, also the
        standard deviation of each value over the Monte-Carlo passes (NaN for
        classification tasks).
        """
        check_is_fitted(self)
        tasks = self.tasks_[: self._n_main_tasks]
        if not return_std:
            values = [spec.decode(out) for spec, out in zip(tasks, self._task_outputs(X))]
            return values[0] if self._y_1d else _stack_columns(values)
        if self.mc_samples == 0:
            raise ValueError(
                "predict(return_std=True) needs Monte-Carlo dropout: set "
                "mc_samples to a positive number of stochastic passes (e.g. 100) "
                f"and a dropout rate above 0; got mc_samples={self.mc_samples}."
            )
        means, stds = self._task_outputs(X, return_std=True)
        values = [spec.decode(mean) for spec, mean in zip(tasks, means)]
        spreads = [
            std[:, 0].astype(np.float64) * spec.scale
            if spec.kind == REGRESSION
            else np.full(len(std), np.nan)
            for spec, std in zip(tasks, stds)
        ]
        if self._y_1d:
            return values[0], spreads[0]
        return _stack_columns(values), np.column_stack(spreads)

    @property
    def feature_importances_(self):
        """Norm of each input feature's weights in the first layer.

        With ``group_lasso > 0`` the features the model does not use have an
        importance of exactly zero; :class:`~sklearn.feature_selection.
        SelectFromModel` reads this attribute.
        """
        check_is_fitted(self)
        return self.net_.module_.input_norms().cpu().numpy().astype(np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
