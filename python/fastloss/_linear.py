"""The chunked driver of ``linear_cross_entropy``: the loss of
``cross_entropy(input @ linear_weight.T + linear_bias, target)`` and its
gradients without the ``(N, V)`` logits ever existing.

Per chunk of ``rows`` rows (V = num_classes * prod(out_features) logits a row):

1. ``logits = input[chunk] @ W.T (+ b)`` into one preallocated
   ``(rows, V)`` buffer (NumPy's ``matmul(out=)``);
2. the cross-entropy kernel (the row-wise driver, ``_core.rowwise_call``)
   turns the buffer into the chunk's losses and, in place, into
   ``d loss / d logits`` = ``softmax - target`` already scaled by the class
   weight, ``grad_output`` and the ``'mean'`` denominator (computed up front
   from the targets and weights, O(N));
3. ``grad_input[chunk] = G @ W`` (``matmul(out=)``), ``grad_linear_bias +=
   G.sum(0)`` and ``grad_linear_weight += G.T @ input[chunk]``, the last one
   by vocabulary blocks whose ``(block, in_features)`` product is at most
   the logits buffer's size (NumPy has no ``C += A @ B``: each block's
   product goes to a scratch array, then is added; the first chunk writes
   ``grad_linear_weight`` directly). Small blocks would keep the scratch in
   cache but make OpenBLAS slow on the strided, short products (5 GFLOP/s
   for 256-row blocks against 40 for 8000-row ones, measured).

The matrix products are NumPy's, i.e. the BLAS NumPy ships or was built
with (OpenBLAS in the wheels): NumPy is fastloss's only runtime dependency,
``matmul(out=)`` writes into our buffers without copies, and a tuned GEMM is
what dominates the run time; a hand-written one would be slower, and linking
a BLAS ourselves would add a build dependency for no gain.

Memory beyond the inputs and the gradients: the logits buffer
(``rows * V * itemsize``), the accumulation scratch (at most as large, only
with more than one chunk) and O(N + V) per-row and per-class arrays. The default ``rows`` keeps the
buffer near ``CHUNK_BYTES``.

Determinism: the chunking depends on the shapes and ``chunk_size`` only and
the kernel is bitwise identical for any fastloss thread count, so results do
not depend on it. The BLAS's own thread count (``OPENBLAS_NUM_THREADS``,
threadpoolctl) can change the rounding of some product shapes (OpenBLAS:
64 x 700 x 64, measured): fix it too for bitwise reproducibility. Different
``chunk_size`` values give the same maths (the loss is summed per chunk in
float64, then over chunks; ``grad_linear_weight`` is summed over chunks), so
results agree to rounding."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from . import _rowwise as rw
from . import _validate as v
from ._api import BACKWARD, PARTIAL, VALUE_AND_GRAD, Partial
from ._elementwise import _to_input, _value

CHUNK_BYTES = 64 << 20  # the logits buffer the default chunk size aims at
MAX_CHUNK_ROWS = 4096  # a small vocabulary does not make one huge chunk (the GEMMs gain nothing beyond)

_CE = rw.TABLE["cross_entropy"][0]


def default_chunk_rows(vocabulary, itemsize):
    """Rows per chunk: a logits buffer of about ``CHUNK_BYTES``."""
    return max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // max(1, vocabulary * itemsize)))


def kernel_options(ignore_index, label_smoothing, probabilities, z_loss=0.0, softcap=None):
    """The cross-entropy kernel's options (``losses.h``'s order), validated as
    ``cross_entropy`` validates them; the one place a new cross-entropy
    option is passed through."""
    if ignore_index is not None and probabilities:
        raise ValueError("ignore_index: cannot be specified when target contains probabilities (torch)")
    ignore_index = -100 if ignore_index is None else rw.check_index(ignore_index, "ignore_index")
    label_smoothing = v.real_number(label_smoothing, "label_smoothing")
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing: must be between 0.0 and 1.0 (got {label_smoothing})")
    if not label_smoothing > 0.0:  # torch smooths only when label_smoothing > 0: negative or NaN is plain CE
        label_smoothing = 0.0
    return (ignore_index, label_smoothing, *rw.ce_extras(z_loss, softcap))


def _blas_matrix(a):
    """``a`` (2-D) as NumPy's matmul hands to BLAS without its slow fallback: C or F contiguous."""
    return a if a.flags.c_contiguous or a.flags.f_contiguous else np.ascontiguousarray(a)


