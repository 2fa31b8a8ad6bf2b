"""ONNX export: :func:`to_onnx`, and the skl2onnx converter of the estimators.

The converter writes the fitted network op by op from its torch weights
(``Gemm`` / ``MatMul`` + ``Add``, batch norm folded into the affine map,
the activations, dropout as the identity), so converting a pipeline needs
neither torch nor a trace. :func:`register_onnx_converters` adds it to
skl2onnx's registry; skl2onnx itself is imported only when a conversion is
asked for (it is an optional dependency, ``pip install sklearn-mtl[onnx]``).
"""


import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._classifier import MultiTaskNetClassifier
from ._mixed import MultiTaskNet
from ._onnx_graph import _float_input, _Graph, _numpy, _Stack, _task_hidden
from ._regressor import MultiTaskNetRegressor
from ._sparse import feature_major
from ._tasks import CLASSIFICATION

ESTIMATORS = (MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet)
ESTIMATOR_NAMES = "MultiTaskNetClassifier, MultiTaskNetRegressor or MultiTaskNet"


def _alias(cls):
    return f"SklearnMtl{cls.__name__}"


def _import_skl2onnx():
    try:
        import skl2onnx
    except ImportError as error:
        raise ImportError(
            "Exporting to ONNX needs skl2onnx and onnx (and onnxruntime to run "
            "the result): pip install 'sklearn-mtl[onnx]'."
        ) from error
    return skl2onnx


# -- checks ------------------------------------------------------------------


def _final_estimator(model):
    """The sklearn_mtl estimator that ``model`` is or that its pipeline ends in,
    and the ``set_params`` prefix of that step."""
    if isinstance(model, ESTIMATORS):
        return model, ""
    if isinstance(model, Pipeline):
        if not model.steps:
            raise ValueError("model is a Pipeline with no steps; nothing to convert.")
        name, last = model.steps[-1]
        if isinstance(last, Pipeline):
            inner, prefix = _final_estimator(last)
            return inner, f"{name}__{prefix}"
        if not isinstance(last, ESTIMATORS):
            raise TypeError(
                f"model must be a sklearn_mtl estimator ({ESTIMATOR_NAMES}) or a "
                f"Pipeline ending in one; got a Pipeline whose last step {name!r} "
                f"is a {type(last).__name__}. Convert pipelines without a "
                f"sklearn_mtl estimator with skl2onnx.to_onnx."
            )
        return last, f"{name}__"
    raise TypeError(
        f"model must be a fitted {ESTIMATOR_NAMES}, or a scikit-learn Pipeline "
        f"ending in one; got a {type(model).__name__}."
    )


def _check_estimator(estimator, prefix=""):
    """A clear error for an estimator that cannot be exported as it predicts."""
    where = f" (pipeline step {prefix[:-2]!r})" if prefix else ""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise NotFittedError(
            f"model must be fitted before it is converted to ONNX; this "
            f"{type(estimator).__name__}{where} is not fitted yet. Call fit first."
        ) from None
    if estimator.mc_samples > 0:
        raise ValueError(
            f"model predicts with mc_samples={estimator.mc_samples} Monte-Carlo "
            f"passes{where}, which ONNX export does not reproduce: the exported "
            f"graph is the deterministic pass (dropout off). Set "
            f"model.set_params({prefix}mc_samples=0) to export the predictions "
            f"of that pass, or keep the model in Python (sklearn_mtl.save)."
        )


def _predicted_tasks(estimator):
    """The task specs that ``predict`` returns (auxiliary tasks are not)."""
    return estimator.tasks_[: len(estimator.tasks_) - estimator.n_aux_tasks_]


def _label_array(classes, task):
    """The classes of a task as an array ONNX can hold: int64, bool, float64
    or str."""
    classes = np.asarray(classes)
    if classes.dtype == object:
        classes = np.array(classes.tolist())
    kind = classes.dtype.kind
    if kind in "iu":
        return classes.astype(np.int64)
    if kind == "b":
        return classes
    if kind == "f":
        return classes.astype(np.float64)
    if kind in "US":
        return classes.astype(str)
    raise TypeError(
        f"Task {task}'s labels are of dtype {classes.dtype}; ONNX export supports "
        f"integer, boolean, float and string labels."
    )


# -- skl2onnx parser and shape calculator -------------------------------------


def _output_types(estimator):
    """``(name, skl2onnx type)`` of each graph output, in order."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    label_types = {
        "i": Int64TensorType,
        "b": BooleanTensorType,
        "f": DoubleTensorType,
        "U": StringTensorType,
    }
    outputs = []
    for t, spec in enumerate(_predicted_tasks(estimator)):
        if spec.kind == CLASSIFICATION:
            labels = _label_array(spec.classes, t)
            outputs.append((f"label_{t}", label_types[labels.dtype.kind]([None])))
            outputs.append(
                (f"probabilities_{t}", FloatTensorType([None, spec.n_outputs]))
            )
        else:
            outputs.append((f"value_{t}", DoubleTensorType([None])))
    return outputs


def _parse(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: one operator whose outputs are each task's."""
    _check_estimator(model)
    operator = scope.declare_local_operator(_alias(type(model)), model)
    operator.inputs = inputs
    for name, type_ in _output_types(model):
        operator.outputs.append(scope.declare_local_variable(name, type_))
    return operator.outputs


