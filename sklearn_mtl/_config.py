"""Hyperparameters resolved once into a frozen, normalised configuration.

The estimators store their constructor arguments as given (scikit-learn's
rule). :func:`resolve_config` reads them once, checks what the parameter
constraints cannot, and returns a :class:`NetConfig` whose values need no
more interpretation: one dropout rate (or ``"concrete"``) per trunk layer,
tuples of layer sizes, a batch size, a device. ``fit`` and ``load`` both
build the network from it.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator

from ._balancing import BALANCERS
from ._sparse import LazyAdam, SparseAdagrad

SOLVERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    # MLPClassifier's SGD defaults: momentum 0.9 with Nesterov's correction.
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
}
# Rows per forward pass in prediction and validation: cache-sized on a CPU,
# large enough on a GPU that kernel launches do not dominate.
PREDICT_BATCH_SIZE = {"cpu": 4096, "cuda": 65536}
# Rows per forward pass of Monte-Carlo prediction (a batch times its copies).
MC_MAX_ROWS = {"cpu": 16384, "cuda": 2**20}
# Solvers with a lazy step for a row-sparse gradient, and their arguments:
# LazyAdam (SparseAdam's step on gathered rows) steps, and decays the moments
# of, only the rows a batch holds, an approximation of Adam; Adagrad's sparse
# path in torch is exact (an untouched row has a zero gradient, which
# Adagrad's step leaves in place).
SPARSE_SOLVERS = {
    "adam": (LazyAdam, {}),
    "adagrad": (SparseAdagrad, {"foreach": False}),
}
# Learning rate of the concrete dropout logits and of the learned task weights
# (log-variances, GradNorm weights), relative to learning_rate_init: one
# number per layer or task moves too little at the weights' rate to settle
# within a few hundred steps.
LEARNED_LR_FACTOR = 10.0
# What "auto" means for batch_size, as in MLPClassifier: min(200, n_samples)
# (a batch larger than the data is the whole data).
AUTO_BATCH_SIZE = 200
# early_stopping="auto" holds out a validation set in fit from this many rows
# (20 validation rows at the default validation_fraction of 0.1).
AUTO_EARLY_STOPPING_ROWS = 200

NO_EXPERT_LAYERS = (
    "architecture='mmoe' needs at least one hidden layer per expert; got "
    "hidden_layer_sizes=(). Give hidden_layer_sizes, or use architecture='shared'."
)


@dataclass(frozen=True)
class NetConfig:
    """Everything the network is built and trained with, normalised.

    Attributes
    ----------
    hidden_layer_sizes, head_layer_sizes : tuple of int
    dropout : tuple of (float or "concrete")
        One entry per trunk layer.
    head_dropout : float
        Rate of every head block: the last trunk rate, 0 with concrete
        dropout or no trunk.
    architecture, activation, balancing, solver, device : str
    n_experts : int
        1 unless ``architecture="mmoe"``.
    batch_norm, shuffle : bool
    learning_rate, alpha, l1_ratio, group_lasso : float
    adversarial_epsilon : float
        Size of the fast-gradient-sign perturbation trained on; 0 is off.
    trunk_learning_rate : float
        Learning rate of the trunk's parameters (``learning_rate`` unless
        ``trunk_learning_rate`` was given; 0 freezes the trunk).
    batch_size : int
    sparse_input : bool
        Whether the net reads sparse input: it was fitted on a scipy sparse
        ``X`` (see ``_sparse``).
    """

    hidden_layer_sizes: tuple
    dropout: tuple
    head_layer_sizes: tuple
    head_dropout: float
    architecture: str
    n_experts: int
    activation: str
    batch_norm: bool
    balancing: str
    solver: str
    learning_rate: float
    batch_size: int
    shuffle: bool
    device: str
    alpha: float
    l1_ratio: float
    group_lasso: float
    trunk_learning_rate: float
    adversarial_epsilon: float = 0.0
    sparse_input: bool = False

    @property
    def sparse_gradient(self):
        """Whether the input layers' weights get row-sparse gradients and a
        lazy step: sparse input, a solver of ``SPARSE_SOLVERS``, and no
        balancing method that reads the trunk's gradients as dense tensors."""
        return (
            self.sparse_input
            and self.solver in SPARSE_SOLVERS
            and not BALANCERS[self.balancing].needs_trunk
        )

    def sparse_optimizer(self):
        """The optimizer class and keyword arguments of the row-sparse
        weights (None without them): the solver's lazy step, with the
        trunk's weight at ``trunk_learning_rate``."""
        if not self.sparse_gradient:
            return None
        cls, kwargs = SPARSE_SOLVERS[self.solver]
        groups = [("trunk.*", {"lr": self.trunk_learning_rate})]
        return cls, {**kwargs, "param_groups": groups if self.hidden_layer_sizes else []}

    @property
    def frozen_trunk(self):
        """Whether the trunk (weights and batch-norm statistics) stays fixed."""
        return self.trunk_learning_rate == 0 and bool(self.hidden_layer_sizes)

    @property
    def trunk_shape(self):
        """What builds the trunk, as the module reports it (``trunk_shape``)."""
        return {
            "hidden_layer_sizes": self.hidden_layer_sizes,
            "architecture": self.architecture,
            "n_experts": self.n_experts,
            "activation": self.activation,
            "batch_norm": self.batch_norm,
        }

    @property
    def concrete(self):
        return "concrete" in self.dropout

    @property
    def predict_batch_size(self):
        return PREDICT_BATCH_SIZE["cpu" if self.device == "cpu" else "cuda"]

    @property
    def mc_max_rows(self):
        return MC_MAX_ROWS["cpu" if self.device == "cpu" else "cuda"]

    def optimizer(self):
        """The torch optimizer class and its keyword arguments.

        A fused step updates all parameters in one kernel instead of a
        handful of ops per parameter; torch has it for Adam, AdamW and SGD
        on CPU and CUDA and for Adagrad on CPU. RMSprop gets the
        multi-tensor (foreach) step. Learned scalars (concrete dropout
        logits, task-balancing weights) train at ``LEARNED_LR_FACTOR`` times
        the rate. The trunk's other parameters (the experts' for MMoE) form
        the last group, at ``trunk_learning_rate``: skorch gives each
        parameter the first group whose pattern matches its name. Where the
        trunk's rate is the others' (the default), the trunk joins the
        default group: each group is a step of its own, and on small batches
        the step's cost is mostly its per-group work. A warm start that
        changes the trunk's rate splits it off (``retune``).
        """
        cls, defaults = SOLVERS[self.solver]
        kwargs = dict(defaults)
        if self.solver in ("adam", "adamw", "sgd") or (
            self.solver == "adagrad" and self.device == "cpu"
        ):
            kwargs["fused"] = True
        else:
            kwargs["foreach"] = True
        learned = ["balancer.*"] + (["trunk.*.logit"] if self.concrete else [])
        kwargs["param_groups"] = [
            (pattern, {"lr": LEARNED_LR_FACTOR * self.learning_rate})
            for pattern in learned
        ]
        if self.hidden_layer_sizes and self.trunk_learning_rate != self.learning_rate:
            kwargs["param_groups"].append(("trunk.*", {"lr": self.trunk_learning_rate}))
        return cls, kwargs


