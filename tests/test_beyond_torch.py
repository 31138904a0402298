"""The losses torch.nn does not have (issue 14), against the outside
definitions they follow: values and gradients, float64 tight (1e-12, plus
the oracle's own rounding where its formula cancels), float32 within 1e-5 of
the oracle evaluated in float64 on the same values.

* ``sigmoid_focal_loss``: torchvision.ops.sigmoid_focal_loss when
  torchvision imports; else (torchvision 0.28.0's wheel installs here but its
  C ops do not load with torch 2.13: "operator torchvision::nms does not
  exist") torchvision's published definition written in torch ops below (``p = sigmoid(x)``, ``ce = BCEWithLogits(x, t)``, ``p_t = p t + (1 - p)(1 - t)``,
  ``ce (1 - p_t)**gamma``, times ``alpha t + (1 - alpha)(1 - t)`` when
  ``alpha >= 0``), differentiated by torch autograd.
* ``log_cosh_loss``: optax.log_cosh and its ``jax.grad`` (float64 JAX).
* ``pinball_loss``: sklearn.metrics.mean_pinball_loss (the mean, with
  ``sample_weight``); gradients: its formula in torch ops, autograd.
* ``jensen_shannon_divergence``: Liger-Kernel's JSD (its Triton kernel's
  lines, beta = 0 and 1 special-cased to the two KL divergences, 'batchmean'
  = sum / rows) in torch ops with autograd, and the torch.nn.KLDivLoss form
  of Liger's own test.

Each oracle's tests skip when its package is not installed (.ci/run installs
them)."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import reference
from fastloss._api import REGISTRY

from cases import fused_value_and_grad

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
EPS64 = 2.0**-53
REDUCTIONS = ("none", "mean", "sum")


def assert_close(actual, expected, rtol, atol=0.0, what=""):
    """|actual - expected| <= atol + rtol |expected| element-wise (atol may be
    an array: the oracle's own rounding), NaN where expected is NaN."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(actual - expected) <= atol + rtol * np.abs(expected)) | (actual == expected)
                | (np.isnan(actual) & np.isnan(expected)))
    if bad.any():
        i = tuple(np.argwhere(bad)[0]) if bad.ndim else ()
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} differ; first at {i}: "
                             f"{actual[i]!r} vs {expected[i]!r} (rtol {rtol})")


def _grad_output(shape, rng):
    return rng.uniform(-1.5, 1.5, shape) if shape else np.float64(0.75)


def _torch():
    return pytest.importorskip("torch")


def _autograd(fn, arrays, grad_output, **options):
    """``fn(*tensors, **options)`` in float64 and d(sum(grad_output * value))
    / d(first array), as float64 NumPy arrays."""
    torch = _torch()
    tensors = [torch.tensor(np.asarray(a, np.float64)) for a in arrays]
    tensors[0].requires_grad_(True)
    value = fn(torch, *tensors, **options)
    (grad,) = torch.autograd.grad(value, tensors[0], torch.as_tensor(np.asarray(grad_output, np.float64)))
    return value.detach().numpy(), grad.numpy()


