"""Per-task scores that skip missing labels, and scorers built on them."""

import math
from numbers import Integral

import numpy as np
from sklearn.metrics import make_scorer, r2_score, roc_auc_score

from ._labels import is_missing, target_columns
from ._tasks import CLASSIFICATION, REGRESSION

__all__ = [
    "make_task_scorer",
    "make_task_scorers",
    "per_task_roc_auc",
    "per_task_scores",
]

# The estimator method each scorer reads, and the kind of task it scores.
SCORER_METRICS = {
    "accuracy": ("predict", CLASSIFICATION),
    "r2": ("predict", REGRESSION),
    "roc_auc": ("predict_proba", CLASSIFICATION),
    "score": ("predict", None),  # each task by its kind
}


def per_task_scores(y_true, y_pred, task_types, sample_weight=None):
    """Score each task (column of ``y``) on its labelled entries.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tasks)
        True labels or values; ``NaN`` or ``None`` marks a missing label, which
        is left out of that task's score.
    y_pred : array-like of the same shape
        Predicted labels or values.
    task_types : sequence of {"classification", "regression"}
        The kind of each task: accuracy for classification, R² for regression.
    sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
            default=None
        Weights of the samples, or of each sample in each task.

    Returns
    -------
    scores : ndarray of shape (n_tasks,)
        Accuracy or R² of each task; ``NaN`` for a task with no label (or
        whose labelled entries all weigh zero).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl.metrics import per_task_scores
    >>> y_true = np.array([[0, 1.0], [1, np.nan], [1, 3.0]])
    >>> y_pred = np.array([[0, 1.0], [0, 2.0], [1, 3.0]])
    >>> per_task_scores(y_true, y_pred, ["classification", "regression"])
    array([0.66666667, 1.        ])
    """
    truth = target_columns(y_true, len(y_true))[0]
    pred = target_columns(y_pred, len(y_true), name="y_pred")[0]
    if not len(truth) == len(pred) == len(task_types):
        raise ValueError(
            f"y_true, y_pred and task_types must describe the same tasks; got "
            f"{len(truth)}, {len(pred)} and {len(task_types)}."
        )
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if weights is not None and weights.ndim == 2 and weights.shape[1] != len(truth):
        raise ValueError(
            f"sample_weight must be 1-D (n_samples,) or have one column per task; "
            f"got {weights.shape[1]} columns for {len(truth)} tasks."
        )
    scores = np.full(len(truth), np.nan)
    for t, (true, predicted, kind) in enumerate(zip(truth, pred, task_types)):
        labelled = ~is_missing(true)
        if not labelled.any():
            continue
        w = None
        if weights is not None:
            w = (weights[:, t] if weights.ndim == 2 else weights)[labelled]
            if not w.sum() > 0:
                continue
        if kind == CLASSIFICATION:
            scores[t] = np.average(true[labelled] == predicted[labelled], weights=w)
        elif kind == REGRESSION:
            try:
                true_values = true[labelled].astype(float)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Task {t} of y_true is scored as a regression task (R²) but "
                    f"holds non-numeric values such as {true[labelled][0]!r}; for "
                    f"a model that mixes classification and regression tasks, give "
                    f"the scorers the kind of each task with task_types=."
                ) from None
            scores[t] = r2_score(
                true_values, predicted[labelled].astype(float), sample_weight=w
            )
        else:
            raise ValueError(
                f"task_types must hold 'classification' or 'regression'; got {kind!r}."
            )
    return scores


def mean_score(scores):
    """An estimator's score from its tasks' scores: their mean over the tasks
    that have one (``NaN`` marks a task without a labelled entry), ``NaN``
    when none has."""
    # On a list of floats: numpy's reductions cost several times more on the
    # few tasks of an epoch's validation score (this runs every epoch).
    scored = [s for s in np.asarray(scores, dtype=float).ravel().tolist() if s == s]
    if not scored:
        return float("nan")
    try:
        return math.fsum(scored) / len(scored)
    except (OverflowError, ValueError):  # infinities, or a sum beyond float's
        return float(np.mean(scored))


