"""Python side of the row-wise losses (the class-axis losses): shapes the
arrays as the row-wise driver's cube ``(outer, classes, inner)`` without
copying where NumPy can view them so, and turns a forward / backward / fused
call into one kernel call (``_core.rowwise_call``)."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from . import _validate as v
from ._api import BACKWARD, FORWARD, PARTIAL, VALUE_AND_GRAD, Partial
from ._elementwise import _to_input, _value

# The C++ row-wise table (fastloss/losses.h): name -> (id, inputs, grads, target kind, option names).
TABLE = {name: (lid, inputs, grads, target, options)
         for name, lid, inputs, grads, target, options in _core.rowwise_losses()}

_INT64 = np.iinfo(np.int64)


def cube_view(a, cube):
    """``a`` viewed as ``cube`` without a copy, or None when NumPy cannot."""
    view = a.view()
    try:
        view.shape = cube
    except AttributeError:
        return None
    return view


def as_cube(a, cube):
    """``a`` as ``cube``: a view when possible, else a contiguous copy."""
    view = cube_view(a, cube)
    return view if view is not None else np.ascontiguousarray(a).reshape(cube)


def index_target(t, name="target"):
    """An integer target as the kernel reads it: any width, native byte order."""
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array of class indices, got dtype {t.dtype}")
    if not t.dtype.isnative or not t.flags.aligned:
        t = t.astype(t.dtype.newbyteorder("="))
    return t


def check_index(value, name):
    """An int option that the kernel compares with int64 class indices."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    value = int(value)
    if not _INT64.min <= value <= _INT64.max:
        raise ValueError(f"{name}: {value} is outside the int64 range")
    return value


def ce_extras(z_loss, softcap):
    """cross_entropy's beyond-torch options as the kernel takes them:
    ``(z_loss, softcap)``, a finite ``z_loss`` and ``softcap`` None (0 for the
    kernel) or a finite number > 0."""
    z_loss = v.real_number(z_loss, "z_loss")
    if not math.isfinite(z_loss):
        raise ValueError(f"z_loss: must be a finite number, got {z_loss}")
    if softcap is None:
        return z_loss, 0.0
    softcap = v.real_number(softcap, "softcap")
    if not (math.isfinite(softcap) and softcap > 0):
        raise ValueError(f"softcap: must be a finite number > 0 or None, got {softcap}")
    return z_loss, softcap


def check_softcap(softcap, kdtype):
    """A softcap (0: none) the kernel's dtype holds as a positive normal
    number: in float32 1e-300 would round to 0 and 1e39 to inf (NaN logits)."""
    info = np.finfo(kdtype)
    if softcap != 0 and not float(info.smallest_normal) <= softcap <= float(info.max):
        raise ValueError(f"softcap: {softcap} is outside the range of {kdtype} (the computation's dtype), "
                         f"[{info.smallest_normal}, {info.max}]")


def class_weight(weight, classes, kdtype):
    """``weight``: None, or a 1-D array of ``classes`` entries, in the kernel dtype, contiguous."""
    if weight is None:
        return None
    w = v.check_real(v.as_array(weight, "weight"), "weight")
    if w.ndim != 1 or w.shape[0] != classes:
        raise ValueError(f"weight: expected a 1-D array of {classes} class weights, got shape {w.shape}")
    return np.ascontiguousarray(v.for_kernel(w, kdtype, w.shape))


def evaluate(name, mode, x, cube, loss_shape, target, reduction, *, kdtype, rdtype, weight=None, grad_output=None,
             out=None, options=(), sources=()):
    """Runs the row-wise loss ``name``.

    x: the (validated, float) input; cube: its ``(outer, classes, inner)``;
    loss_shape: the shape of ``reduction='none'``'s result (one value per row).
    target: the kernel's target, already shaped: an integer array (any
        width) of ``(outer, inner)`` (class indices) or ``(outer, classes,
        inner)`` (rows of indices), or a float array of the cube in the
        kernel dtype.
    weight: a contiguous ``(classes,)`` kernel-dtype array or None.
    sources: the caller's arrays (for the overlap check of ``out=``).
    Returns the loss (FORWARD), the gradient (BACKWARD), both, or the call's
    Partial (PARTIAL: its total and the denominator 'mean' divides by)."""
    lid = TABLE[name][0]
    outer, classes, inner = cube
    kx = as_cube(v.for_kernel(x, kdtype, x.shape), cube)
    rows_shape = (outer, inner)
    if mode == PARTIAL:  # the sum is the same for 'sum' and 'mean'; the kernel's 'mean' gives the denominator
        reduction = v.MEAN
    want_grad = mode in (BACKWARD, VALUE_AND_GRAD)
    loss_out = np.empty(rows_shape, kdtype) if (reduction == v.NONE and mode != BACKWARD) else None
    scale, kg, gbuf, out_x = 1.0, None, None, None
    if want_grad:
        row_shape = tuple(loss_shape) if reduction == v.NONE else ()
        scale, kg, g = v.grad_output(grad_output, row_shape, kdtype)
        if kg is not None:
            kg = as_cube(np.broadcast_to(kg, row_shape), rows_shape)
        (out_x,) = v.outs(out, 1)
        if out_x is not None:
            v.out_array(out_x, x.shape, x.dtype, tuple(sources) + (g,))
            if out_x.dtype == kdtype and out_x.flags.aligned:
                gbuf = cube_view(out_x, cube)
        if gbuf is None:
            # In the input's layout (order 'K'): the kernel walks both alike.
            gbuf = cube_view(np.empty_like(x, dtype=kdtype), cube)
            if gbuf is None:
                gbuf = np.empty(cube, kdtype)
    total, denom, errors, bad = _core.rowwise_call(
        lid, mode != BACKWARD, want_grad, reduction, scale, (kx,), target, weight, kg, loss_out,
        (gbuf,) if want_grad else (), tuple(float(o) for o in options))
    if errors & 1:
        if target.dtype == np.uint64 and bad == _INT64.max:  # the kernel reads uint64 beyond int64 as int64's max
            flat = target.reshape(-1)
            beyond = flat[flat > np.uint64(_INT64.max)]
            bad = int(beyond[0]) if beyond.size else bad
        raise IndexError(f"target: class index {bad} is out of bounds for {classes} classes")
    if errors:
        raise MemoryError(f"{name}: no memory for the kernel's scratch rows")
    if mode == PARTIAL:
        return Partial(total, denom, rdtype)
    value = None if mode == BACKWARD else _value(loss_out, total, loss_shape, reduction, denom, rdtype)
    if not want_grad:
        return value
    grad = _to_input(gbuf.reshape(x.shape), x, out_x)
    return grad if mode == BACKWARD else (value, grad)


def numel(shape):
    return math.prod(shape)
