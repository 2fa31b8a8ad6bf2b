"""save / load: identical predictions, and no code run from the file."""

import io
import os
import pickle
import re
import signal
import stat
import struct
import subprocess
import sys
import zipfile

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
    # (partial_fit refuses early_stopping=True, as MLPClassifier's does.)
    est.set_params(early_stopping=False).partial_fit(frame, y)
    loaded.set_params(early_stopping=False).partial_fit(frame, y)
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
        with pytest.raises(ValueError, match="refuses to build") as info:
            load(path)
        assert not marker.exists()
        assert "damaged" not in str(info.value)  # an intact file, refused
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


# -- atomic save -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)
    return X, y, MultiTaskNetClassifier((8,), max_iter=3, random_state=0).fit(X, y)


def _saved_bytes(est, folder):
    save(est, folder / "ref.pt")
    data = (folder / "ref.pt").read_bytes()
    (folder / "ref.pt").unlink()
    return data


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   KeyboardInterrupt()])
def test_interrupted_save_leaves_previous_file_and_no_temporary(
    tmp_path, monkeypatch, small_model, error
):
    X, y, est = small_model
    target = tmp_path / "model.pt"
    save(est, target)
    before = target.read_bytes()
    real_save = torch.save
    written = {}

    def half_then_fail(obj, file, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        file.write(data[: len(data) // 2])
        written["bytes"] = len(data) // 2
        raise error

    monkeypatch.setattr(torch, "save", half_then_fail)
    other = MultiTaskNetClassifier((8,), max_iter=1, random_state=1).fit(X, 1 - y)
    with pytest.raises(type(error)):
        save(other, target)
    assert written["bytes"] > 0
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
    assert target.read_bytes() == before
    np.testing.assert_array_equal(load(target).predict_proba(X)[0], est.predict_proba(X)[0])


# The child writes through a file object that stops, for a minute, after its
# first chunk; the parent kills it there, in the middle of the write.
KILLED_WRITER = """
import sys, time, torch
from sklearn_mtl import load, save
est = load(sys.argv[1])
real_save = torch.save

class Stalling:
    def __init__(self, file):
        self.file, self.chunks = file, 0
    def write(self, data):
        written = self.file.write(data)
        self.chunks += 1
        if self.chunks == 1:
            self.file.flush()
            print("started", flush=True)
            time.sleep(60)
        return written
    def flush(self):
        self.file.flush()

torch.save = lambda obj, file, *a, **k: real_save(obj, Stalling(file), *a, **k)
save(est, sys.argv[2])
"""


@pytest.mark.slow  # a fresh interpreter imports torch: 5-15 s
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_save_killed_mid_write_leaves_previous_file(tmp_path, small_model):
    X, y, est = small_model
    target = tmp_path / "model.pt"
    save(est, target)
    before = target.read_bytes()
    other = MultiTaskNetClassifier((8,), max_iter=1, random_state=1).fit(X, 1 - y)
    save(other, tmp_path / "other.pt")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "other.pt"), str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline()
        assert line == "started\n", child.stderr.read()
        temporaries = [n for n in os.listdir(tmp_path) if n.startswith(".model.pt.tmp-")]
        assert len(temporaries) == 1 and os.path.getsize(tmp_path / temporaries[0]) > 0
    finally:
        child.kill()  # SIGKILL on POSIX: no cleanup can run
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    np.testing.assert_array_equal(load(target).predict_proba(X)[1], est.predict_proba(X)[1])
    # The temporary file stays (nothing ran to remove it), under its
    # recognisable name, and is itself a damaged file, never mistaken for a model.
    leftover = tmp_path / temporaries[0]
    assert re.fullmatch(r"\.model\.pt\.tmp-[0-9a-f]{8}", leftover.name)
    with pytest.raises(ValueError, match="incomplete or damaged"):
        load(leftover)
    save(other, target)  # a later save is unaffected
    np.testing.assert_array_equal(load(target).predict(X), other.predict(X))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_file_permissions_follow_umask_and_are_kept_on_replace(tmp_path, small_model):
    *_, est = small_model
    old = os.umask(0o027)
    try:
        save(est, tmp_path / "new.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.pt").st_mode) == 0o640
    os.chmod(tmp_path / "new.pt", 0o604)
    save(est, tmp_path / "new.pt")
    assert stat.S_IMODE(os.stat(tmp_path / "new.pt").st_mode) == 0o604
    # A symbolic link is followed: the file it points to is replaced.
    (tmp_path / "link.pt").symlink_to(tmp_path / "new.pt")
    save(est, tmp_path / "link.pt")
    assert (tmp_path / "link.pt").is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["link.pt", "new.pt"]
    # A read-only file is not replaced, as open() would not write it.
    os.chmod(tmp_path / "new.pt", 0o444)
    if not os.access(tmp_path / "new.pt", os.W_OK):  # root may write anyway
        before = (tmp_path / "new.pt").read_bytes()
        with pytest.raises(PermissionError, match="read-only"):
            save(est, tmp_path / "new.pt")
        assert (tmp_path / "new.pt").read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["link.pt", "new.pt"]


def test_save_reports_bad_targets(tmp_path, small_model):
    *_, est = small_model
    with pytest.raises(FileNotFoundError, match="No such folder"):
        save(est, tmp_path / "absent" / "model.pt")
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        save(est, tmp_path)
    with pytest.raises(TypeError, match="path is a int"):
        save(est, 3)
    with pytest.raises(TypeError, match="MultiTaskNet, MultiTaskNetClassifier or "
                                        "MultiTaskNetRegressor; got a dict"):
        save({}, tmp_path / "m.pt")
    assert os.listdir(tmp_path) == []
    buffer = io.BytesIO()  # a file object is written directly
    save(est, buffer)
    buffer.seek(0)
    assert load(buffer).get_params() == est.get_params()


# -- damaged files -----------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.001, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_reported_incomplete(tmp_path, small_model, fraction):
    *_, est = small_model
    data = _saved_bytes(est, tmp_path)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    with pytest.raises(ValueError, match="cut.pt is incomplete or damaged") as info:
        load(path)
    assert "run code" not in str(info.value)


def test_one_byte_cut_off_or_empty_file_is_reported(tmp_path, small_model):
    *_, est = small_model
    data = _saved_bytes(est, tmp_path)
    (tmp_path / "m.pt").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="incomplete or damaged"):
        load(tmp_path / "m.pt")
    (tmp_path / "m.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="incomplete or damaged: it is empty"):
        load(tmp_path / "m.pt")


def _entry_offsets(data):
    """(name, start of its data, its size) for each entry of a saved archive."""
    entries = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack(
                "<HH", data[info.header_offset + 26 : info.header_offset + 30]
            )
            start = info.header_offset + 30 + name_length + extra_length
            entries.append((info.filename, start, info.file_size))
    return entries


def test_changed_bytes_are_reported_damaged(tmp_path, small_model):
    X, _, est = small_model
    data = _saved_bytes(est, tmp_path)
    entries = _entry_offsets(data)
    pickle_entry = next(e for e in entries if e[0].endswith("data.pkl"))
    tensors = [e for e in entries if "/data/" in e[0] and e[2] > 0]
    positions = {
        "magic": 0,
        "pickle": pickle_entry[1] + pickle_entry[2] // 2,
        "first tensor": tensors[0][1] + 3,
        "last tensor": tensors[-1][1],
        "directory": len(data) - 60,
    }
    path = tmp_path / "flipped.pt"
    for where, position in positions.items():
        damaged = bytearray(data)
        damaged[position] ^= 0x55
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="incomplete or damaged") as info:
            load(path)
        assert "run code" not in str(info.value), where
    # Any changed byte: reported as damage, or in a field nothing reads (a
    # header's time stamp, alignment padding) and the model is the same.
    expected = est.predict_proba(X)
    loaded_the_same = 0
    for position in range(0, len(data), 37):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            model = load(io.BytesIO(bytes(damaged)))
        except ValueError as error:
            assert "incomplete or damaged" in str(error), position
            continue
        loaded_the_same += 1
        for a, b in zip(model.predict_proba(X), expected):
            np.testing.assert_array_equal(a, b, err_msg=str(position))
    assert loaded_the_same < len(data) / 37 / 4


