"""Which tasks help each other: lookahead inter-task affinity and task groups.

:func:`task_affinity` measures, during one training run, how much a step on
one task's loss lowers every other task's loss (Fifty et al., "Efficiently
Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021);
:func:`suggest_task_groups` splits the tasks into groups that help each
other most. :class:`~sklearn_mtl.TaskAffinityDisplay` draws the affinities.
"""

import numbers

import numpy as np
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch
from skorch.callbacks import Callback

from ._classifier import MultiTaskNetClassifier
from ._grouping import suggest_task_groups
from ._mixed import MultiTaskNet
from ._regressor import MultiTaskNetRegressor

__all__ = ["suggest_task_groups", "task_affinity"]

ESTIMATORS = (MultiTaskNet, MultiTaskNetClassifier, MultiTaskNetRegressor)



class TaskAffinity(Callback):
    """Lookahead inter-task affinity, measured on the training batches.

    Every ``every``-th training batch (from the first), before the
    optimiser's step, the callback computes each task's gradient on the
    shared parameters (``module_.shared_parameters()``), takes for each task
    ``i`` a plain SGD step ``theta_s - lr * grad_i`` on a copy of them, and
    records ``Z[i, j] = 1 - L_j(after) / L_j(before)`` on the same batch.
    Everything it changes (shared parameters, the module's buffers, torch's
    random generators) is put back exactly, so training goes on as without
    it. Read the result from :attr:`affinity_`.

    Parameters
    ----------
    every : int
        Measure on every ``every``-th training batch.
    learning_rate : float or None
        Step size of the lookahead; None takes the net's ``lr``.

    Attributes
    ----------
    affinity_ : ndarray of shape (n_tasks, n_tasks)
        Mean of ``Z[i, j]`` over the measured batches where both tasks had a
        labelled entry; NaN where they never had.
    n_measurements_ : ndarray of shape (n_tasks, n_tasks)
        Number of batches averaged into each entry.
    n_steps_ : int
        Training batches measured.
    """

    def __init__(self, every=1, learning_rate=None):
        self.every = every
        self.learning_rate = learning_rate

    def initialize(self):
        self.batches_seen_ = 0
        self.n_steps_ = 0
        self.sums_ = None
        self.counts_ = None
        return self

    @property
    def affinity_(self):
        if self.sums_ is None:
            return None
        sums, counts = self.sums_.cpu().numpy(), self.counts_.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)

    @property
    def n_measurements_(self):
        return None if self.counts_ is None else self.counts_.cpu().numpy().astype(int)

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        seen = self.batches_seen_
        self.batches_seen_ += 1
        if seen % self.every == 0:
            self._measure(net, batch)

    def _measure(self, net, batch):
        module = net.module_
        params = [p for p in module.shared_parameters() if p.requires_grad]
        Xi, (targets, weights) = batch
        n_tasks = targets.shape[1]
        if self.sums_ is None:
            self.sums_ = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
            self.counts_ = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
        self.n_steps_ += 1
        if not params:
            return
        lr = net.lr if self.learning_rate is None else self.learning_rate
        criterion = net.criterion_
        devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
        buffers = [(b, b.clone()) for b in module.buffers()]
        saved = [p.detach().clone() for p in params]
        # Every pass draws the dropout masks the training step is about to
        # draw: the generators are reset to their state before each pass, and
        # restored on exit, so that training draws what it would have drawn.
        with torch.random.fork_rng(devices=devices):
            states = _rng_states(devices)
            with torch.enable_grad():
                losses = criterion.per_task(net.infer(Xi), targets, weights)
            before = losses.detach()
            labelled = (weights > 0).any(dim=0)
            movers = torch.nonzero(labelled).flatten().tolist()
            grads = []
            for k, i in enumerate(movers):
                grads.append(
                    torch.autograd.grad(
                        losses[i], params, retain_graph=k + 1 < len(movers),
                        allow_unused=True,
                    )
                )
            del losses
            _restore(buffers)
            after = torch.full((n_tasks, n_tasks), float("nan"), device=before.device)
            with torch.no_grad():
                for i, grad in zip(movers, grads):
                    for param, g in zip(params, grad):
                        if g is not None:
                            param.sub_(g, alpha=lr)
                    _set_rng_states(devices, states)
                    after[i] = criterion.per_task(net.infer(Xi), targets, weights)
                    for param, value in zip(params, saved):
                        param.copy_(value)
                    _restore(buffers)
        valid = (labelled[:, None] & labelled[None, :] & (before > 0)[None, :]).cpu()
        ratio = (1.0 - after / before.clamp_min(1e-30)).double().cpu()
        self.sums_ += torch.where(valid, ratio, 0.0)
        self.counts_ += valid


def _rng_states(devices):
    return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]


def _set_rng_states(devices, states):
    cpu, cuda = states
    torch.set_rng_state(cpu)
    for device, state in zip(devices, cuda):
        torch.cuda.set_rng_state(state, device)


