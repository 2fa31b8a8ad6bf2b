"""The private skorch ``NeuralNet`` that trains a :class:`MultiTaskModule`.

The estimators talk to it through a few methods: :meth:`build_net` makes
one from a configuration, :meth:`MultiTaskNeuralNet.train_epochs` trains it,
:meth:`~MultiTaskNeuralNet.retune` carries changed hyperparameters into a
warm start, :meth:`~MultiTaskNeuralNet.task_outputs` predicts (with
optional Monte-Carlo passes, a variant of the evaluation step) and
:meth:`~MultiTaskNeuralNet.trunk_outputs` returns the shared
representation; :meth:`~MultiTaskNeuralNet.trunk_state` and
:meth:`~MultiTaskNeuralNet.load_trunk` carry a trunk from one net to
another.
"""

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring, PrintLog
from skorch.helper import predefined_split
from skorch.utils import TeeGenerator, to_device

from ._adam import AdamLists
from ._adversarial import AdversarialMixin
from ._balancing import BALANCERS
from ._callbacks import EpochLoss, batch_listeners
from ._closed_form import ClosedFormMixin
from ._data import BatchIterator, TensorDataset
from ._loss import MultiTaskLoss
from ._module import MultiTaskModule
from ._penalty import PenaltyMixin
from ._threads import ThreadPlan, fit_threads, set_epoch_threads, step_work


