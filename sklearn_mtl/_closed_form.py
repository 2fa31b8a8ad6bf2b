"""The training step of a plain network with its gradients in closed form.

On batches of a few hundred rows, autograd's bookkeeping (a graph node per
operation, then the engine walking it back) costs as much as the arithmetic.
For the network the defaults build (a shared trunk of ``Linear`` layers and
element-wise activations, with or without dropout, one fused ``Linear``
head, task weights fixed within a step) the gradients are the textbook
back-propagation that ``MLPClassifier`` computes in numpy;
:class:`ClosedFormStep` computes them with torch operations and no graph,
the same figures to float rounding (tests compare them with autograd's,
dropout masks drawn as the layers draw them), in about three quarters of
the time (``benchmarks/step_costs.py``).
Every other network trains through autograd.
"""

import torch
from torch import nn
from torch.nn.modules import module as hook_registry

from ._balancing import Balancer
from ._dropout import Dropout
from ._tasks import CLASSIFICATION


def _relu_(pre):
    return pre.clamp_min_(0)


def _relu_gradient(grad, h):
    # autograd's own kernel: one operation, where a mask and a product are
    # three with the mask's conversion
    return torch.ops.aten.threshold_backward(grad, h, 0)


def _tanh_gradient(grad, h):
    return grad.mul_(1 - h.square())


def _sigmoid_gradient(grad, h):
    return grad.mul_(h * (1 - h))


def _identity(pre):
    return pre


# Each supported activation: applied in place to a layer's pre-activation,
# and the gradient through it from the layer's output ``h`` (None for the
# identity). Named functions, so that a net pickled during a fit (skorch's
# ``Checkpoint(f_pickle=...)``) pickles its step.
_ACTIVATIONS = {
    nn.ReLU: (_relu_, _relu_gradient),
    nn.Tanh: (torch.tanh_, _tanh_gradient),
    nn.Sigmoid: (torch.sigmoid_, _sigmoid_gradient),
    nn.Identity: (_identity, None),
}


def _weighs_linearly(balancer):
    """Whether ``balancer`` combines the task losses with weights it sets
    outside the step (fixed, dynamic weight average): the base class's
    ``combine`` and step hooks, and nothing it learns."""
    hooks = ("combine", "before_backward", "after_backward", "after_step")
    return all(
        getattr(type(balancer), name) is getattr(Balancer, name) for name in hooks
    ) and not any(True for _ in balancer.parameters())


def hooked(modules, parameters):
    """Whether a forward or backward hook would run in the module's pass: on
    one of ``modules``, a global module hook, or a gradient hook on one of
    ``parameters``. The closed-form step would skip them, so a hooked network
    trains through autograd."""
    module_hooks = (
        "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"
    )
    return (
        any(getattr(m, name) for m in modules for name in module_hooks)
        or any(getattr(hook_registry, "_global" + name) for name in module_hooks)
        or any(
            p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None)
            for p in parameters
        )
    )


