"""The multi-task loss: per-task weighted means, blocks, balancing."""

import pytest
import torch
import torch.nn.functional as F

from sklearn_mtl._loss import MultiTaskLoss
from sklearn_mtl._tasks import CLASSIFICATION, REGRESSION, OutputLayout

C, R = CLASSIFICATION, REGRESSION


@pytest.fixture
def batch():
    torch.manual_seed(0)
    layout = OutputLayout((C, C, R, C), (2, 2, 1, 3))
    n = 12
    outputs = torch.randn(n, layout.n_outputs)
    targets = torch.stack(
        [
            torch.randint(0, 2, (n,)).float(),
            torch.randint(0, 2, (n,)).float(),
            torch.randn(n),
            torch.randint(0, 3, (n,)).float(),
        ],
        dim=1,
    )
    weights = torch.rand(n, 4)
    weights[::3, 1] = 0  # missing labels of task 1
    return layout, outputs, targets, weights


def _manual_per_task(layout, outputs, targets, weights):
    losses = []
    for t, (kind, cols) in enumerate(zip(layout.kinds, layout.slices)):
        if kind == C:
            per_sample = F.cross_entropy(outputs[:, cols], targets[:, t].long(), reduction="none")
        else:
            per_sample = (outputs[:, cols.start] - targets[:, t]).square()
        losses.append((per_sample * weights[:, t]).sum() / weights[:, t].sum())
    return torch.stack(losses)


def test_per_task_losses_are_weighted_means_computed_by_blocks(batch):
    layout, outputs, targets, weights = batch
    loss = MultiTaskLoss(layout, [1.0] * 4)
    torch.testing.assert_close(
        loss.per_task(outputs, targets, weights),
        _manual_per_task(layout, outputs, targets, weights),
    )
    torch.testing.assert_close(loss.last_sums_[1], weights.sum(dim=0))


def test_fixed_loss_sums_with_task_weights_and_skips_unlabelled_tasks(batch):
    layout, outputs, targets, weights = batch
    task_weights = torch.tensor([1.0, 0.5, 2.0, 0.0])
    loss = MultiTaskLoss(layout, task_weights)
    expected = _manual_per_task(layout, outputs, targets, weights) @ task_weights
    torch.testing.assert_close(loss(outputs, targets, weights), expected)
    weights[:, 2] = 0  # no label for task 2 in this batch: it adds nothing
    manual = _manual_per_task(layout, outputs, targets, weights)
    expected = manual[[0, 1, 3]] @ task_weights[[0, 1, 3]]
    torch.testing.assert_close(loss(outputs, targets, weights), expected)


def test_uncertainty_loss_and_weights(batch):
    layout, outputs, targets, weights = batch
    loss = MultiTaskLoss(layout, torch.ones(4), balancing="uncertainty")
    with torch.no_grad():
        loss.balancer.log_variances.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    s = loss.balancer.log_variances.detach()
    losses = _manual_per_task(layout, outputs, targets, weights)
    torch.testing.assert_close(
        loss(outputs, targets, weights), (torch.exp(-s) * losses + s).sum()
    )
    torch.testing.assert_close(loss.balance(), torch.exp(-s))
    # The log-variances are the criterion's only learned parameters.
    assert [name for name, _ in loss.named_parameters()] == ["balancer.log_variances"]
