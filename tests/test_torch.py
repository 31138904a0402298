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
    assert_close,
    case_options,
    elementwise_abs_grad,
)

TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
               "bfloat16": torch.bfloat16}

# scenario -> (input shape, target shape, values, weighted)
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


def _tensor(a, dtype):
    return torch.from_numpy(np.array(as_float64(a), order="C", copy=True)).to(TORCH_DTYPE[np.dtype(dtype).name])


def _torch_value_and_grad(case, arrays, reduction, options, grad_output, dtype):
    x = _tensor(arrays["input"], dtype).requires_grad_(True)
    kwargs = {k: _tensor(v, dtype) for k, v in arrays.items() if k not in ("input", "target")}
    t = _tensor(arrays["target"], dtype)
    mismatch = x.shape != t.shape
    with warnings.catch_warnings():
        if mismatch:
            warnings.simplefilter("ignore", UserWarning)  # torch's size-mismatch warning
        value = getattr(F, case.name)(x, t, reduction=reduction, **kwargs, **options)
    g = torch.broadcast_to(_tensor(grad_output, dtype), value.shape)
    (grad,) = torch.autograd.grad(value, x, g)
    return value.detach().to(torch.float64).numpy(), grad.to(torch.float64).numpy()


def _cases():
    return [pytest.param(*p.values, s, id=f"{p.id}-{s}") for p in case_options(ELEMENTWISE) for s in SCENARIOS
            if p.values[0].weighted or not SCENARIOS[s][3]]


@pytest.mark.parametrize("case, options, scenario", _cases())
@np.errstate(over="ignore")  # float16 sums overflow: test_float16_overflow_is_inf_without_warning
def test_matches_torch(case, options, scenario, dtype, reduction):
    in_shape, tg_shape, values, weighted = SCENARIOS[scenario]
    arrays = case.make(np.random.default_rng(list(SCENARIOS).index(scenario)), in_shape, dtype, values=values,
                       target_shape=tg_shape, weighted=weighted)
    loss_shape = np.broadcast_shapes(in_shape, tg_shape) if reduction == "none" else ()
    grad_output = np.linspace(-2.0, 2.0, int(np.prod(loss_shape))).reshape(loss_shape) if loss_shape else np.array(0.75)
    grad_output = grad_output.astype(dtype)  # torch wants grad_outputs in the loss's dtype

    expected_value, expected_grad = _torch_value_and_grad(case, arrays, reduction, options, grad_output, dtype)
    value, grad = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=grad_output, **options)
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.shape(value) == expected_value.shape and grad.shape == expected_grad.shape
    assert_close(value, expected_value, dtype, tolerance=TORCH_TOLERANCE, what=f"{case.name} value")
    abs_scale = None
    if in_shape != np.broadcast_shapes(in_shape, tg_shape):
        abs_scale = elementwise_abs_grad(case, arrays, reduction, options, grad_output)
    assert_close(grad, expected_grad, dtype, tolerance=TORCH_TOLERANCE, abs_scale=abs_scale,
                 what=f"{case.name} gradient")
    # and the separate forward / backward
    assert_close(case.call(case.forward, arrays, reduction=reduction, **options), expected_value, dtype,
                 tolerance=TORCH_TOLERANCE, what="forward")
    assert_close(case.call(case.backward, arrays, reduction=reduction, grad_output=grad_output, **options),
                 expected_grad, dtype, tolerance=TORCH_TOLERANCE, abs_scale=abs_scale, what="backward")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)], ids=lambda d: d.name)