def test_missing_path_and_folder_are_os_errors_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt") as info:
        load(tmp_path / "nowhere.pt")
    assert info.value.filename == str(tmp_path / "nowhere.pt")
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
        load(tmp_path)
    with pytest.raises(TypeError, match="path is a int"):
        load(3)


def test_file_with_a_missing_entry_is_reported_incomplete(tmp_path, small_model):
    *_, est = small_model
    save(est, tmp_path / "m.pt")
    content = torch.load(tmp_path / "m.pt", weights_only=True)
    del content["module"]
    torch.save(content, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="incomplete or damaged: it has no module entry"):
        load(tmp_path / "m.pt")


# -- continuing to train after load ------------------------------------------------


@pytest.mark.parametrize("balancing", ["fixed", "uncertainty"])
def test_training_after_load_continues_as_without_the_round_trip(
    tmp_path, two_task_data, balancing
):
    X, colour, size = two_task_data
    y = np.column_stack([colour, size])
    params = {**PARAMS, "max_iter": 3, "task_balancing": balancing}
    est = MultiTaskNetClassifier(**params).fit(X, y)
    save(est, tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    for a, b in zip(loaded.net_.optimizer_.state_dict()["state"].values(),
                    est.net_.optimizer_.state_dict()["state"].values()):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    for model in (est, loaded):
        model.partial_fit(X, y)
        model.set_params(warm_start=True, max_iter=2).fit(X, y)
    for (name, a), b in zip(loaded.net_.module_.state_dict().items(),
                            est.net_.module_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    torch.testing.assert_close(loaded.net_.criterion_.balance(),
                               est.net_.criterion_.balance(), rtol=0, atol=1e-6)
    assert loaded.n_iter_ == est.n_iter_ == 2
    assert len(loaded.loss_curve_) == len(est.loss_curve_) == 3 + 1 + 2
    np.testing.assert_allclose(loaded.loss_curve_, est.loss_curve_, rtol=1e-6)


def test_file_without_optimizer_state_loads_with_a_fresh_optimizer(tmp_path, small_model):
    X, _, est = small_model
    save(est, tmp_path / "m.pt")
    content = torch.load(tmp_path / "m.pt", weights_only=True)
    del content["optimizer"]  # as written before the optimizer state was saved
    torch.save(content, tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.net_.optimizer_.state_dict()["state"] == {}
    # include_optimizer=False writes such a file, smaller (Adam keeps two
    # tensors per weight tensor).
    save(est, tmp_path / "with.pt")
    save(est, tmp_path / "without.pt", include_optimizer=False)
    assert "optimizer" not in torch.load(tmp_path / "without.pt", weights_only=True)
    assert os.path.getsize(tmp_path / "without.pt") < os.path.getsize(tmp_path / "with.pt")
    assert load(tmp_path / "without.pt").net_.optimizer_.state_dict()["state"] == {}
    with pytest.raises(TypeError, match="include_optimizer must be True or False; got a str"):
        save(est, tmp_path / "m.pt", include_optimizer="no")


def test_optimizer_state_that_does_not_fit_warns_and_loads(tmp_path, small_model):
    X, _, est = small_model
    save(est, tmp_path / "m.pt")
    content = torch.load(tmp_path / "m.pt", weights_only=True)
    groups = content["optimizer"]["param_groups"]
    groups.append({**groups[0], "params": [max(groups[-1]["params"]) + 1]})
    torch.save(content, tmp_path / "m.pt")
    with pytest.warns(UserWarning, match="does not fit the optimizer.*fresh optimizer"):
        loaded = load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