def _positive_int_tuple(value, name):
    if not np.size(value):
        return ()
    sizes = np.atleast_1d(np.asarray(value, dtype=object))
    if sizes.ndim != 1 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(
            f"{name} must be a sequence of positive integers; got {value!r}."
        )
    return tuple(int(s) for s in sizes)


def _dropout_rates(dropout, n_layers):
    """One rate (or ``"concrete"``) per trunk layer, from the ``dropout`` parameter."""
    if isinstance(dropout, str):  # "concrete", checked by the constraints
        return (dropout,) * n_layers
    try:
        rates = np.atleast_1d(np.asarray(dropout, dtype=float))
    except (TypeError, ValueError):
        rates = np.array([np.nan])  # reported below
    if rates.ndim != 1 or not np.all((rates >= 0) & (rates < 1)):
        raise ValueError(
            f"dropout must be a float in [0, 1), one such rate per trunk layer, "
            f"or 'concrete'; got {dropout!r}."
        )
    if np.ndim(dropout) == 0:
        rates = np.repeat(rates, n_layers)
    elif len(rates) != n_layers:
        raise ValueError(
            f"dropout must have one rate per trunk layer (hidden_layer_sizes has "
            f"{n_layers}); got {len(rates)} rates."
        )
    return tuple(float(r) for r in rates)


