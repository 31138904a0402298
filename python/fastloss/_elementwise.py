"""Python side of the element-wise (regression) losses: one function turns
any of forward / backward / fused calls into one kernel call."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from . import _validate as v
from ._api import BACKWARD, FORWARD, PARTIAL, VALUE_AND_GRAD, Partial

# Kernel ids (cpp/include/fastloss/fastloss.h, enum Pointwise).
L1, MSE, SMOOTH_L1, HUBER, SUM = 0, 1, 2, 3, 4


def total(array):
    """Deterministic, blocked float64 sum of a float32/float64 kernel array."""
    return _core.pointwise(SUM, True, False, 0.0, 1.0, array, None, None, None, None, None)


def evaluate(loss, mode, input, target, reduction, weight, param, grad_output, out, *, weight_divides_mean):
    """Runs ``loss`` on (input, target).

    ``weight_divides_mean``: torch's weighted L1/MSE ``'mean'`` is
    ``sum(w*l) / sum(w)``; Huber's is ``mean(w*l)``.
    Returns the loss (FORWARD), the input gradient (BACKWARD), both, or the
    call's Partial (PARTIAL)."""
    # Plain calls (same-shape float32/float64 operands, no conversion) are
    # checked and run in C++ (cpp/bindings/module.cpp); None means "anything
    # else", which the general path below handles, errors included.
    if mode != PARTIAL:
        fast = _core.elementwise(loss, mode, reduction, param, weight_divides_mean, input, target, weight,
                                 grad_output, out)
        if fast is not None:
            return fast
    red = v.reduction(reduction)
    x = v.check_float(v.as_array(input, "input"), "input")
    t = v.check_real(v.as_array(target, "target"), "target")
    w = None
    if weight is not None:
        w = v.check_real(v.as_array(weight, "weight"), "weight")
        if w.shape != x.shape:
            raise ValueError(f"weight: shape {w.shape} must equal input's shape {x.shape} (torch: "
                             "'Weights and input must have the same size.')")
    rdtype, kdtype = v.result_dtype((input, x), (target, t), (weight, w))
    shape = v.broadcast_shape(x, t, "input", "target")
    if t.shape != x.shape:
        v.warn_size_mismatch(x, t, stacklevel=5)
    # Beyond the kernels' 8 dimensions, run on flat contiguous copies.
    kshape = shape if len(shape) <= v.MAX_DIMS else (math.prod(shape),)
    kx = v.for_kernel(x, kdtype, shape, kshape)
    kt = v.for_kernel(t, kdtype, shape, kshape)
    kw = None if w is None else v.for_kernel(w, kdtype, shape, kshape)
    numel = kx.size
    if red == v.MEAN or mode == PARTIAL:
        if w is not None and weight_divides_mean:
            wshape = w.shape if w.ndim <= v.MAX_DIMS else (w.size,)
            denom = total(v.for_kernel(w, kdtype, w.shape, wshape))
        else:
            denom = numel
    else:
        denom = 1

    want_grad = mode in (BACKWARD, VALUE_AND_GRAD)
    loss_out = np.empty(kshape, kdtype) if (red == v.NONE and mode != BACKWARD) else None
    scale, kg, grad_buf, grad_final = 1.0, None, None, None
    if want_grad:
        loss_shape = shape if red == v.NONE else ()
        scale, kg, g = v.grad_output(grad_output, loss_shape, kdtype, kshape if red == v.NONE else ())
        (out_x,) = v.outs(out, 1)
        if out_x is not None:
            v.out_array(out_x, x.shape, x.dtype, (x, t, w, g))
        if red == v.MEAN:
            scale = v.divide(scale, denom)
        direct_out = out_x is None or out_x.flags.aligned
        if x.shape == shape and x.dtype == kdtype and kshape == shape and direct_out:
            grad_buf = out_x if out_x is not None else np.empty(shape, kdtype)
        else:
            grad_buf = np.empty(kshape, kdtype)
        grad_final = out_x

    s = _core.pointwise(loss, mode != BACKWARD, want_grad, param, scale, kx, kt, kw, kg, loss_out, grad_buf)
    if mode == PARTIAL:
        return Partial(s, denom, rdtype)

    value = None if mode == BACKWARD else _value(loss_out, s, shape, red, denom, rdtype)
    if not want_grad:
        return value
    if grad_buf.shape != shape:  # flattened beyond 8 dimensions
        grad_buf = grad_buf.reshape(shape)
    grad = _to_input(grad_buf, x, grad_final)
    return grad if mode == BACKWARD else (value, grad)


