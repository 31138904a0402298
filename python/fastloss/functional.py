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

import math

import numpy as np

from . import _ctc
from . import _elementwise as _ew
from . import _validate as _v
from ._api import BACKWARD as _BACKWARD, FORWARD as _FORWARD, PARTIAL as _PARTIAL, Partial as _Partial, define, jax_pointwise

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


# ------------------------------------------------------ likelihood and margin
#
# Shapes, options and errors follow torch 2.13 (torch/nn/functional.py and
# ATen); where torch raises RuntimeError fastloss raises ValueError (shapes,
# values) or TypeError (option types), naming the argument.


_F32_DTYPE, _F64_DTYPE = np.dtype(np.float32), np.dtype(np.float64)


def _bool_option(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def _operand(obj, name, *, differentiable):
    if type(obj) is np.ndarray and (obj.dtype is _F32_DTYPE or obj.dtype is _F64_DTYPE):
        return (name, obj, obj)  # what the checks below return for it, without them (small calls)
    arr = _v.as_array(obj, name)
    return (name, obj, _v.check_float(arr, name) if differentiable else _v.check_real(arr, name))


def _into(obj, name, shape):
    """An optional array (weight, pos_weight) that broadcasts *into* ``shape``
    (torch multiplies it in place into a tensor of that shape)."""
    if obj is None:
        return None
    arr = _v.check_real(_v.as_array(obj, name), name)
    if _v.broadcast_shapes(arr.shape, tuple(shape)) != tuple(shape):
        raise ValueError(f"{name}: shape {arr.shape} cannot be broadcast to input's shape {tuple(shape)}")
    return (obj, arr)


def _same_shape(operands):
    x, t = operands[0][2], operands[1][2]
    if t.shape != x.shape:
        raise ValueError(f"target: shape {t.shape} must equal input's shape {x.shape} (torch: 'Using a target "
                         "size that is different to the input size is deprecated')")


def _probability_sample(rng, size, dtype):
    x = rng.uniform(0.02, 0.98, size).astype(dtype)
    y = rng.uniform(0.0, 1.0, size).astype(dtype)
    return (x, y), {}


def _logit_sample(rng, size, dtype):
    x = (4 * rng.standard_normal(size)).astype(dtype)
    y = rng.uniform(0.0, 1.0, size).astype(dtype)
    return (x, y), {}


def _sign_sample(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    y = np.where(rng.random(size) < 0.5, -1.0, 1.0).astype(dtype)
    return (x, y), {}


def _binary_cross_entropy(mode, grad_output, out, input, target, weight=None, reduction="mean"):
    r"""Binary cross entropy on probabilities:
    ``l = -w * (t * log(x) + (1 - t) * log(1 - x))``, each log clamped at -100
    (so ``x`` = 0 or 1 gives 100, not inf), as torch.

    Args:
        input: probabilities in [0, 1] (float16/32/64, bfloat16); anything
            else, NaN included, raises ValueError (torch raises too).
        target: ``input``'s shape exactly, values in [0, 1].
        weight: broadcast into ``input``'s shape.
        reduction: ``'none'``, ``'mean'`` (divides by the element count, even
            with ``weight``) or ``'sum'``.

    Gradient w.r.t. input: ``w * (x - t) / max(x * (1 - x), 1e-12)`` (±1e12 at
    0 and 1 in float32, as torch)."""
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _same_shape(ops)
    w = _into(weight, "weight", ops[0][2].shape)
    return _ew.evaluate_table("binary_cross_entropy", mode, ops, (0,), red, weight=w, grad_output=grad_output,
                              out=out, checks=("input: all elements of input should be between 0 and 1",
                                               "target: all elements of target should be between 0 and 1"))


def _bce_jax(jnp, input, target, weight=None, reduction="mean"):
    value = -(target * jnp.maximum(jnp.log(input), -100) + (1 - target) * jnp.maximum(jnp.log1p(-input), -100))
    return _jax_reduce(jnp, value if weight is None else weight * value, reduction)


def _jax_reduce(jnp, value, reduction, divisor=None):
    if reduction == "none":
        return value
    if reduction == "sum":
        return jnp.sum(value)
    return jnp.sum(value) / divisor if divisor is not None else jnp.mean(value)


binary_cross_entropy, binary_cross_entropy_backward, binary_cross_entropy_value_and_grad = _export(
    define(_binary_cross_entropy, class_name="BCELoss", family="probabilistic", grads=("input",),
           sample=_probability_sample, class_options=("weight", "reduction"), torch="binary_cross_entropy",
           jax=_bce_jax)
)


_ONES = {np.dtype(np.float32): np.ones((), np.float32), np.dtype(np.float64): np.ones((), np.float64)}
for _one in _ONES.values():
    _one.flags.writeable = False
del _one


def _binary_cross_entropy_with_logits(mode, grad_output, out, input, target, weight=None, reduction="mean",
                                      pos_weight=None):
    r"""Binary cross entropy on logits, computed stably for any ``|x|``:
    ``l = w * ((1 - t) * x - (1 + (p - 1) * t) * log_sigmoid(x))``.

    Args:
        input: logits, any shape; target: ``input``'s shape exactly.
        weight, pos_weight: broadcast into ``input``'s shape (NumPy's rule, as
            torch computes it: a ``pos_weight`` of shape ``(C,)`` weighs the
            positives of the last dimension's classes).

    Gradient w.r.t. input: ``w * ((p * t + 1 - t) * sigmoid(x) - p * t)``."""
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _same_shape(ops)
    w = _into(weight, "weight", ops[0][2].shape)
    pw = _into(pos_weight, "pos_weight", ops[0][2].shape)
    x = ops[0][2]
    ones = _ONES.get(x.dtype, _ONES[np.dtype(np.float32)])  # absent: 1, read with stride 0
    ops.append(("pos_weight",) + (pw if pw is not None else (1.0, ones)))
    return _ew.evaluate_table("binary_cross_entropy_with_logits", mode, ops, (0,), red, weight=w,
                              grad_output=grad_output, out=out, options=(pw is not None,))


def _bce_logits_jax(jnp, input, target, weight=None, reduction="mean", pos_weight=None):
    log_weight = 1 if pos_weight is None else (pos_weight - 1) * target + 1
    value = (1 - target) * input + log_weight * jnp.logaddexp(0, -input)
    return _jax_reduce(jnp, value if weight is None else weight * value, reduction)


(binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
 binary_cross_entropy_with_logits_value_and_grad) = _export(
    define(_binary_cross_entropy_with_logits, class_name="BCEWithLogitsLoss", family="probabilistic",
           grads=("input",), sample=_logit_sample, class_options=("weight", "reduction", "pos_weight"),
           torch="binary_cross_entropy_with_logits", jax=_bce_logits_jax)
)


def _soft_margin_loss(mode, grad_output, out, input, target, reduction="mean"):
    r"""Soft margin: ``l = log(1 + exp(-t * x))`` for targets ±1, computed as
    ``softplus(-t * x)``: equal to torch's where torch's is finite, and finite
    where torch overflows to inf (float32 ``-t * x > 88.7``; pytorch #77529).

    ``target`` broadcasts into ``input``'s shape. Gradient: ``-t * sigmoid(-t * x)``."""
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    x, t = ops[0][2], ops[1][2]
    if _v.broadcast_shapes(t.shape, x.shape) != x.shape:
        raise ValueError(f"target: shape {t.shape} cannot be broadcast to input's shape {x.shape}")
    return _ew.evaluate_table("soft_margin_loss", mode, ops, (0,), red, grad_output=grad_output, out=out)


def _soft_margin_jax(jnp, input, target, reduction="mean"):
    return _jax_reduce(jnp, jnp.logaddexp(0, -target * input), reduction)


soft_margin_loss, soft_margin_loss_backward, soft_margin_loss_value_and_grad = _export(
    define(_soft_margin_loss, class_name="SoftMarginLoss", family="margin", grads=("input",),
           sample=_sign_sample, torch="soft_margin_loss", jax=_soft_margin_jax)
)


def _poisson_nll_loss(mode, grad_output, out, input, target, log_input=True, full=False, eps=1e-8,
                      reduction="mean"):
    r"""Poisson negative log likelihood:
    ``l = exp(x) - t * x`` (``log_input=True``) or ``x - t * log(x + eps)``;
    ``full`` adds Stirling's ``t * log(t) - t + 0.5 * log(2 * pi * t)`` where
    ``t > 1``. As torch, ``log_input=False`` with ``x + eps < 0`` gives a NaN
    loss but a finite gradient ``1 - t / (x + eps)``.

    ``input`` and ``target`` broadcast together."""
    log_input = _bool_option(log_input, "log_input")
    full = _bool_option(full, "full")
    eps = _v.real_number(eps, "eps")
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _v.broadcast_operands(ops)
    return _ew.evaluate_table("poisson_nll_loss", mode, ops, (0,), red, grad_output=grad_output, out=out,
                              options=(log_input, full, eps))


def _poisson_jax(jnp, input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    value = jnp.exp(input) - target * input if log_input else input - target * jnp.log(input + eps)
    if full:
        stirling = target * jnp.log(target) - target + 0.5 * jnp.log(2 * jnp.pi * target)
        value = value + jnp.where(target <= 1, 0, stirling)
    return _jax_reduce(jnp, value, reduction)


def _poisson_sample(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    y = rng.poisson(2.0, size).astype(dtype)
    return (x, y), {}


poisson_nll_loss, poisson_nll_loss_backward, poisson_nll_loss_value_and_grad = _export(
    define(_poisson_nll_loss, class_name="PoissonNLLLoss", family="probabilistic", grads=("input",),
           sample=_poisson_sample, class_options=("log_input", "full", "eps", "reduction"),
           torch="poisson_nll_loss", jax=_poisson_jax, class_arrays=("log_input", "target"))
)


def _gaussian_nll_loss(mode, grad_output, out, input, target, var, full=False, eps=1e-6, reduction="mean"):
    r"""Gaussian negative log likelihood with variance ``var``:
    ``l = 0.5 * (log(v) + (x - t)**2 / v)`` with ``v = max(var, eps)``
    (``+ 0.5 * log(2 * pi)`` with ``full``).

    ``var``: an array of ``input``'s shape, of ``input``'s shape without its
    last dimension (one variance per row), or with one dimension of size 1 —
    other shapes raise ValueError, as torch — or a Python float (no gradient:
    ``None`` in its place). Negative entries raise ValueError. The ``eps``
    clamp passes the gradient through unchanged, as torch's.

    Gradients: ``(input, var)``."""
    full = _bool_option(full, "full")
    eps = _v.real_number(eps, "eps")
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    x = ops[0][2]
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var: has negative entries")
        var_op, var_grad = ("var", var, np.asarray(var)), None
    elif isinstance(var, (bool, int, np.bool_)):
        raise TypeError(f"var: expected an array or a float, got {type(var).__name__}")
    else:
        # (negative entries: the kernel's check, in its one pass over var)
        name, obj, varr = _operand(var, "var", differentiable=True)
        if varr.shape != x.shape:
            if x.shape[:-1] == varr.shape:
                varr = varr[..., np.newaxis]  # one variance per row
            elif not (varr.ndim == x.ndim and sum(q for p, q in zip(x.shape, varr.shape) if p != q) == 1):
                raise ValueError(f"var: shape {varr.shape} is not input's shape {x.shape}, input's shape without its "
                                 "last dimension, nor input's shape with one dimension of size 1")
        var_op, var_grad = (name, obj, varr), 2
    red = _v.reduction(reduction)
    ops.append(var_op)
    _v.broadcast_operands(ops)
    _v.option_fits(eps, "eps", ops)
    # A per-row var was given without its last dimension: so is its gradient,
    # and an out[1] of var's shape receives it through a view with that dimension.
    row = var_grad is not None and np.ndim(var) != var_op[2].ndim
    given = out
    if row and isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], np.ndarray) \
            and out[1].shape == np.shape(var):
        out = (out[0], out[1][..., np.newaxis])
    result = _ew.evaluate_table("gaussian_nll_loss", mode, ops, (0, var_grad), red, grad_output=grad_output,
                                out=out, options=(full, eps), checks=("var: has negative entries",))
    if not row or mode in (_FORWARD, _PARTIAL):
        return result

    def unrow(grads):
        gi, gv = grads
        if out is not given:
            gv = given[1]
        elif gv is not None:
            gv = gv.reshape(np.shape(var))
        return gi, gv
    return unrow(result) if mode == _BACKWARD else (result[0], unrow(result[1]))


def _gaussian_jax(jnp, input, target, var, full=False, eps=1e-6, reduction="mean"):
    var = jnp.asarray(var)
    if var.ndim == input.ndim - 1:
        var = var[..., None]
    v = jnp.maximum(var, eps)  # (torch lets the gradient through the clamp; the data here never clamps)
    value = 0.5 * (jnp.log(v) + (input - target) ** 2 / v)
    if full:
        value = value + 0.5 * jnp.log(2 * jnp.pi)
    return _jax_reduce(jnp, value, reduction)


def _gaussian_sample(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    y = rng.standard_normal(size).astype(dtype)
    var = rng.uniform(0.1, 2.0, size).astype(dtype)
    return (x, y, var), {}


gaussian_nll_loss, gaussian_nll_loss_backward, gaussian_nll_loss_value_and_grad = _export(
    define(_gaussian_nll_loss, class_name="GaussianNLLLoss", family="probabilistic", grads=("input", "var"),
           sample=_gaussian_sample, class_options=("full", "eps", "reduction"), torch="gaussian_nll_loss",
           jax=_gaussian_jax, class_keyword_only=True)
)

_KL_REDUCTIONS = {"none": _v.NONE, "mean": _v.MEAN, "sum": _v.SUM, "batchmean": 3}


def _batchmean(code, x):
    """``(reduction code, divisor)`` for the kernels: ``'batchmean'`` is a
    ``'mean'`` over ``input``'s first dimension (1 for a 0-d input)."""
    if code != 3:
        return code, None
    return _v.MEAN, (x.shape[0] if x.ndim > 0 else 1)


def _kl_div(mode, grad_output, out, input, target, reduction="mean", log_target=False):
    r"""Kullback–Leibler divergence of log-probabilities ``input`` from
    ``target``: ``l = t * (log(t) - x)`` (0 where ``t == 0``), or
    ``exp(t) * (t - x)`` with ``log_target``.

    ``reduction``: ``'none'``, ``'sum'``, ``'batchmean'`` (sum / ``input``'s
    first dimension: the KL divergence) or ``'mean'`` (sum / element count;
    torch warns that this is not the KL divergence, fastloss does not).
    ``input`` and ``target`` broadcast together. Gradient: ``-t`` (``-exp(t)``)."""
    log_target = _bool_option(log_target, "log_target")
    code = _v.reduction(reduction, _KL_REDUCTIONS)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _v.broadcast_operands(ops)
    code, divisor = _batchmean(code, ops[0][2])
    return _ew.evaluate_table("kl_div", mode, ops, (0,), code, grad_output=grad_output, out=out,
                              options=(log_target,), divisor=divisor)


def _kl_jax(jnp, input, target, reduction="mean", log_target=False):
    if log_target:
        value = jnp.exp(target) * (target - input)
    else:
        value = jnp.where(target == 0, 0, target * jnp.log(jnp.where(target == 0, 1, target))) - target * input
    if reduction == "batchmean":
        return jnp.sum(value) / (input.shape[0] if input.ndim else 1)
    return _jax_reduce(jnp, value, reduction)


def _kl_sample(rng, size, dtype):
    x = np.log(rng.uniform(0.01, 1.0, size)).astype(dtype)
    y = rng.uniform(0.0, 1.0, size).astype(dtype)
    return (x, y), {}


def _kl_torch(torch, input, target, reduction="mean", log_target=False):
    import warnings

    with warnings.catch_warnings():  # torch's 'mean' warning: fastloss does not warn
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.functional.kl_div(input, target, reduction=reduction, log_target=log_target)


kl_div, kl_div_backward, kl_div_value_and_grad = _export(
    define(_kl_div, class_name="KLDivLoss", family="probabilistic", grads=("input",), sample=_kl_sample,
           class_options=("reduction", "log_target"), torch=_kl_torch, jax=_kl_jax)
)


def _hinge_embedding_loss(mode, grad_output, out, input, target, margin=1.0, reduction="mean"):
    r"""Hinge embedding: ``l = x`` where ``t == 1``, ``max(margin - x, 0)``
    where ``t == -1`` (any other target gets both terms, as torch).

    ``input`` and ``target`` broadcast together. The gradient at the kink
    ``margin - x == 0`` is -1, as torch's."""
    margin = _v.real_number(margin, "margin")
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _v.broadcast_operands(ops)
    _v.option_fits(margin, "margin", ops)
    return _ew.evaluate_table("hinge_embedding_loss", mode, ops, (0,), red, grad_output=grad_output, out=out,
                              options=(margin,))


def _hinge_jax(jnp, input, target, margin=1.0, reduction="mean"):
    value = jnp.where(target != 1, jnp.maximum(margin - input, 0), 0) + jnp.where(target != -1, input, 0)
    return _jax_reduce(jnp, value, reduction)


hinge_embedding_loss, hinge_embedding_loss_backward, hinge_embedding_loss_value_and_grad = _export(
    define(_hinge_embedding_loss, class_name="HingeEmbeddingLoss", family="margin", grads=("input",),
           sample=_sign_sample, class_options=("margin", "reduction"), torch="hinge_embedding_loss",
           jax=_hinge_jax)
)


def _margin_ranking_loss(mode, grad_output, out, input1, input2, target, margin=0.0, reduction="mean"):
    r"""Margin ranking: ``l = max(-t * (x1 - x2) + margin, 0)`` for targets ±1.

    The three arrays must have the same number of dimensions (as torch) and
    broadcast together. Gradients ``(input1, input2)``: ``-t`` and ``t``
    where the clamped term is >= 0 (the kink included, as torch), else 0."""
    margin = _v.real_number(margin, "margin")
    red = _v.reduction(reduction)
    ops = [_operand(input1, "input1", differentiable=True), _operand(input2, "input2", differentiable=True),
           _operand(target, "target", differentiable=False)]
    for name, _, a in ops[1:]:
        if a.ndim != ops[0][2].ndim:
            raise ValueError(f"{name}: has {a.ndim} dimensions, input1 has {ops[0][2].ndim} (torch: all three "
                             "must have the same number)")
    _v.broadcast_operands(ops)
    return _ew.evaluate_table("margin_ranking_loss", mode, ops, (0, 1), red, grad_output=grad_output, out=out,
                              options=(margin,))


def _ranking_jax(jnp, input1, input2, target, margin=0.0, reduction="mean"):
    return _jax_reduce(jnp, jnp.maximum(-target * (input1 - input2) + margin, 0), reduction)


def _ranking_sample(rng, size, dtype):
    x1 = rng.standard_normal(size).astype(dtype)
    x2 = rng.standard_normal(size).astype(dtype)
    y = np.where(rng.random(size) < 0.5, -1.0, 1.0).astype(dtype)
    return (x1, x2, y), {}


margin_ranking_loss, margin_ranking_loss_backward, margin_ranking_loss_value_and_grad = _export(
    define(_margin_ranking_loss, class_name="MarginRankingLoss", family="margin", grads=("input1", "input2"),
           sample=_ranking_sample, class_options=("margin", "reduction"), torch="margin_ranking_loss",
           jax=_ranking_jax)
)


# ------------------------------------------------------------------ sequence


def _ctc_loss(mode, grad_output, out, log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
              zero_infinity=False, *, exact=False):
    r"""Connectionist temporal classification (torch 2.13's ``ctc_loss``):
    ``l_n = -log sum_{alignments a of target n} prod_t exp(log_probs[t, n, a_t])``
    over the alignments of length ``input_lengths[n]`` that collapse (merge
    repeats, drop blanks) to the target.

    Args:
        log_probs: ``(T, N, C)`` or unbatched ``(T, C)`` log-probabilities
            (a log_softmax output; float16/32/64, bfloat16).
        targets: padded ``(N, S)`` (unbatched: ``(S,)``) or concatenated 1-d
            (``sum(target_lengths)`` labels), any integer dtype; labels in
            ``[0, C)``, never ``blank`` (IndexError).
        input_lengths, target_lengths: ``N`` integers each (arrays of any
            integer dtype, lists or tuples; one for unbatched), in ``[0, T]``
            and ``[0, S]``.
        blank: the blank class, in ``[0, C)``.
        reduction: ``'none'`` (``(N,)``, unbatched ``()``), ``'sum'``, or
            ``'mean'``: each loss divided by its target length (at least 1),
            then the batch mean.
        zero_infinity: impossible alignments (``inf`` losses) give 0 and a
            zero gradient instead of ``inf`` and NaN.

    An input length of 0 gives ``-0.0`` for an empty target and ``inf``
    otherwise (as torch). Gradient (``ctc_loss_backward``): torch's
    ``exp(log_probs) - gamma``, ``gamma[t, n, c]`` the posterior probability of
    class ``c`` at ``t`` (the true derivative only when ``log_probs`` is a
    log_softmax output, pytorch #52241); ``exact=True`` gives the true
    derivative ``-gamma`` for unnormalised ``log_probs``. Time steps beyond
    ``input_lengths`` get 0. The recursions accumulate in float64 whatever
    the dtype (accurate for long sequences); bitwise identical for any
    thread count and ISA level.
    """
    return _ctc.evaluate(mode, grad_output, out, log_probs, targets, input_lengths, target_lengths, blank,
                         reduction, zero_infinity, exact)


def _ctc_sample(rng, size, dtype):
    """CTC data: log_softmax of normal logits, padded targets without blank
    (0), random input lengths in [3T/4, T] and target lengths in [S/2, S]
    (always alignable: S <= T/4). ``size``: ``(T, C)`` gives unbatched data;
    an int is an element budget for ``log_probs``: from 2**22 the long case
    of issue 10 (T=1500, N=8, C=1000, S=300), from 2**18 its standard case
    (T=200, N=32, C=50, S=50), below that a scaled-down batch."""
    if isinstance(size, tuple):
        (T, C), N, unbatched = size, 1, True
        S = max(1, T // 4)
    else:
        unbatched = False
        if size >= 2**22:
            T, N, C, S = 1500, 8, 1000, 300
        elif size >= 2**18:
            T, N, C, S = 200, 32, 50, 50
        else:
            C = 50 if size >= 50 * 64 else 5
            N = max(1, min(32, size // (C * 16)))
            T = max(4, size // (N * C))
            S = max(1, T // 4)
    logits = rng.standard_normal((T, N, C))
    lp = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    targets = rng.integers(1, C, size=(N, S))
    il = rng.integers((3 * T) // 4, T + 1, size=N)
    tl = rng.integers((S + 1) // 2, S + 1, size=N)
    if unbatched:
        return (lp[:, 0].astype(dtype), targets[0], il[:1], tl[:1]), {}
    return (lp.astype(dtype), targets, il, tl), {}


def _ctc_jax(jnp, log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """optax.ctc_loss computing torch's loss: optax takes (N, T, C) logits
    (it applies log_softmax itself: a no-op on log-probabilities) with
    paddings (1 past each length) instead of lengths; padded targets only."""
    import jax.numpy as jnp  # optax needs JAX arrays (the caller may pass NumPy)
    import optax

    log_probs = jnp.asarray(log_probs)
    x = log_probs[:, None, :] if log_probs.ndim == 2 else log_probs
    labels = jnp.reshape(targets, (1, -1)) if log_probs.ndim == 2 else targets
    il = jnp.reshape(input_lengths, (-1,))
    tl = jnp.reshape(target_lengths, (-1,))
    T, S = x.shape[0], labels.shape[1]
    logit_paddings = (jnp.arange(T)[None, :] >= il[:, None]).astype(x.dtype)
    label_paddings = (jnp.arange(S)[None, :] >= tl[:, None]).astype(x.dtype)
    losses = optax.ctc_loss(jnp.transpose(x, (1, 0, 2)), logit_paddings, labels, label_paddings, blank_id=blank)
    if zero_infinity:
        losses = jnp.where(jnp.isinf(losses), 0, losses)
    if reduction == "none":
        return losses[0] if log_probs.ndim == 2 else losses
    if reduction == "sum":
        return jnp.sum(losses)
    return jnp.mean(losses / jnp.maximum(tl, 1).astype(losses.dtype))


ctc_loss, ctc_loss_backward, ctc_loss_value_and_grad = _export(
    define(_ctc_loss, class_name="CTCLoss", family="sequence", grads=("log_probs",), sample=_ctc_sample,
           class_options=("blank", "reduction", "zero_infinity"), torch="ctc_loss", jax=_ctc_jax,
           backward_options=("exact",))
)


# ------------------------------------------------------------ class-axis losses
#
# The row-wise driver (cpp/src/simd/rowwise_driver.h) reads (C), (N, C) and
# (N, C, d1..dk) inputs in place, the class axis at any stride, and integer
# targets of any width as they are. Shapes and errors follow torch 2.13;
# where torch raises RuntimeError fastloss raises ValueError (shapes,
# values), TypeError (dtypes) or IndexError (a class index out of range).

from . import _rowwise as _rw  # noqa: E402


def _class_axis_input(input, name="input"):
    x = _v.check_float(_v.as_array(input, name), name)
    if x.ndim == 0:
        raise ValueError(f"{name}: expected 1 or more dimensions (got 0)")
    if x.ndim == 1:
        return x, (1, x.shape[0], 1), ()
    return x, (x.shape[0], x.shape[1], _rw.numel(x.shape[2:])), (x.shape[0],) + x.shape[2:]


def _index_target_shape(t, x, loss_shape):
    """A class-index target's shape: input's without the class axis (a 1-D
    input takes a 0-d or one-element target)."""
    if x.ndim == 1:
        if t.size != 1 or t.ndim > 1:
            raise ValueError(f"target: a 1-D input takes one class index, got shape {t.shape}")
        return
    if t.ndim < 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"target: expected input batch_size ({x.shape[0]}) to match target batch_size "
                         f"({t.shape[0] if t.ndim else 'a 0-d target'})")
    if t.shape != tuple(loss_shape):
        raise ValueError(f"target: expected shape {tuple(loss_shape)}, got {t.shape}")


def _class_loss(name, mode, grad_output, out, input, target, weight, reduction, options, *, probabilities_ok):
    red = _v.reduction(reduction)
    x, cube, loss_shape = _class_axis_input(input)
    t = _v.as_array(target, "target")
    probs = probabilities_ok and _v.is_float(t.dtype)
    wobj = _v.as_array(weight, "weight") if weight is not None else None
    if wobj is not None:
        _v.check_real(wobj, "weight")
    pairs = [(input, x), (weight, wobj)] + ([(target, t)] if probs else [])
    rdtype, kdtype = _v.result_dtype(*pairs)
    if probs:
        if t.shape != x.shape:
            raise ValueError(f"target: probability targets must have input's shape {x.shape}, got {t.shape}")
        kt = _v.for_kernel(t, kdtype, t.shape)
        kt = _rw.as_cube(kt, cube)
    else:
        if _v.is_float(t.dtype) or t.dtype.kind == "b":
            raise TypeError(f"target: expected an integer array of class indices, got dtype {t.dtype}")
        kt = _rw.index_target(_v.check_real(t, "target"))
        _index_target_shape(kt, x, loss_shape)
        kt = _rw.as_cube(kt, (cube[0], cube[2]))
    kw = _rw.class_weight(weight, cube[1], kdtype)
    if name == "cross_entropy":
        _rw.check_softcap(options[3], kdtype)
    return _rw.evaluate(name, mode, x, cube, loss_shape, kt, red, kdtype=kdtype, rdtype=rdtype, weight=kw,
                        grad_output=grad_output, out=out, options=options,
                        sources=(x, t, wobj))


def _cross_entropy(mode, grad_output, out, input, target, weight=None, ignore_index=-100, reduction="mean",
                   label_smoothing=0.0, z_loss=0.0, softcap=None):
    r"""Cross entropy of logits ``input`` against class indices or class
    probabilities, with ``lp = log_softmax(input)`` along the class axis:

    * class indices ``y``: ``l = (1 - e) * (-w[y] * lp[y]) + (e / C) * sum_c(-w[c] * lp[c])``
      (``e = label_smoothing``); ``'mean'`` divides by ``sum(w[y])`` over
      the rows whose target is not ``ignore_index`` (NaN when there are none;
      ignored rows have loss 0 and gradient 0);
    * probabilities ``t`` (a float target of ``input``'s shape):
      ``l = -sum_c(w[c] * t'[c] * lp[c])`` with ``t' = (1 - e) * t + e / C``;
      ``'mean'`` divides by the number of rows (class weights do not count);
      ``ignore_index >= 0`` raises ValueError (torch).

    Shapes: ``input`` (C), (N, C) or (N, C, d1, ..., dk) — read in place, the
    class axis at any stride; a class-index ``target`` has input's shape
    without the class axis (any integer dtype); ``weight`` (C,). A class index
    outside [0, C) other than ``ignore_index`` raises IndexError naming it;
    ``label_smoothing > 1`` raises ValueError; a negative or NaN one is 0
    (plain cross entropy), as torch applies smoothing only when it is > 0.

    Gradient w.r.t. input: ``(w[y] (1 - e) + (e / C) sum(w)) * softmax - w[y] (1 - e) onehot(y) - (e / C) w``
    (probabilities: ``sum(w t') * softmax - w t'``), from the same pass.

    Beyond torch (Liger-Kernel's ``lse_square_scale`` and ``softcap``, cut-cross-entropy's
    ``softcap``; the defaults change nothing: the plain computation above, bit for bit):

    * ``softcap`` (None, or a finite number > 0): the logits are ``softcap * tanh(input / softcap)``
      before everything above (softmax, smoothing, z-loss); the gradient goes through the tanh
      (times ``1 - tanh(input / softcap)**2``).
    * ``z_loss`` (a finite number, 0 = off): adds ``z_loss * lse**2`` per row, ``lse`` the
      logsumexp of the (capped) logits; for class indices it is weighted by ``w[y]`` like the rest
      of the row, so ``'mean'`` stays ``sum(l) / sum(w[y])`` over the rows not ``ignore_index``
      (ignored rows add nothing); it does not depend on ``label_smoothing``. For probability
      targets each row adds ``z_loss * lse**2`` and ``'mean'`` divides by the number of rows.
      Gradient: ``+ w[y] * 2 * z_loss * lse * softmax``. Without ``weight`` this is Liger-Kernel's
      loss exactly; with ``weight`` Liger divides the z term by the row count instead."""
    ignore_index = _rw.check_index(ignore_index, "ignore_index")
    z_loss, softcap = _rw.ce_extras(z_loss, softcap)
    label_smoothing = _v.real_number(label_smoothing, "label_smoothing")
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing: must be between 0.0 and 1.0 (got {label_smoothing})")
    if not label_smoothing > 0.0:  # torch smooths only when label_smoothing > 0: negative or NaN is plain CE
        label_smoothing = 0.0
    t = _v.as_array(target, "target")
    if _v.is_float(t.dtype) and ignore_index >= 0:
        raise ValueError("ignore_index: is not supported for floating point (probability) targets")
    return _class_loss("cross_entropy", mode, grad_output, out, input, target, weight, reduction,
                       (ignore_index, label_smoothing, z_loss, softcap), probabilities_ok=True)


def _cross_entropy_torch(torch, input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                         z_loss=0.0, softcap=None):
    """torch's cross_entropy; with z_loss / softcap, Liger-Kernel's definition in torch ops."""
    F = torch.nn.functional
    if softcap is not None:
        input = softcap * torch.tanh(input / softcap)
    value = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction="none",
                            label_smoothing=label_smoothing) if (z_loss or softcap is not None) else None
    if value is None:
        return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)
    axis = 0 if input.dim() == 1 else 1
    lse = torch.logsumexp(input, dim=axis)
    if target.dtype.is_floating_point:
        value = value + z_loss * lse**2
        return _torch_reduce(value, reduction)
    valid = target != ignore_index
    wy = torch.ones_like(lse) if weight is None else weight[torch.where(valid, target, 0)]
    wy = torch.where(valid, wy, torch.zeros_like(wy))
    if z_loss:
        value = torch.where(valid, value + wy * z_loss * lse**2, value)
    return _torch_reduce(value, reduction, wy.sum() if reduction == "mean" else None)


def _log_softmax_jax(jnp, x, axis):
    m = jnp.max(x, axis=axis, keepdims=True)
    return x - m - jnp.log(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True))


def _cross_entropy_jax(jnp, input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                       z_loss=0.0, softcap=None):
    label_smoothing = label_smoothing if label_smoothing > 0 else 0.0  # as torch
    axis = 0 if input.ndim == 1 else 1
    if softcap is not None:
        input = softcap * jnp.tanh(input / softcap)
    lp = _log_softmax_jax(jnp, input, axis)
    m = jnp.max(input, axis=axis)
    lse2 = z_loss * (m + jnp.log(jnp.sum(jnp.exp(input - jnp.expand_dims(m, axis)), axis=axis))) ** 2
    C = input.shape[axis]
    wshape = [1] * input.ndim
    wshape[axis] = C
    w = jnp.ones(C, input.dtype) if weight is None else weight
    wb = w.reshape(wshape)
    if jnp.issubdtype(target.dtype, jnp.floating):
        tt = target * (1 - label_smoothing) + label_smoothing / C
        value = -(tt * wb * lp).sum(axis) + lse2
        return _jax_reduce(jnp, value, reduction)
    valid = target != ignore_index
    y = jnp.where(valid, target, 0)
    lpy = jnp.take_along_axis(lp, jnp.expand_dims(y, axis), axis).squeeze(axis)
    wy = jnp.where(valid, w[y], 0)
    value = -wy * lpy
    if label_smoothing:
        smooth = jnp.where(valid, -(wb * lp).sum(axis), 0)
        value = (1 - label_smoothing) * value + label_smoothing / C * smooth
    value = value + wy * lse2
    return _jax_reduce(jnp, value, reduction, divisor=wy.sum() if reduction == "mean" else None)


def _rows_classes(size, classes):
    """A sample's (rows, classes): ``size`` elements of rows of ``classes``,
    or ``size`` itself when it is a shape (rows, classes)."""
    if isinstance(size, tuple):
        return size
    return max(1, size // classes), classes


def _class_sample(rng, size, dtype, classes=100):
    rows, classes = _rows_classes(size, classes)
    x = rng.standard_normal((rows, classes)).astype(dtype)
    y = rng.integers(0, classes, rows)
    return (x, y), {}


def _ce_sample(rng, size, dtype):
    return _class_sample(rng, size, dtype, 1000)


def _ce_vocabulary_sample(rng, size, dtype):
    return _class_sample(rng, size, dtype, 32000)


def _ce_smoothing_sample(rng, size, dtype):
    return _class_sample(rng, size, dtype, 1000)[0], {"label_smoothing": 0.1}


def _ce_z_softcap_sample(rng, size, dtype):
    return _class_sample(rng, size, dtype, 1000)[0], {"z_loss": 1e-4, "softcap": 30.0}


def _ce_probabilities_sample(rng, size, dtype):
    (x, _), _ = _class_sample(rng, size, dtype, 1000)
    p = rng.random(x.shape)
    return (x, (p / p.sum(1, keepdims=True)).astype(dtype)), {}


cross_entropy, cross_entropy_backward, cross_entropy_value_and_grad = _export(
    define(_cross_entropy, class_name="CrossEntropyLoss", family="classification", grads=("input",),
           sample=_ce_sample,
           class_options=("weight", "ignore_index", "reduction", "label_smoothing", "z_loss", "softcap"),
           torch=_cross_entropy_torch, jax=_cross_entropy_jax,
           bench_variants=(("C=32000", _ce_vocabulary_sample), ("probabilities", _ce_probabilities_sample),
                           ("label_smoothing=0.1", _ce_smoothing_sample),
                           ("z_loss=1e-4,softcap=30", _ce_z_softcap_sample)))
)


def _nll_loss(mode, grad_output, out, input, target, weight=None, ignore_index=-100, reduction="mean"):
    r"""Negative log likelihood of log-probabilities ``input`` (not
    renormalised): ``l = -w[y] * input[y]``.

    Shapes as :func:`cross_entropy`'s class-index form: ``input`` (C), (N, C)
    or (N, C, d1, ..., dk) (the K-dim form is torch's NLLLoss2d), ``target``
    input's shape without the class axis, any integer dtype; ``weight`` (C,).
    ``'mean'`` divides by ``sum(w[y])`` over the rows not ``ignore_index``
    (NaN when there are none). An index outside [0, C) other than
    ``ignore_index`` raises IndexError naming it.

    Gradient w.r.t. input: ``-w[y]`` at ``y``, 0 elsewhere (0 for ignored rows)."""
    ignore_index = _rw.check_index(ignore_index, "ignore_index")
    return _class_loss("nll_loss", mode, grad_output, out, input, target, weight, reduction, (ignore_index,),
                       probabilities_ok=False)


def _nll_jax(jnp, input, target, weight=None, ignore_index=-100, reduction="mean"):
    axis = 0 if input.ndim == 1 else 1
    C = input.shape[axis]
    w = jnp.ones(C, input.dtype) if weight is None else weight
    valid = target != ignore_index
    y = jnp.where(valid, target, 0)
    xy = jnp.take_along_axis(input, jnp.expand_dims(y, axis), axis).squeeze(axis)
    wy = jnp.where(valid, w[y], 0)
    return _jax_reduce(jnp, -wy * xy, reduction, divisor=wy.sum() if reduction == "mean" else None)


def _nll_sample(rng, size, dtype, classes=100):
    (x, y), _ = _class_sample(rng, size, dtype, classes)
    x = x - np.log(np.exp(x.astype(np.float64)).sum(1, keepdims=True)).astype(dtype)
    return (x, y), {}


def _nll_2d_sample(rng, size, dtype):
    """(N, 21, H, W) segmentation logits (log-probabilities), N * 21 * H * W
    about 1.3 * size (2**24: (16, 21, 256, 256))."""
    side = 256 if size >= 1 << 22 else 16
    n = max(1, round(size * 1.3125 / (21 * side * side)))
    x = rng.standard_normal((n, 21, side, side)).astype(dtype)
    x = x - np.log(np.exp(x.astype(np.float64)).sum(1, keepdims=True)).astype(dtype)
    return (x, rng.integers(0, 21, (n, side, side))), {}


nll_loss, nll_loss_backward, nll_loss_value_and_grad = _export(
    define(_nll_loss, class_name="NLLLoss", family="classification", grads=("input",), sample=_nll_sample,
           class_options=("weight", "ignore_index", "reduction"), torch="nll_loss", jax=_nll_jax,
           bench_variants=(("2d", _nll_2d_sample),))
)


from . import _linear  # noqa: E402


def _linear_cross_entropy(mode, grad_output, out, input, linear_weight, target, *, linear_bias=None, weight=None,
                          reduction="mean", ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0,
                          softcap=None):
    r"""Cross entropy of the logits ``z = input @ W.T + b`` (``torch.nn.Linear``
    then :func:`cross_entropy`) without ever forming the ``(N, V)`` logits:
    ``linear_cross_entropy(x, W, y, **o) == cross_entropy(linear(x, W, b), y, **o)``
    with ``W`` the ``linear_weight`` and ``b`` the ``linear_bias``.

    Shapes: ``input`` (H) or (N, H); ``linear_weight`` (C, H), or (C, d1, ...,
    dk, H) for a K-dimensional loss (batched input only): the logits are then
    (N, C, d1, ..., dk), ``z[n, c, j] = input[n] . W[c, j] + b[c, j]``, and the
    softmax runs over ``C`` at every ``j``; ``linear_bias`` (C, d1, ..., dk) or
    None; ``target`` class indices (any integer dtype) of shape (), (N) or
    (N, d1, ..., dk), or probabilities (a float array of the logits' shape);
    ``weight`` (C,). Losses, reductions, ``weight`` and ``label_smoothing``
    as :func:`cross_entropy` (``'mean'`` divides by the summed ``weight[y]``
    of the rows not ignored, or by the number of rows for probabilities).
    ``ignore_index=None`` is -100 for class indices (torch); giving it with
    probability targets raises ValueError. ``z_loss`` and ``softcap`` (beyond
    torch) act on the logits ``z`` exactly as in :func:`cross_entropy`; their
    defaults leave torch's results unchanged.

    Gradients: with ``G = d loss / d z`` (:func:`cross_entropy`'s gradient),
    ``grad_input = G @ W``, ``grad_linear_weight = G.T @ input``,
    ``grad_linear_bias = G.sum(0)`` (None without a bias). A ``'mean'`` over
    rows that are all ignored is NaN and its gradients are 0, as torch's
    reference path (``options=None``).

    Chunking: rows are processed ``chunk_size`` at a time (default: a logits
    buffer of about 64 MiB, ``chunk_size * V * itemsize``); each chunk's
    logits are one matrix product (NumPy's BLAS) into that buffer, the
    cross-entropy kernel turns them into the losses and, in place, into
    ``G``, and two more products accumulate the gradients. Extra memory
    beyond the inputs and gradients: the buffer, an accumulation scratch at
    most as large, and O(N + V). Any ``chunk_size`` gives the same maths (equal up to
    rounding); results do not depend on the thread counts.

    Dtypes: float32 and float64 in their own precision; float16/bfloat16
    computed in float32 (converted copies of ``input`` and ``linear_weight``)
    and returned in the input's dtype; mixed dtypes promote."""
    return _linear.evaluate(mode, grad_output, out, input, linear_weight, target, linear_bias, weight, reduction,
                            ignore_index, label_smoothing, chunk_size, z_loss, softcap)


def _lce_torch(torch, input, linear_weight, target, chunk_size=None, z_loss=0.0, softcap=None, **options):
    """torch's linear_cross_entropy; with z_loss / softcap, linear then the
    cross_entropy peer (Liger-Kernel's definition in torch ops)."""
    if not z_loss and softcap is None:
        return torch.nn.functional.linear_cross_entropy(input, linear_weight, target, **options)
    bias, ignore_index = options.pop("linear_bias", None), options.pop("ignore_index", None)
    logits = torch.einsum("nh,...h->n...", input, linear_weight) if input.dim() == 2 else torch.einsum(
        "h,...h->...", input, linear_weight)
    if bias is not None:
        logits = logits + bias
    return _cross_entropy_torch(torch, logits, target, ignore_index=-100 if ignore_index is None else ignore_index,
                                z_loss=z_loss, softcap=softcap, **options)


def _lce_jax(jnp, input, linear_weight, target, linear_bias=None, weight=None, reduction="mean", ignore_index=None,
             label_smoothing=0.0, chunk_size=None, z_loss=0.0, softcap=None):
    classes, out_features, features = linear_weight.shape[0], linear_weight.shape[1:-1], linear_weight.shape[-1]
    logits = input @ linear_weight.reshape(-1, features).T
    if linear_bias is not None:
        logits = logits + linear_bias.reshape(-1)
    logits = logits.reshape(input.shape[:-1] + (classes,) + tuple(out_features))
    return _cross_entropy_jax(jnp, logits, target, weight, -100 if ignore_index is None else ignore_index,
                              reduction, label_smoothing, z_loss, softcap)


def _lce_sample(rng, size, dtype, features=64, classes=1000):
    rows, classes = _rows_classes(size, classes)
    x = rng.standard_normal((rows, features)).astype(dtype)
    w = (rng.standard_normal((classes, features)) / math.sqrt(features)).astype(dtype)
    return (x, w, rng.integers(0, classes, rows)), {}


linear_cross_entropy, linear_cross_entropy_backward, linear_cross_entropy_value_and_grad = _export(
    define(_linear_cross_entropy, class_name="LinearCrossEntropyLoss", family="classification",
           grads=("input", "linear_weight", "linear_bias"), sample=_lce_sample,
           class_options=("weight", "reduction", "ignore_index", "label_smoothing", "chunk_size", "z_loss", "softcap"),
           torch=_lce_torch, jax=_lce_jax)  # the language-model head's shape: fastloss bench --lce
)



def _last_axis_input(input):
    """An input whose class axis is its last: (C) or (N, C) (and, for
    multilabel_soft_margin_loss, any leading dimensions)."""
    x = _v.check_float(_v.as_array(input, "input"), "input")
    if x.ndim == 0:
        raise ValueError("input: expected 1 or more dimensions (got 0)")
    rows = _rw.numel(x.shape[:-1])
    return x, (rows, x.shape[-1], 1), x.shape[:-1]


def _multilabel_soft_margin_loss(mode, grad_output, out, input, target, weight=None, reduction="mean"):
    r"""Multi-label one-versus-all loss on logits, the mean over the classes
    (the last axis) of ``w * (t * softplus(-x) + (1 - t) * softplus(x))``
    (torch's ``-(t * log_sigmoid(x) + (1 - t) * log_sigmoid(-x))``, computed
    stably for any ``x``), then the reduction over the rows.

    ``input`` (C) or (N, C) (any leading dimensions); ``target`` input's
    shape (float, int or bool); ``weight`` broadcasts into input's shape:
    a per-class weight ((C,), (1, C)) runs in the row-wise kernel, any other
    weight (per element or per row) through the element-wise
    ``binary_cross_entropy_with_logits`` kernel (the same per-element loss).

    Gradient w.r.t. input: ``w * (sigmoid(x) - t) / C``."""
    red = _v.reduction(reduction)
    x, cube, loss_shape = _last_axis_input(input)
    t = _v.check_real(_v.as_array(target, "target"), "target")
    if t.shape != x.shape:
        raise ValueError(f"target: shape {t.shape} must equal input's shape {x.shape}")
    wobj = None
    if weight is not None:
        wobj = _v.check_real(_v.as_array(weight, "weight"), "weight")
        if _v.broadcast_shapes(wobj.shape, x.shape) != x.shape:
            raise ValueError(f"weight: shape {wobj.shape} cannot be broadcast to input's shape {x.shape}")
        if wobj.ndim and any(n != 1 for n in wobj.shape[:-1]) or (wobj.ndim and wobj.shape[-1] != x.shape[-1]) \
                or wobj.ndim == 0:
            return _multilabel_soft_margin_elementwise(mode, grad_output, out, input, target, weight, red,
                                                       loss_shape, x.shape[-1])
    rdtype, kdtype = _v.result_dtype((input, x), (target, t), (weight, wobj))
    kt = _rw.as_cube(_v.for_kernel(t, kdtype, t.shape), cube)
    kw = None if wobj is None else _rw.class_weight(wobj.reshape(-1), cube[1], kdtype)
    return _rw.evaluate("multilabel_soft_margin_loss", mode, x, cube, loss_shape, kt, red, kdtype=kdtype,
                        rdtype=rdtype, weight=kw, grad_output=grad_output, out=out, sources=(x, t, wobj))


def _multilabel_soft_margin_elementwise(mode, grad_output, out, input, target, weight, red, loss_shape, classes):
    """A weight that is not per class: the per-element losses from the
    binary_cross_entropy_with_logits kernel, averaged over the last axis."""
    per_element = binary_cross_entropy_with_logits(input, target, weight=weight, reduction="none")
    rows = per_element.sum(axis=-1, dtype=np.float64) / classes
    if red == _v.NONE:
        value = rows.astype(per_element.dtype)
    elif red == _v.SUM:
        value = per_element.dtype.type(rows.sum())
    else:
        value = per_element.dtype.type(_v.divide(rows.sum(), rows.size))
    if mode == _PARTIAL:
        return _Partial(float(rows.sum()), rows.size, per_element.dtype)
    if mode == _FORWARD:
        return value
    row_shape = tuple(loss_shape) if red == _v.NONE else ()
    scale, g, _ = _v.grad_output(grad_output, row_shape, np.dtype(np.float64))
    g = np.ones(row_shape) * scale if g is None else np.asarray(g, np.float64)
    if red == _v.MEAN:
        g = g / max(1, int(np.prod(loss_shape))) if int(np.prod(loss_shape)) else g * np.nan
    go = np.broadcast_to((np.asarray(g) / classes)[..., np.newaxis], per_element.shape)
    grad = binary_cross_entropy_with_logits_backward(input, target, weight=weight, reduction="none",
                                                     grad_output=go, out=out)
    return grad if mode == _BACKWARD else (value, grad)


def _mlsm_jax(jnp, input, target, weight=None, reduction="mean"):
    value = target * jnp.logaddexp(0, -input) + (1 - target) * jnp.logaddexp(0, input)
    if weight is not None:
        value = value * weight
    return _jax_reduce(jnp, value.mean(axis=-1), reduction)


def _multilabel_sample(rng, size, dtype, classes=1000):
    rows, classes = _rows_classes(size, classes)
    x = rng.standard_normal((rows, classes)).astype(dtype)
    y = (rng.random((rows, classes)) < 0.1).astype(dtype)
    return (x, y), {}


(multilabel_soft_margin_loss, multilabel_soft_margin_loss_backward,
 multilabel_soft_margin_loss_value_and_grad) = _export(
    define(_multilabel_soft_margin_loss, class_name="MultiLabelSoftMarginLoss", family="classification",
           grads=("input",), sample=_multilabel_sample, class_options=("weight", "reduction"),
           torch="multilabel_soft_margin_loss", jax=_mlsm_jax)
)


def _matrix_input(input):
    """(C) or (N, C) (torch: 'non-empty vector or matrix'); a 0-d input is one class."""
    x = _v.check_float(_v.as_array(input, "input"), "input")
    if x.ndim > 2:
        raise ValueError(f"input: expected a vector or a matrix (N, C), got shape {x.shape}")
    if x.ndim == 2:
        return x, (x.shape[0], x.shape[1], 1)
    return x, (1, x.size, 1)


def _multi_margin_loss(mode, grad_output, out, input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    r"""Multi-class hinge loss: for each row with class index ``y``,
    ``l = (w[y] / C) * sum_{c != y} max(margin - x[y] + x[c], 0)**p``, ``p`` 1 or 2.

    ``input`` (C) or (N, C); ``target`` one class index per row (any integer
    dtype; an index outside [0, C) raises IndexError naming it); ``weight``
    (C,). ``p`` other than 1 or 2 raises ValueError.
    Gradient: ``(w[y] / C) * p * max(z, 0)**(p - 1)`` for ``c != y``
    (``z = margin - x[y] + x[c] > 0``), minus their sum at ``y``."""
    red = _v.reduction(reduction)
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p: expected an int, got {type(p).__name__}")
    if p != 1 and p != 2:
        raise ValueError(f"p: only p == 1 and p == 2 are supported (got {p})")
    margin = _v.real_number(margin, "margin")
    x, cube = _matrix_input(input)
    t = _v.as_array(target, "target")
    if _v.is_float(t.dtype) or t.dtype.kind == "b":
        raise TypeError(f"target: expected an integer array of class indices, got dtype {t.dtype}")
    kt = _rw.index_target(_v.check_real(t, "target"))
    if x.ndim == 2:
        if kt.shape != (x.shape[0],):
            raise ValueError(f"target: expected shape ({x.shape[0]},), got {kt.shape}")
        loss_shape = kt.shape
    else:
        if kt.size != 1 or kt.ndim > 1:
            raise ValueError(f"target: a 1-D input takes one class index, got shape {kt.shape}")
        loss_shape = kt.shape
    wobj = None
    if weight is not None:
        wobj = _v.check_real(_v.as_array(weight, "weight"), "weight")
        if wobj.ndim != 1:
            raise ValueError(f"weight: must be one-dimensional, got shape {wobj.shape}")
    rdtype, kdtype = _v.result_dtype((input, x), (weight, wobj))
    kw = None if wobj is None else _rw.class_weight(wobj, cube[1], kdtype)
    if kdtype == np.float32 and cube[1] >= 1 << 24:
        raise ValueError("input: float32 multi_margin_loss takes fewer than 2**24 classes")
    return _rw.evaluate("multi_margin_loss", mode, x, cube, loss_shape, _rw.as_cube(kt, (cube[0], 1)), red,
                        kdtype=kdtype, rdtype=rdtype, weight=kw, grad_output=grad_output, out=out,
                        options=(float(p), margin), sources=(x, t, wobj))


def _multi_margin_jax(jnp, input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = target.reshape(-1)
    C = x.shape[1]
    xy = jnp.take_along_axis(x, y[:, None], 1)
    z = jnp.maximum(margin - xy + x, 0) ** p
    z = jnp.where(jnp.arange(C)[None, :] == y[:, None], 0, z)
    value = z.sum(1) / C
    if weight is not None:
        value = value * weight[y]
    return _jax_reduce(jnp, value.reshape(target.shape), reduction)


def _multi_margin_sample(rng, size, dtype, classes=1000):
    return _class_sample(rng, size, dtype, classes)


multi_margin_loss, multi_margin_loss_backward, multi_margin_loss_value_and_grad = _export(
    define(_multi_margin_loss, class_name="MultiMarginLoss", family="classification", grads=("input",),
           sample=_multi_margin_sample, class_options=("p", "margin", "weight", "reduction"),
           torch="multi_margin_loss", jax=_multi_margin_jax)
)


def _multilabel_margin_loss(mode, grad_output, out, input, target, reduction="mean"):
    r"""Multi-label hinge loss. Each row of ``target`` lists the row's target
    classes, ended by the first -1 (or the row's end); with ``J`` that set,
    ``l = (1 / C) * sum_{j in targets} sum_{i not in J} max(1 - (x[j] - x[i]), 0)``
    (a class listed twice counts twice, as torch).

    ``input`` (C) or (N, C); ``target`` input's shape, any integer dtype; every
    entry of a row, also after its first -1, must lie in [-1, C) (IndexError
    naming it, as torch rejects it)."""
    red = _v.reduction(reduction)
    x, cube = _matrix_input(input)
    t = _v.as_array(target, "target")
    if _v.is_float(t.dtype) or t.dtype.kind == "b":
        raise TypeError(f"target: expected an integer array of class indices, got dtype {t.dtype}")
    kt = _rw.index_target(_v.check_real(t, "target"))
    if kt.shape != x.shape:
        raise ValueError(f"target: shape {kt.shape} must equal input's shape {x.shape}")
    loss_shape = x.shape[:1] if x.ndim == 2 else ()
    rdtype, kdtype = _v.result_dtype((input, x))
    return _rw.evaluate("multilabel_margin_loss", mode, x, cube, loss_shape, _rw.as_cube(kt, cube), red,
                        kdtype=kdtype, rdtype=rdtype, grad_output=grad_output, out=out, sources=(x, t))


def _mlm_jax(jnp, input, target, reduction="mean"):
    x = input if input.ndim == 2 else input.reshape(1, -1)
    y = target if target.ndim == 2 else target.reshape(1, -1)
    C = x.shape[1]
    listed = jnp.cumprod(y >= 0, axis=1).astype(bool)
    ys = jnp.where(listed, y, 0)
    is_target = jnp.any((ys[:, :, None] == jnp.arange(C)[None, None, :]) & listed[:, :, None], axis=1)
    xj = jnp.take_along_axis(x, ys, 1)
    z = jnp.maximum(1 - xj[:, :, None] + x[:, None, :], 0)
    z = jnp.where(listed[:, :, None] & ~is_target[:, None, :], z, 0)
    value = z.sum((1, 2)) / C
    return _jax_reduce(jnp, value if input.ndim == 2 else value[0], reduction)


def _multilabel_margin_sample(rng, size, dtype, classes=100):
    rows, classes = _rows_classes(size if isinstance(size, tuple) else size // 4, classes)
    x = rng.standard_normal((rows, classes)).astype(dtype)
    y = np.full((rows, classes), -1, np.int64)
    for k in range(min(4, classes)):  # up to 4 targets a row
        y[:, k] = rng.integers(0, classes, rows)
    if classes > 3:
        y[rng.random(rows) < 0.5, 3] = -1
    return (x, y), {}


multilabel_margin_loss, multilabel_margin_loss_backward, multilabel_margin_loss_value_and_grad = _export(
    define(_multilabel_margin_loss, class_name="MultiLabelMarginLoss", family="classification", grads=("input",),
           sample=_multilabel_margin_sample, torch="multilabel_margin_loss", jax=_mlm_jax)
)
# ------------------------------------------------------------ beyond torch.nn
#
# Losses torch.nn does not have (issue 14), on the same element-wise layer and
# with the same contract; each is checked against an outside oracle
# (torchvision's and Liger-Kernel's definitions, optax, scikit-learn). Their
# torch= peers are those definitions written in torch ops (what a torch user
# copies today).


def _finite_number(value, name):
    value = _v.real_number(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value}")
    return value


def _torch_reduce(value, reduction, divisor=None):
    if reduction == "none":
        return value
    if reduction == "sum":
        return value.sum()
    return value.sum() / divisor if divisor is not None else value.mean()


def _sigmoid_focal_loss(mode, grad_output, out, input, target, alpha=0.25, gamma=2.0, reduction="none"):
    r"""Sigmoid focal loss (Lin et al. 2017), as ``torchvision.ops.sigmoid_focal_loss``:
    with ``p = sigmoid(x)`` and ``p_t = p * t + (1 - p) * (1 - t)``,
    ``l = a_t * ce * (1 - p_t)**gamma``, ``ce = binary_cross_entropy_with_logits(x, t)``,
    ``a_t = alpha * t + (1 - alpha) * (1 - t)`` (``alpha < 0``: ``a_t = 1``).

    Args:
        input: logits, any shape (float16/32/64, bfloat16).
        target: ``input``'s shape exactly; binary labels or soft targets in [0, 1]
            (not checked, as torchvision: other values follow the formula).
        alpha: finite; ``>= 0`` weighs positives by ``alpha``, negatives by
            ``1 - alpha`` (torchvision documents [0, 1]); ``< 0`` turns it off.
        gamma: finite, ``>= 0`` (ValueError otherwise); 0 is the weighted BCE.
        reduction: ``'none'`` (the default, as torchvision), ``'mean'`` or ``'sum'``.

    Computed stably for any ``|x|``: ``1 - p_t = p (1 - t) + (1 - p) t`` with
    ``1 - p = sigmoid(-x)`` (torchvision's ``1 - p_t`` is 0 once ``p`` rounds to 1,
    ``|x| > 17`` in float32). Gradient w.r.t. input:
    ``a_t (1 - p_t)**gamma ((p - t) + gamma * ce * p (1 - p)(1 - 2t) / (1 - p_t))``,
    with the limit 0 for the second term where ``1 - p_t == 0`` (torch's autograd
    gives NaN there for ``0 < gamma < 1``)."""
    alpha = _finite_number(alpha, "alpha")
    gamma = _finite_number(gamma, "gamma")
    if gamma < 0:
        raise ValueError(f"gamma: must be >= 0, got {gamma}")
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _same_shape(ops)
    return _ew.evaluate_table("sigmoid_focal_loss", mode, ops, (0,), red, grad_output=grad_output, out=out,
                              options=(alpha, gamma))


def _focal_torch(torch, input, target, alpha=0.25, gamma=2.0, reduction="none"):
    # torchvision.ops.sigmoid_focal_loss's lines (torchvision 0.29).
    p = torch.sigmoid(input)
    ce_loss = torch.nn.functional.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _torch_reduce(loss, reduction)


def _focal_jax(jnp, input, target, alpha=0.25, gamma=2.0, reduction="none"):
    # The same loss with 1 - p_t free of cancellation (as fastloss computes it).
    softplus_neg = jnp.logaddexp(0, -input)
    p, p_neg = jnp.exp(-softplus_neg), jnp.exp(-jnp.logaddexp(0, input))
    loss = ((1 - target) * input + softplus_neg) * (p * (1 - target) + p_neg * target) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _jax_reduce(jnp, loss, reduction)


def _focal_sample(rng, size, dtype):
    x = (3 * rng.standard_normal(size)).astype(dtype)
    y = (rng.random(size) < 0.25).astype(dtype)
    return (x, y), {}


sigmoid_focal_loss, sigmoid_focal_loss_backward, sigmoid_focal_loss_value_and_grad = _export(
    define(_sigmoid_focal_loss, class_name="SigmoidFocalLoss", family="probabilistic", grads=("input",),
           sample=_focal_sample, class_options=("alpha", "gamma", "reduction"), torch=_focal_torch, jax=_focal_jax)
)


def _log_cosh_loss(mode, grad_output, out, input, target, reduction="mean"):
    r"""Log-cosh: ``l = log(cosh(input - target))``, as ``optax.log_cosh``
    (``~ d**2 / 2`` for small ``d``, ``|d| - log 2`` for large).

    ``input`` and ``target`` broadcast together (as optax). Computed from
    ``m = expm1(|d|)`` as ``log1p(m**2 / (2 (1 + m)))`` (``|d| - log 2``
    beyond ``|d| = 20``): accurate to a few ulp for every ``d``, where optax's
    ``logaddexp(d, -d) - log 2`` loses ``d**2 / 2`` to rounding for small ``d``.
    Gradient: ``tanh(input - target)``."""
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _v.broadcast_operands(ops)
    return _ew.evaluate_table("log_cosh_loss", mode, ops, (0,), red, grad_output=grad_output, out=out)


def _log_cosh_torch(torch, input, target, reduction="mean"):
    d = input - target  # optax.log_cosh's lines
    return _torch_reduce(torch.logaddexp(d, -d) - math.log(2.0), reduction)


def _log_cosh_jax(jnp, input, target, reduction="mean"):
    # optax's logaddexp(d, -d) - log 2 cancels for small d; this form does not.
    a = jnp.abs(input - target)
    m = jnp.expm1(jnp.minimum(a, 20.0))
    return _jax_reduce(jnp, jnp.where(a > 20, a - math.log(2.0), jnp.log1p(m * (m / (2 * (1 + m))))), reduction)


log_cosh_loss, log_cosh_loss_backward, log_cosh_loss_value_and_grad = _export(
    define(_log_cosh_loss, class_name="LogCoshLoss", family="regression", grads=("input",),
           sample=_regression_sample, torch=_log_cosh_torch, jax=_log_cosh_jax)
)


def _pinball_loss(mode, grad_output, out, input, target, quantile=0.5, reduction="mean", weight=None):
    r"""Pinball (quantile) loss, as ``sklearn.metrics.mean_pinball_loss``
    (``y_true = target``, ``y_pred = input``, ``alpha = quantile``): with
    ``d = target - input``, ``l = w * quantile * d`` where ``d >= 0``, else
    ``w * (quantile - 1) * d``.

    Args:
        input, target: broadcast together.
        quantile: in [0, 1] (ValueError otherwise, as scikit-learn).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        weight: optional, broadcast into the loss's shape; weighted ``'mean'``
            is ``sum(w * l) / sum(w)`` (scikit-learn's ``sample_weight``: a
            ``(n, 1)`` weight for ``(n, k)`` targets).

    Gradient w.r.t. input: ``-w * quantile`` where ``d > 0``, ``w * (1 - quantile)``
    where ``d < 0``, and 0 at ``d == 0`` (a subgradient: 0 lies in
    ``[-quantile, 1 - quantile]``; ``quantile=0.5`` is half of :func:`l1_loss`,
    gradient included) and for NaN."""
    quantile = _v.real_number(quantile, "quantile")
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile: must be in [0, 1], got {quantile}")
    red = _v.reduction(reduction)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    shape = _v.broadcast_operands(ops)
    w = _into(weight, "weight", shape)
    return _ew.evaluate_table("pinball_loss", mode, ops, (0,), red, weight=w, grad_output=grad_output, out=out,
                              options=(quantile,), weight_divides_mean=True)


def _pinball_torch(torch, input, target, quantile=0.5, reduction="mean", weight=None):
    d = target - input
    value = quantile * torch.relu(d) + (1 - quantile) * torch.relu(-d)
    if weight is None:
        return _torch_reduce(value, reduction)
    value = weight * value
    return _torch_reduce(value, reduction, None if reduction != "mean" else weight.expand_as(value).sum())


def _pinball_jax(jnp, input, target, quantile=0.5, reduction="mean", weight=None):
    d = target - input
    value = quantile * jnp.maximum(d, 0) + (1 - quantile) * jnp.maximum(-d, 0)
    if weight is None:
        return _jax_reduce(jnp, value, reduction)
    value = weight * value
    return _jax_reduce(jnp, value, reduction, jnp.sum(jnp.broadcast_to(weight, value.shape)))


def _pinball_sample(rng, size, dtype):
    x = rng.standard_normal(size).astype(dtype)
    y = rng.standard_normal(size).astype(dtype)
    return (x, y), {"quantile": 0.9}


pinball_loss, pinball_loss_backward, pinball_loss_value_and_grad = _export(
    define(_pinball_loss, class_name="PinballLoss", family="regression", grads=("input",), sample=_pinball_sample,
           class_options=("quantile", "reduction"), torch=_pinball_torch, jax=_pinball_jax)
)


def _jensen_shannon_divergence(mode, grad_output, out, input, target, beta=0.5, log_target=True,
                               reduction="batchmean"):
    r"""Generalized Jensen–Shannon divergence of log-probabilities, Liger-Kernel's
    definition (``liger_kernel.transformers.functional.liger_jsd``): with
    ``Q = exp(input)`` (the prediction, a student's), ``P`` the target
    (a teacher's) and ``M = beta * P + (1 - beta) * Q``,
    ``JSD_beta = beta * KL(P || M) + (1 - beta) * KL(Q || M)``, element-wise
    ``l = beta * P * (log P - log M) + (1 - beta) * Q * (input - log M)``.

    Args:
        input: log-probabilities ``log Q`` (e.g. a ``log_softmax``), any shape.
        target: ``log P`` (``log_target=True``, the default: Liger-Kernel's
            convention, both arguments in log space) or ``P`` itself
            (``log_target=False``, as ``kl_div``'s default); broadcasts with ``input``.
        beta: in [0, 1] (ValueError otherwise). As Liger-Kernel, ``beta = 0``
            is the forward KL ``KL(P || Q)`` and ``beta = 1`` the reverse KL
            ``KL(Q || P)`` (the formula itself would give 0 there); 0.5 is the JSD.
        reduction: ``'batchmean'`` (the default: sum / ``input.shape[0]``, Liger's
            sum over rows / rows), ``'sum'``, ``'mean'`` (sum / element count)
            or ``'none'``.

    A term whose probability is 0 contributes 0 (``xlogy``'s convention), also
    for log-probabilities of ``-inf``, where Liger's kernel gives NaN.
    Gradient w.r.t. input: ``(1 - beta) * Q * (input - log M)``; ``-P`` for
    ``beta = 0``; ``Q * (input - log P) + Q`` for ``beta = 1``."""
    beta = _v.real_number(beta, "beta")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta: must be in [0, 1], got {beta}")
    log_target = _bool_option(log_target, "log_target")
    code = _v.reduction(reduction, _KL_REDUCTIONS)
    ops = [_operand(input, "input", differentiable=True), _operand(target, "target", differentiable=False)]
    _v.broadcast_operands(ops)
    code, divisor = _batchmean(code, ops[0][2])
    return _ew.evaluate_table("jensen_shannon_divergence", mode, ops, (0,), code, grad_output=grad_output, out=out,
                              options=(beta, log_target), divisor=divisor)


def _jsd_torch(torch, input, target, beta=0.5, log_target=True, reduction="batchmean"):
    # Liger-Kernel's _jsd_kernel lines (ops/jsd.py), element-wise.
    x = input
    y = target if log_target else torch.log(target)
    p = torch.exp(target) if log_target else target
    q = torch.exp(x)
    if beta == 0:
        loss = p * (y - x)
    elif beta == 1:
        loss = q * (x - y)
    else:
        m = beta * p + (1 - beta) * q
        loss = beta * p * y + (1 - beta) * q * x - m * torch.log(m)
    return _torch_reduce(loss, reduction, (input.shape[0] if input.ndim else 1) if reduction == "batchmean" else None)


def _jsd_jax(jnp, input, target, beta=0.5, log_target=True, reduction="batchmean"):
    y = target if log_target else jnp.log(target)
    p = jnp.exp(target) if log_target else target
    q = jnp.exp(input)
    if beta == 0:
        loss = p * (y - input)
    elif beta == 1:
        loss = q * (input - y)
    else:
        log_m = jnp.log(beta * p + (1 - beta) * q)
        loss = beta * p * (y - log_m) + (1 - beta) * q * (input - log_m)
    if reduction == "batchmean":
        return jnp.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _jax_reduce(jnp, loss, reduction)


def _jsd_sample(rng, size, dtype):
    # Rows of log-probabilities (log_softmax over the last axis: 16 classes
    # for a size that is a multiple of 16, else one row; a shape as given):
    # 'batchmean' is the mean JSD of a row.
    if isinstance(size, tuple):
        shape = size
    else:
        shape = (size // 16, 16) if size % 16 == 0 and size > 0 else (1, size)

    def log_softmax(z):
        z = 2 * z - (2 * z).max(axis=-1, keepdims=True, initial=-np.inf)
        with np.errstate(divide="ignore"):  # (rows of no classes: size 0)
            return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    return (log_softmax(rng.standard_normal(shape)).astype(dtype),
            log_softmax(rng.standard_normal(shape)).astype(dtype)), {}


(jensen_shannon_divergence, jensen_shannon_divergence_backward,
 jensen_shannon_divergence_value_and_grad) = _export(
    define(_jensen_shannon_divergence, class_name="JensenShannonDivergenceLoss", family="probabilistic",
           grads=("input",), sample=_jsd_sample, class_options=("beta", "log_target", "reduction"),
           torch=_jsd_torch, jax=_jsd_jax)
)


# The row-wise ones (cpp/src/losses/classification.h, the row-wise driver:
# fixed blocks of rows, sums in fixed slots, bitwise identical for any thread
# count): poly-1 cross entropy and softmax focal loss on class indices, Dice
# over each sample's features.


def _poly1_cross_entropy(mode, grad_output, out, input, target, epsilon=1.0, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0):
    r"""Poly-1 cross entropy (Leng et al. 2022, optax's ``poly_loss_cross_entropy``):
    :func:`cross_entropy` plus ``epsilon * w[y] * (1 - p_t)`` per row, with
    ``p = softmax(input)`` along the class axis and ``p_t = (1 - e) * p[y] + e / C``
    the probability of the (smoothed, ``e = label_smoothing``) label — optax's
    ``sum(labels * (1 - softmax))`` with those labels.

    ``weight`` (C,) multiplies the poly term by ``w[y]`` as it does the cross
    entropy; ``'mean'`` divides by ``sum(w[y])`` over the rows whose target is
    not ``ignore_index`` (ignored rows add nothing; NaN when none is left).
    ``epsilon`` is any finite number (1.0 as the paper's Poly-1; optax's default
    is 2.0). Class-index targets only (shapes as :func:`cross_entropy`'s:
    ``input`` (C), (N, C) or (N, C, d1, ..., dk); any integer dtype).

    Gradient w.r.t. input: cross_entropy's plus
    ``epsilon * w[y] * (1 - e) * p[y] * (p - onehot(y))``."""
    ignore_index = _rw.check_index(ignore_index, "ignore_index")
    epsilon = _finite_number(epsilon, "epsilon")
    label_smoothing = _v.real_number(label_smoothing, "label_smoothing")
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing: must be between 0.0 and 1.0 (got {label_smoothing})")
    if not label_smoothing > 0.0:
        label_smoothing = 0.0
    return _class_loss("poly1_cross_entropy", mode, grad_output, out, input, target, weight, reduction,
                       (ignore_index, label_smoothing, epsilon), probabilities_ok=False)


def _poly1_torch(torch, input, target, epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
    """optax's poly_loss_cross_entropy (one-hot labels, smoothed), with torch's weight and ignore_index."""
    F = torch.nn.functional
    ce = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction="none",
                         label_smoothing=label_smoothing)
    axis = 0 if input.dim() == 1 else 1
    valid = target != ignore_index
    y = torch.where(valid, target, 0)
    p_y = torch.gather(torch.softmax(input, axis), axis, y.unsqueeze(axis)).squeeze(axis)
    e = max(label_smoothing, 0.0)
    wy = torch.ones_like(p_y) if weight is None else weight[y]
    wy = torch.where(valid, wy, torch.zeros_like(wy))
    value = ce + epsilon * wy * (1 - ((1 - e) * p_y + e / input.shape[axis]))
    return _torch_reduce(value, reduction, wy.sum() if reduction == "mean" else None)


def _poly1_jax(jnp, input, target, epsilon=1.0, weight=None, ignore_index=-100, reduction="mean",
               label_smoothing=0.0):
    e = label_smoothing if label_smoothing > 0 else 0.0
    ce = _cross_entropy_jax(jnp, input, target, weight, ignore_index, "none", label_smoothing)
    axis = 0 if input.ndim == 1 else 1
    valid = target != ignore_index
    y = jnp.where(valid, target, 0)
    p = jnp.exp(_log_softmax_jax(jnp, input, axis))
    p_y = jnp.take_along_axis(p, jnp.expand_dims(y, axis), axis).squeeze(axis)
    w = jnp.ones(input.shape[axis], input.dtype) if weight is None else weight
    wy = jnp.where(valid, w[y], 0)
    value = ce + epsilon * wy * (1 - ((1 - e) * p_y + e / input.shape[axis]))
    return _jax_reduce(jnp, value, reduction, divisor=wy.sum() if reduction == "mean" else None)


poly1_cross_entropy, poly1_cross_entropy_backward, poly1_cross_entropy_value_and_grad = _export(
    define(_poly1_cross_entropy, class_name="Poly1CrossEntropyLoss", family="classification", grads=("input",),
           sample=_ce_sample,
           class_options=("epsilon", "weight", "ignore_index", "reduction", "label_smoothing"),
           torch=_poly1_torch, jax=_poly1_jax)
)


def _focal_denominator(target, weight, ignore_index, classes):
    """``sum(weight[y])`` (or the count) over the rows not ``ignore_index``,
    float64; None when the target is not valid (the kernel call then raises)."""
    t = _v.as_array(target, "target")
    if t.dtype.kind not in "iu":
        return None
    y = t.reshape(-1)
    y = y[y != ignore_index] if _INT_RANGE(t.dtype, ignore_index) else y
    if y.size and (y.min() < 0 or y.max() >= classes):
        return None
    if weight is None:
        return float(y.size)
    w = np.asarray(_v.as_array(weight, "weight"), np.float64)
    if w.shape != (classes,):
        return None
    return float(np.sum(w[y.astype(np.intp)]))


def _INT_RANGE(dtype, value):
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def _softmax_focal_torch(torch, input, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100,
                         reduction="mean"):
    """Keras' CategoricalFocalCrossentropy (one-hot labels, no clipping), torch's weight and ignore_index."""
    axis = 0 if input.dim() == 1 else 1
    valid = target != ignore_index
    y = torch.where(valid, target, 0)
    lp = torch.gather(torch.log_softmax(input, axis), axis, y.unsqueeze(axis)).squeeze(axis)
    C = input.shape[axis]
    wy = torch.ones_like(lp) if weight is None else weight[y]
    wy = torch.where(valid, wy, torch.zeros_like(wy))
    a = 1.0 if alpha is None else (torch.as_tensor(alpha, dtype=input.dtype).expand(C)[y])
    value = -a * wy * (1 - torch.exp(lp)) ** gamma * lp
    return _torch_reduce(value, reduction, wy.sum() if reduction == "mean" else None)


def _softmax_focal_jax(jnp, input, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100, reduction="mean"):
    axis = 0 if input.ndim == 1 else 1
    valid = target != ignore_index
    y = jnp.where(valid, target, 0)
    lp = jnp.take_along_axis(_log_softmax_jax(jnp, input, axis), jnp.expand_dims(y, axis), axis).squeeze(axis)
    C = input.shape[axis]
    w = jnp.ones(C, input.dtype) if weight is None else weight
    wy = jnp.where(valid, w[y], 0)
    a = 1.0 if alpha is None else jnp.broadcast_to(jnp.asarray(alpha, input.dtype), (C,))[y]
    value = -a * wy * (-jnp.expm1(lp)) ** gamma * lp
    return _jax_reduce(jnp, value, reduction, divisor=wy.sum() if reduction == "mean" else None)


def _focal_class_sample(rng, size, dtype):
    return _class_sample(rng, size, dtype, 1000)


def _softmax_focal_loss(mode, grad_output, out, input, target, alpha=None, gamma=2.0, weight=None, ignore_index=-100,
                        reduction="mean"):
    r"""Softmax focal loss (Lin et al. 2017) on class indices, Keras'
    ``CategoricalFocalCrossentropy(from_logits=True)`` with one-hot labels: with
    ``p = softmax(input)`` along the class axis and ``lp = log(p[y])``,
    ``l = -a[y] * w[y] * (1 - p[y])**gamma * lp``.

    Args:
        input: logits (C), (N, C) or (N, C, d1, ..., dk).
        target: class indices, input's shape without the class axis (any integer dtype).
        alpha: None (no balancing: ``a = 1``), a finite number (every class), or a
            (C,) array of per-class factors (Keras takes both).
        gamma: finite, ``>= 0``; 0 is (alpha-weighted) cross entropy.
        weight: (C,) class weights, as :func:`cross_entropy`'s.
        ignore_index: rows with this target add nothing (loss and gradient 0).
        reduction: ``'mean'`` divides by ``sum(w[y])`` (the row count without
            ``weight``) over the rows not ignored — ``alpha`` is part of the loss,
            not of the denominator (Keras' mean over samples); NaN when no row is
            left. ``'sum'``, ``'none'``.

    Computed from the log-softmax (no clipping: Keras clips ``p`` to
    ``[1e-7, 1 - 1e-7]``), with ``1 - p[y] = -expm1(lp)`` exact for confident
    rows. Gradient w.r.t. input: ``K * (p - onehot(y))`` with
    ``K = a[y] w[y] (1 - p[y])**gamma (1 - gamma p[y] lp / (1 - p[y]))`` (the
    limit ``lp / (1 - p) -> -1`` where ``p[y]`` rounds to 1)."""
    ignore_index = _rw.check_index(ignore_index, "ignore_index")
    gamma = _finite_number(gamma, "gamma")
    if gamma < 0:
        raise ValueError(f"gamma: must be >= 0, got {gamma}")
    if alpha is None:
        return _class_loss("softmax_focal_loss", mode, grad_output, out, input, target, weight, reduction,
                           (ignore_index, gamma), probabilities_ok=False)
    red = _v.reduction(reduction)
    x, cube, _ = _class_axis_input(input)
    classes = cube[1]
    if isinstance(alpha, (int, float, np.integer, np.floating)) and not isinstance(alpha, (bool, np.bool_)):
        a = np.full(classes, _finite_number(alpha, "alpha"))
    else:
        a = _v.check_real(_v.as_array(alpha, "alpha"), "alpha")
        if a.shape != (classes,):
            raise ValueError(f"alpha: expected a number or a 1-D array of {classes} class factors, got shape {a.shape}")
        a = np.asarray(a, np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("alpha: must be finite")
    combined = a if weight is None else np.asarray(_v.as_array(weight, "weight"), np.float64) * a
    if weight is not None:
        wobj = _v.check_real(_v.as_array(weight, "weight"), "weight")
        if wobj.shape != (classes,):
            raise ValueError(f"weight: expected a 1-D array of {classes} class weights, got shape {wobj.shape}")
        combined = combined.astype(np.result_type(wobj.dtype, np.float32) if wobj.dtype.kind == "f" else np.float64)
    else:
        combined = combined.astype(x.dtype if x.dtype in (np.float32, np.float64) else np.float32)
    if red != _v.MEAN:
        return _class_loss("softmax_focal_loss", mode, grad_output, out, input, target, combined, reduction,
                           (ignore_index, gamma), probabilities_ok=False)
    # 'mean' with alpha folded into the kernel's weight: the kernel sums, the
    # denominator sum(w[y]) comes from the targets (alpha not in it).
    denominator = _focal_denominator(target, weight, ignore_index, classes)
    if mode == _PARTIAL:
        part = _class_loss("softmax_focal_loss", mode, None, None, input, target, combined, "sum",
                           (ignore_index, gamma), probabilities_ok=False)
        return _Partial(part.total, denominator, part.dtype)
    if mode == _FORWARD:  # (the sum in the result dtype, then divided: the same bits as value_and_grad's)
        value = _class_loss("softmax_focal_loss", mode, None, None, input, target, combined, "sum",
                            (ignore_index, gamma), probabilities_ok=False)
        return np.asarray(value).dtype.type(_v.divide(float(value), denominator))
    go = 1.0 if grad_output is None else grad_output
    if np.ndim(go) != 0:
        raise ValueError(f"grad_output: a reduced loss takes a scalar, got shape {np.shape(go)}")
    scale = 1.0 if denominator is None else denominator  # None: an invalid target, the kernel call raises
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.float64(go) / scale
    result = _class_loss("softmax_focal_loss", mode, scaled, out, input, target, combined, "sum",
                         (ignore_index, gamma), probabilities_ok=False)
    if mode == _BACKWARD:
        return result
    value, grad = result
    return np.asarray(value).dtype.type(_v.divide(float(value), denominator)), grad


softmax_focal_loss, softmax_focal_loss_backward, softmax_focal_loss_value_and_grad = _export(
    define(_softmax_focal_loss, class_name="SoftmaxFocalLoss", family="classification", grads=("input",),
           sample=_focal_class_sample,
           class_options=("alpha", "gamma", "weight", "ignore_index", "reduction"),
           torch=_softmax_focal_torch, jax=_softmax_focal_jax)
)


def _dice_loss(mode, grad_output, out, input, target, smooth=0.0, eps=1e-7, reduction="mean"):
    r"""Dice loss on probabilities, per sample: axis 0 is the batch, and each
    sample's sums run over all its other axes (Keras' ``Dice`` with
    ``axis=(1, ..., ndim - 1)``; its defaults: ``smooth=0``, ``eps=1e-7``
    Keras' ``backend.epsilon()``):
    ``l[n] = 1 - (2 sum(x t) + smooth) / (sum(x) + sum(t) + smooth + eps)``,
    then the reduction over the batch (``'mean'``: over the N samples).

    ``input``: (N, d1, ...) probabilities (not checked; a 1-D input is N
    samples of one value each); ``target``: input's shape (float, int or bool).
    ``smooth``, ``eps``: finite numbers. Gradient w.r.t. input:
    ``(2 sum(x t) + smooth) / D**2 - 2 t / D``, ``D`` the denominator."""
    smooth = _finite_number(smooth, "smooth")
    eps = _finite_number(eps, "eps")
    red = _v.reduction(reduction)
    x = _v.check_float(_v.as_array(input, "input"), "input")
    if x.ndim == 0:
        raise ValueError("input: expected 1 or more dimensions (got 0): axis 0 is the batch")
    t = _v.check_real(_v.as_array(target, "target"), "target")
    if t.shape != x.shape:
        raise ValueError(f"target: shape {t.shape} must equal input's shape {x.shape}")
    cube = (x.shape[0], _rw.numel(x.shape[1:]), 1)
    rdtype, kdtype = _v.result_dtype((input, x), (target, t))
    kt = _rw.as_cube(_v.for_kernel(t, kdtype, t.shape), cube)
    return _rw.evaluate("dice_loss", mode, x, cube, (x.shape[0],), kt, red, kdtype=kdtype, rdtype=rdtype,
                        grad_output=grad_output, out=out, options=(smooth, eps), sources=(x, t))


def _dice_torch(torch, input, target, smooth=0.0, eps=1e-7, reduction="mean"):
    axes = tuple(range(1, input.dim()))
    inter = (input * target).sum(axes) if axes else input * target
    union = (input.sum(axes) + target.sum(axes)) if axes else input + target
    return _torch_reduce(1 - (2 * inter + smooth) / (union + smooth + eps), reduction)


def _dice_jax(jnp, input, target, smooth=0.0, eps=1e-7, reduction="mean"):
    axes = tuple(range(1, input.ndim))
    inter = jnp.sum(input * target, axis=axes)
    union = jnp.sum(input, axis=axes) + jnp.sum(target, axis=axes)
    return _jax_reduce(jnp, 1 - (2 * inter + smooth) / (union + smooth + eps), reduction)


def _dice_sample(rng, size, dtype):
    rows, features = _rows_classes(size, 4096)
    x = rng.random((rows, features)).astype(dtype)
    t = (rng.random((rows, features)) < 0.3).astype(dtype)
    return (x, t), {}


dice_loss, dice_loss_backward, dice_loss_value_and_grad = _export(
    define(_dice_loss, class_name="DiceLoss", family="classification", grads=("input",), sample=_dice_sample,
           class_options=("smooth", "eps", "reduction"), torch=_dice_torch, jax=_dice_jax)
)



# ------------------------------------------------------ feature-axis losses
#
# Rows along the last axis of two or three operands, which broadcast
# together (cpp/src/losses/embedding.h: fixed blocks of rows, sums in fixed
# slots, bitwise identical for any thread count). Shapes and errors follow
# torch 2.13; where torch raises RuntimeError fastloss raises ValueError.

import functools as _functools  # noqa: E402

from . import _embedding as _em  # noqa: E402


def _positive_p(p):
    p = _v.real_number(p, "p")
    if not p > 0:
        raise ValueError(f"p: must be > 0 (got {p})")
    return p


def _positive_margin(margin):
    # torch checks `margin <= 0`, so a NaN margin passes and gives NaN.
    margin = _v.real_number(margin, "margin")
    if margin <= 0:
        raise ValueError(f"margin: must be greater than 0, got {margin}")
    return margin


def _distance_mode(mode, grad_output, out, x1, x2, name, options, keepdim=False):
    ops = _em.float_operands((("x1", x1), ("x2", x2)))
    shape = _v.broadcast_operands(ops)
    value_shape = _em.rows_of(shape)[2] + ((1,) if keepdim and shape != () else ())
    return _em.evaluate(name, mode, ops, _v.NONE, value_shape=value_shape, grad_output=grad_output, out=out,
                        options=options)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    r"""``||x1 - x2 + eps||_p`` along the last axis (torch.pairwise_distance):
    ``(sum_i |x1_i - x2_i + eps|^p)^(1/p)``, ``max_i |...|`` for ``p = inf``.

    ``x1`` and ``x2`` broadcast together (any number of dimensions); the
    result has their broadcast shape without the last axis (``keepdim``:
    kept as size 1). ``p > 0`` (ValueError; torch also takes p <= 0).
    Native, with :func:`pairwise_distance_backward` and
    :func:`pairwise_distance_value_and_grad`."""
    return _distance_mode(_FORWARD, None, None, x1, x2, "pairwise_distance",
                          (_positive_p(p), _v.real_number(eps, "eps")), _bool_option(keepdim, "keepdim"))


def pairwise_distance_backward(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, grad_output=None, out=None):
    """``(d / d x1, d / d x2)`` of ``sum(grad_output * pairwise_distance(...))``:
    torch's norm_backward (p = 1: ``sgn(d)``; 2: ``d / ||d||``, 0 where the
    norm is 0; inf: ``sgn(d)`` split over the elements at the maximum; other
    p as torch), ``+`` for x1 and ``-`` for x2. ``out=``: a tuple of two arrays."""
    return _distance_mode(_BACKWARD, grad_output, out, x1, x2, "pairwise_distance",
                          (_positive_p(p), _v.real_number(eps, "eps")), _bool_option(keepdim, "keepdim"))


def pairwise_distance_value_and_grad(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, grad_output=None, out=None):
    """``(pairwise_distance(...), pairwise_distance_backward(...))`` from one pass."""
    return _distance_mode(2, grad_output, out, x1, x2, "pairwise_distance",
                          (_positive_p(p), _v.real_number(eps, "eps")), _bool_option(keepdim, "keepdim"))


def cosine_distance(x1, x2):
    r"""``1 - cosine_similarity(x1, x2)`` along the last axis, with torch's
    ``cosine_similarity(x1, x2, dim=-1, eps=1e-8)``:
    ``cos = sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps))``.

    Shapes as :func:`pairwise_distance`. Native, with
    :func:`cosine_distance_backward` and :func:`cosine_distance_value_and_grad`."""
    return _distance_mode(_FORWARD, None, None, x1, x2, "cosine_distance", ())


def cosine_distance_backward(x1, x2, *, grad_output=None, out=None):
    """``(d / d x1, d / d x2)`` of ``sum(grad_output * cosine_distance(x1, x2))``:
    ``-g (x2 / (|x1|c |x2|c) - cos x1 / (|x1|c |x1|))`` (|.|c the clamped
    norm; the last term is 0 where |x1| is 0), and symmetrically for x2."""
    return _distance_mode(_BACKWARD, grad_output, out, x1, x2, "cosine_distance", ())


def cosine_distance_value_and_grad(x1, x2, *, grad_output=None, out=None):
    """``(cosine_distance(...), cosine_distance_backward(...))`` from one pass."""
    return _distance_mode(2, grad_output, out, x1, x2, "cosine_distance", ())


__all__ += ["pairwise_distance", "pairwise_distance_backward", "pairwise_distance_value_and_grad",
            "cosine_distance", "cosine_distance_backward", "cosine_distance_value_and_grad"]


def _cosine_embedding_loss(mode, grad_output, out, input1, input2, target, margin=0.0, reduction="mean"):
    r"""Cosine embedding loss: per row ``l = 1 - cos`` for target 1 and
    ``max(cos - margin, 0)`` for target -1, with torch's
    ``cos = x1 . x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))``.

    ``input1``/``input2`` (D) with a 0-d ``target``, or (N, D) with an (N,)
    target (they broadcast as in torch); target values other than 1 and -1
    raise ValueError (torch silently gives them loss 0); the target's dtype
    (any real) does not change the result's. Gradients ``(input1, input2)``:
    ``dl/dcos * (x2 / denom - cos x1 / (|x1|^2 + 1e-12))`` and symmetrically,
    with ``dl/dcos`` -1 (target 1) or 1 where ``cos - margin >= 0`` (target -1)."""
    margin = _v.real_number(margin, "margin")
    red = _v.reduction(reduction)
    ops = _em.float_operands((("input1", input1), ("input2", input2)))
    t = _v.check_real(_v.as_array(target, "target"), "target")
    if t.ndim > 1:
        raise ValueError(f"target: 0D or 1D target tensor expected, multi-target not supported (got shape {t.shape})")
    for name, _, a in ops:
        if a.ndim != t.ndim + 1:
            raise ValueError(f"{name}: a {t.ndim}-D target takes {t.ndim + 1}-D inputs, got shape {a.shape}")
    shape = _v.broadcast_operands(ops)
    row_shape = _em.rows_of(shape)[2]
    if _v.broadcast_shapes(t.shape, row_shape) != row_shape:
        raise ValueError(f"target: shape {t.shape} does not match the inputs' rows {row_shape}")
    if t.size and not np.all((t == 1) | (t == -1)):
        raise ValueError("target: values must be 1 or -1")
    _, kdtype = _v.result_dtype(*[(obj, a) for _, obj, a in ops])
    kt = _v.for_kernel(t, kdtype, t.shape)
    return _em.evaluate("cosine_embedding_loss", mode, ops, red, target=kt, grad_output=grad_output, out=out,
                        options=(margin,))


def _cosine_embedding_jax(jnp, input1, input2, target, margin=0.0, reduction="mean"):
    dot = jnp.sum(input1 * input2, -1)
    m1, m2 = jnp.sum(input1 * input1, -1) + 1e-12, jnp.sum(input2 * input2, -1) + 1e-12
    cos = dot / jnp.sqrt(m1 * m2)
    value = jnp.where(target == 1, 1 - cos, jnp.maximum(cos - margin, 0))
    return _jax_reduce(jnp, value, reduction)


def _rows_shape(size, rows_per_element, features):
    """A sample's (rows, features): from an element count, or a shape's own
    (rows, features) when ``size`` is a 2-D shape."""
    if isinstance(size, tuple):
        return (size[0], size[-1]) if len(size) == 2 else (1, int(np.prod(size)))
    return max(1, size // (rows_per_element * features)), features


def _cosine_embedding_sample(rng, size, dtype, features=256):
    shape = _rows_shape(size, 1, features)
    x1 = rng.standard_normal(shape).astype(dtype)
    x2 = rng.standard_normal(shape).astype(dtype)
    t = np.where(rng.random(shape[0]) < 0.5, -1.0, 1.0).astype(dtype)
    return (x1, x2, t), {}


cosine_embedding_loss, cosine_embedding_loss_backward, cosine_embedding_loss_value_and_grad = _export(
    define(_cosine_embedding_loss, class_name="CosineEmbeddingLoss", family="embedding",
           grads=("input1", "input2"), sample=_cosine_embedding_sample, class_options=("margin", "reduction"),
           torch="cosine_embedding_loss", jax=_cosine_embedding_jax)
)


def _triplet_operands(anchor, positive, negative):
    ops = _em.float_operands((("anchor", anchor), ("positive", positive), ("negative", negative)))
    _em.same_ndim(ops)
    _v.broadcast_operands(ops)
    return ops


def _triplet_margin_loss(mode, grad_output, out, anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6,
                         swap=False, reduction="mean"):
    r"""Triplet margin loss: per row ``l = max(margin + d(a, p) - d(a, n), 0)``
    with ``d = pairwise_distance(., ., p, eps)`` (``eps`` added to the
    difference, as torch); ``swap``: ``d(a, n)`` becomes
    ``min(d(a, n), d(p, n))`` (a tie gives each half the gradient, as
    torch.minimum).

    The three inputs have the same number of dimensions (ValueError) and
    broadcast together; rows are the last axis. ``margin > 0`` and ``p > 0``
    (ValueError). Gradients ``(anchor, positive, negative)`` through torch's
    norm_backward; the clamp passes its gradient where its argument is >= 0."""
    margin = _positive_margin(margin)
    p = _positive_p(p)
    eps = _v.real_number(eps, "eps")
    swap = _bool_option(swap, "swap")
    red = _v.reduction(reduction)
    ops = _triplet_operands(anchor, positive, negative)
    return _em.evaluate("triplet_margin_loss", mode, ops, red, grad_output=grad_output, out=out,
                        options=(margin, p, eps, float(swap)))


def _jax_pnorm(jnp, d, p):
    if p == float("inf"):
        return jnp.max(jnp.abs(d), -1)
    if p == 2:
        return jnp.sqrt(jnp.sum(d * d, -1))
    if p == 1:
        return jnp.sum(jnp.abs(d), -1)
    return jnp.sum(jnp.abs(d) ** p, -1) ** (1 / p)


def _triplet_jax(jnp, anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    dp = _jax_pnorm(jnp, anchor - positive + eps, p)
    dn = _jax_pnorm(jnp, anchor - negative + eps, p)
    if swap:
        dn = jnp.minimum(dn, _jax_pnorm(jnp, positive - negative + eps, p))
    return _jax_reduce(jnp, jnp.maximum(margin + dp - dn, 0), reduction)


def _triplet_sample(rng, size, dtype, features=256):
    # Three operands: half the rows of the other losses' samples (the
    # issue's bench shape, 32768 x 256 at the default 2**24 elements).
    shape = _rows_shape(size, 2, features)
    return tuple(rng.standard_normal(shape).astype(dtype) for _ in range(3)), {}


def _triplet_p1_sample(rng, size, dtype):
    return _triplet_sample(rng, size, dtype)[0], {"p": 1.0}


triplet_margin_loss, triplet_margin_loss_backward, triplet_margin_loss_value_and_grad = _export(
    define(_triplet_margin_loss, class_name="TripletMarginLoss", family="embedding",
           grads=("anchor", "positive", "negative"), sample=_triplet_sample,
           class_options=("margin", "p", "eps", "swap", "reduction"), torch="triplet_margin_loss", jax=_triplet_jax,
           bench_variants=(("p=1", _triplet_p1_sample),))
)


def _native_distance(distance_function):
    """``("pnorm", p, eps)`` or ``("cosine",)`` when ``distance_function``
    runs natively (None, fastloss.pairwise_distance, fastloss.cosine_distance
    or a functools.partial of them with keyword options only), else None."""
    if distance_function is None or distance_function is pairwise_distance:
        return ("pnorm", 2.0, 1e-6)
    if distance_function is cosine_distance:
        return ("cosine",)
    if isinstance(distance_function, _functools.partial) and not distance_function.args:
        fn, kw = distance_function.func, dict(distance_function.keywords)
        if fn is pairwise_distance and set(kw) <= {"p", "eps"}:
            return ("pnorm", _positive_p(kw.get("p", 2.0)), _v.real_number(kw.get("eps", 1e-6), "eps"))
        if fn is cosine_distance and not kw:
            return ("cosine",)
    return None


def _triplet_margin_with_distance_loss(mode, grad_output, out, anchor, positive, negative, *, distance_function=None,
                                       margin=1.0, swap=False, reduction="mean"):
    r"""Triplet margin loss with a distance function: per row
    ``l = max(margin + d(a, p) - d(a, n), 0)`` (``swap``: ``min(d(a, n), d(p, n))``).

    ``distance_function``: None (``pairwise_distance``),
    ``fastloss.pairwise_distance``, ``fastloss.cosine_distance`` or a
    ``functools.partial`` of them (keyword options) run natively, with
    gradients. Any other callable gets the NumPy arrays and returns one
    distance per row (forward only); the gradients then need its
    ``backward(x1, x2, grad_distance) -> (grad_x1, grad_x2)`` attribute, else
    NotImplementedError. ``margin > 0`` (ValueError, as torch)."""
    margin = _positive_margin(margin)
    swap = _bool_option(swap, "swap")
    red = _v.reduction(reduction)
    ops = _triplet_operands(anchor, positive, negative)
    native = _native_distance(distance_function)
    if native is not None and native[0] == "pnorm":
        return _em.evaluate("triplet_margin_loss", mode, ops, red, grad_output=grad_output, out=out,
                            options=(margin, native[1], native[2], float(swap)))
    if native is not None:
        return _em.evaluate("triplet_margin_with_distance_loss", mode, ops, red, grad_output=grad_output, out=out,
                            options=(margin, float(swap)))
    if not callable(distance_function):
        raise TypeError(f"distance_function: expected a callable or None, got {type(distance_function).__name__}")
    return _triplet_callable(mode, grad_output, out, ops, distance_function, margin, swap, red)


def _triplet_callable(mode, grad_output, out, ops, fn, margin, swap, red):
    """The triplet over a Python distance function, in NumPy (float64 sums)."""
    backward = getattr(fn, "backward", None)
    if mode not in (_FORWARD, _PARTIAL) and backward is None:
        raise NotImplementedError(
            "distance_function: gradients of a Python distance function need its backward(x1, x2, grad_distance) "
            "-> (grad_x1, grad_x2) attribute; fastloss.pairwise_distance and fastloss.cosine_distance (or a "
            "functools.partial of them) run natively")
    rdtype, _ = _v.result_dtype(*[(obj, a) for _, obj, a in ops])
    a, p, n = (x for _, _, x in ops)
    shape = _v.broadcast_operands(ops)
    row_shape = _em.rows_of(shape)[2]

    def dist(x1, x2, name):
        d = fn(x1, x2)
        try:
            d = np.asarray(d, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise type(e)(f"distance_function: its result for {name} is not an array of real numbers ({e})") from e
        if _v.broadcast_shapes(d.shape, row_shape) != row_shape:
            raise ValueError(f"distance_function: returned shape {d.shape} for {name}; expected {row_shape}")
        return np.broadcast_to(d, row_shape)

    with np.errstate(invalid="ignore", over="ignore"):
        dp, dn = dist(a, p, "(anchor, positive)"), dist(a, n, "(anchor, negative)")
        ds = dist(p, n, "(positive, negative)") if swap else dn
        neg = np.minimum(dn, ds) if swap else dn
        z = margin + dp - neg
        loss = np.maximum(z, 0.0)
    if mode == _PARTIAL:
        return _Partial(float(np.sum(loss)), loss.size, rdtype)
    value = None
    if mode != _BACKWARD:
        if red == _v.NONE:
            value = _v.narrow(np.asarray(loss), rdtype)
        else:
            total = float(np.sum(loss))
            value = _v.narrow(_v.divide(total, loss.size) if red == _v.MEAN else total, rdtype)
    if mode == _FORWARD:
        return value
    scale, kg, _ = _v.grad_output(grad_output, row_shape if red == _v.NONE else (), np.dtype(np.float64))
    g = np.broadcast_to(kg if kg is not None else scale, row_shape).astype(np.float64)
    if red == _v.MEAN:
        g = g / max(loss.size, 1) if loss.size else g * np.nan
    active = np.where(z >= 0, 1.0, 0.0) * g
    if swap:
        sn = np.where(dn == ds, 0.5, np.where(dn > ds, 0.0, 1.0))
        ss = np.where(dn == ds, 0.5, np.where(dn < ds, 0.0, 1.0))
    else:
        sn, ss = np.ones_like(dn), np.zeros_like(dn)
    ga1, gp1 = backward(a, p, active)
    ga2, gn2 = backward(a, n, -active * sn)
    grads = [np.asarray(ga1, np.float64) + np.asarray(ga2, np.float64), np.asarray(gp1, np.float64),
             np.asarray(gn2, np.float64)]
    if swap:
        gp3, gn3 = backward(p, n, -active * ss)
        grads[1] = grads[1] + np.asarray(gp3, np.float64)
        grads[2] = grads[2] + np.asarray(gn3, np.float64)
    outs = _v.outs(out, 3)
    result = []
    for (name, _, x), gr, o in zip(ops, grads, outs):
        gr = np.broadcast_to(gr, shape)
        if o is not None:
            _v.out_array(o, x.shape, x.dtype, tuple(y for _, _, y in ops))
        result.append(_em._to_input(gr, x, o) if o is not None or gr.shape != x.shape else _v.narrow(gr, x.dtype))
    return tuple(result) if mode == _BACKWARD else (value, tuple(result))


def _torch_distance(torch, distance_function):
    """The torch twin of a fastloss distance function (for the peers)."""
    native = _native_distance(distance_function)
    if native is None:
        return distance_function
    if native[0] == "pnorm":
        return _functools.partial(torch.nn.functional.pairwise_distance, p=native[1], eps=native[2])
    return lambda x1, x2: 1 - torch.nn.functional.cosine_similarity(x1, x2, dim=-1)


def _triplet_distance_torch(torch, anchor, positive, negative, distance_function=None, **options):
    return torch.nn.functional.triplet_margin_with_distance_loss(
        anchor, positive, negative, distance_function=_torch_distance(torch, distance_function), **options)


def _triplet_distance_jax(jnp, anchor, positive, negative, distance_function=None, margin=1.0, swap=False,
                          reduction="mean"):
    native = _native_distance(distance_function)
    if native is None:
        return None

    def d(x1, x2):
        if native[0] == "pnorm":
            return _jax_pnorm(jnp, x1 - x2 + native[2], native[1])
        n1 = jnp.maximum(jnp.sqrt(jnp.sum(x1 * x1, -1)), 1e-8)
        n2 = jnp.maximum(jnp.sqrt(jnp.sum(x2 * x2, -1)), 1e-8)
        return 1 - jnp.sum((x1 / n1[..., None]) * (x2 / n2[..., None]), -1)

    dp, dn = d(anchor, positive), d(anchor, negative)
    if swap:
        dn = jnp.minimum(dn, d(positive, negative))
    return _jax_reduce(jnp, jnp.maximum(margin + dp - dn, 0), reduction)


def _triplet_cosine_sample(rng, size, dtype):
    return _triplet_sample(rng, size, dtype)[0], {"distance_function": cosine_distance}


triplet_margin_with_distance_loss, triplet_margin_with_distance_loss_backward, \
    triplet_margin_with_distance_loss_value_and_grad = _export(
        define(_triplet_margin_with_distance_loss, class_name="TripletMarginWithDistanceLoss", family="embedding",
               grads=("anchor", "positive", "negative"), sample=_triplet_cosine_sample,
               class_options=("distance_function", "margin", "swap", "reduction"), class_keyword_only=True,
               torch=_triplet_distance_torch, jax=_triplet_distance_jax,
               bench_variants=(("pairwise_distance", _triplet_sample),))
    )


def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
