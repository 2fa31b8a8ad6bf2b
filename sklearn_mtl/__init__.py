"""Multi-task neural networks as scikit-learn estimators."""

from ._affinity_display import TaskAffinityDisplay
from ._classifier import MultiTaskNetClassifier
from ._display import MultiTaskLearningCurveDisplay
from ._mixed import MultiTaskNet
from ._onnx import register_onnx_converters, to_onnx
from ._persistence import load, save
from ._regressor import MultiTaskNetRegressor

__all__ = [
    "MultiTaskLearningCurveDisplay",
    "MultiTaskNet",
    "MultiTaskNetClassifier",
    "MultiTaskNetRegressor",
    "TaskAffinityDisplay",
    "load",
    "register_onnx_converters",
    "save",
    "to_onnx",
]

__version__ = "0.1.0"
