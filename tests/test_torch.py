"""Values and gradients against torch 2.13 autograd, the oracle: every loss,
option, reduction and dtype, on continuous data, exact kinks, NaN/inf,
empty and broadcast inputs, weights and several reduction blocks. Also the
nn classes against torch's modules, and torch tensors as inputs (DLPack)."""

from __future__ import annotations

import inspect
import pathlib
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastloss  # noqa: E402
import fastloss.nn  # noqa: E402
from fastloss._api import REGISTRY  # noqa: E402
from cases import (  # noqa: E402
    BFLOAT16,
    ELEMENTWISE,
    TORCH_TOLERANCE,
    as_float64,
    case_options,
    check_grads,
    check_value,
)

ELEMENTWISE = [c for c in ELEMENTWISE if c.oracle == "torch"]  # (the others: test_beyond_torch.py)

TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
               "bfloat16": torch.bfloat16}

# scenario -> (input shape, target shape, values, weighted: the optional arrays too)
SCENARIOS = {
    "normal": ((6, 7), (6, 7), "normal", False),
    "kinks": ((6, 7), (6, 7), "grid", False),
    "nan_inf": ((8, 9), (8, 9), "special", False),
    "empty": ((0, 3), (0, 3), "normal", False),
    "scalar": ((), (), "normal", False),
    "broadcast": ((5, 1, 3), (4, 3), "grid", False),
    "broadcast_input": ((3,), (2, 4, 3), "normal", False),
    "weighted": ((6, 7), (6, 7), "normal", True),
    "weighted_kinks_broadcast": ((4, 1), (1, 6), "grid", True),
    "blocks": ((3 * 8192 + 11,), (3 * 8192 + 11,), "normal", False),
}


def _tensor(a, dtype, grad=False):
    t = torch.from_numpy(np.array(as_float64(a), order="C", copy=True)).to(TORCH_DTYPE[np.dtype(dtype).name])
    return t.requires_grad_(grad)


def torch_value_and_grads(case, arrays, reduction, options, grad_output, dtype):
    """torch's loss and the gradients of every differentiable argument
    (float64 NumPy arrays), in ``dtype``."""
    tensors = {k: _tensor(v, dtype, k in case.grad_names) for k, v in arrays.items()}
    positional, keyword = case.split(tensors)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using a target size", UserWarning)  # (broadcast targets)
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)  # kl_div's
        value = getattr(F, case.name)(*positional, reduction=reduction, **keyword, **options)
    g = torch.broadcast_to(_tensor(grad_output, dtype), value.shape)
    grads = torch.autograd.grad(value, [tensors[n] for n in case.grad_names], g)
    return value.detach().to(torch.float64).numpy(), tuple(x.to(torch.float64).numpy() for x in grads)


def _where_torch_overflows(case, expected, reference):
    """A stably computed loss (Case.stable) equals torch where torch is
    finite, and the reference where torch overflows to inf/NaN."""
    if not case.stable:
        return expected
    expected = np.asarray(expected)
    return np.where(np.isfinite(expected) | ~np.isfinite(reference), expected, reference)


def compare_with_torch(case, arrays, reduction, options, grad_output, dtype, what=""):
    """fastloss's fused, forward and backward results against torch's. Half
    types against torch in float32 on the same (half) values: fastloss
    computes them in float32 and rounds once, where torch rounds after each
    op (BCE's 1e-12 clamp is 0 in float16: 0/0 = NaN at x = t = 1)."""
    oracle = np.dtype(np.float32) if np.dtype(dtype).itemsize == 2 else dtype
    expected_value, expected_grads = torch_value_and_grads(case, arrays, reduction, options, grad_output, oracle)
    if case.stable:
        expected_value = _where_torch_overflows(case, expected_value,
                                                case.expected(arrays, reduction=reduction, **options))
        reference = case.expected_grads(arrays, reduction=reduction, grad_output=grad_output, **options)
        expected_grads = tuple(_where_torch_overflows(case, e, r) for e, r in zip(expected_grads, reference))
    value, grads = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=grad_output, **options)
    assert value.dtype == dtype
    assert np.shape(value) == expected_value.shape
    check_value(case, value, arrays, dtype, reduction, options, expected=expected_value, tolerance=TORCH_TOLERANCE,
                what=f"{what} value")
    check_grads(case, grads, arrays, reduction, options, grad_output=grad_output, expected=expected_grads,
                tolerance=TORCH_TOLERANCE, what=f"{what} gradient")
    # and the separate forward / backward
    check_value(case, case.call(case.forward, arrays, reduction=reduction, **options), arrays, dtype, reduction,
                options, expected=expected_value, tolerance=TORCH_TOLERANCE, what=f"{what} forward")
    check_grads(case, case.call(case.backward, arrays, reduction=reduction, grad_output=grad_output, **options),
                arrays, reduction, options, grad_output=grad_output, expected=expected_grads,
                tolerance=TORCH_TOLERANCE, what=f"{what} backward")


