"""GradNorm: Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss
Balancing in Deep Multitask Networks", ICML 2018."""

import torch
from torch import nn

from .base import Balancer, task_gradients

# GradNorm's asymmetry: how strongly slow tasks are pulled up (the paper's
# value for its NYUv2 experiments, and LibMTL's default).
GRADNORM_ALPHA = 1.5


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


class GradNorm(Balancer):
    """Learned weights ``w_t`` (summing to ``n_tasks``) moved so that each
    task's weighted gradient norm on the last shared layer approaches the
    mean norm times ``r_t ** 1.5``, with ``r_t`` the task's loss relative to
    its first loss, over the mean of those: tasks that train slowly get
    larger gradients."""

    needs_trunk = True
    dynamic = True

    def __init__(self, n_tasks):
        super().__init__(n_tasks)
        self.loss_weights = nn.Parameter(torch.ones(n_tasks))
        # Each task's first loss (NaN until the task is first labelled),
        # saved with the model so that training can go on after load.
        self.register_buffer("initial_losses", torch.full((n_tasks,), float("nan")))

    def weights(self, task_weights):
        return task_weights * self.loss_weights.detach()

    def before_backward(self, module, losses, task_weights, totals):
        losses = losses * task_weights
        active = (totals > 0) & (task_weights > 0)
        initial = self.initial_losses
        initial.copy_(torch.where(torch.isnan(initial) & active, losses.detach(), initial))
        return gradnorm_gradient(
            losses, self.loss_weights, module.last_shared_weight(), initial, active
        )

    def after_backward(self, module, state):
        self.loss_weights.grad = state

    def after_step(self):
        # The weights stay positive and sum to the number of tasks.
        with torch.no_grad():
            weights = self.loss_weights.clamp_min_(1e-4)
            weights *= len(weights) / weights.sum()