def _value(loss_out, total, shape, reduction, denom, dtype):
    """The loss a call returns: the per-element array ('none') or the total
    (divided by ``denom`` for 'mean'), in the result dtype."""
    if reduction == v.NONE:
        return v.narrow(loss_out.reshape(shape), dtype)
    return v.narrow(v.divide(total, denom) if reduction == v.MEAN else total, dtype)


def _to_input(grad, x, out):
    """Sums a gradient over the dimensions ``x`` was broadcast along and casts
    it to ``x``'s dtype, into ``out`` when given (``out`` as it is when the
    kernel computed the gradient there: ``grad`` is ``out`` or a view of it)."""
    if grad.shape != x.shape:
        lead = grad.ndim - x.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(x.shape) if n == 1 and grad.shape[lead + i] != 1
        )
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, silently, as torch
            grad = np.asarray(grad.sum(axis=axes, dtype=np.float64)).reshape(x.shape)
    if out is not None:
        if grad.dtype == v._F32 and out.dtype == v._F16 and out.flags.aligned:
            v.float_to_half(grad, out)
        elif not np.shares_memory(grad, out):
            with np.errstate(over="ignore"):  # float16 overflow is inf, silently, as torch
                np.copyto(out, grad, casting="unsafe")
        return out
    return v.narrow(grad, x.dtype)


# The C++ loss table (fastloss/losses.h): name -> (id, inputs, grads, option names).
TABLE = {name: (lid, inputs, grads, options) for name, lid, inputs, grads, options in _core.losses()}


def _plain_call(lid, mode, arrays, grads, reduction, weight, options, divisor, checks):
    """evaluate_table's common case, run whole in C++ (``_core.table_plain``,
    cpp/bindings/module.cpp): every array an aligned native float32/float64
    ndarray of one dtype and one shape (no broadcasting, conversion or
    flattening; a 0-d operand of that dtype reads with stride 0), no
    grad_output, no out=. Returns None for anything else (the general path
    handles it)."""
    kw = None
    if weight is not None:
        if type(weight[0]) is not np.ndarray:
            return None
        kw = weight[1]
    return _core.table_plain(lid, mode, reduction, tuple(arrays), kw, tuple(options), divisor, tuple(checks),
                             tuple(grads))