def per_task_roc_auc(y_true, y_proba, classes=None, sample_weight=None):
    """One-vs-rest ROC AUC of each classification task on its labelled entries.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tasks)
        True labels; ``NaN`` or ``None`` marks a missing label, which is left
        out of that task's score.
    y_proba : ndarray of shape (n_samples, n_classes) or list of such arrays
        Class probabilities, as ``predict_proba`` returns them: one array for
        a 1-D ``y_true``, else a list with one array per task.
    classes : ndarray or list of ndarray, default=None
        The labels of the columns of each task's probabilities (the
        estimator's ``classes_``). When ``None``, the columns are taken to
        follow the sorted labels of ``y_true``, which must then show every
        class of the task among its labelled entries (else the task scores
        ``NaN``).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.

    Returns
    -------
    scores : ndarray of shape (n_tasks,)
        ROC AUC of each task: for two classes, that of the second class; for
        more, the mean over classes of each class against the rest (as
        ``roc_auc_score(multi_class="ovr")``), over the classes that have
        labelled positives and negatives. ``NaN`` where it is undefined (no
        label, or a single class among the labelled entries).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl.metrics import per_task_roc_auc
    >>> y_true = np.array([[0, "a"], [1, None], [1, "b"], [0, "b"]], dtype=object)
    >>> proba = [
    ...     np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]]),
    ...     np.array([[0.8, 0.2], [0.5, 0.5], [0.3, 0.7], [0.6, 0.4]]),
    ... ]
    >>> classes = [np.array([0, 1]), np.array(["a", "b"])]
    >>> per_task_roc_auc(y_true, proba, classes)
    array([0.75, 1.  ])
    """
    truth, _, _, one_d = target_columns(y_true, len(y_true))
    probas = list(y_proba) if isinstance(y_proba, list) else [y_proba]
    if classes is None:
        per_task_classes = [None] * len(truth)
    else:
        per_task_classes = [classes] if one_d else list(classes)
    if not len(truth) == len(probas) == len(per_task_classes):
        raise ValueError(
            f"y_true, y_proba and classes must describe the same tasks; got "
            f"{len(truth)}, {len(probas)} and {len(per_task_classes)}."
        )
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    scores = np.full(len(truth), np.nan)
    for t, (true, proba, labels) in enumerate(zip(truth, probas, per_task_classes)):
        labelled = ~is_missing(true)
        true, proba = true[labelled], np.asarray(proba)[labelled]
        w = None if weights is None else weights[labelled]
        if labels is None:
            labels = np.unique(true)
            if len(labels) != proba.shape[1]:
                continue  # which column is which class is unknown
        else:
            _check_known_labels(true, labels, t)
        # Two classes: the AUC of the second; more: one class against the rest.
        columns = [1] if proba.shape[1] == 2 else range(proba.shape[1])
        aucs = []
        for j in columns:
            positive = true == labels[j]
            if positive.any() and not positive.all():
                aucs.append(roc_auc_score(positive, proba[:, j], sample_weight=w))
        if aucs:
            scores[t] = np.mean(aucs)
    return scores


def _check_known_labels(true, labels, task):
    known = np.zeros(len(true), dtype=bool)
    for label in labels:
        known |= true == label
    if not known.all():
        raise ValueError(
            f"Task {task} of y_true holds labels {np.unique(true[~known])!r} that "
            f"are not among its classes {labels!r}."
        )


def _task_probabilities(y_proba, one_d):
    """Per task ``(n, k)`` probabilities from scikit-learn's scorer response.

    For a single binary task scikit-learn's scorers keep the probability of
    the positive class only, and for several tasks that are all binary with
    0/1 (or boolean) labels an ``(n, n_tasks)`` array of them.
    """
    if isinstance(y_proba, list):
        return y_proba
    y_proba = np.asarray(y_proba)
    if y_proba.ndim == 1:
        return [np.column_stack([1 - y_proba, y_proba])]
    if one_d:
        return [y_proba]
    return [np.column_stack([1 - p, p]) for p in y_proba.T]


def _check_kinds(task_types, n_tasks):
    kinds = list(task_types)
    if len(kinds) != n_tasks:
        raise ValueError(
            f"task_types must give the kind of each of the {n_tasks} task(s) of y; "
            f"got {len(kinds)} entries."
        )
    for kind in kinds:
        if kind not in (CLASSIFICATION, REGRESSION):
            raise ValueError(
                f"task_types must hold 'classification' or 'regression'; got {kind!r}."
            )
    return kinds


def _check_accuracy_column(column, task):
    """Accuracy on a column of non-integral numbers is a regression task scored
    as if it were classification: an error, not a silent 0."""
    values = column[~is_missing(column)]
    if values.dtype.kind in "fc" or values.dtype == object:
        try:
            numbers = values.astype(np.float64)
        except (TypeError, ValueError):
            return
        if len(numbers) and not np.array_equal(numbers, np.round(numbers)):
            raise ValueError(
                f"The 'accuracy' scorer got non-integral values for task {task} of "
                f"y, a regression task; score it with 'r2', or give the scorers "
                f"the kind of each task with task_types=."
            )


