"""MultiTaskNetClassifier: every column of ``y`` is a classification task."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn_compat.base import _fit_context

from ._base import BaseMultiTaskNet
from ._docs import TEMPLATE
from ._labels import per_task_classes
from ._tasks import CLASSIFICATION


class MultiTaskNetClassifier(ClassifierMixin, BaseMultiTaskNet):
    __doc__ = TEMPLATE.format(
        summary="""Multi-task neural network classifier with a shared trunk.

    One network learns every column of ``y`` at once: a shared trunk of
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` blocks feeds one
    softmax head per task (hard parameter sharing). The loss is the weighted
    sum over tasks of each task's cross-entropy, averaged over its labelled
    entries, plus an L1/L2 penalty on the weight matrices. Training runs in
    a skorch ``NeuralNet`` kept as ``net_``.""",
        mc_samples="""``predict_proba``
        averages the class probabilities of that many stochastic forward
        passes (dropout on, batch norm on its running statistics), and
        ``predict`` returns the most probable class of that average.""",
        mlp="MLPClassifier",
        stratified=" (stratified on the first\n        task when it is fully labelled)",
        score="accuracy",
        extra_parameters="""\
    class_weight : dict, "balanced", list or None, default=None
        Weights of the classes in the loss of each task of ``y`` (auxiliary
        tasks are not weighted), as in
        :class:`~sklearn.ensemble.RandomForestClassifier`: a dict ``{label:
        weight}`` or ``"balanced"`` for a single task (``"balanced"`` applies
        to every task), or a list with one dict, ``"balanced"`` or ``None`` per
        task.
""",
        extra_attributes="""\
    classes_ : ndarray or list of ndarray
        Labels of the single task, or a list with the labels of each task.
""",
        see_also="""\
    MultiTaskNetRegressor : The same network for regression tasks.
    MultiTaskNet : The same network for a mix of both.
    sklearn.neural_network.MLPClassifier : A single network without dropout.""",
        notes="""\
    Missing labels (``NaN``, ``None`` or ``pandas.NA`` in ``y``) are left out
    of the loss and of ``score``. Rows whose every weight is zero (missing or
    ``sample_weight == 0``) are dropped before training, which makes a zero
    weight the same as leaving the row out.

    With a 2-D ``y``, ``predict`` returns an ``(n_samples, n_tasks)`` array,
    of the labels' common dtype or of ``object`` dtype when tasks' label
    dtypes differ, and ``predict_proba`` a list of ``(n_samples,
    n_classes_t)`` arrays, as :class:`~sklearn.multioutput.MultiOutputClassifier`.
""",
        examples="""\
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_mtl import MultiTaskNetClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = MultiTaskNetClassifier(max_iter=50, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)""",
    )

    _parameter_constraints = {
        **BaseMultiTaskNet._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        head_layer_sizes=(),
        architecture="shared",
        n_experts=4,
        activation="relu",
        dropout=0.0,
        batch_norm=False,
        mc_samples=0,
        group_lasso=0.0,
        adversarial_epsilon=0.0,
        alpha=1e-4,
        l1_ratio=0.0,
        task_weights=None,
        task_balancing="fixed",
        aux_task_types=None,
        pretrained=None,
        trunk_learning_rate=None,
        solver="adam",
        learning_rate_init=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        class_weight=None,
        random_state=None,
        warm_start=False,
        device="cpu",
        verbose=0,
        progress_bar=False,
        callbacks=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            head_layer_sizes=head_layer_sizes,
            architecture=architecture,
            n_experts=n_experts,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            mc_samples=mc_samples,
            group_lasso=group_lasso,
            adversarial_epsilon=adversarial_epsilon,
            alpha=alpha,
            l1_ratio=l1_ratio,
            task_weights=task_weights,
            task_balancing=task_balancing,
            aux_task_types=aux_task_types,
            pretrained=pretrained,
            trunk_learning_rate=trunk_learning_rate,
            solver=solver,
            learning_rate_init=learning_rate_init,
            batch_size=batch_size,
            max_iter=max_iter,
            shuffle=shuffle,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            random_state=random_state,
            warm_start=warm_start,
            device=device,
            verbose=verbose,
            progress_bar=progress_bar,
            callbacks=callbacks,
        )
        self.class_weight = class_weight

    def _main_kinds(self, names, declared):
        return [CLASSIFICATION] * len(names)

    def _class_weights(self, task, spec, labels):
        class_weight = self.class_weight
        if isinstance(class_weight, list):
            if len(class_weight) != self._n_main_tasks:
                raise ValueError(
                    f"class_weight must have one entry per task (column of y); got "
                    f"{len(class_weight)} entries for {self._n_main_tasks} tasks."
                )
            class_weight = class_weight[task]
        elif isinstance(class_weight, dict) and self._n_main_tasks > 1:
            raise ValueError(
                "class_weight as a dict is for a single task; for several tasks pass "
                "a list with one dict (or 'balanced', or None) per task."
            )
        if class_weight is None:
            return None
        per_class = compute_class_weight(class_weight, classes=spec.classes, y=labels)
        if not np.all(np.isfinite(per_class) & (per_class >= 0)):
            raise ValueError(  # it scales the loss, as sample_weight does
                f"class_weight must give finite, non-negative weights; got "
                f"{class_weight!r} for task {task}."
            )
        return per_class[np.searchsorted(spec.classes, labels)]

    def _set_task_attributes(self):
        classes = [spec.classes for spec in self.tasks_[: self._n_main_tasks]]
        self.classes_ = classes[0] if self._y_1d else classes
        self.n_outputs_ = self._n_main_tasks

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, aux_targets=None, sample_weight=None):
        """Train the network for one epoch on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Labels of each task; ``NaN`` or ``None`` marks a missing label.
        classes : array-like or list of array-like, default=None
            All labels of the task (or, for a 2-D ``y``, a list with the labels
            of each task, or one list of labels that every task has, as
            ``MLPClassifier``'s multi-label ``classes=[0, 1]``). Used on the
            first call only; when ``None`` the labels present in the first
            ``y`` are all the model will know.
        aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
                default=None
            Auxiliary tasks, as in :meth:`fit`; their kinds and labels are
            fixed on the first call. Left out on a later call, the auxiliary
            heads are not trained in that epoch.
        sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
                default=None
            Weights of the samples in the loss.

        Returns
        -------
        self : MultiTaskNetClassifier
            The updated estimator.
        """
        if classes is not None and hasattr(self, "tasks_"):
            self._check_same_classes(classes)
        return self._fit(
            X, y, aux_targets, sample_weight, incremental=True, classes=classes
        )

    def _check_same_classes(self, classes):
        """``classes`` of a later ``partial_fit`` must be those of the first."""
        tasks = self.tasks_[: self._n_main_tasks]
        given = per_task_classes(classes, self._y_1d, len(tasks))
        if len(given) != len(tasks) or not all(
            np.array_equal(np.unique(np.asarray(labels)), spec.classes)
            for labels, spec in zip(given, tasks)
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to "
                f"partial_fit, was: {self.classes_!r}"
            )

    def predict(self, X):
        """Predict the label of every task.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Predicted labels, in the dtype of the training labels.
        """
        return self._predict(X)

    def predict_proba(self, X):
        """Class probabilities of every task.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or list of such arrays
            One array for a 1-D ``y``, else a list with one array per task;
            columns follow ``classes_``.
        """
        probabilities = self._task_outputs(X)
        return probabilities[0] if self._y_1d else probabilities

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, with the same layout."""
        proba = self.predict_proba(X)
        if isinstance(proba, list):
            return [np.log(p) for p in proba]
        return np.log(proba)

    # Not ClassifierMixin's: accuracy over the labelled entries of each task.
    score = BaseMultiTaskNet.score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
