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
  The likelihood and margin losses follow torch's own rules instead, stated
  in each docstring: BCE's ``target`` must equal ``input``'s shape and its
  ``weight``/``pos_weight`` broadcast *into* it; their ``'mean'`` is always
  ``sum(w * l) / numel``.
* Where torch raises ``RuntimeError`` (bad shapes, BCE values outside
  [0, 1]) the reference raises ``ValueError`` naming the argument; where
  torch rejects an option's type it raises ``TypeError``.
* The mean of nothing is NaN, the sum of nothing is 0.
* ``*_backward(..., grad_output=None)`` is the gradient of
  ``sum(grad_output * f(...))``; ``grad_output`` broadcasts to the loss's
  shape (``()`` for reduced losses), ``None`` means ones.
* NaN and inf propagate as IEEE arithmetic does; no floating-point warnings
  are emitted.
"""

from __future__ import annotations

import functools
import math
import numbers

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
    "binary_cross_entropy",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "soft_margin_loss",
    "soft_margin_loss_backward",
    "poisson_nll_loss",
    "poisson_nll_loss_backward",
    "gaussian_nll_loss",
    "gaussian_nll_loss_backward",
    "kl_div",
    "kl_div_backward",
    "hinge_embedding_loss",
    "hinge_embedding_loss_backward",
    "margin_ranking_loss",
    "margin_ranking_loss_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "nll_loss",
    "nll_loss_backward",
    "multilabel_soft_margin_loss",
    "multilabel_soft_margin_loss_backward",
    "multi_margin_loss",
    "multi_margin_loss_backward",
    "multilabel_margin_loss",
    "multilabel_margin_loss_backward",
    "ctc_loss",
    "ctc_loss_backward",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_backward",
    "log_cosh_loss",
    "log_cosh_loss_backward",
    "pinball_loss",
    "pinball_loss_backward",
    "jensen_shannon_divergence",
    "jensen_shannon_divergence_backward",
    "poly1_cross_entropy",
    "poly1_cross_entropy_backward",
    "softmax_focal_loss",
    "softmax_focal_loss_backward",
    "dice_loss",
    "dice_loss_backward",
    "pairwise_distance",
    "pairwise_distance_backward",
    "cosine_distance",
    "cosine_distance_backward",
    "cosine_embedding_loss",
    "cosine_embedding_loss_backward",
    "triplet_margin_loss",
    "triplet_margin_loss_backward",
    "triplet_margin_with_distance_loss",
    "triplet_margin_with_distance_loss_backward",
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


def _broadcasts_into(shape, target):
    """True when ``shape`` broadcasts to exactly ``target`` (does not grow it)."""
    try:
        return _broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def _grad_output(grad_output, loss_shape):
    """``grad_output`` as float64, broadcast to the loss's shape."""
    if grad_output is None:
        return np.ones(loss_shape)
    g = _float64(grad_output)
    if not _broadcasts_into(g.shape, loss_shape):
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


# ------------------------------------- likelihood and margin losses: helpers

# ATen's BCE gradient clamps its denominator at `constexpr float EPSILON =
# 1e-12`, a float: in float64 the clamp is float32(1e-12), not 1e-12.
_BCE_EPSILON = float(np.float32(1e-12))
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_bool(name, value):
    """torch's argument parser takes only a bool for these flags."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: must be a bool (got {type(value).__name__})")


def _check_real(name, value):
    """torch's argument parser takes a float or an int for these options."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be a float (got {type(value).__name__})")


def _broadcast_all(names, arrays):
    """``arrays`` (float64) broadcast to their common shape; ValueError naming
    the first argument that does not fit the ones before it."""
    shape = arrays[0].shape
    for name, a in zip(names[1:], arrays[1:]):
        try:
            shape = _broadcast_shapes(shape, a.shape)
        except ValueError:
            raise ValueError(f"{name}: shape {a.shape} cannot be broadcast with {names[0]}'s shape "
                             f"{arrays[0].shape}") from None
    return shape, [np.broadcast_to(a, shape) for a in arrays]


def _into(name, array, shape):
    """``array`` as float64 broadcast to ``shape``, which must not grow (torch
    multiplies it in place into a tensor of that shape): ValueError if it does."""
    a = _float64(array)
    if not _broadcasts_into(a.shape, shape):
        raise ValueError(f"{name}: shape {a.shape} cannot be broadcast to input's shape {tuple(shape)}")
    return np.broadcast_to(a, shape)


def _pair(input, target, reduction):
    """``(x, t)`` as float64, broadcast together both ways (composite torch
    losses: poisson_nll_loss, kl_div, hinge_embedding_loss)."""
    _check_reduction(reduction)
    _, (x, t) = _broadcast_all(("input", "target"), (_float64(input), _float64(target)))
    return x, t


def _same_shape_target(x, t):
    if t.shape != x.shape:
        raise ValueError(f"target: shape {t.shape} must equal input's shape {x.shape}")


def _in_unit_interval(name, a):
    # NaN fails both comparisons, so it is rejected too (as torch's TORCH_CHECK).
    if not np.all((a >= 0) & (a <= 1)):
        raise ValueError(f"{name}: all elements must be between 0 and 1 (NaN is not)")


def _log_sigmoid(x):
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, finite for every finite x."""
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------- binary cross entropy


def _bce_inputs(input, target, weight, reduction):
    _check_reduction(reduction)
    x, t = _float64(input), _float64(target)
    _same_shape_target(x, t)
    w = None if weight is None else _into("weight", weight, x.shape)
    _in_unit_interval("input", x)
    _in_unit_interval("target", t)
    return x, t, w


@_quiet
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``l = w * ((t - 1) * max(log1p(-x), -100) - t * max(log(x), -100))``.

    ``target`` must have ``input``'s shape; ``weight`` broadcasts into it.
    ``'mean'`` is ``sum(l) / numel`` even with ``weight``. ``input`` or
    ``target`` outside [0, 1] or NaN → ValueError (torch raises). The clamp at
    -100 gives 100 for x in {0, 1} against the opposite target, and torch's
    signed zeros (x=1, t=1 → -0.0)."""
    x, t, w = _bce_inputs(input, target, weight, reduction)
    losses = (t - 1.0) * np.maximum(np.log1p(-x), -100.0) - t * np.maximum(np.log(x), -100.0)
    if w is not None:
        losses = losses * w
    return _reduce(losses, reduction)


@_quiet
def binary_cross_entropy_backward(input, target, weight=None, reduction="mean", *, grad_output=None):
    """``d l / d x = w * (x - t) / max((1 - x) * x, 1e-12)`` (1e-12 rounded
    to float32, as ATen's constant): ±1e12 at x in {0, 1}."""
    x, t, w = _bce_inputs(input, target, weight, reduction)
    local = (x - t) / np.maximum((1.0 - x) * x, _BCE_EPSILON)
    return _chain(local, input, reduction, w, grad_output)


def _bce_logits_inputs(input, target, weight, pos_weight, reduction):
    _check_reduction(reduction)
    x, t = _float64(input), _float64(target)
    _same_shape_target(x, t)
    w = None if weight is None else _into("weight", weight, x.shape)
    p = None if pos_weight is None else _into("pos_weight", pos_weight, x.shape)
    return x, t, w, p


@_quiet
def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """``l = w * ((1 - t) * x - (1 + (p - 1) * t) * log_sigmoid(x))`` with
    ``log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))`` (finite for all finite
    x: x=-120, t=1 gives 120).

    ``target`` must have ``input``'s shape; ``weight`` and ``pos_weight``
    (``p``) broadcast into it by NumPy's rule: a (C,) ``pos_weight`` meets the
    last dimension, (2, 1) works for an input (1, 2, 3), (2,) or (1, 1, 2, 3)
    do not (ValueError; torch raises). ``'mean'`` is ``sum(l) / numel``."""
    x, t, w, p = _bce_logits_inputs(input, target, weight, pos_weight, reduction)
    log_weight = 1.0 if p is None else (p - 1.0) * t + 1.0
    losses = (1.0 - t) * x - log_weight * _log_sigmoid(x)
    if w is not None:
        losses = losses * w
    return _reduce(losses, reduction)


@_quiet
def binary_cross_entropy_with_logits_backward(input, target, weight=None, reduction="mean", pos_weight=None, *,
                                              grad_output=None):
    """``d l / d x = w * ((p * t + 1 - t) * sigmoid(x) - p * t)``, which is
    ``w * (sigmoid(x) - t)`` without ``pos_weight``."""
    x, t, w, p = _bce_logits_inputs(input, target, weight, pos_weight, reduction)
    if p is None:
        local = _sigmoid(x) - t
    else:
        pt = p * t
        local = (pt + 1.0 - t) * _sigmoid(x) - pt
    return _chain(local, input, reduction, w, grad_output)


# --------------------------------------------------------- soft margin loss


def _soft_margin_inputs(input, target, reduction):
    _check_reduction(reduction)
    x = _float64(input)
    # torch writes -input * target in place into an input-shaped tensor.
    return x, _into("target", target, x.shape)


@_quiet
def soft_margin_loss(input, target, reduction="mean"):
    """``l = softplus(-t * x) = max(z, 0) + log1p(exp(-|z|))``, ``z = -t * x``.

    ``target`` broadcasts into ``input``'s shape (ValueError otherwise, torch
    raises). torch computes ``log1p(exp(z))``, which overflows to inf for z
    beyond ~88.7 in float32 (~709.8 in float64; pytorch #77529); this stable
    form equals it wherever torch is finite and gives ``z`` where it is not."""
    x, t = _soft_margin_inputs(input, target, reduction)
    z = -x * t
    return _reduce(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))), reduction)


@_quiet
def soft_margin_loss_backward(input, target, reduction="mean", *, grad_output=None):
    """``d l / d x = -t * sigmoid(-t * x)``; torch's ``-t * e / (1 + e)``,
    ``e = exp(-t * x)``, is NaN where ``e`` overflows, this is ``-t`` there."""
    x, t = _soft_margin_inputs(input, target, reduction)
    return _chain(-t * _sigmoid(-x * t), input, reduction, None, grad_output)


# --------------------------------------------------------- Poisson NLL loss


def _poisson_inputs(input, target, log_input, full, eps, reduction):
    _check_bool("log_input", log_input)
    _check_bool("full", full)
    _check_real("eps", eps)
    return _pair(input, target, reduction)


