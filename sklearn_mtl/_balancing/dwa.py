"""Dynamic weight average: Liu, Johns & Davison, "End-to-End Multi-Task
Learning with Attention", CVPR 2019."""

import torch

from .base import Balancer

# Temperature of dynamic weight average (the paper's value).
DWA_TEMPERATURE = 2.0


def dwa_weights(previous, before):
    """Dynamic weight average of the per-task losses of the last two epochs.

    A task whose loss is missing (NaN: no label in an epoch) counts as not
    changing (``r = 1``).
    """
    ratio = torch.as_tensor(previous) / torch.as_tensor(before)
    ratio = torch.nan_to_num(ratio, nan=1.0, posinf=1.0, neginf=1.0)
    return len(ratio) * torch.softmax(ratio / DWA_TEMPERATURE, dim=0)


class DynamicWeightAverage(Balancer):
    """Each epoch, the weights are ``n_tasks * softmax(r / 2)`` of ``r_t =
    L_t(e-1) / L_t(e-2)``, the ratio of a task's last two epoch losses: a
    task that stopped improving weighs more. The first two epochs weigh 1.

    The weights are not part of a saved model: they are recomputed from the
    history when training goes on.
    """

    dynamic = True

    def __init__(self, n_tasks):
        super().__init__(n_tasks)
        self.register_buffer("loss_weights", torch.ones(n_tasks), persistent=False)

    def weights(self, task_weights):
        return task_weights * self.loss_weights

    def on_epoch_begin(self, history):
        if len(history) < 3:
            return
        keys = [f"train_loss_task{t}" for t in range(self.n_tasks)]
        previous, before = ([history[e, key] for key in keys] for e in (-2, -3))
        self.loss_weights.copy_(dwa_weights(previous, before))
