"""The L1/L2 penalty of a :class:`~sklearn_mtl._net.MultiTaskNeuralNet`:
its value (added to the recorded training loss without a graph) and its
gradient (written after the backward pass in multi-tensor operations)."""

import torch

from ._sparse import lazy_penalty_gradient


class PenaltyMixin:
    """The penalty methods of the net, on its ``module_``, ``alpha`` and
    ``l1_ratio``."""

    def penalty(self):
        """The value of ``alpha * (l1_ratio * |W|_1 + 0.5 * (1 - l1_ratio) *
        |W|_2^2)`` over the weight matrices (no graph).

        The term of a row-sparse weight (sparse input, a lazy solver) is
        computed at the first batch of each epoch and kept for the epoch:
        over every row it costs ``n_features * width`` a batch, which the
        rest of its step avoids. Its gradient is exact (see
        :meth:`penalty_gradient`); only the recorded loss lags.
        """
        if self.alpha == 0:
            return 0.0
        lazy = self.module_.sparse_gradient_weights()
        weights = [
            w for w in self.module_.weight_matrices() if not any(w is x for x in lazy)
        ]
        total = self._penalty_terms(weights)
        if lazy:
            if getattr(self, "lazy_penalty_", None) is None:
                self.lazy_penalty_ = self._penalty_terms(lazy)
            total = total + self.lazy_penalty_
        return total

    def _penalty_terms(self, weights):
        """``alpha * (l1_ratio * |W|_1 + 0.5 * (1 - l1_ratio) * |W|_2^2)`` of
        ``weights`` (this runs every step)."""
        if not weights:
            return 0.0
        l2, l1 = (
            None if norms is None else torch.stack(norms)
            for norms in self.penalty_norms(weights)
        )
        return self.penalty_of_norms(l2, l1)

    def penalty_norms(self, weights):
        """What the penalty's value of ``weights`` is made of, without a
        graph: their L2 norms and their L1 norms, each a list of 0-d
        tensors (one multi-tensor operation), None where ``l1_ratio`` leaves
        that part out."""
        with torch.no_grad():
            l2 = torch._foreach_norm(weights) if self.l1_ratio < 1 else None
            l1 = torch._foreach_norm(weights, 1) if self.l1_ratio > 0 else None
        return l2, l1

    def penalty_of_norms(self, l2, l1):
        """The penalty's value from :meth:`penalty_norms`' norms stacked
        (their last dimension the weights': one value per row), the constants
        folded into one product per term."""
        total = 0.0
        if l2 is not None:
            half = 0.5 * (1 - self.l1_ratio) * self.alpha
            total = (l2 * l2).sum(dim=-1) * half  # a row's figure whatever the rows
        if l1 is not None:
            total = total + l1.sum(dim=-1) * (self.l1_ratio * self.alpha)
        return total

    def penalty_gradient(self, l2=True):
        """Add the penalty's gradient, ``alpha * ((1 - l1_ratio) * W +
        l1_ratio * sign(W))``, to the weights' gradients (without its L2
        part when not ``l2``: the closed-form step writes that part).

        The penalty does not depend on the batch, so its gradient is written
        in one multi-tensor operation after the backward pass rather than
        differentiated through a graph of every weight matrix each step. A
        row-sparse gradient (sparse input) gets it on the rows it holds
        only: lazy decay, as lazy solvers step only those rows.
        """
        if self.alpha == 0 or not (l2 or self.l1_ratio > 0):
            return
        pairs = []
        for w in self.module_.weight_matrices():
            if w.grad is None:
                continue
            if w.grad.is_sparse:
                lazy_penalty_gradient(w, self.alpha, self.l1_ratio)
            else:
                pairs.append((w, w.grad))
        if not pairs:
            return
        weights, grads = map(list, zip(*pairs))
        if self.l1_ratio < 1 and l2:
            torch._foreach_add_(grads, weights, alpha=self.alpha * (1 - self.l1_ratio))
        if self.l1_ratio > 0:
            torch._foreach_add_(
                grads, torch._foreach_sign(weights), alpha=self.alpha * self.l1_ratio
            )