@_quiet
def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """``l = exp(x) - t * x`` (``log_input``) or ``x - t * log(x + eps)``,
    plus with ``full`` the Stirling term ``t*log(t) - t + 0.5*log(2*pi*t)``
    where ``t > 1`` (torch's ``masked_fill(t <= 1, 0)``: a NaN target keeps
    its NaN term).

    ``input`` and ``target`` broadcast together. With ``log_input=False`` a
    negative ``x + eps`` gives a NaN loss (and a finite gradient), as torch."""
    x, t = _poisson_inputs(input, target, log_input, full, eps, reduction)
    losses = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        stirling = t * np.log(t) - t + 0.5 * np.log(2.0 * math.pi * t)
        losses = losses + np.where(t <= 1, 0.0, stirling)
    return _reduce(losses, reduction)


@_quiet
def poisson_nll_loss_backward(input, target, log_input=True, full=False, eps=1e-8, reduction="mean", *,
                              grad_output=None):
    """``d l / d x = exp(x) - t`` (``log_input``) or ``1 - t / (x + eps)``;
    the Stirling term does not depend on ``x``."""
    x, t = _poisson_inputs(input, target, log_input, full, eps, reduction)
    local = np.exp(x) - t if log_input else 1.0 - t / (x + eps)
    return _chain(local, input, reduction, None, grad_output)


# -------------------------------------------------------- Gaussian NLL loss


def _gaussian_inputs(input, target, var, eps, reduction):
    """``(x, t, v, v_shape)``: broadcast float64 arrays and the shape ``var``'s
    gradient takes (None for a float ``var``), with torch's checks in torch's
    order (negative var, var's shape, reduction)."""
    _check_real("eps", eps)
    x, t = _float64(input), _float64(target)
    if isinstance(var, float):  # torch's test: Python floats (and np.float64)
        if var < 0:
            raise ValueError("var: has negative entries")
        v, v_shape = np.full(x.shape, var), None
    elif isinstance(var, (bool, numbers.Integral)) and not isinstance(var, np.ndarray):
        raise TypeError(f"var: must be an array or a float (got {type(var).__name__})")
    else:
        v = _float64(var)
        v_shape = v.shape
        if np.any(v < 0):
            raise ValueError("var: has negative entries")
        if v.shape != x.shape:
            if x.shape[:-1] == v.shape:
                v = v[..., np.newaxis]  # homoscedastic: one variance per row
            elif not (v.ndim == x.ndim and sum(q for p, q in zip(x.shape, v.shape) if p != q) == 1):
                raise ValueError(f"var: shape {v.shape} is not input's shape {x.shape}, input's shape without "
                                 "its last dimension, nor input's shape with one dimension of size 1")
    _check_reduction(reduction)
    _, (x, t, v) = _broadcast_all(("input", "target", "var"), (x, t, v))
    return x, t, v, v_shape


@_quiet
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """``l = 0.5 * (log(v) + (x - t)**2 / v)`` with ``v = max(var, eps)``,
    plus ``0.5 * log(2*pi)`` with ``full``.

    ``var``: a Python float (≥ 0), or an array ≥ 0 of ``input``'s shape, of
    ``input``'s shape without its last dimension (unsqueezed), or of the same
    number of dimensions whose mismatched sizes sum to 1 (one dimension of
    size 1); anything else → ValueError, as torch. A Python int → TypeError
    (torch). ``input``, ``target`` and ``var`` then broadcast together. NaN
    variances pass the check and give NaN."""
    x, t, v, _ = _gaussian_inputs(input, target, var, eps, reduction)
    v = np.maximum(v, eps)
    losses = 0.5 * (np.log(v) + (x - t) ** 2 / v)
    if full:
        losses = losses + _HALF_LOG_2PI
    return _reduce(losses, reduction)


@_quiet
def gaussian_nll_loss_backward(input, target, var, full=False, eps=1e-6, reduction="mean", *, grad_output=None):
    """``(d l / d x, d l / d var) = ((x - t) / v, 0.5 * (1 / v - (x - t)**2 / v**2))``
    with ``v = max(var, eps)``: torch clamps a copy of ``var`` under
    ``no_grad``, so the gradient reaches ``var`` as if the clamp were the
    identity (var=1e-9, eps=1e-6, x - t = 1: -4.999995e11). The second
    gradient is None for a float ``var``, else shaped like ``var``."""
    x, t, v, v_shape = _gaussian_inputs(input, target, var, eps, reduction)
    v = np.maximum(v, eps)
    d = x - t
    grad_input = _chain(d / v, input, reduction, None, grad_output)
    if v_shape is None:
        return grad_input, None
    # A per-row var (input's shape without its last dimension; compared with
    # input's own shape, not the broadcast one) was unsqueezed.
    row = v_shape != np.shape(input) and np.shape(input)[:-1] == v_shape
    unsqueezed = v_shape + (1,) if row else v_shape
    local_var = 0.5 * (1.0 / v - d**2 / v**2)
    grad_var = _chain(local_var, np.empty(unsqueezed), reduction, None, grad_output)
    return grad_input, grad_var.reshape(v_shape)


# ------------------------------------------------------------------- KL div

_KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _kl_inputs(input, target, reduction, log_target):
    if not isinstance(reduction, str) or reduction not in _KL_REDUCTIONS:
        raise ValueError(f"reduction: {reduction!r} is not a valid value "
                         "(expected 'none', 'mean', 'sum' or 'batchmean')")
    _check_bool("log_target", log_target)
    x, t = _pair(input, target, "none")
    # 'batchmean' divides the sum by input's first size (input's, not the
    # broadcast shape's; nothing for a 0-d input), as torch.
    batch = np.ndim(input) and np.shape(input)[0]
    return x, t, batch


def _xlogx(t):
    """``t * log(t)``, 0 where ``t == 0`` (NaN for t < 0): torch.xlogy(t, t)."""
    return np.where(t == 0, 0.0, t * np.log(t))


@_quiet
def kl_div(input, target, reduction="mean", log_target=False):
    """``l = xlogy(t, t) - t * x`` (``t*log(t) - t*x``, 0 where t == 0, NaN
    where t < 0) or, with ``log_target``, ``exp(t) * (t - x)``.

    ``input`` and ``target`` broadcast together. ``'batchmean'`` is
    ``sum(l) / input.shape[0]`` (``sum(l)`` for a 0-d input); ``'mean'``
    divides by the number of elements. torch warns on ``'mean'``
    (UserWarning); the reference does not."""
    x, t, batch = _kl_inputs(input, target, reduction, log_target)
    losses = np.exp(t) * (t - x) if log_target else _xlogx(t) - t * x
    if reduction == "batchmean":
        total = losses.sum()
        return np.float64(total / batch) if np.ndim(input) else np.float64(total)
    return _reduce(losses, reduction)


@_quiet
def kl_div_backward(input, target, reduction="mean", log_target=False, *, grad_output=None):
    """``d l / d x = -t`` (``-exp(t)`` with ``log_target``): any target,
    also t < 0 whose loss is NaN."""
    x, t, batch = _kl_inputs(input, target, reduction, log_target)
    local = -np.exp(t) if log_target else -t
    if reduction == "batchmean":
        scale = 1.0 / batch if np.ndim(input) and batch else (np.inf if np.ndim(input) else 1.0)
        return _chain(local * scale, input, "sum", None, grad_output)
    return _chain(local, input, reduction, None, grad_output)


# ----------------------------------------------------- hinge embedding loss


@_quiet
def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """``l = [t != 1] * max(margin - x, 0) + [t != -1] * x`` (torch's
    ``where`` terms: t = 1 gives x, t = -1 the hinge, any other target both).

    ``input`` and ``target`` broadcast together."""
    _check_real("margin", margin)
    x, t = _pair(input, target, reduction)
    losses = np.where(t != 1, np.maximum(margin - x, 0.0), 0.0) + np.where(t != -1, x, 0.0)
    return _reduce(losses, reduction)


@_quiet
def hinge_embedding_loss_backward(input, target, margin=1.0, reduction="mean", *, grad_output=None):
    """``d l / d x = -[t != 1][margin - x >= 0] + [t != -1]``: torch's
    ``clamp_min`` passes the gradient at the kink (margin - x == 0), not for
    NaN."""
    _check_real("margin", margin)
    x, t = _pair(input, target, reduction)
    hinge = np.where(margin - x >= 0, -1.0, 0.0)
    local = np.where(t != 1, hinge, 0.0) + np.where(t != -1, 1.0, 0.0)
    return _chain(local, input, reduction, None, grad_output)


# ------------------------------------------------------ margin ranking loss


def _ranking_inputs(input1, input2, target, margin, reduction):
    _check_real("margin", margin)
    _check_reduction(reduction)
    arrays = (_float64(input1), _float64(input2), _float64(target))
    names = ("input1", "input2", "target")
    for name, a in zip(names[1:], arrays[1:]):
        if a.ndim != arrays[0].ndim:
            raise ValueError(f"{name}: has {a.ndim} dimensions, input1 has {arrays[0].ndim} "
                             "(all three must have the same number)")
    _, (x1, x2, t) = _broadcast_all(names, arrays)
    return x1, x2, t


@_quiet
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``l = max(-t * (x1 - x2) + margin, 0)``.

    The three arrays must have the same number of dimensions (ValueError,
    torch raises) and then broadcast together."""
    x1, x2, t = _ranking_inputs(input1, input2, target, margin, reduction)
    return _reduce(np.maximum(-t * (x1 - x2) + margin, 0.0), reduction)


@_quiet
def margin_ranking_loss_backward(input1, input2, target, margin=0.0, reduction="mean", *, grad_output=None):
    """``(d l / d x1, d l / d x2) = (-t, t) * [-t * (x1 - x2) + margin >= 0]``
    (the gradient passes at the kink, not for NaN), each summed to its
    input's shape."""
    x1, x2, t = _ranking_inputs(input1, input2, target, margin, reduction)
    local = np.where(-t * (x1 - x2) + margin >= 0, 1.0, 0.0) * -t
    return (_chain(local, input1, reduction, None, grad_output),
            _chain(-local, input2, reduction, None, grad_output))
# -------------------------------------------------------- class-axis losses
#
# Inputs are (C), (N, C) or (N, C, d1, ..., dk): the class axis is axis 1
# (axis 0 for a 1-D input). The helpers move it last, so every formula below
# reads "for each row, over its classes".


