"""Sparse input: the layer that reads CSR rows from their non-zeros, the CSR
batches it reads, and the lazy penalty of its weight.

A net fitted on a scipy sparse ``X`` reads every batch as a torch CSR tensor
of the batch's rows (nothing densified) and each layer that reads the input
is a :class:`SparseLinear`, whose product costs the batch's non-zeros times
the layer's width. With a solver that has a lazy step in torch (Adam through
``torch.optim.SparseAdam``, Adagrad through its sparse path) the weight's
gradient is row-sparse: only the rows of the features a batch holds are
computed, penalised and stepped.
"""

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

# torch warns (once) that its CSR tensors are in beta; the batches use only
# their constructor and accessors, which embedding_bag reads directly.
_CSR_BETA = "Sparse CSR tensor support is in beta"


def _csr_tensor(crow, col, values, shape):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CSR_BETA)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def is_sparse(X):
    """Whether ``X`` is a torch sparse tensor (a CSR batch)."""
    return torch.is_tensor(X) and X.layout != torch.strided


def csr_batch(X, rows, device):
    """The rows ``rows`` (a slice or an index array) of the scipy CSR matrix
    ``X`` as a torch CSR tensor on ``device``, 64-bit indices."""
    part = X[rows]
    crow = torch.from_numpy(part.indptr.astype("int64", copy=False))
    col = torch.from_numpy(part.indices.astype("int64", copy=False))
    values = torch.from_numpy(part.data)
    return _csr_tensor(crow, col, values, part.shape).to(device)


def take_rows(X, start, stop):
    """``X[start:stop]`` for a dense tensor or a CSR tensor."""
    if not is_sparse(X):
        return X[start:stop]
    crow = X.crow_indices()
    stop = min(stop, X.shape[0])
    first, last = crow[start], crow[stop]
    return _csr_tensor(
        crow[start : stop + 1] - first, X.col_indices()[first:last],
        X.values()[first:last], (stop - start, X.shape[1]),
    )


def repeat_rows(X, n):
    """``X.repeat(n, 1)`` for a dense tensor or a CSR tensor."""
    if not is_sparse(X):
        return X.repeat(n, 1)
    crow, nnz = X.crow_indices(), X.values().shape[0]
    shifts = torch.arange(n, device=crow.device).mul_(nnz).unsqueeze(1)
    crows = torch.cat([crow[:1], (crow[1:] + shifts).ravel()])
    return _csr_tensor(
        crows, X.col_indices().repeat(n), X.values().repeat(n),
        (n * X.shape[0], X.shape[1]),
    )


class _RowSparseProduct(torch.autograd.Function):
    """``X @ weight`` of a dense ``X`` whose gradient on ``weight`` is
    row-sparse: the rows of the columns of ``X`` that hold a non-zero
    (every row, for a dense perturbation). A sparse-gradient optimiser can
    then step a dense batch (adversarial training) too."""

    @staticmethod
    def forward(ctx, X, weight):
        ctx.save_for_backward(X, weight)
        return X @ weight

    @staticmethod
    def backward(ctx, grad):
        X, weight = ctx.saved_tensors
        grad_X = grad @ weight.t() if ctx.needs_input_grad[0] else None
        rows = (X != 0).any(dim=0).nonzero().squeeze(1)
        grad_weight = torch.sparse_coo_tensor(
            rows.unsqueeze(0), X[:, rows].t() @ grad, weight.shape,
            check_invariants=False, is_coalesced=True,
        )
        return grad_X, grad_weight


