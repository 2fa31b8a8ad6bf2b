"""Multi-task neural networks as scikit-learn estimators."""

from ._classifier import MultiTaskNetClassifier
from ._regressor import MultiTaskNetRegressor

__all__ = ["MultiTaskNetClassifier", "MultiTaskNetRegressor"]

__version__ = "0.1.0"
