import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from sklearn_mtl import MultiTaskNetClassifier, _threads
from sklearn_mtl._threads import SMALL_STEP, CoreMonitor, ThreadPlan, idle_threads


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_small_fit_runs_on_one_thread_and_restores_the_count(data, two_threads):
    X, y = data
    seen = []
    est = MultiTaskNetClassifier((8,), max_iter=2, random_state=0)
    est.fit(X, y)
    assert est.net_.thread_plan_.threads == 1 and est.net_.thread_plan_.small
    assert torch.get_num_threads() == 2

    from skorch.callbacks import Callback

    class Record(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(torch.get_num_threads())

    MultiTaskNetClassifier((8,), max_iter=2, random_state=0, callbacks=[Record()]).fit(X, y)
    assert seen == [1, 1] and torch.get_num_threads() == 2


def test_the_count_is_restored_when_a_fit_fails(data, two_threads):
    X, y = data
    from skorch.callbacks import Callback

    class Fail(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        MultiTaskNetClassifier((8,), max_iter=2, callbacks=[Fail()]).fit(X, y)
    assert torch.get_num_threads() == 2


def test_fits_follow_threadpoolctl(data, two_threads):
    X, y = data
    # A large step would use up to torch's count: under threadpool_limits(1)
    # that count is 1, and the fit never goes above it.
    X = np.repeat(X, 8, axis=1)
    with threadpool_limits(1):
        est = MultiTaskNetClassifier((512, 512), max_iter=1, batch_size=64).fit(X, y)
        assert est.net_.thread_plan_.limit == 1
        assert est.net_.thread_plan_.threads == 1
    assert torch.get_num_threads() == 2


def test_a_large_step_uses_the_idle_cores(monkeypatch):
    monkeypatch.setattr(_threads, "_cores", lambda: 4)
    assert idle_threads(4, 0.0) == 4
    assert idle_threads(4, 1.2) == 3
    assert idle_threads(2, 0.3) == 2
    assert idle_threads(4, 7.0) == 1  # at least one
    assert idle_threads(8, 0.0) == 4  # never more than the cores
    plan = ThreadPlan(SMALL_STEP, SMALL_STEP, limit=4)
    assert not plan.small and plan.threads == 4  # no probe for a short epoch
    monkeypatch.setattr(plan.monitor, "others", lambda: 2.0)
    assert plan.epoch() == 2
    assert ThreadPlan(SMALL_STEP - 1, 10**12, limit=4).threads == 1


SPIN = "import time\nend = time.monotonic() + 5\nwhile time.monotonic() < end:\n    pass\n"


def test_core_monitor_sees_another_process_busy():
    # A bare interpreter spinning (it imports nothing, so it spins at once).
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.3)
        monitor = CoreMonitor()
        time.sleep(0.8)
        busy = monitor.others()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy > 0.5


def test_core_monitor_counts_the_cpus_this_process_may_use(monkeypatch):
    from collections import namedtuple

    Times = namedtuple("Times", "user system idle iowait")
    clock = {"t": 0.0}

    def cpu_times(percpu=False):
        # CPU 0 idle; CPU 1 busy the whole time (another process).
        t = clock["t"]
        return [Times(0.0, 0.0, t, 0.0), Times(t, 0.0, 0.0, 0.0)]

    class Process:  # this process uses no CPU here
        def cpu_times(self):
            return Times(0.0, 0.0, 0.0, 0.0)

    monkeypatch.setattr(_threads.psutil, "cpu_times", cpu_times)
    monkeypatch.setattr(_threads.psutil, "Process", Process)
    monkeypatch.setattr(_threads.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(_threads, "_cpus", lambda: [0])  # pinned to CPU 0
    pinned = CoreMonitor()
    monkeypatch.setattr(_threads, "_cpus", lambda: [0, 1])
    both = CoreMonitor()
    clock["t"] = 2.0
    assert pinned.others() == 0.0
    assert both.others() == 1.0
