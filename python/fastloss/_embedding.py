"""Python side of the feature-axis losses and distances (rows along the last
axis of two or three operands; cpp/src/losses/embedding.h): shapes the
broadcast operands as the row-wise table's cube ``(rows, features, 1)``
without copying where NumPy can view them so, and turns a forward /
backward / fused call into one kernel call (``_core.rowwise_call``)."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from . import _validate as v
from ._api import BACKWARD, FORWARD, PARTIAL, VALUE_AND_GRAD, Partial
from ._elementwise import _to_input, _value
from ._rowwise import TABLE, as_cube, cube_view


def float_operands(named):
    """``[(name, given object, float ndarray)]`` for ``[(name, object)]``."""
    return [(name, obj, v.check_float(v.as_array(obj, name), name)) for name, obj in named]


def same_ndim(operands, what="all three"):
    first = operands[0]
    for name, _, a in operands[1:]:
        if a.ndim != first[2].ndim:
            raise ValueError(f"{name}: has {a.ndim} dimensions, {first[0]} has {first[2].ndim} ({what} must have "
                             "the same number, as torch)")


def rows_of(shape):
    """``(rows, features, shape of one value per row)``; a 0-d shape is one
    row of one feature whose value is 0-d (torch's norm over dim -1)."""
    if shape == ():
        return 1, 1, ()
    return math.prod(shape[:-1]), shape[-1], tuple(shape[:-1])


def evaluate(name, mode, operands, reduction, *, value_shape=None, target=None, grad_output=None, out=None,
             options=()):
    """Runs the feature-axis row ``name`` of the row-wise table.

    operands: ``(argument name, given object, float ndarray)``, validated
        and broadcastable together; every one gets a gradient.
    reduction: a code of ``_validate.REDUCTIONS`` (the distances: NONE).
    value_shape: the shape of the unreduced result (default: one value per
        row; pairwise_distance's keepdim adds a 1).
    target: a per-row array already in the kernel dtype (broadcastable to
        the rows), or None.
    Returns the value (FORWARD), the gradients (BACKWARD, a tuple), both, or
    the call's Partial (PARTIAL)."""
    lid = TABLE[name][0]
    shape = v.broadcast_operands(operands)
    rows, features, row_shape = rows_of(shape)
    if value_shape is None:
        value_shape = row_shape
    rdtype, kdtype = v.result_dtype(*[(obj, a) for _, obj, a in operands])
    cube = (rows, features, 1)
    work = shape if shape != () else (1,)
    kin = tuple(as_cube(v.for_kernel(a, kdtype, shape).reshape(work), cube) for _, _, a in operands)
    kt = None
    if target is not None:
        kt = as_cube(np.broadcast_to(target, row_shape), (rows, 1))
    if mode == PARTIAL:  # the kernel's 'mean' gives the denominator; the sum is the same for 'sum'
        reduction = v.MEAN
    want_grad = mode in (BACKWARD, VALUE_AND_GRAD)
    loss_out = np.empty((rows, 1), kdtype) if (reduction == v.NONE and mode != BACKWARD) else None
    scale, kg, bufs, outs = 1.0, None, (), ()
    if want_grad:
        gshape = tuple(value_shape) if reduction == v.NONE else ()
        scale, kg, g = v.grad_output(grad_output, gshape, kdtype)
        if kg is not None:
            kg = as_cube(np.broadcast_to(kg, gshape).reshape(row_shape), (rows, 1))
        outs = v.outs(out, len(operands))
        sources = tuple(a for _, _, a in operands) + (g,)
        bufs = []
        for k, ((_, _, a), o) in enumerate(zip(operands, outs)):
            if o is not None:
                v.out_array(o, a.shape, a.dtype, sources, name="out" if len(operands) == 1 else f"out[{k}]")
            buf = None
            if a.shape == shape and a.dtype == kdtype and shape != ():
                if o is None:
                    buf = cube_view(np.empty_like(a, dtype=kdtype), cube)
                elif o.flags.aligned:
                    buf = cube_view(o, cube)
            bufs.append(buf if buf is not None else np.empty(cube, kdtype))
        bufs = tuple(bufs)
    total, denom, errors, _ = _core.rowwise_call(
        lid, mode != BACKWARD, want_grad, reduction, scale, kin, kt, None, kg, loss_out, bufs,
        tuple(float(o) for o in options))
    if errors:
        raise MemoryError(f"{name}: no memory for the kernel's scratch rows")
    if mode == PARTIAL:
        return Partial(total, denom, rdtype)
    value = None if mode == BACKWARD else _value(loss_out, total, value_shape, reduction, denom, rdtype)
    if not want_grad:
        return value
    grads = tuple(_to_input(buf.reshape(shape), a, o) for (_, _, a), buf, o in zip(operands, bufs, outs))
    return grads if mode == BACKWARD else (value, grads)
