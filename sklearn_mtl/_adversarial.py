"""Adversarial training of a :class:`~sklearn_mtl._net.MultiTaskNeuralNet`:
the loss of a batch and of its fast-gradient-sign perturbation."""

import torch

from ._sparse import is_sparse


class AdversarialMixin:
    """The adversarial loss of the net, on its ``criterion_``, ``infer``,
    ``regularize`` and ``adversarial_epsilon``."""

    def adversarial_loss(self, Xi, yi, **fit_params):
        """The clean outputs and the training loss of a batch trained on
        with its fast-gradient-sign perturbation.

        ``X_adv = X + eps * sign(grad_X L(X))`` with ``L`` the balanced loss
        of the clean batch; the gradient is taken on a copy of ``X`` (no
        parameter gradient accumulates) and ``X_adv`` is held fixed. The
        per-task losses are the means ``0.5 * (L_t(X) + L_t(X_adv))``; they
        are what the balancer combines and what its hooks and the epoch
        records read (``last_losses_``, ``last_sums_``). The penalties are
        added once. A CSR batch is densified: the perturbation is dense.
        """
        if is_sparse(Xi):
            Xi = Xi.to_dense()
        targets, weights = yi
        criterion = self.criterion_
        X_clean = Xi.detach().requires_grad_(True)
        y_pred = self.infer(X_clean, **fit_params)
        clean = criterion.per_task(y_pred, targets, weights)
        clean_sums = criterion.last_sums_
        totals = clean_sums[1]
        combined = criterion.balancer.combine(clean, criterion.task_weights, totals)
        (grad,) = torch.autograd.grad(combined, X_clean, retain_graph=True)
        X_adv = (Xi + self.adversarial_epsilon * grad.sign()).detach()
        adversarial = criterion.per_task(self.infer(X_adv, **fit_params), targets, weights)
        losses = 0.5 * (clean + adversarial)
        criterion.last_losses_ = losses
        criterion.last_sums_ = torch.stack(
            [0.5 * (clean_sums[0] + criterion.last_sums_[0]), totals]
        )
        loss = criterion.balancer.combine(losses, criterion.task_weights, totals)
        return y_pred, self.regularize(loss)
