"""The docstrings of the estimators, which share most of their parameters.

Each estimator's docstring is :data:`TEMPLATE` filled with what is its own
(summary, the texts of ``mc_samples`` and ``early_stopping``, its extra
parameters and attributes, notes and example); everything else is written
once here.
"""

TEMPLATE = """{summary}

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Widths of the shared trunk's layers. ``()`` gives a linear model.
    head_layer_sizes : array-like of int, default=()
        Widths of the hidden layers of each task's head (same blocks as the
        trunk, with the dropout rate of the last trunk layer).
    architecture : {{"shared", "mmoe"}}, default="shared"
        How the tasks share the network. ``"shared"``: one trunk feeds every
        head (hard parameter sharing). ``"mmoe"``: a multi-gate mixture of
        experts [8]_, ``n_experts`` trunks (experts) of ``hidden_layer_sizes``
        each and, per task, a softmax gate on the input that weighs the
        experts; each task's head reads its gated sum of the experts' outputs,
        so unrelated tasks can use different experts. ``activation``,
        ``batch_norm`` and ``dropout`` apply to every expert as to the shared
        trunk (one rate per layer, the same in every expert). The gates'
        weights count in the ``alpha`` penalty and in the group-lasso groups
        and ``feature_importances_`` (a removed feature is read by neither
        experts nor gates). Needs at least one hidden layer.
    n_experts : int, default=4
        Number of experts with ``architecture="mmoe"``; ignored with
        ``"shared"``.
    activation : {{"relu", "tanh", "logistic", "identity", "gelu"}}, default="relu"
        Activation of every hidden layer.
    dropout : float, array-like of float or "concrete", default=0.0
        Probability of zeroing each unit of the shared trunk during training.
        An array-like gives one rate per trunk layer. ``"concrete"`` learns
        one rate per trunk layer during ``fit`` (concrete dropout [2]_; head
        layers then have no dropout); the rates are in ``dropout_``.
        Prediction scales by the expected mask (no sampling) unless
        ``mc_samples > 0``.
    batch_norm : bool, default=False
        Whether each hidden layer has a ``BatchNorm1d`` after its ``Linear``.
    mc_samples : int, default=0
        Monte-Carlo dropout [1]_: with a positive value, {mc_samples} The
        passes are batched: the trunk before the first dropout layer runs
        once per batch, the rest on the batch repeated ``mc_samples`` times.
        The masks are drawn from ``random_state`` (an int gives the same
        masks at every call; torch's global generator is left untouched). 0
        predicts with the deterministic network.
    group_lasso : float, default=0.0
        Strength of a group-lasso penalty on the first layer with one group
        per input feature (the weights leaving it) [3]_. It is applied by a
        proximal step after each optimiser step, so features the model does
        not need get exactly zero weight: ``feature_importances_`` is then
        zero for them and :class:`~sklearn.feature_selection.SelectFromModel`
        drops them. 0 disables it.
    adversarial_epsilon : float, default=0.0
        Adversarial training with the fast gradient sign method [9]_: each
        training batch ``X`` (as the network sees it, after any preprocessing
        of a pipeline) is also trained on ``X + adversarial_epsilon *
        sign(grad_X L(X))``, and the batch's loss is ``0.5 * (L(X) +
        L(X_adv))`` (the paper's weight 0.5), with the ``alpha`` penalty and
        the concrete-dropout regulariser added once. Each training batch then
        costs one more forward pass and two more backward passes (about
        twice the fit time). ``adversarial_epsilon`` is
        on the scale of the inputs: standardise them first so that one value
        means the same for every feature. 0 disables it.
    alpha : float, default=1e-4
        Strength of the penalty ``alpha * (l1_ratio * |W|_1 + 0.5 * (1 -
        l1_ratio) * |W|_2^2)`` on the ``Linear`` weight matrices (not biases nor
        batch-norm parameters), added to each batch's mean loss as in
        :class:`~sklearn.linear_model.ElasticNet`.
    l1_ratio : float, default=0.0
        Mix of the penalty: 0 is pure L2 (as in ``{mlp}``), 1 pure L1.
    task_weights : array-like of shape (n_tasks,), default=None
        Weight of each task's loss, for the tasks of ``y`` then those of
        ``aux_targets``; ``None`` weighs all tasks 1. They multiply the
        weights of every ``task_balancing`` method (``"gradnorm"`` then
        learns to even out the weighted gradients, so it largely undoes
        them).
    task_balancing : {{"fixed", "uncertainty", "dwa", "gradnorm", "pcgrad"}}, \
default="fixed"
        How the tasks' losses are combined. ``"fixed"``: the sum weighted by
        ``task_weights``. ``"uncertainty"``: each task's weight is learned
        with its homoscedastic uncertainty [4]_ (tends to 1 / the task's
        loss, so noisy tasks weigh less). ``"dwa"``: dynamic weight average
        [5]_, each epoch's weights from how fast each task's loss fell over
        the last two epochs (slow tasks weigh more). ``"gradnorm"``: weights
        learned so that the tasks' gradient norms on the last trunk layer are
        balanced, larger for tasks that train slowly [6]_. ``"pcgrad"``:
        gradient surgery [7]_, on the trunk each task's gradient loses its
        component along any other task's gradient it conflicts with
        (negative dot product). ``"gradnorm"`` and ``"pcgrad"`` need a trunk
        and take one extra backward pass per task and batch; with ``"mmoe"``
        their shared part is the experts. The final
        weights are ``task_weights_``; with ``verbose`` or in ``net_.history``
        each epoch's are ``task_weight{{t}}``.
    aux_task_types : list or dict, default=None
        Kind of each auxiliary task (column of ``aux_targets`` in ``fit``),
        ``"classification"`` or ``"regression"``: a list with one entry per
        column, or a dict from column names (or positions) to kinds. Columns
        left out (or given ``None``) are typed by their dtype and labelled
        values: pandas ``category`` columns, strings and booleans are
        classification; numbers with a fractional part are regression;
        integral numbers are classification when they take at most 10
        distinct values, else regression.
    pretrained : estimator, default=None
        A fitted ``MultiTaskNetClassifier``, ``MultiTaskNetRegressor`` or
        ``MultiTaskNet`` (or a :class:`~sklearn.frozen.FrozenEstimator` of
        one) whose trunk initialises this model's: its weights and
        batch-norm statistics, for ``"mmoe"`` its experts (the gates, one
        per task, are new, as are the heads, for this model's own tasks).
        The trunk's shape is the pretrained model's: its
        ``hidden_layer_sizes``, ``architecture``, ``n_experts``,
        ``activation`` and ``batch_norm`` replace this estimator's (which
        are then ignored; heads use that activation and batch norm too),
        while ``dropout`` (one rate per pretrained trunk layer, or one for
        all), ``head_layer_sizes`` and everything else are this
        estimator's. ``X`` must have the pretrained model's features. The
        pretrained model is never modified, and :func:`~sklearn.base.clone`
        keeps it (shared, not copied), so searches and cross-validation
        start every fit from it. Only a fit that builds a new network reads
        it (not ``warm_start`` or ``partial_fit`` continuing one); ``save``
        stores ``None`` here, the trunk being in the saved weights.
    trunk_learning_rate : float, default=None
        Learning rate of the trunk's parameters (the experts' for
        ``"mmoe"``); ``None`` is ``learning_rate_init``. ``0.0`` freezes the
        trunk: its weights do not move (whatever ``alpha``; ``"adamw"``'s
        decoupled decay scales by the learning rate too) and its batch-norm
        statistics stay those it starts with, so ``transform`` is the
        pretrained model's. A frozen trunk cannot take ``group_lasso > 0``
        (a ``ValueError``). No effect without a trunk.
    solver : {{"adam", "adamw", "sgd", "rmsprop", "adagrad"}}, default="adam"
        The torch optimizer. ``"sgd"`` uses Nesterov momentum 0.9, as
        ``{mlp}`` does.
    learning_rate_init : float, default=1e-3
        Learning rate of the optimizer.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Whether to shuffle the rows every epoch.
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the rows{stratified}, stop when
        the validation {score} has not beaten its best by ``tol`` for
        ``n_iter_no_change + 1`` epochs in a row (``MLPClassifier``'s rule),
        and restore the best epoch's weights. Without it, training stops
        when the training loss has not beaten its best by ``tol`` for as
        many epochs. ``"auto"`` (as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`) turns it
        on in ``fit`` on at least 200 rows and off in ``partial_fit`` and on
        fewer rows; ``early_stopping_`` says which. Under ``"auto"`` a split
        that cannot be stratified is drawn unstratified instead of raising.
        ``MLPClassifier``'s default is ``early_stopping=False``.
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping.
    n_iter_no_change : int, default=20
        Epochs without an improvement by ``tol`` on the best so far that
        training goes on for: it stops at the next (``MLPClassifier``'s
        default is 10; see README "Decisions" for 20).
    tol : float, default=1e-4
        Least improvement that counts.
{extra_parameters}    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split; an int makes ``fit`` exactly reproducible on the same device.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``.
    device : {{"cpu", "cuda", "auto"}}, default="cpu"
        Where to train and predict; ``"auto"`` picks CUDA when available.
    verbose : int, default=0
        Print skorch's per-epoch table when positive: the training loss and
        each task's training loss (``train_loss_task{{t}}``, on its labelled
        entries, without the penalty), and with early stopping the
        validation loss and score of each task as well. The same figures are
        in ``net_.history``.
    progress_bar : bool, default=False
        Show a progress bar over each epoch's batches (skorch's
        ``ProgressBar``, through ``tqdm``), for long fits.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, copied into ``net_`` at each fit.

    Attributes
    ----------
{extra_attributes}    n_outputs_ : int
        Number of tasks of ``y`` (the predicted tasks).
    n_aux_tasks_ : int
        Number of auxiliary tasks (columns of ``aux_targets``).
    tasks_ : list of TaskSpec
        Kind and label set or target standardisation of each task: the tasks
        of ``y``, then the auxiliary tasks.
    net_ : skorch.NeuralNet
        The fitted network; ``net_.history`` holds the per-epoch records.
    dropout_ : tuple of float
        Dropout rate of each trunk layer: the learned rates with
        ``dropout="concrete"``, else the fixed rates used.
    task_weights_ : ndarray of shape (n_tasks,)
        Weight of each task's loss (tasks of ``y``, then auxiliary tasks) at
        the end of training: ``task_weights`` times what ``task_balancing``
        learned or set (``exp(-s_t)`` for the log-variances ``s_t`` of
        ``"uncertainty"``). With early stopping, those of the last epoch
        trained (the network's weights are restored from the best epoch,
        the learned task weights are not).
    feature_importances_ : ndarray of shape (n_features,)
        Euclidean norm of each input feature's weights in the first layer
        (the group-lasso groups); exactly zero for features removed by
        ``group_lasso``.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Training loss (penalty included; regression targets standardised)
        of each epoch.
    best_loss_ : float or None
        Lowest training loss; ``None`` with early stopping.
    early_stopping_ : bool
        Whether the last call of ``fit`` or ``partial_fit`` stopped on a
        held-out validation set (``early_stopping`` resolved).
    validation_scores_ : list of float or None
        Validation {score} of each epoch with early stopping, else ``None``.
    best_validation_score_ : float or None
        Best validation {score} of the latest ``fit``'s epochs with early
        stopping (the score of the weights it restored, which the model
        has), else ``None``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
{see_also}

    Notes
    -----
{notes}
    Auxiliary tasks (``aux_targets`` in :meth:`fit`) are trained through heads
    of their own on the shared trunk but never predicted. They keep the net
    multi-task inside scikit-learn's ensembles, which pass a 1-D ``y``: with
    metadata routing enabled and ``set_fit_request(aux_targets=True)``,
    bagging, stacking, voting, calibration and the searches slice them with
    the rows of ``X``.

    Concrete dropout relaxes each mask to a concrete distribution of
    temperature 0.1 and adds to the training loss, per layer, ``l**2 / N *
    |W|^2 / (1 - p) + 2 / N * K * (p log p + (1 - p) log(1 - p))``, with ``N``
    the training rows, ``K`` the layer's width, ``W`` the weights that read
    the layer and a prior length scale ``l = 1e-4`` (the paper's values): the
    fewer the rows, the stronger the pull towards ``p = 1/2``. The rates start
    at 0.1 and learn with 10 times ``learning_rate_init``.

    The group-lasso step shrinks the column ``W[:, j]`` of the first layer by
    ``max(0, 1 - lr * group_lasso / |W[:, j]|)``. With an adaptive solver
    (Adam, AdamW, RMSprop, Adagrad) ``lr`` is divided by the root mean square
    the solver divides that column's gradient by, so that ``group_lasso``
    weighs against the loss's gradient as it would under SGD: a feature keeps
    weight only while its gradient norm exceeds about ``group_lasso``.

    Task balancing: ``"uncertainty"`` minimises ``sum_t w_t (exp(-s_t) L_t +
    s_t)`` over the network and the log-variances ``s_t``; ``"dwa"`` weighs
    the first two epochs 1, then uses ``n_tasks * softmax(r / 2)`` with ``r_t``
    the ratio of task ``t``'s last two epoch losses; ``"gradnorm"`` uses the
    paper's asymmetry 1.5 and keeps the learned weights positive and summing
    to ``n_tasks``. The learned log-variances and GradNorm weights learn with
    10 times ``learning_rate_init``. ``"pcgrad"`` visits the other tasks in a
    random order drawn from ``random_state``.

    Adversarial training: the perturbation follows the sign of the gradient
    of the batch's training loss (the tasks' losses combined by
    ``task_balancing``, with their sample, class and missing-label weights)
    with respect to the inputs; it is held fixed (no gradient flows through
    it). The balancing method sees one loss per task, the mean ``0.5 *
    (L_t(X) + L_t(X_adv))`` of its clean and adversarial losses: that is what
    ``task_balancing`` combines, what ``"gradnorm"`` and ``"pcgrad"`` take
    their per-task gradients of, and what ``train_loss_task{{t}}``,
    ``loss_curve_`` and the stopping rule read (the validation score of
    early stopping stays on clean rows). Dropout draws new masks for the
    adversarial pass and batch-norm statistics are updated by both passes.
    Sparse input is perturbed as the dense batch it becomes (every entry can
    move), so each batch costs as much as its dense copy.

    References
    ----------
    .. [1] Y. Gal and Z. Ghahramani, "Dropout as a Bayesian Approximation:
       Representing Model Uncertainty in Deep Learning", ICML 2016.
    .. [2] Y. Gal, J. Hron and A. Kendall, "Concrete Dropout",
       NeurIPS 2017.
    .. [3] M. Yuan and Y. Lin, "Model selection and estimation in regression
       with grouped variables", JRSS B 68(1), 2006.
    .. [4] A. Kendall, Y. Gal and R. Cipolla, "Multi-Task Learning Using
       Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR
       2018.
    .. [5] S. Liu, E. Johns and A. J. Davison, "End-to-End Multi-Task Learning
       with Attention", CVPR 2019.
    .. [6] Z. Chen, V. Badrinarayanan, C.-Y. Lee and A. Rabinovich, "GradNorm:
       Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
       Networks", ICML 2018.
    .. [7] T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman and C. Finn,
       "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.
    .. [8] J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong and E. H. Chi, "Modeling
       Task Relationships in Multi-task Learning with Multi-gate
       Mixture-of-Experts", KDD 2018.
    .. [9] I. J. Goodfellow, J. Shlens and C. Szegedy, "Explaining and
       Harnessing Adversarial Examples", ICLR 2015.

    Examples
    --------
{examples}
    """
