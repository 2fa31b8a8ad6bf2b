"""Task balancing: how the per-task losses become one training step.

``"fixed"`` sums the losses with the static ``task_weights``. The other
methods change the weights, or the gradient, as training goes:

* ``"uncertainty"``: Kendall, Gal & Cipolla, "Multi-Task Learning Using
  Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018.
  Each task has a learned log-variance ``s_t``; the loss is
  ``sum_t exp(-s_t) L_t + s_t``, so a task's weight tends to ``1 / L_t``.
* ``"dwa"``: dynamic weight average, Liu, Johns & Davison, "End-to-End
  Multi-Task Learning with Attention", CVPR 2019. Each epoch, the weights are
  ``n_tasks * softmax(r / 2)`` of ``r_t = L_t(e-1) / L_t(e-2)``, the ratio of
  a task's last two epoch losses: a task that stopped improving weighs more.
* ``"gradnorm"``: Chen et al., "GradNorm: Gradient Normalization for Adaptive
  Loss Balancing in Deep Multitask Networks", ICML 2018. Learned weights
  ``w_t`` (summing to ``n_tasks``) are moved so that each task's weighted
  gradient norm on the last shared layer approaches the mean norm times
  ``(r_t)**1.5``, with ``r_t`` the task's loss relative to its first loss,
  over the mean of those: tasks that train slowly get larger gradients.
* ``"pcgrad"``: projecting conflicting gradients, Yu et al., "Gradient
  Surgery for Multi-Task Learning", NeurIPS 2020. On the shared trunk, a
  task's gradient that points against another's (negative dot product) loses
  its component along the other; the heads get their gradients unchanged.

The static ``task_weights`` multiply each task's loss under every method.
"""

import torch

BALANCING = ("fixed", "uncertainty", "dwa", "gradnorm", "pcgrad")
# Methods that need the gradient of each task on the shared trunk.
NEEDS_TRUNK = ("gradnorm", "pcgrad")
# Temperature of dynamic weight average (the paper's value).
DWA_TEMPERATURE = 2.0
# GradNorm's asymmetry: how strongly slow tasks are pulled up (the paper's
# value for its NYUv2 experiments, and LibMTL's default).
GRADNORM_ALPHA = 1.5


def dwa_weights(previous, before):
    """Dynamic weight average of the per-task losses of the last two epochs.

    A task whose loss is missing (NaN: no label in an epoch) counts as not
    changing (``r = 1``).
    """
    ratio = torch.as_tensor(previous) / torch.as_tensor(before)
    ratio = torch.nan_to_num(ratio, nan=1.0, posinf=1.0, neginf=1.0)
    return len(ratio) * torch.softmax(ratio / DWA_TEMPERATURE, dim=0)


def task_gradients(losses, params):
    """``(n_tasks, n_params)``: each task's gradient on ``params``, flattened.

    The graph is kept for the backward pass of the total loss.
    """
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for p, g in zip(params, grads)
                ]
            )
        )
    return torch.stack(rows)


def project_conflicts(grads):
    """PCGrad: each row of ``grads`` with its conflicts projected away.

    For each task ``i``, and the other tasks ``j`` in a random order, when
    ``g_i . g_j < 0`` the component of ``g_i`` along ``g_j`` is removed:
    ``g_i -= (g_i . g_j) / |g_j|^2 * g_j``. Uses torch's global generator;
    no device synchronisation.
    """
    projected = grads.clone()
    squares = grads.square().sum(dim=1).clamp_min(1e-20)
    n_tasks = grads.shape[0]
    for i in range(n_tasks):
        for j in torch.randperm(n_tasks).tolist():
            if j != i:
                dot = (projected[i] @ grads[j]).clamp_max(0)
                projected[i] -= dot / squares[j] * grads[j]
    return projected


def gradnorm_gradient(losses, weights, shared_weight, initial, active):
    """The gradient of GradNorm's loss with respect to the task weights.

    ``losses`` are the tasks' (statically weighted) losses of the batch,
    ``weights`` the learned weights, ``shared_weight`` the last shared
    layer's weight, ``initial`` each task's first loss and ``active`` which
    tasks have a labelled entry in the batch (the others are left alone).
    """
    norms = task_gradients(losses, [shared_weight]).norm(dim=1)
    n_active = active.sum().clamp_min(1)
    grad_norms = weights * norms
    mean_norm = torch.where(active, grad_norms, 0).sum() / n_active
    ratio = torch.where(active, losses.detach() / initial.clamp_min(1e-12), 0)
    ratio = ratio / (ratio.sum() / n_active).clamp_min(1e-12)
    target = (mean_norm * ratio.pow(GRADNORM_ALPHA)).detach()
    gradnorm_loss = torch.where(active, (grad_norms - target).abs(), 0).sum()
    return torch.autograd.grad(gradnorm_loss, weights)[0]