def _class_rows(input):
    """``input`` as float64 rows ``(..., C)`` with the class axis last, and
    the shape of the loss per row (``()`` for a 1-D input)."""
    x = _float64(input)
    if x.ndim == 0:
        raise ValueError("input: expected 1 or more dimensions (got 0)")
    if x.ndim == 1:
        return x[np.newaxis, :], ()
    return np.moveaxis(x, 1, -1), (x.shape[0],) + x.shape[2:]


def _rows_to_input(grad_rows, input):
    """The inverse of :func:`_class_rows` for a gradient."""
    if np.ndim(input) == 1:
        return grad_rows[0]
    return np.moveaxis(grad_rows, -1, 1)


def _class_indices(target, rows_shape, classes, ignore_index):
    """Integer class indices of ``rows_shape``, checked: IndexError for an
    index outside [0, classes) that is not ``ignore_index``. Returns
    ``(indices with ignored rows set to 0, mask of counted rows)``."""
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype {t.dtype}")
    t = t.astype(np.int64) if not (t.dtype.kind == "u" and t.itemsize == 8) else t
    if rows_shape == ():
        if t.size != 1:
            raise ValueError(f"target: a 1-D input takes one class index, got shape {t.shape}")
        t = t.reshape(1)
        rows_shape = (1,)
    elif t.shape != rows_shape:
        raise ValueError(f"target: expected shape {rows_shape}, got {t.shape}")
    counted = t != ignore_index if ignore_index is not None else np.ones(t.shape, bool)
    bad = counted & ((t < 0) | (t >= classes))
    if bad.any():
        raise IndexError(f"target: class index {t[bad].flat[0]} is out of bounds for {classes} classes")
    return np.where(counted, t, 0).astype(np.int64), counted


def _class_weight(weight, classes):
    if weight is None:
        return np.ones(classes)
    w = _float64(weight)
    if w.shape != (classes,):
        raise ValueError(f"weight: expected shape ({classes},), got {w.shape}")
    return w


def _log_softmax(x):
    """Along the last axis: ``x - max - log(sum(exp(x - max)))``; a row with
    +inf, NaN or only -inf is NaN throughout (torch's log_softmax)."""
    m = np.max(x, axis=-1, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _reduce_rows(losses, reduction, denominator):
    """'none': the per-row losses; 'sum'; 'mean': sum / denominator (NaN for 0/0)."""
    if reduction == "none":
        return np.asarray(losses, np.float64)
    total = losses.sum()
    if reduction == "sum":
        return np.float64(total)
    return np.float64(total / denominator)


def _row_grad_output(grad_output, loss_shape, reduction, denominator):
    """Per row: d(reduced loss) / d(row loss) times ``grad_output``."""
    g = _grad_output(grad_output, loss_shape if reduction == "none" else ())
    if reduction == "mean":
        g = g / denominator
    return np.broadcast_to(g, loss_shape if loss_shape != () else ())


def _cap_and_z(x, z_loss, softcap):
    """The logits after ``softcap * tanh(x / softcap)`` (unchanged for None),
    their slope ``1 - tanh^2`` (None without a cap) and the checked z_loss."""
    _check_real("z_loss", z_loss)
    if not math.isfinite(z_loss):
        raise ValueError(f"z_loss: must be finite (got {z_loss})")
    if softcap is None:
        return x, None, float(z_loss)
    _check_real("softcap", softcap)
    if not (softcap > 0 and math.isfinite(softcap)):
        raise ValueError(f"softcap: must be a finite number > 0 or None (got {softcap})")
    u = x / softcap
    e = np.exp(-2 * np.abs(u))
    return softcap * np.tanh(u), 4 * e / (1 + e) ** 2, float(z_loss)  # 1 - tanh^2 without cancellation


def _row_logsumexp(x):
    m = np.max(x, axis=-1)
    with np.errstate(invalid="ignore"):
        return m + np.log(np.sum(np.exp(x - m[..., np.newaxis]), axis=-1))


def _cross_entropy_parts(input, target, weight, ignore_index, reduction, label_smoothing):
    _check_reduction(reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index: must be an int (got {type(ignore_index).__name__})")
    _check_real("label_smoothing", label_smoothing)
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing: must be between 0.0 and 1.0 (got {label_smoothing})")
    x, loss_shape = _class_rows(input)
    classes = x.shape[-1]
    w = _class_weight(weight, classes)
    t = np.asarray(target)
    probabilities = t.dtype.kind == "f" or t.dtype.name == "bfloat16"
    if probabilities:
        if ignore_index >= 0:
            raise ValueError("ignore_index: is not supported for floating point (probability) targets")
        if t.shape != np.shape(input):
            raise ValueError(f"target: probability targets must have input's shape {np.shape(input)}")
        p, _ = _class_rows(t)
        return x, loss_shape, w, ("probabilities", p)
    y, counted = _class_indices(target, loss_shape, classes, ignore_index)
    return x, loss_shape, w, ("indices", y.reshape(x.shape[:-1]), counted.reshape(x.shape[:-1]))


@_quiet
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0,
                  softcap=None):
    """With ``lp = log_softmax(input)`` over the classes (axis 1; axis 0 of a
    1-D input), ``e = label_smoothing``, ``C`` classes and class weights ``w``:

    * class indices ``y``: ``l = (1 - e) * (-w[y] * lp[y]) + (e / C) * sum_c(-w[c] * lp[c])``,
      0 for rows whose target is ``ignore_index``; ``'mean'`` is
      ``sum(l) / sum(w[y])`` over the other rows (NaN if there are none).
      An index outside [0, C) other than ``ignore_index`` raises IndexError.
    * probabilities ``t`` (float, ``input``'s shape): with
      ``t' = (1 - e) * t + e / C``, ``l = -sum_c(w[c] * t'[c] * lp[c])``;
      ``'mean'`` divides by the number of rows.

    Beyond torch: ``softcap`` replaces ``input`` by ``softcap * tanh(input /
    softcap)`` first; ``z_loss`` adds ``z_loss * lse**2`` (``lse`` the row's
    logsumexp of those logits), times ``w[y]`` for class indices."""
    x, loss_shape, w, target_parts = _cross_entropy_parts(input, target, weight, ignore_index, reduction,
                                                         label_smoothing)
    x, _, z = _cap_and_z(x, z_loss, softcap)
    lp = _log_softmax(x)
    lse2 = z * _row_logsumexp(x) ** 2 if z != 0 else 0.0
    classes = x.shape[-1]
    e = label_smoothing if label_smoothing > 0 else 0.0  # torch smooths only when > 0 (negative, NaN: none)
    if target_parts[0] == "probabilities":
        t = target_parts[1] * (1 - e) + e / classes
        losses = -np.sum(w * t * lp, axis=-1) + lse2
        return _reduce_rows(losses.reshape(loss_shape), reduction, losses.size)
    _, y, counted = target_parts
    lp_y = np.take_along_axis(lp, y[..., np.newaxis], axis=-1)[..., 0]
    w_y = np.where(counted, w[y], 0.0)
    losses = np.where(counted, -(w_y * lp_y), 0.0)
    if e != 0:
        smooth = np.where(counted, -np.sum(w * lp, axis=-1), 0.0)
        losses = (1 - e) * losses + (e / classes) * smooth
    if z != 0:
        losses = losses + np.where(counted, w_y * lse2, 0.0)
    return _reduce_rows(losses.reshape(loss_shape), reduction, w_y.sum())


@_quiet
def cross_entropy_backward(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                           z_loss=0.0, softcap=None, *, grad_output=None):
    """With ``p = softmax(input)``: class indices,
    ``dl/dx = (w[y] (1 - e) + (e / C) sum(w)) p - w[y] (1 - e) onehot(y) - (e / C) w``
    (0 for ignored rows); probabilities, ``dl/dx = sum(w t') p - w t'``.
    z_loss adds ``2 z lse p`` (times ``w[y]``); softcap multiplies by ``1 - tanh(x / softcap)**2``."""
    x, loss_shape, w, target_parts = _cross_entropy_parts(input, target, weight, ignore_index, reduction,
                                                         label_smoothing)
    x, slope, z = _cap_and_z(x, z_loss, softcap)
    p = np.exp(_log_softmax(x))
    zterm = 2 * z * _row_logsumexp(x)[..., np.newaxis] * p if z != 0 else 0.0
    classes = x.shape[-1]
    e = label_smoothing if label_smoothing > 0 else 0.0  # torch smooths only when > 0 (negative, NaN: none)
    if target_parts[0] == "probabilities":
        wt = w * (target_parts[1] * (1 - e) + e / classes)
        local = np.sum(wt, axis=-1, keepdims=True) * p - wt + zterm
        denominator = np.prod(x.shape[:-1])
    else:
        _, y, counted = target_parts
        w_y = np.where(counted, w[y], 0.0)[..., np.newaxis]
        onehot = np.arange(classes) == y[..., np.newaxis]
        local = (w_y * (1 - e) + (e / classes) * w.sum()) * p - w_y * (1 - e) * onehot - (e / classes) * w
        local = local + w_y * zterm
        denominator = w_y.sum()
    if slope is not None:
        local = local * slope
    g = _row_grad_output(grad_output, loss_shape, reduction, denominator)
    g = np.reshape(g, x.shape[:-1])[..., np.newaxis]
    if target_parts[0] == "indices":
        # Ignored rows: 0 * softmax (NaN where the row is not finite, as
        # torch's log_softmax backward), also when 'mean' divides by 0.
        return _rows_to_input(np.where(counted[..., np.newaxis], local * g, 0.0 * p), input)
    return _rows_to_input(local * g, input)


def _linear_logits(input, linear_weight, linear_bias):
    x, w = _float64(input), _float64(linear_weight)
    if x.ndim not in (1, 2) or w.ndim < 2 or w.shape[-1] != x.shape[-1]:
        raise ValueError(f"input {x.shape} and linear_weight {w.shape}: expected (H) or (N, H) and (C, ..., H)")
    logits = x @ w.reshape(-1, w.shape[-1]).T
    if linear_bias is not None:
        logits = logits + _float64(linear_bias).reshape(-1)
    return x, w, logits.reshape(x.shape[:-1] + w.shape[:-1])


@_quiet
def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0, softcap=None):
    """``cross_entropy(input @ W.T + b, target, ...)`` with the logits
    reshaped to ``(N, C, d1, ..., dk)`` for a ``(C, d1, ..., dk, H)``
    ``linear_weight``; ``ignore_index=None`` is -100 (torch). ``chunk_size``
    is fastloss's and changes nothing here (the logits are formed whole)."""
    _, _, logits = _linear_logits(input, linear_weight, linear_bias)
    return cross_entropy(logits, target, weight, -100 if ignore_index is None else ignore_index, reduction,
                         label_smoothing, z_loss, softcap)


