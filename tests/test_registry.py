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
from fastloss import reference
from fastloss._api import REGISTRY

from cases import CASES, KNOWN_KINDS

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
    assert set(spec.grads) <= set(spec.arrays)


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


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_torch(name):
    torch = pytest.importorskip("torch")
    spec = REGISTRY[name]
    theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
    ours = inspect.signature(spec.forward).parameters
    expected = {n: p.default for n, p in theirs.items() if n not in ("size_average", "reduce")}
    got = {n: p.default for n, p in ours.items()}
    assert list(got) == list(expected)
    for n, default in expected.items():
        if default is not inspect.Parameter.empty:
            assert got[n] == default
    torch_cls = getattr(torch.nn, spec.class_name)
    torch_init = [n for n in inspect.signature(torch_cls.__init__).parameters
                  if n not in ("self", "size_average", "reduce")]
    assert list(spec.class_options) == torch_init


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
