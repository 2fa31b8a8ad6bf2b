"""PCGrad: Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020."""

import torch

from .base import Balancer, task_gradients


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


class PCGrad(Balancer):
    """On the shared trunk, a task's gradient that points against another's
    (negative dot product) loses its component along the other; the heads
    get their gradients unchanged."""

    needs_trunk = True
    dynamic = True

    def before_backward(self, module, losses, task_weights, totals):
        grads = task_gradients(losses * task_weights, module.shared_parameters())
        return project_conflicts(grads).sum(dim=0) - grads.sum(dim=0)

    def after_backward(self, module, state):
        params = module.shared_parameters()
        for param, update in zip(params, state.split([p.numel() for p in params])):
            if param.grad is None:
                param.grad = update.view_as(param).clone()
            else:
                param.grad += update.view_as(param)
