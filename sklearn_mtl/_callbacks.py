"""skorch callbacks of a fit: validation score, balancing records, group lasso,
divergence, stopping; and the list a fit trains with."""

import copy

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, PassthroughScoring, ProgressBar

from ._sparse import feature_major
from ._tasks import CLASSIFICATION
from .metrics import mean_score


def _silent(*args, **kwargs):
    """A skorch ``sink`` that prints nothing."""


class ValidationScore(Callback):
    """Record ``valid_score``, the estimator's ``score`` on the validation rows.

    Each task's score is what :func:`~sklearn_mtl.metrics.per_task_scores`
    (the function ``score`` uses) gives with the validation rows' loss
    weights as sample weights: their sample weights times their class
    weights, zero for a missing label (:class:`TaskScores`, the
    same figures without scikit-learn's per-call validation, which cost more
    than the epoch itself on a few hundred rows). It is computed on the
    encoded targets (class indices, standardised values), which leaves
    accuracy and R² unchanged. ``valid_score`` is their mean over the tasks
    that have a score, as in ``score``; ``valid_score_task{t}`` each task's.
    """

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        # The epoch's validation pass has computed the outputs; what depends
        # on the validation rows only is computed at the first epoch.
        layout = net.layout
        if getattr(self, "scored_rows_", None) is not dataset_valid:
            self.scorer_ = TaskScores(
                dataset_valid.targets.cpu().numpy(),
                np.array([kind == CLASSIFICATION for kind in layout.kinds]),
                dataset_valid.weights.cpu().numpy(),
            )
            self.scored_rows_ = dataset_valid
        scores = self.scorer_(layout.encoded_predictions(net.valid_outputs_.cpu().numpy()))
        epoch = net.history[-1]
        epoch["valid_score"] = mean_score(scores)
        epoch.update({f"valid_score_task{t}": float(s) for t, s in enumerate(scores)})

    def on_train_end(self, net, **kwargs):
        self.scorer_ = self.scored_rows_ = None  # copies of the validation rows


class TaskScores:
    """Each column's weighted accuracy (where ``is_classification``) or R²
    of predictions of ``targets``, over its entries of positive weight;
    ``NaN`` where none has one. What depends on the targets and weights
    alone is computed once: ``TaskScores(...)(predicted)`` scores
    ``predicted``.

    Equal to :func:`~sklearn_mtl.metrics.per_task_scores` with ``weights`` as
    per-task sample weights and the zero-weight entries left out, R² of a
    constant column included (1 for a perfect prediction, else 0, as
    ``r2_score``; a column is constant when its labelled targets are all
    equal, whatever the rounding of their weighted spread).
    """

    def __init__(self, targets, is_classification, weights):
        self.labels = weights > 0
        self.weights = np.where(self.labels, weights, 0.0).astype(float)
        total = self.weights.sum(axis=0)
        # r2_score is not defined on fewer than two entries: NaN, as there.
        enough = is_classification | (self.labels.sum(axis=0) >= 2)
        self.labelled = (total > 0) & enough
        self.total = np.where(self.labelled, total, 1.0)
        self.targets = np.where(self.labels, targets, 0.0).astype(float)
        mean = (self.weights * self.targets).sum(axis=0) / self.total
        spread = (self.weights * (self.targets - mean) ** 2).sum(axis=0)
        # A constant column is one whose labelled targets are all equal
        # (its rounded spread need not be exactly 0).
        lowest = np.where(self.labels, targets, np.inf).min(axis=0, initial=np.inf)
        highest = np.where(self.labels, targets, -np.inf).max(axis=0, initial=-np.inf)
        self.has_spread = highest > lowest
        self.spread = np.where(self.has_spread, spread, 1.0)  # no division by 0
        self.is_classification = is_classification
        # The columns of each kind: all of them (a view, no copy) when
        # every task is of that kind.
        self.accuracy_columns = _columns(is_classification)
        self.r2_columns = _columns(~is_classification)

    def __call__(self, predicted):
        predicted = np.where(self.labels, predicted, 0.0)  # an unlabelled inf adds nothing
        scores = np.empty(len(self.total))
        columns = self.accuracy_columns
        if columns is not None:
            hits = self.weights[:, columns] * (
                self.targets[:, columns] == predicted[:, columns]
            )
            scores[columns] = hits.sum(axis=0) / self.total[columns]
        columns = self.r2_columns
        if columns is not None:
            residual = self.weights[:, columns] * (
                self.targets[:, columns] - predicted[:, columns]
            ) ** 2
            residual = residual.sum(axis=0)
            scores[columns] = np.where(
                self.has_spread[columns], 1 - residual / self.spread[columns],
                residual <= 0,
            )
        return np.where(self.labelled, scores, np.nan)