def _grad_output(loss_shape, dtype):
    g = np.linspace(-2.0, 2.0, int(np.prod(loss_shape))).reshape(loss_shape) if loss_shape else np.array(0.75)
    return g.astype(dtype)  # torch wants grad_outputs in the loss's dtype


def _scenario_arrays(case, scenario, dtype):
    in_shape, tg_shape, values, weighted = SCENARIOS[scenario]
    rng = np.random.default_rng(list(SCENARIOS).index(scenario))
    arrays = case.make(rng, in_shape, dtype, values=values, target_shape=tg_shape, weighted=weighted)
    return arrays if case.accepts(arrays) else None


def _cases():
    """Every case and option set, in every scenario the loss accepts; the
    half types on the expensive tests' option subset only."""
    params = []
    for p in case_options(ELEMENTWISE):
        case, options = p.values
        for s in SCENARIOS:
            if (SCENARIOS[s][3] and not case.optional) or _scenario_arrays(case, s, np.float64) is None:
                continue
            for dtype in (np.float32, np.float64, np.float16, BFLOAT16):
                if np.dtype(dtype).itemsize == 2 and options not in case.heavy:
                    continue
                params.append(pytest.param(case, options, s, np.dtype(dtype), id=f"{p.id}-{s}-{np.dtype(dtype).name}"))
    return params


@pytest.mark.parametrize("case, options, scenario, dtype", _cases())
@np.errstate(over="ignore")  # float16 sums overflow: test_float16_overflow_is_inf_without_warning
def test_matches_torch(case, options, scenario, dtype):
    arrays = _scenario_arrays(case, scenario, dtype)
    for reduction in case.reductions:
        loss_shape = case.loss_shape(arrays, **options) if reduction == "none" else ()
        compare_with_torch(case, arrays, reduction, options, _grad_output(loss_shape, dtype), dtype,
                           what=f"{case.name} {reduction}")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)], ids=lambda d: d.name)
def test_special_values_match_torch(case, options, dtype):
    """NaN, +-inf, +-0, the kinks and clamps, wherever the loss accepts them,
    for every argument at once."""
    for seed in range(3):
        arrays = case.make(np.random.default_rng(seed), (300,), dtype, values="special", weighted=bool(seed % 2))
        for reduction in case.reductions:
            go = np.linspace(-1, 1, 300).astype(dtype) if reduction == "none" else np.array(1.25, dtype)
            compare_with_torch(case, arrays, reduction, options, go, dtype, what=f"{case.name} {reduction}")


# Gradients whose zero signs differ from torch's (see test_known_zero_signs_of_margin_gradients).
ZERO_SIGN_DEVIATIONS = {"hinge_embedding_loss", "margin_ranking_loss"}


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_signed_zeros_match_torch(case, options):
    """Losses and gradients at +-0 inputs and targets have torch's zero signs
    (a loss of -0.0 is not |x - target|)."""
    x = np.array([-0.0, 0.0, -0.0, 0.0, 1.0])
    t = np.array([0.0, -0.0, -0.0, 0.0, 1.0])
    arrays = {n: (t if n in ("target", "var") else x) for n in case.spec.arrays}
    f64 = np.dtype(np.float64)
    for reduction in case.reductions:
        go = -np.ones(5) if reduction == "none" else np.array(-1.0)
        expected_value, expected_grads = torch_value_and_grads(case, arrays, reduction, options, go, f64)
        value, grads = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
        check_value(case, value, arrays, f64, reduction, options, expected=expected_value, tolerance=TORCH_TOLERANCE)
        check_grads(case, grads, arrays, reduction, options, grad_output=go, expected=expected_grads,
                    tolerance=TORCH_TOLERANCE)
        zeros = expected_value == 0
        np.testing.assert_array_equal(np.signbit(value)[zeros], np.signbit(expected_value)[zeros],
                                      err_msg="loss zero signs")
        if case.name not in ZERO_SIGN_DEVIATIONS:
            for g, e in zip(case.grads(grads), expected_grads):
                np.testing.assert_array_equal(np.signbit(g)[e == 0], np.signbit(e)[e == 0], err_msg="gradient zero signs")


