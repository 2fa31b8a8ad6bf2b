"""Task specifications and the output layout."""

import numpy as np
import pytest
import torch

from sklearn_mtl._tasks import (
    CLASSIFICATION,
    REGRESSION,
    OutputLayout,
    TaskDecoder,
    TaskSpec,
)

C, R = CLASSIFICATION, REGRESSION


def test_layout_slices_and_blocks_follow_the_tasks():
    layout = OutputLayout((C, C, R, R, C, C), (2, 2, 1, 1, 3, 2))
    assert layout.n_tasks == 6 and layout.n_outputs == 11
    assert [(s.start, s.stop) for s in layout.slices] == [
        (0, 2), (2, 4), (4, 5), (5, 6), (6, 9), (9, 11)
    ]
    # Consecutive tasks of one kind and size share a block.
    assert [(b.kind, b.first, b.stop, b.column, b.size) for b in layout.blocks] == [
        (C, 0, 2, 0, 2), (R, 2, 4, 4, 1), (C, 4, 5, 6, 3), (C, 5, 6, 9, 2)
    ]
    assert layout.blocks[0].columns == slice(0, 4)
    np.testing.assert_array_equal(layout.column_task(), [0, 0, 1, 1, 2, 3, 4, 4, 4, 5, 5])


def test_layout_from_tasks_reads_each_spec():
    tasks = [TaskSpec(C, classes=np.array(["a", "b", "c"])), TaskSpec(R, mean=1.0, scale=2.0)]
    layout = OutputLayout.from_tasks(tasks)
    assert layout.kinds == (C, R) and layout.sizes == (3, 1)


def test_layout_softmax_per_classification_task_only():
    layout = OutputLayout((C, C, R, C), (2, 2, 1, 3))
    torch.manual_seed(0)
    logits = torch.randn(5, 8)
    expected = logits.clone()
    for kind, cols in zip(layout.kinds, layout.slices):
        if kind == C:
            expected[:, cols] = logits[:, cols].softmax(dim=1)
    out = layout.softmax(logits.clone())
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out[:, 4], logits[:, 4])  # the regression value


def test_layout_split_gives_views_of_the_columns_of_the_tasks_asked_for():
    layout = OutputLayout((C, R, C), (2, 1, 3))
    outputs = np.arange(30, dtype=np.float32).reshape(5, 6)
    parts = layout.split(outputs)
    assert [p.shape for p in parts] == [(5, 2), (5, 1), (5, 3)]
    assert all(np.shares_memory(p, outputs) for p in parts)  # no copies
    np.testing.assert_array_equal(parts[2], outputs[:, 3:])
    tail = layout.split(outputs, slice(1, None))
    assert len(tail) == 2 and np.array_equal(tail[0], outputs[:, 2:3])


def test_task_spec_encodes_and_decodes():
    spec = TaskSpec(C, classes=np.array(["no", "yes"]))
    column = np.array(["yes", "no", None], dtype=object)
    encoded = spec.encode(column, np.array([False, False, True]))
    np.testing.assert_array_equal(encoded[:2], [1, 0])
    assert np.isnan(encoded[2])
    decode = TaskDecoder([spec], 1, OutputLayout.from_tasks([spec]))
    assert list(decode(np.array([[0.2, 0.8], [0.9, 0.1]]))[:, 0]) == ["yes", "no"]
    with pytest.raises(ValueError, match="not among the model's classes"):
        spec.encode(np.array(["maybe"], dtype=object), np.array([False]))
    reg = TaskSpec(R, mean=10.0, scale=2.0)
    values = np.array([12.0, 8.0])
    np.testing.assert_allclose(reg.encode(values, np.zeros(2, bool)), [1.0, -1.0])
    decode = TaskDecoder([reg], 1, OutputLayout.from_tasks([reg]))
    np.testing.assert_allclose(decode(np.array([[1.0], [-1.0]], np.float32))[:, 0], values)