def _task_score(y_true, y_pred, *, metric, task, task_types=None, sample_weight=None):
    """The score function behind :func:`make_task_scorer`."""
    one_d = np.ndim(y_true) == 1
    n_tasks = 1 if one_d else np.shape(y_true)[1]
    if task is not None and task >= n_tasks:
        raise ValueError(
            f"The scorer is for task {task} but y has {n_tasks} tasks; "
            f"tasks are numbered from 0."
        )
    wanted = SCORER_METRICS[metric][1]
    if task_types is None:  # every task is of the metric's kind
        kinds = [wanted] * n_tasks
        if metric == "score":
            raise ValueError("The 'score' scorer needs task_types.")
    else:
        kinds = _check_kinds(task_types, n_tasks)
    if metric == "score":
        scored = list(range(n_tasks))
    else:
        scored = [t for t, kind in enumerate(kinds) if kind == wanted]
        if task is not None and kinds[task] != wanted:
            raise ValueError(
                f"The {metric!r} scorer is for {wanted} tasks, but task {task} of y "
                f"is a {kinds[task]} task."
            )
        if not scored:
            raise ValueError(
                f"The {metric!r} scorer is for {wanted} tasks, and y has none "
                f"(task_types={kinds})."
            )
    scores = np.full(n_tasks, np.nan)
    columns = target_columns(y_true, len(y_true))[0]
    if metric == "roc_auc":
        probas = _task_probabilities(y_pred, one_d and n_tasks == 1)
        if len(probas) != len(scored):
            raise ValueError(
                f"The 'roc_auc' scorer got class probabilities of {len(probas)} "
                f"task(s) for the {len(scored)} classification task(s) of y; for a "
                f"model that mixes classification and regression tasks, give the "
                f"scorers the kind of each task with task_types=."
            )
        truth = columns[0] if one_d else np.column_stack(
            [columns[t].astype(object) for t in scored]
        )
        scores[scored] = per_task_roc_auc(
            truth, probas if not one_d else probas[0], sample_weight=sample_weight
        )
    else:
        if metric == "accuracy" and task_types is None:
            for t in scored if task is None else [task]:
                _check_accuracy_column(columns[t], t)
        scores = per_task_scores(y_true, y_pred, kinds, sample_weight)
    if task is None:
        return mean_score(scores[scored])
    return float(scores[task])


def make_task_scorer(metric, task=None, task_types=None):
    """Scorer of one task, or of the mean over tasks, on labelled entries only.

    The scorer follows scikit-learn's protocol (``scorer(estimator, X, y)``,
    built with :func:`~sklearn.metrics.make_scorer`), so it serves as
    ``scoring=`` in :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_validate`. Entries of ``y`` that are
    ``NaN`` or ``None`` are left out of the task's score. The tasks are the
    columns of ``y`` (auxiliary tasks are not predicted, so not scored).

    Parameters
    ----------
    metric : {"accuracy", "roc_auc", "r2", "score"}
        Accuracy of ``predict`` or ROC AUC of ``predict_proba`` (one class
        against the rest for more than two classes, see
        :func:`per_task_roc_auc`) for classification tasks; R² of
        ``predict`` for regression tasks; ``"score"`` each task by its kind
        (accuracy or R², as the estimators' ``score``; needs
        ``task_types``).
    task : int, default=None
        Column of ``y`` to score; ``None`` scores the mean over the tasks
        the metric is for, skipping those whose score is undefined (``NaN``).
    task_types : list of {"classification", "regression"}, default=None
        The kind of each task of ``y`` (a fitted
        :class:`~sklearn_mtl.MultiTaskNet`'s ``task_types_``), for a model
        that mixes both kinds: a metric then scores only the tasks of its
        kind, and asking it for a task of the other kind is an error. When
        None every task is taken to be of the metric's kind (a classifier's
        or a regressor's tasks).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None)``, greater is better.

    See Also
    --------
    make_task_scorers : A dict of such scorers, one per task and the mean.
    per_task_scores : Accuracy or R² of each task from predictions.

    Notes
    -----
    For ``"roc_auc"`` the scorer does not see the estimator's ``classes_``:
    a task's columns of probabilities are matched to the sorted labels of
    ``y`` in the scored rows, so a multiclass task scores ``NaN`` on rows
    that lack one of its classes (scikit-learn's ``"roc_auc_ovr"`` fails
    there). Stratified folds avoid it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_mtl import MultiTaskNetClassifier
    >>> from sklearn_mtl.metrics import make_task_scorer
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> Y = np.column_stack([y, X[:, 0] > 0]).astype(float)
    >>> Y[::2, 0] = np.nan  # task 0 is labelled on half of the rows
    >>> clf = MultiTaskNetClassifier(max_iter=50, random_state=0).fit(X, Y)
    >>> scorer = make_task_scorer("roc_auc", task=0)
    >>> bool(scorer(clf, X, Y) > 0.9)
    True
    """
    if metric not in SCORER_METRICS:
        raise ValueError(
            f"metric must be one of {sorted(SCORER_METRICS)}; got {metric!r}."
        )
    if task is not None and (
        not isinstance(task, Integral) or isinstance(task, bool) or task < 0
    ):
        raise ValueError(
            f"task must be a column index of y (an int >= 0) or None for the mean "
            f"over tasks; got {task!r}."
        )
    if task_types is not None:
        task_types = _check_kinds(task_types, len(task_types))
        if task is not None and task >= len(task_types):
            raise ValueError(
                f"task is {task} but task_types gives {len(task_types)} tasks."
            )
    elif metric == "score":
        raise ValueError(
            "metric='score' scores each task by its kind: give task_types, the "
            "kind of each task (a fitted MultiTaskNet's task_types_)."
        )
    response_method = SCORER_METRICS[metric][0]
    return make_scorer(
        _task_score, response_method=response_method, metric=metric, task=task,
        task_types=task_types,
    )