@pytest.mark.xfail(reason="C++ functors: the zero sign of an inactive hinge's gradient differs from torch's "
                          "(torch: where(mask, g, 0) * -t and a sum of two where()s)")
def test_known_zero_signs_of_margin_gradients():
    """torch's gradient of an inactive margin term is ``where(mask, g, 0) *
    (-t)`` (margin ranking: -0.0 for t = 1 whatever g) and hinge's is a sum
    of two ``where``s (+0.0 for t = -1, x > margin); fastloss's sign follows
    ``g`` instead."""
    go = -1.0  # (with grad_output 1 the signs agree)
    x1, x2, t = np.array([5.0, -5.0]), np.zeros(2), np.array([1.0, -1.0])
    g = np.full(2, go)
    a, b = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    expected = torch.autograd.grad(F.margin_ranking_loss(a, b, torch.tensor(t), reduction="none"), [a, b],
                                   torch.tensor(g))
    for got, e in zip(fastloss.margin_ranking_loss_backward(x1, x2, t, reduction="none", grad_output=g), expected):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(e.numpy()))
    x, th = torch.tensor([3.0], requires_grad=True), torch.tensor([-1.0])
    (e,) = torch.autograd.grad(F.hinge_embedding_loss(x, th, reduction="none"), x, torch.tensor([go]))
    got = fastloss.hinge_embedding_loss_backward(np.array([3.0]), np.array([-1.0]), reduction="none",
                                                 grad_output=np.array([go]))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(e.numpy()))


@pytest.mark.parametrize("case", [c for c in ELEMENTWISE if c.weighted], ids=lambda c: c.name)
@pytest.mark.parametrize("weights", [[1.0, -1.0, 2.0, -2.0], [-0.5, 1.0, -3.0, 0.25]], ids=["zero_sum", "signed"])
def test_signed_weights_match_torch(case, weights, reduction):
    arrays = case.make(np.random.default_rng(4), (4,), np.float64, values="grid")
    arrays["weight"] = np.array(weights)
    go = np.linspace(-1, 1, 4) if reduction == "none" else np.array(0.5)
    compare_with_torch(case, arrays, reduction, {}, go, np.dtype(np.float64))


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_nn_classes_match_torch(case, options):
    """fastloss.nn against torch.nn, constructed alike (weight, pos_weight
    and options by keyword), every reduction."""
    rng = np.random.default_rng(0)
    arrays = case.make(rng, (5, 8), np.dtype(np.float64), values="grid", weighted=True)
    positional, keyword = case.split(arrays)
    keyword = {k: v for k, v in keyword.items() if k in case.spec.class_options}  # (HuberLoss takes no weight)
    for reduction in case.reductions:
        ctor = {"reduction": reduction, **options}
        theirs = getattr(torch.nn, case.spec.class_name)(**ctor, **{k: torch.from_numpy(v) for k, v in keyword.items()})
        ours = case.nn_class(**ctor, **keyword)
        tensors = [torch.from_numpy(a).requires_grad_(n in case.grad_names) for n, a in zip(case.spec.arrays, positional)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)  # kl_div's
            value = theirs(*tensors)
        grads = torch.autograd.grad(value.sum(), [t for t in tensors if t.requires_grad])
        np.testing.assert_allclose(ours(*positional), value.detach().numpy(), rtol=1e-12)
        for g, e in zip(case.grads(ours.backward(*positional)), grads):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c.name)
