"""Saving and loading fitted estimators without running code from the file.

``pickle`` (and ``joblib``) rebuild objects by calling whatever the file
names, so loading an untrusted pickle runs its author's code. :func:`save`
writes a fitted estimator as tensors and plain data (numbers, strings,
lists, dicts) with ``torch.save``, and :func:`load` reads it back with
``torch.load(weights_only=True)``, whose unpickler builds nothing else.

A saved file is a zip archive (torch's format) whose entries carry CRC-32
checksums: :func:`load` checks them before reading, so a file cut short or
with changed bytes is reported as damaged rather than loaded with wrong
weights (torch itself does not check the checksums of tensor data).
"""

import contextlib
import errno
import os
import secrets
import stat
import warnings
import zipfile

import numpy as np
import torch
from skorch.history import History

from ._classifier import MultiTaskNetClassifier
from ._config import resolve_config, resolve_task_weights
from ._mixed import MultiTaskNet
from ._regressor import MultiTaskNetRegressor
from ._net import build_net
from ._tasks import OutputLayout, TaskSpec

FORMAT = "sklearn_mtl"
# The "optimizer" entry is optional within version 1: files written before
# it existed load (with a fresh optimizer), and earlier sklearn_mtl versions
# load files that have it, ignoring it.
FORMAT_VERSION = 1
ESTIMATORS = {
    cls.__name__: cls
    for cls in (MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor)
}
_PLAIN = (type(None), bool, int, float, str)
_ENTRIES = ("estimator", "params", "attributes", "rng", "module", "criterion", "history")
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
_DIRECTORY_ATTRIBUTE = 0x10  # MS-DOS attribute bit in a zip entry's external_attr
# torch's message when its zip reader (miniz) cannot read an archive.
_ZIP_READER_FAILED = "failed reading zip archive"
# save writes "model.pt" as ".model.pt.tmp-" and 8 hex digits in the same
# folder, then renames it; a save killed outright leaves that file behind.
_TEMP_INFIX = ".tmp-"


def _to_plain(value, name):
    """``value`` as tensors, numbers, strings, lists and dicts, tagged to rebuild."""
    if isinstance(value, np.generic):  # before _PLAIN: np.float64 is a float
        return value.item()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, np.ndarray):
        values = value.tolist()
        _check_plain_items(np.ravel(value.astype(object)), name)
        return {"__ndarray__": values, "dtype": value.dtype.str}
    if isinstance(value, TaskSpec):
        return {
            "__task__": {
                "kind": value.kind,
                "classes": _to_plain(value.classes, name),
                "mean": float(value.mean),
                "scale": float(value.scale),
            }
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_to_plain(v, name) for v in value]}
    if isinstance(value, list):
        return [_to_plain(v, name) for v in value]
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {"__dict__": [[k, _to_plain(v, name)] for k, v in value.items()]}
    raise TypeError(
        f"save stores plain data only (numbers, strings, arrays of them, lists, "
        f"dicts); {name} holds a {type(value).__name__}. Set it to plain data "
        f"(e.g. random_state=0 rather than a RandomState, callbacks=None) or "
        f"use pickle for a file you will only load yourself."
    )


def _check_plain_items(items, name):
    for item in items:
        if not isinstance(item, (*_PLAIN, np.generic)):
            raise TypeError(
                f"save stores arrays of numbers and strings only; {name} holds a "
                f"{type(item).__name__}."
            )


