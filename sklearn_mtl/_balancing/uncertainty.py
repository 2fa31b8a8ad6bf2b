"""Uncertainty weighting: Kendall, Gal & Cipolla, "Multi-Task Learning Using
Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018."""

import torch
from torch import nn

from .base import Balancer


class Uncertainty(Balancer):
    """Each task has a learned log-variance ``s_t``; the loss is
    ``sum_t w_t (exp(-s_t) L_t + s_t)``, so a task's weight tends to
    ``1 / L_t``. A task without labels in a batch keeps its log-variance."""

    dynamic = True

    def __init__(self, n_tasks):
        super().__init__(n_tasks)
        self.log_variances = nn.Parameter(torch.zeros(n_tasks))

    def weights(self, task_weights):
        return task_weights * torch.exp(-self.log_variances.detach())

    def combine(self, losses, task_weights, totals):
        active = task_weights * (totals > 0)
        s = self.log_variances
        return (torch.exp(-s) * losses + s) @ active
