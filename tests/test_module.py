import numpy as np
import pytest
import torch

from sklearn_mtl._dropout import Dropout
from sklearn_mtl._module import MultiTaskModule
from sklearn_mtl._tasks import CLASSIFICATION, REGRESSION, OutputLayout


def layout(sizes):
    """An output layout with these head sizes (the module reads only the sizes)."""
    return OutputLayout(("classification",) * len(sizes), tuple(sizes))


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5, 0.9])
def test_dropout_drops_at_rate_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    layer = Dropout(p).train()
    X = torch.ones(500, 1001)  # an odd size: the mask is drawn in blocks of four
    out = layer(X)
    assert (out == 0).float().mean().item() == pytest.approx(p, abs=3e-3)
    assert out.mean().item() == pytest.approx(1.0, abs=1e-2)
    assert torch.equal(layer.eval()(X), X)


def test_dropout_masks_differ_and_follow_the_seed():
    layer = Dropout(0.5).train()
    X = torch.ones(64, 64)
    torch.manual_seed(1)
    a, b = layer(X), layer(X)
    torch.manual_seed(1)
    assert torch.equal(layer(X), a) and not torch.equal(a, b)


def test_module_output_columns_follow_tasks():
    module = MultiTaskModule(5, layout([2, 1, 3]), hidden_layer_sizes=(8,))
    assert module(torch.randn(4, 5)).shape == (4, 6)
    with_heads = MultiTaskModule(5, layout([2, 1, 3]), hidden_layer_sizes=(8,), head_layer_sizes=(4,))
    assert with_heads(torch.randn(4, 5)).shape == (4, 6)
    assert len(module.weight_matrices()) == 2 and len(with_heads.weight_matrices()) == 7


def test_monte_carlo_passes_sample_the_head_dropout_of_a_single_task():
    module = MultiTaskModule(
        5, layout([1]), hidden_layer_sizes=(8,), head_layer_sizes=(4,), activation="tanh",
        dropout=(0.5,), head_dropout=0.5,
    )
    module.eval()
    module.trunk[-1].p = 0.0  # only the head's dropout layer is left
    torch.manual_seed(0)
    mean, std = module.sample(torch.randn(10, 5), 20)
    assert mean.shape == std.shape == (10, 1)
    assert (std > 0).all()


def test_the_margin_head_predicts_what_the_full_head_predicts():
    # Binary, three-class and regression tasks side by side; with and
    # without a trunk; probabilities and the logits that pick the labels.
    C, R = CLASSIFICATION, REGRESSION
    layout = OutputLayout((C, C, C, R, C), (2, 2, 3, 1, 2))
    torch.manual_seed(0)
    X = torch.randn(50, 6)
    for hidden in ((8,), ()):
        module = MultiTaskModule(6, layout, hidden_layer_sizes=hidden, dropout=(0.0,) * len(hidden)).eval()
        weight, bias = module.margin_head(layout)
        assert weight.shape == (1 + 1 + 3 + 1 + 1, module.heads[0].in_features)
        with torch.no_grad():
            full = module(X)
            compact = torch.addmm(bias, module.trunk(X), weight.T)
        proba = layout.from_margins(compact)
        torch.testing.assert_close(proba, layout.softmax(full.clone()), atol=1e-6, rtol=1e-5)
        # Written batch by batch into one output: the same logits, and the
        # same probabilities to float32 rounding (torch's vectorised sigmoid
        # rounds a few elements otherwise by where they fall in a buffer).
        binary = OutputLayout((C,) * 3, (2,) * 3)
        for lay, margins in ((layout, compact), (binary, compact[:, :3])):
            for keep in (True, False):
                whole = lay.from_margins(margins, proba=keep)
                out = torch.full_like(whole, float("nan"))
                for rows in (slice(0, 17), slice(17, 40), slice(40, 50)):
                    written = lay.from_margins(margins[rows], keep, out=out[rows])
                    assert written.data_ptr() == out[rows].data_ptr()
                if keep:
                    torch.testing.assert_close(out, whole, rtol=1e-6, atol=1e-7)
                else:
                    assert torch.equal(out, whole)
        logits = layout.from_margins(compact, proba=False).numpy()
        pairs = full.numpy()
        for cols in (slice(0, 2), slice(2, 4), slice(8, 10)):  # the two-class tasks
            np.testing.assert_array_equal(
                logits[:, cols].argmax(axis=1), pairs[:, cols].argmax(axis=1)
            )
        np.testing.assert_allclose(logits[:, 4:8], pairs[:, 4:8], rtol=1e-5, atol=1e-6)
    mmoe = MultiTaskModule(6, layout, architecture="mmoe", n_experts=2)
    with_head_layers = MultiTaskModule(6, layout, head_layer_sizes=(4,))
    regression_only = OutputLayout((R, R), (1, 1))
    assert mmoe.margin_head(layout) is None
    assert with_head_layers.margin_head(layout) is None
    assert MultiTaskModule(6, regression_only).margin_head(regression_only) is None


def test_a_large_output_is_written_batch_by_batch_with_the_same_figures(monkeypatch):
    # Predictions from the margin head are written batch by batch into one
    # buffer above FILLED_OUTPUT_MIN_VALUES, joined below it: the same labels,
    # the same probabilities to float32 rounding.
    import sklearn_mtl._net as net_module
    from sklearn_mtl import MultiTaskNet
    from sklearn_mtl._data import make_dataset

    rng = np.random.RandomState(0)
    X = rng.normal(size=(1300, 5)).astype(np.float32)
    Y = np.column_stack([
        X[:, 0] > 0, X[:, 1] > 0, np.digitize(X[:, 2], [-0.5, 0.5]), X[:, 3], X[:, 4] > 0,
    ]).astype(object)
    est = MultiTaskNet(
        (8,), task_types=["classification"] * 3 + ["regression", "classification"],
        max_iter=2, random_state=0,
    ).fit(X, Y)
    est.net_.iterator_valid__batch_size = 400  # four batches
    figures = {}
    for threshold in (0, 1 << 40):
        monkeypatch.setattr(net_module, "FILLED_OUTPUT_MIN_VALUES", threshold)
        figures[threshold] = est.net_.task_outputs(make_dataset(X))
        figures[threshold, "labels"] = est.predict(X)
    np.testing.assert_allclose(figures[0], figures[1 << 40], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(figures[0, "labels"], figures[1 << 40, "labels"])