@_quiet
def linear_cross_entropy_backward(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                                  ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0, softcap=None,
                                  grad_output=None):
    """With ``G`` = :func:`cross_entropy_backward` at the logits (as (N, V)):
    ``(G @ W, G.T @ input, G.sum(0))`` (the last None without a bias)."""
    x, w, logits = _linear_logits(input, linear_weight, linear_bias)
    g = cross_entropy_backward(logits, target, weight, -100 if ignore_index is None else ignore_index, reduction,
                               label_smoothing, z_loss, softcap, grad_output=grad_output)
    g2 = np.reshape(g, (-1, math.prod(w.shape[:-1])))
    w2 = w.reshape(-1, w.shape[-1])
    grad_input = (g2 @ w2).reshape(x.shape)
    grad_weight = (g2.T @ x.reshape(-1, x.shape[-1])).reshape(w.shape)
    grad_bias = None if linear_bias is None else g2.sum(0).reshape(w.shape[:-1])
    return grad_input, grad_weight, grad_bias


def _nll_parts(input, target, weight, ignore_index, reduction):
    _check_reduction(reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index: must be an int (got {type(ignore_index).__name__})")
    x, loss_shape = _class_rows(input)
    classes = x.shape[-1]
    w = _class_weight(weight, classes)
    y, counted = _class_indices(target, loss_shape, classes, ignore_index)
    return x, loss_shape, w, y.reshape(x.shape[:-1]), counted.reshape(x.shape[:-1])


@_quiet
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """``l = -w[y] * input[y]`` (``input`` holds log-probabilities; not
    renormalised), 0 for rows whose target is ``ignore_index``; ``'mean'`` is
    ``sum(l) / sum(w[y])`` over the other rows (NaN if there are none)."""
    x, loss_shape, w, y, counted = _nll_parts(input, target, weight, ignore_index, reduction)
    x_y = np.take_along_axis(x, y[..., np.newaxis], axis=-1)[..., 0]
    w_y = np.where(counted, w[y], 0.0)
    losses = np.where(counted, -(w_y * x_y), 0.0)
    return _reduce_rows(losses.reshape(loss_shape), reduction, w_y.sum())


@_quiet
def nll_loss_backward(input, target, weight=None, ignore_index=-100, reduction="mean", *, grad_output=None):
    """``dl/dx = -w[y]`` at class ``y``, 0 elsewhere and for ignored rows
    (a zero total weight under 'mean' makes the counted entries NaN, as torch)."""
    x, loss_shape, w, y, counted = _nll_parts(input, target, weight, ignore_index, reduction)
    w_y = np.where(counted, w[y], 0.0)
    onehot = (np.arange(x.shape[-1]) == y[..., np.newaxis]) & counted[..., np.newaxis]
    g = np.reshape(_row_grad_output(grad_output, loss_shape, reduction, w_y.sum()), x.shape[:-1])
    local = np.where(onehot, -(w_y * g)[..., np.newaxis], 0.0)
    return _rows_to_input(local, input)


def _softplus(x):
    """``log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``, finite for finite x."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _multilabel_soft_margin_inputs(input, target, weight, reduction):
    _check_reduction(reduction)
    x, t = _float64(input), _float64(target)
    if x.ndim == 0:
        raise ValueError("input: expected 1 or more dimensions (got 0)")
    _same_shape_target(x, t)
    w = None if weight is None else _into("weight", weight, x.shape)
    return x, t, w


@_quiet
def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    """Per row (the last axis holds the C classes):
    ``l = mean_c(w * (t * softplus(-x) + (1 - t) * softplus(x)))`` — torch's
    ``-(t log_sigmoid(x) + (1 - t) log_sigmoid(-x))``; ``weight`` broadcasts
    into input's shape; 'mean' averages the rows."""
    x, t, w = _multilabel_soft_margin_inputs(input, target, weight, reduction)
    losses = t * _softplus(-x) + (1.0 - t) * _softplus(x)
    if w is not None:
        losses = losses * w
    rows = losses.sum(axis=-1) / x.shape[-1]
    return _reduce_rows(rows, reduction, rows.size)


@_quiet
def multilabel_soft_margin_loss_backward(input, target, weight=None, reduction="mean", *, grad_output=None):
    """``dl/dx = w * (sigmoid(x) - t) / C``."""
    x, t, w = _multilabel_soft_margin_inputs(input, target, weight, reduction)
    local = (_sigmoid(x) - t) / x.shape[-1]
    if w is not None:
        local = local * w
    g = _row_grad_output(grad_output, x.shape[:-1], reduction, int(np.prod(x.shape[:-1])))
    return local * np.reshape(g, x.shape[:-1])[..., np.newaxis]


def _matrix(input):
    """(C) or (N, C) as float64 rows (N, C); a 0-d input is one class."""
    x = _float64(input)
    if x.ndim > 2:
        raise ValueError(f"input: expected a vector or a matrix, got shape {x.shape}")
    return x.reshape(1, -1) if x.ndim < 2 else x


def _multi_margin_inputs(input, target, p, margin, weight, reduction):
    _check_reduction(reduction)
    _check_real("margin", margin)
    if p not in (1, 2):
        raise ValueError(f"p: only p == 1 and p == 2 are supported (got {p})")
    x = _matrix(input)
    t = np.asarray(target)
    loss_shape = t.shape if np.ndim(input) < 2 else (x.shape[0],)
    if np.ndim(input) < 2 and t.size != 1:
        raise ValueError(f"target: a 1-D input takes one class index, got shape {t.shape}")
    y, _ = _class_indices(t.reshape(-1) if np.ndim(input) < 2 else t, (x.shape[0],), x.shape[1], None)
    w = np.ones(x.shape[1]) if weight is None else _float64(weight)
    if w.ndim != 1:
        raise ValueError("weight: must be one-dimensional")
    return x, y, w, loss_shape


@_quiet
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Per row: ``l = (w[y] / C) * sum_{c != y} max(margin - x[y] + x[c], 0)**p``
    (torch's kernel adds the terms with ``z > 0``: a NaN term counts 0)."""
    x, y, w, loss_shape = _multi_margin_inputs(input, target, p, margin, weight, reduction)
    rows = np.arange(x.shape[0])
    z = margin - x[rows, y][:, np.newaxis] + x
    z = np.where(z > 0, z, 0.0) ** p  # a NaN term counts 0: torch's kernel adds only z > 0
    z[rows, y] = 0.0
    losses = w[y] * z.sum(axis=1) / x.shape[1]
    return _reduce_rows(losses.reshape(loss_shape), reduction, losses.size)


@_quiet
def multi_margin_loss_backward(input, target, p=1, margin=1.0, weight=None, reduction="mean", *, grad_output=None):
    """``dl/dx[c] = (w[y] / C) * p * z**(p - 1)`` where ``z = margin - x[y] +
    x[c] > 0`` (c != y), and ``dl/dx[y]`` minus their sum."""
    x, y, w, loss_shape = _multi_margin_inputs(input, target, p, margin, weight, reduction)
    rows = np.arange(x.shape[0])
    z = margin - x[rows, y][:, np.newaxis] + x
    local = np.where(z > 0, 1.0 if p == 1 else 2.0 * z, 0.0)
    local[rows, y] = 0.0
    local[rows, y] = -local.sum(axis=1)
    local = local * (w[y] / x.shape[1])[:, np.newaxis]
    g = np.reshape(_row_grad_output(grad_output, loss_shape, reduction, x.shape[0]), (x.shape[0], 1))
    return (local * g).reshape(np.shape(input))


def _multilabel_margin_inputs(input, target, reduction):
    _check_reduction(reduction)
    x = _matrix(input)
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype {t.dtype}")
    if t.shape != np.shape(input):
        raise ValueError(f"target: shape {t.shape} must equal input's shape {np.shape(input)}")
    t = t.reshape(x.shape)
    bad = (t < -1) | (t >= x.shape[1])
    if bad.any():
        raise IndexError(f"target: class index {t[bad].flat[0]} is out of bounds for {x.shape[1]} classes")
    return x, t.astype(np.int64)


@_quiet
def multilabel_margin_loss(input, target, reduction="mean"):
    """Per row, with ``targets`` the row's entries before its first -1 and
    ``J`` their set: ``l = (1/C) sum_{j in targets} sum_{i not in J} max(1 - x[j] + x[i], 0)``."""
    x, t = _multilabel_margin_inputs(input, target, reduction)
    losses = np.zeros(x.shape[0])
    for n in range(x.shape[0]):
        targets = []
        for v in t[n]:
            if v < 0:
                break
            targets.append(v)
        others = np.ones(x.shape[1], bool)
        others[targets] = False
        for j in targets:
            z = 1.0 - x[n, j] + x[n, others]
            losses[n] += np.where(z > 0, z, 0.0).sum()  # NaN terms count 0 (torch adds only z > 0)
    losses /= x.shape[1]
    return _reduce_rows(losses.reshape(np.shape(input)[:-1]), reduction, losses.size)


@_quiet
def multilabel_margin_loss_backward(input, target, reduction="mean", *, grad_output=None):
    """Each term ``max(1 - x[j] + x[i], 0) / C`` with a positive argument adds
    ``1/C`` to ``dl/dx[i]`` and ``-1/C`` to ``dl/dx[j]``."""
    x, t = _multilabel_margin_inputs(input, target, reduction)
    local = np.zeros_like(x)
    for n in range(x.shape[0]):
        targets = []
        for v in t[n]:
            if v < 0:
                break
            targets.append(v)
        others = np.ones(x.shape[1], bool)
        others[targets] = False
        for j in targets:
            hit = others & (1.0 - x[n, j] + x[n] > 0)
            local[n, hit] += 1.0
            local[n, j] -= hit.sum()
    local /= x.shape[1]
    g = np.reshape(_row_grad_output(grad_output, np.shape(input)[:-1], reduction, x.shape[0]), (x.shape[0], 1))
    return (local * g).reshape(np.shape(input))
# ------------------------------------------------------------------ CTC


def _ctc_inputs(log_probs, targets, input_lengths, target_lengths, blank, reduction):
    """(log_probs as (T, N, C) float64, per-sample label lists, input lengths,
    unbatched?) after torch's checks (ValueError; IndexError for a label
    outside [0, C) or equal to blank)."""
    _check_reduction(reduction)
    x = _float64(log_probs)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, np.newaxis, :]
    if x.ndim != 3:
        raise ValueError(f"log_probs: expected (T, N, C) or (T, C), got shape {x.shape}")
    T, N, C = x.shape
    if not 0 <= blank < C:
        raise ValueError(f"blank: {blank} is outside [0, {C})")
    il = np.asarray(input_lengths, dtype=np.int64).reshape(-1)
    tl = np.asarray(target_lengths, dtype=np.int64).reshape(-1)
    if il.shape != (N,) or tl.shape != (N,):
        raise ValueError(f"input_lengths/target_lengths: expected {N} values")
    tg = np.asarray(targets)
    if unbatched:
        tg = tg.reshape(1, -1)
    labels, offset = [], 0
    for n in range(N):
        if not 0 <= il[n] <= T:
            raise ValueError(f"input_lengths: {il[n]} is outside [0, {T}]")
        if tl[n] < 0 or (tg.ndim == 2 and tl[n] > tg.shape[1]):
            raise ValueError(f"target_lengths: {tl[n]} is outside [0, {tg.shape[-1]}]")
        if tg.ndim == 2:
            row = tg[n, : tl[n]]
        else:
            row = tg[offset: offset + tl[n]]
            offset += tl[n]
        row = [int(v) for v in row]
        if any(not 0 <= v < C or v == blank for v in row):
            raise IndexError(f"targets: a label is outside [0, {C}) or equals blank {blank}")
        labels.append(row)
    if tg.ndim == 1 and not unbatched and offset != tg.size:
        raise ValueError(f"targets: {tg.size} labels, target_lengths add up to {offset}")
    return x, labels, il, unbatched


def _logsumexp(*terms):
    """log(sum(exp(terms))) elementwise, exact for -inf terms (all -inf: -inf)."""
    stack = np.stack(np.broadcast_arrays(*terms))
    m = np.max(stack, axis=0)
    safe = np.where(np.isfinite(m), m, 0.0)
    return safe + np.log(np.sum(np.exp(stack - safe), axis=0))


def _ctc_alpha_beta(x, labels, length, blank):
    """Forward and backward variables of one sample, (length, 2S + 1) each,
    both including the emission at t; and the negative log likelihood.

    Extended target l' = (blank, l1, blank, ..., lS, blank). A path moves at
    each step from s to s, s + 1, or s + 2 when l'(s + 2) is a label that
    differs from l'(s) (a repeated label needs a blank in between)."""
    ext = [blank]
    for v in labels:
        ext += [v, blank]
    L = len(ext)
    e = x[:length, ext]  # emissions, (length, L)
    skip = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(L)])
    ninf = -np.inf
    alpha = np.full((length, L), ninf)
    beta = np.full((length, L), ninf)
    if length == 0:
        return alpha, beta, (-0.0 if not labels else np.inf)
    alpha[0, 0] = e[0, 0]
    if L > 1:
        alpha[0, 1] = e[0, 1]
    def shifted(row, k):
        """row moved k places (k > 0: to higher positions), -inf filled."""
        padded = np.concatenate(([ninf] * abs(k), row, [ninf] * abs(k)))
        return padded[abs(k) - k: abs(k) - k + L]

    for t in range(1, length):
        prev = alpha[t - 1]  # from s, s - 1, or s - 2 where allowed
        alpha[t] = e[t] + _logsumexp(prev, shifted(prev, 1), np.where(skip, shifted(prev, 2), ninf))
    beta[-1, L - 1] = e[-1, L - 1]
    if L > 1:
        beta[-1, L - 2] = e[-1, L - 2]
    skip_from = np.concatenate((skip, [False, False]))[2:]  # s -> s + 2 allowed
    for t in range(length - 2, -1, -1):
        nxt = beta[t + 1]  # to s, s + 1, or s + 2 where allowed
        beta[t] = e[t] + _logsumexp(nxt, shifted(nxt, -1), np.where(skip_from, shifted(nxt, -2), ninf))
    ends = alpha[-1, L - 2:] if L > 1 else alpha[-1, L - 1:]
    return alpha, beta, -_logsumexp(*ends)


