"""The torch network: a trunk (shared, or a mixture of experts) and one
output head per task."""

import math
from functools import partial

import torch
from torch import nn

from ._dropout import ConcreteDropout, Dropout
from ._sparse import SparseLinear, feature_major, repeat_rows, take_rows

# ReLU in place: it overwrites a Linear's (or batch norm's) output, which
# neither's backward pass reads, and saves a copy of every hidden layer's
# output in prediction.
ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": partial(nn.ReLU, inplace=True),
    "gelu": nn.GELU,
}

class GroupedLinear(nn.Module):
    """``groups`` independent ``Linear`` layers applied in one batched product.

    The input is ``(n, groups * in_features)``, group ``g`` in columns
    ``g * in_features`` to ``(g + 1) * in_features``; the output is laid out
    the same way with ``out_features`` per group. The weight is ``(groups,
    in_features, out_features)`` (group ``g`` computes ``X_g @ weight[g] +
    bias[g]``), initialised as ``nn.Linear`` initialises each layer.
    """

    def __init__(self, groups, in_features, out_features):
        super().__init__()
        self.groups = groups
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(groups, out_features))
        bound = 1 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X):
        n = X.shape[0]
        grouped = X.reshape(n, self.groups, self.in_features).transpose(0, 1)
        out = torch.baddbmm(self.bias.unsqueeze(1), grouped, self.weight)
        return out.transpose(0, 1).reshape(n, self.groups * self.out_features)

    def extra_repr(self):
        return (
            f"groups={self.groups}, in_features={self.in_features}, "
            f"out_features={self.out_features}"
        )


def _is_dropout(layer):
    return isinstance(layer, (Dropout, ConcreteDropout))


def _is_linear(layer):
    return isinstance(layer, (nn.Linear, GroupedLinear, SparseLinear))


def _run(layer, X, stochastic, generator=None):
    """``layer(X)``, or a dropout layer's stochastic pass when ``stochastic``."""
    if stochastic and _is_dropout(layer):
        return layer.sample(X, generator=generator)
    return layer(X)