def _reduce(torch, loss, reduction, divisor=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchmean":
        return loss.sum() / divisor
    return loss.mean()


# ------------------------------------------------------------ sigmoid focal


def _torchvision_focal():
    """torchvision.ops.sigmoid_focal_loss when torchvision imports (a wheel
    built for this torch), else None."""
    try:
        from torchvision.ops import sigmoid_focal_loss
    except Exception:  # not installed, or built for another torch (its C ops fail to register)
        return None
    return sigmoid_focal_loss


def torchvision_sigmoid_focal_loss(torch, inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss itself when importable, else its definition in torch ops."""
    ops_focal = _torchvision_focal()
    if ops_focal is not None:
        return ops_focal(inputs, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    p = torch.sigmoid(inputs)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(torch, loss, reduction)


FOCAL_OPTIONS = [{}, {"gamma": 0.0}, {"gamma": 0.5}, {"gamma": 1.0}, {"gamma": 3.0, "alpha": 0.75},
                 {"alpha": -1.0}, {"alpha": -0.5, "gamma": 1.5}, {"alpha": 0.0}, {"alpha": 1.0, "gamma": 2.5}]


def _focal_data(rng, shape, bound):
    x = rng.uniform(-bound, bound, shape)
    hard = (rng.random(shape) < 0.3).astype(np.float64)
    t = np.where(rng.random(shape) < 0.5, hard, rng.uniform(0.0, 1.0, shape))
    return x, t


@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_matches_torchvision_float64(options, reduction):
    """|x| <= 6, where torchvision's own 1 - p_t and BCE keep ~1e-13."""
    rng = np.random.default_rng(1)
    x, t = _focal_data(rng, (7, 33), 6.0)
    go = _grad_output(x.shape if reduction == "none" else (), rng)
    want, want_grad = _autograd(torchvision_sigmoid_focal_loss, (x, t), go, reduction=reduction, **options)
    value, grad = fused_value_and_grad("sigmoid_focal_loss", (x, t), F64, go, reduction=reduction, **options)
    assert_close(value, want, 1e-12, what="value")
    assert_close(grad, want_grad, 1e-12, what="gradient")


@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_matches_torchvision_float32(options, reduction):
    """float32 over |x| <= 20 against the float64 oracle (accurate there to
    ~1e-7: 1 - p_t >= 2e-9)."""
    rng = np.random.default_rng(2)
    x, t = _focal_data(rng, (5, 41), 20.0)
    x, t = x.astype(F32), t.astype(F32)
    go = _grad_output(x.shape if reduction == "none" else (), rng).astype(F32)
    want, want_grad = _autograd(torchvision_sigmoid_focal_loss, (x, t), go, reduction=reduction, **options)
    value, grad = fused_value_and_grad("sigmoid_focal_loss", (x, t), F32, go, reduction=reduction, **options)
    assert_close(value, want, 1e-5, 1e-37, what="value")
    assert_close(grad, want_grad, 1e-5, 1e-37, what="gradient")


@pytest.mark.parametrize("dtype, x", [(F64, 30.0), (F64, 200.0), (F32, 12.0), (F32, 20.0)])
@pytest.mark.parametrize("options", [{}, {"gamma": 0.5}, {"gamma": 3.0, "alpha": 0.75}], ids=str)
def test_focal_is_accurate_for_large_logits(dtype, x, options):
    """A confident right answer (t = 1, x >> 0; t = 0, x << 0) has the loss
    a_t log1p(e^-x) sigmoid(-x)^gamma, a tiny number torchvision's 1 - p_t
    (1 - sigmoid(x) rounded) loses: fastloss keeps it to float precision,
    gradient included (d/dx = -a_t s^gamma (s' + gamma log1p(e^-x)(1 - s')),
    s = sigmoid(-x), s' = sigmoid(x))."""
    alpha, gamma = options.get("alpha", 0.25), options.get("gamma", 2.0)
    s, big = 1.0 / (1.0 + math.exp(x)), 1.0 / (1.0 + math.exp(-x))
    ce = math.log1p(math.exp(-x))
    for sign, t, a_t in ((1.0, 1.0, alpha), (-1.0, 0.0, 1.0 - alpha)):
        want = a_t * ce * s**gamma
        want_grad = -sign * a_t * s**gamma * (s + gamma * ce * big)
        value, grad = fused_value_and_grad("sigmoid_focal_loss", (np.array([sign * x]), np.array([t])), dtype,
                                           np.ones(1), **options)
        rtol = 1e-13 if dtype == F64 else 1e-5
        assert_close(value, [want], rtol, what=f"value at t={t}")
        assert_close(grad, [want_grad], rtol, what=f"gradient at t={t}")


@pytest.mark.parametrize("dtype", [F32, F64])
def test_focal_is_finite_for_huge_logits(dtype):
    """Any finite logit gives a finite loss and gradient (the reference's
    values: 0 for confident right answers, a_t |x| for confident wrong ones)."""
    # +-3e38: confident wrong answers near float32's largest (gamma times the
    # loss would overflow there).
    x = np.array([1e4, -1e4, 1e30, -1e30, 1e4, -1e4, 120.0, -120.0, 3e38, -3e38])
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0])
    for options in ({}, {"gamma": 0.5}, {"gamma": 0.0, "alpha": -1.0}):
        value, grad = fused_value_and_grad("sigmoid_focal_loss", (x, t), dtype, np.ones(len(x)), **options)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), (options, value, grad)
        xd, td = x.astype(dtype), t.astype(dtype)
        assert_close(value, reference.sigmoid_focal_loss(xd, td, **options), 1e-12 if dtype == F64 else 1e-5)
        assert_close(grad, reference.sigmoid_focal_loss_backward(xd, td, **options), 1e-12 if dtype == F64 else 1e-5)


