"""MultiTaskLearningCurveDisplay draws one curve per task and split."""

import numpy as np
import pytest

from sklearn_mtl import MultiTaskLearningCurveDisplay, MultiTaskNetClassifier

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PARAMS = dict(hidden_layer_sizes=(16,), max_iter=5, early_stopping=False, random_state=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_one_line_per_task_and_split(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size])
    est = MultiTaskNetClassifier(**{**PARAMS, "early_stopping": True}).fit(X, y)
    display = MultiTaskLearningCurveDisplay.from_estimator(est)
    assert len(display.lines_) == 4
    assert display.ax_.figure is display.figure_
    labels = [line.get_label() for line in display.lines_]
    assert labels == ["y[0] (train)", "y[1] (train)", "y[0] (validation)",
                      "y[1] (validation)"]
    history = est.net_.history
    np.testing.assert_allclose(display.lines_[1].get_ydata(), history[:, "train_loss_task1"])
    np.testing.assert_allclose(display.lines_[2].get_ydata(), history[:, "valid_loss_task0"])
    np.testing.assert_array_equal(display.lines_[0].get_xdata(), np.arange(1, est.n_iter_ + 1))


def test_draws_on_given_axes_without_validation(two_task_data):
    X, colour, size = two_task_data
    est = MultiTaskNetClassifier(**PARAMS).fit(X, colour, aux_targets=size[:, None])
    _, ax = plt.subplots()
    display = MultiTaskLearningCurveDisplay.from_estimator(est, ax=ax, log_scale=True)
    assert display.ax_ is ax
    assert [line.get_label() for line in ax.get_lines()] == [
        "y (train)", "aux_targets[0] (train)"
    ]
    assert ax.get_yscale() == "log"


def test_unfitted_estimator_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MultiTaskLearningCurveDisplay.from_estimator(MultiTaskNetClassifier())


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch, two_task_data):
    import sys

    X, colour, _ = two_task_data
    est = MultiTaskNetClassifier(**PARAMS).fit(X, colour)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        MultiTaskLearningCurveDisplay.from_estimator(est)


def test_pipeline_and_dataframe_column_names(two_task_data):
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, colour, size = two_task_data
    y = pd.DataFrame({"colour": colour, "size": size})
    aux = pd.DataFrame({"noise": (X[:, 0] > 0)})
    pipe = make_pipeline(StandardScaler(), MultiTaskNetClassifier(**PARAMS))
    pipe.fit(X, y, multitasknetclassifier__aux_targets=aux)
    display = MultiTaskLearningCurveDisplay.from_estimator(pipe)
    assert [line.get_label() for line in display.lines_] == [
        "colour (train)", "size (train)", "noise (train)"
    ]
