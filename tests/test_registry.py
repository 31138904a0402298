"""The registry (``fastloss._api.REGISTRY``) drives the public surface: every
registered loss has its functions, its ``fastloss.nn`` class, its reference
functions and a row in the test case table."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastloss
import fastloss.functional
import fastloss.nn
from fastloss import _core, reference
from fastloss._api import REGISTRY

from cases import BEYOND_TORCH_OPTIONS, CASES, KNOWN_KINDS

NAMES = sorted(REGISTRY)


def test_registry_is_not_empty():
    assert {"l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"} <= set(REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_exports(name):
    spec = REGISTRY[name]
    assert spec.name == name
    for suffix, registered in (("", spec.forward), ("_backward", spec.backward),
                               ("_value_and_grad", spec.value_and_grad)):
        fn = getattr(fastloss, name + suffix)
        assert fn is registered
        assert fn is getattr(fastloss.functional, name + suffix)
        assert name + suffix in fastloss.__all__
        assert name + suffix in fastloss.functional.__all__
        assert fn.__name__ == name + suffix
        assert fn.__doc__
    cls = getattr(fastloss.nn, spec.class_name)
    assert spec.class_name in fastloss.nn.__all__
    assert cls.__name__ == spec.class_name
    assert callable(getattr(reference, name)) and callable(getattr(reference, name + "_backward"))
    assert spec.reference is getattr(reference, name)
    assert spec.reference_backward is getattr(reference, name + "_backward")
    # (a differentiable keyword array is an option: linear_cross_entropy's linear_bias)
    assert set(spec.grads) <= set(spec.arrays) | set(spec.options)


@pytest.mark.parametrize("name", NAMES)
def test_case_row_exists(name):
    """A new loss needs one row in tests/cases.py (and a kind the suite knows)."""
    assert name in CASES, f"add a row for {name!r} to tests/cases.py"
    assert CASES[name].kind in KNOWN_KINDS
    for options in CASES[name].option_sets:
        assert set(options) <= set(REGISTRY[name].options), options


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_torch_order(name):
    """Arrays first, in order; reduction and options after; backward/fused add
    keyword-only grad_output and out; no size_average/reduce parameters."""
    spec = REGISTRY[name]
    forward = inspect.signature(spec.forward)
    params = [p for p in forward.parameters.values()]
    assert tuple(p.name for p in params[: len(spec.arrays)]) == spec.arrays
    assert {p.name: p.default for p in params[len(spec.arrays):]} == spec.options
    assert "size_average" not in forward.parameters and "reduce" not in forward.parameters
    for fn in (spec.backward, spec.value_and_grad):
        sig = inspect.signature(fn)
        assert list(sig.parameters)[: len(params)] == [p.name for p in params]
        for extra in ("grad_output", "out"):
            assert sig.parameters[extra].kind is inspect.Parameter.KEYWORD_ONLY
            assert sig.parameters[extra].default is None
    ref = inspect.signature(getattr(reference, name))
    assert [p.name for p in ref.parameters.values()] == [p.name for p in params]
    ref_b = inspect.signature(getattr(reference, name + "_backward"))
    assert ref_b.parameters["grad_output"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", [n for n in NAMES if n not in CASES or CASES[n].oracle == "torch"])
def test_signatures_match_torch(name):
    """(The losses torch.nn does not have: test_beyond_torch.py.)"""
    torch = pytest.importorskip("torch")
    spec = REGISTRY[name]
    theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
    beyond = BEYOND_TORCH_OPTIONS.get(name, ())  # after torch's, in this order
    ours = inspect.signature(spec.forward).parameters
    assert list(ours)[len(ours) - len(beyond):] == list(beyond)
    ours = {n: p for n, p in ours.items() if n not in beyond}
    expected = {n: p.default for n, p in theirs.items() if n not in ("size_average", "reduce")}
    if name == "linear_cross_entropy":  # torch's options=LinearCrossEntropyOptions is fastloss's chunk_size
        expected = {("chunk_size" if n == "options" else n): d for n, d in expected.items()}
    got = {n: p.default for n, p in ours.items()}
    assert list(got) == list(expected)
    for n, default in expected.items():
        if default is not inspect.Parameter.empty:
            assert got[n] == default
    if CASES[name].kind == "linear":
        return  # a class holding parameters, not options: tests/test_linear_cross_entropy.py checks it
    torch_cls = getattr(torch.nn, spec.class_name)
    torch_init = [n for n in inspect.signature(torch_cls.__init__).parameters
                  if n not in ("self", "size_average", "reduce")]
    assert [n for n in spec.class_options if n not in beyond] == torch_init


@pytest.mark.parametrize("name", NAMES)
def test_sample_gives_valid_inputs(name):
    """The registry's sample() (used by the CLI's check/bench) makes inputs
    the loss accepts and the reference agrees with."""
    spec = REGISTRY[name]
    rng = np.random.default_rng(0)
    arrays, options = spec.sample(rng, 1000, np.float64)
    value = spec.forward(*arrays, **options)
    expected = spec.reference(*arrays, **options)
    np.testing.assert_allclose(value, expected, rtol=1e-12)


# ------------------------------------------- the C++ table (fastloss/losses.h)

TABLE = {name: (lid, inputs, grads, options) for name, lid, inputs, grads, options in _core.losses()}


class _Sub(np.ndarray):
    """An ndarray subclass: forces a call off the C++ fast path (regression
    losses), onto the general path that calls ``_core.elementwise_call``."""


def test_every_table_row_has_a_registered_loss():
    """The C++ table's rows: ids 0, 1, ... in order, 'sum' (the driver's own
    reduction) and otherwise only losses the Python registry defines."""
    assert [lid for lid, *_ in TABLE.values()] == list(range(len(TABLE)))
    assert "sum" in TABLE
    assert set(TABLE) - {"sum"} <= set(REGISTRY), set(TABLE) - {"sum"} - set(REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_registry_agrees_with_the_table(name, monkeypatch):
    """A registered loss that runs on the element-wise table calls the
    kernel of its own row with as many input operands and gradients as the
    row declares (weight and grad_output are the driver's, not the row's),
    one number per declared option, and one gradient per differentiable
    argument of the registry."""
    spec, case = REGISTRY[name], CASES[name]
    calls = []
    real = _core.elementwise_call

    def spy(loss, want_value, want_grad, scale, inputs, weight, grad_output, loss_out, grads, options):
        calls.append((loss, len(inputs), len(grads), len(options)))
        return real(loss, want_value, want_grad, scale, inputs, weight, grad_output, loss_out, grads, options)

    monkeypatch.setattr(_core, "elementwise_call", spy)
    arrays = case.make(np.random.default_rng(0), (5, 4), np.dtype(np.float64), weighted=True)
    arrays = {k: v.view(_Sub) for k, v in arrays.items()}
    for options in case.option_sets:
        case.call(case.value_and_grad, arrays, reduction="sum", **options)
    if not calls:  # runs elsewhere (the regression losses' Pointwise kernels): a row must still be right
        if name in TABLE:
            _check_row_directly(spec, case)
        return
    assert name in TABLE, f"{name} calls the element-wise table but has no row in fastloss/losses.h"
    lid, inputs, grads, option_names = TABLE[name]
    for loss, n_inputs, n_grads, n_options in calls:
        assert loss == lid, f"{name} ran row {loss}, its row is {lid}"
        assert n_inputs == inputs, f"{name}: {n_inputs} kernel operands, the table says {inputs}"
        assert n_grads == grads == len(spec.grads), f"{name}: {n_grads} gradients, table {grads}, registry {spec.grads}"
        assert n_options == len(option_names), f"{name}: options {option_names}, {n_options} passed"


def _check_row_directly(spec, case):
    """A table row of a loss whose Python side does not call the table yet:
    its kernel, called directly on the registry's required arrays (no
    weight, default options), gives the loss and gradient of the functions."""
    lid, inputs, grads, option_names = TABLE[spec.name]
    required = [n for n in spec.arrays]
    assert inputs == len(required) and grads == len(spec.grads)
    assert set(option_names) <= set(spec.options)
    arrays = case.make(np.random.default_rng(1), (7, 9), np.dtype(np.float64))
    kin = tuple(np.ascontiguousarray(arrays[n]) for n in required)
    bufs = tuple(np.empty((7, 9)) for _ in spec.grads)
    total, _, errors = _core.elementwise_call(lid, True, True, 1.0, kin, None, None, None, bufs,
                                              tuple(float(spec.options[o]) for o in option_names))
    assert errors == 0
    np.testing.assert_allclose(total, case.forward(*kin, reduction="sum"), rtol=1e-13)
    for buf, g in zip(bufs, case.grads(case.backward(*kin, reduction="sum"))):
        np.testing.assert_array_equal(buf, g)


# ------------------------------- the row-wise table (FASTLOSS_ROWWISE_LOSSES)

ROW_TABLE = {name: (lid, inputs, grads, target, options)
             for name, lid, inputs, grads, target, options in _core.rowwise_losses()}


# Rows of public functions that are not losses (no registry entry, no nn class).
ROW_FUNCTIONS = {"pairwise_distance", "cosine_distance"}
# Losses that also run on another loss's row (the pairwise_distance triplet).
ROW_ALSO = {"triplet_margin_with_distance_loss": {"triplet_margin_loss"}}


def test_every_row_table_row_has_a_registered_loss():
    assert [lid for lid, *_ in ROW_TABLE.values()] == list(range(len(ROW_TABLE)))
    assert set(ROW_TABLE) - ROW_FUNCTIONS <= set(REGISTRY), set(ROW_TABLE) - ROW_FUNCTIONS - set(REGISTRY)
    for name in ROW_FUNCTIONS:
        assert callable(getattr(fastloss, name)) and callable(getattr(fastloss, name + "_backward"))
    assert not set(ROW_TABLE) & set(TABLE), "a loss is in both tables"


@pytest.mark.parametrize("name", sorted(set(ROW_TABLE) - ROW_FUNCTIONS))
def test_registry_agrees_with_the_row_table(name, monkeypatch):
    """A row-wise loss calls its own row with as many row operands and
    gradients as the row declares and one number per declared option."""
    spec, case = REGISTRY[name], CASES[name]
    lid, inputs, grads, target, option_names = ROW_TABLE[name]
    assert set(option_names) <= set(spec.options)
    assert grads == len(spec.grads)
    calls = []
    real = _core.rowwise_call

    def spy(loss, want_value, want_grad, reduction, scale, kin, kt, kw, kg, loss_out, kgrads, options):
        calls.append((loss, len(kin), len(kgrads), len(options), None if kt is None else kt.dtype.kind))
        return real(loss, want_value, want_grad, reduction, scale, kin, kt, kw, kg, loss_out, kgrads, options)

    monkeypatch.setattr(_core, "rowwise_call", spy)
    arrays = case.make(np.random.default_rng(0), (5, 4), np.dtype(np.float64), weighted=True)
    for options in case.option_sets:
        case.call(case.value_and_grad, arrays, reduction="sum", **options)
    assert calls
    for loss, n_inputs, n_grads, n_options, kind in calls:
        if loss != lid:  # another loss's row: that row's counts
            others = {ROW_TABLE[o][0]: o for o in ROW_ALSO.get(name, ())}
            assert loss in others, f"{name} ran row {loss}, its row is {lid}"
            _, inputs_o, grads_o, target_o, options_o = ROW_TABLE[others[loss]]
            assert n_inputs == inputs_o and n_grads == grads_o and n_options == len(options_o)
            continue
        assert n_inputs == inputs and n_grads == grads and n_options == len(option_names)
        assert (kind == "f") == (target == "float") or target == "index_or_float"
        assert (kind is None) == (target == "none")


# ----------------------------- the sequence losses (fastloss/losses.h's second list)

SEQUENCE = {name: (lid, inputs, grads, options) for name, lid, inputs, grads, options in _core.sequence_losses()}


def test_sequence_table_agrees_with_the_registry():
    """Each row of FASTLOSS_SEQUENCE_LOSSES is a registered loss of the
    'sequence' family with as many arrays, gradients and (a subset of its)
    options as the row says, and every registered sequence loss has a row."""
    assert [lid for lid, *_ in SEQUENCE.values()] == list(range(len(SEQUENCE)))
    assert set(SEQUENCE) == {n for n, s in REGISTRY.items() if s.family == "sequence"}
    for name, (_, inputs, grads, options) in SEQUENCE.items():
        spec = REGISTRY[name]
        assert inputs == len(spec.arrays) and grads == len(spec.grads)
        assert set(options) <= set(spec.options), (name, options)
        assert name not in TABLE  # not an element-wise row as well
