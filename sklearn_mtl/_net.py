"""The private skorch ``NeuralNet`` that trains a :class:`MultiTaskModule`.

Batches are slices of tensors built once per fit (dense data lives on the
training device; sparse data stays a scipy matrix and is densified one batch
at a time), so no per-row ``__getitem__`` runs in the training loop.
"""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import TeeGenerator, to_device
from torch import nn

from ._balancing import dwa_weights, gradnorm_gradient, project_conflicts, task_gradients
from ._tasks import CLASSIFICATION


class TensorDataset(torch.utils.data.Dataset):
    """Rows of ``X`` with their encoded targets and per-task loss weights.

    ``X`` is a float32 tensor (already on ``device``) or a scipy CSR matrix.
    ``targets`` holds class indices or standardised values (0 where missing)
    and ``weights`` the loss weight of each entry (0 where missing); both are
    views of one ``(n, 2 * n_tasks)`` tensor, so a batch takes one gather.
    """

    def __init__(self, X, targets=None, weights=None, device="cpu"):
        self.X = X
        self.device = device
        self.labels = None
        if targets is not None:
            self.n_tasks = targets.shape[1]
            self.labels = torch.cat([targets, weights], dim=1)

    @property
    def targets(self):
        return None if self.labels is None else self.labels[:, : self.n_tasks]

    @property
    def weights(self):
        return None if self.labels is None else self.labels[:, self.n_tasks :]

    def __len__(self):
        return self.X.shape[0]

    def batch(self, index):
        if torch.is_tensor(self.X):
            Xb = self.X[index]
        else:
            rows = index.cpu().numpy() if torch.is_tensor(index) else index
            Xb = torch.from_numpy(self.X[rows].toarray()).to(self.device)
        if self.labels is None:
            return Xb, None
        labels = self.labels[index]
        return Xb, (labels[:, : self.n_tasks], labels[:, self.n_tasks :])


class BatchIterator:
    """Yield batches of a :class:`TensorDataset` by slicing its tensors.

    The order is drawn with ``torch.randperm`` from torch's global generator,
    which the estimators seed from ``random_state``.
    """

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        n, size = len(self.dataset), self.batch_size
        if self.shuffle:
            device = self.dataset.X.device if torch.is_tensor(self.dataset.X) else "cpu"
            order = torch.randperm(n, device=device)
            for start in range(0, n, size):
                yield self.dataset.batch(order[start : start + size])
        else:
            for start in range(0, n, size):
                yield self.dataset.batch(slice(start, start + size))