def _ctc_reduce(losses, il, labels, reduction, unbatched):
    if reduction == "none":
        return losses[0] if unbatched else losses
    if reduction == "sum":
        return np.float64(np.sum(losses))
    lengths = np.array([max(len(r), 1) for r in labels], dtype=np.float64)
    return np.float64(np.mean(losses / lengths)) if losses.size else np.float64(np.nan)


@_quiet
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Connectionist temporal classification: ``-log p(target | log_probs)``
    summed over all alignments, per sample.

    ``log_probs`` (T, N, C) or unbatched (T, C); ``targets`` padded (N, S) or
    concatenated 1-D; lengths per sample. ``'mean'`` divides each loss by its
    target length (at least 1), then averages; an impossible alignment is
    ``inf`` (0 with ``zero_infinity``); an input length 0 gives ``-0.0`` for an
    empty target."""
    x, labels, il, unbatched = _ctc_inputs(log_probs, targets, input_lengths, target_lengths, blank, reduction)
    losses = np.array([_ctc_alpha_beta(x[:, n], labels[n], il[n], blank)[2] for n in range(x.shape[1])],
                      dtype=np.float64)
    if zero_infinity:
        losses = np.where(losses == np.inf, 0.0, losses)
    return _ctc_reduce(losses, il, labels, reduction, unbatched)


@_quiet
def ctc_loss_backward(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
                      zero_infinity=False, *, grad_output=None, exact=False):
    """Gradient w.r.t. ``log_probs``: torch's ``exp(log_probs) - gamma`` with
    ``gamma[t, c] = sum over s with l'(s) = c of exp(alpha + beta + nll - log_probs)``
    (the true derivative after a log_softmax), or with ``exact=True`` the true
    derivative ``-gamma``. 0 for ``t >= input_length``; NaN for an impossible
    alignment (0 with ``zero_infinity``), as torch."""
    x, labels, il, unbatched = _ctc_inputs(log_probs, targets, input_lengths, target_lengths, blank, reduction)
    T, N, C = x.shape
    go = np.ones(() if reduction != "none" else ((N,) if not unbatched else ()))
    if grad_output is not None:
        go = np.broadcast_to(np.asarray(grad_output, dtype=np.float64), go.shape)
    go = np.broadcast_to(go, (N,)) if go.ndim == 0 else go.reshape(N)
    grad = np.zeros((T, N, C))
    for n in range(N):
        scale = go[n]
        if reduction == "mean":
            scale = scale / max(len(labels[n]), 1) / N
        alpha, beta, nll = _ctc_alpha_beta(x[:, n], labels[n], il[n], blank)
        length = il[n]
        if not np.isfinite(nll):
            fill = 0.0 if (zero_infinity and nll == np.inf) or length == 0 else np.nan
            grad[:length, n] = fill
            continue
        ext = [blank]
        for v in labels[n]:
            ext += [v, blank]
        lp = x[:length, n]
        gamma = np.zeros((length, C))
        for s, c in enumerate(ext):
            gamma[:, c] += np.exp(alpha[:, s] + beta[:, s] + nll - lp[:, c])
        if exact:
            g = -gamma
        else:
            # torch: exp(lp) - exp(lcab + nll - lp), which is NaN where lp = -inf
            g = np.where(lp == -np.inf, np.nan, np.exp(lp)) - gamma
            in_target = np.zeros(C, dtype=bool)
            in_target[ext] = True
            g[:, in_target] = np.exp(lp[:, in_target]) - gamma[:, in_target]
        grad[:length, n] = g * scale
    return grad[:, 0] if unbatched else grad


# ---------------------------------------------------------- beyond torch.nn
#
# Losses torch.nn does not have; the docstrings name the definition each
# follows (torchvision, optax, scikit-learn, Liger-Kernel).


def _check_finite(name, value):
    _check_real(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number (got {value})")


def _sigmoid_pair(x):
    """``(sigmoid(x), sigmoid(-x))``, each from ``exp(-|x|)``: no overflow and
    no cancellation (``1 - sigmoid(x)`` would round to 0 for large x)."""
    e = np.exp(-np.abs(x))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    return np.where(x >= 0, big, small), np.where(x >= 0, small, big)


def _focal_terms(input, target, alpha, gamma, reduction):
    """``(t, p, 1 - p, ce, 1 - p_t, a_t)`` of the sigmoid focal loss."""
    _check_finite("alpha", alpha)
    _check_finite("gamma", gamma)
    if gamma < 0:
        raise ValueError(f"gamma: must be >= 0 (got {gamma})")
    _check_reduction(reduction)
    x, t = _float64(input), _float64(target)
    _same_shape_target(x, t)
    p, p_neg = _sigmoid_pair(x)
    # -(t log p + (1 - t) log(1 - p)): two non-negative terms, where
    # (1 - t) x - log_sigmoid(x) would cancel for x < 0, t = 0.
    ce = -(t * _log_sigmoid(x) + (1.0 - t) * _log_sigmoid(-x))
    # 1 - p_t = 1 - (p t + (1 - p)(1 - t)), written without the subtraction.
    q = p * (1.0 - t) + p_neg * t
    a_t = alpha * t + (1.0 - alpha) * (1.0 - t) if alpha >= 0 else np.ones_like(x)
    return t, p, p_neg, ce, q, a_t


@_quiet
def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss: ``l = a_t * ce * (1 - p_t)**gamma``
    with ``p = sigmoid(x)``, ``p_t = p t + (1 - p)(1 - t)``,
    ``ce = binary_cross_entropy_with_logits(x, t)`` and
    ``a_t = alpha t + (1 - alpha)(1 - t)`` (1 when ``alpha < 0``).

    ``target`` must have ``input``'s shape. ``alpha``, ``gamma`` finite,
    ``gamma >= 0`` (ValueError). ``1 - p_t`` is computed as
    ``p (1 - t) + (1 - p) t`` with ``1 - p = sigmoid(-x)``: accurate in float64
    for large ``|x|``, where ``1 - p_t`` would round to 0."""
    _, _, _, ce, q, a_t = _focal_terms(input, target, alpha, gamma, reduction)
    return _reduce(a_t * ce * q**gamma, reduction)


