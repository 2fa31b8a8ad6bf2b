"""The hooks a balancing method has, and the fixed weighting they default to."""

import torch
from torch import nn


class Balancer(nn.Module):
    """Fixed weighting: the tasks' losses summed with the static weights.

    The base of every method. The training step calls the hooks in this
    order for each batch: :meth:`combine` (inside the loss), then
    :meth:`before_backward`, the backward pass, :meth:`after_backward`, the
    optimiser step and :meth:`after_step`; :meth:`on_epoch_begin` before each
    epoch. A method's learned parameters are its ``nn.Parameter`` s (trained
    by the net's optimiser, at ``LEARNED_LR_FACTOR`` times the learning
    rate) and its state the module's ``state_dict`` (saved with the model).

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    """

    #: Whether the method needs per-task gradients on a shared trunk.
    needs_trunk = False
    #: Whether its weights change as training goes (and so are recorded in
    #: the history as ``task_weight{t}`` each epoch).
    dynamic = False

    def __init__(self, n_tasks):
        super().__init__()
        self.n_tasks = n_tasks

    def weights(self, task_weights):
        """The ``(n_tasks,)`` weights of the tasks' losses now (no graph)."""
        return task_weights

    def combine(self, losses, task_weights, totals):
        """The training loss from the ``(n_tasks,)`` per-task mean losses.

        ``totals`` is each task's sum of loss weights in the batch (zero for
        a task with no labelled entry).
        """
        return losses @ self.weights(task_weights)

    def before_backward(self, module, losses, task_weights, totals):
        """Called with the batch's per-task losses (with their graph) before
        the backward pass of the total loss; returns what
        :meth:`after_backward` needs."""
        return None

    def after_backward(self, module, state):
        """Called after the backward pass, with the gradients in place."""

    def after_step(self):
        """Called after the optimiser step."""

    def on_epoch_begin(self, history):
        """Called before each epoch, with the net's history (the new epoch is
        ``history[-1]``)."""


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
