"""Hyperparameters resolved into one normalised configuration."""

import pytest

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor
from sklearn_mtl._config import LEARNED_LR_FACTOR, resolve_config, resolve_task_weights


def test_config_normalises_dropout_sizes_and_batch_size():
    config = resolve_config(MultiTaskNetClassifier((16, 8), dropout=0.2, head_layer_sizes=[4]))
    assert config.hidden_layer_sizes == (16, 8) and config.head_layer_sizes == (4,)
    assert config.dropout == (0.2, 0.2) and config.head_dropout == 0.2
    assert config.batch_size == 200 and config.n_experts == 1 and config.device == "cpu"
    per_layer = resolve_config(MultiTaskNetClassifier((16, 8), dropout=[0.1, 0.3], batch_size=32))
    assert per_layer.dropout == (0.1, 0.3) and per_layer.head_dropout == 0.3
    assert per_layer.batch_size == 32
    concrete = resolve_config(MultiTaskNetClassifier((16,), dropout="concrete"))
    assert concrete.dropout == ("concrete",) and concrete.head_dropout == 0.0
    assert concrete.concrete
    assert resolve_config(MultiTaskNetClassifier((), dropout=0.5)).dropout == ()
    mmoe = resolve_config(MultiTaskNetClassifier((8,), architecture="mmoe", n_experts=3))
    assert mmoe.n_experts == 3


def test_config_optimizer_arguments():
    cls, kwargs = resolve_config(MultiTaskNetClassifier(solver="sgd")).optimizer()
    assert cls.__name__ == "SGD" and kwargs["momentum"] == 0.9 and kwargs["nesterov"]
    _, kwargs = resolve_config(
        MultiTaskNetClassifier(dropout="concrete", learning_rate_init=0.01)
    ).optimizer()
    assert kwargs["param_groups"] == [
        ("balancer.*", {"lr": LEARNED_LR_FACTOR * 0.01}),
        ("trunk.*.logit", {"lr": LEARNED_LR_FACTOR * 0.01}),
    ]  # the trunk at the default group's rate, in the default group
    _, kwargs = resolve_config(
        MultiTaskNetClassifier(learning_rate_init=0.01, trunk_learning_rate=0.001)
    ).optimizer()
    assert kwargs["param_groups"] == [
        ("balancer.*", {"lr": LEARNED_LR_FACTOR * 0.01}), ("trunk.*", {"lr": 0.001}),
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(hidden_layer_sizes=(), architecture="mmoe"), "mmoe' needs at least one"),
        (dict(hidden_layer_sizes=(), task_balancing="pcgrad"), "task_balancing='pcgrad'"),
        (dict(hidden_layer_sizes=(8, 8), dropout=[0.1]), "one rate per trunk layer"),
        (dict(dropout=[1.5]), r"dropout must be a float in \[0, 1\)"),
        (dict(hidden_layer_sizes=(8, -1)), "hidden_layer_sizes must be a sequence"),
    ],
)
def test_config_errors(params, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(MultiTaskNetRegressor(**params))


def test_task_weights_resolved_against_the_tasks():
    assert resolve_task_weights(None, 3).tolist() == [1.0, 1.0, 1.0]
    assert resolve_task_weights([1, 2], 2).dtype == "float32"
    with pytest.raises(ValueError, match="one entry per task .column of y.; got 3 entries"):
        resolve_task_weights([1, 2, 3], 2)
    with pytest.raises(ValueError, match="finite and non-negative"):
        resolve_task_weights([1, -2], 2)
