"""Adam's step from kept lists: the same update as ``Adam.step``, or none."""

import copy

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from sklearn_mtl import MultiTaskNetClassifier
from sklearn_mtl._adam import AdamLists


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _grads(model, seed):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def _pair(optimizer=torch.optim.Adam, **kwargs):
    a, b = _model(), _model()
    return a, b, optimizer(a.parameters(), **kwargs), optimizer(b.parameters(), **kwargs)


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW])
@pytest.mark.parametrize("kwargs", [dict(fused=True), dict(foreach=True), dict(weight_decay=0.1)])
def test_the_same_update_as_adam_step(kwargs, optimizer):
    ref, lean, opt_ref, opt_lean = _pair(optimizer, lr=0.01, **kwargs)
    lists = AdamLists()
    for step in range(8):
        _grads(ref, step), _grads(lean, step)
        opt_ref.step()
        took = lists.step(opt_lean)
        assert took == (step > 0)  # the first step creates Adam's state
        if not took:
            opt_lean.step()
        if step == 3:  # a schedule changes the rate: the next step follows it
            for opt in (opt_ref, opt_lean):
                opt.param_groups[0]["lr"] = 0.1
        for p, q in zip(ref.parameters(), lean.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    for p, q in zip(opt_ref.state.values(), opt_lean.state.values()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(p[key], q[key], rtol=0, atol=0)


def test_a_loaded_state_or_new_group_is_followed():
    ref, lean, opt_ref, opt_lean = _pair(lr=0.01)
    lists = AdamLists()
    for step in range(3):
        _grads(ref, step), _grads(lean, step)
        opt_ref.step()
        lists.step(opt_lean) or opt_lean.step()
    # A state loaded from elsewhere replaces the tensors the lists held.
    saved = opt_ref.state_dict()
    for opt in (opt_ref, opt_lean):  # a copy each: loading keeps the tensors
        opt.load_state_dict(copy.deepcopy(saved))
    assert not lists._current(opt_lean)
    extra_ref, extra_lean = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt_ref.add_param_group({"params": [extra_ref], "lr": 0.5})
    opt_lean.add_param_group({"params": [extra_lean], "lr": 0.5})
    for step in range(3, 6):
        _grads(ref, step), _grads(lean, step)
        extra_ref.grad = extra_lean.grad = torch.full((3,), float(step))
        opt_ref.step()
        lists.step(opt_lean) or opt_lean.step()
        for p, q in zip([*ref.parameters(), extra_ref], [*lean.parameters(), extra_lean]):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_it_declines_what_adam_step_would_do_differently():
    model = _model()
    lists = AdamLists()

    def stepped(opt):
        _grads(model, 0)
        opt.step()  # the state exists
        _grads(model, 1)
        return lists.step(opt)

    assert stepped(torch.optim.Adam(model.parameters()))
    assert not stepped(torch.optim.Adam(model.parameters(), amsgrad=True))
    assert stepped(torch.optim.AdamW(model.parameters()))
    assert not stepped(type("MyAdam", (torch.optim.Adam,), {})(model.parameters()))
    assert not stepped(torch.optim.SGD(model.parameters(), lr=0.1))
    hooked = torch.optim.Adam(model.parameters())
    handle = hooked.register_step_post_hook(lambda *args: None)
    assert not stepped(hooked)
    handle.remove()
    handle = register_optimizer_step_pre_hook(lambda *args: None)
    try:
        assert not stepped(torch.optim.Adam(model.parameters()))
    finally:
        handle.remove()
    # A step replaced on the instance (a scheduler or a user counting the
    # calls, as torch's schedulers do) is called, not bypassed.
    counted, calls = torch.optim.Adam(model.parameters()), []
    plain_step = counted.step
    counted.step = lambda *args, **kwargs: calls.append(1) or plain_step(*args, **kwargs)
    assert not stepped(counted) and calls == [1]
    # A parameter without a gradient is skipped by Adam.step: left to it.
    opt = torch.optim.Adam(model.parameters())
    _grads(model, 0)
    opt.step()
    model[0].bias.grad = None
    assert not lists.step(opt)


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_a_fit_is_the_same_with_and_without_it(monkeypatch, solver):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(int)

    def fit(**params):
        return MultiTaskNetClassifier(
            (8,), solver=solver, max_iter=5, early_stopping=False, random_state=0,
            **params,
        ).fit(X, Y)

    calls = []
    step = AdamLists.step
    monkeypatch.setattr(AdamLists, "step", lambda self, opt: calls.append(1) and step(self, opt))
    lean = fit()
    assert len(calls) == 5 * 2  # every step of the fit went through it
    monkeypatch.setattr(AdamLists, "step", lambda self, opt: False)
    plain = fit()
    for p, q in zip(lean.net_.module_.parameters(), plain.net_.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert lean.net_.adam_lists_ is None  # nothing kept after the fit


def test_a_fused_group_of_one_device_calls_the_kernel_directly(monkeypatch):
    # The package's optimizer (fused, on the CPU) skips torch's functional
    # wrapper, with the same figures (test_the_same_update_as_adam_step);
    # a group with its tensors on several dtypes goes through the wrapper.
    import sklearn_mtl._adam as lean_adam

    wrapped = []
    adam = lean_adam.adam
    monkeypatch.setattr(lean_adam, "adam", lambda *a, **k: wrapped.append(1) or adam(*a, **k))
    _, lean, _, opt = _pair(lr=0.01, fused=True)
    lists = AdamLists()
    for step in range(3):
        _grads(lean, step)
        lists.step(opt) or opt.step()
    assert wrapped == []
    mixed = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3, dtype=torch.float64))]
    opt = torch.optim.Adam(mixed, fused=True)
    for step in range(3):
        for p in mixed:
            p.grad = torch.full_like(p, float(step + 1))
        lists.step(opt) or opt.step()
    assert wrapped == [1, 1]  # the steps after the first, which creates the state
