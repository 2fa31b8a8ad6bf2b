"""The torch network: a shared trunk and one output head per task."""

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
}


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU.

    On CPU the mask comes from 16-bit uniform integers, four per 64-bit draw
    of torch's generator, compared with ``p`` (rounded to a multiple of
    1/65536, and the kept units scaled by the rounded rate, so the output is
    unbiased). For a 256 x 256 batch that draws the mask in about 140 µs
    against 245 µs for ``rand_like`` and 490 µs for torch's Bernoulli kernel
    (2 threads). On other devices torch's fused dropout kernel is used.
    """

    def _keep(self, shape, device):
        """A boolean mask of the kept units, and the scale of the kept units."""
        n_drop = round(self.p * 65536)
        numel = math.prod(shape)
        draws = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device)
        bits = draws.random_(-(2**63), 2**63 - 1).view(torch.int16)[:numel]
        return (bits >= n_drop - 32768).view(shape), 65536 / (65536 - n_drop)

    def forward(self, X):
        if not self.training or self.p == 0:
            return X
        if X.device.type != "cpu":
            return super().forward(X)
        keep, scale = self._keep(X.shape, X.device)
        return X * keep.to(X.dtype).mul_(scale)

    def sample(self, X, n_samples=1):
        """``n_samples`` stochastic passes of ``X`` whatever the mode, stacked
        as ``(n_samples * n, width)`` (Monte-Carlo prediction).

        The copies of ``X`` are never built: each pass's output is written
        straight from ``X`` and its own mask.
        """
        if self.p == 0:
            return X.repeat(n_samples, 1)
        if X.device.type != "cpu":
            passes = F.dropout(X.expand(n_samples, *X.shape), self.p, training=True)
        else:
            keep, scale = self._keep((n_samples, *X.shape), X.device)
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

    def sample(self, X, n_samples=1):
        """``n_samples`` passes of ``X`` with hard Bernoulli masks of the
        learned rate whatever the mode, stacked as ``(n_samples * n, width)``."""
        p = self.rate.detach()
        keep = torch.rand((n_samples, *X.shape), device=X.device) >= p
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


def _is_dropout(layer):
    return isinstance(layer, (Dropout, ConcreteDropout))


def _blocks(n_in, widths, activation, dropouts, batch_norm):
    """``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each width.

    A rate of ``"concrete"`` gives a :class:`ConcreteDropout` layer.
    """
    layers = []
    for width, rate in zip(widths, dropouts):
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
        if isinstance(rate, str):  # "concrete"
            layers.append(ConcreteDropout(width))
        elif rate > 0:
            layers.append(Dropout(rate))
        n_in = width
    return nn.Sequential(*layers), n_in


class MultiTaskModule(nn.Module):
    """Hard parameter sharing: ``trunk`` feeds every task's head.

    The forward pass returns one ``(n_samples, sum(output_sizes))`` tensor: the
    columns of task ``t`` are ``output_slices[t]``. Without head hidden layers
    all heads are one fused ``Linear`` (a single matrix product for every
    task); with them each task has its own stack of blocks.

    Parameters
    ----------
    n_features : int
        Width of the input.
    output_sizes : sequence of int
        Outputs of each task's head (number of classes, or 1 for regression).
    hidden_layer_sizes : sequence of int
        Widths of the shared trunk's blocks.
    head_layer_sizes : sequence of int
        Widths of the hidden blocks of every head.
    activation : str
        A key of ``ACTIVATIONS``.
    dropout : sequence of float or "concrete"
        One dropout rate per trunk block; head blocks use the last trunk rate.
        ``"concrete"`` gives every trunk block a :class:`ConcreteDropout`
        layer with a rate of its own, and head blocks no dropout.
    batch_norm : bool
        Whether every block has a ``BatchNorm1d`` after its ``Linear``.
    """

    def __init__(
        self,
        n_features,
        output_sizes,
        hidden_layer_sizes=(100,),
        head_layer_sizes=(),
        activation="relu",
        dropout=(0.0,),
        batch_norm=False,
    ):
        super().__init__()
        concrete = isinstance(dropout, str) and dropout == "concrete"
        if concrete:
            dropout = ["concrete"] * len(hidden_layer_sizes)
        self.trunk, width = _blocks(
            n_features, hidden_layer_sizes, activation, dropout, batch_norm
        )
        self.output_sizes = tuple(int(k) for k in output_sizes)
        head_dropout = dropout[-1] if len(dropout) and not concrete else 0.0
        if head_layer_sizes:
            self.heads = nn.ModuleList()
            for size in self.output_sizes:
                hidden, head_width = _blocks(
                    width,
                    head_layer_sizes,
                    activation,
                    [head_dropout] * len(head_layer_sizes),
                    batch_norm,
                )
                self.heads.append(nn.Sequential(*hidden, nn.Linear(head_width, size)))
        else:
            self.heads = nn.ModuleList([nn.Linear(width, sum(self.output_sizes))])

        # Each concrete layer with the Linear layers that read its output.
        linears = [m for m in self.trunk if isinstance(m, nn.Linear)]
        firsts = [
            next(m for m in head.modules() if isinstance(m, nn.Linear))
            for head in self.heads
        ]
        self.concrete_layers = [
            (layer, [linears[i + 1]] if i + 1 < len(linears) else firsts)
            for i, layer in enumerate(
                m for m in self.trunk if isinstance(m, ConcreteDropout)
            )
        ]
        self.input_layers = linears[:1] or firsts

    def forward(self, X):
        shared = self.trunk(X)
        if len(self.heads) == 1:
            return self.heads[0](shared)
        return torch.cat([head(shared) for head in self.heads], dim=1)

    def weight_matrices(self):
        """The ``Linear`` weights, which the L1/L2 penalty applies to."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

    def shared_parameters(self):
        """The trunk's parameters, which every task's loss reaches."""
        return list(self.trunk.parameters())

    def last_shared_weight(self):
        """The weight of the trunk's last layer (GradNorm's shared layer)."""
        return [p for p in self.trunk.parameters() if p.ndim >= 2][-1]

    def dropout_rates(self):
        """The rate of each trunk block (learned ones for concrete dropout)."""
        rates = []
        for layer in self.trunk:
            if isinstance(layer, nn.Linear):
                rates.append(0.0)
            elif isinstance(layer, Dropout):
                rates[-1] = float(layer.p)
            elif isinstance(layer, ConcreteDropout):
                rates[-1] = float(layer.rate.detach())
        return tuple(rates)

    def concrete_regularizer(self, n_rows, length_scale=1e-4):
        """Sum of the layers' concrete-dropout regularisers for ``n_rows`` rows.

        With the paper's scales: ``length_scale**2 / n_rows`` for the weights
        and ``2 / n_rows`` for the entropy term.
        """
        return sum(
            layer.regularizer(
                [m.weight for m in following], length_scale**2 / n_rows, 2.0 / n_rows
            )
            for layer, following in self.concrete_layers
        )

    def input_norms(self):
        """Euclidean norm of each input feature's weights in the first layer(s)."""
        squares = sum(m.weight.detach().square().sum(dim=0) for m in self.input_layers)
        return squares.sqrt()

    def sample(self, X, n_samples, transform=None, max_rows=65536):
        """Mean and standard deviation of ``n_samples`` stochastic passes.

        Monte-Carlo dropout (Gal & Ghahramani, ICML 2016): every dropout layer
        draws a mask, every other layer (batch norm included) runs as it is,
        so call it in evaluation mode. The trunk before the first dropout
        layer runs once; then ``X`` is repeated ``n_samples`` times (one
        independent mask per copy) through the rest, in chunks of at most
        ``max_rows`` rows. ``transform`` (e.g. a softmax) maps each pass's
        outputs before the mean and standard deviation (``ddof=0``) over the
        passes are taken.
        """
        trunk = list(self.trunk)
        first = next((i for i, m in enumerate(trunk) if _is_dropout(m)), len(trunk))
        shared = X
        for layer in trunk[:first]:
            shared = layer(shared)
        chunk = max(1, max_rows // n_samples)
        means, stds = [], []
        for start in range(0, shared.shape[0], chunk):
            part = shared[start : start + chunk]
            rows = part.shape[0]
            if first < len(trunk):  # the first dropout layer makes the copies
                hidden = trunk[first].sample(part, n_samples)
            else:
                hidden = part.repeat(n_samples, 1)
            out = self._stochastic(hidden, trunk[first + 1 :])
            if transform is not None:
                out = transform(out)
            out = out.view(n_samples, rows, -1)
            std, mean = torch.std_mean(out, dim=0, correction=0)
            means.append(mean)
            stds.append(std)
        return torch.cat(means), torch.cat(stds)

    def _stochastic(self, hidden, layers):
        for layer in layers:
            hidden = layer.sample(hidden) if _is_dropout(layer) else layer(hidden)
        if len(self.heads) == 1:
            return self.heads[0](hidden)
        outputs = []
        for head in self.heads:
            out = hidden
            for layer in head:
                out = layer.sample(out) if _is_dropout(layer) else layer(out)
            outputs.append(out)
        return torch.cat(outputs, dim=1)
