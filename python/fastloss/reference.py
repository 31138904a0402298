"""Pure-NumPy reference implementation of fastloss: every loss and its gradient.

Every loss ``f`` of :mod:`fastloss` has a twin ``reference.f`` here, and every
gradient ``f_backward`` a twin ``reference.f_backward``, with the same
arguments. They are written for clarity, not speed: plain float64 NumPy, one
function per loss and one per gradient, the formulas as torch 2.13 documents
and implements them. Nothing here is shared with the C++ kernels or with
``fastloss._elementwise``, so the test suite can compare the two, and users can
use this module to check a result.

Conventions (torch 2.13, checked against torch autograd):

* Arrays are converted to float64 (bfloat16/float16/float32/int inputs too);
  reduced results are ``numpy.float64`` scalars, ``reduction='none'`` gives a
  float64 array of the broadcast shape of ``input`` and ``target``.
* ``target`` broadcasts against ``input`` (torch warns about it; the reference
  does not). The gradient w.r.t. ``input`` is summed over the dimensions that
  ``input`` was broadcast along, so it has ``input``'s shape.
* ``weight`` must have exactly ``input``'s shape. Weighted ``'mean'`` is
  ``sum(w * l) / sum(w)`` for L1 and MSE, but ``mean(w * l)`` for Huber.
* The mean of nothing is NaN, the sum of nothing is 0.
* ``*_backward(..., grad_output=None)`` is the gradient of
  ``sum(grad_output * f(...))``; ``grad_output`` broadcasts to the loss's
  shape (``()`` for reduced losses), ``None`` means ones.
* NaN and inf propagate as IEEE arithmetic does; no floating-point warnings
  are emitted.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "l1_loss",
    "l1_loss_backward",
    "mse_loss",
    "mse_loss_backward",
    "smooth_l1_loss",
    "smooth_l1_loss_backward",
    "huber_loss",
    "huber_loss_backward",
]

_REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------------- helpers


def _quiet(fn):
    """Runs ``fn`` with NumPy's floating-point warnings off (inf - inf, 0/0 ...
    are expected results here, not accidents)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper


def _check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: {reduction!r} is not a valid value (expected 'none', 'mean' or 'sum')")


def _float64(array):
    return np.asarray(array).astype(np.float64)


def _inputs(input, target, weight, reduction):
    """``(x, t, w)`` as float64, broadcast to one shape (``w`` may be None)."""
    _check_reduction(reduction)
    x, t = _float64(input), _float64(target)
    w = None
    if weight is not None:
        w = _float64(weight)
        if w.shape != x.shape:
            raise ValueError(f"weight: shape {w.shape} must equal input's shape {x.shape}")
    shape = _broadcast_shapes(x.shape, t.shape)
    x, t = np.broadcast_to(x, shape), np.broadcast_to(t, shape)
    if w is not None:
        w = np.broadcast_to(w, shape)
    return x, t, w


def _broadcast_shapes(a, b):
    """NumPy's broadcasting rule for two shapes, spelled out (np.broadcast_shapes
    stops at 32 dimensions; arrays have up to 64). ValueError if they clash."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if any(p != q and 1 not in (p, q) for p, q in zip(a, b)):
        raise ValueError(f"shapes {a} and {b} cannot be broadcast together")
    return tuple(max(p, q) if 0 not in (p, q) else 0 for p, q in zip(a, b))


def _mean(values):
    """Mean with torch's convention for nothing: NaN."""
    return np.float64(np.nan) if values.size == 0 else np.float64(values.sum() / values.size)


def _reduce(losses, reduction, weight_total=None):
    """Applies ``reduction`` to per-element ``losses`` (already weighted).

    ``weight_total``: the divisor of a weighted 'mean' that divides by the
    weights (L1, MSE: ``sum(w)`` over ``weight`` as given); None: the count."""
    if reduction == "none":
        return np.asarray(losses, dtype=np.float64)
    if reduction == "sum":
        return np.float64(losses.sum())
    if weight_total is not None:
        return np.float64(losses.sum() / weight_total)
    return _mean(losses)


def _mean_scale(size, reduction, weight_total):
    """d(reduced loss) / d(per-element loss) for 'mean' (1 otherwise)."""
    if reduction != "mean":
        return 1.0
    if weight_total is not None:
        return 1.0 / weight_total
    return 1.0 / size if size else np.inf


def _grad_output(grad_output, loss_shape):
    """``grad_output`` as float64, broadcast to the loss's shape."""
    if grad_output is None:
        return np.ones(loss_shape)
    g = _float64(grad_output)
    try:
        fits = _broadcast_shapes(g.shape, loss_shape) == tuple(loss_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"grad_output: shape {g.shape} cannot be broadcast to {tuple(loss_shape)}")
    return np.broadcast_to(g, loss_shape)


