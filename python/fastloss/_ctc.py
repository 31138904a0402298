"""Argument handling of ``ctc_loss`` (the sequence family): torch 2.13's
shapes and checks, every error naming its argument, then one call of
``_core.ctc_loss`` (cpp/include/fastloss/ctc.h).

Lengths and labels of any integer dtype (and lists/tuples of ints) are
checked on the values given, then copied to int64 (N and N x S values: small
next to ``log_probs``). Nothing reaches the kernel unchecked: a label outside
``[0, C)`` or equal to ``blank`` is an IndexError here (torch reads out of
bounds for labels >= C)."""

from __future__ import annotations

import operator

import numpy as np

from . import _core
from . import _validate as _v
from ._api import BACKWARD, FORWARD, PARTIAL, Partial

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _integer(value, name):
    """A Python/NumPy integer (not bool) as int."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None


def _int_array(obj, name):
    """An integer ndarray (lists/tuples of ints, arrays of any int width);
    floats, bools and the rest raise TypeError."""
    if isinstance(obj, (bool, np.bool_)):
        raise TypeError(f"{name}: expected integers, got bool")
    arr = _v.as_array(obj, name)
    if arr.dtype.kind not in "iu":
        if arr.size == 0 and isinstance(obj, (list, tuple)):
            return np.zeros(arr.shape, np.int64)  # [] has no dtype of its own
        raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    return arr


def _lengths(obj, name, batch, unbatched, bound, bound_name):
    arr = _int_array(obj, name)
    if unbatched:
        if arr.size != 1 or arr.ndim > 1:
            raise ValueError(f"{name}: unbatched log_probs (T, C) take one length, got shape {arr.shape}")
        arr = arr.reshape(1)
    elif arr.shape != (batch,):
        raise ValueError(f"{name}: expected shape ({batch},) (log_probs' batch size), got {arr.shape}")
    if arr.size:
        low, high = arr.min(), arr.max()
        if low < 0:
            raise ValueError(f"{name}: values must be >= 0, got {low}")
        if bound is not None and high > bound:
            raise ValueError(f"{name}: values must be <= {bound} ({bound_name}), got {high}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def evaluate(mode, grad_output, out, log_probs, targets, input_lengths, target_lengths, blank, reduction,
             zero_infinity, exact):
    if mode == PARTIAL:
        return _partial(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    red = _v.reduction(reduction)
    blank = _integer(blank, "blank")
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"zero_infinity: expected a bool, got {type(zero_infinity).__name__}")
    if not isinstance(exact, (bool, np.bool_)):
        raise TypeError(f"exact: expected a bool, got {type(exact).__name__}")
    lp = _v.check_float(_v.as_array(log_probs, "log_probs"), "log_probs")
    if lp.ndim not in (2, 3):
        raise ValueError(f"log_probs: expected (T, N, C) or unbatched (T, C), got shape {lp.shape}")
    unbatched = lp.ndim == 2
    T, C = lp.shape[0], lp.shape[-1]
    N = 1 if unbatched else lp.shape[1]
    if not 0 <= blank < C:
        raise ValueError(f"blank: {blank} is outside the label range [0, {C})")

    tg = _int_array(targets, "targets")
    il = _lengths(input_lengths, "input_lengths", N, unbatched, T, "log_probs' length T")
    if unbatched:
        if tg.ndim != 1:
            raise ValueError(f"targets: unbatched log_probs (T, C) take 1-d targets, got shape {tg.shape}")
        tg = tg.reshape(1, -1)
    if tg.ndim == 2:
        if tg.shape[0] != N:
            raise ValueError(f"targets: padded targets need {N} rows (log_probs' batch size), got {tg.shape[0]}")
        S = tg.shape[1]
        tl = _lengths(target_lengths, "target_lengths", N, unbatched, S, "targets' padded length S")
        used = np.arange(S) < tl[:, np.newaxis]
        labels = tg[used]
        padded = S
    elif tg.ndim == 1:
        tl = _lengths(target_lengths, "target_lengths", N, unbatched, None, None)
        # Each length is at most tg.size, so the int64 sum cannot wrap unless
        # N * tg.size does; then Python's integers add them.
        longest = int(tl.max(initial=0))
        if longest > tg.size:
            raise ValueError(f"target_lengths: a length of {longest} exceeds the {tg.size} concatenated labels "
                             "in targets")
        total = int(tl.sum()) if tl.size * tg.size < 2**62 else sum(int(v) for v in tl)
        if tg.size != total:
            raise ValueError(f"targets: concatenated targets have {tg.size} labels, target_lengths add up to {total}")
        labels = tg
        padded = -1
    else:
        raise ValueError(f"targets: expected padded (N, S) or concatenated 1-d targets, got shape {tg.shape}")
    if labels.size:
        bad = (labels < 0) | (labels >= C) | (labels == blank)
        if bad.any():
            v = labels[np.argmax(bad)]
            why = "equals blank" if v == blank else f"is outside [0, {C})"
            raise IndexError(f"targets: label {v} {why}")
    targets64 = np.ascontiguousarray(tg, dtype=np.int64).reshape(-1)

    # Result dtype: log_probs' (float16/bfloat16 computed in float32).
    dtype = lp.dtype.newbyteorder("=")
    kdtype = dtype if dtype in (_F32, _F64) else _F32
    x = _v.for_kernel(lp, kdtype, lp.shape)
    x3 = x[:, np.newaxis, :] if unbatched else x
    loss_shape = () if unbatched else (N,)

    go = None
    if mode != FORWARD and grad_output is not None:
        g = _v.check_real(_v.as_array(grad_output, "grad_output"), "grad_output")
        shape = loss_shape if red == _v.NONE else ()
        if _v.broadcast_shapes(g.shape, shape) != shape:
            raise ValueError(f"grad_output: shape {g.shape} cannot be broadcast to the loss's shape {shape}")
        # torch multiplies in the loss's dtype: round grad_output to it first.
        g = np.asarray(g, dtype=kdtype).astype(np.float64)
        go = np.ascontiguousarray(np.broadcast_to(g, (N,) if red == _v.NONE else ()).reshape(-1))

    grad = grad_out = None
    given = None
    if mode != FORWARD:
        given = _v.outs(out, 1)[0]
        if given is not None:
            # The gradient has log_probs' dtype exactly (byte order too), as the element-wise losses'.
            _v.out_array(given, lp.shape, lp.dtype, [lp, tg, il])
        if given is not None and given.dtype == kdtype and given.flags.aligned:
            grad_out = given
        else:
            grad_out = np.empty(lp.shape, kdtype)
        grad = grad_out[:, np.newaxis, :] if unbatched else grad_out
    losses = np.empty(N, kdtype) if red == _v.NONE and mode != BACKWARD else None
    total = _core.ctc_loss(x3, targets64, padded, il, tl, blank, red, bool(zero_infinity), losses, grad,
                           bool(exact), go)

    if mode != FORWARD:
        if given is None:
            result_grad = _v.narrow(grad_out, lp.dtype)
        else:
            if grad_out is not given:
                if grad_out.dtype == _F32 and given.dtype == np.float16 and given.flags.aligned:
                    _v.float_to_half(grad_out, given)
                else:
                    with np.errstate(over="ignore"):  # float16 overflow is inf, silently, as torch
                        np.copyto(given, grad_out, casting="unsafe")
            result_grad = given
        if mode == BACKWARD:
            return result_grad
    if red == _v.NONE:
        value = _v.narrow(losses, dtype) if dtype != kdtype else losses
        value = value.reshape(loss_shape)
    else:
        value = _v.narrow(float(total), dtype)
    return value if mode == FORWARD else (value, result_grad)


def _partial(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
    """A chunk of samples for fastloss.Accumulator: 'sum' adds the losses,
    'mean' each loss over its target length (at least 1), and the
    denominator is the number of samples (torch's batch mean)."""
    red = _v.reduction(reduction)
    losses = evaluate(FORWARD, None, None, log_probs, targets, input_lengths, target_lengths, blank, "none",
                      zero_infinity, False)
    values = np.asarray(losses, np.float64).reshape(-1)
    if red == _v.MEAN:
        lengths = np.asarray(target_lengths).reshape(-1).astype(np.float64)
        values = values / np.maximum(lengths, 1.0)
    return Partial(float(values.sum()), values.size, np.asarray(losses).dtype)