@_quiet
def sigmoid_focal_loss_backward(input, target, alpha=0.25, gamma=2.0, reduction="none", *, grad_output=None):
    """``d l / d x = a_t ((p - t) q**gamma + ce * gamma q**(gamma - 1) dq/dx)``
    with ``q = 1 - p_t`` and ``dq/dx = p (1 - p)(1 - 2t)``; the second term is
    0 for ``gamma == 0`` and where ``q == 0`` (its limit: ``q**(gamma - 1) p (1 - p)``
    goes to 0 with ``q`` for binary targets). ``p - t`` is ``p (1 - t) - (1 - p) t``
    (no cancellation for ``t = 1``, ``p`` near 1)."""
    t, p, p_neg, ce, q, a_t = _focal_terms(input, target, alpha, gamma, reduction)
    local = a_t * (p * (1.0 - t) - p_neg * t) * q**gamma
    if gamma != 0:  # (for gamma == 0 the term is absent, also where ce is inf)
        local = local + a_t * ce * np.where(q == 0, 0.0, gamma * q ** (gamma - 1.0) * p * p_neg * (1.0 - 2.0 * t))
    return _chain(local, input, reduction, None, grad_output)


@_quiet
def log_cosh_loss(input, target, reduction="mean"):
    """optax.log_cosh: ``l = log(cosh(x - t))``. ``input`` and ``target``
    broadcast together. Computed as ``log1p(2 sinh(d/2)**2)``
    (``cosh(d) - 1 = 2 sinh(d/2)**2`` keeps ``d**2 / 2`` for small ``d``) up to
    ``|d| = 20``, beyond as ``|d| - log 2 + log1p(exp(-2|d|))``."""
    x, t = _pair(input, target, reduction)
    a = np.abs(x - t)
    losses = np.where(a <= 20, np.log1p(2.0 * np.sinh(a / 2.0) ** 2), a - math.log(2.0) + np.log1p(np.exp(-2.0 * a)))
    return _reduce(losses, reduction)


@_quiet
def log_cosh_loss_backward(input, target, reduction="mean", *, grad_output=None):
    """``d l / d x = tanh(x - t)``."""
    x, t = _pair(input, target, reduction)
    return _chain(np.tanh(x - t), input, reduction, None, grad_output)


def _pinball_inputs(input, target, quantile, reduction, weight):
    _check_real("quantile", quantile)
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile: must be in [0, 1] (got {quantile})")
    x, t = _pair(input, target, reduction)
    w = None if weight is None else _into("weight", weight, x.shape)
    return x, t, w


@_quiet
def pinball_loss(input, target, quantile=0.5, reduction="mean", weight=None):
    """sklearn.metrics.mean_pinball_loss per element (``y_true = target``,
    ``y_pred = input``, ``alpha = quantile``): with ``d = t - x``,
    ``l = w * (quantile * d if d >= 0 else (quantile - 1) * d)``.

    ``input`` and ``target`` broadcast together; ``weight`` broadcasts into
    their shape; weighted ``'mean'`` is ``sum(w * l) / sum(w)`` (``w``
    broadcast), scikit-learn's ``sample_weight`` average."""
    x, t, w = _pinball_inputs(input, target, quantile, reduction, weight)
    d = t - x
    losses = np.where(d >= 0, quantile * d, (quantile - 1.0) * d)
    if w is None:
        return _reduce(losses, reduction)
    return _reduce(losses * w, reduction, weight_total=w.sum())


@_quiet
def pinball_loss_backward(input, target, quantile=0.5, reduction="mean", weight=None, *, grad_output=None):
    """``d l / d x = w * (-quantile if d > 0, 1 - quantile if d < 0, 0 at d == 0
    and for NaN)`` (0 is in the subdifferential at the kink; quantile 0.5 gives
    half of l1_loss's gradient, torch's ``sign(0) = 0``)."""
    x, t, w = _pinball_inputs(input, target, quantile, reduction, weight)
    d = t - x
    local = np.where(d > 0, -quantile, np.where(d < 0, 1.0 - quantile, 0.0))
    return _chain(local, input, reduction, w, grad_output, weight_total=None if w is None else w.sum())


def _jsd_inputs(input, target, beta, log_target, reduction):
    _check_real("beta", beta)
    if not 0 <= beta <= 1:
        raise ValueError(f"beta: must be in [0, 1] (got {beta})")
    x, t, batch = _kl_inputs(input, target, reduction, log_target)
    p, log_p = (np.exp(t), t) if log_target else (t, np.log(t))
    return x, p, log_p, batch


def _times_prob(prob, value):
    """``prob * value``, 0 where ``prob == 0`` (xlogy's convention)."""
    return np.where(prob == 0, 0.0, prob * value)


@_quiet
def jensen_shannon_divergence(input, target, beta=0.5, log_target=True, reduction="batchmean"):
    """Liger-Kernel's generalized JSD, element-wise: ``Q = exp(x)``, ``P =
    exp(t)`` (``log_target``) or ``t``, ``M = beta P + (1 - beta) Q``,
    ``l = beta P (log P - log M) + (1 - beta) Q (x - log M)``; ``beta == 0``
    is ``P (log P - x)`` (KL(P || Q)), ``beta == 1`` is ``Q (x - log P)``
    (KL(Q || P)), as Liger special-cases them. Products with a zero
    probability are 0. ``beta`` in [0, 1] (ValueError). Reductions as
    :func:`kl_div` (``'batchmean'``: sum / input.shape[0], the default)."""
    x, p, log_p, batch = _jsd_inputs(input, target, beta, log_target, reduction)
    q = np.exp(x)
    if beta == 0:
        losses = _times_prob(p, log_p - x)
    elif beta == 1:
        losses = _times_prob(q, x - log_p)
    else:
        log_m = np.log(beta * p + (1.0 - beta) * q)
        losses = beta * _times_prob(p, log_p - log_m) + (1.0 - beta) * _times_prob(q, x - log_m)
    if reduction == "batchmean":
        total = losses.sum()
        return np.float64(total / batch) if np.ndim(input) else np.float64(total)
    return _reduce(losses, reduction)


@_quiet
def jensen_shannon_divergence_backward(input, target, beta=0.5, log_target=True, reduction="batchmean", *,
                                       grad_output=None):
    """``d l / d x = (1 - beta) Q (x - log M)`` (0 where ``Q == 0``); ``-P``
    for ``beta == 0``; ``Q (x - log P) + Q`` (0 where ``Q == 0``) for ``beta == 1``."""
    x, p, log_p, batch = _jsd_inputs(input, target, beta, log_target, reduction)
    q = np.exp(x)
    if beta == 0:
        local = -p
    elif beta == 1:
        local = _times_prob(q, x - log_p + 1.0)
    else:
        local = (1.0 - beta) * _times_prob(q, x - np.log(beta * p + (1.0 - beta) * q))
    if reduction == "batchmean":
        scale = 1.0 / batch if np.ndim(input) and batch else (np.inf if np.ndim(input) else 1.0)
        return _chain(local * scale, input, "sum", None, grad_output)
    return _chain(local, input, reduction, None, grad_output)


# ------------------------------------------------------ feature-axis losses
#
# Rows are the last axis. The operands broadcast together (NumPy's rule); a
# 0-d broadcast shape is one row of one feature whose result is 0-d (torch's
# norm over dim -1 of a 0-d tensor).


def _feature_rows(*arrays):
    """The operands as float64, broadcast together, and the shape of one
    value per row."""
    xs = [_float64(a) for a in arrays]
    shape = xs[0].shape
    for x in xs[1:]:
        shape = _broadcast_shapes(shape, x.shape)
    xs = [np.broadcast_to(x, shape) for x in xs]
    if shape == ():
        return [x.reshape(1) for x in xs], ()
    return xs, shape[:-1]


def _check_p(p):
    _check_real("p", p)
    if not p > 0:
        raise ValueError(f"p: must be > 0 (got {p})")


def _norm(d, p):
    """torch's vector p-norm over the last axis."""
    if p == np.inf:
        return np.max(np.abs(d), axis=-1) if d.shape[-1] else np.zeros(d.shape[:-1])
    if p == 1:
        return np.sum(np.abs(d), axis=-1)
    if p == 2:
        return np.sqrt(np.sum(d * d, axis=-1))
    return np.sum(np.abs(d) ** p, axis=-1) ** (1.0 / p)


def _norm_backward(d, p, norm):
    """d norm / d d, case by case as torch's norm_backward (p = 1: sgn(d);
    p = 2: d / norm, 0 where norm is 0; inf: sgn(d) split evenly over the
    elements at the maximum (or NaN); p < 1, 1 < p < 2, p > 2 as there)."""
    n = norm[..., np.newaxis]
    if p == 1:
        return _sign(d)
    if p == 2:
        return np.where(n == 0, 0.0, d / n)
    if p == np.inf:
        a = np.abs(d)
        mask = (a == n) | np.isnan(a)
        return _sign(d) * mask / np.sum(mask, axis=-1, keepdims=True)
    if p < 1:
        return np.where(d == 0, 0.0, _sign(d) * np.abs(d) ** (p - 1)) * n ** (1 - p)
    if p < 2:
        return _sign(d) * np.abs(d) ** (p - 1) * np.where(n == 0, 0.0, 1.0 / n ** (p - 1))
    return d * np.abs(d) ** (p - 2) * np.where(n == 0, 0.0, 1.0 / n ** (p - 1))


@_quiet
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last axis (torch.pairwise_distance);
    ``keepdim`` keeps it as size 1. ``p > 0`` (ValueError otherwise)."""
    _check_p(p)
    _check_real("eps", eps)
    (u, v), shape = _feature_rows(x1, x2)
    out = _norm(u - v + eps, p)
    keep = keepdim and np.broadcast_shapes(np.shape(x1), np.shape(x2)) != ()
    return out.reshape(shape + (1,) if keep else shape)


@_quiet
def pairwise_distance_backward(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, grad_output=None):
    """``(d / d x1, d / d x2)`` of ``sum(grad_output * pairwise_distance)``:
    ``+-grad_output * d norm / d (x1 - x2 + eps)``, summed to each input's shape."""
    _check_p(p)
    (u, v), shape = _feature_rows(x1, x2)
    d = u - v + eps
    norm = _norm(d, p)
    out_shape = shape + (1,) if keepdim and np.broadcast_shapes(np.shape(x1), np.shape(x2)) != () else shape
    g = _grad_output(grad_output, out_shape).reshape(norm.shape)
    local = _norm_backward(d, p, norm) * g[..., np.newaxis]
    full = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    return _unbroadcast(local.reshape(full), np.shape(x1)), _unbroadcast(-local.reshape(full), np.shape(x2))