def _chunk_size(value, rows, vocabulary, itemsize):
    if value is None:
        return min(max(rows, 1), default_chunk_rows(vocabulary, itemsize))
    return min(max(rows, 1), v.positive_int(value, "chunk_size"))


def _index_rows(t, ignore_index, classes, weight):
    """Checks the class indices (flat, row order) and returns the 'mean'
    denominator: the summed class weight of the rows not ignored."""
    flat = t.reshape(-1)
    counted = flat != ignore_index  # (NumPy 2 compares any width with any Python int exactly)
    bad = counted & ((flat < 0) | (flat >= classes))
    if bad.any():
        raise IndexError(f"target: class index {flat[np.argmax(bad)]} is out of bounds for {classes} classes")
    if weight is None:
        return float(np.count_nonzero(counted))
    return float(weight[flat[counted]].sum(dtype=np.float64))


def evaluate(mode, grad_output, out, input, linear_weight, target, linear_bias, weight, reduction, ignore_index,
             label_smoothing, chunk_size, z_loss=0.0, softcap=None):
    red = v.reduction(reduction)
    x = v.check_float(v.as_array(input, "input"), "input")
    if x.ndim not in (1, 2):
        raise ValueError(f"input: expected 1 or 2 dimensions (in_features) or (N, in_features), got shape {x.shape}")
    w_lin = v.check_float(v.as_array(linear_weight, "linear_weight"), "linear_weight")
    if w_lin.ndim < 2:
        raise ValueError(f"linear_weight: expected at least 2 dimensions (num_classes, ..., in_features), "
                         f"got shape {w_lin.shape}")
    features = x.shape[-1]
    if w_lin.shape[-1] != features:
        raise ValueError(f"linear_weight: its last dimension ({w_lin.shape[-1]}) must equal input's "
                         f"in_features ({features})")
    classes, out_features = w_lin.shape[0], w_lin.shape[1:-1]
    inner = math.prod(out_features)
    vocabulary = classes * inner
    if out_features and x.ndim == 1:
        raise ValueError(f"input: a K-dimensional linear_weight {w_lin.shape} requires batched input "
                         f"(N, {features}), got shape {x.shape}")
    b_lin = None
    if linear_bias is not None:
        b_lin = v.check_float(v.as_array(linear_bias, "linear_bias"), "linear_bias")
        if b_lin.shape != (classes, *out_features):
            raise ValueError(f"linear_bias: expected shape {(classes, *out_features)}, got {b_lin.shape}")
    batched = x.ndim == 2
    rows = x.shape[0] if batched else 1
    logits_shape = ((rows,) if batched else ()) + (classes, *out_features)
    loss_shape = ((rows,) if batched else ()) + tuple(out_features)
    t = v.as_array(target, "target")
    probs = v.is_float(t.dtype)
    options = kernel_options(ignore_index, label_smoothing, probs, z_loss, softcap)
    wobj = None
    if weight is not None:
        wobj = v.check_real(v.as_array(weight, "weight"), "weight")
    pairs = [(input, x), (linear_weight, w_lin), (linear_bias, b_lin), (weight, wobj)]
    rdtype, kdtype = v.result_dtype(*(pairs + ([(target, t)] if probs else [])))
    kw = rw.class_weight(wobj, classes, kdtype)
    rw.check_softcap(options[3], kdtype)
    if probs:
        if t.shape != logits_shape:
            raise ValueError(f"target: probability targets must have the logits' shape {logits_shape}, got {t.shape}")
        kt = rw.as_cube(v.for_kernel(t, kdtype, t.shape), (rows, classes, inner))
        denominator = float(rows * inner)
    else:
        if t.dtype.kind not in "iu":
            raise TypeError(f"target: expected an integer array of class indices or a float array of "
                            f"probabilities, got dtype {t.dtype}")
        kt = rw.index_target(t)
        if kt.shape != loss_shape and not (not batched and kt.shape == (1,)):
            raise ValueError(f"target: expected class indices of shape {loss_shape}, got {kt.shape}")
        kt = rw.as_cube(kt, (rows, inner))
        denominator = _index_rows(kt, options[0], classes, kw)

    # Every check is done: from here on only the kernels and the GEMMs run.
    kx = _blas_matrix(v.for_kernel(x, kdtype, x.shape).reshape(rows, features))
    kw_lin = _blas_matrix(rw.as_cube(v.for_kernel(w_lin, kdtype, w_lin.shape), (vocabulary, features)))
    kb = None if b_lin is None else np.ascontiguousarray(v.for_kernel(b_lin, kdtype, b_lin.shape)).reshape(vocabulary)
    want_value = mode != BACKWARD
    want_grad = mode in (BACKWARD, VALUE_AND_GRAD)
    if mode == PARTIAL:
        red = v.MEAN
    kred = v.NONE if red == v.NONE else v.SUM  # the kernel only sums: 'mean' divides by the denominator above
    loss_out = np.empty((rows, inner), kdtype) if (red == v.NONE and want_value) else None
    scale, kg, outs = 1.0, None, (None, None, None)
    if want_grad:
        scale, kg, g_src = v.grad_output(grad_output, loss_shape if red == v.NONE else (), kdtype)
        if kg is not None:
            kg = rw.as_cube(np.broadcast_to(kg, loss_shape), (rows, inner))
        if red == v.MEAN:
            scale = v.divide(scale, denominator)  # inf/NaN when nothing counts: only ignored rows, scaled by 0
        outs = v.outs(out, 3)
        sources = (x, w_lin, b_lin, t, wobj, g_src)
        for o, arr, name in zip(outs, (x, w_lin, b_lin), ("out[0]", "out[1]", "out[2]")):
            if o is None:
                continue
            if arr is None:
                raise ValueError(f"{name}: linear_bias is None, so it has no gradient")
            v.out_array(o, arr.shape, arr.dtype, sources, name)
        gx = _direct(outs[0], kdtype, (rows, features))
        gw = _direct(outs[1], kdtype, (vocabulary, features))
        gb = None if kb is None else np.zeros(vocabulary, kdtype)
    chunk = _chunk_size(chunk_size, rows, vocabulary, kdtype.itemsize)
    buffer = np.empty((chunk, vocabulary), kdtype)
    # The kernel turns the logits into G in place, except for a soft-capped
    # K-dimensional loss: its lanes path reads each logit again for the cap's
    # slope after writing G, so G gets a buffer of its own.
    gbuffer = np.empty_like(buffer) if want_grad and softcap is not None and inner > 1 else buffer
    block = max(1, min(vocabulary, buffer.nbytes // max(1, features * kdtype.itemsize)))
    product = np.empty((block, features), kdtype) if want_grad and rows > chunk else None
    total = 0.0
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        logits = buffer[: r1 - r0]
        xc = kx[r0:r1]
        np.matmul(xc, kw_lin.T, out=logits)
        if kb is not None:
            logits += kb
        cube = logits.reshape(r1 - r0, classes, inner)
        grad = gbuffer[: r1 - r0]
        s, _, errors, bad = _core.rowwise_call(
            _CE, want_value, want_grad, kred, scale, (cube,), kt[r0:r1], kw,
            None if kg is None else kg[r0:r1], None if loss_out is None else loss_out[r0:r1],
            (grad.reshape(cube.shape),) if want_grad else (), options)
        if errors & 1:  # (checked above; kept so a kernel error can never pass silently)
            raise IndexError(f"target: class index {bad} is out of bounds for {classes} classes")
        if errors:
            raise MemoryError("linear_cross_entropy: no memory for the kernel's scratch rows")
        total += s
        if not want_grad:
            continue
        np.matmul(grad, kw_lin, out=gx[r0:r1])
        if gb is not None:
            gb += grad.sum(axis=0)
        if r0 == 0:
            np.matmul(grad.T, xc, out=gw)
            continue
        for v0 in range(0, vocabulary, block):
            v1 = min(vocabulary, v0 + block)
            part = product[: v1 - v0]
            np.matmul(grad[:, v0:v1].T, xc, out=part)
            gw[v0:v1] += part
    if want_grad and rows == 0:
        gw[...] = 0
    if mode == PARTIAL:
        return Partial(total, denominator, rdtype)
    value = None
    if want_value:
        value = _value(loss_out, total, loss_shape, red, denominator, rdtype)
    if not want_grad:
        return value
    grads = (
        _to_input(gx.reshape(x.shape), x, outs[0]),
        _to_input(gw.reshape(w_lin.shape), w_lin, outs[1]),
        None if gb is None else _to_input(gb.reshape(b_lin.shape), b_lin, outs[2]),
    )
    return grads if mode == BACKWARD else (value, grads)


def _direct(out, kdtype, shape):
    """The buffer a gradient is computed in: the caller's ``out`` when it has
    the kernel dtype and is C-contiguous, else a new array."""
    if out is not None and out.dtype == kdtype and out.flags.c_contiguous:
        return out.reshape(shape)
    return np.empty(shape, kdtype)

