"""Saving and loading fitted estimators without running code from the file.

``pickle`` (and ``joblib``) rebuild objects by calling whatever the file
names, so loading an untrusted pickle runs its author's code. :func:`save`
writes a fitted estimator as tensors and plain data (numbers, strings,
lists, dicts) with ``torch.save``, and :func:`load` reads it back with
``torch.load(weights_only=True)``, whose unpickler builds nothing else.
"""

import warnings

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
FORMAT_VERSION = 1
ESTIMATORS = {
    cls.__name__: cls
    for cls in (MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor)
}
_PLAIN = (type(None), bool, int, float, str)


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


def save(estimator, path):
    """Write a fitted estimator to ``path``, in a form :func:`load` reads safely.

    The file holds the network's weights as tensors and everything else
    (hyperparameters, task specifications, fitted attributes, the training
    history) as plain data; it can be loaded without running code from it.
    The optimizer's state is not saved: a loaded model predicts exactly as
    the saved one, and ``partial_fit`` or ``warm_start`` continue from its
    weights with a fresh optimizer. Metadata requests (``set_fit_request``)
    are not saved either. ``pretrained`` is saved as ``None``: the trunk it
    initialised is in the saved weights, so a loaded model predicts and
    transforms as the saved one (a new ``fit`` of it starts from scratch).

    Parameters
    ----------
    estimator : MultiTaskNetClassifier or MultiTaskNetRegressor
        A fitted estimator whose hyperparameters are plain data (for
        instance ``callbacks=None`` and ``random_state`` an int or None).
    path : str or path-like
        File to write.

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
            f"save takes a MultiTaskNetClassifier or MultiTaskNetRegressor; got a "
            f"{type(estimator).__name__}. Save a pipeline's steps one by one, or "
            f"pickle it."
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
    torch.save(content, path)


def load(path, device=None):
    """Read an estimator written by :func:`save`, running no code from the file.

    The file is read with ``torch.load(weights_only=True)``, which builds
    tensors and plain containers only: a file carrying any other object (a
    pickle that would run code when loaded) is refused with a ``ValueError``
    before anything in it runs.

    Parameters
    ----------
    path : str or path-like
        File written by :func:`save`.
    device : {"cpu", "cuda", "auto"} or None, default=None
        Where to put the network; None takes the estimator's own ``device``,
        falling back to the CPU with a warning where it was ``"cuda"`` and
        torch finds no CUDA device.

    Returns
    -------
    estimator : MultiTaskNetClassifier or MultiTaskNetRegressor
        The fitted estimator, with ``net_`` rebuilt (a fresh optimizer).
    """
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError
        lines = str(error).splitlines() or [""]
        reason = next((line.strip() for line in lines if "Unsupported" in line), lines[0])
        raise ValueError(
            f"{path!s} cannot be loaded as a saved sklearn_mtl model: it is not a "
            f"file written by sklearn_mtl.save, or it holds objects other than "
            f"tensors and plain data, which load refuses to build because building "
            f"them could run code from the file. ({type(error).__name__}: {reason})"
        ) from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a file written by sklearn_mtl.save.")
    if content.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!s} has format version {content.get('format_version')!r}; this "
            f"sklearn_mtl reads version {FORMAT_VERSION}."
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
    return estimator


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