def _cosine_parts(u, v, eps=1e-8):
    """torch's cosine_similarity over the last axis: each norm clamped at
    ``eps`` (the clamp is invisible to autograd)."""
    nu, nv = np.sqrt(np.sum(u * u, axis=-1)), np.sqrt(np.sum(v * v, axis=-1))
    nuc, nvc = np.maximum(nu, eps), np.maximum(nv, eps)
    nuc, nvc = np.where(np.isnan(nu), nu, nuc), np.where(np.isnan(nv), nv, nvc)
    cos = np.sum(u * v, axis=-1) / (nuc * nvc)
    return cos, nu, nv, nuc, nvc


def _cosine_backward(u, v, g):
    """``(d / d u, d / d v)`` of ``g * cosine_similarity(u, v)``:
    ``g (v / (|u|c |v|c) - cos u / (|u|c |u|))`` (the last term 0 where |u| is 0)."""
    cos, nu, nv, nuc, nvc = _cosine_parts(u, v)
    e = lambda a: a[..., np.newaxis]  # noqa: E731
    gu = e(g) * (v / e(nuc * nvc) - np.where(e(nu) == 0, 0.0, e(cos) * u / e(nuc * nu)))
    gv = e(g) * (u / e(nuc * nvc) - np.where(e(nv) == 0, 0.0, e(cos) * v / e(nvc * nv)))
    return gu, gv


@_quiet
def cosine_distance(x1, x2):
    """``1 - cosine_similarity(x1, x2)`` over the last axis, with torch's
    cosine_similarity: ``sum(x1 / max(|x1|, 1e-8) * x2 / max(|x2|, 1e-8))``."""
    (u, v), shape = _feature_rows(x1, x2)
    return (1.0 - _cosine_parts(u, v)[0]).reshape(shape)


@_quiet
def cosine_distance_backward(x1, x2, *, grad_output=None):
    """``-(d cos / d x1, d cos / d x2) * grad_output`` (see :func:`_cosine_backward`)."""
    (u, v), shape = _feature_rows(x1, x2)
    g = _grad_output(grad_output, shape).reshape(u.shape[:-1])
    gu, gv = _cosine_backward(u, v, -g)
    full = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    return _unbroadcast(gu.reshape(full), np.shape(x1)), _unbroadcast(gv.reshape(full), np.shape(x2))


def _cosine_embedding_inputs(input1, input2, target, margin, reduction):
    _check_real("margin", margin)
    _check_reduction(reduction)
    x1, x2, t = _float64(input1), _float64(input2), _float64(target)
    if t.ndim > 1:
        raise ValueError(f"target: 0D or 1D target expected, got shape {t.shape}")
    if x1.ndim != t.ndim + 1 or x2.ndim != t.ndim + 1:
        raise ValueError(f"input1/input2: a {t.ndim}-D target takes {t.ndim + 1}-D inputs, got shapes {x1.shape} "
                         f"and {x2.shape}")
    (u, v), shape = _feature_rows(x1, x2)
    if not _broadcasts_into(t.shape, shape):
        raise ValueError(f"target: shape {t.shape} does not match the rows {shape}")
    t = np.broadcast_to(t, shape)
    if not np.all((t == 1) | (t == -1)):
        raise ValueError("target: values must be 1 or -1")
    return u, v, t, shape


def _cosine_embedding_cos(u, v):
    """cosine_embedding_loss's cosine: ``dot / sqrt((|u|^2 + 1e-12) (|v|^2 + 1e-12))``."""
    mu, mv = np.sum(u * u, axis=-1) + 1e-12, np.sum(v * v, axis=-1) + 1e-12
    return np.sum(u * v, axis=-1) / np.sqrt(mu * mv), mu, mv


