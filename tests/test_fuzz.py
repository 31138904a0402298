"""Hostile-input fuzzing of every registered loss with the harness of
tests/fuzz_harness.py (so a new loss is covered without touching this file):
its forward, ``_backward`` and ``_value_and_grad`` functions and its
``fastloss.nn`` class (API.md §2, §4, §5).

* ``test_hostile_call`` — anything goes (see fuzz_harness.hostile_calls):
  the call succeeds with the documented result and writes nothing but
  ``out``, or raises ValueError/TypeError/IndexError naming an argument.
* ``test_layout_does_not_change_the_result`` — valid dtypes and shapes in
  hostile layouts and forms (and any thread count / instruction set) give
  bitwise the result of the same call on C-contiguous native copies; a valid
  call is never refused because of how its memory is laid out.
* ``test_known_*`` — minimal reproductions of bugs this fuzzing found.

The default (``ci``) profile keeps this file at a few seconds;
``HYPOTHESIS_PROFILE=fuzz`` (tests/conftest.py) runs many more examples.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, note

import fastloss

from cases import assert_identical
from fuzz_harness import (
    ABSENT,
    ALLOWED,
    ISAS,
    NO_EXPLAIN,
    THREADS,
    ArrayLike,
    DLPackLike,
    Knobs,
    assert_same,
    call_and_check,
    hostile_calls,
    normalized,
    valid_calls,
)


@NO_EXPLAIN
@given(call=hostile_calls(), isa=ISAS, threads=THREADS)
def test_hostile_call(call, isa, threads):
    with Knobs(isa, threads):
        call_and_check(call)




@NO_EXPLAIN
@given(calls=valid_calls(), isa=ISAS, threads=THREADS)
def test_layout_does_not_change_the_result(calls, isa, threads):
    call, plain = calls
    note("plain: " + plain.report())
    with Knobs(isa, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                expected = plain.run()
            except ALLOWED as exc:
                expected = exc
    with Knobs(isa, threads):
        got = call_and_check(call)
    if isinstance(expected, Exception):
        assert isinstance(got, Exception), f"contiguous copies raise {expected!r}; the hostile layout does not"
        return
    assert not isinstance(got, Exception), f"a hostile layout of a valid call raised {got!r}"
    assert_same(normalized(got), normalized(expected))
    if plain.mode == "value_and_grad":  # the fused pass equals the separate ones
        with Knobs(isa, threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            value = dataclasses.replace(plain, mode="forward", grad_output=ABSENT).run()
            grads = dataclasses.replace(plain, mode="backward").run()
        assert_same(normalized((value, grads)), normalized(expected), "value_and_grad vs forward, backward")


# ----------------------------------------------------------------------------
# Minimal reproductions of what the fuzzing above found. Each fails until the
# package is fixed; the property tests find the same cases by themselves.


def _plain(x):
    return np.array(x, order="C", copy=True)


def test_known_size1_dimension_with_any_stride():
    """NumPy calls an array aligned whatever the stride of a size-1
    dimension (it is never stepped over); the C++ layer refuses strides that
    are not a multiple of the item size even there, so a valid call fails
    with 'input: strides are not a multiple of the item size'."""
    x = np.ndarray((1, 3), np.float32, buffer=np.arange(4, dtype=np.float32), strides=(3, 4))
    assert x.flags.aligned
    y = np.zeros((1, 3), np.float32)
    assert_identical(fastloss.mse_loss(x, y), fastloss.mse_loss(_plain(x), y))
    assert_identical(fastloss.mse_loss(x, y, reduction="none"), fastloss.mse_loss(_plain(x), y, reduction="none"))
    assert_identical(fastloss.mse_loss_backward(x, y), fastloss.mse_loss_backward(_plain(x), y))


@pytest.mark.parametrize("shape, offset, strides", [((0,), 1, (4,)), ((0,), 0, (5,)), ((0, 2), 0, (8, 5))],
                         ids=["odd-pointer", "odd-stride", "odd-stride-of-a-size-2-dim"])
def test_known_empty_unaligned_array(shape, offset, strides):
    """NumPy calls every empty array aligned; the C++ layer refuses an empty
    array whose data pointer or a stride is not a multiple of the item size
    ('input: array is not aligned' / '...strides are not a multiple...')."""
    x = np.ndarray(shape, np.float32, buffer=bytearray(16), offset=offset, strides=strides)
    y = np.zeros(shape, np.float32)
    assert x.flags.aligned
    assert np.isnan(fastloss.mse_loss(x, y))
    assert fastloss.mse_loss(x, y, reduction="none").shape == shape
    assert fastloss.mse_loss_backward(x, y).shape == shape
    assert fastloss.mse_loss(y, x, reduction="none").shape == shape


def test_known_unaligned_out():
    """An unaligned ``out`` of the right shape and dtype is refused ('out:
    array is not aligned') — but accepted when target broadcasts (the
    gradient is then copied into it). Unaligned inputs are accepted."""
    x, y = np.ones(3, np.float32), np.zeros(3, np.float32)
    out = np.frombuffer(bytearray(13), np.float32, count=3, offset=1)
    assert out.flags.writeable and not out.flags.aligned
    g = fastloss.mse_loss_backward(x, y, out=out)
    assert g is out
    assert_identical(_plain(out), fastloss.mse_loss_backward(x, y))


@pytest.mark.parametrize("call", [
    lambda x, y: fastloss.smooth_l1_loss(x, y, beta=10**400),
    lambda x, y: fastloss.huber_loss(x, y, delta=10**400),
    lambda x, y: fastloss.mse_loss_backward(x, y, grad_output=10**400),
    lambda x, y: fastloss.mse_loss_backward(x, y, reduction="none", grad_output=-(10**400)),
], ids=["beta", "delta", "grad_output", "grad_output-none"])
def test_known_huge_python_int_option(call):
    """``float(10**400)`` raises OverflowError, which escapes without naming
    the argument (API.md §5: ValueError/TypeError naming it)."""
    x, y = np.ones(3, np.float32), np.zeros(3, np.float32)
    try:
        call(x, y)
    except Exception as exc:  # noqa: BLE001
        assert type(exc) in ALLOWED, f"{type(exc).__name__}: {exc}"
        assert re.search(r"\b(beta|delta|grad_output)\b", str(exc)), str(exc)


def test_known_more_than_32_dimensions():
    """NumPy arrays have up to 64 dimensions and fastloss takes > 8-d inputs,
    but np.broadcast_shapes raises RuntimeError beyond 32: identical 33-d
    shapes fail as soon as grad_output is given, broadcastable ones always."""
    x = np.ones((1,) * 33, np.float32)
    g = fastloss.mse_loss_backward(x, x, reduction="none", grad_output=np.ones_like(x))
    assert g.shape == x.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the size-mismatch warning
        assert fastloss.mse_loss(x, np.ones((1,) * 32, np.float32), reduction="none").shape == x.shape


@pytest.mark.parametrize("wrap", [memoryview, ArrayLike, DLPackLike], ids=["memoryview", "__array__", "__dlpack__"])
def test_known_out_overlapping_an_input_that_is_not_an_ndarray(wrap):
    """The overlap check of ``out=`` only looks at ndarray arguments: an
    input passed as a memoryview / array-like (torch tensors too) that
    shares memory with ``out`` is overwritten, and the gradient is wrong."""
    buf = np.linspace(-1, 1, 1024, dtype=np.float32)
    before = buf.copy()
    with pytest.raises(ValueError, match="out"):
        fastloss.mse_loss_backward(wrap(buf), np.zeros(1024, np.float32), reduction="none", out=buf[::-1])
    assert buf.tobytes() == before.tobytes(), "the input was overwritten"


def test_known_smooth_l1_nan_beta():
    """torch refuses beta=NaN ('does not support negative values for beta':
    its check is ``beta >= 0``); fastloss checks ``beta < 0`` and returns NaN.
    (huber_loss does refuse delta=NaN.)"""
    x, y = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="beta"):
        fastloss.smooth_l1_loss(x, y, beta=math.nan)


def test_known_reference_beyond_32_dimensions():
    """fastloss.reference uses np.broadcast_shapes, which raises
    RuntimeError beyond 32 dimensions; fastloss itself takes such shapes."""
    from fastloss import reference

    x, t = np.ones((1,) * 33), np.ones((1,) * 32)
    assert reference.mse_loss(x, t, reduction="none").shape == x.shape
    assert reference.mse_loss_backward(x, t).shape == x.shape


@pytest.mark.parametrize("dtype, shape, reduction", [(np.float16, (3,), "none"), (np.float64, (1,), "none"),
                                                     (np.float64, (), "mean")], ids=["float16", "one-element", "0-d"])
def test_known_out_overlapping_grad_output(dtype, shape, reduction):
    """API.md §2: ``out`` overlapping an input is a ValueError. The overlap
    check looks at the kernel's copy of grad_output, which is absent for a
    one-element grad_output (read as a scalar) and a float32 copy for a
    float16/bfloat16 one: ``out=grad_output`` then passes (float32/float64
    grad_output arrays of more than one element are refused)."""
    x, t = np.ones(shape, dtype), np.zeros(shape, dtype)
    g = np.full(shape, 2, dtype)
    with pytest.raises(ValueError, match="out"):
        fastloss.mse_loss_backward(x, t, reduction=reduction, grad_output=g, out=g)
    assert np.all(g == 2), "grad_output was overwritten"
