"""Adam's step without ``Optimizer.step``'s per-call bookkeeping.

``torch.optim.Adam.step`` wraps the update (``torch.optim.adam.adam``, one
fused kernel on the CPU) in a profiler record, a grad-mode switch, the step
hooks and a walk over every parameter's state to gather the lists the
kernel takes. On a small network that costs several times the kernel: about
110 against 20 µs a step for a (100,)-trunk net on 8 features, measured on
a 2-core CPU, where a step of a few hundred rows takes about 700 µs.
:class:`AdamLists` keeps those lists from one step to the next and calls the
same function with each group's current hyperparameters, so a learning-rate
schedule, a group added or a state loaded still take effect. A fused group
whose tensors share one device and dtype (the package's own optimizer on
the CPU) calls the fused kernel as that function does (the step count
incremented, then ``torch._fused_adam_`` or ``_fused_adamw_``), without
its per-call grouping of the tensors by device and dtype: about 14 against
28 µs a step on the net above.

It steps only where ``Adam.step`` would do exactly the same: an optimizer of
type ``torch.optim.Adam`` or ``torch.optim.AdamW`` (which inherits Adam's
``step``, its groups set ``decoupled_weight_decay``; not another subclass),
without ``amsgrad``,
``capturable``, ``differentiable`` or a gradient scaler, with no step hook
(its own or a global one) and its ``step`` not replaced (a scheduler that
counts the steps wraps it), every parameter stepped before (its state
exists) and holding a dense gradient. Anything else goes through
``optimizer.step()``.
"""

import torch
from torch.optim.adam import adam
from torch.optim.optimizer import (
    _global_optimizer_post_hooks,
    _global_optimizer_pre_hooks,
)

_PLAIN = {"amsgrad": False, "capturable": False, "differentiable": False}
_ADAMS = (torch.optim.Adam, torch.optim.AdamW)  # AdamW runs Adam.step


class AdamLists:
    """The lists of one Adam optimizer's groups, built at the first step
    they apply to and rebuilt when its state or groups are replaced."""

    def __init__(self):
        self.optimizer = self.state = self.groups = self.lists = None

    def _plain(self, optimizer):
        return (
            type(optimizer) in _ADAMS
            and "step" not in vars(optimizer)
            and not optimizer._optimizer_step_pre_hooks
            and not optimizer._optimizer_step_post_hooks
            and not _global_optimizer_pre_hooks
            and not _global_optimizer_post_hooks
            and getattr(optimizer, "grad_scale", None) is None
            and getattr(optimizer, "found_inf", None) is None
        )

    def _current(self, optimizer):
        """Whether the kept lists are those of ``optimizer`` as it is now."""
        return (
            self.optimizer is optimizer
            and self.state is optimizer.state
            and len(self.groups) == len(optimizer.param_groups)
            and all(a is g["params"] for a, g in zip(self.groups, optimizer.param_groups))
        )

    def _build(self, optimizer):
        lists = []
        for group in optimizer.param_groups:
            if any(group.get(key, False) != value for key, value in _PLAIN.items()):
                return False
            if any(torch.is_complex(p) for p in group["params"]):
                return False
            states = [optimizer.state.get(p) for p in group["params"]]
            if not all(states):  # a parameter not stepped yet: Adam creates its state
                return False
            lists.append((
                group["params"],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states],
                _one_kind(group["params"], states),
            ))
        self.optimizer, self.state, self.lists = optimizer, optimizer.state, lists
        self.groups = [g["params"] for g in optimizer.param_groups]
        return True

    def step(self, optimizer):
        """Step ``optimizer`` as ``Adam.step`` would; False (and nothing
        done) where it does not apply."""
        if not self._plain(optimizer):
            return False
        if not self._current(optimizer) and not self._build(optimizer):
            return False
        grads = []
        for params, *_ in self.lists:
            group_grads = [p.grad for p in params]
            if any(g is None or g.layout != torch.strided for g in group_grads):
                return False
            grads.append(group_grads)
        with torch.no_grad():
            groups = zip(optimizer.param_groups, self.lists, grads)
            for group, lists, group_grads in groups:
                params, exp_avgs, exp_avg_sqs, steps, one_kind = lists
                beta1, beta2 = group["betas"]
                plain_betas = not (torch.is_tensor(beta1) or torch.is_tensor(beta2))
                if group["fused"] and one_kind and plain_betas:
                    _fused_step(group, params, group_grads, exp_avgs, exp_avg_sqs,
                                steps)
                    continue
                adam(
                    params, group_grads, exp_avgs, exp_avg_sqs, [], steps,
                    amsgrad=False, has_complex=False, beta1=beta1, beta2=beta2,
                    lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                    maximize=group["maximize"], foreach=group["foreach"],
                    capturable=False, differentiable=False, fused=group["fused"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                )
        return True


def _one_kind(params, states):
    """Whether a group's parameters and their moments share one device and
    dtype, and its step counts that device (a gradient always has its
    parameter's): the fused function's grouping then makes one group of
    them all."""
    kinds = {(p.device, p.dtype) for p in params}
    kinds |= {
        (t.device, t.dtype)
        for s in states for t in (s["exp_avg"], s["exp_avg_sq"])
    }
    step_devices = {s["step"].device for s in states}
    return len(kinds) == 1 and step_devices == {params[0].device}


def _fused_step(group, params, grads, exp_avgs, exp_avg_sqs, steps):
    """``torch.optim.adam._fused_adam`` on tensors of one device and dtype,
    without a gradient scaler or tensor betas: the two calls it makes."""
    torch._foreach_add_(steps, 1)
    decoupled = group["decoupled_weight_decay"]
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    kernel(
        params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
        lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
        weight_decay=group["weight_decay"], eps=group["eps"],
        maximize=group["maximize"], grad_scale=None, found_inf=None,
    )