def _chain(local_grad, input, reduction, weight, grad_output, weight_total=None):
    """Gradient w.r.t. ``input`` from the per-element derivative ``local_grad``
    (d l_i / d x_i, in the broadcast shape): applies ``grad_output``, the
    weight and the reduction (``weight_total`` as in :func:`_reduce`), then
    sums over the dimensions ``input`` was broadcast along."""
    shape = local_grad.shape
    loss_shape = shape if reduction == "none" else ()
    g = _grad_output(grad_output, loss_shape)
    grad = local_grad * g
    if weight is not None:
        grad = grad * weight
    grad = grad * _mean_scale(local_grad.size, reduction, weight_total)
    return _unbroadcast(np.broadcast_to(grad, shape), np.shape(input))


def _unbroadcast(grad, shape):
    """Sums ``grad`` down to ``shape`` (the inverse of broadcasting)."""
    lead = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return np.asarray(grad.sum(axis=axes, keepdims=True), dtype=np.float64).reshape(shape)


def _sign(d):
    """torch's sign for the abs backward: 1, -1, and 0 for +-0 and NaN."""
    return np.where(d > 0, 1.0, np.where(d < 0, -1.0, 0.0))


def _check_beta(beta):
    if beta < 0:
        raise ValueError(f"beta: must be >= 0 (got {beta})")


def _check_delta(delta):
    if not delta > 0:
        raise ValueError(f"delta: must be > 0 (got {delta})")


# ------------------------------------------------------------------ L1 loss


@_quiet
def l1_loss(input, target, reduction="mean", weight=None):
    """``l = w * |x - t|``; weighted 'mean' is ``sum(w*l) / sum(w)``."""
    x, t, w = _inputs(input, target, weight, reduction)
    losses = np.abs(x - t)
    if w is None:
        return _reduce(losses, reduction)
    return _reduce(losses * w, reduction, weight_total=_float64(weight).sum())


@_quiet
def l1_loss_backward(input, target, reduction="mean", weight=None, *, grad_output=None):
    """``d l / d x = w * sign(x - t)`` with ``sign(0) = sign(NaN) = 0``."""
    x, t, w = _inputs(input, target, weight, reduction)
    total = None if w is None else _float64(weight).sum()
    return _chain(_sign(x - t), input, reduction, w, grad_output, weight_total=total)


# ----------------------------------------------------------------- MSE loss


@_quiet
def mse_loss(input, target, reduction="mean", weight=None):
    """``l = w * (x - t)**2``; weighted 'mean' is ``sum(w*l) / sum(w)``."""
    x, t, w = _inputs(input, target, weight, reduction)
    losses = (x - t) ** 2
    if w is None:
        return _reduce(losses, reduction)
    return _reduce(losses * w, reduction, weight_total=_float64(weight).sum())


@_quiet
def mse_loss_backward(input, target, reduction="mean", weight=None, *, grad_output=None):
    """``d l / d x = 2 * w * (x - t)``."""
    x, t, w = _inputs(input, target, weight, reduction)
    total = None if w is None else _float64(weight).sum()
    return _chain(2.0 * (x - t), input, reduction, w, grad_output, weight_total=total)


# ----------------------------------------------------------- Smooth L1 loss


@_quiet
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """With ``z = |x - t|``: ``0.5 z**2 / beta`` if ``z < beta`` else
    ``z - 0.5 beta``; ``beta == 0`` is exactly the L1 loss."""
    _check_beta(beta)
    x, t, _ = _inputs(input, target, None, reduction)
    z = np.abs(x - t)
    if beta == 0:
        losses = z
    else:
        losses = np.where(z < beta, 0.5 * z**2 / beta, z - 0.5 * beta)
    return _reduce(losses, reduction)


@_quiet
def smooth_l1_loss_backward(input, target, reduction="mean", beta=1.0, *, grad_output=None):
    """``d l / d x = clip((x - t) / beta, -1, 1)`` (NaN stays NaN);
    ``beta == 0`` is the L1 gradient ``sign(x - t)``."""
    _check_beta(beta)
    x, t, _ = _inputs(input, target, None, reduction)
    d = x - t
    if beta == 0:
        local = _sign(d)
    else:
        local = np.where(d < -beta, -1.0, np.where(d > beta, 1.0, d / beta))
    return _chain(local, input, reduction, None, grad_output)


# --------------------------------------------------------------- Huber loss


@_quiet
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """With ``z = |x - t|``: ``0.5 z**2`` if ``z < delta`` else
    ``delta (z - 0.5 delta)``, times ``w``; weighted 'mean' is ``mean(w*l)``."""
    _check_delta(delta)
    x, t, w = _inputs(input, target, weight, reduction)
    z = np.abs(x - t)
    losses = np.where(z < delta, 0.5 * z**2, delta * (z - 0.5 * delta))
    if w is not None:
        losses = losses * w
    return _reduce(losses, reduction)


@_quiet
def huber_loss_backward(input, target, reduction="mean", delta=1.0, weight=None, *, grad_output=None):
    """``d l / d x = w * clip(x - t, -delta, delta)`` (NaN stays NaN)."""
    _check_delta(delta)
    x, t, w = _inputs(input, target, weight, reduction)
    d = x - t
    local = np.where(d < -delta, -delta, np.where(d > delta, delta, d))
    return _chain(local, input, reduction, w, grad_output)


def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