class MultiTaskLoss(nn.Module):
    """Weighted sum over tasks of each task's weighted mean loss.

    Each task's loss (cross-entropy or squared error) is averaged over the
    batch's entries with their weights (zero for missing labels); a task with
    no labelled entry in the batch contributes zero. Consecutive tasks of the
    same kind and output size are computed together as one ``(n, tasks,
    outputs)`` block, so four binary tasks cost one log-softmax, not four.

    The tasks' losses are weighed by the static ``task_weights`` times the
    weights of the ``balancing`` method (see :mod:`._balancing`): learned
    log-variances for ``"uncertainty"``, learned weights for ``"gradnorm"``
    (moved by the net's training step, not by this loss), weights set each
    epoch for ``"dwa"``, and ones otherwise.
    """

    def __init__(self, kinds, output_sizes, task_weights, balancing="fixed"):
        super().__init__()
        self.kinds = list(kinds)
        self.balancing = balancing
        bounds = np.cumsum([0, *output_sizes])
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.groups = []  # (kind, first task, last task + 1, first column, outputs)
        for t, (kind, size) in enumerate(zip(self.kinds, output_sizes)):
            last = self.groups[-1] if self.groups else None
            if last and last[0] == kind and last[4] == size and last[2] == t:
                self.groups[-1] = (kind, last[1], t + 1, last[3], size)
            else:
                self.groups.append((kind, t, t + 1, int(bounds[t]), int(size)))
        self.register_buffer(
            "task_weights", torch.as_tensor(task_weights, dtype=torch.float32)
        )
        ones = torch.ones(len(self.kinds))
        if balancing == "uncertainty":
            self.log_variances = nn.Parameter(torch.zeros(len(self.kinds)))
        elif balancing == "gradnorm":
            self.loss_weights = nn.Parameter(ones)
            # Each task's first loss (NaN until the task is first labelled),
            # saved with the model so that training can go on after load.
            self.register_buffer("initial_losses", torch.full_like(ones, float("nan")))
        else:
            # Set each epoch by "dwa", ones otherwise: not part of a saved
            # model (DWA recomputes them from the history when training goes on).
            self.register_buffer("loss_weights", ones, persistent=False)

    def balance(self):
        """The ``(n_tasks,)`` weights of the tasks' losses, now."""
        if self.balancing == "uncertainty":
            return self.task_weights * torch.exp(-self.log_variances.detach())
        return self.task_weights * self.loss_weights.detach()

    def per_sample(self, y_pred, targets):
        """The ``(n_samples, n_tasks)`` tensor of unweighted losses."""
        losses = []
        for kind, first, stop, column, size in self.groups:
            n_tasks = stop - first
            block = y_pred[:, column : column + n_tasks * size]
            truth = targets[:, first:stop]
            if kind == CLASSIFICATION:
                log_proba = block.reshape(-1, n_tasks, size).log_softmax(dim=2)
                losses.append(
                    -log_proba.gather(2, truth.long().unsqueeze(2)).squeeze(2)
                )
            else:
                losses.append((block - truth).square())
        return losses[0] if len(losses) == 1 else torch.cat(losses, dim=1)

    def per_task(self, y_pred, targets, weights):
        """The ``(n_tasks,)`` tensor of weighted mean losses."""
        weighted = (self.per_sample(y_pred, targets) * weights).sum(dim=0)
        total = weights.sum(dim=0)
        # Kept on the device for the per-task epoch losses, which the net
        # reads back once per epoch.
        self.last_sums_ = torch.stack([weighted.detach(), total])
        return weighted / total.clamp_min(1e-12)

    def forward(self, y_pred, targets, weights):
        losses = self.per_task(y_pred, targets, weights)
        self.last_losses_ = losses  # with their graph, for the training step
        if self.balancing == "uncertainty":
            # A task without labels in the batch keeps its log-variance.
            active = self.task_weights * (self.last_sums_[1] > 0)
            s = self.log_variances
            return (torch.exp(-s) * losses + s) @ active
        return losses @ self.balance()