def _columns(selected):
    """An index of the ``selected`` columns: ``slice(None)`` for all of them,
    None for none."""
    if selected.all():
        return slice(None)
    return np.flatnonzero(selected) if selected.any() else None


class EpochLoss(PassthroughScoring):
    """skorch's ``PassthroughScoring`` of ``train_loss`` / ``valid_loss``
    (the batch losses' mean weighted by batch size, and whether it is the
    best so far) from the mean the epoch's loop computed as it recorded the
    batches (``net.epoch_losses_``), rather than read back from the
    history, whose indexed reads copy the epoch's batch records: on a few
    hundred rows those reads cost more than a step."""

    def on_epoch_end(self, net, **kwargs):
        score = net.epoch_losses_.get(self.name)
        if score is None:  # no batch of this phase (no validation data)
            return
        is_best = self._is_best_score(score)
        if is_best:
            self.best_score_ = score
        epoch = net.history[-1]
        epoch[self.name] = score
        if is_best is not None:
            epoch[self.name + "_best"] = bool(is_best)


class BalancingRecords(Callback):
    """Call the balancer's epoch hook; record each task's loss weight.

    Records ``task_weight{t}``, each task's loss weight at the end of the
    epoch, for every method whose weights change.
    """

    def on_epoch_begin(self, net, **kwargs):
        net.criterion_.balancer.on_epoch_begin(net.history)

    def on_epoch_end(self, net, **kwargs):
        weights = net.criterion_.balance().tolist()
        net.history[-1].update({f"task_weight{t}": w for t, w in enumerate(weights)})


class GroupLassoProximal(Callback):
    """Proximal step of the group-lasso penalty on the input features.

    After each optimiser step, the weights of each input feature in the
    first layer (one column of its ``Linear``) are shrunk by the block
    soft-threshold ``W[:, j] *= max(0, 1 - lr * strength / |W[:, j]|)``, which
    sets the weights of a feature the loss does not need exactly to zero
    (the proximal gradient method for ``strength * sum_j |W[:, j]|_2``).
    The step is dense: it shrinks every feature's weights after every
    batch, also on sparse input (``n_features * width`` per step).
    """

    def __init__(self, strength):
        self.strength = strength

    def on_train_begin(self, net, **kwargs):
        # The optimiser group of the first layer: with concrete dropout the
        # rate logits have a group of their own, with another learning rate;
        # on sparse input the weight may be in ``optimizer_sparse_``.
        weight = net.module_.input_layers[0].weight
        self.group_ = next(
            group
            for optimizer in net.optimizers()
            for group in optimizer.param_groups
            if any(param is weight for param in group["params"])
        )

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        group = self.group_
        layers = net.module_.input_layers
        with torch.no_grad():
            threshold = group["lr"] * self.strength / self._scale(net, group, layers)
            norms = net.module_.input_norms()
            shrink = (1 - threshold / norms.clamp_min(1e-12)).clamp_min_(0)
            for layer in layers:
                feature_major(layer).mul_(shrink.unsqueeze(1))

    @staticmethod
    def _scale(net, group, layers):
        """Per feature, the optimiser's gradient scale (1 for SGD).

        Adaptive solvers divide the gradient by a running root mean square;
        the threshold is divided by the same (averaged over the feature's
        weights) so that the penalty weighs against the loss as it would
        under plain SGD, rather than being swamped by the normalised step.
        """
        squares = []
        for layer in layers:
            state = next(
                (o.state[layer.weight] for o in net.optimizers() if layer.weight in o.state),
                {},
            )
            if "exp_avg_sq" in state:  # Adam, AdamW, SparseAdam: bias-corrected
                # ``step`` stays a tensor: no device sync per batch.
                correction = 1 - group["betas"][1] ** state["step"]
                square = state["exp_avg_sq"] / correction
            elif "square_avg" in state:  # RMSprop
                square = state["square_avg"]
            elif "sum" in state:  # Adagrad
                square = state["sum"]
            else:
                continue
            squares.append(feature_major(layer, square))
        if not squares:
            return 1.0
        mean_square = torch.cat(squares, dim=1).mean(dim=1)
        return mean_square.sqrt_().add_(group.get("eps", 1e-8))


