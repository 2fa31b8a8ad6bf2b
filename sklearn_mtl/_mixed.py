"""MultiTaskNet: the columns of ``y`` mix classification and regression tasks."""

from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if

from ._base import BaseMultiTaskNet
from ._docs import TEMPLATE
from ._targets import declared_kinds
from ._tasks import CLASSIFICATION


def _has_classification_task(estimator):
    """``predict_proba`` exists unless the fitted model has no classification task."""
    if not hasattr(estimator, "tasks_"):
        return True  # unfitted: calling it says so
    return CLASSIFICATION in estimator.task_types_


class MultiTaskNet(BaseMultiTaskNet):
    __doc__ = TEMPLATE.format(
        summary="""Multi-task neural network for classification and regression tasks.

    One network learns every column of ``y`` at once, whatever its kind: a
    shared trunk of ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``
    blocks feeds one head per task, softmax for a classification task and
    linear for a regression task (standardised inside ``fit``). The loss is
    the weighted sum over tasks of each task's cross-entropy or squared
    error, averaged over its labelled entries, plus an L1/L2 penalty on the
    weight matrices. It is the engine of :class:`MultiTaskNetClassifier`
    and :class:`MultiTaskNetRegressor`, with each task's kind taken from its
    values or from ``task_types``. Training runs in a skorch ``NeuralNet``
    kept as ``net_``.""",
        mc_samples="""``predict_proba``
        averages the class probabilities of that many stochastic forward
        passes (dropout on, batch norm on its running statistics),
        ``predict`` returns the most probable class of that average and the
        mean value of regression tasks, and ``predict(X, return_std=True)``
        also the standard deviation of the values.""",
        mlp="MLPClassifier",
        stratified="",
        score="score",
        extra_parameters="""\
    task_types : list or dict, default=None
        Kind of each task (column of ``y``), ``"classification"`` or
        ``"regression"``: a list with one entry per column, or a dict from
        column names (or positions) to kinds. Columns left out (or given
        ``None``) are typed as scikit-learn's
        :func:`~sklearn.utils.multiclass.type_of_target` types them
        (``"continuous"`` is regression, ``"binary"`` and ``"multiclass"``
        classification; a pandas ``category`` column is classification),
        except that integral numbers taking more than 10 distinct values
        (prices, masses or counts in whole units) are regression.
""",
        extra_attributes="""\
    task_types_ : list of str
        Kind of each task of ``y``: ``"classification"`` or ``"regression"``.
    classes_ : ndarray or list
        Labels of the single task, or a list with the labels of each task of
        ``y`` (``None`` for a regression task).
""",
        see_also="""\
    MultiTaskNetClassifier : The same network when every task is a
        classification task (with ``class_weight``).
    MultiTaskNetRegressor : The same network when every task is a regression
        task.""",
        notes="""\
    Missing labels (``NaN``, ``None`` or ``pandas.NA`` in ``y``) are left out
    of the loss and of ``score``. Rows whose every weight is zero (missing or
    ``sample_weight == 0``) are dropped before training, which makes a zero
    weight the same as leaving the row out.

    ``predict`` returns, for a 2-D ``y``, an ``(n_samples, n_tasks)`` array:
    of ``object`` dtype when the tasks' labels and values differ in dtype
    (labels in their own dtype, values as floats), else of the common dtype.
    ``predict_proba`` returns the probabilities of the classification tasks
    only, in their order in ``y``; it does not exist on a fitted model with
    no classification task. ``score`` is the mean over tasks of the accuracy
    (classification) or R² (regression) on each task's labelled entries.

    scikit-learn's ``check_cv`` cannot type a ``y`` that mixes strings and
    numbers or holds missing labels, so searches with an integer ``cv`` fail
    on it before the estimator runs: pass ``cv=KFold(...)``.
""",
        examples="""\
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNet
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4))
    >>> y = np.column_stack([X[:, 0] > 0, 3 * X[:, 1] + 0.5])  # a label, a value
    >>> net = MultiTaskNet(max_iter=50, random_state=0).fit(X, y)
    >>> net.task_types_
    ['classification', 'regression']""",
    )

    _parameter_constraints = {
        **BaseMultiTaskNet._parameter_constraints,
        "task_types": [list, dict, None],
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
        task_types=None,
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
        self.task_types = task_types

    def _main_kinds(self, names, declared):
        return declared_kinds(self.task_types, names, declared, "task_types", "y")

    def _set_task_attributes(self):
        tasks = self.tasks_[: self._n_main_tasks]
        self.task_types_ = [spec.kind for spec in tasks]
        classes = [spec.classes for spec in tasks]
        self.classes_ = classes[0] if self._y_1d else classes
        self.n_outputs_ = len(tasks)

    def predict(self, X, return_std=False):
        """Predict the label or value of every task.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.
        return_std : bool, default=False
            Also return the standard deviation of each regression task's
            prediction over the ``mc_samples`` Monte-Carlo dropout passes
            (``NaN`` for classification tasks). Requires ``mc_samples > 0``.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Labels (in the dtype of the training labels) and values
            (float64); ``object`` dtype when they differ.
        y_std : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Standard deviations (float64). Only with ``return_std=True``.
        """
        return self._predict(X, return_std)

    @available_if(_has_classification_task)
    def predict_proba(self, X):
        """Class probabilities of every classification task.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or list of such arrays
            One array for a 1-D ``y``, else a list with one array per
            classification task of ``y``, in their order; columns follow
            ``classes_``.
        """
        outputs = self._task_outputs(X)
        proba = [p for p, kind in zip(outputs, self.task_types_) if kind == CLASSIFICATION]
        return proba[0] if self._y_1d else proba

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Classification and regression tasks: the tags of both kinds.
        tags.classifier_tags = ClassifierTags(multi_label=True)
        tags.regressor_tags = RegressorTags()
        return tags
