"""The ONNX graph of a fitted network, written op by op from its torch weights."""

import math

import numpy as np
from torch import nn

from ._module import GroupedLinear
from ._sparse import SparseLinear, feature_major

ACTIVATION_OPS = {nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.ReLU: "Relu"}


class _Graph:
    """Adds constants and nodes to a skl2onnx container, with unique names."""

    def __init__(self, scope, container):
        self.scope = scope
        self.container = container

    def const(self, value, seed="c"):
        from onnx import TensorProto, numpy_helper

        name = self.scope.get_unique_variable_name(seed)
        value = np.asarray(value)
        if value.dtype.kind == "U":
            strings = [s.encode("utf-8") for s in value.ravel().tolist()]
            self.container.add_initializer(
                name, TensorProto.STRING, list(value.shape), strings
            )
        else:
            tensor = numpy_helper.from_array(np.ascontiguousarray(value), name)
            self.container.add_initializer(name, tensor.data_type, None, tensor)
        return name

    def op(self, op_type, *inputs, out=None, seed=None, **attrs):
        """Add an ``op_type`` node; returns the name of its output."""
        out = out or self.scope.get_unique_variable_name(seed or op_type.lower())
        self.container.add_node(
            op_type,
            list(inputs),
            [out],
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return out


def _float_input(graph, variables):
    """The input as one float32 ``(n, n_features)`` tensor."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import FloatTensorType

    names = [
        v.onnx_name
        if isinstance(v.type, FloatTensorType)
        else graph.op("Cast", v.onnx_name, to=TensorProto.FLOAT)
        for v in variables
    ]
    return names[0] if len(names) == 1 else graph.op("Concat", *names, axis=1)


def _numpy(tensor):
    return tensor.detach().cpu().double().numpy()


def _fold_batch_norm(weight, bias, norm):
    """The affine map of ``Linear`` then ``BatchNorm1d`` in inference mode.

    ``weight`` has the output units on its last axis.
    """
    if norm.running_mean is None:
        raise ValueError(
            "A BatchNorm1d layer without running statistics cannot be exported: "
            "in inference mode it normalises by each batch's own statistics."
        )
    units = weight.shape[-1] if weight.ndim == 2 else weight.shape[0] * weight.shape[-1]
    gamma = _numpy(norm.weight) if norm.affine else np.ones(units)
    beta = _numpy(norm.bias) if norm.affine else np.zeros(units)
    scale = gamma / np.sqrt(_numpy(norm.running_var) + norm.eps)
    shift = beta - _numpy(norm.running_mean) * scale
    if weight.ndim == 3:  # grouped: units laid out group by group
        scale = scale.reshape(bias.shape)
        shift = shift.reshape(bias.shape)
        return weight * scale[:, None, :], bias * scale + shift
    return weight * scale, bias * scale + shift


class _Stack:
    """Writes a ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` stack.

    A tensor is either flat ``(n, columns)`` or, for the experts of a
    mixture, grouped ``(groups, n, width)``; ``GroupedLinear`` layers read
    and write the grouped layout, so the experts are reshaped once.
    """

    def __init__(self, graph):
        self.graph = graph

    def run(self, layers, x, groups=None):
        """Write ``layers`` on ``x`` (grouped with ``groups`` when not None).

        Returns the output's name, its number of groups (None when flat)
        and its width (per group).
        """
        pending = None  # (weight with outputs last, bias, grouped) not yet written
        width = None
        for layer in layers:
            if isinstance(layer, GroupedLinear):
                x, groups = self._flush(pending, x, groups)
                pending = (
                    _numpy(layer.weight),
                    _numpy(layer.bias),
                    layer.in_features,
                )
                width = layer.out_features
            elif isinstance(layer, (nn.Linear, SparseLinear)):
                x, groups = self._flush(pending, x, groups)
                if groups is not None:
                    raise ValueError(
                        "A Linear layer after grouped layers is not supported."
                    )
                # A SparseLinear reads the dense input of the export; its
                # weight is already (in, out).
                weight = _numpy(feature_major(layer))
                pending = (weight, _numpy(layer.bias), None)
                width = layer.out_features
            elif isinstance(layer, nn.BatchNorm1d):
                if pending is None:
                    raise ValueError(
                        "ONNX export folds each BatchNorm1d into the Linear layer "
                        "before it; this one follows no Linear layer."
                    )
                weight, bias, grouped = pending
                pending = (*_fold_batch_norm(weight, bias, layer), grouped)
            elif isinstance(layer, nn.Dropout) or type(layer).__name__.endswith(
                "Dropout"
            ):
                continue  # the identity in inference mode
            else:
                x, groups = self._flush(pending, x, groups)
                pending = None
                x = self._activation(layer, x)
        x, groups = self._flush(pending, x, groups)
        return x, groups, width

    def _flush(self, pending, x, groups):
        if pending is None:
            return x, groups
        g = self.graph
        weight, bias, grouped_in = pending
        weight = weight.astype(np.float32)
        bias = bias.astype(np.float32)
        if grouped_in is None:
            return g.op("Gemm", x, g.const(weight, "W"), g.const(bias, "b")), None
        n_groups = weight.shape[0]
        if groups is None:  # (n, groups * in) -> (groups, n, in)
            shape = g.const(np.array([0, n_groups, grouped_in], dtype=np.int64))
            x = g.op("Transpose", g.op("Reshape", x, shape), perm=[1, 0, 2])
        product = g.op("MatMul", x, g.const(weight, "W"))
        return g.op("Add", product, g.const(bias[:, None, :], "b")), n_groups

    def _activation(self, layer, x):
        g = self.graph
        if isinstance(layer, nn.Identity):
            return x
        if type(layer) in ACTIVATION_OPS:
            return g.op(ACTIVATION_OPS[type(layer)], x)
        if isinstance(layer, nn.GELU) and layer.approximate == "none":
            # x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))); ONNX's Gelu op
            # needs opset 20.
            scaled = g.op("Mul", x, g.const(np.float32(1 / math.sqrt(2))))
            erf = g.op("Add", g.op("Erf", scaled), g.const(np.float32(1.0)))
            return g.op("Mul", g.op("Mul", x, erf), g.const(np.float32(0.5)))
        raise TypeError(
            f"ONNX export does not know the layer {layer!r} of the network."
        )


def _task_hidden(graph, module, x):
    """A function of the task index giving the input of that task's head."""
    stack = _Stack(graph)
    hidden, groups, width = stack.run(module.trunk, x)
    if module.gates is None:
        return lambda t: hidden
    n_experts = module.n_experts
    n_tasks = module.gates.out_features // n_experts
    if groups is None:  # one expert layer: (n, experts * width) -> (n, experts, width)
        width //= n_experts
        shape = graph.const(np.array([0, n_experts, width], dtype=np.int64))
        experts = graph.op("Reshape", hidden, shape)
    else:  # (experts, n, width) -> (n, experts, width)
        experts = graph.op("Transpose", hidden, perm=[1, 0, 2])
    logits, _, _ = stack.run([module.gates], x)
    shape = graph.const(np.array([0, n_tasks, n_experts], dtype=np.int64))
    gates = graph.op("Softmax", graph.op("Reshape", logits, shape), axis=-1)
    # (n, tasks, experts) @ (n, experts, width): each task's mixture. The fused
    # head is affine and a task's gates sum to 1, so this equals the module's
    # mixture of the head's outputs on each expert.
    mixtures = graph.op("MatMul", gates, experts)
    flat = graph.const(np.array([0, width], dtype=np.int64))

    def mixture(t):
        # Gather with a 1-element index and a reshape: skl2onnx stores a 0-d
        # index as shape (1,), which would keep the task axis.
        index = graph.const(np.array([t], dtype=np.int64))
        return graph.op("Reshape", graph.op("Gather", mixtures, index, axis=1), flat)

    return mixture