def test_focal_gamma_zero_is_alpha_weighted_bce_with_logits():
    """gamma = 0: a_t * binary_cross_entropy_with_logits, gradient a_t (sigmoid(x) - t) (torch's own)."""
    torch = _torch()
    rng = np.random.default_rng(3)
    x, t = _focal_data(rng, (300,), 6.0)
    for alpha in (0.25, -1.0):
        a_t = alpha * t + (1 - alpha) * (1 - t) if alpha >= 0 else np.ones_like(t)

        def weighted_bce(torch, x_, t_):
            return (torch.tensor(a_t) * torch.nn.functional.binary_cross_entropy_with_logits(x_, t_, reduction="none")
                    ).sum()

        want, want_grad = _autograd(weighted_bce, (x, t), 1.0)
        value, grad = fused_value_and_grad("sigmoid_focal_loss", (x, t), F64, 1.0, alpha=alpha, gamma=0.0,
                                           reduction="sum")
        assert_close(value, want, 1e-12)
        assert_close(grad, want_grad, 1e-12)
        assert_close(grad, a_t * (torch.sigmoid(torch.tensor(x)).numpy() - t), 1e-12)


def test_focal_signature_and_errors():
    """torchvision's signature and defaults; gamma < 0, non-finite options
    and unknown reductions raise ValueError naming the argument."""
    params = inspect.signature(fastloss.sigmoid_focal_loss).parameters
    assert [(n, p.default) for n, p in params.items()] == [
        ("input", inspect.Parameter.empty), ("target", inspect.Parameter.empty), ("alpha", 0.25),
        ("gamma", 2.0), ("reduction", "none")]
    x, t = np.zeros(3), np.ones(3)
    for kw, name in (({"gamma": -1.0}, "gamma"), ({"alpha": math.nan}, "alpha"), ({"gamma": math.inf}, "gamma"),
                     ({"reduction": "batchmean"}, "reduction")):
        with pytest.raises(ValueError, match=name):
            fastloss.sigmoid_focal_loss(x, t, **kw)
    crit = fastloss.nn.SigmoidFocalLoss(alpha=0.5, gamma=1.0, reduction="sum")
    assert crit(x, t) == fastloss.sigmoid_focal_loss(x, t, alpha=0.5, gamma=1.0, reduction="sum")


# ----------------------------------------------------------------- log-cosh


def _optax():
    pytest.importorskip("jax")
    return pytest.importorskip("optax")


def _optax_log_cosh(x, t, reduction, grad_output):
    """optax.log_cosh and its vjp in float64 JAX, reduced as fastloss."""
    optax = _optax()
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        def f(x_):
            loss = optax.log_cosh(x_, jnp.asarray(t, jnp.float64))
            return loss if reduction == "none" else jnp.sum(loss) if reduction == "sum" else jnp.mean(loss)

        value, pull = jax.vjp(f, jnp.asarray(x, jnp.float64))
        (grad,) = pull(jnp.asarray(grad_output, jnp.float64))
        return np.asarray(value), np.asarray(grad)


