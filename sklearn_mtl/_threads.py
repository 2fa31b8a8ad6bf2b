"""How many torch threads a fit uses.

torch's CPU operators split their work over OpenMP threads that wait for
each other at the end of every operator. When another process keeps a core
busy, the thread that lands on that core is descheduled for a time slice and
every operator waits for it: fits with two threads on a two-core machine were
measured 4-60x slower with one core busy, against 1.0-1.5x with one thread.
And a small training step (a table of a few thousand rows, a narrow trunk)
gains nothing from a second thread: its operators are too short to split.

So a fit picks its thread count, within torch's current one (which follows
``torch.set_num_threads``, threadpoolctl's ``threadpool_limits`` and the
limits joblib sets in its workers; a fit never uses more):

* one thread when a training step is small (fewer than ``SMALL_STEP``
  multiply-adds);
* otherwise the cores that other processes leave idle: measured over a short
  window before a large fit, then over every epoch (the busy time of the CPUs
  this process may run on, less this process's own, from ``psutil``), and at
  least one.

The count in force before the fit is restored after it, even when it fails.
"""

import os
import threading
import time
from contextlib import contextmanager

import psutil
import torch

# Multiply-adds of one training step (batch rows x weights) below which a
# fit runs on one thread: about 4 million is a 200-row batch through a
# 100-feature, (100,)-trunk network 20 times over.
SMALL_STEP = 4_000_000
# Multiply-adds of an epoch above which the idle cores are measured before
# the first epoch (the window costs PROBE_SECONDS): an epoch of about 0.1 s
# or more on a laptop core.
LARGE_EPOCH = 1_000_000_000
PROBE_SECONDS = 0.05

_lock = threading.Lock()
_active = 0
_saved = None


def _cpus():
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def _cores():
    return len(_cpus())


def _busy_seconds(cpu):
    """A CPU's time spent busy (guest time is already in user time)."""
    idle = cpu.idle + getattr(cpu, "iowait", 0.0)
    guest = getattr(cpu, "guest", 0.0) + getattr(cpu, "guest_nice", 0.0)
    return sum(cpu) - idle - guest


class CoreMonitor:
    """The cores other processes kept busy since the last reading, on the
    CPUs this process may use (a container pinned to 4 CPUs of a busy
    64-CPU host counts its 4)."""

    def __init__(self):
        self.process = psutil.Process()
        self.cpus = _cpus()
        self._mark()

    def _mark(self):
        per_cpu = psutil.cpu_times(percpu=True)
        self.time = time.monotonic()
        self.busy = sum(
            _busy_seconds(per_cpu[i]) for i in self.cpus if i < len(per_cpu)
        )
        own = self.process.cpu_times()
        self.own = own.user + own.system

    def others(self):
        """Cores (a float) busy with other processes since the last call."""
        start, busy, own = self.time, self.busy, self.own
        self._mark()
        elapsed = self.time - start
        if elapsed <= 0:
            return 0.0
        return max(0.0, ((self.busy - busy) - (self.own - own)) / elapsed)


def idle_threads(limit, others):
    """Threads for a large step: the idle cores, between 1 and ``limit``."""
    return max(1, min(limit, round(_cores() - others)))


class ThreadPlan:
    """The thread count of one fit; :meth:`epoch` updates it as the machine's
    load changes.

    Parameters
    ----------
    step : int
        Multiply-adds of one training step.
    epoch : int
        Multiply-adds of one epoch.
    limit : int
        The most threads to use (torch's count when the fit starts).
    """

    def __init__(self, step, epoch, limit):
        self.limit = limit
        self.small = step < SMALL_STEP or limit == 1
        self.monitor = None
        self.threads = 1 if self.small else limit
        if not self.small:
            self.monitor = CoreMonitor()
            if epoch >= LARGE_EPOCH:
                time.sleep(PROBE_SECONDS)
                self.threads = idle_threads(limit, self.monitor.others())

    def epoch(self):
        """Re-measure at an epoch's start; returns the count to use."""
        if self.monitor is not None:
            self.threads = idle_threads(self.limit, self.monitor.others())
        return self.threads


def step_work(module, batch_size, n_rows):
    """Multiply-adds of a training step and of an epoch: the weights each row
    goes through, times the rows."""
    per_row = sum(w.numel() for w in module.weight_matrices())
    return per_row * min(batch_size, n_rows), per_row * n_rows


@contextmanager
def fit_threads(plan):
    """Run a fit with ``plan.threads`` torch threads, restoring the count in
    force before it afterwards. Fits running at once in several Python
    threads share the smallest count, and the last to finish restores it."""
    global _active, _saved
    if plan is None:  # not on the CPU
        yield plan
        return
    with _lock:
        if _active == 0:
            _saved = torch.get_num_threads()
        _active += 1
        if plan.threads < torch.get_num_threads():
            torch.set_num_threads(plan.threads)
    try:
        yield plan
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_saved)


def set_epoch_threads(plan):
    """At an epoch's start: the plan's count for this epoch (never above the
    count of another fit running at the same time)."""
    threads = plan.epoch()
    with _lock:
        if _active <= 1 and threads != torch.get_num_threads():
            torch.set_num_threads(threads)
