"""Multi-task neural networks as scikit-learn estimators."""

from ._affinity_display import TaskAffinityDisplay
from ._classifier import MultiTaskNetClassifier
from ._display import MultiTaskLearningCurveDisplay
from ._mixed import MultiTaskNet
from ._persistence import load, save
from ._regressor import MultiTaskNetRegressor

__all__ = [
    "MultiTaskLearningCurveDisplay",
    "MultiTaskNet",
    "MultiTaskNetClassifier",
    "MultiTaskNetRegressor",
    "TaskAffinityDisplay",
    "load",
    "save",
]

__version__ = "0.1.0"