class StopWhenNoImprovement(EarlyStopping):
    """skorch's ``EarlyStopping`` with ``MLPClassifier``'s rule.

    An epoch misses when its score is not better than the best so far by
    ``threshold`` (``tol``); the best moves at every improvement, however
    small, and so do the kept weights (with ``load_best``, restored at the
    end of training by skorch's ``on_train_end``). Training stops after
    ``patience + 1`` misses in a row: MLP's ``_no_improvement_count >
    n_iter_no_change``. (skorch's own rule moves its reference only on an
    improvement by ``threshold``, so a score creeping up by less than that
    an epoch resets the count every few epochs.) The best weights are a
    clone of each tensor of the state dict, not its ``deepcopy`` (about 16
    against 100 µs for a small net, paid at most improvements of a short
    fit).
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.best_score_ = np.inf if self.lower_is_better else -np.inf

    def on_epoch_end(self, net, **kwargs):
        epoch = net.history[-1]  # one lookup, not skorch's indexing
        score = epoch[self.monitor]
        sign = -1.0 if self.lower_is_better else 1.0  # higher is better below
        if sign * score < sign * self.best_score_ + self.threshold:
            self.misses_ += 1
        else:
            self.misses_ = 0
        if sign * score > sign * self.best_score_:
            self.best_score_ = score
            self.best_epoch_ = epoch["epoch"]
            if self.load_best:
                state = net.module_.state_dict()  # keeps its ``_metadata``
                for name, tensor in state.items():
                    state[name] = tensor.detach().clone()
                self.best_model_weights_ = state
        if self.stopped:
            self._sink(
                f"Stopping since {self.monitor} has not improved by {self.threshold} "
                f"in the last {self.misses_} epochs.",
                verbose=net.verbose,
            )
            raise KeyboardInterrupt

    @property
    def stopped(self):
        """Whether the rule has ended training."""
        return self.misses_ > self.patience


class StopOnNonFinite(Callback):
    """Stop a diverging fit with an error rather than return a broken model."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1]["train_loss"]  # one lookup, not skorch's indexing
        if not np.isfinite(loss):
            raise ValueError(
                f"Training diverged: the training loss is {loss} at epoch "
                f"{len(net.history)}. Lower learning_rate_init (currently "
                f"{self.learning_rate}), scale the features (e.g. StandardScaler), "
                f"or add batch_norm=True."
            )


_PER_BATCH = ("on_batch_begin", "on_batch_end", "on_grad_computed")


def batch_listeners(net):
    """Whether any callback of ``net`` (or a subclass of the net) has its own
    per-batch method: only then are the per-batch notifications sent."""
    overridden = any(
        getattr(type(net), name) is not getattr(NeuralNet, name) for name in _PER_BATCH
    )
    return overridden or any(
        getattr(type(cb), name) is not getattr(Callback, name)
        for _, cb in net.callbacks_
        for name in _PER_BATCH
    )


def training_callbacks(
    config,
    *,
    dynamic_balancing,
    early_stopping,
    stop_rule,
    progress_bar,
    user_callbacks,
):
    """The named callbacks of one call of ``fit`` or ``partial_fit``.

    ``stop_rule`` is ``(n_iter_no_change, tol)``, or None for no stopping
    rule (``partial_fit``): with ``early_stopping`` the validation score
    must improve by ``tol``, else the training loss must fall by ``tol``,
    within ``n_iter_no_change`` epochs; with ``early_stopping`` the best
    epoch's weights are restored. User callbacks come last, deep-copied so
    that the estimator's own are never fitted.
    """
    callbacks = [("non_finite", StopOnNonFinite(config.learning_rate))]
    if config.group_lasso > 0:
        callbacks.append(("group_lasso", GroupLassoProximal(config.group_lasso)))
    if dynamic_balancing:
        callbacks.append(("task_balancing", BalancingRecords()))
    if early_stopping:
        callbacks.append(("valid_score", ValidationScore()))
    if stop_rule is not None:
        patience, tol = stop_rule
        callbacks.append(
            (
                "stopping",
                StopWhenNoImprovement(
                    monitor="valid_score" if early_stopping else "train_loss",
                    lower_is_better=not early_stopping,
                    patience=patience,
                    threshold=tol,
                    threshold_mode="abs",
                    load_best=early_stopping,
                    sink=_silent,
                ),
            )
        )
    if progress_bar:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks + copy.deepcopy(list(user_callbacks or []))