def _optax_rounding(x, t, reduction):
    """optax's logaddexp(d, -d) - log 2 rounds numbers of size |d| + log 2
    (and its gradient, sigmoid(2d) - sigmoid(-2d), numbers of size 1): a few
    ulp of those, per element, reduced."""
    d = np.abs(np.asarray(x, np.float64) - np.asarray(t, np.float64))
    value = 4 * EPS64 * (d + math.log(2.0))
    if reduction == "sum":
        value = value.sum()
    elif reduction == "mean":
        value = value.mean()
    return value, 4 * EPS64


def _cosh_data(rng, shape):
    x = rng.standard_normal(shape) * 3.0
    t = rng.standard_normal(shape)
    t.flat[:5] = x.flat[:5] - np.array([1e-9, -1e-5, 1e-3, 40.0, -700.0])  # tiny and huge differences
    return x, t


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_matches_optax_float64(reduction):
    rng = np.random.default_rng(4)
    x, t = _cosh_data(rng, (9, 31))
    go = _grad_output(x.shape if reduction == "none" else (), rng)
    want, want_grad = _optax_log_cosh(x, t, reduction, go)
    value, grad = fused_value_and_grad("log_cosh_loss", (x, t), F64, go, reduction=reduction)
    value_atol, grad_atol = _optax_rounding(x, t, reduction)
    assert_close(value, want, 1e-12, value_atol, what="value")
    scale = np.abs(go) / (x.size if reduction == "mean" else 1)
    assert_close(grad, want_grad, 1e-12, grad_atol * scale, what="gradient")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_matches_optax_float32(reduction):
    rng = np.random.default_rng(5)
    x, t = _cosh_data(rng, (9, 31))
    x, t = x.astype(F32), t.astype(F32)
    go = _grad_output(x.shape if reduction == "none" else (), rng).astype(F32)
    want, want_grad = _optax_log_cosh(x, t, reduction, go)
    value, grad = fused_value_and_grad("log_cosh_loss", (x, t), F32, go, reduction=reduction)
    value_atol, grad_atol = _optax_rounding(x, t, reduction)
    assert_close(value, want, 1e-5, value_atol, what="value")
    assert_close(grad, want_grad, 1e-5, grad_atol, what="gradient")


@pytest.mark.parametrize("dtype, rtol", [(F64, 1e-13), (F32, 1e-6)])
def test_log_cosh_keeps_small_differences(dtype, rtol):
    """log cosh d = d^2/2 - d^4/12 + d^6/45 - ... for small d, to full
    relative precision, and tanh(d) = d - d^3/3 + 2 d^5 / 15 (where optax's
    logaddexp(d, -d) - log 2 keeps only ~1e-16 absolute: no digit of d^2/2 in
    float32 below |d| ~ 3e-4)."""
    d = np.array([1e-30, 1e-12, 1e-6, -3e-4, 1e-3, -0.01]).astype(dtype).astype(np.float64)
    value, grad = fused_value_and_grad("log_cosh_loss", (d, np.zeros_like(d)), dtype, np.ones_like(d), reduction="none")
    assert_close(value, d**2 / 2 - d**4 / 12 + d**6 / 45, rtol, 0 if dtype == F64 else 1e-45)
    assert_close(grad, d - d**3 / 3 + 2 * d**5 / 15, rtol)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_log_cosh_large_differences(dtype):
    """|d| - log 2 and gradient sign(d) for large |d|, as optax (which is
    exact there), up to float32's largest."""
    d = np.array([25.0, -60.0, 1e4, -1e30, 3e38 if dtype == F32 else 1e300])
    want, want_grad = _optax_log_cosh(d.astype(dtype), np.zeros(5, dtype), "none", np.ones(5))
    value, grad = fused_value_and_grad("log_cosh_loss", (d, np.zeros(5)), dtype, np.ones(5), reduction="none")
    assert_close(value, np.abs(d.astype(dtype).astype(np.float64)) - math.log(2.0), 1e-12 if dtype == F64 else 1e-6)
    assert_close(value, want, 1e-12 if dtype == F64 else 1e-6)
    np.testing.assert_array_equal(grad, np.sign(d))
    np.testing.assert_array_equal(grad, want_grad)


