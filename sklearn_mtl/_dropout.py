"""The dropout layers of the trunk and heads: a fixed rate (with a cheaper
mask on CPU) or a learned one (concrete dropout), each with a ``sample``
method for Monte-Carlo passes."""

import math

import torch
from torch import nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU.

    On CPU the mask comes from 16-bit uniform integers, four per 64-bit draw
    of torch's generator, compared with ``p`` (rounded to a multiple of
    1/65536, and the kept units scaled by the rounded rate, so the output is
    unbiased). For a 256 x 256 batch that draws the mask in about 140 µs
    against 245 µs for ``rand_like`` and 490 µs for torch's Bernoulli kernel
    (2 threads). On other devices torch's fused dropout kernel is used.
    """

    def _keep(self, shape, device, generator=None):
        """A boolean mask of the kept units, and the scale of the kept units."""
        n_drop = round(self.p * 65536)
        numel = math.prod(shape)
        draws = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device)
        bits = draws.random_(-(2**63), 2**63 - 1, generator=generator)
        bits = bits.view(torch.int16)[:numel]
        return (bits >= n_drop - 32768).view(shape), 65536 / (65536 - n_drop)

    def multiplier(self, X):
        """What a training pass on CPU multiplies ``X`` by: the mask of kept
        units times their scale, drawn as :meth:`forward` draws it."""
        keep, scale = self._keep(X.shape, X.device)
        return keep.to(X.dtype).mul_(scale)

    def forward(self, X):
        if not self.training or self.p == 0:
            return X
        if X.device.type != "cpu":
            return super().forward(X)
        return X * self.multiplier(X)

    def sample(self, X, n_samples=1, generator=None):
        """``n_samples`` stochastic passes of ``X`` whatever the mode, stacked
        as ``(n_samples * n, width)`` (Monte-Carlo prediction), with masks
        drawn from ``generator`` (torch's global one when None).

        The copies of ``X`` are never built: each pass's output is written
        straight from ``X`` and its own mask.
        """
        if self.p == 0:
            return X.repeat(n_samples, 1)
        shape = (n_samples, *X.shape)
        if X.device.type != "cpu":
            keep = torch.rand(shape, device=X.device, generator=generator) >= self.p
            passes = keep.to(X.dtype).mul_(X / (1 - self.p))
        else:
            keep, scale = self._keep(shape, X.device, generator)
            passes = keep.to(X.dtype).mul_(X * scale)
        return passes.reshape(-1, X.shape[1])


class ConcreteDropout(nn.Module):
    """Dropout whose rate is learned: Gal, Hron & Kendall, "Concrete Dropout",
    NeurIPS 2017.

    The rate is ``sigmoid(logit)``; in training the Bernoulli mask is relaxed
    to a concrete (Gumbel-sigmoid) distribution of temperature 0.1 so that the
    rate gets a gradient, and the kept units are scaled by ``1 / (1 - p)``. In
    evaluation the layer is the identity (the expected value); :meth:`sample`
    draws a hard Bernoulli mask of the learned rate for Monte-Carlo passes.

    Parameters
    ----------
    n_features : int
        Width of the input (the dimension ``K`` of the entropy term).
    init_rate : float
        Rate at initialisation.
    temperature : float
        Temperature of the relaxed mask.
    """

    def __init__(self, n_features, init_rate=0.1, temperature=0.1):
        super().__init__()
        self.n_features = n_features
        self.temperature = temperature
        self.logit = nn.Parameter(torch.logit(torch.tensor(float(init_rate))))

    @property
    def rate(self):
        return torch.sigmoid(self.logit)

    def forward(self, X):
        if not self.training:
            return X
        eps = 1e-7
        p = self.rate
        u = torch.rand_like(X)
        drop = torch.sigmoid(
            (
                torch.log(p + eps)
                - torch.log1p(eps - p)
                + torch.log(u + eps)
                - torch.log1p(eps - u)
            )
            / self.temperature
        )
        return X * (1 - drop) / (1 - p)

    def sample(self, X, n_samples=1, generator=None):
        """``n_samples`` passes of ``X`` with hard Bernoulli masks of the
        learned rate whatever the mode, stacked as ``(n_samples * n, width)``."""
        p = self.rate.detach()
        keep = torch.rand((n_samples, *X.shape), device=X.device, generator=generator) >= p
        return keep.to(X.dtype).mul_(X / (1 - p)).reshape(-1, X.shape[1])

    def regularizer(self, following, weight_scale, dropout_scale):
        """The concrete-dropout regulariser of this layer.

        ``weight_scale * |W|^2 / (1 - p)`` over the weights ``following``
        that read this layer's output, plus ``dropout_scale * K * (p log p +
        (1 - p) log(1 - p))``, the negative entropy of the mask, which pulls
        the rate towards 1/2 the more the fewer the training rows.
        """
        p = self.rate
        weights = sum(w.square().sum() for w in following)
        neg_entropy = p * torch.log(p) + (1 - p) * torch.log1p(-p)
        return weight_scale * weights / (1 - p) + (
            dropout_scale * self.n_features * neg_entropy
        )