def test_every_special_pair_matches_torch(case, options, dtype, reduction):
    """NaN, +-inf, +-0, the kinks (0, +-0.5, +-1, +-2 apart) for every pair."""
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 1.5])
    x, t = np.meshgrid(specials, specials, indexing="ij")
    arrays = {"input": x.ravel().astype(dtype), "target": t.ravel().astype(dtype)}
    go = np.linspace(-1, 1, x.size).astype(dtype) if reduction == "none" else np.array(1.25, dtype)
    expected_value, expected_grad = _torch_value_and_grad(case, arrays, reduction, options, go, dtype)
    value, grad = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
    assert_close(value, expected_value, dtype, tolerance=TORCH_TOLERANCE)
    assert_close(grad, expected_grad, dtype, tolerance=TORCH_TOLERANCE)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_signed_zeros_match_torch(case, options, reduction):
    """Losses and gradients at x - target = +-0 have torch's zero signs (a
    loss of -0.0 is not |x - target|)."""
    x = np.array([-0.0, 0.0, -0.0, 0.0, 1.0])
    t = np.array([0.0, -0.0, -0.0, 0.0, 1.0])
    arrays = {"input": x, "target": t}
    go = -np.ones(5) if reduction == "none" else np.array(-1.0)
    expected_value, expected_grad = _torch_value_and_grad(case, arrays, reduction, options, go, np.float64)
    value, grad = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
    np.testing.assert_array_equal(np.signbit(value), np.signbit(expected_value), err_msg="loss zero signs")
    np.testing.assert_array_equal(np.signbit(grad), np.signbit(expected_grad), err_msg="gradient zero signs")
    np.testing.assert_array_equal(value, expected_value)


@pytest.mark.parametrize("case", [c for c in ELEMENTWISE if c.weighted], ids=lambda c: c.name)
@pytest.mark.parametrize("weights", [[1.0, -1.0, 2.0, -2.0], [-0.5, 1.0, -3.0, 0.25]], ids=["zero_sum", "signed"])
def test_signed_weights_match_torch(case, weights, reduction):
    arrays = {"input": np.array([0.5, -1.0, 2.0, 0.0]), "target": np.array([0.0, 0.5, 0.5, 0.0]),
              "weight": np.array(weights)}
    go = np.linspace(-1, 1, 4) if reduction == "none" else np.array(0.5)
    expected_value, expected_grad = _torch_value_and_grad(case, arrays, reduction, {}, go, np.float64)
    value, grad = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go)
    assert_close(value, expected_value, np.float64, tolerance=TORCH_TOLERANCE)
    assert_close(grad, expected_grad, np.float64, tolerance=TORCH_TOLERANCE)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_nn_classes_match_torch(case, options, reduction):
    rng = np.random.default_rng(0)
    arrays = case.make(rng, (5, 8), np.dtype(np.float64), values="grid")
    theirs = getattr(torch.nn, case.spec.class_name)(reduction=reduction, **options)
    ours = case.nn_class(reduction=reduction, **options)
    x = torch.from_numpy(arrays["input"]).requires_grad_(True)
    value = theirs(x, torch.from_numpy(arrays["target"]))
    (grad,) = torch.autograd.grad(value.sum(), x)
    np.testing.assert_allclose(ours(arrays["input"], arrays["target"]), value.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.backward(arrays["input"], arrays["target"]), grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c.name)
@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).split(".")[1])
def test_torch_tensors_as_inputs(case, tdtype):
    """Objects with __dlpack__ are read (zero-copy), also non-contiguous."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 30, generator=gen).to(tdtype)
    t = torch.randn(30, 40, generator=gen).to(tdtype).T  # non-contiguous
    dtype = BFLOAT16 if tdtype == torch.bfloat16 else np.dtype(str(tdtype).split(".")[1])
    xn = x.to(torch.float64).numpy().astype(dtype)
    tn = t.to(torch.float64).numpy().astype(dtype)
    for reduction in ("none", "sum"):
        got = case.forward(x, t, reduction=reduction)
        assert got.dtype == dtype
        assert_close(got, case.forward(xn, tn, reduction=reduction), dtype, what="forward")
        grad = case.backward(x, t, reduction=reduction)
        assert isinstance(grad, np.ndarray) and grad.dtype == dtype and grad.shape == (40, 30)
        assert_close(grad, case.backward(xn, tn, reduction=reduction), dtype, what="backward")


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
    specs = list(REGISTRY.values())
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
