"""fastloss.reference against torch 2.13 autograd, the oracle, for the eight
likelihood and margin losses (BCE, BCEWithLogits, SoftMargin, PoissonNLL,
GaussianNLL, KLDiv, HingeEmbedding, MarginRanking): values and the gradients
of every differentiable input, every reduction and option, broadcast, 0-d and
empty shapes, kinks and clamps, torch's quirks, and torch's errors.

Every expected value is computed by torch in the test. float64 throughout:
rtol 1e-12, plus an absolute 1e-15 for results that are a difference of O(1)
terms cancelling to ~0 (gradients summed over a broadcast dimension,
1 - t / (x + eps)), where both sides carry an absolute rounding error of
~1e-16."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from fastloss import reference  # noqa: E402

RTOL, ATOL = 1e-12, 1e-15


# ------------------------------------------------------------------ harness


def _assert_close(actual, expected, what):
    if expected is None:
        assert actual is None, what
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    assert actual.dtype == np.float64, what
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=what)


def _tensor(a, grad=False):
    if isinstance(a, float):
        return a  # gaussian_nll_loss's float var stays a Python float
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _torch(name, arrays, grads, options, grad_output):
    """torch's value and the gradients of ``grads`` (None for a float)."""
    tensors = {k: _tensor(v, k in grads) for k, v in arrays.items()}
    kwargs = dict(options)
    positional = [tensors.pop(k) for k in list(arrays)[:ARITY[name]]]
    kwargs.update(tensors)  # weight, pos_weight: by keyword
    with warnings.catch_warnings():
        # kl_div's 'mean' warning: torch's, not part of the semantics compared.
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)
        value = getattr(F, name)(*positional, **kwargs)
    wanted = [k for k in grads if isinstance(arrays[k], np.ndarray)]
    inputs = [positional[list(arrays).index(k)] for k in wanted]
    g = torch.broadcast_to(_tensor(grad_output), value.shape)
    computed = dict(zip(wanted, torch.autograd.grad(value, inputs, g)))
    result = tuple(computed[k].numpy() if k in computed else None for k in grads)
    return value.detach().numpy(), result


def _reference(name, arrays, options, grad_output):
    value = getattr(reference, name)(**arrays, **options)
    grads = getattr(reference, name + "_backward")(**arrays, **options, grad_output=grad_output)
    return value, grads if isinstance(grads, tuple) else (grads,)


def _grad_output(loss_shape):
    if not loss_shape:
        return np.array(0.75)
    n = int(np.prod(loss_shape))
    return np.linspace(-2.0, 2.0, n).reshape(loss_shape)


def _compare(name, arrays, options, reduction):
    """Reference vs torch for one call, ``grad_output`` not all ones."""
    options = dict(options, reduction=reduction)
    value, _ = _reference(name, arrays, options, None)
    grad_output = _grad_output(np.shape(value))
    expected_value, expected_grads = _torch(name, arrays, GRADS[name], options, grad_output)
    value, grads = _reference(name, arrays, options, grad_output)
    _assert_close(value, expected_value, f"{name} value")
    for arg, actual, expected in zip(GRADS[name], grads, expected_grads):
        _assert_close(actual, expected, f"{name} grad {arg}")


# -------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class Loss:
    """name: the functional name. arrays: array arguments, torch's positional
    ones first (``arity`` of them), then keyword ones (weight, pos_weight).
    grads: the differentiable ones, in the order ``_backward`` returns them.
    make(rng, arg, shape, options): data for one argument. shapes: argument
    -> shape dicts (an argument left out is not passed; a float is passed as
    is). options: option dicts to sweep."""

    name: str
    arity: int
    grads: tuple
    make: Callable
    shapes: tuple
    options: tuple = ({},)
    reductions: tuple = ("none", "mean", "sum")


def _with_specials(a, values):
    """``a`` with its first elements set to ``values`` (exact kinks, clamps)."""
    flat = a.reshape(-1)
    k = min(flat.size, len(values))
    flat[:k] = values[:k]
    return flat.reshape(a.shape)