@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).split(".")[1])
def test_torch_tensors_as_inputs(case, tdtype):
    """Objects with __dlpack__ are read (zero-copy), also non-contiguous."""
    dtype = BFLOAT16 if tdtype == torch.bfloat16 else np.dtype(str(tdtype).split(".")[1])
    arrays = case.make(np.random.default_rng(0), (30, 40), np.dtype(np.float64), weighted=True,
                       shapes=dict.fromkeys(case.optional, (30, 40)))
    tensors = {k: torch.from_numpy(v).T.to(tdtype) for k, v in arrays.items()}  # (40, 30): non-contiguous
    numpy = {k: v.to(torch.float64).numpy().astype(dtype) for k, v in tensors.items()}
    for reduction in ("none", "sum"):
        got = case.call(case.forward, tensors, reduction=reduction)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.astype(np.float64),
                                      case.call(case.forward, numpy, reduction=reduction).astype(np.float64))
        grads = case.grads(case.call(case.backward, tensors, reduction=reduction))
        for g, e in zip(grads, case.grads(case.call(case.backward, numpy, reduction=reduction))):
            assert isinstance(g, np.ndarray) and g.dtype == dtype and g.shape == e.shape
            np.testing.assert_array_equal(g.astype(np.float64), e.astype(np.float64))


def test_torch_semantics_of_the_case_table():
    """The quirks the reference encodes, checked directly on torch: weighted
    Huber 'mean' is mean(w*l) while weighted L1/MSE divide by sum(w);
    smooth_l1 with beta=0 is L1; L1's gradient at 0 and NaN is 0."""
    x = torch.tensor([0.0, 1.0, float("nan"), -3.0], dtype=torch.float64, requires_grad=True)
    y = torch.zeros(4, dtype=torch.float64)
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    xf = torch.tensor([0.0, 1.0, 2.0, -3.0], dtype=torch.float64)
    l1 = F.l1_loss(xf, y, weight=w, reduction="none")
    assert F.l1_loss(xf, y, weight=w).item() == pytest.approx(l1.sum().item() / w.sum().item())
    hub = F.huber_loss(xf, y, weight=w, reduction="none")
    assert F.huber_loss(xf, y, weight=w).item() == pytest.approx(hub.mean().item())
    assert torch.equal(F.smooth_l1_loss(xf, y, beta=0.0, reduction="none"), F.l1_loss(xf, y, reduction="none"))
    (g,) = torch.autograd.grad(F.l1_loss(x, y, reduction="sum"), x)
    assert g.tolist() == [0.0, 1.0, 0.0, -1.0]
    for ref_fn, kw in ((fastloss.reference.l1_loss, {"weight": w.numpy()}),
                       (fastloss.reference.huber_loss, {"weight": w.numpy()})):
        assert ref_fn(xf.numpy(), y.numpy(), **kw) == pytest.approx(
            getattr(F, ref_fn.__name__)(xf, y, weight=w).item(), rel=1e-15)


DOCS_API = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_nn_classes_take_reduction_first_where_torch_takes_size_average():
    """docs/api.md's "Differences from torch" names the torch classes whose
    first positional arguments are the deprecated size_average and reduce:
    exactly those, and with them ``Class('sum')`` is torch's mean but our sum."""
    specs = [s for s in REGISTRY.values() if hasattr(torch.nn, s.class_name)]  # (not the losses torch lacks)
    legacy = {s.class_name for s in specs
              if "size_average" in inspect.signature(getattr(torch.nn, s.class_name)).parameters}
    row = next(line for line in DOCS_API.read_text(encoding="utf-8").splitlines()
               if line.startswith("| `fastloss.nn` classes"))
    torch_cell = row.split(" | ")[1]
    assert set(re.findall(r"`(\w+Loss)`", torch_cell.split(":")[0])) == legacy
    rng = np.random.default_rng(3)
    for spec in specs:
        if len(spec.arrays) != 2 or spec.class_options[0] != "reduction":
            continue  # Class('sum') means reduction='sum' only where reduction comes first
        (x, y), _ = spec.sample(rng, 64, np.dtype(np.float64))
        ours = getattr(fastloss.nn, spec.class_name)("sum")(x, y)
        np.testing.assert_allclose(ours, spec.reference(x, y, reduction="sum"), rtol=1e-12)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        if spec.class_name in legacy:
            with pytest.warns(UserWarning) as caught:  # (kl_div's 'mean' warns too)
                theirs = getattr(torch.nn, spec.class_name)("sum")(tx, ty)
            assert any("size_average" in str(w.message) for w in caught)
            np.testing.assert_allclose(theirs.item(), spec.reference(x, y, reduction="mean"), rtol=1e-12)
        else:
            theirs = getattr(torch.nn, spec.class_name)("sum")(tx, ty)
            np.testing.assert_allclose(theirs.item(), ours, rtol=1e-12)