def test_log_cosh_broadcasts_as_optax():
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((3, 1)), rng.standard_normal((4,))
    want, want_grad = _optax_log_cosh(x, t, "mean", 1.0)
    value, grad = fused_value_and_grad("log_cosh_loss", (x, t), F64, 1.0)
    assert_close(value, want, 1e-12, 1e-15)
    assert_close(grad, want_grad, 1e-12, 1e-15)


# ------------------------------------------------------------------ pinball


def _sklearn_pinball(y_true, y_pred, quantile, sample_weight=None):
    metrics = pytest.importorskip("sklearn.metrics")
    return metrics.mean_pinball_loss(y_true, y_pred, alpha=quantile, sample_weight=sample_weight)


def sklearn_pinball_in_torch(torch, y_pred, y_true, quantile=0.5, weight=None, reduction="mean"):
    """mean_pinball_loss's per-element formula in torch ops (for autograd):
    with diff = y_true - y_pred, sign = diff >= 0,
    alpha sign diff - (1 - alpha)(1 - sign) diff, then its weighted average."""
    diff = y_true - y_pred
    sign = (diff >= 0).to(diff.dtype)
    loss = quantile * sign * diff - (1 - quantile) * (1 - sign) * diff
    if weight is None:
        return _reduce(torch, loss, reduction)
    loss = weight * loss
    return loss.sum() / weight.expand_as(loss).sum() if reduction == "mean" else _reduce(torch, loss, reduction)


QUANTILES = [0.0, 0.1, 0.5, 0.9, 1.0]


@pytest.mark.parametrize("quantile", QUANTILES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_pinball_mean_matches_sklearn(quantile, weighted, dtype):
    """1-D targets, and (n, k) targets with a (n,) sample_weight (ours: an
    (n, 1) weight): scikit-learn's uniform average over outputs is the mean."""
    rng = np.random.default_rng(7)
    rtol = 1e-12 if dtype == F64 else 1e-5
    for shape in ((257,), (64, 3)):
        x = rng.standard_normal(shape).astype(dtype).astype(np.float64)
        t = rng.standard_normal(shape).astype(dtype).astype(np.float64)
        w = rng.uniform(0.1, 2.0, shape[:1]).astype(dtype).astype(np.float64) if weighted else None
        want = _sklearn_pinball(t, x, quantile, w)
        ours_w = None if w is None else (w if len(shape) == 1 else w[:, None]).astype(dtype)
        value = fastloss.pinball_loss(x.astype(dtype), t.astype(dtype), quantile=quantile, weight=ours_w)
        assert value.dtype == dtype
        assert_close(value, want, rtol, what=f"{shape}")
        fused, _ = fastloss.pinball_loss_value_and_grad(x.astype(dtype), t.astype(dtype), quantile=quantile,
                                                        weight=ours_w)
        np.testing.assert_array_equal(fused, value)


@pytest.mark.parametrize("quantile", QUANTILES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_pinball_gradient_matches_sklearn_formula(quantile, reduction, weighted):
    """Away from the kink (continuous data), d/d input of scikit-learn's
    formula by torch autograd: -quantile where target > input, 1 - quantile below."""
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((6, 17)), rng.standard_normal((6, 17))
    w = rng.uniform(0.1, 2.0, (6, 1)) if weighted else None
    go = _grad_output(x.shape if reduction == "none" else (), rng)
    arrays = (x, t) if w is None else (x, t, w)

    def oracle(torch, x_, t_, w_=None):
        return sklearn_pinball_in_torch(torch, x_, t_, quantile, w_, reduction)

    want, want_grad = _autograd(oracle, arrays, go)
    value, grad = fused_value_and_grad("pinball_loss", (x, t), F64, go, quantile=quantile, reduction=reduction,
                                       **({} if w is None else {"weight": w}))
    assert_close(value, want, 1e-12)
    assert_close(grad, want_grad, 1e-12)


def test_pinball_kink_and_errors():
    """At input == target the gradient is 0 (a subgradient; scikit-learn
    defines none), so quantile 0.5 is half of l1_loss, gradient included;
    a quantile outside [0, 1] raises ValueError in both libraries."""
    x = np.array([0.0, 1.0, -2.0, 3.0])
    t = np.array([0.0, 1.0, 0.0, 5.0])
    for q in QUANTILES:
        assert fastloss.pinball_loss_backward(x, t, quantile=q, reduction="sum")[:2].tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(fastloss.pinball_loss_backward(x, t, reduction="sum"),
                                  0.5 * fastloss.l1_loss_backward(x, t, reduction="sum"))
    assert fastloss.pinball_loss(x, t) == 0.5 * fastloss.l1_loss(x, t)
    for q in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="quantile"):
            fastloss.pinball_loss(x, t, quantile=q)
        if not math.isnan(q):
            with pytest.raises(ValueError):
                _sklearn_pinball(t, x, q)


# ------------------------------------------------------ Jensen-Shannon (JSD)


def liger_jsd(torch, input, target, beta=0.5, log_target=True, reduction="batchmean"):
    """Liger-Kernel's _jsd_kernel, element-wise in torch ops: X = input =
    log Q, Y = log P; beta = 0: P (Y - X); beta = 1: Q (X - Y); else
    beta P Y + (1 - beta) Q X - M log M with M = beta P + (1 - beta) Q.
    Liger sums and divides by the rows ('batchmean')."""
    y = target if log_target else torch.log(target)
    p, q = torch.exp(y), torch.exp(input)
    if beta == 0:
        loss = p * (y - input)
    elif beta == 1:
        loss = q * (input - y)
    else:
        m = beta * p + (1 - beta) * q
        loss = beta * p * y + (1 - beta) * q * input - m * torch.log(m)
    return _reduce(torch, loss, reduction, input.shape[0])


def liger_test_jsd(torch, log_q, log_p, beta=0.5):
    """The reference module of Liger-Kernel's test_jsd.py: torch.nn.KLDivLoss
    (batchmean, log_target) of log M against each side."""
    kl = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)
    m = beta * torch.exp(log_p) + (1 - beta) * torch.exp(log_q)
    return beta * kl(torch.log(m), log_p) + (1 - beta) * kl(torch.log(m), log_q)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _jsd_data(rng, shape=(41, 127), spread=2.0):
    return _log_softmax(spread * rng.standard_normal(shape)), _log_softmax(spread * rng.standard_normal(shape))