def _make_bce(rng, arg, shape, options):
    if arg == "input":
        return _with_specials(rng.uniform(0.0, 1.0, shape), [0.0, 1.0, 1.0, 0.0, 1e-10, 1.0 - 1e-10])
    if arg == "target":
        return _with_specials(rng.uniform(0.0, 1.0, shape), [1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    return rng.uniform(0.2, 3.0, shape)


def _make_bce_logits(rng, arg, shape, options):
    if arg == "input":
        return _with_specials(rng.normal(0.0, 4.0, shape), [0.0, -120.0, 40.0, -40.0, 700.0, -700.0])
    if arg == "target":
        return _with_specials(rng.uniform(0.0, 1.0, shape), [0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    return rng.uniform(0.2, 3.0, shape)


def _make_soft_margin(rng, arg, shape, options):
    if arg == "input":
        # up to |x| = 700: torch's log1p(exp(z)) stays finite in float64.
        return _with_specials(rng.normal(0.0, 3.0, shape), [0.0, -100.0, 100.0, 700.0, -700.0])
    return _with_specials(rng.choice([-1.0, 1.0], shape), [1.0, 1.0, -1.0, 1.0, 1.0, 0.5, 0.0])


def _make_poisson(rng, arg, shape, options):
    if arg == "target":
        return _with_specials(rng.poisson(3.0, shape).astype(np.float64), [0.0, 1.0, 2.0, 1.5, 0.5])
    if options["log_input"]:
        return rng.normal(0.0, 1.0, shape)
    return _with_specials(rng.uniform(0.0, 5.0, shape), [0.0, 1e-9, 3.0])


def _make_gaussian(rng, arg, shape, options):
    if arg == "var":
        # below eps, zero, exactly eps: the clamp and its pass-through gradient
        return _with_specials(rng.uniform(0.0, 2.0, shape), [1e-9, 0.0, options.get("eps", 1e-6), 0.5])
    return rng.normal(0.0, 1.0, shape)


def _make_kl(rng, arg, shape, options):
    if arg == "input":
        return rng.normal(-1.0, 1.0, shape)
    if options["log_target"]:
        return _with_specials(rng.normal(-1.0, 1.0, shape), [-np.inf, 0.0])
    return _with_specials(rng.uniform(0.0, 1.0, shape), [0.0, -0.0, 1.0])


def _make_hinge(rng, arg, shape, options):
    if arg == "input":
        margin = options["margin"]
        return _with_specials(rng.normal(0.0, 2.0, shape), [margin, margin, margin, 0.0, -0.0])
    return _with_specials(rng.choice([-1.0, 1.0], shape), [-1.0, 1.0, 0.5, 0.0, 2.0, -2.0])


def _make_ranking(rng, arg, shape, options):
    if arg == "target":
        return _with_specials(rng.choice([-1.0, 1.0], shape), [1.0, -1.0, 0.5, 0.0])
    if arg == "input1":
        return _with_specials(rng.normal(0.0, 1.0, shape), [1.0, 1.0, 0.5])
    # input2 - input1 == margin on the first elements: the kink
    return _with_specials(rng.normal(0.0, 1.0, shape), [1.0 - options["margin"], 1.0 + options["margin"], 0.5])


_PAIR_SHAPES = (
    {"input": (4, 5), "target": (4, 5)},
    {"input": (), "target": ()},
    {"input": (0, 3), "target": (0, 3)},
    {"input": (3, 1), "target": (1, 4)},  # both broadcast
    {"input": (4,), "target": (2, 4)},  # input broadcast: its gradient is summed
    {"input": (2, 3, 4), "target": (3, 1)},
)

LOSSES = (
    Loss("binary_cross_entropy", 2, ("input",), _make_bce, (
        {"input": (4, 5), "target": (4, 5)},
        {"input": (4, 5), "target": (4, 5), "weight": (4, 5)},
        {"input": (4, 5), "target": (4, 5), "weight": (5,)},
        {"input": (4, 5), "target": (4, 5), "weight": (4, 1)},
        {"input": (4, 5), "target": (4, 5), "weight": ()},
        {"input": (), "target": (), "weight": ()},
        {"input": (0, 3), "target": (0, 3), "weight": (3,)},
        {"input": (0, 3), "target": (0, 3)},
    )),
    Loss("binary_cross_entropy_with_logits", 2, ("input",), _make_bce_logits, (
        {"input": (4, 5), "target": (4, 5)},
        {"input": (4, 5), "target": (4, 5), "pos_weight": (5,)},
        {"input": (4, 5), "target": (4, 5), "pos_weight": (4, 1), "weight": (5,)},
        {"input": (1, 2, 3), "target": (1, 2, 3), "pos_weight": (2, 1)},
        {"input": (4, 5), "target": (4, 5), "pos_weight": (), "weight": (4, 5)},
        {"input": (4, 5), "target": (4, 5), "weight": (4, 1)},
        {"input": (), "target": (), "pos_weight": (), "weight": ()},
        {"input": (0, 3), "target": (0, 3), "pos_weight": (3,)},
    )),
    Loss("soft_margin_loss", 2, ("input",), _make_soft_margin, (
        {"input": (4, 5), "target": (4, 5)},
        {"input": (), "target": ()},
        {"input": (0, 3), "target": (0, 3)},
        {"input": (2, 4), "target": (4,)},  # target broadcasts into input only
        {"input": (3, 4), "target": (3, 1)},
    )),
    Loss("poisson_nll_loss", 2, ("input",), _make_poisson, _PAIR_SHAPES,
         tuple({"log_input": li, "full": fu, "eps": ep} for li in (True, False) for fu in (False, True)
               for ep in (1e-8, 0.5))),
    Loss("gaussian_nll_loss", 3, ("input", "var"), _make_gaussian, (
        {"input": (4, 5), "target": (4, 5), "var": (4, 5)},
        {"input": (4, 5), "target": (4, 5), "var": (4,)},  # one fewer dim: unsqueezed
        {"input": (4, 5), "target": (4, 5), "var": (4, 1)},
        {"input": (4, 5), "target": (4, 5), "var": (1, 5)},
        {"input": (4, 3, 5), "target": (4, 3, 5), "var": (4, 1, 5)},
        {"input": (3,), "target": (3,), "var": ()},
        {"input": (3,), "target": (3,), "var": (1,)},
        {"input": (), "target": (), "var": ()},
        {"input": (0, 3), "target": (0, 3), "var": (0,)},
        {"input": (0, 3), "target": (0, 3), "var": (1, 3)},
        {"input": (2, 1), "target": (2, 4), "var": (2,)},  # input broadcast against target
        {"input": (5,), "target": (2, 5), "var": (1,)},
        {"input": (4, 5), "target": (4, 5), "var": 0.7},
        {"input": (4, 5), "target": (4, 5), "var": 1e-9},  # float below eps
        {"input": (4,), "target": (3, 4), "var": 0.0},
    ), tuple({"full": fu, "eps": ep} for fu in (False, True) for ep in (1e-6, 0.1))),
    Loss("kl_div", 2, ("input",), _make_kl, _PAIR_SHAPES + ({"input": (0, 3), "target": (3,)},),
         ({"log_target": False}, {"log_target": True}), ("none", "mean", "sum", "batchmean")),
    Loss("hinge_embedding_loss", 2, ("input",), _make_hinge, _PAIR_SHAPES,
         tuple({"margin": m} for m in (1.0, 0.0, -0.5, 2.0))),
    Loss("margin_ranking_loss", 3, ("input1", "input2"), _make_ranking, (
        {"input1": (6,), "input2": (6,), "target": (6,)},
        {"input1": (2, 1), "input2": (2, 3), "target": (2, 1)},
        {"input1": (2, 1), "input2": (1, 3), "target": (1, 1)},
        {"input1": (3,), "input2": (1,), "target": (3,)},
        {"input1": (1,), "input2": (1,), "target": (4,)},
        {"input1": (), "input2": (), "target": ()},
        {"input1": (0,), "input2": (0,), "target": (0,)},
    ), tuple({"margin": m} for m in (0.0, 0.5, -0.3))),
)
ARITY = {loss.name: loss.arity for loss in LOSSES}
GRADS = {loss.name: loss.grads for loss in LOSSES}


def _arrays(loss, shapes, options, seed):
    rng = np.random.default_rng(seed)
    return {arg: shape if isinstance(shape, float) else np.asarray(loss.make(rng, arg, shape, options), dtype=float)
            for arg, shape in shapes.items()}


def _matrix():
    for loss in LOSSES:
        for i, shapes in enumerate(loss.shapes):
            for j, options in enumerate(loss.options):
                for reduction in loss.reductions:
                    label = ",".join(f"{k}{v}" for k, v in shapes.items()).replace(" ", "")
                    yield pytest.param(loss, shapes, options, reduction, 100 * i + j,
                                       id=f"{loss.name}-{label}-{options}-{reduction}".replace(" ", ""))


@pytest.mark.parametrize("loss, shapes, options, reduction, seed", list(_matrix()))
def test_matches_torch(loss, shapes, options, reduction, seed):
    _compare(loss.name, _arrays(loss, shapes, options, seed), options, reduction)


def test_table_covers_the_reference():
    """Every new reference function has a row (and a ``_backward``)."""
    names = {loss.name for loss in LOSSES}
    assert len(names) == 8
    for name in names:
        assert name in reference.__all__ and name + "_backward" in reference.__all__


# ------------------------------------------------- the examples


def _t(values, grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def test_bce_clamp_and_signed_zeros():
    x, y = [0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]
    xt = _t(x, True)
    expected = F.binary_cross_entropy(xt, _t(y), reduction="none")
    (expected_grad,) = torch.autograd.grad(expected.sum(), xt)
    value = reference.binary_cross_entropy(x, y, reduction="none")
    np.testing.assert_array_equal(value, expected.detach().numpy())
    np.testing.assert_array_equal(np.signbit(value), np.signbit(expected.detach().numpy()))
    np.testing.assert_array_equal(value, [100.0, 100.0, -0.0, 0.0])
    # ±1/float32(1e-12), not ±1e12: ATen's epsilon is a float constant.
    np.testing.assert_array_equal(reference.binary_cross_entropy_backward(x, y, reduction="none"),
                                  expected_grad.numpy())


def test_bce_inputs_near_zero_and_one_to_the_last_bits():
    # log1p(-x), not log(1 - x): the difference is below the absolute
    # tolerance of the table, so this compares relatively only.
    x = np.array([1e-10, 1e-5, 0.25, 1.0 - 1e-10, 1e-300])
    for t in (np.zeros(5), np.ones(5), np.full(5, 0.3)):
        xt = _t(x, True)
        expected = F.binary_cross_entropy(xt, _t(t), reduction="none")
        (grad,) = torch.autograd.grad(expected.sum(), xt)
        np.testing.assert_allclose(reference.binary_cross_entropy(x, t, reduction="none"),
                                   expected.detach().numpy(), rtol=RTOL, atol=0)
        np.testing.assert_allclose(reference.binary_cross_entropy_backward(x, t, reduction="none"),
                                   grad.numpy(), rtol=RTOL, atol=0)


def test_bce_mean_divides_by_numel_with_weight():
    x, y, w = np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 0.5]), np.array([3.0, 0.0, 0.5])
    expected = F.binary_cross_entropy(_t(x), _t(y), weight=_t(w)).item()
    assert reference.binary_cross_entropy(x, y, weight=w) == pytest.approx(expected, rel=RTOL)
    assert expected == pytest.approx(float(reference.binary_cross_entropy(x, y, weight=w, reduction="sum")) / 3)


def test_bce_with_logits_large_logits():
    xt = _t([0.0, -120.0], True)
    expected = F.binary_cross_entropy_with_logits(xt, _t([0.0, 1.0]), pos_weight=_t([1.0, 1.0]), reduction="none")
    (grad,) = torch.autograd.grad(expected.sum(), xt)
    kw = {"pos_weight": [1.0, 1.0], "reduction": "none"}
    _assert_close(reference.binary_cross_entropy_with_logits([0.0, -120.0], [0.0, 1.0], **kw),
                  expected.detach().numpy(), "value")
    _assert_close(reference.binary_cross_entropy_with_logits_backward([0.0, -120.0], [0.0, 1.0], **kw),
                  grad.numpy(), "grad")
    np.testing.assert_allclose(expected.detach().numpy(), [math.log(2.0), 120.0], rtol=RTOL)
    np.testing.assert_allclose(grad.numpy(), [0.5, -1.0], rtol=RTOL)
    # finite in float32 too, for torch and the reference
    x32 = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    value32 = F.binary_cross_entropy_with_logits(x32, torch.tensor([1.0, 0.0]), pos_weight=torch.tensor(3.0),
                                                 reduction="none")
    (grad32,) = torch.autograd.grad(value32.sum(), x32)
    kw = {"pos_weight": 3.0, "reduction": "none"}
    _assert_close(reference.binary_cross_entropy_with_logits([-1000.0, 1000.0], [1.0, 0.0], **kw),
                  value32.detach().double().numpy(), "value")
    _assert_close(reference.binary_cross_entropy_with_logits_backward([-1000.0, 1000.0], [1.0, 0.0], **kw),
                  grad32.double().numpy(), "grad")


def test_soft_margin_is_finite_where_torch_overflows():
    # float32: torch's log1p(exp(100)) is inf and its gradient NaN (pytorch #77529) ...
    x32 = torch.tensor([-100.0], requires_grad=True)
    value32 = F.soft_margin_loss(x32, torch.tensor([1.0]), reduction="sum")
    (grad32,) = torch.autograd.grad(value32, x32)
    assert math.isinf(value32.item()) and math.isnan(grad32.item())
    # ... while torch in float64 is finite there, and the reference equals it.
    x64 = _t([-100.0], True)
    value64 = F.soft_margin_loss(x64, _t([1.0]), reduction="sum")
    (grad64,) = torch.autograd.grad(value64, x64)
    _assert_close(reference.soft_margin_loss([-100.0], [1.0], reduction="sum"), value64.item(), "value")
    _assert_close(reference.soft_margin_loss_backward([-100.0], [1.0], reduction="sum"), grad64.numpy(), "grad")
    # Beyond float64's exp range torch overflows too; the reference gives z = -t*x and -t.
    x64 = _t([-1000.0, 1000.0], True)
    value64 = F.soft_margin_loss(x64, _t([1.0, -1.0]), reduction="none")
    assert torch.isinf(value64).all()
    np.testing.assert_array_equal(reference.soft_margin_loss([-1000.0, 1000.0], [1.0, -1.0], reduction="none"),
                                  [1000.0, 1000.0])
    np.testing.assert_array_equal(
        reference.soft_margin_loss_backward([-1000.0, 1000.0], [1.0, -1.0], reduction="none"), [-1.0, 1.0])


def test_poisson_stirling_example():
    expected = F.poisson_nll_loss(_t([3.0]), _t([5.0]), log_input=False, full=True, eps=0.0).item()
    assert expected == pytest.approx(2.2777856082516754, rel=1e-15)
    actual = reference.poisson_nll_loss([3.0], [5.0], log_input=False, full=True, eps=0.0)
    assert actual == pytest.approx(expected, rel=RTOL)


def test_poisson_negative_input_nan_loss_finite_gradient():
    x, t = [-2.0, 0.5], [3.0, 2.0]
    xt = _t(x, True)
    value = F.poisson_nll_loss(xt, _t(t), log_input=False, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), xt)
    assert math.isnan(value[0].item()) and math.isfinite(grad[0].item())
    _assert_close(reference.poisson_nll_loss(x, t, log_input=False, reduction="none"), value.detach().numpy(), "v")
    _assert_close(reference.poisson_nll_loss_backward(x, t, log_input=False, reduction="none"), grad.numpy(), "g")


@pytest.mark.parametrize("var_is_float", [False, True])
def test_gaussian_eps_clamp_passes_the_gradient(var_is_float):
    x, t = [1.0, 2.0], [0.0, 2.0]
    var = 1e-9 if var_is_float else np.array([1e-9, 1e-9])
    xt = _t(x, True)
    vt = var if var_is_float else _t(var, True)
    value = F.gaussian_nll_loss(xt, _t(t), vt, eps=1e-6, reduction="sum")
    grads = torch.autograd.grad(value, [xt] if var_is_float else [xt, vt])
    grad_input, grad_var = reference.gaussian_nll_loss_backward(x, t, var, eps=1e-6, reduction="sum")
    _assert_close(reference.gaussian_nll_loss(x, t, var, eps=1e-6, reduction="sum"), value.item(), "value")
    _assert_close(grad_input, grads[0].numpy(), "grad input")
    if var_is_float:
        assert grad_var is None
    else:
        _assert_close(grad_var, grads[1].numpy(), "grad var")
        # d/dvar at the clamped value, as if the clamp were the identity
        assert grads[1][0].item() == pytest.approx(0.5 * (1e6 - 1e12), rel=1e-12)


def test_kl_div_targets_zero_and_negative():
    x = [0.5, 0.5, 0.5, np.nan, 0.5, 0.5]
    t = [-1.0, 0.0, -0.0, 0.0, np.nan, np.inf]
    xt = _t(x, True)
    value = F.kl_div(xt, _t(t), reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), xt)
    _assert_close(reference.kl_div(x, t, reduction="none"), value.detach().numpy(), "value")
    _assert_close(reference.kl_div_backward(x, t, reduction="none"), grad.numpy(), "grad")
    assert value[1].item() == 0.0 and math.isnan(value[0].item())  # t=0 contributes 0; t<0 is NaN


def test_kl_div_mean_warns_in_torch_not_in_the_reference():
    with pytest.warns(UserWarning, match="batchmean"):
        expected = F.kl_div(_t([0.1, 0.2]), _t([0.3, 0.7])).item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reference.kl_div([0.1, 0.2], [0.3, 0.7]) == pytest.approx(expected, rel=RTOL)


def test_hinge_targets_other_than_plus_minus_one():
    # torch: where(t != 1, hinge, 0) + where(t != -1, x, 0), so t=0.5 gives both
    x = [0.0, 1.0, 2.0, 0.5, -1.0, 1.0, np.nan, 3.0]
    t = [1.0, -1.0, -1.0, -1.0, 0.5, 2.0, -1.0, np.nan]
    xt = _t(x, True)
    value = F.hinge_embedding_loss(xt, _t(t), reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), xt)
    _assert_close(reference.hinge_embedding_loss(x, t, reduction="none"), value.detach().numpy(), "value")
    _assert_close(reference.hinge_embedding_loss_backward(x, t, reduction="none"), grad.numpy(), "grad")


