"""The eight likelihood and margin losses (BCE, BCEWithLogits, SoftMargin,
PoissonNLL, GaussianNLL, KLDiv, HingeEmbedding, MarginRanking) against torch
2.13 autograd, the oracle, where their shapes and options go beyond the
generic matrix (tests/test_torch.py): the table of tests/test_reference_torch.py
(per-row and size-1 ``var``, ``pos_weight`` broadcasting, float ``var``,
clamps and kinks, 'batchmean'...) in float32 and float64, the issue's
examples, and every error torch raises. Every expected value is computed by
torch in the test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastloss  # noqa: E402
from cases import CASES, TORCH_TOLERANCE, grad_abs_scales, value_abs_scale  # noqa: E402
from test_reference_torch import ERRORS, LOSSES  # noqa: E402  (the table and the errors, shared)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
TORCH = {F32: torch.float32, F64: torch.float64}


def _torch(name, arrays, grads, options, grad_output, dtype):
    """torch's value and the gradients of ``grads`` (None for a float var), in ``dtype``."""
    case = CASES[name]
    tensors = {k: v if isinstance(v, float) else torch.tensor(np.asarray(v, np.float64), dtype=TORCH[dtype],
                                                              requires_grad=k in grads)
               for k, v in arrays.items()}
    positional, keyword = case.split(tensors)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)  # kl_div's
        value = getattr(F, name)(*positional, **keyword, **options)
    wanted = [k for k in grads if isinstance(tensors[k], torch.Tensor)]
    g = torch.broadcast_to(torch.tensor(grad_output, dtype=TORCH[dtype]), value.shape)
    computed = dict(zip(wanted, torch.autograd.grad(value, [tensors[k] for k in wanted], g)))
    return (value.detach().double().numpy(),
            tuple(computed[k].double().numpy() if k in computed else None for k in grads))


def _scales(case, arrays, options, reduction, grad_output):
    """Cancellation scales (cases.py) with a float var as an array of input's shape."""
    full = dict(arrays)
    if isinstance(full.get("var"), float):
        full["var"] = np.full(np.shape(arrays["input"]), full["var"])
    return value_abs_scale(case, full, reduction, options), grad_abs_scales(case, full, reduction, options,
                                                                            grad_output)