class ClosedFormStep:
    """Forward pass, loss and gradients of one batch, without autograd.

    Built by :meth:`build` for a network it supports; calling it on a batch
    writes every learnable parameter's gradient to ``.grad`` (replacing what
    was there), sets the criterion's ``last_losses_`` (without a graph) and
    ``last_sums_`` as the criterion's forward pass does, and returns the
    outputs and the training loss (the combined task losses plus the
    penalty's value), both without a graph; while ``deferred`` holds a
    :class:`DeferredLosses`, the loss is left there to compute (None is
    returned in its place, and the criterion's records are set at the
    phase's end). The L2 part of the penalty's
    gradient, ``alpha * (1 - l1_ratio) * W``, is written with each weight's
    gradient (one ``addmm``); the L1 part is the net's to add
    (``penalty_gradient(l2=False)``).

    The per-task loss is each task's weighted mean of its entries' losses
    (see :class:`~sklearn_mtl._loss.MultiTaskLoss`): with ``c_it = w_it * a_t
    / W_t`` (entry weight, task weight, the task's total weight in the
    batch), the gradient of the combined loss with respect to the outputs
    is ``c_it`` times that of the entry's loss: ``sigmoid(m) - y`` for the
    margin ``m = z_1 - z_0`` of a two-class task (``-`` of it on ``z_0``),
    ``softmax(z) - onehot(y)`` for more classes, ``2 * (z - y)`` for a
    regression task.
    """

    deferred = None  # the DeferredLosses of the phase under way, if any

    def __init__(self, net, layers, head):
        self.net = net
        # (Linear, activation, derivative, Dropout or None), in trunk order
        self.layers = layers
        self.head = head
        # d(loss)/d(z_0, z_1) of a two-class task is (-1, 1) times that of
        # its margin.
        self.sign = torch.tensor([-1.0, 1.0], device=head.weight.device)

    @classmethod
    def build(cls, net):
        """The step for ``net``'s module, or None where it does not apply:
        batch norm, concrete dropout, dropout off the CPU, head layers, MMoE,
        sparse input, a frozen trunk, adversarial training, a balancing
        method that learns or reads gradients (fixed weights and dynamic
        weight average apply), an activation other than relu, tanh,
        logistic and identity, or a forward or backward hook (see
        :func:`hooked`)."""
        module, criterion = net.module_, net.criterion_
        if (
            not _weighs_linearly(criterion.balancer)
            or net.adversarial_epsilon > 0
            or module.sparse_input
            or module.gates is not None
            or not module.fused_heads
            or type(module.heads[0]) is not nn.Linear
            or not all(p.requires_grad for p in module.parameters())
            or hooked([*module.modules(), *criterion.modules()], module.parameters())
        ):
            return None
        layers, trunk = [], list(module.trunk)
        on_cpu = module.heads[0].weight.device.type == "cpu"
        while trunk:
            if len(trunk) < 2:
                return None
            linear, activation, *trunk = trunk
            dropout = trunk.pop(0) if trunk and type(trunk[0]) is Dropout else None
            if (
                type(linear) is not nn.Linear
                or type(activation) not in _ACTIVATIONS
                or (dropout is not None and not on_cpu)
            ):
                return None
            layers.append((linear, *_ACTIVATIONS[type(activation)], dropout))
        # It writes every learnable parameter's gradient (so nothing needs
        # zeroing before it).
        linears = [linear for linear, *_ in layers] + [module.heads[0]]
        written = {id(p) for linear in linears for p in linear.parameters()}
        if written != {id(p) for _, p in net.get_all_learnable_params()}:
            return None
        return cls(net, layers, module.heads[0])

    def __call__(self, X, targets, weights):
        criterion = self.net.criterion_
        with torch.no_grad():
            saved, x = [], X  # per layer: its input, its output, its dropout's
            for linear, activation, _, dropout in self.layers:
                h = activation(torch.addmm(linear.bias, x, linear.weight.T))
                kept = None if dropout is None else dropout.multiplier(h)
                saved.append((x, h, kept))
                x = h if kept is None else h * kept
            outputs = torch.addmm(self.head.bias, x, self.head.weight.T)
            total = weights.sum(dim=0)
            safe_total = total.clamp_min(1e-12)
            deferred = self.deferred
            if deferred is None:
                task_weights = criterion.balance()
            else:  # the phase's
                task_weights = deferred.task_weights
            scale = weights * (task_weights / safe_total)
            losses, grad = self._losses(outputs, targets, scale)
            self._backward(grad, x, saved)
            weighted = (losses * weights).sum(dim=0)
            if deferred is not None:  # the loss is computed at the phase's end
                deferred.add(weighted, total)
                return outputs, None
            task_losses = weighted / safe_total
            criterion.last_sums_ = torch.stack([weighted, total])
            criterion.last_losses_ = task_losses
            # A product and a sum over the last dimension, not a dot: the
            # same figure, to the bit, as a row of DeferredLosses.losses.
            loss = (task_losses * task_weights).sum(dim=-1)
        return outputs, self.net.regularize(loss)

    def outputs(self, X):
        """The module's outputs in evaluation mode (dropout off), its own
        operations called directly: what the validation pass computes,
        without ``nn.Module``'s per-call dispatch of each layer."""
        x = X
        for linear, activation, _, _ in self.layers:
            x = activation(torch.addmm(linear.bias, x, linear.weight.T))
        return torch.addmm(self.head.bias, x, self.head.weight.T)

    def _losses(self, outputs, targets, scale):
        """Each entry's loss ``(n, n_tasks)`` and the gradient of the combined
        loss with respect to the outputs ``(n, n_outputs)`` (each entry's
        gradient times its ``scale``), block by block."""
        losses, grads = [], []
        blocks = self.net.criterion_.layout.blocks
        n = len(outputs)
        for block in blocks:
            if len(blocks) == 1:
                values, truth, factor = outputs, targets, scale
            else:
                values = outputs[:, block.columns]
                truth = targets[:, block.first : block.stop]
                factor = scale[:, block.first : block.stop]
            if block.kind == CLASSIFICATION and block.size == 2:
                pair = values.view(n, block.n_tasks, 2)
                margin = pair[:, :, 1] - pair[:, :, 0]
                losses.append(
                    nn.functional.binary_cross_entropy_with_logits(
                        margin, truth, reduction="none"
                    )
                )
                d = torch.sigmoid(margin).sub_(truth).mul_(factor)
                grads.append((d.unsqueeze(2) * self.sign).view(n, -1))
            elif block.kind == CLASSIFICATION:
                log_proba = values.reshape(n, block.n_tasks, block.size).log_softmax(2)
                index = truth.long().unsqueeze(2)
                losses.append(-log_proba.gather(2, index).squeeze(2))
                d = log_proba.exp_()
                d.scatter_add_(2, index, torch.full_like(index, -1, dtype=d.dtype))
                grads.append(d.mul_(factor.unsqueeze(2)).view(n, -1))
            else:
                residual = values - truth
                losses.append(residual.square())
                grads.append(residual.mul_(2 * factor))
        if len(losses) == 1:
            return losses[0], grads[0]
        return torch.cat(losses, dim=1), torch.cat(grads, dim=1)

    def _backward(self, grad, x, saved):
        """Each parameter's gradient, from the outputs' gradient ``grad``;
        ``x`` is what the head read."""
        head = self.head
        decay = self.net.alpha * (1 - self.net.l1_ratio)
        head.weight.grad = torch.addmm(head.weight, grad.T, x, beta=decay)
        head.bias.grad = grad.sum(dim=0)
        grad = grad @ head.weight
        for i in reversed(range(len(self.layers))):
            linear, _, derivative, _ = self.layers[i]
            x, h, kept = saved[i]
            if kept is not None:
                grad = grad.mul_(kept)
            if derivative is not None:
                grad = derivative(grad, h)
            linear.weight.grad = torch.addmm(linear.weight, grad.T, x, beta=decay)
            linear.bias.grad = grad.sum(dim=0)
            if i:
                grad = grad @ linear.weight