def _jsd_rounding(x, t, beta, reduction, dtype_eps=EPS64):
    """A few ulp of the terms Liger's formula adds (beta P |Y|, (1 - beta) Q |X|,
    M |log M|) and its gradient's ((1 - beta) Q (|X| + |log M| + 1)), reduced."""
    p, q = np.exp(t), np.exp(x)
    m = beta * p + (1 - beta) * q
    terms = 8 * dtype_eps * (p * np.abs(t) + q * np.abs(x) + m * np.abs(np.log(m)))
    grad = 8 * dtype_eps * q * (np.abs(x) + np.abs(np.log(m)) + 1)
    if reduction == "none":
        return terms, grad
    total = terms.sum()
    div = {"sum": 1, "mean": x.size, "batchmean": x.shape[0]}[reduction]
    return total / div, grad / div


BETAS = [0.5, 0.1, 0.9, 0.0, 1.0]


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
def test_jsd_matches_liger_float64(beta, reduction):
    rng = np.random.default_rng(9)
    x, t = _jsd_data(rng)
    go = _grad_output(x.shape if reduction == "none" else (), rng)
    want, want_grad = _autograd(liger_jsd, (x, t), go, beta=beta, reduction=reduction)
    value, grad = fused_value_and_grad("jensen_shannon_divergence", (x, t), F64, go, beta=beta, reduction=reduction)
    value_atol, grad_atol = _jsd_rounding(x, t, beta, reduction)
    assert_close(value, want, 1e-12, value_atol, what="value")
    assert_close(grad, want_grad, 1e-12, grad_atol * np.abs(go), what="gradient")


