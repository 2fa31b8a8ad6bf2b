"""save / load: identical predictions, and no code run from the file."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch

from sklearn_mtl import MultiTaskNetClassifier, MultiTaskNetRegressor, load, save

PARAMS = dict(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0, dropout=0.1,
              batch_norm=True)


class Payload:
    """An object whose unpickling writes a marker file (as an attack would)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


@pytest.fixture(scope="module")
def mixed_labels(two_task_data):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size.astype(object)])
    y[::5, 1] = None
    return X, y


@pytest.mark.parametrize("labels", ["strings", "ints", "1-d"])
def test_classifier_reloads_with_identical_predictions(tmp_path, two_task_data, labels):
    X, colour, size = two_task_data
    y = {"strings": np.column_stack([colour, size.astype(str)]),
         "ints": np.column_stack([size, (X[:, 0] > 0).astype(int)]),
         "1-d": colour}[labels]
    est = MultiTaskNetClassifier(**PARAMS).fit(X, y)
    save(est, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert type(loaded) is MultiTaskNetClassifier
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.predict(X).dtype == est.predict(X).dtype
    np.testing.assert_array_equal(
        np.concatenate(loaded.predict_proba(X), axis=None),
        np.concatenate(est.predict_proba(X), axis=None),
    )
    if labels == "1-d":
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    else:
        for a, b in zip(loaded.classes_, est.classes_):
            np.testing.assert_array_equal(a, b)
    assert loaded.loss_curve_ == est.loss_curve_
    assert loaded.net_.history[:, "train_loss"] == est.net_.history[:, "train_loss"]


def test_regressor_with_frame_and_aux_reloads(tmp_path, two_task_data):
    X, colour, size = two_task_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    y = np.column_stack([X[:, 0] * 3.0 + 1, X[:, 1] * 100.0])
    est = MultiTaskNetRegressor(**PARAMS, early_stopping=True).fit(
        frame, y, aux_targets=colour[:, None]
    )
    save(est, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))
    assert loaded.score(frame, y) == est.score(frame, y)
    assert loaded.n_aux_tasks_ == 1 and loaded.validation_scores_ == est.validation_scores_
    # Continued training draws the same seeds as the original would.
    est.partial_fit(frame, y)
    loaded.partial_fit(frame, y)
    assert loaded._rng.randint(1000) == est._rng.randint(1000)


def test_loaded_model_with_missing_labels_scores_the_same(tmp_path, mixed_labels):
    X, y = mixed_labels
    est = MultiTaskNetClassifier(**PARAMS).fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        est.set_fit_request(aux_targets=True)  # routing set-up: left out of the file
        save(est, tmp_path / "model.pt")
    assert load(tmp_path / "model.pt").score(X, y) == est.score(X, y)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Payload(marker)))
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"format": "sklearn_mtl", "module": Payload(marker)}, wrapped)
    for path in (raw, wrapped):
        with pytest.raises(ValueError, match="refuses to build"):
            load(path)
        assert not marker.exists()
    # The payload is real: plain pickle runs it.
    pickle.loads(raw.read_bytes())
    assert marker.read_text() == "pwned"


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a file written by sklearn_mtl.save"):
        load(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="cannot be loaded"):
        load(tmp_path / "text.pt")


def test_save_refuses_what_it_cannot_store_as_plain_data(tmp_path, two_task_data):
    X, colour, _ = two_task_data
    with pytest.raises(ValueError, match="not fitted"):
        save(MultiTaskNetClassifier(), tmp_path / "m.pt")
    est = MultiTaskNetClassifier(**{**PARAMS, "random_state": np.random.RandomState(0)})
    est.fit(X, colour)
    with pytest.raises(TypeError, match="random_state holds a RandomState"):
        save(est, tmp_path / "m.pt")
    with pytest.raises(TypeError, match="got a list"):
        save([est], tmp_path / "m.pt")


def test_loading_runs_in_a_fresh_process(tmp_path, two_task_data):
    X, colour, size = two_task_data
    est = MultiTaskNetClassifier(**PARAMS).fit(X, colour)
    save(est, tmp_path / "model.pt")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import numpy as np, sklearn_mtl; "
        f"m = sklearn_mtl.load({str(tmp_path / 'model.pt')!r}); "
        f"print(' '.join(m.predict(np.load({str(tmp_path / 'X.npy')!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == list(est.predict(X))


def test_saved_criterion_holds_only_what_training_learned(tmp_path):
    # A fixed-weight model saves the same criterion state as before task
    # balancing existed (its task weights only); learned weights are saved.
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 2))
    for balancing, keys in [("fixed", {"task_weights"}), ("dwa", {"task_weights"}),
                            ("uncertainty", {"task_weights", "balancer.log_variances"})]:
        reg = MultiTaskNetRegressor((8,), max_iter=3, task_balancing=balancing).fit(X, y)
        assert set(reg.net_.criterion_.state_dict()) == keys
        save(reg, tmp_path / "reg.pt")
        loaded = load(tmp_path / "reg.pt")
        np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
        np.testing.assert_array_equal(loaded.task_weights_, reg.task_weights_)
        if balancing != "dwa":  # DWA's weights come back from the history
            np.testing.assert_allclose(
                loaded.net_.criterion_.balance().numpy(), reg.task_weights_, rtol=1e-6
            )