class _CSRProduct(torch.autograd.Function):
    """``X @ weight`` of a CSR batch ``X`` (``crow, col, values``), as
    ``embedding_bag`` of its non-zeros, with a row-sparse gradient on
    ``weight``: ``X[:, used].T @ grad``, one product of the batch grouped by
    feature (a CSR tensor of the features it holds) with the output's
    gradient, born coalesced. ``embedding_bag``'s own sparse gradient holds
    one row per non-zero, which the solver must then coalesce (sort and sum
    the non-zeros' rows): for a batch of 256 rows with 100 non-zeros each and
    256 outputs, forward and backward took 24-45 ms against 8-11 ms for this
    one at 10,000 features, 17-57 against 13-17 ms at 1,000,000
    (``benchmarks/csr_gradient.py``), the same figures to float rounding."""

    @staticmethod
    def forward(ctx, crow, col, values, weight):
        ctx.save_for_backward(crow, col, values, weight)
        return F.embedding_bag(
            col, weight, crow, mode="sum", per_sample_weights=values,
            include_last_offset=True,
        )

    @staticmethod
    def backward(ctx, grad):
        crow, col, values, weight = ctx.saved_tensors
        n_rows = len(crow) - 1
        rows = torch.repeat_interleave(torch.arange(n_rows, device=crow.device), crow.diff())
        grad_values = grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_values = (weight[col] * grad[rows]).sum(dim=1)
        if ctx.needs_input_grad[3]:
            order = torch.argsort(col, stable=True)
            features, counts = torch.unique_consecutive(col[order], return_counts=True)
            if len(features):
                starts = counts.new_zeros(len(features) + 1)
                torch.cumsum(counts, 0, out=starts[1:])
                by_feature = _csr_tensor(
                    starts, rows[order], values[order], (len(features), n_rows)
                )
                rows_grad = torch.sparse.mm(by_feature, grad)
            else:  # a batch without a non-zero
                rows_grad = grad.new_zeros((0, grad.shape[1]))
            grad_weight = torch.sparse_coo_tensor(
                features.unsqueeze(0), rows_grad, weight.shape,
                check_invariants=False, is_coalesced=True,
            )
        return None, None, grad_values, grad_weight