def _blocks(n_in, widths, activation, dropouts, batch_norm, groups=1, first=nn.Linear):
    """``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each width.

    With ``groups > 1`` the stack is ``groups`` independent stacks side by
    side (the experts of a mixture): the first ``Linear`` maps the shared
    input to ``groups * width`` columns, later ones are :class:`GroupedLinear`,
    and batch norm and dropout act on all ``groups * width`` columns (one
    dropout rate per layer for every group). A rate of ``"concrete"`` gives a
    :class:`ConcreteDropout` layer. ``first`` builds the first ``Linear``
    (a :class:`SparseLinear` when it reads sparse input). Returns the stack
    and the width of one group's output.
    """
    layers = []
    for i, (width, rate) in enumerate(zip(widths, dropouts, strict=True)):
        if i == 0 or groups == 1:
            layers.append((first if i == 0 else nn.Linear)(n_in, groups * width))
        else:
            layers.append(GroupedLinear(groups, n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(groups * width))
        layers.append(ACTIVATIONS[activation]())
        if isinstance(rate, str):  # "concrete"
            layers.append(ConcreteDropout(groups * width))
        elif rate > 0:
            layers.append(Dropout(rate))
        n_in = width
    return nn.Sequential(*layers), n_in


class MultiTaskModule(nn.Module):
    """A trunk that feeds every task's head: shared, or a mixture of experts.

    With ``architecture="shared"`` (hard parameter sharing) every head reads
    the output of one ``trunk``. With ``architecture="mmoe"`` (multi-gate
    mixture of experts, Ma et al., KDD 2018) the trunk is ``n_experts``
    stacks of the same blocks, computed side by side (see :func:`_blocks`),
    and each task ``t`` has a softmax gate on the input, ``g_t(x) =
    softmax(W_t x + b_t)`` over the experts; task ``t``'s head reads
    ``sum_e g_t,e(x) * expert_e(x)``. The gates of all tasks are one
    ``Linear`` (``gates``); :meth:`gate_weights` returns their values.

    The forward pass returns one ``(n_samples, layout.n_outputs)`` tensor,
    the columns of each task where ``layout`` puts them. Without head hidden
    layers all heads are one fused ``Linear`` (a single matrix product for
    every task); with them each task has its own stack of blocks.

    The module takes normalised values (see ``resolve_config``); it does not
    interpret the estimators' hyperparameters.

    Parameters
    ----------
    n_features : int
        Width of the input.
    layout : OutputLayout
        The tasks' outputs (number of classes, or 1 for regression) and
        their columns.
    hidden_layer_sizes : tuple of int
        Widths of the trunk's blocks (of each expert's, for ``"mmoe"``).
    head_layer_sizes : tuple of int
        Widths of the hidden blocks of every head.
    activation : str
        A key of ``ACTIVATIONS``.
    dropout : tuple of (float or "concrete")
        One entry per trunk block: a dropout rate, or ``"concrete"`` for a
        :class:`ConcreteDropout` layer with a rate of its own. With
        ``"mmoe"`` each entry applies to that layer of every expert.
    head_dropout : float
        Dropout rate of every head block.
    batch_norm : bool
        Whether every block has a ``BatchNorm1d`` after its ``Linear``.
    architecture : {"shared", "mmoe"}
        Hard parameter sharing, or a multi-gate mixture of experts (which
        needs at least one trunk block).
    n_experts : int
        Number of experts with ``"mmoe"``; ignored with ``"shared"``.
    sparse_input : bool
        Whether the layers that read the input (``input_layers``) are
        :class:`SparseLinear` layers, which read CSR batches from their
        non-zeros.
    sparse_gradient : bool
        Whether those layers' weights get row-sparse gradients (for a
        sparse-gradient optimiser); only with ``sparse_input``.
    """

    def __init__(
        self,
        n_features,
        layout,
        hidden_layer_sizes=(100,),
        head_layer_sizes=(),
        activation="relu",
        dropout=(0.0,),
        head_dropout=0.0,
        batch_norm=False,
        architecture="shared",
        n_experts=4,
        sparse_input=False,
        sparse_gradient=False,
    ):
        super().__init__()
        mmoe = architecture == "mmoe"
        self.n_experts = int(n_experts) if mmoe else 1
        # What another model needs to build the same trunk (transfer).
        self.trunk_shape = {
            "hidden_layer_sizes": tuple(int(s) for s in hidden_layer_sizes),
            "architecture": architecture,
            "n_experts": self.n_experts,
            "activation": activation,
            "batch_norm": bool(batch_norm),
        }
        self.frozen_trunk = False
        self.sparse_input = bool(sparse_input)
        reader = (
            partial(SparseLinear, sparse_gradient=bool(sparse_gradient))
            if sparse_input else nn.Linear
        )
        self.trunk, width = _blocks(
            n_features,
            hidden_layer_sizes,
            activation,
            dropout,
            batch_norm,
            groups=self.n_experts,
            first=reader,
        )
        # Without a trunk the heads read the input.
        head_reader = nn.Linear if hidden_layer_sizes else reader
        self.output_sizes = layout.sizes
        n_tasks = layout.n_tasks
        self.gates = reader(n_features, n_tasks * self.n_experts) if mmoe else None
        # The task each output column belongs to (for the fused heads of MMoE).
        self.register_buffer(
            "column_task", torch.as_tensor(layout.column_task()), persistent=False
        )
        if head_layer_sizes:
            self.heads = nn.ModuleList()
            for size in self.output_sizes:
                hidden, head_width = _blocks(
                    width,
                    head_layer_sizes,
                    activation,
                    [head_dropout] * len(head_layer_sizes),
                    batch_norm,
                    first=head_reader,
                )
                self.heads.append(nn.Sequential(*hidden, nn.Linear(head_width, size)))
        else:
            self.heads = nn.ModuleList([head_reader(width, layout.n_outputs)])
        self.fused_heads = not head_layer_sizes

        # Each concrete layer with the Linear layers that read its output.
        linears = [m for m in self.trunk if _is_linear(m)]
        firsts = [
            next(m for m in head.modules() if _is_linear(m)) for head in self.heads
        ]
        self.concrete_layers = [
            (layer, [linears[i + 1]] if i + 1 < len(linears) else firsts)
            for i, layer in enumerate(
                m for m in self.trunk if isinstance(m, ConcreteDropout)
            )
        ]
        # Every layer that reads the input: one group-lasso group per feature
        # spans them all, so a removed feature is read by nothing.
        self.input_layers = (linears[:1] or firsts) + ([self.gates] if mmoe else [])

    def forward(self, X):
        return self._head_outputs(self.trunk(X), self._gates_or_none(X))

    @property
    def representation_width(self):
        """Width of the trunk's output (the experts' side by side for MMoE);
        0 without a trunk."""
        sizes = self.trunk_shape["hidden_layer_sizes"]
        return self.n_experts * sizes[-1] if sizes else 0

    def _trunk_layers(self):
        """``(name, layer)`` of the trunk's layers with a state, by block:
        ``"{block}.linear"`` and ``"{block}.batch_norm"``, whatever the
        dropout layers between them."""
        block = -1
        for layer in self.trunk:
            if _is_linear(layer):
                block += 1
                yield f"{block}.linear", layer
            elif isinstance(layer, nn.BatchNorm1d):
                yield f"{block}.batch_norm", layer

    def trunk_state(self):
        """A copy of the trunk's weights and batch-norm statistics.

        Keys are ``"{block}.linear.{name}"`` and ``"{block}.batch_norm.{name}"``
        (``name`` as in the layer's own ``state_dict``): they do not depend
        on which blocks have a dropout layer, so a trunk trained with one
        dropout loads into a trunk with another. Dropout layers (concrete
        dropout's learned rate included) have no entry.
        """
        return {
            f"{prefix}.{key}": value.detach().clone()
            for prefix, layer in self._trunk_layers()
            for key, value in layer.state_dict().items()
        }

    def load_trunk(self, state):
        """Copy ``state`` (from :meth:`trunk_state`) into the trunk.

        The trunk must have the same blocks (widths, experts, batch norm);
        a mismatch is a ``ValueError``. The tensors are copied, so the
        source of ``state`` never shares memory with this module.
        """
        layers = dict(self._trunk_layers())
        expected = {
            f"{prefix}.{key}": value.shape
            for prefix, layer in layers.items()
            for key, value in layer.state_dict().items()
        }
        given = {key: value.shape for key, value in state.items()}
        if expected != given:
            raise ValueError(
                f"The trunk state does not fit this trunk: expected entries "
                f"{expected}, got {given}."
            )
        for prefix, layer in layers.items():
            start = prefix + "."
            layer.load_state_dict(
                {k[len(start) :]: v for k, v in state.items() if k.startswith(start)}
            )

    def freeze_trunk(self, frozen, keep_gradients=False):
        """Freeze (or unfreeze) the trunk's weights and batch-norm statistics.

        A frozen trunk's ``BatchNorm1d`` layers stay in evaluation mode
        whatever :meth:`train` sets (their running statistics do not move),
        and its parameters stop requiring gradients unless
        ``keep_gradients`` (a task-balancing method that reads the trunk's
        gradients); the optimiser's learning rate of 0 for them keeps them
        in place either way. Concrete dropout's rates keep learning: they
        are the new model's regularisation, not part of the representation.
        """
        self.frozen_trunk = bool(frozen)
        for layer in self.trunk:
            if isinstance(layer, ConcreteDropout):  # a rate, still learned
                continue
            for param in layer.parameters():
                param.requires_grad_(not frozen or keep_gradients)
        return self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        self.keep_frozen_statistics()
        return self

    def keep_frozen_statistics(self):
        """A frozen trunk's batch norms stay in evaluation mode: training
        the heads does not move the statistics the trunk was trained with."""
        if self.frozen_trunk:
            for layer in self.trunk:
                if isinstance(layer, nn.BatchNorm1d):
                    layer.eval()

    def _gates_or_none(self, X):
        return None if self.gates is None else self.gate_weights(X)

    def gate_weights(self, X):
        """Each task's softmax weights over the experts, ``(n, n_tasks, n_experts)``.

        Only for ``architecture="mmoe"``. ``gate_weights(X).mean(dim=0)`` is
        the mean gate of each task: how much each expert serves it.
        """
        if self.gates is None:
            raise ValueError(
                "gate_weights is for architecture='mmoe'; this module has a shared "
                "trunk and no gates."
            )
        logits = self.gates(X).view(X.shape[0], len(self.output_sizes), self.n_experts)
        return logits.softmax(dim=2)

    def _head_outputs(self, hidden, gates, stochastic=False, generator=None):
        """The heads' outputs from the trunk's output ``hidden``.

        For MMoE ``hidden`` holds the experts side by side and ``gates`` the
        gate weights; ``stochastic`` draws the masks of the heads' dropout
        layers from ``generator`` (Monte-Carlo passes).
        """
        if gates is not None:
            experts = hidden.view(hidden.shape[0], self.n_experts, -1)
            if self.fused_heads:
                # The fused head is affine and each task's gates sum to 1, so
                # the head on a task's mixture equals the mixture of the
                # head's outputs on each expert: one matrix product, and no
                # (n, tasks, width) mixture to build.
                per_expert = self.heads[0](experts)  # (n, experts, outputs)
                column_gates = gates[:, self.column_task].transpose(1, 2)
                return (per_expert * column_gates).sum(dim=1)
            # (n, tasks, experts) @ (n, experts, width): each task's mixture.
            hidden = torch.bmm(gates, experts)
        elif self.fused_heads:
            return self.heads[0](hidden)
        outputs = []
        for t, head in enumerate(self.heads):
            out = hidden if gates is None else hidden[:, t]
            for layer in head:
                out = _run(layer, out, stochastic, generator)
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

    def margin_head(self, layout):
        """The fused head with one row per two-class task, ``(weight, bias)``
        without a graph, or None.

        A two-class task's two rows ``(w_0, b_0), (w_1, b_1)`` become the one
        row of its logits' margin, ``(w_1 - w_0, b_1 - b_0)``: its
        probabilities are ``sigmoid(-m)`` and ``sigmoid(m)``, so prediction
        needs only ``m`` and does half the head's multiply-adds for such
        tasks (see ``OutputLayout.from_margins``). The other tasks keep their
        rows. None when there is no two-class task, or no single dense head
        on a shared trunk's output (MMoE, per-task head layers).
        """
        head = self.heads[0]
        if not (self.fused_heads and self.gates is None and type(head) is nn.Linear):
            return None
        if not any(block.binary for block in layout.blocks):
            return None
        weights, biases = [], []
        with torch.no_grad():
            for block in layout.blocks:
                weight, bias = head.weight[block.columns], head.bias[block.columns]
                if block.binary:  # rows 1, 3, 5, ... less rows 0, 2, 4, ...
                    weight, bias = weight[1::2] - weight[::2], bias[1::2] - bias[::2]
                weights.append(weight)
                biases.append(bias)
        if len(weights) == 1:
            return weights[0], biases[0]
        return torch.cat(weights), torch.cat(biases)

    def weight_matrices(self):
        """The weights of the ``Linear`` layers (experts' and gates' included),
        which the L1/L2 penalty applies to."""
        # The layers are fixed at construction and moving the module keeps
        # its parameter objects, so the list is built once.
        if getattr(self, "_weight_matrices", None) is None:
            self._weight_matrices = [m.weight for m in self.modules() if _is_linear(m)]
        return self._weight_matrices

    def _apply(self, fn, *args, **kwargs):
        self._weight_matrices = None  # a conversion may replace the parameters
        return super()._apply(fn, *args, **kwargs)

    def sparse_gradient_weights(self):
        """The weights whose gradients are row-sparse (see :class:`SparseLinear`)."""
        return [
            m.weight for m in self.input_layers
            if isinstance(m, SparseLinear) and m.sparse_gradient
        ]

    def shared_parameters(self):
        """The trunk's parameters, which every task's loss reaches."""
        return list(self.trunk.parameters())

    def last_shared_weight(self):
        """The weight of the trunk's last layer (GradNorm's shared layer)."""
        return [m.weight for m in self.trunk if _is_linear(m)][-1]

    def dropout_rates(self):
        """The rate of each trunk block (learned ones for concrete dropout)."""
        rates = []
        for layer in self.trunk:
            if _is_linear(layer):
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
        """Euclidean norm of each input feature's weights in the layers that
        read the input (the first trunk layer, and the gates of MMoE)."""
        squares = sum(
            feature_major(m).detach().square().sum(dim=1) for m in self.input_layers
        )
        return squares.sqrt()

    def sample(self, X, n_samples, transform=None, max_rows=65536, generator=None):
        """Mean and standard deviation of ``n_samples`` stochastic passes.

        Monte-Carlo dropout (Gal & Ghahramani, ICML 2016): every dropout layer
        draws a mask, every other layer (batch norm included) runs as it is,
        so call it in evaluation mode. The trunk before the first dropout
        layer (and the gates of MMoE, which have no dropout) runs once; that
        layer then writes ``n_samples`` masked copies of each chunk (one
        independent mask per copy, at most ``max_rows`` rows in all), which
        run through the rest.
        ``transform`` (e.g. a softmax) maps each pass's outputs before the
        mean and standard deviation (``ddof=0``) over the passes are taken.
        """
        trunk = list(self.trunk)
        first = next((i for i, m in enumerate(trunk) if _is_dropout(m)), len(trunk))
        shared = X
        for layer in trunk[:first]:
            shared = layer(shared)
        gates = self._gates_or_none(X)
        chunk = max(1, max_rows // n_samples)
        means, stds = [], []
        for start in range(0, shared.shape[0], chunk):
            part = take_rows(shared, start, start + chunk)  # CSR without a trunk
            rows = part.shape[0]
            if first < len(trunk):  # the first dropout layer makes the copies
                hidden = trunk[first].sample(part, n_samples, generator)
            else:
                hidden = repeat_rows(part, n_samples)
            for layer in trunk[first + 1 :]:
                hidden = _run(layer, hidden, True, generator)
            if gates is not None:
                part_gates = gates[start : start + chunk].repeat(n_samples, 1, 1)
            else:
                part_gates = None
            out = self._head_outputs(hidden, part_gates, True, generator)
            if transform is not None:
                out = transform(out)
            out = out.view(n_samples, rows, -1)
            std, mean = torch.std_mean(out, dim=0, correction=0)
            means.append(mean)
            stds.append(std)
        return torch.cat(means), torch.cat(stds)