class DeferredLosses:
    """The training losses of one phase of closed-form steps, computed at its
    end.

    With no callback listening per batch nothing reads a step's loss before
    the phase ends, and the few operations that combine a step's task
    losses and add the penalty's value cost, on a few hundred rows, as much
    as the step's arithmetic: for the whole phase at once they are run
    once. Each step leaves its tasks' weighted loss sums and loss weights,
    and the norms of the penalised weights are taken then, at the step's
    weights (:meth:`add`); the task weights are the phase's (nothing changes
    them within it). :meth:`losses` gives each step's loss as the step
    would have returned it, and the phase's sums as the steps' records sum
    to, to the bit.
    """

    def __init__(self, net, weights):
        self.net = net
        self.weights = weights  # the penalised weight matrices
        self.task_weights = net.criterion_.balance()
        self.weighted, self.totals, self.l2, self.l1 = [], [], [], []

    def add(self, weighted, total):
        """Keep a step's ``(n_tasks,)`` weighted loss sums and loss weights,
        and the penalty's norms at its weights."""
        self.weighted.append(weighted)
        self.totals.append(total)
        if self.net.alpha:
            l2, l1 = self.net.penalty_norms(self.weights)
            self.l2.extend(l2 or ())
            self.l1.extend(l1 or ())

    def losses(self):
        """Each step's training loss ``(n_steps,)`` and the phase's
        ``(2, n_tasks)`` sums of the tasks' weighted losses and weights; the
        criterion's ``last_sums_`` and ``last_losses_`` are the last step's."""
        weighted, totals = torch.stack(self.weighted), torch.stack(self.totals)
        task_losses = weighted / totals.clamp_min(1e-12)
        # Each row as the step computes its loss (see __call__), and the sums
        # as run_single_epoch sums the steps' records: the same to the bit
        # (the epoch's per-task losses feed dynamic weight average).
        losses = (task_losses * self.task_weights).sum(dim=-1)
        if self.net.alpha:
            n = len(weighted)
            losses = losses + self.net.penalty_of_norms(
                *(torch.stack(norms).view(n, -1) if norms else None
                  for norms in (self.l2, self.l1))
            )
        criterion = self.net.criterion_
        criterion.last_sums_ = torch.stack([weighted[-1], totals[-1]])
        criterion.last_losses_ = task_losses[-1]
        return losses, torch.stack([weighted, totals], dim=1).sum(dim=0)