@_quiet
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``l = 1 - cos`` for target 1, ``max(cos - margin, 0)`` for target -1,
    ``cos = x1 . x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` per row.

    Inputs (D) with a 0-d target, or (N, D) with an (N,) target (torch);
    targets other than 1 or -1 raise ValueError (torch gives 0 for them)."""
    u, v, t, shape = _cosine_embedding_inputs(input1, input2, target, margin, reduction)
    cos = _cosine_embedding_cos(u, v)[0].reshape(shape)
    return _reduce(np.where(t == 1, 1.0 - cos, np.maximum(cos - margin, 0.0)), reduction)


@_quiet
def cosine_embedding_loss_backward(input1, input2, target, margin=0.0, reduction="mean", *, grad_output=None):
    """``dl/dcos`` (-1 for target 1; 1 for target -1 where ``cos - margin >= 0``,
    else 0) times ``d cos / d x1 = x2 / denom - cos x1 / (|x1|^2 + 1e-12)``
    (and symmetrically for x2)."""
    u, v, t, shape = _cosine_embedding_inputs(input1, input2, target, margin, reduction)
    cos, mu, mv = _cosine_embedding_cos(u, v)
    cos = cos.reshape(shape)
    g = _grad_output(grad_output, shape if reduction == "none" else ())
    g = np.broadcast_to(g, shape) * _mean_scale(max(1, math.prod(shape)) if shape else 1, reduction, None)
    dcos = np.where(t == 1, -1.0, np.where(cos - margin >= 0, 1.0, 0.0)) * g
    e = lambda a: np.reshape(a, u.shape[:-1])[..., np.newaxis]  # noqa: E731
    denom = np.sqrt(mu * mv)
    gu = e(dcos) * (v / e(denom) - e(cos) * u / e(mu))
    gv = e(dcos) * (u / e(denom) - e(cos) * v / e(mv))
    full = np.broadcast_shapes(np.shape(input1), np.shape(input2))
    return _unbroadcast(gu.reshape(full), np.shape(input1)), _unbroadcast(gv.reshape(full), np.shape(input2))


def _triplet_inputs(anchor, positive, negative, margin, swap, reduction):
    _check_real("margin", margin)
    _check_bool("swap", swap)
    _check_reduction(reduction)
    if margin <= 0:  # torch's check: a NaN margin passes and gives NaN
        raise ValueError(f"margin: must be greater than 0 (got {margin})")
    arrays = [_float64(anchor), _float64(positive), _float64(negative)]
    for name, a in zip(("positive", "negative"), arrays[1:]):
        if a.ndim != arrays[0].ndim:
            raise ValueError(f"{name}: has {a.ndim} dimensions, anchor has {arrays[0].ndim} (all three must have "
                             "the same number)")
    xs, shape = _feature_rows(*arrays)
    return xs, shape


def _triplet_value_and_coefficients(dp, dn, ds, margin, swap):
    """``l = max(margin + dp - min(dn, ds), 0)`` and ``(dl/ddp, dl/ddn,
    dl/dds)``: the clamp passes its gradient where its argument is >= 0;
    torch.minimum gives each side half on a tie."""
    if swap:
        neg = np.minimum(dn, ds)
        sn = np.where(dn == ds, 0.5, np.where(dn > ds, 0.0, 1.0))
        ss = np.where(dn == ds, 0.5, np.where(dn < ds, 0.0, 1.0))
    else:
        neg, sn, ss = dn, np.ones_like(dn), np.zeros_like(dn)
    z = margin + dp - neg
    active = np.where(z >= 0, 1.0, 0.0)
    return np.maximum(z, 0.0), active, -active * sn, -active * ss


def _triplet_backward(xs, shape, reduction, grad_output, coefficients, distance_backward, swap):
    """The three gradients from the per-row ``(dl/ddp, dl/ddn, dl/dds)`` and
    ``distance_backward(x1, x2, g) -> (g1, g2)``."""
    a, p, n = xs
    g = _grad_output(grad_output, shape if reduction == "none" else ())
    size = math.prod(shape) if shape else 1
    g = np.broadcast_to(g, shape).reshape(a.shape[:-1]) * _mean_scale(size, reduction, None)
    cp, cn, cs = (np.reshape(c, a.shape[:-1]) * g for c in coefficients)
    ga1, gp1 = distance_backward(a, p, cp)
    ga2, gn2 = distance_backward(a, n, cn)
    if not swap:  # no d(p, n) term at all (0 * its NaN gradient would be NaN)
        return ga1 + ga2, gp1, gn2
    gp3, gn3 = distance_backward(p, n, cs)
    return ga1 + ga2, gp1 + gp3, gn2 + gn3


def _pnorm_distance_backward(p, eps):
    def backward(x1, x2, g):
        d = x1 - x2 + eps
        local = _norm_backward(d, p, _norm(d, p)) * g[..., np.newaxis]
        return local, -local

    return backward


def _cosine_distance_backward(x1, x2, g):
    return _cosine_backward(x1, x2, -g)


@_quiet
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    """``l = max(margin + d(a, p) - d(a, n), 0)`` with ``d = pairwise_distance(., ., p, eps)``;
    ``swap``: ``d(a, n)`` becomes ``min(d(a, n), d(p, n))``. ``margin > 0``
    and ``p > 0`` (ValueError, as torch refuses margin <= 0); the three
    inputs have the same number of dimensions and broadcast together."""
    _check_p(p)
    _check_real("eps", eps)
    (a, pp, n), shape = _triplet_inputs(anchor, positive, negative, margin, swap, reduction)
    dp, dn, ds = _norm(a - pp + eps, p), _norm(a - n + eps, p), _norm(pp - n + eps, p)
    return _reduce(_triplet_value_and_coefficients(dp, dn, ds, margin, swap)[0].reshape(shape), reduction)


@_quiet
def triplet_margin_loss_backward(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                                 reduction="mean", *, grad_output=None):
    """``(d/da, d/dp, d/dn)``: the distances' norm_backward weighted by
    :func:`_triplet_value_and_coefficients`, summed to each input's shape."""
    _check_p(p)
    _check_real("eps", eps)
    xs, shape = _triplet_inputs(anchor, positive, negative, margin, swap, reduction)
    a, pp, n = xs
    dp, dn, ds = _norm(a - pp + eps, p), _norm(a - n + eps, p), _norm(pp - n + eps, p)
    coefficients = _triplet_value_and_coefficients(dp, dn, ds, margin, swap)[1:]
    grads = _triplet_backward(xs, shape, reduction, grad_output, coefficients, _pnorm_distance_backward(p, eps),
                              swap)
    full = np.broadcast_shapes(np.shape(anchor), np.shape(positive), np.shape(negative))
    return tuple(_unbroadcast(gr.reshape(full), np.shape(x)) for gr, x in zip(grads, (anchor, positive, negative)))


def _distance(distance_function):
    """``(forward, backward(x1, x2, g) -> (g1, g2))`` for ``distance_function``:
    fastloss's (or this module's) pairwise_distance / cosine_distance, a
    functools.partial of them, or any callable (backward: its ``backward``
    attribute, None if it has none)."""
    fn, keywords = distance_function, {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, keywords = fn.func, dict(fn.keywords)
    name = getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", "") or ""
    ours = module.startswith("fastloss")
    if distance_function is None or (ours and name == "pairwise_distance" and set(keywords) <= {"p", "eps"}):
        p, eps = keywords.get("p", 2.0), keywords.get("eps", 1e-6)
        return (lambda x1, x2: _norm(x1 - x2 + eps, p)), _pnorm_distance_backward(p, eps)
    if ours and name == "cosine_distance" and not keywords:
        return (lambda x1, x2: 1.0 - _cosine_parts(x1, x2)[0]), _cosine_distance_backward
    back = getattr(distance_function, "backward", None)

    def forward(x1, x2):
        return _float64(distance_function(x1, x2))

    def backward(x1, x2, g):
        g1, g2 = back(x1, x2, g)
        return _float64(g1), _float64(g2)

    return forward, (backward if back is not None else None)


@_quiet
def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """:func:`triplet_margin_loss` with ``d = distance_function`` (None:
    pairwise_distance); ``margin > 0``."""
    xs, shape = _triplet_inputs(anchor, positive, negative, margin, swap, reduction)
    forward, _ = _distance(distance_function)
    a, p, n = xs
    dp, dn = forward(a, p), forward(a, n)
    ds = forward(p, n) if swap else dn
    return _reduce(_triplet_value_and_coefficients(dp, dn, ds, margin, swap)[0].reshape(shape), reduction)


@_quiet
def triplet_margin_with_distance_loss_backward(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                               swap=False, reduction="mean", grad_output=None):
    """Gradients through ``distance_function``'s backward (NotImplementedError
    for a callable without a ``backward`` attribute)."""
    xs, shape = _triplet_inputs(anchor, positive, negative, margin, swap, reduction)
    forward, backward = _distance(distance_function)
    if backward is None:
        raise NotImplementedError("distance_function: has no backward(x1, x2, grad_distance) attribute")
    a, p, n = xs
    dp, dn = forward(a, p), forward(a, n)
    ds = forward(p, n) if swap else dn
    coefficients = _triplet_value_and_coefficients(dp, dn, ds, margin, swap)[1:]
    grads = _triplet_backward(xs, shape, reduction, grad_output, coefficients, backward, swap)
    full = np.broadcast_shapes(np.shape(anchor), np.shape(positive), np.shape(negative))
    return tuple(_unbroadcast(gr.reshape(full), np.shape(x)) for gr, x in zip(grads, (anchor, positive, negative)))


# ---------------------------------------- beyond torch.nn: row-wise losses


def _poly1_parts(input, target, epsilon, weight, ignore_index, reduction, label_smoothing):
    _check_real("epsilon", epsilon)
    if not math.isfinite(epsilon):
        raise ValueError(f"epsilon: must be finite (got {epsilon})")
    if np.asarray(target).dtype.kind == "f":
        raise TypeError("target: poly1_cross_entropy takes class indices")
    x, loss_shape, w, (_, y, counted) = _cross_entropy_parts(input, target, weight, ignore_index, reduction,
                                                             label_smoothing)
    e = label_smoothing if label_smoothing > 0 else 0.0
    p = np.exp(_log_softmax(x))
    p_y = np.take_along_axis(p, y[..., np.newaxis], axis=-1)[..., 0]
    w_y = np.where(counted, w[y], 0.0)
    return x, loss_shape, y, counted, e, p, p_y, w_y


@_quiet
def poly1_cross_entropy(input, target, epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
                        label_smoothing=0.0):
    """``cross_entropy(...) + epsilon * w[y] * (1 - p_t)`` per row, ``p_t =
    (1 - e) softmax(x)[y] + e / C`` (optax's poly_loss_cross_entropy with the
    smoothed one-hot label); 'mean' divides by ``sum(w[y])`` over counted rows."""
    x, loss_shape, y, counted, e, p, p_y, w_y = _poly1_parts(input, target, epsilon, weight, ignore_index,
                                                             reduction, label_smoothing)
    ce = cross_entropy(input, target, weight, ignore_index, "none", label_smoothing)
    classes = x.shape[-1]
    poly = np.where(counted, epsilon * w_y * (1 - ((1 - e) * p_y + e / classes)), 0.0)
    losses = np.reshape(ce, loss_shape) + poly.reshape(loss_shape)
    return _reduce_rows(losses, reduction, w_y.sum())


@_quiet
def poly1_cross_entropy_backward(input, target, epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
                                 label_smoothing=0.0, *, grad_output=None):
    """cross_entropy's gradient plus ``epsilon w[y] (1 - e) p[y] (p - onehot(y))``."""
    x, loss_shape, y, counted, e, p, p_y, w_y = _poly1_parts(input, target, epsilon, weight, ignore_index,
                                                             reduction, label_smoothing)
    onehot = np.arange(x.shape[-1]) == y[..., np.newaxis]
    local = (epsilon * w_y * (1 - e) * p_y)[..., np.newaxis] * (p - onehot)
    g = np.reshape(_row_grad_output(grad_output, loss_shape, reduction, w_y.sum()), x.shape[:-1])[..., np.newaxis]
    local = np.where(counted[..., np.newaxis], local * g, 0.0)
    go = grad_output
    ce = cross_entropy_backward(input, target, weight, ignore_index, reduction, label_smoothing, grad_output=go)
    return ce + _rows_to_input(local, input)


def _softmax_focal_parts(input, target, alpha, gamma, weight, ignore_index, reduction):
    _check_reduction(reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index: must be an int (got {type(ignore_index).__name__})")
    _check_real("gamma", gamma)
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma: must be finite and >= 0 (got {gamma})")
    x, loss_shape = _class_rows(input)
    classes = x.shape[-1]
    w = _class_weight(weight, classes)
    a = np.ones(classes) if alpha is None else np.broadcast_to(_float64(alpha), (classes,))
    y, counted = _class_indices(target, loss_shape, classes, ignore_index)
    y, counted = y.reshape(x.shape[:-1]), counted.reshape(x.shape[:-1])
    lp = np.take_along_axis(_log_softmax(x), y[..., np.newaxis], axis=-1)[..., 0]
    w_y = np.where(counted, w[y], 0.0)
    return x, loss_shape, y, counted, lp, w_y, np.where(counted, a[y], 0.0)


@_quiet
def softmax_focal_loss(input, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100, reduction="mean"):
    """``l = -alpha[y] w[y] (1 - p[y])**gamma log p[y]``, ``p = softmax(x)``
    (Keras' CategoricalFocalCrossentropy, one-hot labels, unclipped); 'mean'
    divides by ``sum(w[y])`` over the rows not ``ignore_index`` (alpha not)."""
    x, loss_shape, y, counted, lp, w_y, a_y = _softmax_focal_parts(input, target, alpha, gamma, weight,
                                                                   ignore_index, reduction)
    losses = np.where(counted, -(a_y * w_y * (-np.expm1(lp)) ** gamma * lp), 0.0)
    return _reduce_rows(losses.reshape(loss_shape), reduction, w_y.sum())


@_quiet
def softmax_focal_loss_backward(input, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100,
                                reduction="mean", *, grad_output=None):
    """``K (p - onehot(y))``, ``K = a w (1 - p_y)**gamma (1 - gamma p_y lp / (1 - p_y))``
    (``lp / (1 - p_y)`` -> -1 where ``p_y`` is 1)."""
    x, loss_shape, y, counted, lp, w_y, a_y = _softmax_focal_parts(input, target, alpha, gamma, weight,
                                                                   ignore_index, reduction)
    q = -np.expm1(lp)
    ratio = np.where(q > 0, lp / np.where(q > 0, q, 1.0), -1.0)
    p_y = np.exp(lp)
    focus = np.where(p_y > 0, gamma * p_y * np.where(p_y > 0, ratio, 0.0), 0.0)  # p lp -> 0 as p -> 0
    k = a_y * w_y * q**gamma * (1 - focus)
    p = np.exp(_log_softmax(x))
    onehot = np.arange(x.shape[-1]) == y[..., np.newaxis]
    g = np.reshape(_row_grad_output(grad_output, loss_shape, reduction, w_y.sum()), x.shape[:-1])
    # Ignored rows: 0 * softmax, as cross_entropy's (NaN where the row is not finite).
    local = np.where(counted[..., np.newaxis], (k * g)[..., np.newaxis] * (p - onehot), 0.0 * p)
    return _rows_to_input(local, input)


def _dice_parts(input, target, smooth, eps, reduction):
    _check_reduction(reduction)
    for name, value in (("smooth", smooth), ("eps", eps)):
        _check_real(name, value)
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be finite (got {value})")
    x, t = _float64(input), _float64(target)
    if x.ndim == 0:
        raise ValueError("input: expected 1 or more dimensions (got 0)")
    _same_shape_target(x, t)
    features = math.prod(x.shape[1:])
    x2, t2 = x.reshape(x.shape[0], features), t.reshape(t.shape[0], features)
    num = 2 * np.sum(x2 * t2, axis=1) + smooth
    den = np.sum(x2, axis=1) + np.sum(t2, axis=1) + smooth + eps
    return x, t2, num, den


@_quiet
def dice_loss(input, target, smooth=0.0, eps=1e-7, reduction="mean"):
    """Per sample (axis 0): ``1 - (2 sum(x t) + smooth) / (sum(x) + sum(t) + smooth + eps)``
    over its other axes (Keras' Dice, axis=(1, ...)); reduced over the samples."""
    _, _, num, den = _dice_parts(input, target, smooth, eps, reduction)
    return _reduce(1 - num / den, reduction)


@_quiet
def dice_loss_backward(input, target, smooth=0.0, eps=1e-7, reduction="mean", *, grad_output=None):
    """``num / den**2 - 2 t / den`` per sample."""
    x, t2, num, den = _dice_parts(input, target, smooth, eps, reduction)
    n = x.shape[0]
    g = _grad_output(grad_output, (n,) if reduction == "none" else ())
    g = np.broadcast_to(g / n if reduction == "mean" else g, (n,))
    local = (num / den**2)[:, np.newaxis] - 2 * t2 / den[:, np.newaxis]
    return (local * g[:, np.newaxis]).reshape(x.shape)


def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