def test_margin_ranking_broadcast_example():
    x1, x2, y = [[1.0], [0.0]], [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], [[1.0], [-1.0]]
    a, b = _t(x1, True), _t(x2, True)
    value = F.margin_ranking_loss(a, b, _t(y), reduction="none")
    grads = torch.autograd.grad(value.sum(), [a, b])
    np.testing.assert_array_equal(value.detach().numpy(), [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(reference.margin_ranking_loss(x1, x2, y, reduction="none"),
                                  value.detach().numpy())
    g1, g2 = reference.margin_ranking_loss_backward(x1, x2, y, reduction="none")
    np.testing.assert_array_equal(g1, grads[0].numpy())
    np.testing.assert_array_equal(g2, grads[1].numpy())


# ------------------------------------------------------------------- errors

# (function, args, kwargs, reference's exception, the argument its message names)
ERRORS = [
    ("binary_cross_entropy", ([1.5], [0.5]), {}, ValueError, "input"),
    ("binary_cross_entropy", ([np.nan], [0.5]), {}, ValueError, "input"),
    ("binary_cross_entropy", ([-0.1], [0.5]), {}, ValueError, "input"),
    ("binary_cross_entropy", ([0.5], [2.0]), {}, ValueError, "target"),
    ("binary_cross_entropy", ([0.5], [np.nan]), {}, ValueError, "target"),
    ("binary_cross_entropy", ([0.5, 0.5], [1.0]), {}, ValueError, "target"),
    ("binary_cross_entropy", ([0.5, 0.5], [1.0, 1.0]), {"weight": [[1.0, 1.0]]}, ValueError, "weight"),
    ("binary_cross_entropy", (np.full((2, 3), 0.5), np.full((2, 3), 0.5)), {"weight": np.ones(2)}, ValueError,
     "weight"),
    ("binary_cross_entropy", ([0.5], [0.5]), {"reduction": "batchmean"}, ValueError, "reduction"),
    ("binary_cross_entropy_with_logits", (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))), {"pos_weight": np.ones(2)},
     ValueError, "pos_weight"),
    ("binary_cross_entropy_with_logits", (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))),
     {"pos_weight": np.ones((1, 1, 1, 3))}, ValueError, "pos_weight"),
    ("binary_cross_entropy_with_logits", (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))), {"pos_weight": np.ones(0)},
     ValueError, "pos_weight"),
    ("binary_cross_entropy_with_logits", (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))), {"weight": np.ones(2)},
     ValueError, "weight"),
    ("binary_cross_entropy_with_logits", (np.zeros((2, 3)), np.zeros(3)), {}, ValueError, "target"),
    ("binary_cross_entropy_with_logits", ([0.0], [0.0]), {"reduction": "batchmean"}, ValueError, "reduction"),
    ("soft_margin_loss", (np.zeros(3), np.ones((2, 3))), {}, ValueError, "target"),
    ("soft_margin_loss", (np.zeros((2, 3)), np.ones((4, 3))), {}, ValueError, "target"),
    ("soft_margin_loss", ([0.0], [1.0]), {"reduction": "bad"}, ValueError, "reduction"),
    ("poisson_nll_loss", (np.zeros((2, 3)), np.ones((4, 3))), {}, ValueError, "target"),
    ("poisson_nll_loss", ([0.0], [1.0]), {"log_input": 1}, TypeError, "log_input"),
    ("poisson_nll_loss", ([0.0], [1.0]), {"full": None}, TypeError, "full"),
    ("poisson_nll_loss", ([0.0], [1.0]), {"eps": "a"}, TypeError, "eps"),
    ("poisson_nll_loss", ([0.0], [1.0]), {"reduction": "batchmean"}, ValueError, "reduction"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3)), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((2, 3)), np.ones((1, 1))), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((2, 3)), np.ones(())), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 3, 1))), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 1)), np.zeros((2, 1)), np.ones((2, 5))), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((4, 3, 5)), np.zeros((4, 3, 5)), np.ones((1, 3, 1))), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((2, 3)), np.ones((0, 1))), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros(3), np.zeros(3), np.array([1.0, -1.0, 1.0])), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros(3), np.zeros(3), -0.5), {}, ValueError, "var"),
    ("gaussian_nll_loss", (np.zeros(3), np.zeros(3), 1), {}, TypeError, "var"),
    ("gaussian_nll_loss", (np.zeros((2, 3)), np.zeros((4, 3)), np.ones((2, 3))), {}, ValueError, "target"),
    ("gaussian_nll_loss", (np.zeros(3), np.zeros(3), np.ones(3)), {"reduction": "batchmean"}, ValueError,
     "reduction"),
    ("kl_div", (np.zeros((2, 3)), np.ones((4, 3))), {}, ValueError, "target"),
    ("kl_div", ([0.0], [1.0]), {"log_target": 1}, TypeError, "log_target"),
    ("kl_div", ([0.0], [1.0]), {"reduction": "bad"}, ValueError, "reduction"),
    ("hinge_embedding_loss", (np.zeros((2, 3)), np.ones((4, 3))), {}, ValueError, "target"),
    ("hinge_embedding_loss", ([0.0], [1.0]), {"margin": "a"}, TypeError, "margin"),
    ("hinge_embedding_loss", ([0.0], [1.0]), {"margin": None}, TypeError, "margin"),
    ("margin_ranking_loss", (np.zeros(3), np.zeros(3), np.ones(())), {}, ValueError, "target"),
    ("margin_ranking_loss", (np.zeros((2, 3)), np.zeros(3), np.ones((2, 3))), {}, ValueError, "input2"),
    ("margin_ranking_loss", (np.zeros((2, 3)), np.zeros((4, 3)), np.ones((2, 3))), {}, ValueError, "input2"),
    ("margin_ranking_loss", ([0.0], [0.0], [1.0]), {"margin": "a"}, TypeError, "margin"),
    ("margin_ranking_loss", ([0.0], [0.0], [1.0]), {"reduction": "bad"}, ValueError, "reduction"),
]