def _restore(buffers):
    """Put back the module's buffers (batch-norm statistics) as they were."""
    with torch.no_grad():
        for buffer, value in buffers:
            buffer.copy_(value)


def _final_estimator(estimator):
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        return final, f"{name}__"
    return estimator, ""


def _n_columns(data):
    shape = np.shape(data)
    return 1 if len(shape) == 1 else shape[1]


def _column_names(data, prefix):
    """Task names of the columns of ``data``: a DataFrame's column names,
    a named Series' name, else ``prefix[k]`` (``prefix`` alone for 1-D)."""
    columns = getattr(data, "columns", None)
    if columns is not None:
        return [str(c) for c in columns]
    if np.ndim(data) == 1:
        name = getattr(data, "name", None)
        return [prefix if name is None else str(name)]
    return [f"{prefix}[{k}]" for k in range(_n_columns(data))]


def task_affinity(
    estimator,
    X,
    y,
    *,
    aux_targets=None,
    sample_weight=None,
    every="auto",
    learning_rate=None,
):
    """Lookahead inter-task affinity, measured while training a copy.

    The affinity of Fifty et al. (NeurIPS 2021): at a training step on batch
    ``B``, with shared parameters ``theta_s`` and task heads ``theta_j``,

        ``Z[i, j] = 1 - L_j(B; theta_s - lr * grad_s L_i, theta_j) / L_j(B; theta_s, theta_j)``

    is how much a step on task ``i``'s loss alone lowers task ``j``'s loss
    (negative: it raises it). Entry ``[i, j]`` of ``affinity`` is the mean
    of ``Z[i, j]`` over the training steps where it is measured. It is
    measured during one training run of ``sklearn.base.clone(estimator)``,
    which is returned fitted: the measurement leaves the training as it is
    (the clone ends up with the same weights as an unmeasured fit).

    Parameters
    ----------
    estimator : MultiTaskNetClassifier, MultiTaskNetRegressor or MultiTaskNet
        The model to measure, or a :class:`~sklearn.pipeline.Pipeline`
        ending in one. It is cloned, never modified; fitted or not does not
        matter.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training inputs.
    y : array-like or DataFrame of shape (n_samples,) or (n_samples, n_tasks)
        Targets of the tasks, as for the estimator's ``fit`` (missing
        labels as NaN).
    aux_targets : array-like or DataFrame of shape (n_samples, n_aux_tasks), \
            default=None
        Auxiliary tasks, as for the estimator's ``fit``; they come after the
        tasks of ``y``.
    sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), \
            default=None
        Sample weights, as for the estimator's ``fit``; the losses ``L_j``
        are the weighted losses the training minimises.
    every : int or "auto", default="auto"
        Measure on every ``every``-th training batch, from the first. One
        measurement costs about as much as ``n_tasks`` training steps (a
        backward pass to the shared parameters and a forward pass per task),
        so ``"auto"`` takes ``max(6, n_tasks)``, which keeps the whole run
        within about twice the time of one fit (see the Notes).
    learning_rate : float, default=None
        Step size of the lookahead; None takes the estimator's
        ``learning_rate_init``.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        With the keys:

        affinity : ndarray of shape (n_tasks, n_tasks)
            ``affinity[i, j]``: mean relative decrease of task ``j``'s
            loss after a step on task ``i``'s loss. Rows: the task stepped
            on; columns: the task whose loss is read. NaN where tasks ``i``
            and ``j`` never had labelled entries in the same measured batch.
        task_names : list of str
            The tasks, those of ``y`` then those of ``aux_targets``: a
            DataFrame's column names (a named Series' name for a 1-D
            ``y``), else ``"y[0]"``, ``"y[1]"``, ... (``"y"`` for a 1-D
            ``y``) and ``"aux_targets[0]"``, ...
        n_steps : int
            Training batches measured.
        n_measurements : ndarray of shape (n_tasks, n_tasks)
            Batches averaged into each entry of ``affinity``.
        estimator : estimator
            The fitted clone (the same model as ``clone(estimator).fit``).

    Raises
    ------
    ValueError
        With fewer than two tasks, an estimator without a shared trunk
        (``hidden_layer_sizes=()``), or when ``every`` is not a positive
        integer or ``"auto"``.

    See Also
    --------
    suggest_task_groups : Groups of tasks with the highest affinity.
    sklearn_mtl.TaskAffinityDisplay : Heatmap of the affinities.

    Notes
    -----
    Choices where the paper leaves room:

    - The lookahead moves only the shared parameters,
      ``net_.module_.shared_parameters()`` (the trunk, or the experts of
      ``architecture="mmoe"``), as in the paper; heads and, for MMoE, the
      gates (one per task) stay as they are.
    - It is a plain SGD step of size ``learning_rate`` whatever the
      estimator's ``solver``, as in the paper (which measured under Adam
      too). With Adam's default rate of 1e-3 the affinities are small
      numbers; only their signs and order matter.
    - The loss of a step is each task's own loss, before ``task_weights``
      or a balancing method weigh it (the ratio does not depend on the
      weight of ``L_j``, and ``L_i``'s weight would only rescale the step).
    - The lookahead passes run in the mode of the training step (dropout
      on, batch norm on the batch's statistics), with the very dropout
      masks the step is about to draw, so ``L_j(before)`` is the loss the
      step minimises; the batch-norm statistics they update are put back.
    - A task with no labelled entry in a batch contributes nothing to that
      batch: neither its row nor its column is counted, and each entry is
      the mean over the batches that counted it (``n_measurements``). A
      task whose loss is exactly zero on a batch is skipped the same way.

    A measurement costs one forward and one backward pass to the shared
    parameters per task, plus one forward pass per task: about ``n_tasks``
    training steps. With ``every="auto"`` (every ``max(6, n_tasks)``-th
    batch) measuring adds less than one fit's time; in
    ``benchmarks/bench_affinity.py`` the measured run took 1.2-1.7 times an
    unmeasured fit (medians for 16 synthetic tasks, Yeast's 14 and 4 census
    tasks; at most 1.9). Its affinities correlated at 0.96-0.999 with those
    measured on every batch where tasks affect each other (synthetic, Yeast),
    but at 0.23 on census, whose cross-task affinities are near zero: there,
    ``every=1`` (about 4 fits) gives groups that do not change with the seed
    as much.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtl import MultiTaskNetRegressor
    >>> from sklearn_mtl.inspection import task_affinity
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 6))
    >>> Y = np.column_stack([X[:, 0], X[:, 0] + 0.1 * X[:, 1], X[:, 5]])
    >>> result = task_affinity(
    ...     MultiTaskNetRegressor(max_iter=5, random_state=0), X, Y, every=1
    ... )
    >>> result.affinity.shape
    (3, 3)
    >>> result.task_names
    ['y[0]', 'y[1]', 'y[2]']
    """
    final, prefix = _final_estimator(estimator)
    if not isinstance(final, ESTIMATORS):
        raise TypeError(
            f"task_affinity measures a MultiTaskNetClassifier, MultiTaskNetRegressor "
            f"or MultiTaskNet (or a Pipeline ending in one); got "
            f"{type(final).__name__}."
        )
    if y is None:
        raise ValueError("task_affinity needs the targets y; got y=None.")
    names = _column_names(y, "y")
    if aux_targets is not None:
        names += _column_names(aux_targets, "aux_targets")
    n_tasks = len(names)
    if n_tasks < 2:
        raise ValueError(
            f"task_affinity compares tasks with each other and needs at least two: "
            f"got {n_tasks} task (a 1-D y and no aux_targets). Give a 2-D y or "
            f"aux_targets."
        )
    sizes = getattr(final, "hidden_layer_sizes", None)
    if sizes is not None and np.size(sizes) == 0:
        raise ValueError(
            "task_affinity measures how the tasks move each other through the shared "
            "trunk, but hidden_layer_sizes=() gives the estimator no trunk (every "
            "task has its own parameters only). Give hidden_layer_sizes at least one "
            "layer."
        )
    if isinstance(every, str) and every == "auto":
        every = max(6, n_tasks)
    elif (
        not isinstance(every, numbers.Integral) or isinstance(every, bool) or every < 1
    ):
        raise ValueError(
            f"every must be a positive integer (measure on every every-th training "
            f"batch) or 'auto'; got {every!r}."
        )
    if learning_rate is not None and not (
        isinstance(learning_rate, numbers.Real) and learning_rate > 0
    ):
        raise ValueError(
            f"learning_rate must be a positive number or None; got {learning_rate!r}."
        )

    model = clone(estimator)
    final = model[-1] if isinstance(model, Pipeline) else model
    callbacks = final.callbacks
    final.set_params(
        callbacks=[
            *(callbacks or []),
            ("task_affinity", TaskAffinity(every=int(every), learning_rate=learning_rate)),
        ]
    )
    fit_params = {}
    if aux_targets is not None:
        fit_params[prefix + "aux_targets"] = aux_targets
    if sample_weight is not None:
        fit_params[prefix + "sample_weight"] = sample_weight
    try:
        model.fit(X, y, **fit_params)
    finally:
        # The fitted clone keeps the parameters it was given: refitting it
        # does not measure again.
        final.set_params(callbacks=callbacks)
    meter = dict(final.net_.callbacks_)["task_affinity"]
    if len(final.tasks_) != n_tasks:  # e.g. a 2-D y the estimator reads otherwise
        names = [f"task {t}" for t in range(len(final.tasks_))]
    if meter.sums_ is None:
        n = len(final.tasks_)
        affinity = np.full((n, n), np.nan)
        counts = np.zeros((n, n), dtype=int)
    else:
        affinity, counts = meter.affinity_, meter.n_measurements_
    return Bunch(
        affinity=affinity,
        task_names=names,
        n_steps=meter.n_steps_,
        n_measurements=counts,
        estimator=model,
    )