@pytest.mark.parametrize("beta", BETAS)
def test_jsd_matches_liger_float32(beta):
    """float32 (41, 127) rows of log-probabilities, 'batchmean' (Liger's
    reduction) and per element, against the float64 oracle."""
    rng = np.random.default_rng(10)
    x, t = (a.astype(F32).astype(np.float64) for a in _jsd_data(rng))
    for reduction in ("batchmean", "none"):
        go = _grad_output(x.shape if reduction == "none" else (), rng).astype(F32).astype(np.float64)
        want, want_grad = _autograd(liger_jsd, (x, t), go, beta=beta, reduction=reduction)
        value, grad = fused_value_and_grad("jensen_shannon_divergence", (x, t), F32, go, beta=beta, reduction=reduction)
        value_atol, grad_atol = _jsd_rounding(x, t, beta, reduction, 2.0**-24)
        assert_close(value, want, 1e-5, value_atol, what=f"{reduction} value")
        assert_close(grad, want_grad, 1e-5, grad_atol * np.abs(go), what=f"{reduction} gradient")


@pytest.mark.parametrize("beta", [0.5, 0.1, 0.9])
def test_jsd_matches_liger_test_reference(beta):
    """Liger's own test oracle (torch.nn.KLDivLoss against log M), its 3-D
    'weird shape' flattened to rows as Liger does."""
    rng = np.random.default_rng(11)
    x, t = _jsd_data(rng, (3 * 23, 32))
    want, want_grad = _autograd(liger_test_jsd, (x, t), 1.0, beta=beta)
    value, grad = fused_value_and_grad("jensen_shannon_divergence", (x, t), F64, 1.0, beta=beta)
    assert_close(value, want, 1e-12, _jsd_rounding(x, t, beta, "batchmean")[0])
    assert_close(grad, want_grad, 1e-12, _jsd_rounding(x, t, beta, "batchmean")[1])


def test_jsd_beta_edges_are_torchs_kl_divergences():
    """As Liger: beta = 0 is torch's kl_div(input, target, log_target=True)
    (KL(P || Q)) and beta = 1 is KL(Q || P) = kl_div(target, input,
    log_target=True), values and gradients w.r.t. input."""
    rng = np.random.default_rng(12)
    x, t = _jsd_data(rng, (8, 50))

    def forward_kl(torch, x_, t_):
        return torch.nn.functional.kl_div(x_, t_, reduction="batchmean", log_target=True)

    def reverse_kl(torch, x_, t_):
        return torch.nn.functional.kl_div(t_, x_, reduction="batchmean", log_target=True)

    for beta, oracle in ((0.0, forward_kl), (1.0, reverse_kl)):
        want, want_grad = _autograd(oracle, (x, t), 1.0)
        value, grad = fused_value_and_grad("jensen_shannon_divergence", (x, t), F64, 1.0, beta=beta)
        assert_close(value, want, 1e-12, what=f"beta={beta}")
        assert_close(grad, want_grad, 1e-12, 1e-17, what=f"beta={beta} gradient")