def _from_plain(value):
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        if dtype.kind == "O":
            array = np.empty(len(value["__ndarray__"]), dtype=object)
            array[:] = value["__ndarray__"]
            return array
        return np.array(value["__ndarray__"], dtype=dtype)
    if "__task__" in value:
        fields = value["__task__"]
        return TaskSpec(
            kind=fields["kind"],
            classes=_from_plain(fields["classes"]),
            mean=fields["mean"],
            scale=fields["scale"],
        )
    if "__tuple__" in value:
        return tuple(_from_plain(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _from_plain(v) for k, v in value["__dict__"]}
    raise ValueError(f"Unknown entry in a saved model: {sorted(value)}.")


def _optimizer_state(optimizer):
    """The optimizer's ``state_dict`` with its tensors on the CPU.

    torch's optimizers keep tensors, numbers, booleans, None, strings and
    tuples, lists and dicts of them, all of which ``weights_only`` loading
    reads; anything else is refused here rather than in :func:`load`.
    """

    def cpu(value, where):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu()
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(cpu(v, f"{where}[{i}]") for i, v in enumerate(value))
        if isinstance(value, dict):
            return {k: cpu(v, f"{where}[{k!r}]") for k, v in value.items()}
        raise TypeError(
            f"save stores the optimizer's state as tensors and plain data; its "
            f"{where} holds a {type(value).__name__}."
        )

    return cpu(optimizer.state_dict(), "state_dict")


def _is_path(path):
    return isinstance(path, (str, bytes, os.PathLike))


def _write_atomically(content, path):
    """``torch.save`` to a new file next to ``path``, then move it onto ``path``.

    Readers of ``path`` see the previous file or the new one, never part of
    one: the data is flushed to disk before ``os.replace`` swaps the names.
    """
    given = os.fsdecode(os.fspath(path))
    target = os.path.realpath(given)  # through a symbolic link, as open() goes
    folder, name = os.path.split(target)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a file to save to", given)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "No such folder to save into", folder)
    if os.path.exists(target) and not os.access(target, os.W_OK):
        # open() would refuse to write it; os.replace would not.
        raise PermissionError(errno.EACCES, "Permission denied: the file is read-only",
                              given)
    fd, temp = _create_temporary(folder, name)
    try:
        with os.fdopen(fd, "wb") as file:
            with contextlib.suppress(FileNotFoundError):
                # A file replaced keeps its permissions, as one written over would.
                os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
            torch.save(content, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if os.name == "posix":  # make the new name durable too
        with contextlib.suppress(OSError):
            folder_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)


def _create_temporary(folder, name):
    """Open a new file ``.{name}.tmp-XXXXXXXX`` in ``folder``, exclusively.

    It is created with mode 0o666 as ``open()`` does, so the umask decides
    its permissions (``tempfile.mkstemp`` would make it 0o600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = os.path.join(folder, f".{name}{_TEMP_INFIX}{secrets.token_hex(4)}")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "No free temporary file name", folder)


def save(estimator, path, *, include_optimizer=True):
    """Write a fitted estimator to ``path``, in a form :func:`load` reads safely.

    The file holds the network's weights and the optimizer's state as
    tensors, and everything else (hyperparameters, task specifications,
    fitted attributes, the training history) as plain data; it can be
    loaded without running code from it. A loaded model predicts exactly as
    the saved one, and ``partial_fit`` or ``warm_start`` continue from it
    exactly as they would have from the saved one (given its optimizer's
    state). Metadata requests (``set_fit_request``) are not saved.

    The write is atomic: the file is written in full to a temporary file
    ``.{name}.tmp-XXXXXXXX`` in the same folder, flushed to disk, and only
    then moved onto ``path`` (``os.replace``). A save that fails or is
    interrupted leaves the previous file at ``path`` untouched and removes
    its temporary file; only a process killed outright (``SIGKILL``, power
    loss) can leave that temporary file behind, which is safe to delete.
    ``pretrained`` is saved as ``None``: the trunk it initialised is in the
    saved weights, so a loaded model predicts and transforms as the saved one
    (a new ``fit`` of it starts from scratch).

    Parameters
    ----------
    estimator : MultiTaskNet, MultiTaskNetClassifier or MultiTaskNetRegressor
        A fitted estimator whose hyperparameters are plain data (for
        instance ``callbacks=None`` and ``random_state`` an int or None).
    path : str, path-like or binary file object
        File to write. A new file gets the permissions ``open()`` would
        give it (0o666 less the umask); a file replaced keeps its
        permissions, and a read-only one is not replaced. A symbolic link
        is followed. A file object is written directly, without the atomic
        replacement.
    include_optimizer : bool, default=True
        Whether to store the optimizer's state (for Adam, two tensors the
        size of the weights, so a file about three times as large). Without
        it, the loaded model predicts the same, but ``partial_fit`` and
        ``warm_start`` continue from its weights with a fresh optimizer:
        leave it out of a file that is only for predicting.

    Raises
    ------
    TypeError
        If ``estimator`` is not one of the three estimators, or holds
        hyperparameters that are not plain data.
    ValueError
        If ``estimator`` is not fitted.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    PermissionError
        If ``path`` is a read-only file.

    See Also
    --------
    load : Read the estimator back.

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_mtl import MultiTaskNetClassifier, load, save
    >>> X, y = make_classification(n_samples=100, random_state=0)
    >>> clf = MultiTaskNetClassifier(max_iter=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> save(clf, path)
    >>> bool((load(path).predict(X) == clf.predict(X)).all())
    True
    """
    name = type(estimator).__name__
    if name not in ESTIMATORS or type(estimator) is not ESTIMATORS[name]:
        raise TypeError(
            f"save takes a MultiTaskNet, MultiTaskNetClassifier or "
            f"MultiTaskNetRegressor; got a {type(estimator).__name__}. Save a "
            f"pipeline's steps one by one, or pickle it."
        )
    if not (_is_path(path) or hasattr(path, "write")):
        raise TypeError(
            f"save writes to a path (str or path-like) or a binary file object; "
            f"path is a {type(path).__name__}."
        )
    if not isinstance(include_optimizer, (bool, np.bool_)):
        raise TypeError(
            f"include_optimizer must be True or False; got a "
            f"{type(include_optimizer).__name__}."
        )
    if not hasattr(estimator, "net_"):
        raise ValueError(f"This {name} is not fitted yet; fit it before saving it.")
    params = estimator.get_params(deep=False)
    # The pretrained model only initialised the trunk, which is now in the
    # estimator's own weights (and its shape in ``_trunk_shape``).
    params["pretrained"] = None
    attributes = {
        key: value
        for key, value in vars(estimator).items()
        # Metadata requests (set_fit_request) are routing set-up, not model.
        if key not in params and key not in ("net_", "_rng", "_metadata_request")
    }
    net = estimator.net_
    rng_state = estimator._rng.get_state()
    content = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "params": {k: _to_plain(v, k) for k, v in params.items()},
        "attributes": {k: _to_plain(v, k) for k, v in attributes.items()},
        "rng": {
            "keys": torch.from_numpy(rng_state[1].astype(np.int64)),
            "pos": int(rng_state[2]),
            "has_gauss": int(rng_state[3]),
            "cached_gaussian": float(rng_state[4]),
        },
        "module": {k: v.cpu() for k, v in net.module_.state_dict().items()},
        "criterion": {k: v.cpu() for k, v in net.criterion_.state_dict().items()},
        "history": _to_plain(net.history.to_list(), "net_.history"),
    }
    if include_optimizer:
        content["optimizer"] = _optimizer_state(net.optimizer_)
        if hasattr(net, "optimizer_sparse_"):  # the row-sparse weights' (sparse X)
            content["optimizer_sparse"] = _optimizer_state(net.optimizer_sparse_)
    if _is_path(path):
        _write_atomically(content, path)
    else:
        torch.save(content, path)


def _damage(file):
    """Why the archive in ``file`` is incomplete or damaged; None if it is not.

    Also None for a file that is not a zip archive at all (no zip signature
    at its start nor a zip directory at its end): it is not damaged but
    something else, which :func:`load` reports as such.
    """
    file.seek(0)
    head = file.read(len(_ZIP_MAGIC))
    file.seek(0)
    if not head:
        return "it is empty"
    if not (_ZIP_MAGIC.startswith(head) or zipfile.is_zipfile(file)):
        return None
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            # All zero: written with torch's CRC-32 turned off, nothing to check.
            checked = any(entry.CRC for entry in entries)
            for entry in entries:
                if entry.external_attr & _DIRECTORY_ATTRIBUTE:
                    # torch's reader would read such an entry as empty.
                    raise zipfile.BadZipFile(f"entry {entry.filename} is marked a folder")
                with archive.open(entry) as member:  # checks its header
                    while checked and member.read(_CHUNK):
                        pass  # zipfile compares the CRC-32 at the end
    except Exception as error:  # noqa: BLE001 - any failure to read means damage
        return f"its zip archive cannot be read ({type(error).__name__}: {error})"
    finally:
        file.seek(0)
    return None


def _read(path):
    """The content of a file written by :func:`save`, checked to be whole."""
    if _is_path(path):
        with open(path, "rb") as file:  # FileNotFoundError / IsADirectoryError name it
            return _read_open(file, path)
    if hasattr(path, "read") and hasattr(path, "seek"):
        return _read_open(path, path)
    raise TypeError(
        f"load reads a path (str or path-like) or a seekable binary file "
        f"object; path is a {type(path).__name__}."
    )


def _read_open(opened, path):
    """Check the open file ``opened`` whole, then read it with torch."""
    damage = _damage(opened)
    if damage is not None:
        raise ValueError(
            f"{path!s} is incomplete or damaged: {damage}. An interrupted "
            f"save never leaves such a file (save writes atomically), but a "
            f"copy, a download or a disk can; save the model again, or copy "
            f"the file again."
        )
    try:
        # The file checked is the file read, even if another replaces the path.
        return torch.load(opened, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError
        lines = str(error).splitlines() or [""]
        reason = next(
            (line.strip() for line in lines if "Unsupported" in line), lines[0]
        )
        if isinstance(error, RuntimeError) and _ZIP_READER_FAILED in reason:
            # Python's zipfile passed what torch's stricter reader refuses.
            raise ValueError(
                f"{path!s} is incomplete or damaged: its zip archive cannot be "
                f"read ({reason.split('. ')[0]}). Save the model again, or copy "
                f"the file again."
            ) from error
        raise ValueError(
            f"{path!s} cannot be loaded as a saved sklearn_mtl model: it is not "
            f"a file written by sklearn_mtl.save, or it holds objects other "
            f"than tensors and plain data, which load refuses to build because "
            f"building them could run code from the file. "
            f"({type(error).__name__}: {reason})"
        ) from error


def load(path, device=None):
    """Read an estimator written by :func:`save`, running no code from the file.

    The file is read with ``torch.load(weights_only=True)``, which builds
    tensors and plain containers only: a file carrying any other object (a
    pickle that would run code when loaded) is refused with a ``ValueError``
    before anything in it runs. Before that, the checksums of the archive's
    entries are checked, so a file that is incomplete (a copy cut short) or
    damaged is a ``ValueError`` too, which says so.

    Parameters
    ----------
    path : str, path-like or seekable binary file object
        File written by :func:`save`.
    device : {"cpu", "cuda", "auto"} or None, default=None
        Where to put the network; None takes the estimator's own ``device``,
        falling back to the CPU with a warning where it was ``"cuda"`` and
        torch finds no CUDA device.

    Returns
    -------
    estimator : MultiTaskNet, MultiTaskNetClassifier or MultiTaskNetRegressor
        The fitted estimator, with ``net_`` rebuilt and its optimizer in the
        state it was saved in, so that ``partial_fit`` and ``warm_start``
        continue as they would have without the round trip. (Files saved
        with ``include_optimizer=False``, or written before the optimizer
        state was saved, load with a fresh optimizer.)

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the file is incomplete or damaged, is not a file written by
        :func:`save`, or holds objects other than tensors and plain data.

    Warns
    -----
    UserWarning
        If the saved optimizer state does not fit the optimizer this version
        builds (another number of parameter groups, for instance); the model
        is loaded with a fresh optimizer.
    """
    content = _read(path)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a file written by sklearn_mtl.save.")
    if content.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!s} has format version {content.get('format_version')!r}; this "
            f"sklearn_mtl reads version {FORMAT_VERSION}."
        )
    missing = [entry for entry in _ENTRIES if entry not in content]
    if missing:
        raise ValueError(
            f"{path!s} is incomplete or damaged: it has no {', '.join(missing)} "
            f"entry, which every file written by sklearn_mtl.save holds."
        )
    cls = ESTIMATORS.get(content["estimator"])
    if cls is None:
        raise ValueError(f"{path!s} holds an unknown estimator {content['estimator']!r}.")
    estimator = cls(**{k: _from_plain(v) for k, v in content["params"].items()})
    for key, value in content["attributes"].items():
        setattr(estimator, key, _from_plain(value))
    rng = content["rng"]
    estimator._rng = np.random.RandomState()
    estimator._rng.set_state(
        ("MT19937", rng["keys"].numpy().astype(np.uint32), rng["pos"],
         rng["has_gauss"], rng["cached_gaussian"])
    )
    estimator.net_ = _rebuild_net(estimator, content, device)
    if "optimizer" in content:
        _restore_optimizer(estimator.net_.optimizer_, content["optimizer"], path)
    if "optimizer_sparse" in content and hasattr(estimator.net_, "optimizer_sparse_"):
        _restore_optimizer(
            estimator.net_.optimizer_sparse_, content["optimizer_sparse"], path
        )
    return estimator


def _restore_optimizer(optimizer, state, path):
    # load_state_dict moves the state onto the parameters' device.
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as error:
        # The model predicts without it: keep the file loadable.
        warnings.warn(
            f"The optimizer state saved in {path!s} does not fit the optimizer "
            f"this version of sklearn_mtl builds ({error}); the model is loaded "
            f"with a fresh optimizer, so partial_fit and warm_start continue from "
            f"its weights but not from its optimizer's state.",
            UserWarning,
        )


def _rebuild_net(estimator, content, device):
    device = estimator.device if device is None else device
    if device == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            "The model was saved with device='cuda' but torch finds no CUDA device "
            "here; its network is loaded on the CPU (net_.device='cpu').",
            UserWarning,
        )
        device = "cpu"
    # Files written before transfer have no trunk shape: the parameters have it.
    config = resolve_config(
        estimator, device=device, trunk=getattr(estimator, "_trunk_shape", None)
    )
    task_weights = resolve_task_weights(estimator.task_weights, len(estimator.tasks_))
    layout = OutputLayout.from_tasks(estimator.tasks_)
    net = build_net(config, layout, estimator.n_features_in_, task_weights)
    net.initialize()
    net.module_.load_state_dict(content["module"])
    net.criterion_.load_state_dict(_criterion_state(content["criterion"]))
    net.history = History(_from_plain(content["history"]))
    net.module_.eval()  # as after fit: predictions switch no mode
    return net


def _criterion_state(state):
    """The criterion's state with the balancing method's entries under
    ``balancer.`` (files written before the methods had a module of their
    own hold them at the top level)."""
    return {
        key if key == "task_weights" or key.startswith("balancer.") else f"balancer.{key}": value
        for key, value in state.items()
    }
