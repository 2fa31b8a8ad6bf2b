"""Scale-out on Dask: searches through joblib's Dask backend, dask-ml's Incremental.

The cluster runs on loopback TCP with two worker processes of one thread
each, so tasks and estimators cross a real Dask scheduler, serialised both
ways. One thread per process: a fit seeds torch's global generator, which
threads of one process would share.
"""

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_mtl import MultiTaskNetClassifier

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = np.column_stack([X[:, 0] + X[:, 1] > 0, X[:, 2] > 0.3]).astype(int)
    return X, y


def search():
    net = MultiTaskNetClassifier(
        hidden_layer_sizes=(16,), max_iter=8, learning_rate_init=1e-2, random_state=0
    )
    # n_jobs=None runs sequentially here and one task per Dask worker thread.
    return GridSearchCV(net, {"dropout": [0.0, 0.3, 0.6]}, cv=KFold(3))


def test_grid_search_on_dask_matches_local_run(client, data):
    X, y = data
    local = search().fit(X, y)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend(
        "dask", n_jobs=-1
    ):
        remote = search().fit(X, y)
    workers = {task["worker"] for task in tasks.data}
    assert len(tasks.data) >= 9 and len(workers) == 2  # the fits ran on both workers
    for key in local.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank")):
            np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_
    assert local.best_score_ > 0.75
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))


PARAMS = dict(hidden_layer_sizes=(16,), learning_rate_init=1e-2, batch_size=10,
              random_state=0)


def _partial_fit_in_memory(X, y, rows):
    local = MultiTaskNetClassifier(**PARAMS)
    for start in range(0, len(X), rows):
        local.partial_fit(X[start : start + rows], y[start : start + rows])
    return local


def test_incremental_partial_fit_over_dask_blocks(client, data):
    """dask-ml's Incremental: one task (it hands partial_fit 1-D blocks of y)."""
    from dask_ml.wrappers import Incremental

    X, y = data
    X_dask, y_dask = da.from_array(X, chunks=(50, 6)), da.from_array(y[:, 0], chunks=50)
    model = Incremental(MultiTaskNetClassifier(**PARAMS), shuffle_blocks=False)
    model.fit(X_dask, y_dask)
    # One partial_fit (one epoch) per block.
    assert model.estimator_.n_iter_ == 1 and len(model.estimator_.loss_curve_) == 8
    # The same blocks in the same order, in memory, give the same model.
    local = _partial_fit_in_memory(X, y[:, 0], 50)
    np.testing.assert_array_equal(model.estimator_.predict(X), local.predict(X))
    assert model.score(X_dask, y_dask) > 0.7
    assert isinstance(model.predict(X_dask), da.Array)


def test_chunked_partial_fit_over_dask_arrays_with_several_tasks(client, data):
    """The README's loop: blocks of a dask array, one at a time, into partial_fit."""
    import dask

    X, y = data
    X_dask, y_dask = da.from_array(X, chunks=(50, 6)), da.from_array(y, chunks=(50, 2))
    est = MultiTaskNetClassifier(**PARAMS)
    for X_block, y_block in zip(X_dask.to_delayed().ravel(), y_dask.to_delayed().ravel()):
        est.partial_fit(*dask.compute(X_block, y_block))
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 8
    local = _partial_fit_in_memory(X, y, 50)
    np.testing.assert_array_equal(est.predict(X), local.predict(X))
    assert est.score(X, y) > 0.7