class MultiTaskNeuralNet(AdversarialMixin, ClosedFormMixin, PenaltyMixin, NeuralNet):
    """skorch ``NeuralNet`` with the multi-task loss and an L1/L2 penalty.

    Parameters
    ----------
    layout : OutputLayout
        Where each task's outputs are (the module and the loss read it too).
    alpha : float
        Strength of the penalty on the ``Linear`` weight matrices.
    l1_ratio : float
        Mix of the penalty: ``alpha * (l1_ratio * |W|_1 +
        0.5 * (1 - l1_ratio) * |W|_2^2)``.
    n_train_rows : int or None
        Training rows, which scale the regulariser of concrete dropout layers.
    mc_max_rows : int
        Rows per forward pass of Monte-Carlo prediction (a batch times its
        copies).
    adversarial_epsilon : float
        Size of the fast-gradient-sign perturbation each training batch is
        also trained on (Goodfellow et al., ICLR 2015); 0 trains on the
        clean batches only.
    frozen_trunk : bool
        Keep the trunk's weights and batch-norm statistics fixed (see
        ``MultiTaskModule.freeze_trunk``).
    trunk_gradients : bool
        Whether a frozen trunk's parameters still get gradients (the
        task-balancing methods that read them).
    optimizer_sparse : type or None
        The optimizer of the weights with row-sparse gradients (those of a
        module built for sparse input with a lazy solver), configured by
        ``optimizer_sparse__*`` arguments; skorch registers it as
        ``optimizer_sparse_`` next to ``optimizer_``, and zeroes and steps
        both.
    """

    prefixes_ = [*NeuralNet.prefixes_, "optimizer_sparse"]

    def __init__(
        self, *args, layout=None, alpha=0.0, l1_ratio=0.0, n_train_rows=None,
        mc_max_rows=16384, adversarial_epsilon=0.0, frozen_trunk=False,
        trunk_gradients=False, optimizer_sparse=None, **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.layout = layout
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.n_train_rows = n_train_rows
        self.mc_max_rows = mc_max_rows
        self.adversarial_epsilon = adversarial_epsilon
        self.frozen_trunk = frozen_trunk
        self.trunk_gradients = trunk_gradients
        self.optimizer_sparse = optimizer_sparse

    def initialize_module(self):
        super().initialize_module()
        self.module_.freeze_trunk(self.frozen_trunk, self.trunk_gradients)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        # The weights with row-sparse gradients get an optimizer of their
        # own (a dense step cannot take them); every other parameter, the
        # learned-rate groups included, stays in ``optimizer_``.
        sparse = {id(w) for w in self.module_.sparse_gradient_weights()}
        named = list(self.get_all_learnable_params())
        dense = [(name, p) for name, p in named if id(p) not in sparse]
        args, kwargs = self.get_params_for_optimizer("optimizer", dense)
        self.optimizer_ = self.optimizer(*args, **kwargs)
        if sparse:
            rows = [(name, p) for name, p in named if id(p) in sparse]
            args, kwargs = self.get_params_for_optimizer("optimizer_sparse", rows)
            self.optimizer_sparse_ = self.optimizer_sparse(*args, **kwargs)
            if "optimizer_sparse" not in self._optimizers:
                # A known prefix is not registered by skorch's __setattr__;
                # registered, it is zeroed, stepped and moved with the net.
                self._register_attribute("optimizer_sparse_", None, prefixes=False)
        return self

    def optimizers(self):
        """The registered optimizers: ``optimizer_``, and
        ``optimizer_sparse_`` when the net has row-sparse weights."""
        return [getattr(self, name + "_") for name in self._optimizers]

    def get_iterator(self, dataset, training=False):
        # A net that reads sparse input gets CSR batches (and trains on CSR
        # even when given dense rows, so that its gradient is row-sparse); a
        # dense net gets dense batches of a CSR X, one batch at a time.
        if isinstance(dataset, TensorDataset):
            self._batch_kind(dataset, training)
        return super().get_iterator(dataset, training=training)

    def _batch_kind(self, dataset, training):
        sparse = self.module_.sparse_input
        if sparse and training and torch.is_tensor(dataset.X):
            dataset.X = sp.csr_matrix(dataset.X.cpu().numpy())
        dataset.sparse_batches = sparse

    # -- the estimator's surface ------------------------------------------------

    def train_epochs(self, dataset, valid, epochs, callbacks, verbose=0):
        """Train for at most ``epochs`` epochs on the dataset ``dataset``.

        ``valid`` is the validation dataset or None; ``callbacks`` the named
        callbacks of this call (see ``training_callbacks``). Returns the
        number of epochs run and whether the ``"stopping"`` callback ended
        the training. The module is left in evaluation mode.
        """
        self.verbose = verbose
        self.train_split = None if valid is None else predefined_split(valid)
        self.n_train_rows = len(dataset)
        self.callbacks = callbacks
        self.initialize_callbacks()
        # Counted as they start: a callback may replace the history (skorch's
        # LoadInitState), so its length does not tell what this call trained.
        self.epochs_run_ = 0
        if str(self.device) == "cpu":  # see _threads: the count follows the work
            step, epoch = step_work(self.module_, self.batch_size, len(dataset))
            self.thread_plan_ = ThreadPlan(step, epoch, torch.get_num_threads())
        else:
            self.thread_plan_ = None
        try:
            with fit_threads(self.thread_plan_):
                self.partial_fit(dataset, epochs=epochs)
        finally:  # also when a fit raises (divergence): neither outlives it
            self.valid_outputs_ = self.closed_form_ = self.closed_form_key_ = None
            self.adam_lists_ = None  # references to the optimizers' state
        self._set_training(False)
        stopper = dict(self.callbacks_).get("stopping")
        stopped = stopper is not None and stopper.stopped
        return self.epochs_run_, stopped

    def initialize_callbacks(self):
        super().initialize_callbacks()
        self.batch_listeners_ = batch_listeners(self)
        return self

    def get_default_callbacks(self):
        # PrintLog formats a table every epoch even when it prints nothing;
        # the epoch losses are the means run_single_epoch computes.
        callbacks = []
        for name, cb in super().get_default_callbacks():
            if isinstance(cb, PassthroughScoring):
                cb = EpochLoss(cb.name, cb.lower_is_better, cb.on_train)
            if self.verbose or not isinstance(cb, PrintLog):
                callbacks.append((name, cb))
        return callbacks

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        plan = getattr(self, "thread_plan_", None)
        if plan is not None and self.epochs_run_ > 0:
            set_epoch_threads(plan)
        self.epochs_run_ += 1
        self.lazy_penalty_ = None  # see penalty
        self.epoch_losses_ = {}  # see run_single_epoch

    def retune(self, config, task_weights):
        """Carry the current hyperparameters into a network trained on.

        The penalty, the adversarial perturbation, the learning rate, the
        batch size, the shuffling and the task weights follow the current
        values (as ``MLPClassifier``
        does on a warm start); the balancing method is part of what was
        trained and cannot change.
        """
        trained = self.criterion_.balancing
        if config.balancing != trained:
            raise ValueError(
                f"task_balancing is {config.balancing!r} but the network being "
                f"trained on was fitted with {trained!r}; warm_start and "
                f"partial_fit keep the balancing of the first fit. Set "
                f"warm_start=False (or call fit) to start afresh."
            )
        self.alpha, self.l1_ratio = config.alpha, config.l1_ratio
        self.adversarial_epsilon = config.adversarial_epsilon
        self.batch_size = config.batch_size
        self.iterator_train__shuffle = config.shuffle
        self.criterion_.task_weights.copy_(torch.as_tensor(task_weights))
        ratio = config.learning_rate / self.lr
        for optimizer in self.optimizers():
            for group in optimizer.param_groups:  # learned groups keep their factor
                group["lr"] *= ratio
        for group in self._trunk_groups(config.trunk_learning_rate):
            group["lr"] = config.trunk_learning_rate
        self.lr = config.learning_rate
        self.frozen_trunk = config.frozen_trunk
        self.module_.freeze_trunk(config.frozen_trunk, self.trunk_gradients)

    def _trunk_groups(self, lr):
        """The optimisers' groups of the trunk's weights (one per optimizer
        that holds some; none without a trunk), not the groups of the
        concrete dropout rates. A trunk that shares a group with other
        parameters (its rate was theirs) is split off into a group of its
        own with the same settings where the group's rate is not ``lr``;
        the solver's state is per parameter and stays."""
        weights = {
            id(p) for name, p in self.module_.trunk.named_parameters()
            if not name.endswith("logit")
        }
        groups = []
        for optimizer in self.optimizers():
            for group in list(optimizer.param_groups):
                trunk = [p for p in group["params"] if id(p) in weights]
                if trunk and len(trunk) < len(group["params"]) and group["lr"] != lr:
                    group["params"] = [p for p in group["params"] if id(p) not in weights]
                    optimizer.add_param_group(
                        {**{k: v for k, v in group.items() if k != "params"}, "params": trunk}
                    )
                    group = optimizer.param_groups[-1]
                if trunk:
                    groups.append(group)
        return groups

    def trunk_state(self):
        """A copy of the trunk's weights and batch-norm statistics, keyed by
        block (see ``MultiTaskModule.trunk_state``)."""
        return self.module_.trunk_state()

    def load_trunk(self, state):
        """Initialise the trunk from ``state`` (another net's
        :meth:`trunk_state`), after ``initialize()``.

        The tensors are copied into this net's own parameters and buffers
        (on its device); the optimiser, built on those same tensors, is
        left as it is.
        """
        with torch.no_grad():
            self.module_.load_trunk(state)
        return self

    def trunk_outputs(self, dataset):
        """The trunk's output ``(n, representation width)`` in evaluation
        mode, float64 numpy."""
        parts = list(self.forward_iter(dataset, device=self.device, trunk=True))
        return torch.cat(parts).cpu().numpy().astype(np.float64)

    def task_outputs(self, dataset, mc_samples=0, seed=0, proba=True):
        """The ``(n, n_outputs)`` outputs, class probabilities in place of
        logits (unless ``proba=False``: the logits, enough to pick labels),
        as a numpy array; with ``mc_samples > 0`` the mean and the standard
        deviation of that many stochastic passes (of the probabilities).

        The Monte-Carlo masks come from a generator of this call, seeded with
        ``seed``: concurrent calls do not share a random state.
        """
        if not mc_samples:
            # Two-class tasks: their margin is enough. Building the margin
            # head costs a few operations, more than it saves on a few rows.
            head = None
            if len(dataset) >= MARGIN_HEAD_MIN_ROWS:
                head = self.module_.margin_head(self.layout)
            if head is not None:
                return self._from_margin_head(dataset, head, proba).cpu().numpy()
            outputs = torch.cat(list(self.forward_iter(dataset, device=self.device)))
            return (self.layout.softmax(outputs) if proba else outputs).cpu().numpy()
        generator = torch.Generator(self.device).manual_seed(seed)
        passes = list(
            self.forward_iter(
                dataset, device=self.device, mc_samples=mc_samples, generator=generator
            )
        )
        mean, std = (torch.cat(parts).cpu().numpy() for parts in zip(*passes))
        return mean, std

    def _from_margin_head(self, dataset, head, proba):
        # A large output is written batch by batch into one buffer (the
        # margins never joined); a small one from the joined margins. On the
        # CPU the buffer is a numpy array's memory: numpy asks the kernel for
        # huge pages for a large array, and the first writes into a fresh
        # buffer are page faults (about 10 against 21 ms for 20,000 x 1,024
        # float32 values in torch's 4 KiB pages).
        batches = self.forward_iter(dataset, device=self.device, head=head)
        if len(dataset) * self.layout.n_outputs < FILLED_OUTPUT_MIN_VALUES:
            return self.layout.from_margins(torch.cat(list(batches)), proba)
        out, start = None, 0
        for compact in batches:
            if out is None and compact.device.type == "cpu":
                dtype = torch.empty(0, dtype=compact.dtype).numpy().dtype
                shape = (len(dataset), self.layout.n_outputs)
                out = torch.from_numpy(np.empty(shape, dtype=dtype))
            elif out is None:
                out = compact.new_empty((len(dataset), self.layout.n_outputs))
            stop = start + len(compact)
            self.layout.from_margins(compact, proba, out=out[start:stop])
            start = stop
        return out

    def dropout_rates(self):
        """The rate of each trunk block (learned ones for concrete dropout)."""
        return self.module_.dropout_rates()

    def task_weights(self):
        """Each task's loss weight at the end of training, float64."""
        return self.criterion_.balance().cpu().numpy().astype(np.float64)

    def input_norms(self):
        """Norm of each input feature's weights in the layers reading the input."""
        return self.module_.input_norms().cpu().numpy().astype(np.float64)

    # -- skorch's steps ---------------------------------------------------------

    def get_loss(self, y_pred, y_true, X=None, training=False):
        targets, weights = y_true
        loss = self.criterion_(y_pred, targets, weights)
        return self.regularize(loss) if training else loss

    def regularize(self, loss):
        """The training loss: ``loss`` plus the concrete dropout regulariser,
        which does not depend on the batch. The penalty's value is added
        without a graph (see :meth:`penalty_gradient`)."""
        if self.module_.concrete_layers:
            loss = loss + self.module_.concrete_regularizer(self.n_train_rows)
        return loss + self.penalty()

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's loop, with the module's mode set once per phase rather than
        # per batch, and the batch losses read back in one device sync per
        # phase rather than one ``.item()`` per batch (and, when no callback
        # listens per batch, the batch records written then, and the losses of
        # closed-form steps computed together: see ``DeferredLosses``). Each
        # task's loss over the phase (labelled entries only, no penalty) is
        # recorded as ``{prefix}_loss_task{t}``. The validation outputs are kept
        # as ``valid_outputs_`` (rows in order) for the validation score.
        if iterator is None:
            return
        self._set_training(training)
        listen = self.batch_listeners_
        deferred = None
        if training:  # after every on_epoch_begin: a callback may (un)freeze
            self.closed_form_ = self._closed_form_step()
            deferred = self._defer_losses(fit_params)
        losses, sizes, task_sums, outputs = [], [], [], []
        for batch in iterator:
            if listen:  # skorch's on_batch_begin opens the batch's record
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            if deferred is None:
                losses.append(step["loss"].detach())
                task_sums.append(self.criterion_.last_sums_)
            sizes.append(len(batch[0]))
            if not training:
                outputs.append(step["y_pred"])
            if listen:
                self.notify("on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_batch_count", len(sizes))
        if not sizes:
            return
        if not training:
            self.valid_outputs_ = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        if deferred is not None:
            step_losses, sums = self._deferred_losses(deferred)
        else:
            step_losses, sums = torch.stack(losses), torch.stack(task_sums).sum(dim=0)
        values = torch.cat([step_losses.float(), sums.ravel()]).tolist()
        n, n_tasks = len(sizes), sums.shape[1]
        batch_losses = values[:n]
        weighted, total = values[n : n + n_tasks], values[n + n_tasks :]
        epoch = self.history[-1]  # written directly: one lookup, not one per key
        if not listen:
            epoch["batches"].extend({} for _ in sizes)
        records = epoch["batches"][-n:]
        for record, loss, size in zip(records, batch_losses, sizes):
            record[prefix + "_loss"] = loss
            record[prefix + "_batch_size"] = size
        # Their mean weighted by batch size, skorch's PassthroughScoring's
        # figure (EpochLoss records it).
        self.epoch_losses_[prefix + "_loss"] = sum(
            loss * size for loss, size in zip(batch_losses, sizes)
        ) / sum(sizes)
        for t, (task_loss, task_total) in enumerate(zip(weighted, total)):
            epoch[f"{prefix}_loss_task{t}"] = (
                float(task_loss / task_total) if task_total > 0 else float("nan")
            )

    def _set_training(self, training=True):
        # skorch's sets each mode through nn.Module.train, a recursive walk
        # with a slow attribute write per module, twice an epoch (training,
        # then validation): here the flags are written directly, and the
        # module's rule for a frozen trunk's batch norm applied after.
        for root in (self.module_, self.criterion_):
            for module in root.modules():
                module.__dict__["training"] = training
        self.module_.keep_frozen_statistics()

    def _step_optimizer(self, step_fn):
        # Adam's update without Optimizer.step's per-call bookkeeping, where
        # it is the same update (see _adam); skorch's call otherwise.
        if step_fn is not None:
            return super()._step_optimizer(step_fn)
        if not getattr(self, "adam_lists_", None):
            self.adam_lists_ = {name: AdamLists() for name in self._optimizers}
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            if not self.adam_lists_[name].step(optimizer):
                optimizer.step()

    def train_step(self, batch, **fit_params):
        # One optimizer step without skorch's closure (no solver here needs
        # it), with the balancer's hooks around the backward pass and step.
        # The plain networks of ``ClosedFormStep`` get their gradients
        # without autograd (``closed_form_``, chosen per epoch).
        Xi, yi = batch
        criterion = self.criterion_
        balancer = criterion.balancer
        closed_form = self._closed_form_now(fit_params)
        if closed_form:  # writes every gradient, the penalty's L2 part included
            y_pred, loss = self.closed_form_(Xi, *yi)
        else:
            self._zero_grad_optimizer(set_to_none=True)
            if self.adversarial_epsilon > 0:
                y_pred, loss = self.adversarial_loss(Xi, yi, **fit_params)
            else:
                y_pred = self.infer(Xi, **fit_params)
                loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            state = balancer.before_backward(
                self.module_, criterion.last_losses_, criterion.task_weights,
                criterion.last_sums_[1],
            )
            loss.backward()
            balancer.after_backward(self.module_, state)
        self.penalty_gradient(l2=not closed_form)
        if self.batch_listeners_:
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        self._step_optimizer(None)
        balancer.after_step()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        # A closed-form network is evaluated by its own forward pass too
        # (not when a callback put the module in training mode for it).
        Xi, yi = batch
        with torch.no_grad():
            if self._closed_form_now(fit_params) and not self.module_.training:
                y_pred = self.closed_form_.outputs(Xi)
            else:
                y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(
        self, batch, training=False, mc_samples=0, generator=None, trunk=False,
        head=None,
    ):
        """The outputs of a batch; with ``mc_samples > 0`` the mean and
        standard deviation of that many stochastic passes (probabilities for
        classification tasks); with ``trunk`` the trunk's output; with
        ``head`` (a ``margin_head``) that head on the trunk's output."""
        Xi = batch[0]
        with torch.inference_mode():
            if trunk:
                return self.module_.trunk(Xi)
            if head is not None:
                weight, bias = head
                return torch.addmm(bias, self.module_.trunk(Xi), weight.T)
            if not mc_samples:
                return self.infer(Xi)
            return self.module_.sample(
                Xi, mc_samples, self.layout.softmax, max_rows=self.mc_max_rows,
                generator=generator,
            )

    def forward_iter(
        self, X, training=False, device="cpu", mc_samples=0, generator=None,
        trunk=False, head=None,
    ):
        # One inference loop for plain and Monte-Carlo passes. The mode is
        # switched only when it differs (after training the module is already
        # in evaluation mode), not once per batch as in skorch; a dataset of
        # ours is sliced directly, without skorch's dataset and iterator
        # factories (a per-call cost that a one-row prediction feels).
        self.check_is_fitted()
        if self.module_.training != training:
            self._set_training(training)
        if isinstance(X, TensorDataset):
            self._batch_kind(X, training=False)
            batches = BatchIterator(X, self.iterator_valid__batch_size)
        else:
            batches = self.get_iterator(self.get_dataset(X), training=False)
        for batch in batches:
            yield to_device(
                self.evaluation_step(batch, training, mc_samples, generator, trunk, head),
                device=device,
            )


# Rows from which prediction goes through the margin head (see task_outputs),
# and output values from which its batches are written into one buffer.
MARGIN_HEAD_MIN_ROWS = 512
FILLED_OUTPUT_MIN_VALUES = 1 << 20

def build_net(config, layout, n_features, task_weights):
    """An uninitialised :class:`MultiTaskNeuralNet` for ``config``, the output
    ``layout`` and ``n_features`` inputs."""
    optimizer, optimizer_kwargs = config.optimizer()
    sparse_optimizer, sparse_kwargs = config.sparse_optimizer() or (None, {})
    module = {
        "n_features": n_features,
        "layout": layout,
        "hidden_layer_sizes": config.hidden_layer_sizes,
        "head_layer_sizes": config.head_layer_sizes,
        "architecture": config.architecture,
        "n_experts": config.n_experts,
        "activation": config.activation,
        "dropout": config.dropout,
        "head_dropout": config.head_dropout,
        "batch_norm": config.batch_norm,
        "sparse_input": config.sparse_input,
        "sparse_gradient": config.sparse_gradient,
    }
    criterion = {
        "layout": layout, "task_weights": task_weights, "balancing": config.balancing
    }
    trunk_gradients = BALANCERS[config.balancing].needs_trunk
    return MultiTaskNeuralNet(
        module=MultiTaskModule,
        **{f"module__{k}": v for k, v in module.items()},
        criterion=MultiTaskLoss,
        **{f"criterion__{k}": v for k, v in criterion.items()},
        optimizer=optimizer,
        lr=config.learning_rate,
        **{f"optimizer__{k}": v for k, v in optimizer_kwargs.items()},
        optimizer_sparse=sparse_optimizer,
        **{f"optimizer_sparse__{k}": v for k, v in sparse_kwargs.items()},
        batch_size=config.batch_size,
        iterator_train=BatchIterator,
        iterator_train__shuffle=config.shuffle,
        iterator_valid=BatchIterator,
        iterator_valid__batch_size=config.predict_batch_size,
        dataset=TensorDataset,
        train_split=None,
        device=config.device,
        layout=layout,
        alpha=config.alpha,
        l1_ratio=config.l1_ratio,
        mc_max_rows=config.mc_max_rows,
        adversarial_epsilon=config.adversarial_epsilon,
        frozen_trunk=config.frozen_trunk,
        trunk_gradients=trunk_gradients,
    )