@pytest.mark.parametrize("name, args, kwargs, error, argument", ERRORS,
                         ids=[f"{e[0]}-{e[4]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_where_torch_raises(name, args, kwargs, error, argument):
    tensors = [a if isinstance(a, (float, int)) else _tensor(a) for a in args]
    torch_kwargs = {k: _tensor(v) if isinstance(v, (list, np.ndarray)) else v for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            getattr(F, name)(*tensors, **torch_kwargs)
    for fn in (getattr(reference, name), getattr(reference, name + "_backward")):
        with pytest.raises(error, match=f"^{argument}:"):
            fn(*args, **kwargs)


def test_gaussian_var_accepts_what_torch_accepts():
    # -0.0 and NaN pass torch's `var < 0` check; a 0-d var meets a 1-d input.
    for var in (np.array(-0.0), np.array(np.nan), np.array(0.5)):
        expected = F.gaussian_nll_loss(_t([0.5, 1.0, 2.0]), _t([0.0, 1.0, 1.0]), _t(var)).item()
        _assert_close(reference.gaussian_nll_loss([0.5, 1.0, 2.0], [0.0, 1.0, 1.0], var), expected, str(var))


def test_deprecated_arguments_are_rejected():
    with pytest.raises(TypeError):
        reference.binary_cross_entropy([0.5], [0.5], size_average=True)
    with pytest.raises(TypeError):
        reference.kl_div_backward([0.5], [0.5], reduce=False)
