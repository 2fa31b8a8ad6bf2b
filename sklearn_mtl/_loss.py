"""The multi-task loss: each task's weighted mean loss, combined by a balancer."""

import torch
from torch import nn

from ._balancing import BALANCERS
from ._tasks import CLASSIFICATION


class MultiTaskLoss(nn.Module):
    """Weighted sum over tasks of each task's weighted mean loss.

    Each task's loss (cross-entropy or squared error) is averaged over the
    batch's entries with their weights (zero for missing labels); a task with
    no labelled entry in the batch contributes zero. The tasks of a block of
    the layout (consecutive tasks of one kind and output size) are computed
    together as one ``(n * tasks, outputs)`` tensor, so four binary tasks cost
    one cross-entropy, not four. The balancing method (see :mod:`._balancing`)
    combines the per-task losses, with the static ``task_weights``.

    Parameters
    ----------
    layout : OutputLayout
        Where each task's outputs are.
    task_weights : array-like of shape (n_tasks,)
        Static weight of each task.
    balancing : str
        A key of ``BALANCERS``.
    """

    def __init__(self, layout, task_weights, balancing="fixed"):
        super().__init__()
        self.layout = layout
        self.balancing = balancing
        self.balancer = BALANCERS[balancing](layout.n_tasks)
        self.register_buffer(
            "task_weights", torch.as_tensor(task_weights, dtype=torch.float32)
        )
        self.register_buffer("margin", torch.tensor([-1.0, 1.0]), persistent=False)

    def balance(self):
        """The ``(n_tasks,)`` weights of the tasks' losses, now."""
        return self.balancer.weights(self.task_weights)

    def per_sample(self, y_pred, targets):
        """The ``(n_samples, n_tasks)`` tensor of unweighted losses."""
        losses = []
        blocks = self.layout.blocks
        for block in blocks:
            if len(blocks) == 1:  # no selection: one autograd node fewer
                outputs, truth = y_pred, targets
            else:
                outputs = y_pred[:, block.columns]
                truth = targets[:, block.first : block.stop]
            if block.kind == CLASSIFICATION and block.size == 2:
                # Two-class cross-entropy is the logistic loss of the logits'
                # margin: the same value in one fused op, several times
                # faster than a softmax over a dimension of two.
                # The margins z_1 - z_0 in one product: one autograd node
                # rather than two selections and a difference.
                margins = outputs.reshape(-1, block.n_tasks, 2) @ self.margin
                losses.append(
                    nn.functional.binary_cross_entropy_with_logits(
                        margins, truth, reduction="none"
                    )
                )
            elif block.kind == CLASSIFICATION:
                losses.append(
                    nn.functional.cross_entropy(
                        outputs.reshape(-1, block.size),
                        truth.reshape(-1).long(),
                        reduction="none",
                    ).view(-1, block.n_tasks)
                )
            else:
                losses.append((outputs - truth).square())
        return losses[0] if len(losses) == 1 else torch.cat(losses, dim=1)

    def per_task(self, y_pred, targets, weights):
        """The ``(n_tasks,)`` tensor of weighted mean losses.

        Keeps the batch's ``(2, n_tasks)`` sums of weighted losses and of
        weights on the device as ``last_sums_``, for the per-task epoch
        losses (read back once per epoch) and the balancer.
        """
        weighted = (self.per_sample(y_pred, targets) * weights).sum(dim=0)
        total = weights.sum(dim=0)
        self.last_sums_ = torch.stack([weighted.detach(), total])
        return weighted / total.clamp_min(1e-12)

    def forward(self, y_pred, targets, weights):
        losses = self.per_task(y_pred, targets, weights)
        self.last_losses_ = losses  # with their graph, for the training step
        return self.balancer.combine(losses, self.task_weights, self.last_sums_[1])
