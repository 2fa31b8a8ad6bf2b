import numpy as np
import pytest


@pytest.fixture(scope="session")
def two_task_data():
    """300 rows, 10 features; a string task and an int task, both learnable."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 10)).astype(np.float32)
    colour = np.where(X[:, 0] + X[:, 1] > 0, "red", "blue")
    size = (X[:, 2] > 0).astype(int) + (X[:, 3] > 0.5).astype(int)
    return X, colour, size
