"""The loss functions, with torch.nn.functional's names, arguments and
results (torch 2.13), on NumPy arrays.

Every loss ``f`` comes with ``f_backward`` (the gradient of
``sum(grad_output * f(...))`` w.r.t. its differentiable inputs) and
``f_value_and_grad`` (both, from one fused pass). Both take ``grad_output=``
(default: ones) and ``out=`` (buffers for the gradients).

Dtypes: float32 and float64 are computed in their own precision, float16
and bfloat16 in float32 (returned in their dtype). Arrays of different float
dtypes promote to the wider; Python scalars and lists take the dtype of the
arrays they meet (NumPy 2's and torch's rule: ``mse_loss(float32 array,
2.0)`` is float32). Float options (``beta``, ``delta``) are validated as
given and used in the compute dtype, as torch's kernels use them:
``beta=1e-50`` is 0 in float32, so ``smooth_l1_loss`` is ``l1_loss`` there."""

import numpy as np

from . import _elementwise as _ew
from . import _validate as _v
from ._api import define, jax_pointwise

__all__ = []  # filled below from each define()


def _regression_sample(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    y = rng.standard_normal(size).astype(dtype)
    return (x, y), {}


def _export(fns):
    for fn in fns:
        __all__.append(fn.__name__)
    return fns


# ----------------------------------------------------------------- regression


def _l1_loss(mode, grad_output, out, input, target, reduction="mean", weight=None):
    r"""Mean absolute error: ``l = w * |input - target|``.

    Args:
        input: predictions, any shape (float16/32/64, bfloat16).
        target: broadcastable to ``input`` (torch warns when the shapes differ, so do we).
        reduction: ``'none'`` (shape of the broadcast), ``'mean'`` or ``'sum'``.
        weight: optional, exactly ``input``'s shape; weighted ``'mean'`` is
            ``sum(w * l) / sum(w)`` (torch 2.13).

    Gradient w.r.t. input: ``w * sign(input - target)``, with ``sign(0) = 0``
    and ``sign(NaN) = 0`` as torch's ``abs`` backward. Mean of nothing is NaN.
    """
    return _ew.evaluate(_ew.L1, mode, input, target, reduction, weight, 0.0, grad_output, out,
                        weight_divides_mean=True)


l1_loss, l1_loss_backward, l1_loss_value_and_grad = _export(
    define(_l1_loss, class_name="L1Loss", family="regression", grads=("input",), sample=_regression_sample,
           torch="l1_loss", jax=jax_pointwise(lambda jnp, x, y: jnp.abs(x - y)))
)


def _mse_loss(mode, grad_output, out, input, target, reduction="mean", weight=None):
    r"""Mean squared error: ``l = w * (input - target)**2``.

    Arguments as :func:`l1_loss`; weighted ``'mean'`` is ``sum(w * l) / sum(w)``.
    Gradient w.r.t. input: ``2 * w * (input - target)``.
    """
    return _ew.evaluate(_ew.MSE, mode, input, target, reduction, weight, 0.0, grad_output, out,
                        weight_divides_mean=True)


mse_loss, mse_loss_backward, mse_loss_value_and_grad = _export(
    define(_mse_loss, class_name="MSELoss", family="regression", grads=("input",), sample=_regression_sample,
           torch="mse_loss", jax=jax_pointwise(lambda jnp, x, y: jnp.square(x - y)))
)


def _smooth_l1_loss(mode, grad_output, out, input, target, reduction="mean", beta=1.0):
    r"""Smooth L1: with ``z = |input - target|``,
    ``l = 0.5 * z**2 / beta`` if ``z < beta`` else ``z - 0.5 * beta``.

    ``beta = 0`` is exactly :func:`l1_loss` (forward and backward, as torch),
    and so is a beta that is 0 in the compute dtype (``1e-50`` for float32,
    float16 and bfloat16 inputs); ``beta < 0`` raises ValueError.
    Gradient: ``clip((input - target) / beta, -1, 1)``.
    """
    beta = _v.real_number(beta, "beta")
    if not beta >= 0:  # NaN too, as torch
        raise ValueError(f"beta: smooth_l1_loss does not support negative values for beta (got {beta})")
    return _ew.evaluate(_ew.SMOOTH_L1, mode, input, target, reduction, None, beta, grad_output, out,
                        weight_divides_mean=False)


smooth_l1_loss, smooth_l1_loss_backward, smooth_l1_loss_value_and_grad = _export(
    define(_smooth_l1_loss, class_name="SmoothL1Loss", family="regression", grads=("input",),
           sample=_regression_sample, class_options=("reduction", "beta"), torch="smooth_l1_loss",
           # beta == 0 is L1 (as torch); the where() would differentiate 0/0 into NaN.
           jax=jax_pointwise(lambda jnp, x, y, beta=1.0: jnp.abs(x - y) if beta == 0 else jnp.where(
               jnp.abs(x - y) < beta, 0.5 * jnp.square(x - y) / beta, jnp.abs(x - y) - 0.5 * beta)))
)


def _huber_loss(mode, grad_output, out, input, target, reduction="mean", delta=1.0, weight=None):
    r"""Huber: with ``z = |input - target|``,
    ``l = 0.5 * z**2`` if ``z < delta`` else ``delta * (z - 0.5 * delta)``.

    ``delta <= 0`` raises ValueError; a delta that is 0 or inf in the compute
    dtype (``1e-50``, ``1e300`` for float32) is used as such, as torch's
    kernels do (loss 0, or ``0.5 * z**2``). ``weight`` (``input``'s shape) multiplies
    ``l``; unlike L1/MSE, weighted ``'mean'`` is ``mean(w * l)`` (torch 2.13).
    Gradient: ``w * clip(input - target, -delta, delta)``.
    """
    delta = _v.real_number(delta, "delta")
    if not delta > 0:
        raise ValueError(f"delta: huber_loss does not support non-positive values for delta (got {delta})")
    return _ew.evaluate(_ew.HUBER, mode, input, target, reduction, weight, delta, grad_output, out,
                        weight_divides_mean=False)


huber_loss, huber_loss_backward, huber_loss_value_and_grad = _export(
    define(_huber_loss, class_name="HuberLoss", family="regression", grads=("input",),
           sample=_regression_sample, class_options=("reduction", "delta"), torch="huber_loss",
           jax=jax_pointwise(lambda jnp, x, y, delta=1.0: jnp.where(
               jnp.abs(x - y) < delta, 0.5 * jnp.square(x - y), delta * (jnp.abs(x - y) - 0.5 * delta)),
               weight_divides_mean=False))
)

del np


def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