class SparseLinear(nn.Module):
    """An affine layer that reads a CSR batch from its non-zeros.

    ``forward(X)`` is ``X @ weight + bias``; for a CSR ``X`` it is
    ``embedding_bag`` of the non-zeros' columns, weighted by their values, so
    it costs the batch's non-zeros times ``out_features``. The weight is
    stored ``(in_features, out_features)``, one row per feature (as
    ``nn.EmbeddingBag`` stores it: torch cannot transpose a row-sparse
    gradient); its ``state_dict`` entry is ``(out_features, in_features)``
    as ``nn.Linear``'s, so states move between the two (persistence,
    transfer). The initialisation draws what ``nn.Linear`` draws, in the
    same order: a net fitted on CSR starts where the same net on dense
    input starts.

    Parameters
    ----------
    in_features, out_features : int
        Widths of the input and of the output.
    sparse_gradient : bool
        Whether the weight's gradient is row-sparse (for a sparse-gradient
        optimiser), else dense (computed from the non-zeros all the same).
    """

    def __init__(self, in_features, out_features, sparse_gradient=False):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.sparse_gradient = sparse_gradient
        # nn.Linear's draws: kaiming_uniform(a=sqrt(5)) of the (out, in)
        # matrix, row after row, then the bias. Drawn a block of rows at a
        # time into the transposed weight: for 1,000,000 x 256 that takes
        # 3.0 s against 5.9 s for a whole draw and a transposing copy, with
        # a 64 MB buffer rather than a second 1 GB matrix.
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        block = max(1, min(out_features, (1 << 24) // max(in_features, 1)))
        buffer = torch.empty(block, in_features)
        with torch.no_grad():
            for start in range(0, out_features, block):
                rows = buffer[: min(block, out_features - start)]
                nn.init.kaiming_uniform_(rows, a=math.sqrt(5))
                self.weight[:, start : start + len(rows)].copy_(rows.t())
        del buffer
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def forward(self, X):
        if is_sparse(X):
            crow, col, values = X.crow_indices(), X.col_indices(), X.values()
            if self.sparse_gradient:
                product = _CSRProduct.apply(crow, col, values, self.weight)
            else:
                product = F.embedding_bag(
                    col, self.weight, crow, mode="sum", per_sample_weights=values,
                    include_last_offset=True,
                )
            return torch.add(product, self.bias)
        if self.sparse_gradient and self.weight.requires_grad and torch.is_grad_enabled():
            return _RowSparseProduct.apply(X, self.weight) + self.bias
        return torch.addmm(self.bias, X, self.weight)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = destination[prefix + "weight"].t()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        if key in state_dict and state_dict[key].dim() == 2:
            state_dict = {**state_dict, key: state_dict[key].t()}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"sparse_gradient={self.sparse_gradient}"
        )


def feature_major(layer, tensor=None):
    """``tensor`` (default: the layer's weight, or an optimiser state of its
    shape) viewed ``(in_features, out_features)``: one row per input
    feature, for an ``nn.Linear`` and a :class:`SparseLinear` alike."""
    tensor = layer.weight if tensor is None else tensor
    return tensor if isinstance(layer, SparseLinear) else tensor.t()


def coalesced(grad):
    """``grad.coalesce()`` of a row-sparse gradient, without its sort and
    sum where the rows are already strictly increasing: those of
    :class:`_CSRProduct`, which autograd's accumulation hands on unflagged
    (it rebuilds a sparse gradient it keeps without the flag)."""
    if grad.is_coalesced():
        return grad
    rows = grad._indices()[0]
    if bool((rows[1:] > rows[:-1]).all()):
        return torch.sparse_coo_tensor(
            grad._indices(), grad._values(), grad.shape,
            check_invariants=False, is_coalesced=True,
        )
    return grad.coalesce()


def lazy_penalty_gradient(weight, alpha, l1_ratio):
    """Add the L1/L2 penalty's gradient to the rows of ``weight`` that its
    row-sparse gradient holds (the features of the batch), as lazy weight
    decay does; the other rows are not decayed this step."""
    grad = coalesced(weight.grad)
    rows = grad.indices()[0]
    values = grad.values()
    touched = weight.detach().index_select(0, rows)
    if l1_ratio < 1:
        values.add_(touched, alpha=alpha * (1 - l1_ratio))
    if l1_ratio > 0:
        values.add_(touched.sign(), alpha=alpha * l1_ratio)
    weight.grad = grad


class LazyAdam(torch.optim.Optimizer):
    """Adam for row-sparse gradients: ``torch.optim.SparseAdam``'s step,
    computed on the gathered rows.

    Only the rows a gradient holds are updated, their moments included
    (the moments of the other rows are not decayed: a lazy approximation of
    Adam, as in ``SparseAdam``); the step and bias corrections count every
    step. The update of those rows is ``SparseAdam``'s, ``lr *
    sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)``, but it
    gathers the rows once (``index_select``, then ``index_copy_`` and
    ``index_add_`` back) where ``SparseAdam`` masks the dense moments with
    sparse tensors: for 20,000 rows of 256 (a batch of 256 rows with 100
    non-zeros each out of 50,000 features) its step took about 40 ms
    against 65 to 115 ms for ``SparseAdam`` (one thread, a loaded
    2-core machine). The state has ``SparseAdam``'s entries (``step``,
    ``exp_avg``, ``exp_avg_sq``), allocated dense at the first step.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups, as for any torch optimizer.
    lr : float, default=1e-3
        Learning rate.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates of the moments.
    eps : float, default=1e-8
        Added to the root of the second moment.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        if not lr > 0:
            raise ValueError(f"lr must be positive; got {lr!r}.")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError(
                        "LazyAdam steps row-sparse gradients; this parameter has a "
                        "dense one."
                    )
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                grad = coalesced(param.grad)
                rows, values = grad.indices()[0], grad.values()
                if not len(rows):
                    continue
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                m = exp_avg.index_select(0, rows).lerp_(values, 1 - beta1)
                v = exp_avg_sq.index_select(0, rows).mul_(beta2)
                v.addcmul_(values, values, value=1 - beta2)
                exp_avg.index_copy_(0, rows, m)
                exp_avg_sq.index_copy_(0, rows, v)
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                update = m.div_(v.sqrt_().add_(group["eps"]))
                param.index_add_(0, rows, update, alpha=-step_size)
        return loss


class SparseAdagrad(torch.optim.Adagrad):
    """torch's Adagrad for row-sparse gradients (its exact sparse step), quiet.

    Its sparse step builds sparse tensors without saying whether torch should
    check their invariants, for which torch warns; the gradients it reads
    come from ``embedding_bag`` and the lazy penalty, which are valid.
    """

    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None and param.grad.is_sparse:
                    param.grad = coalesced(param.grad)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse invariant checks")
            return super().step(closure)