def resolve_device(device):
    """``"cpu"`` or ``"cuda"`` from the ``device`` parameter."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch finds no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return device


def pretrained_trunk(pretrained, n_features, feature_names=None):
    """The trunk shape and a copy of the trunk state of ``pretrained``.

    ``pretrained`` is a fitted sklearn_mtl estimator or a
    ``FrozenEstimator`` of one; ``n_features`` (and ``feature_names``, when
    both models saw names) must be what it was fitted on. Returns
    ``(trunk_shape, trunk_state)`` (see ``MultiTaskModule.trunk_state``),
    the state copied so that nothing trained later shares its memory.
    """
    # The estimators import this module: import them here, when needed.
    from ._base import BaseMultiTaskNet

    model = pretrained
    while isinstance(model, FrozenEstimator):
        model = model.estimator
    if not isinstance(model, BaseMultiTaskNet):
        raise TypeError(
            f"pretrained must be a fitted MultiTaskNetClassifier, "
            f"MultiTaskNetRegressor or MultiTaskNet (or a FrozenEstimator of "
            f"one), whose trunk initialises this model's; got a "
            f"{type(model).__name__}."
        )
    if not hasattr(model, "net_"):
        raise ValueError(
            f"pretrained is an unfitted {type(model).__name__}; fit it first "
            f"(its trunk initialises this model's). A search or clone over "
            f"several pretrained models clones each, which drops its fit: wrap "
            f"each in sklearn.frozen.FrozenEstimator."
        )
    if model.n_features_in_ != n_features:
        raise ValueError(
            f"pretrained was fitted on {model.n_features_in_} features but X has "
            f"{n_features}; the pretrained trunk reads the same features as "
            f"this model."
        )
    names = getattr(model, "feature_names_in_", None)
    if names is not None and feature_names is not None and not np.array_equal(
        names, feature_names
    ):
        raise ValueError(
            f"pretrained was fitted on features named {list(names)} but X has "
            f"{list(feature_names)}; pass the columns in the order the "
            f"pretrained model saw them."
        )
    module = model.net_.module_
    if not module.representation_width:
        raise ValueError(
            "pretrained has no trunk (it was fitted with hidden_layer_sizes=()); "
            "nothing can be transferred from it."
        )
    return dict(module.trunk_shape), module.trunk_state()


def resolve_early_stopping(early_stopping, n_samples, incremental):
    """Whether a fit holds out a validation set and stops on its score.

    ``"auto"`` means yes in ``fit`` on at least ``AUTO_EARLY_STOPPING_ROWS``
    rows (those with a positive weight), no in ``partial_fit`` and on fewer
    rows; a bool means what it says (``partial_fit`` refuses ``True``
    before this is asked).
    """
    if early_stopping == "auto":
        return not incremental and n_samples >= AUTO_EARLY_STOPPING_ROWS
    return bool(early_stopping)


def resolve_config(estimator, device=None, trunk=None):
    """The :class:`NetConfig` of an estimator's hyperparameters.

    ``device`` overrides the estimator's own (``load`` does). ``trunk``, a
    trunk shape (``hidden_layer_sizes``, ``architecture``, ``n_experts``,
    ``activation``, ``batch_norm``: a pretrained model's, or the fitted
    one's), replaces the estimator's own. Raises the errors that the
    parameter constraints cannot express: layer sizes, per-layer dropout
    rates, MMoE without layers, a balancing method that needs a trunk
    without one, group lasso on a frozen trunk.
    """
    shape = {
        "hidden_layer_sizes": estimator.hidden_layer_sizes,
        "architecture": estimator.architecture,
        "n_experts": estimator.n_experts,
        "activation": estimator.activation,
        "batch_norm": estimator.batch_norm,
        **(trunk or {}),
    }
    sizes = _positive_int_tuple(shape["hidden_layer_sizes"], "hidden_layer_sizes")
    head_sizes = _positive_int_tuple(estimator.head_layer_sizes, "head_layer_sizes")
    dropout = _dropout_rates(estimator.dropout, len(sizes))
    mmoe = shape["architecture"] == "mmoe"
    if mmoe and not sizes:
        raise ValueError(NO_EXPERT_LAYERS)
    balancing = estimator.task_balancing
    if BALANCERS[balancing].needs_trunk and not sizes:
        raise ValueError(
            f"task_balancing={balancing!r} balances the tasks' gradients on the "
            f"shared trunk, but hidden_layer_sizes is empty (no trunk); give "
            f"hidden_layer_sizes at least one layer or use another task_balancing."
        )
    concrete = isinstance(estimator.dropout, str)
    batch_size = estimator.batch_size
    learning_rate = float(estimator.learning_rate_init)
    trunk_lr = estimator.trunk_learning_rate
    trunk_lr = learning_rate if trunk_lr is None else float(trunk_lr)
    if trunk_lr == 0 and sizes and estimator.group_lasso > 0:
        raise ValueError(
            f"group_lasso={estimator.group_lasso} selects features on the trunk's "
            f"first layer, but trunk_learning_rate=0.0 freezes the trunk; set "
            f"group_lasso=0.0, or give the trunk a positive trunk_learning_rate."
        )
    return NetConfig(
        hidden_layer_sizes=sizes,
        dropout=dropout,
        head_layer_sizes=head_sizes,
        head_dropout=dropout[-1] if dropout and not concrete else 0.0,
        architecture=shape["architecture"],
        n_experts=int(shape["n_experts"]) if mmoe else 1,
        activation=shape["activation"],
        batch_norm=bool(shape["batch_norm"]),
        balancing=balancing,
        solver=estimator.solver,
        learning_rate=learning_rate,
        batch_size=AUTO_BATCH_SIZE if batch_size == "auto" else int(batch_size),
        shuffle=bool(estimator.shuffle),
        device=resolve_device(estimator.device if device is None else device),
        alpha=float(estimator.alpha),
        l1_ratio=float(estimator.l1_ratio),
        group_lasso=float(estimator.group_lasso),
        adversarial_epsilon=float(estimator.adversarial_epsilon),
        trunk_learning_rate=trunk_lr,
        # Set at fit from X; files saved before it existed load as dense nets.
        sparse_input=bool(getattr(estimator, "_sparse_input", False)),
    )


def resolve_task_weights(task_weights, n_tasks, columns="column of y"):
    """The ``(n_tasks,)`` float32 static task weights; ``columns`` says what a
    task is, for the message."""
    if task_weights is None:
        return np.ones(n_tasks, dtype=np.float32)
    weights = np.asarray(task_weights, dtype=np.float64).ravel()
    if len(weights) != n_tasks:
        raise ValueError(
            f"task_weights must have one entry per task ({columns}); "
            f"got {len(weights)} entries for {n_tasks} tasks."
        )
    if not np.all(np.isfinite(weights) & (weights >= 0)):
        raise ValueError(
            f"task_weights must be finite and non-negative; got {task_weights!r}."
        )
    return weights.astype(np.float32)