def make_task_scorers(metrics, n_tasks=None, task_types=None):
    """A ``scoring=`` dict with each task's score and their mean.

    Parameters
    ----------
    metrics : str or list of str
        One or more of ``"accuracy"``, ``"roc_auc"`` and ``"r2"`` (see
        :func:`make_task_scorer`).
    n_tasks : int, default=None
        Number of tasks (columns of ``y``); may be left out when
        ``task_types`` is given.
    task_types : list of {"classification", "regression"}, default=None
        The kind of each task, for a model that mixes both kinds (a fitted
        :class:`~sklearn_mtl.MultiTaskNet`'s ``task_types_``): each task then
        gets the scorers of the metrics for its kind only, each metric's mean
        is over the tasks of its kind, and ``"mean_score"`` is the mean of the
        tasks' scores by kind (accuracy or R², the estimator's ``score``).

    Returns
    -------
    scoring : dict
        ``"task{t}_{metric}"`` for each task ``t`` and ``"mean_{metric}"``,
        for each metric (and ``"mean_score"`` with ``task_types``). In a
        search, ``cv_results_`` then holds ``"mean_test_task0_accuracy"`` and
        so on; pass ``refit=`` one of the names to pick the best parameters
        by it.

    See Also
    --------
    make_task_scorer : One of these scorers.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.model_selection import KFold, cross_validate
    >>> from sklearn_mtl import MultiTaskNetClassifier
    >>> from sklearn_mtl.metrics import make_task_scorers
    >>> X, Y = make_multilabel_classification(
    ...     n_samples=150, n_classes=2, random_state=0
    ... )
    >>> scoring = make_task_scorers(["accuracy", "roc_auc"], n_tasks=2)
    >>> sorted(scoring)  # doctest: +NORMALIZE_WHITESPACE
    ['mean_accuracy', 'mean_roc_auc', 'task0_accuracy', 'task0_roc_auc',
     'task1_accuracy', 'task1_roc_auc']
    >>> clf = MultiTaskNetClassifier(max_iter=20, random_state=0)
    >>> results = cross_validate(clf, X, Y, cv=KFold(3), scoring=scoring)
    >>> results["test_task1_roc_auc"].shape
    (3,)

    For a model that mixes both kinds, name each task's kind:

    >>> sorted(make_task_scorers(["accuracy", "r2"], task_types=[
    ...     "classification", "regression"]))  # doctest: +NORMALIZE_WHITESPACE
    ['mean_accuracy', 'mean_r2', 'mean_score', 'task0_accuracy', 'task1_r2']
    """
    if task_types is not None:
        task_types = _check_kinds(task_types, len(task_types))
        if n_tasks is None:
            n_tasks = len(task_types)
        elif n_tasks != len(task_types):
            raise ValueError(
                f"n_tasks is {n_tasks} but task_types gives {len(task_types)} kinds."
            )
    if not isinstance(n_tasks, Integral) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive int; got {n_tasks!r}.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    scoring = {}
    for metric in metrics:
        if metric not in SCORER_METRICS or metric == "score":
            raise ValueError(
                f"metrics must be among 'accuracy', 'r2' and 'roc_auc'; got {metric!r}."
            )
        wanted = SCORER_METRICS[metric][1]
        tasks = range(n_tasks) if task_types is None else [
            t for t, kind in enumerate(task_types) if kind == wanted
        ]
        for task in tasks:
            scoring[f"task{task}_{metric}"] = make_task_scorer(metric, task, task_types)
        if tasks:
            scoring[f"mean_{metric}"] = make_task_scorer(metric, None, task_types)
    if task_types is not None:
        scoring["mean_score"] = make_task_scorer("score", None, task_types)
    return scoring
