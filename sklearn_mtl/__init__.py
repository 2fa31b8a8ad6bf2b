"""Multi-task neural networks as scikit-learn estimators."""

from ._classifier import MultiTaskNetClassifier
from ._display import MultiTaskLearningCurveDisplay
from ._persistence import load, save
from ._regressor import MultiTaskNetRegressor

__all__ = [
    "MultiTaskLearningCurveDisplay",
    "MultiTaskNetClassifier",
    "MultiTaskNetRegressor",
    "load",
    "save",
]

__version__ = "0.1.0"
