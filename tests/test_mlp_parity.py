"""Where a name is MLPClassifier's, the behaviour is MLPClassifier's too."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_mtl import MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_partial_fit_with_other_classes_is_an_error(data):
    clf = MultiTaskNetClassifier((4,), random_state=0)
    clf.partial_fit([[3, 2]], [0], classes=[0, 1])
    clf.partial_fit([[3, 2]], [0], classes=[1, 0])  # the same set
    with pytest.raises(ValueError, match=r"classes=\[1, 2\]. is not the same as on last call"):
        clf.partial_fit([[3, 2]], [0], classes=[1, 2])
    multi = MultiTaskNetClassifier((4,), random_state=0)
    Y = np.array([[0, "a"], [1, "b"]], dtype=object)
    multi.partial_fit([[3, 2], [1, 1]], Y, classes=[[0, 1], ["a", "b"]])
    with pytest.raises(ValueError, match="is not the same as on last call"):
        multi.partial_fit([[3, 2]], Y[:1], classes=[[0, 1], ["a", "c"]])


def test_unseen_label_in_partial_fit_suggests_classes():
    clf = MultiTaskNetClassifier((4,), random_state=0).partial_fit([[3, 2], [1, 1]], [0, 1])
    with pytest.raises(ValueError, match=r"labels array\(\[2\]\).*pass every label with classes="):
        clf.partial_fit([[3, 2]], [2])


def test_n_iter_counts_the_epochs_of_the_latest_call(data):
    X, y = data
    clf = MultiTaskNetClassifier((4,), max_iter=3, n_iter_no_change=50, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    with pytest.warns(ConvergenceWarning):
        clf.set_params(warm_start=True).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 6
    inc = MultiTaskNetClassifier((4,), random_state=0).partial_fit(X, y).partial_fit(X, y)
    assert inc.n_iter_ == 1 and len(inc.loss_curve_) == 2


def test_n_iter_no_change_accepts_inf(data):
    X, y = data
    clf = MultiTaskNetClassifier((4,), max_iter=4, n_iter_no_change=np.inf, tol=10.0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.n_iter_ == 4  # a tol no epoch meets never stops it


def test_early_stopping_split_errors_are_mlps(data):
    X, y = data
    one_member = y.copy()
    one_member[0] = 2
    with pytest.raises(ValueError, match="least populated class"):
        MultiTaskNetClassifier((4,), early_stopping=True).fit(X, one_member)
    with pytest.raises(ValueError, match="The validation set is too small"):
        MultiTaskNetRegressor((4,), early_stopping=True).fit(X[:10], X[:10, 0])
    # Too few validation rows for the classes: that message first, as MLP's.
    three = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="The validation set is too small"):
        MultiTaskNetClassifier(
            (4,), early_stopping=True, validation_fraction=0.005
        ).fit(X, three)
    ten = np.arange(len(y)) % 10  # 6 validation rows for 10 classes
    with pytest.raises(ValueError, match="(?s)number of classes = 10.*stratified on the "
                       "first task of y: increase validation_fraction \\(now 0.05\\)"):
        MultiTaskNetClassifier(
            (4,), early_stopping=True, validation_fraction=0.05
        ).fit(X, ten)
    with pytest.raises(ValueError, match="train_size = 6 .* decrease validation_fraction"):
        MultiTaskNetClassifier(
            (4,), early_stopping=True, validation_fraction=0.95
        ).fit(X, ten)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MultiTaskNetClassifier((4,), early_stopping=True).partial_fit(X, y)


def test_return_std_without_dropout_is_an_error_whatever_mc_samples(data):
    X, _ = data
    reg = MultiTaskNetRegressor((4,), max_iter=3, mc_samples=5, random_state=0)
    reg.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="no dropout layer"):
        reg.predict(X, return_std=True)
    with pytest.raises(ValueError, match="mc_samples"):
        reg.set_params(mc_samples=0).predict(X, return_std=True)


@pytest.mark.parametrize("mc_samples", [0, 10])
@pytest.mark.parametrize("Estimator", [MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet])
def test_concurrent_predictions_equal_sequential_ones(data, Estimator, mc_samples):
    X, y = data
    target = X[:, 0] if Estimator is MultiTaskNetRegressor else y
    est = Estimator((16,), dropout=0.3, max_iter=5, mc_samples=mc_samples, random_state=0)
    est.fit(X, target)
    method = est.predict if Estimator is MultiTaskNetRegressor else est.predict_proba
    expected = method(X)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: method(X), range(32)))
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_a_missing_value_is_not_a_class():
    with pytest.raises(ValueError, match="classes of task 0 holds a missing value"):
        MultiTaskNetClassifier((4,)).partial_fit([[1, 2], [2, 1]], [0, 1], classes=[0, 1, np.nan])
    with pytest.raises(ValueError, match="classes of task 1 holds a missing value"):
        MultiTaskNetClassifier((4,)).partial_fit(
            [[1, 2], [2, 1]], np.array([[0, "a"], [1, "b"]], dtype=object),
            classes=[[0, 1], ["a", "b", None]],
        )


def test_a_batch_size_above_the_training_rows_is_clipped_with_mlps_warning(data):
    import warnings

    from sklearn.neural_network import MLPClassifier

    X, y = data  # 120 rows, 108 of them trained on with early stopping
    for Estimator in (MLPClassifier, MultiTaskNetClassifier):
        for params in ({"batch_size": 500}, {"batch_size": 110, "early_stopping": True}):
            with pytest.warns(UserWarning, match="larger than sample size. It is going"):
                Estimator((4,), max_iter=2, random_state=0, **params).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            Estimator((4,), batch_size=120, max_iter=2, random_state=0).fit(X, y)


def test_one_list_of_classes_serves_every_task_of_a_multilabel_y(data):
    # MLPClassifier's multi-label partial_fit takes classes=[0, 1].
    X, y = data
    Y = np.column_stack([y, 1 - y, (X[:, 2] > 0).astype(int)])
    clf = MultiTaskNetClassifier((4,), random_state=0)
    for _ in range(2):  # the same classes again on later calls
        clf.partial_fit(X, Y, classes=[0, 1])
    assert [c.tolist() for c in clf.classes_] == [[0, 1]] * 3
    with pytest.raises(ValueError, match="is not the same as on last call"):
        clf.partial_fit(X, Y, classes=[0, 1, 2])
    first = MultiTaskNetClassifier((4,), random_state=0)
    with pytest.raises(ValueError, match="with partial_fit, pass every label with classes="):
        first.partial_fit(X, np.zeros_like(Y))


def test_a_negative_class_weight_is_an_error(data):
    X, y = data
    with pytest.raises(ValueError, match="class_weight must give finite, non-negative "
                       "weights; got \\{0: -1\\} for task 0"):
        MultiTaskNetClassifier((4,), max_iter=1, class_weight={0: -1}).fit(X, y)


def _mlp_rule_stop(curve, early_stopping, tol, n_iter_no_change):
    """The epoch at which MLPClassifier's own rule, run on ``curve`` (losses,
    or validation scores with ``early_stopping``), stops, and its best epoch."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(tol=tol, n_iter_no_change=n_iter_no_change)
    mlp.best_loss_, mlp.best_validation_score_ = np.inf, -np.inf
    mlp._no_improvement_count, mlp.loss_curve_, mlp.validation_scores_ = 0, [], []
    mlp.coefs_ = mlp.intercepts_ = []
    scores = iter(curve)
    mlp._score = lambda X, y, sample_weight=None: next(scores)
    best = 0
    for epoch, value in enumerate(curve, 1):
        before = mlp.best_validation_score_ if early_stopping else mlp.best_loss_
        mlp.loss_curve_.append(value)
        mlp._update_no_improvement_count(early_stopping, None, None, None)
        after = mlp.best_validation_score_ if early_stopping else mlp.best_loss_
        best = epoch if after != before else best
        if mlp._no_improvement_count > mlp.n_iter_no_change:
            return epoch, best
    return None, best


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_stopping_rule_is_mlps(early_stopping):
    # A best that moves at every improvement, however small, and a stop
    # after n_iter_no_change + 1 epochs that do not beat it by tol; with
    # early stopping the best epoch's weights are the model's.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    est = MultiTaskNetClassifier(
        (8,), learning_rate_init=3e-3, early_stopping=early_stopping, tol=1e-3,
        n_iter_no_change=4, max_iter=300, random_state=0,
    ).fit(X, y)
    curve = est.validation_scores_ if early_stopping else est.loss_curve_
    stop, best = _mlp_rule_stop(curve, early_stopping, 1e-3, 4)
    assert stop == est.n_iter_ < 300
    stopper = dict(est.net_.callbacks_)["stopping"]
    assert stopper.best_epoch_ == best
    if early_stopping:
        assert est.best_validation_score_ == curve[best - 1] == max(curve)
        valid = est.net_.module_.state_dict()
        for name, tensor in stopper.best_model_weights_.items():
            assert torch.equal(valid[name], tensor)  # restored
    else:
        assert est.best_loss_ == min(curve)


def test_best_validation_score_is_the_returned_models_after_a_warm_start(data):
    # Each fit restores the best of its own epochs: the score reported is
    # that model's, not an earlier fit's.
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=10, random_state=0)
    est = MultiTaskNetClassifier(
        (20,), early_stopping=True, learning_rate_init=1e-2, random_state=0
    ).fit(X, y)
    # A much worse run: its best epoch is below the first fit's.
    est.set_params(warm_start=True, learning_rate_init=5.0, n_iter_no_change=2)
    est.fit(X, y)
    latest = est.validation_scores_[-est.n_iter_:]
    assert est.best_validation_score_ == max(latest)
    assert max(latest) < max(est.validation_scores_)  # an earlier fit did better


def test_an_epoch_interrupted_midway_is_not_counted():
    from skorch.callbacks import Callback

    class CtrlC(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            if len(net.history) == 3 and len(net.history[-1]["batches"]) == 2:
                raise KeyboardInterrupt

    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = MultiTaskNetClassifier(
        (4,), batch_size=32, max_iter=10, early_stopping=False, random_state=0,
        callbacks=[CtrlC()],
    ).fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert est.predict(X[:3]).shape == (3,)