def test_jsd_symmetric_at_one_half():
    """Liger's test: JSD_0.5(x, t) == JSD_0.5(t, x)."""
    rng = np.random.default_rng(13)
    x, t = _jsd_data(rng, (16, 40))
    assert_close(fastloss.jensen_shannon_divergence(x, t), fastloss.jensen_shannon_divergence(t, x), 1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_jsd_probability_targets_and_zero_probabilities(beta):
    """log_target=False takes P itself (as kl_div's default) and equals
    log_target=True on log P; probabilities of 0 (P = 0, or log Q = -inf)
    contribute 0 (xlogy's convention: the oracle written with torch.xlogy;
    Liger's kernel gives NaN there), and so does the gradient where Q = 0."""
    torch = _torch()
    rng = np.random.default_rng(14)
    x, t = _jsd_data(rng, (6, 20))
    p = np.exp(t)
    np.testing.assert_allclose(fastloss.jensen_shannon_divergence(x, p, beta=beta, log_target=False),
                               fastloss.jensen_shannon_divergence(x, t, beta=beta), rtol=1e-13)
    p[:, 3] = 0.0
    x[:, 5] = -np.inf
    tp, tq = torch.tensor(p), torch.exp(torch.tensor(x))
    if beta == 0:
        want = (torch.xlogy(tp, tp) - torch.where(tp == 0, 0.0, tp * torch.tensor(x))).sum() / 6
    elif beta == 1:
        want = (torch.xlogy(tq, tq) - torch.where(tq == 0, 0.0, tq * torch.log(tp))).sum() / 6
    else:
        m = beta * tp + (1 - beta) * tq
        want = (beta * torch.xlogy(tp, tp) + (1 - beta) * torch.xlogy(tq, tq) - torch.xlogy(m, m)).sum() / 6
    with np.errstate(divide="ignore"):
        log_p = np.log(p)  # -inf where p == 0
    for target, log_target in ((p, False), (log_p, True)):
        value, grad = fused_value_and_grad("jensen_shannon_divergence", (x, target), F64, 1.0, beta=beta,
                                           log_target=log_target)
        if beta == 1:
            assert value == np.inf  # Q > 0 where P = 0: KL(Q || P) is infinite
        else:
            assert_close(value, want.item(), 1e-12, 1e-15)
        # d/dx is (1 - beta) Q (...) = 0 where Q = 0, except KL(P || Q)'s -P
        assert_close(grad[:, 5], -p[:, 5] / 6 if beta == 0 else np.zeros(6), 1e-15)
        assert np.isfinite(grad).all() or beta == 1


def test_jsd_signature_and_errors():
    params = inspect.signature(fastloss.jensen_shannon_divergence).parameters
    assert [(n, p.default) for n, p in params.items()] == [
        ("input", inspect.Parameter.empty), ("target", inspect.Parameter.empty), ("beta", 0.5),
        ("log_target", True), ("reduction", "batchmean")]
    x = np.log(np.full((2, 3), 1 / 3))
    for kw, name in (({"beta": -0.5}, "beta"), ({"beta": 1.5}, "beta"), ({"beta": math.nan}, "beta"),
                     ({"reduction": "max"}, "reduction")):
        with pytest.raises(ValueError, match=name):
            fastloss.jensen_shannon_divergence(x, x, **kw)
    with pytest.raises(TypeError, match="log_target"):
        fastloss.jensen_shannon_divergence(x, x, log_target=1)
    crit = fastloss.nn.JensenShannonDivergenceLoss(beta=0.25, reduction="sum")
    assert crit(x, x + 0.1) == fastloss.jensen_shannon_divergence(x, x + 0.1, beta=0.25, reduction="sum")


# ----------------------------------------------------- bench and check peers


def test_torch_peers_compute_the_oracles():
    """The registry's torch= peers (fastloss bench/check) are the oracles'
    definitions: equal to the ones above on their sample data."""
    torch = _torch()
    rng = np.random.default_rng(15)
    oracles = {
        "sigmoid_focal_loss": lambda x, t, **o: torchvision_sigmoid_focal_loss(torch, x, t, **o),
        "jensen_shannon_divergence": lambda x, t, **o: liger_jsd(torch, x, t, **o),
        "pinball_loss": lambda x, t, quantile=0.5, **o: sklearn_pinball_in_torch(torch, x, t, quantile, **o),
    }
    for name, oracle in oracles.items():
        spec = REGISTRY[name]
        arrays, options = spec.sample(rng, 512, F64)
        tensors = [torch.tensor(a) for a in arrays]
        for reduction in ("none", "sum", "mean"):
            got = spec.torch(torch, *tensors, **{**options, "reduction": reduction})
            want = oracle(*tensors, **{**options, "reduction": reduction})
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)
    arrays, _ = REGISTRY["log_cosh_loss"].sample(rng, 512, F64)
    got = REGISTRY["log_cosh_loss"].torch(torch, *(torch.tensor(a) for a in arrays), reduction="none").numpy()
    want, _ = _optax_log_cosh(*arrays, "none", np.ones(512))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