def test_task_decoder_matches_each_task_decoded_alone():
    rng = np.random.RandomState(0)
    specs = [
        TaskSpec(C, classes=np.array([0, 1])),
        TaskSpec(C, classes=np.array([0, 1])),
        TaskSpec(C, classes=np.array([3, 7])),  # same size, other labels
        TaskSpec(R, mean=2.0, scale=3.0),
        TaskSpec(R, mean=-1.0, scale=0.5),
        TaskSpec(C, classes=np.array(["a", "b", "c"])),
        TaskSpec(C, classes=np.array([0, 1])),  # an auxiliary task: not decoded
    ]
    layout = OutputLayout.from_tasks(specs)
    outputs = rng.normal(size=(9, layout.n_outputs)).astype(np.float32)
    decoded = TaskDecoder(specs, 6, layout)(outputs)
    assert decoded.shape == (9, 6) and decoded.dtype == object
    for t, spec in enumerate(specs[:6]):
        values = outputs[:, layout.slices[t]]
        expected = (
            spec.classes[values.argmax(axis=1)] if spec.kind == C
            else values[:, 0].astype(np.float64) * spec.scale + spec.mean
        )
        assert list(decoded[:, t]) == list(expected)
    numeric = TaskDecoder(specs, 3, layout)(outputs)
    assert numeric.dtype == np.int64 and numeric.shape == (9, 3)
    regression = TaskDecoder(specs[3:5], 2, OutputLayout.from_tasks(specs[3:5]))
    values = regression(outputs[:, 6:8])
    np.testing.assert_allclose(values, outputs[:, 6:8] * [3.0, 0.5] + [2.0, -1.0], rtol=1e-6)


def test_equal_labels_of_other_dtypes_decode_each_as_its_own():
    # 0/1 and False/True compare equal, but each task keeps its labels.
    specs = [
        TaskSpec(C, classes=np.array([False, True])),
        TaskSpec(C, classes=np.array([0, 1])),
        TaskSpec(C, classes=np.array([0.0, 1.0])),
    ]
    layout = OutputLayout.from_tasks(specs)
    outputs = np.array([[0.0, 1.0] * 3, [1.0, 0.0] * 3], dtype=np.float32)
    decoded = TaskDecoder(specs, 3, layout)(outputs)
    assert decoded.dtype == object
    assert [type(v) for v in decoded[0]] == [bool, int, float]
    assert decoded.tolist() == [[True, 1, 1.0], [False, 0, 0.0]]


def test_integer_labels_are_counted_and_encoded_as_offsets():
    from sklearn_mtl._tasks import _distinct

    rng = np.random.RandomState(0)
    for labels in (rng.randint(-3, 4, 50), rng.randint(0, 10**9, 50), np.array([2, 5, 9, 5])):
        np.testing.assert_array_equal(_distinct(labels), np.unique(labels))
        spec = TaskSpec(C, classes=np.unique(labels))
        missing = np.zeros(len(labels), dtype=bool)
        np.testing.assert_array_equal(
            spec.encode(labels, missing), np.searchsorted(spec.classes, labels)
        )
    spec = TaskSpec(C, classes=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels array\(\[3\]\)"):
        spec.encode(np.array([0, 3]), np.zeros(2, dtype=bool))


def test_encoded_predictions_pick_each_task_class_or_value():
    layout = OutputLayout((C, C, R, C), (2, 2, 1, 3))
    outputs = np.array([
        # task 0 pair, task 1 pair, value, task 3 triple
        [0.1, 0.9, 2.0, -1.0, 0.5, 0.2, 0.7, 0.1],
        [0.4, 0.4, 0.0, 0.0, -1.5, 0.3, 0.3, 0.3],  # ties: the first class
    ], dtype=np.float32)
    expected = np.array([[1, 0, 0.5, 1], [0, 0, -1.5, 0]], dtype=np.float64)
    encoded = layout.encoded_predictions(outputs)
    assert encoded.dtype == np.float64
    np.testing.assert_array_equal(encoded, expected)
    per_task = [
        outputs[:, cols].argmax(axis=1) if kind == C else outputs[:, cols.start]
        for kind, cols in zip(layout.kinds, layout.slices)
    ]
    np.testing.assert_array_equal(encoded, np.column_stack(per_task))