class ClosedFormMixin:
    """The net's choice of step: the closed-form step where it applies (see
    :meth:`ClosedFormStep.build`), checked at each epoch and, when a
    callback listens per batch, at each batch; and its losses deferred to
    the phase's end where nothing reads them sooner."""

    closed_form_ = None  # the ClosedFormStep of a fit under way, if any
    closed_form_key_ = None  # what it was built for (see _closed_form_step)

    def _closed_form_step(self):
        """``ClosedFormStep.build(self)``, built again only when what it
        depends on may have changed since the last epoch of this fit: the
        parameters (a callback may replace a layer) and which of them learn
        (or freeze or unfreeze some), whether a hook is registered, the
        adversarial rate, the module or the criterion. Building costs as
        much as a step on a few hundred rows; this check a tenth of it."""
        modules, parameters = self._structure()
        key = (
            id(self.module_), id(self.criterion_), self.adversarial_epsilon,
            hooked(modules, parameters),
            *((id(p), p.requires_grad) for p in parameters),
        )
        if key != self.closed_form_key_:
            self.closed_form_ = ClosedFormStep.build(self)
            self.closed_form_key_ = key
        return self.closed_form_

    def _structure(self):
        """The modules and the parameters of the module and the criterion,
        walked at every call (a callback may change them in place)."""
        roots = (self.module_, self.criterion_)
        return (
            [m for root in roots for m in root.modules()],
            [p for root in roots for p in root.parameters()],
        )

    def _closed_form_now(self, fit_params):
        """Whether this batch takes the closed-form step (or its forward
        pass): not with fit parameters, and, when a callback listens per
        batch (it may register a hook for one batch), not while a hook is
        registered."""
        if self.closed_form_ is None or fit_params:
            return False
        return not (self.batch_listeners_ and hooked(*self._structure()))

    def _defer_losses(self, fit_params):
        """At a training phase's start: a :class:`DeferredLosses` for its
        closed-form steps when no callback listens per batch (and no fit
        parameter sends the steps through autograd), else None."""
        step = self.closed_form_
        if step is None:
            return None
        on = not self.batch_listeners_ and self._closed_form_now(fit_params)
        weights = [linear.weight for linear, *_ in step.layers] + [step.head.weight]
        step.deferred = DeferredLosses(self, weights) if on else None
        return step.deferred

    def _deferred_losses(self, deferred):
        """At the phase's end: ``deferred.losses()``, the step no longer
        deferring."""
        self.closed_form_.deferred = None
        return deferred.losses()
