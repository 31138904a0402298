"""The row-wise losses beyond torch.nn (issue 14) against the outside
definitions they follow: values and gradients, float64 tight (1e-12),
float32 within 1e-5 of the oracle evaluated in float64 on the same values.

* ``cross_entropy(z_loss=, softcap=)``: Liger-Kernel's definition
  (``softcap * tanh(x / softcap)`` before the softmax, ``+ z_loss * lse**2``
  per row) written here in torch ops, differentiated by torch autograd; the
  defaults are torch's cross_entropy bit for bit.
* ``poly1_cross_entropy``: ``optax.losses.poly_loss_cross_entropy`` on
  (smoothed) one-hot labels, and its ``jax.grad`` (float64 JAX).
* ``softmax_focal_loss``: Keras 3's ``categorical_focal_crossentropy``
  (``from_logits=True``, one-hot labels; JAX backend, float64) and its
  ``jax.grad``, on logits whose probabilities stay inside Keras' clip
  ``[1e-7, 1 - 1e-7]``.
* ``dice_loss``: Keras 3's ``dice(y_true, y_pred, axis=(1, ...))``.

Each oracle's tests skip when its package is not installed (.ci/run installs
them)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import reference

from cases import fused_value_and_grad

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
REDUCTIONS = ("none", "mean", "sum")


def _close(actual, expected, rtol, what=""):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol,
                               atol=rtol * 1e-3, err_msg=what)


def _grad_output(rng, shape):
    return rng.uniform(-1.5, 1.5, shape) if shape else np.float64(0.75)


def _reduce(values, reduction, divisor=None):
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    return values.sum() / (divisor if divisor is not None else values.size)


# ------------------------------------------------- cross_entropy z_loss / softcap


def liger_cross_entropy(torch, x, y, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                        z_loss=0.0, softcap=None):
    """Liger-Kernel's CE with lse_square_scale and softcap (its kernel's lines:
    x_cap = softcap tanh(x / softcap), lse = logsumexp(x_cap), loss = smoothed
    NLL + lse_square_scale lse^2), rows (N, C), class-index targets; the z
    term weighted by w[y] (fastloss's convention; Liger has no weight there)."""
    if softcap is not None:
        x = softcap * torch.tanh(x / softcap)
    lse = torch.logsumexp(x, dim=1)
    valid = y != ignore_index
    yy = torch.where(valid, y, 0)
    w = torch.ones(x.shape[1], dtype=x.dtype) if weight is None else weight
    wy = torch.where(valid, w[yy], torch.zeros_like(lse))
    nll = lse - x.gather(1, yy[:, None])[:, 0]
    e = label_smoothing
    smooth = (w * (lse[:, None] - x)).sum(1) / x.shape[1]
    loss = (1 - e) * wy * nll + e * torch.where(valid, smooth, torch.zeros_like(lse)) + wy * z_loss * lse**2
    return _reduce(loss, reduction, wy.sum())


def _autograd(torch, fn, arrays, grad_output, **options):
    tensors = [torch.tensor(np.asarray(a, np.float64)) if np.asarray(a).dtype.kind == "f" else torch.tensor(a)
               for a in arrays]
    tensors[0].requires_grad_(True)
    value = fn(torch, *tensors, **options)
    (grad,) = torch.autograd.grad(value, tensors[0], torch.as_tensor(np.asarray(grad_output, np.float64)))
    return value.detach().numpy(), grad.numpy()


CE_OPTIONS = [{"z_loss": 1e-4}, {"z_loss": 0.1}, {"softcap": 30.0}, {"softcap": 1.5},
              {"z_loss": 0.05, "softcap": 2.0, "label_smoothing": 0.1}, {"z_loss": 0.02, "ignore_index": 2},
              {"softcap": 3.0, "label_smoothing": 0.3, "ignore_index": 1}]


@pytest.mark.parametrize("options", CE_OPTIONS, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_cross_entropy_z_loss_softcap_match_liger(options, weighted, reduction, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = (4 * rng.standard_normal((37, 131))).astype(dtype)
    y = rng.integers(0, 131, 37)
    y[::5] = options.get("ignore_index", -100)
    kw = {"weight": rng.uniform(0.2, 2.0, 131).astype(dtype)} if weighted else {}
    go = _grad_output(rng, (37,) if reduction == "none" else ()).astype(dtype)
    opts = dict(options, reduction=reduction, **kw)
    weight = kw.get("weight")
    want, want_grad = _autograd(torch, lambda t, a, b: liger_cross_entropy(
        t, a, b, weight=None if weight is None else t.tensor(weight.astype(np.float64)),
        **{k: v for k, v in opts.items() if k != "weight"}), (x, y), go)
    value, grad = fused_value_and_grad("cross_entropy", (x, y), dtype, go, **opts)
    rtol = 1e-12 if dtype == F64 else 1e-5
    _close(value, want, rtol, "value")
    _close(grad, want_grad, rtol, "gradient")


@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_cross_entropy_z_loss_on_probability_targets_and_spatial_inputs(dtype):
    """Probability targets add z lse^2 per row (mean over rows); (N, C, d)
    inputs (the spatial path) agree with the same rows as (N*d, C)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = (3 * rng.standard_normal((6, 9, 11))).astype(dtype)
    p = rng.random(x.shape)
    p = (p / p.sum(1, keepdims=True)).astype(dtype)
    for options in ({"z_loss": 0.03}, {"z_loss": 0.03, "softcap": 2.0, "label_smoothing": 0.2}):
        value, grad = fused_value_and_grad("cross_entropy", (x, p), dtype, 1.0, **options)
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        xc = options["softcap"] * torch.tanh(xt / options["softcap"]) if "softcap" in options else xt
        loss = torch.nn.functional.cross_entropy(xc, torch.tensor(p.astype(np.float64)),
                                                 label_smoothing=options.get("label_smoothing", 0.0),
                                                 reduction="none")
        want = (loss + options["z_loss"] * torch.logsumexp(xc, 1) ** 2).mean()
        want.backward()
        rtol = 1e-12 if dtype == F64 else 1e-5
        _close(value, want.item(), rtol)
        _close(grad, xt.grad.numpy(), rtol)
        y = rng.integers(0, 9, (6, 11))
        rows = np.ascontiguousarray(np.moveaxis(x, 1, -1)).reshape(-1, 9)
        v3, g3 = fastloss.cross_entropy_value_and_grad(x, y, reduction="none", **options)
        v2, g2 = fastloss.cross_entropy_value_and_grad(rows, y.reshape(-1), reduction="none", **options)
        _close(v3.reshape(-1), v2, 1e-13 if dtype == F64 else 1e-6)
        # (a gradient entry is a difference of terms of the row's size: absolute to those)
        tol = 1e-13 if dtype == F64 else 1e-6
        np.testing.assert_allclose(np.moveaxis(g3, 1, -1).reshape(-1, 9), g2, rtol=tol,
                                   atol=tol * float(np.abs(g2).max()))


@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_cross_entropy_defaults_are_torchs_bits(dtype):
    """z_loss=0 and softcap=None are the plain kernel (the same bits as
    before the options existed, as with the arguments left out), and torch's
    value; a softcap far above the logits changes them by tanh's rounding only."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 1000)).astype(dtype)
    y = rng.integers(0, 1000, 64)
    for kw in ({}, {"label_smoothing": 0.1}, {"weight": rng.uniform(0.5, 2, 1000).astype(dtype)}):
        plain = fastloss.cross_entropy_value_and_grad(x, y, **kw)
        explicit = fastloss.cross_entropy_value_and_grad(x, y, z_loss=0.0, softcap=None, **kw)
        np.testing.assert_array_equal(plain[0], explicit[0])
        np.testing.assert_array_equal(plain[1], explicit[1])
        tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y), **tkw).item()
        _close(plain[0], want, 1e-12 if dtype == F64 else 2e-6)
        capped = fastloss.cross_entropy(x, y, softcap=1e6, **kw)
        _close(capped, plain[0], 1e-10 if dtype == F64 else 1e-5)


def test_cross_entropy_options_errors_and_class():
    x, y = np.zeros((2, 3)), np.array([0, 1])
    for kw, exc in (({"softcap": 0.0}, ValueError), ({"softcap": -2.0}, ValueError),
                    ({"softcap": float("inf")}, ValueError), ({"z_loss": float("nan")}, ValueError),
                    ({"z_loss": "1"}, TypeError)):
        with pytest.raises(exc, match=next(iter(kw))):
            fastloss.cross_entropy(x, y, **kw)
    crit = fastloss.nn.CrossEntropyLoss(z_loss=0.5, softcap=2.0, reduction="sum")
    assert crit(x + 1, y) == fastloss.cross_entropy(x + 1, y, z_loss=0.5, softcap=2.0, reduction="sum")


def test_softcap_gradient_saturates():
    """Far beyond the cap the logits are flat: the gradient vanishes as
    1 - tanh^2 (finite everywhere, inf included)."""
    x = np.array([[1e4, -1e4, 0.0, np.inf]])
    value, grad = fastloss.cross_entropy_value_and_grad(x, np.array([2]), softcap=5.0)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert grad[0, 0] == 0 and grad[0, 1] == 0 and grad[0, 3] == 0
    _close(value, reference.cross_entropy(x, np.array([2]), softcap=5.0), 1e-12)


# ------------------------------------------------------------------ poly-1


def _optax():
    pytest.importorskip("jax")
    return pytest.importorskip("optax")


def _optax_poly(x, y, epsilon, label_smoothing, grad_output, reduction):
    """optax.losses.poly_loss_cross_entropy on (smoothed) one-hot labels and its vjp, float64 JAX."""
    optax = _optax()
    import jax
    import jax.numpy as jnp

    C = x.shape[1]
    labels = np.eye(C)[y] * (1 - label_smoothing) + label_smoothing / C
    with jax.enable_x64(True):
        def f(z):
            loss = optax.losses.poly_loss_cross_entropy(z, jnp.asarray(labels), epsilon=epsilon)
            return _reduce(loss, reduction)

        value, pull = jax.vjp(f, jnp.asarray(x, jnp.float64))
        (grad,) = pull(jnp.asarray(grad_output, jnp.float64))
        return np.asarray(value), np.asarray(grad)


@pytest.mark.parametrize("options", [{}, {"epsilon": 2.0}, {"epsilon": -1.0}, {"epsilon": 1.0, "label_smoothing": 0.1},
                                     {"epsilon": 2.0, "label_smoothing": 0.3}], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_poly1_matches_optax(options, reduction, dtype):
    rng = np.random.default_rng(4)
    x = (3 * rng.standard_normal((29, 17))).astype(dtype)
    y = rng.integers(0, 17, 29)
    go = _grad_output(rng, (29,) if reduction == "none" else ()).astype(dtype)
    want, want_grad = _optax_poly(x, y, options.get("epsilon", 1.0), options.get("label_smoothing", 0.0), go,
                                  reduction)
    value, grad = fused_value_and_grad("poly1_cross_entropy", (x, y), dtype, go, reduction=reduction, **options)
    rtol = 1e-12 if dtype == F64 else 1e-5
    _close(value, want, rtol, "value")
    _close(grad, want_grad, rtol, "gradient")


def test_poly1_weight_and_ignore_index_convention():
    """The poly term is weighted by w[y] like the cross entropy, ignored rows
    add nothing, 'mean' divides by sum(w[y]): the reference's formula, and
    epsilon = 0 is cross_entropy."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 7))
    y = rng.integers(0, 7, 40)
    y[::4] = 3
    w = rng.uniform(0.2, 2.0, 7)
    kw = {"weight": w, "ignore_index": 3, "label_smoothing": 0.2}
    ce = fastloss.cross_entropy(x, y, reduction="none", **kw)
    p = np.exp(x - np.logaddexp.reduce(x, axis=1, keepdims=True))
    valid = y != 3
    wy = np.where(valid, w[np.where(valid, y, 0)], 0.0)
    p_t = 0.8 * p[np.arange(40), y] + 0.2 / 7
    rows = ce + np.where(valid, 2.0 * wy * (1 - p_t), 0.0)
    _close(fastloss.poly1_cross_entropy(x, y, epsilon=2.0, reduction="none", **kw), rows, 1e-12)
    _close(fastloss.poly1_cross_entropy(x, y, epsilon=2.0, **kw), rows.sum() / wy.sum(), 1e-12)
    np.testing.assert_array_equal(fastloss.poly1_cross_entropy(x, y, epsilon=0.0, **kw),
                                  fastloss.cross_entropy(x, y, **kw))
    with pytest.raises(TypeError, match="target"):
        fastloss.poly1_cross_entropy(x, p)


# --------------------------------------------------- Keras: focal and Dice


def _keras():
    pytest.importorskip("jax")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs on another backend here")
    return keras


def _keras_focal(x, y, alpha, gamma, grad_output, reduction):
    _keras()
    import jax
    import jax.numpy as jnp
    from keras.src.losses.losses import categorical_focal_crossentropy

    labels = np.eye(x.shape[1])[y]
    with jax.enable_x64(True):
        def f(z):
            loss = categorical_focal_crossentropy(jnp.asarray(labels), z, alpha=alpha, gamma=gamma, from_logits=True)
            return _reduce(loss, reduction)

        value, pull = jax.vjp(f, jnp.asarray(x, jnp.float64))
        (grad,) = pull(jnp.asarray(grad_output, jnp.float64))
        return np.asarray(value), np.asarray(grad)


FOCAL_OPTIONS = [{"alpha": 0.25}, {"alpha": 0.25, "gamma": 0.0}, {"alpha": 0.5, "gamma": 0.5},
                 {"alpha": 1.0, "gamma": 3.0}, {"alpha": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]}]


@pytest.mark.parametrize("options", FOCAL_OPTIONS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_softmax_focal_matches_keras(options, reduction, dtype):
    rng = np.random.default_rng(6)
    x = (1.5 * rng.standard_normal((23, 11))).astype(dtype)  # p in [1e-7, 1 - 1e-7]: Keras' clip inactive
    y = rng.integers(0, 11, 23)
    go = _grad_output(rng, (23,) if reduction == "none" else ()).astype(dtype)
    alpha = options["alpha"]
    want, want_grad = _keras_focal(x, y, np.asarray(alpha, np.float64), options.get("gamma", 2.0), go, reduction)
    value, grad = fused_value_and_grad("softmax_focal_loss", (x, y), dtype, go, reduction=reduction,
                                       **dict(options, alpha=np.asarray(alpha) if isinstance(alpha, list) else alpha))
    rtol = 1e-12 if dtype == F64 else 1e-5
    _close(value, want, rtol, "value")
    _close(grad, want_grad, rtol, "gradient")


def test_softmax_focal_weight_alpha_and_mean_convention():
    """alpha multiplies the loss, not the denominator; weight does both
    ('mean' = sum(l) / sum(w[y]) over rows not ignored); alpha=None is 1;
    gamma = 0 with alpha=None is cross_entropy."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((50, 6))
    y = rng.integers(0, 6, 50)
    y[::3] = 4
    w = rng.uniform(0.2, 2.0, 6)
    a = rng.uniform(0.1, 1.0, 6)
    kw = {"weight": w, "ignore_index": 4, "gamma": 1.5}
    rows = fastloss.softmax_focal_loss(x, y, alpha=a, reduction="none", **kw)
    plain = fastloss.softmax_focal_loss(x, y, reduction="none", **kw)
    valid = y != 4
    yy = np.where(valid, y, 0)
    _close(rows, np.where(valid, a[yy], 0.0) * plain, 1e-13)
    wy = np.where(valid, w[yy], 0.0)
    for alpha in (None, 0.25, a):
        value, grad = fastloss.softmax_focal_loss_value_and_grad(x, y, alpha=alpha, grad_output=2.0, **kw)
        r = fastloss.softmax_focal_loss(x, y, alpha=alpha, reduction="none", **kw)
        _close(value, r.sum() / wy.sum(), 1e-13)
        _close(grad, fastloss.softmax_focal_loss_backward(x, y, alpha=alpha, reduction="sum", **kw) * 2 / wy.sum(),
               1e-13)
        _close(grad, reference.softmax_focal_loss_backward(x, y, alpha=alpha, grad_output=2.0, **kw), 1e-12)
    _close(fastloss.softmax_focal_loss(x, y, gamma=0.0, weight=w),
           fastloss.cross_entropy(x, y, weight=w), 1e-14)
    acc = fastloss.Accumulator("softmax_focal_loss", alpha=a, **kw)
    acc.update(x[:20], y[:20])
    acc.update(x[20:], y[20:])
    assert acc.result() == pytest.approx(fastloss.softmax_focal_loss(x, y, alpha=a, **kw), rel=1e-6)


def test_softmax_focal_is_accurate_for_confident_rows():
    """A confident right row: l = -(1 - p)^gamma log p with 1 - p ~ e^-20,
    far below float64's 1 - p rounding; and x_y = -inf gives inf with a
    finite gradient (K -> w)."""
    x = np.array([[20.0, 0.0], [0.0, -np.inf]])
    y = np.array([0, 1])
    value, grad = fastloss.softmax_focal_loss_value_and_grad(x, y, reduction="none", gamma=2.0)
    q = 1 / (1 + np.exp(20.0))
    _close(value[0], q**2 * np.log1p(np.exp(-20.0)), 1e-13)
    assert value[1] == np.inf and np.all(np.isfinite(grad[1]))
    _close(grad[1], [1.0, -1.0], 1e-15)


def _keras_dice(x, t):
    _keras()
    import jax
    import jax.numpy as jnp
    from keras.src.losses.losses import dice

    with jax.enable_x64(True):
        axis = tuple(range(1, x.ndim))

        def f(z):
            return dice(jnp.asarray(t, jnp.float64), z, axis=axis)

        value, pull = jax.vjp(f, jnp.asarray(x, jnp.float64))
        return np.asarray(value), pull


@pytest.mark.parametrize("shape", [(8, 100), (4, 3, 16, 16), (5,)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
def test_dice_matches_keras(shape, reduction, dtype):
    """Keras' Dice (its defaults: no smoothing, epsilon 1e-7 in the
    denominator) per sample, then fastloss's reduction over the samples."""
    rng = np.random.default_rng(8)
    x = rng.random(shape).astype(dtype)
    t = (rng.random(shape) < 0.3).astype(dtype)
    rows, pull = _keras_dice(x, t)
    go = _grad_output(rng, (shape[0],) if reduction == "none" else ())
    row_go = go if reduction == "none" else np.full(shape[0], go / (shape[0] if reduction == "mean" else 1))
    import jax.numpy as jnp
    import jax

    with jax.enable_x64(True):
        (want_grad,) = pull(jnp.asarray(row_go, jnp.float64))
    value, grad = fused_value_and_grad("dice_loss", (x, t), dtype, go.astype(dtype), reduction=reduction)
    rtol = 1e-12 if dtype == F64 else 1e-5
    _close(value, _reduce(rows, reduction), rtol, "value")
    _close(grad, want_grad, rtol, "gradient")


def test_dice_smooth_and_axes():
    """smooth enters numerator and denominator; axis 0 is the batch, the
    other axes are summed (an (N, C, H, W) input equals its (N, C*H*W) rows)."""
    rng = np.random.default_rng(9)
    x = rng.random((3, 2, 4, 5))
    t = (rng.random(x.shape) < 0.5) * 1.0
    inter, union = (x * t).sum((1, 2, 3)), x.sum((1, 2, 3)) + t.sum((1, 2, 3))
    _close(fastloss.dice_loss(x, t, smooth=1.0, eps=0.0, reduction="none"), 1 - (2 * inter + 1) / (union + 1), 1e-14)
    np.testing.assert_array_equal(fastloss.dice_loss_backward(x, t).reshape(3, -1),
                                  fastloss.dice_loss_backward(x.reshape(3, -1), t.reshape(3, -1)))
    with pytest.raises(ValueError, match="target"):
        fastloss.dice_loss(x, t[:, :1])
    with pytest.raises(ValueError, match="input"):
        fastloss.dice_loss(np.float64(0.5), np.float64(1.0))
    assert fastloss.nn.DiceLoss(smooth=1.0)(x, t) == fastloss.dice_loss(x, t, smooth=1.0)


def test_torch_peers_compute_the_oracles():
    """The registry's torch= peers (fastloss bench/check) are the definitions above."""
    torch = pytest.importorskip("torch")
    from fastloss._api import REGISTRY

    rng = np.random.default_rng(10)
    x = rng.standard_normal((16, 9))
    y = rng.integers(0, 9, 16)
    spec = REGISTRY["cross_entropy"]
    for options in CE_OPTIONS:
        got = spec.torch(torch, torch.tensor(x), torch.tensor(y), **options)
        _close(got.numpy(), liger_cross_entropy(torch, torch.tensor(x), torch.tensor(y), **options).numpy(), 1e-13)
    for name in ("poly1_cross_entropy", "softmax_focal_loss", "dice_loss"):
        arrays, options = REGISTRY[name].sample(rng, 4096, F64)
        for reduction in REDUCTIONS:
            got = REGISTRY[name].torch(torch, *(torch.tensor(a) for a in arrays), reduction=reduction, **options)
            _close(got.numpy(), getattr(reference, name)(*arrays, reduction=reduction, **options), 1e-12, name)