def _close(actual, expected, dtype, scale, what):
    if expected is None:
        assert actual is None, what
        return
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected), what
    assert actual.dtype == dtype, what
    rtol, atol = TORCH_TOLERANCE[dtype.name]
    if dtype == F64:
        atol = 1e-15  # differences of O(1) terms cancelling to ~0 (as test_reference_torch.py)
    allowed = atol + rtol * np.abs(expected)
    if scale is not None:
        allowed = allowed + rtol * np.nan_to_num(np.abs(scale), nan=0.0, posinf=0.0)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(actual - expected) <= allowed) | (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    assert np.all(ok), f"{what}: {actual[~ok] if actual.ndim else actual} vs {np.asarray(expected)[~ok]}"


def _matrix():
    for loss in LOSSES:
        for i, shapes in enumerate(loss.shapes):
            for j, options in enumerate(loss.options):
                label = ",".join(f"{k}{v}" for k, v in shapes.items()).replace(" ", "")
                yield pytest.param(loss, shapes, options, 100 * i + j,
                                   id=f"{loss.name}-{label}-{options}".replace(" ", ""))


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
@pytest.mark.parametrize("loss, shapes, options, seed", list(_matrix()))
def test_matches_torch(loss, shapes, options, seed, dtype):
    """Values and every gradient (None for a float var) over every reduction."""
    case = CASES[loss.name]
    rng = np.random.default_rng(seed)
    arrays = {arg: shape if isinstance(shape, float) else
              np.asarray(loss.make(rng, arg, shape, options), np.float64).astype(dtype)
              for arg, shape in shapes.items()}
    for reduction in loss.reductions:
        opts = dict(options, reduction=reduction)
        loss_shape = np.shape(case.expected(arrays, **opts))
        go = (np.linspace(-2.0, 2.0, math.prod(loss_shape)).reshape(loss_shape) if loss_shape
              else np.array(0.75)).astype(dtype)
        value, grads = case.call(case.value_and_grad, arrays, grad_output=go, **opts)
        expected_value, expected_grads = _torch(loss.name, arrays, loss.grads, opts, go, dtype)
        if case.stable:  # soft margin: the reference where torch overflows
            ref = case.expected(arrays, **opts)
            expected_value = np.where(np.isfinite(expected_value) | ~np.isfinite(ref), expected_value, ref)
            refs = case.expected_grads(arrays, grad_output=go, **opts)
            expected_grads = tuple(np.where(np.isfinite(e) | ~np.isfinite(r), e, r)
                                   for e, r in zip(expected_grads, refs))
        value_scale, grad_scales = _scales(case, arrays, options, reduction, go)
        _close(value, expected_value, dtype, value_scale, f"{loss.name} {reduction} value")
        for name, g, e, s in zip(loss.grads, case.grads(grads), expected_grads, grad_scales):
            _close(g, e, dtype, s, f"{loss.name} {reduction} grad {name}")


# ------------------------------------------------- the examples


def _t(values, dtype=torch.float64, grad=False):
    return torch.tensor(values, dtype=dtype, requires_grad=grad)


def _value_and_grad(fn, *tensors, **kw):
    """torch's 'none' loss and the gradient of its sum w.r.t. the leaves that require grad."""
    value = fn(*tensors, **kw)
    leaves = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    return value.detach().numpy(), [g.numpy() for g in torch.autograd.grad(value.sum(), leaves)]


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_bce_clamp_and_signed_zeros(dtype):
    """x=[0,1,1,0], y=[1,0,1,0] → [100, 100, -0.0, 0] (signed zeros as
    torch), gradients ±1/float32(1e-12) as torch's."""
    x, y = np.array([0.0, 1.0, 1.0, 0.0], dtype), np.array([1.0, 0.0, 1.0, 0.0], dtype)
    expected, (grad,) = _value_and_grad(F.binary_cross_entropy, _t(x, TORCH[dtype], True), _t(y, TORCH[dtype]),
                                        reduction="none")
    value, g = fastloss.binary_cross_entropy_value_and_grad(x, y, reduction="none")
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(np.signbit(value), np.signbit(expected))
    np.testing.assert_array_equal(value, np.array([100.0, 100.0, -0.0, 0.0], dtype))
    np.testing.assert_array_equal(np.signbit(value), [False, False, True, False])
    np.testing.assert_allclose(g, grad, rtol=TORCH_TOLERANCE[dtype.name][0])
    assert np.all(np.abs(g[:2]) > 9e11)


def test_bce_with_logits_large_logits_finite_in_float32():
    x, y, pw = np.array([0.0, -120.0], F32), np.array([0.0, 1.0], F32), np.array([1.0, 1.0], F32)
    expected, (grad,) = _value_and_grad(F.binary_cross_entropy_with_logits, _t(x, torch.float32, True),
                                        _t(y, torch.float32), pos_weight=_t(pw, torch.float32), reduction="none")
    value, g = fastloss.binary_cross_entropy_with_logits_value_and_grad(x, y, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(value, expected, rtol=2e-7)
    np.testing.assert_allclose(value, [0.6931472, 120.0], rtol=1e-7)
    np.testing.assert_allclose(g, grad, rtol=2e-7)
    np.testing.assert_array_equal(g, [0.5, -1.0])
    # pos_weight a scalar, |x| = 1000: finite in float32, as torch's
    x, y = np.array([-1000.0, 1000.0], F32), np.array([1.0, 0.0], F32)
    expected, (grad,) = _value_and_grad(F.binary_cross_entropy_with_logits, _t(x, torch.float32, True),
                                        _t(y, torch.float32), pos_weight=_t(3.0, torch.float32), reduction="none")
    for pos_weight in (3.0, np.float32(3.0), np.array(3.0, F32)):
        value, g = fastloss.binary_cross_entropy_with_logits_value_and_grad(x, y, pos_weight=pos_weight,
                                                                           reduction="none")
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(value, expected, rtol=2e-7)
        np.testing.assert_allclose(g, grad, rtol=2e-7)


@pytest.mark.parametrize("pw_shape", [(3,), (2, 1), (1,), (), (2, 3), (1, 1, 3), (1, 2, 3)], ids=str)
def test_bce_with_logits_pos_weight_broadcasts_into_input(pw_shape):
    """input (1, 2, 3): pos_weight (3,) and (2, 1) work as torch's (NumPy's
    rule into input's shape); test_errors_where_torch_raises has (2,)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 3, (1, 2, 3)), rng.uniform(0, 1, (1, 2, 3))
    pw = rng.uniform(0.5, 3.0, pw_shape)
    w = rng.uniform(0.5, 2.0, (2, 1))
    for reduction in ("none", "mean", "sum"):
        expected, (grad,) = _value_and_grad(F.binary_cross_entropy_with_logits, _t(x, grad=True), _t(y),
                                            weight=_t(w), pos_weight=_t(pw), reduction=reduction)
        value, g = fastloss.binary_cross_entropy_with_logits_value_and_grad(x, y, weight=w, pos_weight=pw,
                                                                           reduction=reduction)
        np.testing.assert_allclose(value, expected, rtol=1e-12)
        if reduction == "none":  # (torch's gradient above is of sum(loss))
            g = fastloss.binary_cross_entropy_with_logits_backward(x, y, weight=w, pos_weight=pw, reduction="sum")
        np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="pos_weight"):
        fastloss.binary_cross_entropy_with_logits(x, y, pos_weight=np.ones(2))


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_soft_margin_finite_where_torch_overflows(dtype):
    """torch's log1p(exp(-y*x)) is inf (gradient NaN) from -y*x ≈ 88.7 in
    float32 (pytorch #77529): fastloss equals torch wherever torch is finite
    and is finite (z, and -y) elsewhere."""
    x = np.concatenate([np.linspace(-200, 200, 801), [-100.0, 100.0, -1000.0, 1000.0]]).astype(dtype)
    for y in (np.ones_like(x), -np.ones_like(x)):
        expected, (grad,) = _value_and_grad(F.soft_margin_loss, _t(x, TORCH[dtype], True), _t(y, TORCH[dtype]),
                                            reduction="none")
        value, g = fastloss.soft_margin_loss_value_and_grad(x, y, reduction="none")
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))
        finite = np.isfinite(expected)
        if dtype == F32:
            assert not finite.all() and not np.isfinite(grad).all()  # torch overflows here
            assert math.isinf(F.soft_margin_loss(_t([-100.0], torch.float32), _t([1.0], torch.float32)).item())
        rtol = TORCH_TOLERANCE[dtype.name][0]
        np.testing.assert_allclose(value[finite], expected[finite], rtol=rtol, atol=1e-30)
        ok = np.isfinite(grad)
        np.testing.assert_allclose(g[ok], grad[ok], rtol=rtol, atol=1e-37)
        z = -y * x
        np.testing.assert_allclose(value[~finite], z[~finite], rtol=rtol)  # softplus(z) = z there
        np.testing.assert_array_equal(g[~ok], -y[~ok])
    # float64 torch is finite at x = -100: equal there
    expected = F.soft_margin_loss(_t([-100.0]), _t([1.0]), reduction="sum").item()
    assert fastloss.soft_margin_loss(np.array([-100.0]), np.array([1.0]), reduction="sum") == pytest.approx(
        expected, rel=1e-15)


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_poisson_stirling_example(dtype):
    expected = F.poisson_nll_loss(_t([3.0], TORCH[dtype]), _t([5.0], TORCH[dtype]), log_input=False, full=True,
                                  eps=0.0).item()
    value = fastloss.poisson_nll_loss(np.array([3.0], dtype), np.array([5.0], dtype), log_input=False, full=True,
                                      eps=0.0)
    assert value.dtype == dtype
    assert float(value) == pytest.approx(expected, rel=TORCH_TOLERANCE[dtype.name][0])
    if dtype == F64:
        assert expected == pytest.approx(2.2777856082516754, rel=1e-15)
        assert float(value) == pytest.approx(2.2777856082516754, rel=1e-15)


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_poisson_negative_input_nan_loss_finite_gradient(dtype):
    x, t = np.array([-2.0, 0.5, -0.5], dtype), np.array([3.0, 2.0, 0.0], dtype)
    expected, (grad,) = _value_and_grad(F.poisson_nll_loss, _t(x, TORCH[dtype], True), _t(t, TORCH[dtype]),
                                        log_input=False, reduction="none")
    value, g = fastloss.poisson_nll_loss_value_and_grad(x, t, log_input=False, reduction="none")
    assert np.isnan(value[0]) and np.isnan(expected[0])
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, expected, rtol=TORCH_TOLERANCE[dtype.name][0], equal_nan=True)
    np.testing.assert_allclose(g, grad, rtol=TORCH_TOLERANCE[dtype.name][0])


@pytest.mark.xfail(reason="torch sums a broadcast input's gradient before dividing by x + eps (composite "
                          "autograd); fastloss divides per element: 0/0 = NaN among the terms where torch has -inf")
def test_known_poisson_broadcast_gradient_at_a_zero_denominator():
    """log_input=False, x + eps == 0 for an input broadcast over targets of
    which one is 0: torch's gradient is -inf (sum(g * t) / 0), fastloss's
    (and the reference's) NaN (a 0/0 term)."""
    x = np.array([[-0.5]])
    t = np.array([[0.0], [2.0]])
    xt = _t(x, grad=True)
    (grad,) = torch.autograd.grad(F.poisson_nll_loss(xt, _t(t), log_input=False, eps=0.5, reduction="sum"), xt)
    assert math.isinf(grad.item())
    np.testing.assert_array_equal(
        fastloss.poisson_nll_loss_backward(x, t, log_input=False, eps=0.5, reduction="sum"), grad.numpy())


@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_gaussian_eps_clamp_passes_the_gradient(dtype):
    """var=1e-9 < eps=1e-6: d/dvar ≈ -5e11 as torch (the clamp is the
    identity for the gradient); a float var has no gradient (None)."""
    x, t = np.array([1.0, 2.0], dtype), np.array([0.0, 2.0], dtype)
    var = np.array([1e-9, 1e-9], dtype)
    tv = _t(var, TORCH[dtype], True)
    expected, (gx, gv) = _value_and_grad(F.gaussian_nll_loss, _t(x, TORCH[dtype], True), _t(t, TORCH[dtype]), tv,
                                         eps=1e-6, reduction="none")
    value, (g_input, g_var) = fastloss.gaussian_nll_loss_value_and_grad(x, t, var, eps=1e-6, reduction="none")
    rtol = TORCH_TOLERANCE[dtype.name][0]
    np.testing.assert_allclose(value, expected, rtol=rtol)
    np.testing.assert_allclose(g_input, gx, rtol=rtol)
    np.testing.assert_allclose(g_var, gv, rtol=rtol)
    assert g_var[0] == pytest.approx(-5e11, rel=1e-5)
    # a Python float var: no gradient
    xt = _t(x, TORCH[dtype], True)
    (gx,) = torch.autograd.grad(F.gaussian_nll_loss(xt, _t(t, TORCH[dtype]), 1e-9, eps=1e-6, reduction="sum"), xt)
    g_input, g_var = fastloss.gaussian_nll_loss_backward(x, t, 1e-9, eps=1e-6, reduction="sum")
    assert g_var is None
    np.testing.assert_allclose(g_input, gx.numpy(), rtol=rtol)
    value, (g_input, g_var) = fastloss.gaussian_nll_loss_value_and_grad(x, t, 0.5, reduction="sum")
    assert g_var is None


@pytest.mark.parametrize("var_shape", [(4,), (4, 1), (1, 5), (4, 5)], ids=str)
def test_gaussian_var_gradient_has_var_shape(var_shape):
    """A per-row var (input's shape without its last dimension), a size-1
    dimension or input's shape: its gradient has var's own shape, as torch's."""
    rng = np.random.default_rng(0)
    x, t, var = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), rng.uniform(0.5, 2.0, var_shape)
    vt = _t(var, grad=True)
    expected, (gx, gv) = _value_and_grad(F.gaussian_nll_loss, _t(x, grad=True), _t(t), vt, full=True,
                                         reduction="none")
    g_input, g_var = fastloss.gaussian_nll_loss_backward(x, t, var, full=True, reduction="sum")
    assert g_var.shape == var_shape
    np.testing.assert_allclose(fastloss.gaussian_nll_loss(x, t, var, full=True, reduction="none"), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(g_input, gx, rtol=1e-12)
    np.testing.assert_allclose(g_var, gv, rtol=1e-12)
    out = (np.empty((4, 5)), np.empty(var_shape))
    assert all(a is b for a, b in zip(fastloss.gaussian_nll_loss_backward(x, t, var, reduction="sum", out=out), out))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_reductions_and_zero_targets(reduction, log_target):
    """'none'/'sum'/'mean'/'batchmean', log_target; a target of 0 contributes
    0 (not NaN). torch warns on 'mean'; fastloss does not (by decision: it
    would break callers running with -W error)."""
    rng = np.random.default_rng(1)
    x = np.log(rng.uniform(0.05, 1.0, (3, 4)))
    t = rng.uniform(0.0, 1.0, (3, 4))
    t[0, :2] = 0.0
    t[1, 0] = -0.0
    if log_target:
        t = np.log(np.maximum(t, 1e-3))
    xt = _t(x, grad=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)
        value = F.kl_div(xt, _t(t), reduction=reduction, log_target=log_target)
    g = torch.ones_like(value) if reduction == "none" else torch.tensor(1.0, dtype=torch.float64)
    (grad,) = torch.autograd.grad(value, xt, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from fastloss
        got, g_ours = fastloss.kl_div_value_and_grad(x, t, reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(got, value.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_ours, grad.numpy(), rtol=1e-12)
    if not log_target:
        zeros = fastloss.kl_div(x, t, reduction="none")[t == 0]
        assert zeros.size == 3 and np.all(zeros == 0)
    if reduction == "mean":
        with pytest.warns(UserWarning, match="batchmean"):
            F.kl_div(_t(x), _t(t), log_target=log_target)


def test_hinge_targets_plus_minus_one_and_others():
    """t = 1: x; t = -1: max(margin - x, 0); any other target both terms, as torch."""
    x = np.array([0.0, 1.0, 2.0, 0.5, -1.0, 1.0, np.nan, 3.0, 1.0, 0.25])
    t = np.array([1.0, -1.0, -1.0, -1.0, 0.5, 2.0, -1.0, np.nan, 1.0, -1.0])
    for margin in (1.0, 0.0, -0.5, 2.0):
        for dtype in (F32, F64):
            expected, (grad,) = _value_and_grad(F.hinge_embedding_loss, _t(x, TORCH[dtype], True),
                                                _t(t, TORCH[dtype]), margin=margin, reduction="none")
            value, g = fastloss.hinge_embedding_loss_value_and_grad(x.astype(dtype), t.astype(dtype), margin=margin,
                                                                    reduction="none")
            np.testing.assert_array_equal(value, expected)
            np.testing.assert_array_equal(g, grad)


def test_margin_ranking_broadcast_example():
    x1, x2, y = np.array([[1.0], [0.0]]), np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]), np.array([[1.0], [-1.0]])
    for dtype in (F32, F64):
        a, b = _t(x1, TORCH[dtype], True), _t(x2, TORCH[dtype], True)
        expected, grads = _value_and_grad(F.margin_ranking_loss, a, b, _t(y, TORCH[dtype]), reduction="none")
        value, (g1, g2) = fastloss.margin_ranking_loss_value_and_grad(x1.astype(dtype), x2.astype(dtype),
                                                                      y.astype(dtype), reduction="none")
        np.testing.assert_array_equal(value, expected)
        np.testing.assert_array_equal(value, [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
        assert g1.shape == (2, 1) and g2.shape == (2, 3)
        np.testing.assert_array_equal(g1, grads[0])
        np.testing.assert_array_equal(g2, grads[1])


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("name, args, kwargs, error, argument", ERRORS,
                         ids=[f"{e[0]}-{e[4]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_where_torch_raises(name, args, kwargs, error, argument):
    """Every call torch refuses (RuntimeError, ValueError or TypeError) raises
    ValueError (shapes, values) or TypeError (types) naming the argument, in
    every function and the nn class."""
    tensors = [a if isinstance(a, (float, int)) else torch.tensor(np.asarray(a, np.float64)) for a in args]
    torch_kwargs = {k: torch.tensor(np.asarray(v, np.float64)) if isinstance(v, (list, np.ndarray)) else v
                    for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            getattr(F, name)(*tensors, **torch_kwargs)
    for suffix in ("", "_backward", "_value_and_grad"):
        with pytest.raises(error, match=rf"^{argument}\b"):
            getattr(fastloss, name + suffix)(*args, **kwargs)


BEYOND_FLOAT32 = {  # loss -> its arguments on x (in [-1, 1]), an option beyond float32's range
    "poisson_nll_loss": (lambda x: (x, x), {"log_input": False, "eps": 1e300}),
    "hinge_embedding_loss": (lambda x: (x, x.sign() if hasattr(x, "sign") else np.sign(x)), {"margin": 1e300}),
    "margin_ranking_loss": (lambda x: (x, x, x.sign() if hasattr(x, "sign") else np.sign(x)), {"margin": 1e300}),
    "gaussian_nll_loss": (lambda x: (x, x, abs(x)), {"eps": 1e300}),
}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("name", list(BEYOND_FLOAT32))
def test_options_beyond_the_dtype_as_torch(name, dtype):
    """An option beyond the input dtype's range: where torch converts it to
    a tensor of that dtype (hinge's margin, gaussian's eps) it raises, and
    fastloss raises ValueError naming the option; elsewhere both compute
    with it (inf or NaN results alike in float32; float16 is computed in
    float32 by fastloss, in float16 by torch)."""
    args, options = BEYOND_FLOAT32[name]
    if dtype == "float16":
        options = {k: (1e5 if isinstance(v, float) else v) for k, v in options.items()}
    x = torch.linspace(-1, 1, 5, dtype=getattr(torch, dtype))
    try:
        expected = getattr(F, name)(*args(x), reduction="none", **options)
    except RuntimeError as e:
        assert "overflow" in str(e)
        with pytest.raises(ValueError, match=list(options)[-1]):
            getattr(fastloss, name)(*args(x.numpy()), reduction="none", **options)
    else:
        got = getattr(fastloss, name)(*args(x.numpy()), reduction="none", **options)
        if dtype == "float32":
            np.testing.assert_array_equal(got, expected.numpy())


def test_gaussian_per_row_var_gradient_with_out():
    """out=(input's buffer, None) allocates var's gradient in var's (per-row)
    shape; out=(a, b) with b of var's shape is written and returned."""
    rng = np.random.default_rng(2)
    x, t, var = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), rng.uniform(0.5, 2.0, 4)
    expected = fastloss.gaussian_nll_loss_backward(x, t, var)
    assert expected[1].shape == (4,)
    a, b = np.empty((4, 5)), np.empty(4)
    for out in ((a, None), (None, b), (a, b)):
        got = fastloss.gaussian_nll_loss_backward(x, t, var, out=out)
        _, fused = fastloss.gaussian_nll_loss_value_and_grad(x, t, var, out=out)
        for g in (got, fused):
            assert g[1].shape == (4,)
            for k in range(2):
                if out[k] is not None:
                    assert g[k] is out[k]
                np.testing.assert_array_equal(g[k], expected[k])