def evaluate_table(name, mode, operands, grads, reduction, *, weight=None, grad_output=None, out=None,
                   options=(), divisor=None, checks=(), weight_divides_mean=False):
    """Runs the table loss ``name`` (any number of inputs and gradients).

    operands: ``(argument name, given object, ndarray)`` in the kernel's
        order, validated by the caller and broadcastable to one shape (the
        loss's shape).
    grads: for each gradient the function returns, the index of its operand,
        or None for an operand without one (a float ``var``); the kernel's
        gradient k is entry k.
    reduction: a code of ``_validate.REDUCTIONS``; ``divisor`` replaces the
        element count of ``'mean'`` (``'batchmean'``).
    weight: ``(given object, ndarray)`` broadcastable into the loss's shape, or None.
    options: the kernel's options (numbers) in the table's order.
    checks: messages of the kernel's checks (ValueError when one fails).
    weight_divides_mean: a weighted ``'mean'`` is ``sum(w * l) / sum(w)``,
        ``w`` broadcast to the loss's shape (the row needs kWeightTotal).
    Returns the loss (FORWARD), the gradients (BACKWARD: one array, or a
    tuple when ``grads`` has several entries) or both."""
    lid, _, _, _ = TABLE[name]
    arrays = [a for _, _, a in operands]
    if grad_output is None and out is None and mode != PARTIAL and not (weight_divides_mean and weight is not None):
        plain = _plain_call(lid, mode, arrays, grads, reduction, weight, options, divisor, checks)
        if plain is not None:
            return plain
    shape = arrays[0].shape
    for a in arrays[1:] + ([weight[1]] if weight is not None else []):
        shape = v.broadcast_shapes(shape, a.shape)
    pairs = [(obj, a) for _, obj, a in operands] + ([weight] if weight is not None else [])
    rdtype, kdtype = v.result_dtype(*pairs)
    kshape = shape if len(shape) <= v.MAX_DIMS else (math.prod(shape),)
    kin = tuple(v.for_kernel(a, kdtype, shape, kshape) for a in arrays)
    kw = None if weight is None else v.for_kernel(weight[1], kdtype, shape, kshape)
    numel = math.prod(shape)
    denom = (numel if divisor is None else divisor) if (reduction == v.MEAN or mode == PARTIAL) else 1
    # sum(w): the forward pass adds it up with the loss; a gradient needs it
    # before its pass (its scale), so the weight is summed first.
    weight_mean = weight_divides_mean and weight is not None and (reduction == v.MEAN or mode == PARTIAL)
    if weight_mean and mode in (BACKWARD, VALUE_AND_GRAD):
        denom = _core.elementwise_call(TABLE["sum"][0], True, False, 1.0, (kw,), None, None, None, (), ())[0]

    want_grad = mode in (BACKWARD, VALUE_AND_GRAD)
    loss_out = np.empty(kshape, kdtype) if (reduction == v.NONE and mode != BACKWARD) else None
    scale, kg, bufs, outs = 1.0, None, (), ()
    if want_grad:
        loss_shape = shape if reduction == v.NONE else ()
        scale, kg, g = v.grad_output(grad_output, loss_shape, kdtype, kshape if reduction == v.NONE else ())
        outs = v.outs(out, len(grads))
        sources = tuple(arrays) + ((weight[1],) if weight is not None else ()) + (g,)
        for k, (index, o) in enumerate(zip(grads, outs)):
            name_k = "out" if len(grads) == 1 else f"out[{k}]"
            if index is None:
                if o is not None:
                    raise ValueError(f"{name_k}: {operands[k][0] if k < len(operands) else 'this'} has no gradient "
                                     "here (a float); pass None")
                continue
            if o is not None:
                x = arrays[index]
                v.out_array(o, x.shape, x.dtype if v.is_float(x.dtype) else rdtype, sources, name=name_k)
        if reduction == v.MEAN:
            scale = v.divide(scale, denom)
        # A gradient of an operand of the loss's own shape and dtype is written
        # straight into its out= (or its new result array): no copy after.
        def buffer(index, o):
            if index is None:
                return None
            x = arrays[index]
            if x.shape == shape and kshape == shape and x.dtype == kdtype:
                if o is None:
                    return np.empty(shape, kdtype)
                if o.dtype == kdtype and o.flags.aligned:
                    return o
            return np.empty(kshape, kdtype)

        bufs = tuple(buffer(index, o) for index, o in zip(grads, outs))

    s, weight_total, errors = _core.elementwise_call(lid, mode != BACKWARD, want_grad, scale, kin, kw, kg, loss_out,
                                                     bufs, tuple(float(o) for o in options))
    if errors:
        bit = (errors & -errors).bit_length() - 1
        raise ValueError(checks[bit])
    if weight_mean and mode in (FORWARD, PARTIAL):
        denom = weight_total
    if mode == PARTIAL:
        return Partial(s, denom, rdtype)

    value = None if mode == BACKWARD else _value(loss_out, s, shape, reduction, denom, rdtype)
    if not want_grad:
        return value
    result = []
    for index, buf, o in zip(grads, bufs, outs):
        if index is None:
            result.append(None)
            continue
        # (differentiable operands are float arrays: _to_input takes their dtype)
        result.append(_to_input(buf if buf.shape == shape else buf.reshape(shape), arrays[index], o))
    grad = result[0] if len(result) == 1 else tuple(result)
    return grad if mode == BACKWARD else (value, grad)