def _input_width(variables):
    widths = [v.type.shape[1] if len(v.type.shape) == 2 else None for v in variables]
    return None if any(w is None for w in widths) else sum(widths)


def _calculate_shapes(operator):
    """skl2onnx shape calculator: checks the input width, sets the batch size."""
    estimator = operator.raw_operator
    width = _input_width(operator.inputs)
    if width is not None and width != estimator.n_features_in_:
        raise ValueError(
            f"The input of {type(estimator).__name__} has {width} columns in the "
            f"ONNX graph, but the estimator was fitted with "
            f"{estimator.n_features_in_} features."
        )
    n = operator.inputs[0].type.shape[0]
    for output in operator.outputs:
        output.type.shape = [n, *output.type.shape[1:]]


# -- the converter ------------------------------------------------------------


def _convert(scope, operator, container):
    """skl2onnx converter: the network, then each task's labels or values."""
    from onnx import TensorProto

    estimator = operator.raw_operator
    graph = _Graph(scope, container)
    module = estimator.net_.module_
    x = _float_input(graph, operator.inputs)
    task_hidden = _task_hidden(graph, module, x)
    outputs = iter(operator.outputs)
    stack = _Stack(graph)
    for t, spec in enumerate(_predicted_tasks(estimator)):
        hidden = task_hidden(t)
        if module.fused_heads:
            head = module.heads[0]
            rows = estimator.net_.layout.slices[t]
            weight = _numpy(feature_major(head))[:, rows].astype(np.float32)
            bias = _numpy(head.bias)[rows].astype(np.float32)
            out = graph.op(
                "Gemm", hidden, graph.const(weight, "W"), graph.const(bias, "b")
            )
        else:
            out, _, _ = stack.run(module.heads[t], hidden)
        if spec.kind == CLASSIFICATION:
            label, proba = next(outputs).onnx_name, next(outputs).onnx_name
            graph.op("Softmax", out, axis=-1, out=proba)
            index = graph.op("ArgMax", proba, axis=1, keepdims=0)
            classes = graph.const(_label_array(spec.classes, t), "classes")
            graph.op("Gather", classes, index, axis=0, out=label)
        else:
            flat = graph.op("Reshape", out, graph.const(np.array([-1], np.int64)))
            value = graph.op("Cast", flat, to=TensorProto.DOUBLE)
            scaled = graph.op("Mul", value, graph.const(np.float64(spec.scale)))
            graph.op(
                "Add",
                scaled,
                graph.const(np.float64(spec.mean)),
                out=next(outputs).onnx_name,
            )


# -- public functions ---------------------------------------------------------


def _register(cls):
    skl2onnx = _import_skl2onnx()
    skl2onnx.update_registered_converter(
        cls, _alias(cls), _calculate_shapes, _convert, parser=_parse
    )


def register_onnx_converters():
    """Teach skl2onnx to convert the estimators of this package.

    Registers a parser, a shape calculator and a converter for
    :class:`MultiTaskNetClassifier`, :class:`MultiTaskNetRegressor` and
    :class:`MultiTaskNet` in skl2onnx's registry, so that
    ``skl2onnx.to_onnx`` converts pipelines and other models that contain
    them. :func:`to_onnx` calls it; call it yourself before using skl2onnx
    directly. Calling it again is harmless.

    See Also
    --------
    to_onnx : Convert an estimator or a pipeline ending in one.
    """
    for cls in ESTIMATORS:
        _register(cls)


def _initial_types(X_sample):
    """skl2onnx input types from a sample of the input.

    A DataFrame gives one ``(n, 1)`` input per column, named after it
    (skl2onnx's convention, which lets a ``ColumnTransformer`` pick columns
    by name); anything else one input ``"X"`` of shape ``(n, n_features)``.
    """
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    if hasattr(X_sample, "iloc") and hasattr(X_sample, "columns"):
        from skl2onnx.algebra.type_helper import guess_initial_types

        if X_sample.shape[0] == 0 or X_sample.shape[1] == 0:
            raise ValueError(
                f"X_sample must hold at least one row and one column; got a "
                f"DataFrame of shape {X_sample.shape}."
            )
        return guess_initial_types(X_sample, None)
    if sp.issparse(X_sample):
        dtype, shape = X_sample.dtype, X_sample.shape
    else:
        try:
            values = np.asarray(X_sample)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"X_sample must be an array-like, a sparse matrix or a DataFrame "
                f"of input rows; got a {type(X_sample).__name__} ({error})."
            ) from None
        dtype, shape = values.dtype, values.shape
    if len(shape) != 2 or shape[1] == 0:
        raise ValueError(
            f"X_sample must be 2-D (n_samples, n_features), like the X of "
            f"predict; got shape {shape}."
        )
    types = {
        "f4": FloatTensorType,
        "f8": DoubleTensorType,
        "i8": Int64TensorType,
        "b1": BooleanTensorType,
    }
    key = f"{dtype.kind}{dtype.itemsize}"
    if key in types:
        return [("X", types[key]([None, shape[1]]))]
    if dtype.kind in "UO":
        return [("X", StringTensorType([None, shape[1]]))]
    raise TypeError(
        f"X_sample has dtype {dtype}; ONNX inputs built from it are float32, "
        f"float64, int64, bool or string. Cast X_sample (and the data you will "
        f"feed the ONNX model) to one of them, e.g. X.astype(numpy.float32)."
    )