class MultiTaskNeuralNet(NeuralNet):
    """skorch ``NeuralNet`` with the multi-task loss and an L1/L2 penalty.

    Parameters
    ----------
    alpha : float
        Strength of the penalty on the ``Linear`` weight matrices.
    l1_ratio : float
        Mix of the penalty: ``alpha * (l1_ratio * |W|_1 +
        0.5 * (1 - l1_ratio) * |W|_2^2)``.
    n_train_rows : int or None
        Training rows, which scale the regulariser of concrete dropout layers.
    """

    def __init__(self, *args, alpha=0.0, l1_ratio=0.0, n_train_rows=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.n_train_rows = n_train_rows

    def penalty(self):
        weights = self.module_.weight_matrices()
        total = 0.0
        if self.l1_ratio < 1:
            total = 0.5 * (1 - self.l1_ratio) * sum(w.square().sum() for w in weights)
        if self.l1_ratio > 0:
            total = total + self.l1_ratio * sum(w.abs().sum() for w in weights)
        return total

    def get_loss(self, y_pred, y_true, X=None, training=False):
        targets, weights = y_true
        loss = self.criterion_(y_pred, targets, weights)
        if training and self.alpha > 0:
            loss = loss + self.alpha * self.penalty()
        if training and self.module_.concrete_layers:
            loss = loss + self.module_.concrete_regularizer(self.n_train_rows)
        return loss

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop, with the module's mode set once per phase rather than
        # per batch, and the batch losses read back in one device sync per
        # phase rather than one ``.item()`` per batch. Each task's loss over
        # the phase (labelled entries only, no penalty) is recorded as
        # ``{prefix}_loss_task{t}``.
        if iterator is None:
            return
        self._set_training(training)
        losses, sizes, task_sums = [], [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            task_sums.append(self.criterion_.last_sums_)
            sizes.append(len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_batch_count", len(losses))
        if not losses:
            return
        sums = torch.stack(task_sums).sum(dim=0)
        values = torch.cat([torch.stack(losses).float(), sums.ravel()]).tolist()
        batch_losses, (weighted, total) = values[: len(losses)], np.reshape(
            values[len(losses) :], (2, -1)
        )
        records = self.history[-1]["batches"][-len(losses) :]
        for record, loss, size in zip(records, batch_losses, sizes):
            record[prefix + "_loss"] = loss
            record[prefix + "_batch_size"] = size
        for t, (task_loss, task_total) in enumerate(zip(weighted, total)):
            self.history.record(
                f"{prefix}_loss_task{t}",
                float(task_loss / task_total) if task_total > 0 else float("nan"),
            )

    def train_step(self, batch, **fit_params):
        # One optimizer step without skorch's closure (no solver here needs it).
        Xi, yi = batch
        self._zero_grad_optimizer(set_to_none=True)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        balancing = self.criterion_.balancing
        if balancing == "pcgrad":
            correction = self._pcgrad_correction()
        elif balancing == "gradnorm":
            weight_grad = self._gradnorm_gradient()
        loss.backward()
        if balancing == "pcgrad":
            self._add_to_shared_grads(correction)
        elif balancing == "gradnorm":
            self.criterion_.loss_weights.grad = weight_grad
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self._step_optimizer(None)
        if balancing == "gradnorm":
            self._renormalise_gradnorm_weights()
        return {"loss": loss, "y_pred": y_pred}

    # -- task balancing (see ._balancing) ---------------------------------------

    def _task_losses(self):
        """The batch's per-task losses times the static task weights."""
        criterion = self.criterion_
        return criterion.last_losses_ * criterion.task_weights

    def _pcgrad_correction(self):
        """What PCGrad changes in the summed gradient of the shared trunk."""
        grads = task_gradients(self._task_losses(), self.module_.shared_parameters())
        return project_conflicts(grads).sum(dim=0) - grads.sum(dim=0)

    def _add_to_shared_grads(self, flat):
        params = self.module_.shared_parameters()
        for param, update in zip(params, flat.split([p.numel() for p in params])):
            if param.grad is None:
                param.grad = update.view_as(param).clone()
            else:
                param.grad += update.view_as(param)

    def _gradnorm_gradient(self):
        criterion = self.criterion_
        losses = self._task_losses()
        active = (criterion.last_sums_[1] > 0) & (criterion.task_weights > 0)
        # Each task's first loss, taken the first time it is labelled.
        initial = criterion.initial_losses
        initial.copy_(torch.where(torch.isnan(initial) & active, losses.detach(), initial))
        return gradnorm_gradient(
            losses,
            criterion.loss_weights,
            self.module_.last_shared_weight(),
            initial,
            active,
        )

    def _renormalise_gradnorm_weights(self):
        # The weights stay positive and sum to the number of tasks.
        with torch.no_grad():
            weights = self.criterion_.loss_weights.clamp_min_(1e-4)
            weights *= len(weights) / weights.sum()

    def validation_step(self, batch, **fit_params):
        Xi, yi = batch
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def forward_iter(self, X, training=False, device="cpu"):
        # Checked and switched once, not once per batch as skorch does.
        self.check_is_fitted()
        self._set_training(training)
        for Xi, _ in self.get_iterator(self.get_dataset(X), training=False):
            with torch.inference_mode():
                yield to_device(self.infer(Xi), device=device)


def task_scores(outputs, targets, weights, kinds, slices):
    """Accuracy / R² of each task on its labelled entries (``weights > 0``).

    Computed on encoded targets: R² is unchanged by the standardisation.
    """
    scores = []
    for t, (kind, cols) in enumerate(zip(kinds, slices)):
        labelled = weights[:, t] > 0
        if not labelled.any():
            scores.append(float("nan"))
            continue
        truth = targets[labelled, t]
        if kind == CLASSIFICATION:
            pred = outputs[labelled, cols].argmax(dim=1)
            scores.append((pred == truth.long()).float().mean().item())
        else:
            pred = outputs[labelled, cols.start]
            residual = (truth - pred).square().sum()
            total = (truth - truth.mean()).square().sum()
            if total > 0:
                scores.append(1.0 - (residual / total).item())
            else:
                scores.append(1.0 if residual == 0 else 0.0)
    return scores


class ValidationScore(Callback):
    """Record ``valid_score``, the estimator's ``score`` on the validation rows."""

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        outputs = net.forward(dataset_valid, device=net.device)
        criterion = net.criterion_
        scores = task_scores(
            outputs,
            dataset_valid.targets,
            dataset_valid.weights,
            criterion.kinds,
            criterion.slices,
        )
        net.history.record("valid_score", float(np.nanmean(scores)))
        for t, score in enumerate(scores):
            net.history.record(f"valid_score_task{t}", score)


class TaskBalancing(Callback):
    """Dynamic weight average's weights each epoch; the weights in the history.

    Records ``task_weight{t}``, each task's loss weight at the end of the
    epoch, for every method but ``"fixed"``.
    """

    def on_epoch_begin(self, net, **kwargs):
        criterion = net.criterion_
        # The current epoch is history[-1]; the paper weighs its first two 1.
        if criterion.balancing != "dwa" or len(net.history) < 3:
            return
        keys = [f"train_loss_task{t}" for t in range(len(criterion.kinds))]
        previous, before = ([net.history[e, key] for key in keys] for e in (-2, -3))
        criterion.loss_weights.copy_(dwa_weights(previous, before))

    def on_epoch_end(self, net, **kwargs):
        for t, weight in enumerate(net.criterion_.balance().tolist()):
            net.history.record(f"task_weight{t}", weight)


class GroupLassoProximal(Callback):
    """Proximal step of the group-lasso penalty on the input features.

    After each optimiser step, the weights of each input feature in the
    first layer (one column of its ``Linear``) are shrunk by the block
    soft-threshold ``W[:, j] *= max(0, 1 - lr * strength / |W[:, j]|)``, which
    sets the weights of a feature the loss does not need exactly to zero
    (the proximal gradient method for ``strength * sum_j |W[:, j]|_2``).
    """

    def __init__(self, strength):
        self.strength = strength

    def on_train_begin(self, net, **kwargs):
        # The optimiser group of the first layer: with concrete dropout the
        # rate logits have a group of their own, with another learning rate.
        weight = net.module_.input_layers[0].weight
        self.group_ = next(
            group
            for group in net.optimizer_.param_groups
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
                layer.weight.mul_(shrink)

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
            state = net.optimizer_.state.get(layer.weight, {})
            if "exp_avg_sq" in state:  # Adam, AdamW: bias-corrected
                # ``step`` stays a tensor: no device sync per batch.
                correction = 1 - group["betas"][1] ** state["step"]
                squares.append(state["exp_avg_sq"] / correction)
            elif "square_avg" in state:  # RMSprop
                squares.append(state["square_avg"])
            elif "sum" in state:  # Adagrad
                squares.append(state["sum"])
        if not squares:
            return 1.0
        mean_square = torch.cat(squares).mean(dim=0)
        return mean_square.sqrt_().add_(group.get("eps", 1e-8))


class StopOnNonFinite(Callback):
    """Stop a diverging fit with an error rather than return a broken model."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not np.isfinite(loss):
            raise ValueError(
                f"Training diverged: the training loss is {loss} at epoch "
                f"{len(net.history)}. Lower learning_rate_init (currently "
                f"{self.learning_rate}), scale the features (e.g. StandardScaler), "
                f"or add batch_norm=True."
            )