def to_onnx(model, X_sample, *, target_opset=None):
    """Convert a fitted estimator, or a Pipeline ending in one, to ONNX.

    The network is written op by op from its fitted weights in inference
    mode (dropout off, batch norm with its running statistics); a pipeline's
    other steps are converted by skl2onnx. onnxruntime then reproduces
    ``predict`` and ``predict_proba`` (to float32 rounding) without Python,
    torch or scikit-learn.

    Parameters
    ----------
    model : MultiTaskNetClassifier, MultiTaskNetRegressor, MultiTaskNet or Pipeline
        A fitted estimator, or a fitted scikit-learn ``Pipeline`` whose last
        step is one (its other steps must be convertible by skl2onnx).
    X_sample : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        A few rows of the input ``model`` takes; only its dtype and columns
        are read. An array or sparse matrix gives one input named ``"X"``
        of shape ``(n, n_features)`` and the array's dtype (float32, float64,
        int64, bool or string; a sparse matrix is fed dense). A DataFrame
        gives one ``(n, 1)`` input per column, named after it, as skl2onnx
        does.
    target_opset : int or dict, default=None
        ONNX opset of the graph; None for skl2onnx's latest tested one.

    Returns
    -------
    onnx_model : onnx.ModelProto
        The graph. Its outputs, for each task ``t`` of ``y`` in order
        (``t = 0`` for a 1-D ``y``; auxiliary tasks are not exported):

        - a classification task: ``label_t`` of shape ``(n,)`` (the labels
          of ``predict``: int64 for integer labels, string, bool or float64)
          and ``probabilities_t``, float32 ``(n, n_classes)`` in the order of
          that task's classes (a tensor, not skl2onnx's ZipMap);
        - a regression task: ``value_t``, float64 ``(n,)``, on the scale
          of ``y``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If ``model`` is neither one of the estimators nor a Pipeline ending
        in one.
    ValueError
        If the estimator predicts with ``mc_samples > 0``: the graph is the
        deterministic pass only, so set ``mc_samples=0`` first.

    See Also
    --------
    register_onnx_converters : Let ``skl2onnx.to_onnx`` convert models that
        contain these estimators.
    save : Save an estimator for Python.

    Notes
    -----
    Differences from skl2onnx's classifiers: every output carries its task's
    index (``label_0``, not ``label``), probabilities are a float32 tensor
    rather than a list of dicts (no ZipMap, no ``zipmap`` option), and a
    model with several tasks has one label and one probability output per
    classification task rather than a sequence.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn_mtl import MultiTaskNetClassifier, to_onnx
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 4)).astype(np.float32)
    >>> y = np.where(X[:, 0] > 0, "yes", "no")
    >>> clf = MultiTaskNetClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    >>> onx = to_onnx(clf, X[:1])
    >>> [o.name for o in onx.graph.output]
    ['label_0', 'probabilities_0']
    >>> session = ort.InferenceSession(onx.SerializeToString())
    >>> label, proba = session.run(None, {"X": X[:3]})
    >>> bool((label == clf.predict(X[:3])).all())
    True
    """
    skl2onnx = _import_skl2onnx()
    estimator, prefix = _final_estimator(model)
    _check_estimator(estimator, prefix)
    if X_sample is None:
        raise ValueError(
            "X_sample must be a few rows of the model's input (an array, sparse "
            "matrix or DataFrame), to type the ONNX inputs; got None."
        )
    initial_types = _initial_types(X_sample)
    width = getattr(model, "n_features_in_", None)
    n_columns = sum(t.shape[1] for _, t in initial_types)
    if width is not None and n_columns != width:
        raise ValueError(
            f"X_sample has {n_columns} features, but {type(model).__name__} was "
            f"fitted with {width} features."
        )
    register_onnx_converters()
    if type(estimator) not in ESTIMATORS:  # a subclass
        _register(type(estimator))
    return skl2onnx.convert_sklearn(
        model, initial_types=initial_types, target_opset=target_opset
    )
