"""The class-axis losses (the row-wise driver), driven by the case table's
"classification" rows: against the float64 reference and torch over the
input shapes (C), (N, C) and (N, C, d1..dk) and every layout the driver walks
(class axis contiguous, strided with unit inner stride, anything else),
integer targets of every width, bitwise determinism across thread counts and
ISA levels, float32 accuracy, errors, and the issue's worked examples."""

from __future__ import annotations

import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import _core, reference

from cases import BEYOND_TORCH_OPTIONS, CLASSIFICATION, assert_close, assert_identical, case_options

DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _make(case, rng, shape, dtype, options, **kwargs):
    """case.make, the ignored targets (-100) set to the options' ignore_index."""
    arrays = case.make(rng, shape, dtype, **kwargs)
    if "ignore_index" in options and "target" in arrays and arrays["target"].dtype.kind in "iu":
        t = arrays["target"]
        arrays["target"] = np.where(t == -100, options["ignore_index"], t).astype(t.dtype)
    return arrays


def _call(case, fn, arrays, **options):
    positional, keyword = case.split(arrays)
    return fn(*positional, **keyword, **options)


def _expected(case, arrays, backward=False, **options):
    positional, keyword = case.split(arrays)
    f = case.reference_backward if backward else case.reference
    return f(*positional, **keyword, **options)


def _grad_output(rng, case, arrays, reduction, options):
    if reduction != "none":
        return 0.75
    shape = np.shape(_expected(case, arrays, reduction="none", **options))
    return rng.uniform(-1.5, 2.0, shape)


def _term_scale(case, arrays, reduction, options, go):
    """The size of one gradient term: |grad_output| * the largest class
    weight, over the mean's denominator."""
    w = np.abs(np.asarray(arrays.get("weight", 1.0), np.float64)).max(initial=0)
    factor = 1.0
    if reduction == "mean":
        with np.errstate(all="ignore"):
            factor = abs(float(_expected(case, arrays, reduction="mean", **options)
                               / _expected(case, arrays, reduction="sum", **options)))
        factor = factor if np.isfinite(factor) and factor != 0 else 1.0
    return float(np.abs(go).max(initial=0)) * max(w, 1.0) * factor


def _value_scale(case, arrays, reduction, options):
    """|terms| of the value (Case.value_scale per row, reduced as the loss), or None."""
    if case.value_scale is None:
        return None
    rows = np.nan_to_num(case.value_scale(arrays, options), posinf=0.0)
    if reduction == "none":
        return rows
    return np.float64(rows.sum()) * (_term_scale(case, arrays, reduction, options, 1.0)
                                     / max(np.abs(np.asarray(arrays.get("weight", 1.0))).max(initial=0), 1.0))


@pytest.mark.parametrize("case, options", case_options(CLASSIFICATION))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("values", ["normal", "grid", "special"])
def test_against_reference(case, options, dtype, values):
    rng = np.random.default_rng(1)
    tolerance = 1e-12 if dtype == np.float64 else 2e-5
    for shape in case.shapes:
        for weighted in (False, True) if case.optional else (False,):
            arrays = _make(case, rng, shape, dtype, options, values=values, weighted=weighted)
            if len(shape) == 1 and options.get("ignore_index") == 1:
                continue
            for reduction in ("none", "mean", "sum"):
                what = f"{case.name} {shape} weighted={weighted} {reduction} {options}"
                go = _grad_output(rng, case, arrays, reduction, options)
                value = _call(case, case.forward, arrays, reduction=reduction, **options)
                grad = _call(case, case.backward, arrays, reduction=reduction, grad_output=go, **options)
                fused = _call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
                assert_identical(fused[0], value, what + " fused value")
                assert_identical(fused[1], grad, what + " fused grad")
                assert np.asarray(value).dtype == dtype and grad.dtype == dtype and grad.shape == shape
                expected = _expected(case, arrays, reduction=reduction, **options)
                expected_grad = _expected(case, arrays, backward=True, reduction=reduction, grad_output=go, **options)
                tol = {"float32": (tolerance, 1e-6), "float64": (tolerance, 1e-300)}
                # (a loss with value_scale: a row's value is a difference of terms of that size)
                vscale = _value_scale(case, arrays, reduction, options)
                assert_close(value, expected, dtype, tolerance=tol, abs_scale=vscale, what=what)
                # A gradient entry is a difference (p_y - 1 near p_y = 1): its error is relative to the row's terms.
                scale = np.nan_to_num(np.abs(expected_grad), posinf=0).max(initial=0) + _term_scale(
                    case, arrays, reduction, options, go)
                assert_close(grad, expected_grad, dtype, tolerance=tol, abs_scale=np.full(grad.shape, scale),
                             what=what + " grad")


@pytest.mark.parametrize("case, options", case_options(c for c in CLASSIFICATION if c.oracle == "torch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_against_torch(case, options, dtype):
    """(Options torch lacks, BEYOND_TORCH_OPTIONS: the registry's torch peer,
    the outside definition in torch ops.)"""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    for shape in [s for s in case.shapes if 0 not in s]:
        for weighted in (False, True) if case.optional else (False,):
            arrays = _make(case, rng, shape, dtype, options, values="special" if len(shape) > 1 else "normal",
                           weighted=weighted)
            if len(shape) == 1 and options.get("ignore_index") == 1:
                continue
            for reduction in ("none", "mean", "sum"):
                tensors = {k: torch.tensor(v) for k, v in arrays.items()}
                tensors["input"].requires_grad_(True)
                positional, keyword = case.split(tensors)
                beyond = set(options) & set(BEYOND_TORCH_OPTIONS.get(case.name, ()))
                if beyond:
                    want = case.spec.torch(torch, *positional, **keyword, reduction=reduction, **options)
                else:
                    want = getattr(torch.nn.functional, case.name)(*positional, **keyword, reduction=reduction,
                                                                   **options)
                go = rng.uniform(-1.5, 2.0, tuple(want.shape)).astype(dtype)
                (want * torch.tensor(go)).sum().backward()
                value, grad = _call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=go,
                                    **options)
                rtol = 1e-12 if dtype == np.float64 else 2e-5
                what = f"{case.name} {shape} weighted={weighted} {reduction} {options}"
                np.testing.assert_allclose(value, want.detach().numpy(), rtol=rtol, atol=1e-6 * rtol, err_msg=what)
                np.testing.assert_allclose(grad, tensors["input"].grad.numpy(), rtol=rtol, atol=rtol, err_msg=what)
                # signs of zeros (torch's -0.0 for -w * 0) as torch's
                if reduction == "none":
                    mine, theirs = np.asarray(value), want.detach().numpy()
                    zeros = (theirs == 0) & (mine == 0)
                    assert np.array_equal(np.signbit(mine[zeros]), np.signbit(theirs[zeros])), what


INDEXED = [c for c in CLASSIFICATION if any(a.index_dtype is not None for a in c.args)]


def _max_ndim(case):
    return max(len(s) for s in case.shapes)


@pytest.mark.parametrize("case", INDEXED, ids=str)
@pytest.mark.parametrize("int_dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_integer_width(case, int_dtype):
    """Targets of any integer width are read as they are: the same bits as int64."""
    rng = np.random.default_rng(3)
    for shape in [s for s in [(9, 7), (3, 5, 4, 2)] if len(s) <= _max_ndim(case)]:
        arrays = case.make(rng, shape, np.dtype(np.float32), weighted=True)
        if np.dtype(int_dtype).kind == "u":  # (-1 ends a multilabel row: a signed width only)
            arrays["target"] = np.abs(arrays["target"])
        narrow = dict(arrays, target=arrays["target"].astype(int_dtype))
        got = _call(case, case.value_and_grad, narrow, reduction="none")
        want = _call(case, case.value_and_grad, arrays, reduction="none")
        assert_identical(got[0], want[0], f"{case.name} {np.dtype(int_dtype)}")
        assert_identical(got[1], want[1], f"{case.name} {np.dtype(int_dtype)} grad")
        assert_identical(_call(case, case.forward, narrow, reduction="mean"),
                         _call(case, case.forward, arrays, reduction="mean"))


def _layouts(x, rng):
    """``x`` stored other ways (same values): class axis strided, negative
    strides, channels last, a non-unit inner stride."""
    out = {"C": x}
    out["F"] = np.asfortranarray(x)
    big = np.empty(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    big[..., ::2] = x
    out["inner strided"] = big[..., ::2]
    neg = np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    out["negative"] = neg
    if x.ndim > 2:
        last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        out["channels last"] = np.moveaxis(last, -1, 1)
    return out


@pytest.mark.parametrize("case", CLASSIFICATION, ids=str)
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.3}], ids=["plain", "smoothing"])
@pytest.mark.parametrize("shape", [(64, 33), (3, 7, 5, 11), (2, 40, 130)], ids=str)
def test_layouts_and_out(case, options, shape):
    """Every layout (row, spatial and gather paths) gives the contiguous
    result (within rounding: the paths sum in different orders), and
    ``out=`` of any layout receives the gradient."""
    if len(shape) > _max_ndim(case):
        pytest.skip(f"{case.name} takes at most {_max_ndim(case)} dimensions")
    options = {k: val for k, val in options.items() if k in case.spec.options}
    rng = np.random.default_rng(4)
    arrays = case.make(rng, shape, np.dtype(np.float64), values="special", weighted=True)
    value, grad = _call(case, case.value_and_grad, arrays, reduction="none", **options)
    for name, x in _layouts(arrays["input"], rng).items():
        v2, g2 = _call(case, case.value_and_grad, dict(arrays, input=x), reduction="none", **options)
        np.testing.assert_allclose(v2, value, rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(g2, grad, rtol=1e-13, atol=1e-300, err_msg=name)
        out = _layouts(np.zeros_like(grad), rng)[name]
        r = _call(case, case.backward, arrays, reduction="none", out=out, **options)
        assert r is out
        np.testing.assert_allclose(out, grad, rtol=1e-13, atol=1e-300, err_msg=name + " out=")


def _assert_close_across_isas(a, b, what):
    """baseline vs an FMA level (float32 fma_math losses): the same NaNs and
    infinities, finite values within a few ulp of the array's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NaN at different places"
    assert np.array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0)), f"{what}: infinities differ"
    finite = np.isfinite(b)
    scale = float(np.max(np.abs(b[finite]))) if finite.any() else 0.0
    np.testing.assert_allclose(a[finite], b[finite], rtol=2e-5, atol=2e-5 * scale, err_msg=what)


@pytest.mark.parametrize("case", CLASSIFICATION, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(3001, 67), (5, 9, 40, 41), (40, 5000)], ids=str)
def test_bitwise_identical_across_threads_and_isas(restore_threads, case, dtype, shape):
    if len(shape) > _max_ndim(case):
        pytest.skip(f"{case.name} takes at most {_max_ndim(case)} dimensions")
    rng = np.random.default_rng(5)
    arrays = case.make(rng, shape, dtype, values="special", weighted=True)
    options = {"label_smoothing": 0.1} if "label_smoothing" in case.spec.options else {}
    # the other options that change the kernel's math (softcap's tanh, z-loss, alpha, poly)
    options.update({k: v for k, v in (("z_loss", 1e-3), ("softcap", 4.0), ("alpha", 0.25), ("gamma", 0.5),
                                      ("smooth", 1.0)) if k in case.spec.options})

    def results():
        out = []
        for reduction in ("none", "mean", "sum"):
            out.append(_call(case, case.forward, arrays, reduction=reduction, **options))
            out.extend(_call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=0.5, **options))
        return out

    isa = _core.current_isa()
    levels = list(_core.available_isas())
    # fma_math (float32): baseline's loss_* math is only close to the FMA
    # levels' (cases.py); the bitwise reference is then the last FMA level
    inexact = case.fma_math and np.dtype(dtype) == np.float32
    try:
        _core.select_isa(levels[-1] if inexact else isa)
        fastloss.set_num_threads(1)
        first = results()
        for level in levels:
            _core.select_isa(level)
            for n in (1, 2, 3, 7):
                fastloss.set_num_threads(n)
                for i, (a, b) in enumerate(zip(results(), first)):
                    what = f"{level}, {n} threads, result {i}"
                    if inexact and level == "baseline":
                        _assert_close_across_isas(a, b, what)
                    else:
                        assert_identical(a, b, what)
    finally:
        _core.select_isa(isa)


@pytest.mark.parametrize("case", CLASSIFICATION, ids=str)
def test_float32_sums_on_1e7_terms(case):
    """A float32 'sum' over 10^7 elements is within 1e-6 of the float64 sum of
    the same (float32) rows."""
    rng = np.random.default_rng(6)
    arrays = case.make(rng, (100_000, 100), np.dtype(np.float32))
    got = _call(case, case.forward, arrays, reduction="sum")
    rows = _call(case, case.forward, {**arrays, "input": arrays["input"].astype(np.float64)}, reduction="none")
    assert abs(float(got) - rows.sum()) <= 1e-6 * np.abs(rows).sum()


@pytest.mark.parametrize("case", INDEXED, ids=str)
@pytest.mark.parametrize("int_dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_out_of_range_index_raises(case, int_dtype):
    x = np.array([[0.1, 0.2, 0.4, 0.8, 0.5]] * 3, np.float32)
    info = np.iinfo(int_dtype)
    rows = case.args[1].shape != "rows"  # a row of class indices per row (multilabel_margin_loss)
    for bad in (5, 100, -1, -101, -2, info.max, info.min):
        if bad < info.min or bad > info.max or (0 <= bad < 5) or bad == (-1 if rows else -100):
            continue
        if rows:  # also after the row's first -1, as torch
            y = np.array([[0, 1, 2, 3, 4], [2, -1 if info.min < 0 else 1, bad, 0, 0], [1, 0, 0, 0, 0]], int_dtype)
        else:
            y = np.array([0, bad, 1], int_dtype)
        for fn in (case.forward, case.backward, case.value_and_grad):
            with pytest.raises(IndexError, match=str(bad) if bad <= np.iinfo(np.int64).max else "out of bounds"):
                fn(x, y)
        with pytest.raises(IndexError):
            getattr(reference, case.name)(x, y)


@pytest.mark.parametrize("case, options", [p for p in case_options(CLASSIFICATION) if not p.values[1]])
def test_errors(case, options):
    rng = np.random.default_rng(7)
    arrays = case.make(rng, (3, 4), np.dtype(np.float64), weighted=True)
    for bad_options, exc, name in case.bad_options:
        with pytest.raises(exc, match=name):
            _call(case, case.forward, arrays, **bad_options)
    for shapes, name in case.shape_errors:
        bad = dict(arrays)
        for k, s in shapes.items():
            bad[k] = case.make(rng, (3, 4), np.dtype(np.float64), weighted=True, shapes={k: s})[k] \
                if k != "target" else np.zeros(s, np.int64)
        with pytest.raises(ValueError, match=name):
            _call(case, case.forward, bad)
    if case in INDEXED:
        with pytest.raises(TypeError, match="target"):
            _call(case, case.forward, dict(arrays, target=arrays["target"].astype(bool)))
    if case.name in ("cross_entropy", "nll_loss", "multilabel_soft_margin_loss"):
        with pytest.raises(ValueError, match="input"):
            case.forward(np.float64(1.0), np.int64(0))
    with pytest.raises(TypeError, match="input"):
        case.forward(np.zeros((3, 4), np.int64), arrays["target"])
    with pytest.raises(TypeError, match="size_average"):
        case.forward(arrays["input"], arrays["target"], size_average=True)


@pytest.mark.parametrize("case", CLASSIFICATION, ids=str)
def test_classes(case):
    """The fastloss.nn class calls the function with its options."""
    rng = np.random.default_rng(8)
    arrays = case.make(rng, (6, 5), np.dtype(np.float64), weighted=True)
    keyword = {k: arrays[k] for k in case.optional}
    crit = case.nn_class(**keyword, reduction="sum")
    assert_identical(crit(arrays["input"], arrays["target"]),
                     case.forward(arrays["input"], arrays["target"], **keyword, reduction="sum"))
    assert_identical(crit.backward(arrays["input"], arrays["target"]),
                     case.backward(arrays["input"], arrays["target"], **keyword, reduction="sum"))


def test_nll_loss_2d_alias():
    assert issubclass(fastloss.nn.NLLLoss2d, fastloss.nn.NLLLoss)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4, 5))
    y = rng.integers(0, 3, (2, 4, 5))
    assert_identical(fastloss.nn.NLLLoss2d(ignore_index=1)(x, y), fastloss.nll_loss(x, y, ignore_index=1))


# ------------------------------------------------- the worked examples


def test_label_smoothing_with_weight():
    got = fastloss.cross_entropy(np.array([[2.0, 0, -1]]), np.array([0]), weight=np.array([1.0, 5, 1]),
                                 label_smoothing=0.3)
    assert got == pytest.approx(1.5377844273787998, rel=1e-15)


def test_signed_zeros_and_weighted_mean():
    x = np.array([[-100.0, 100], [-100, 100]], np.float32)
    y = np.array([0, 1])
    w = np.array([20.0, 10], np.float32)
    none = fastloss.cross_entropy(x, y, weight=w, reduction="none")
    assert none[0] == 4000 and none[1] == 0 and np.signbit(none[1])
    assert fastloss.cross_entropy(x, y, weight=w) == np.float32(4000 / 30)


def test_minus_inf_logit_with_smoothing():
    value, grad = fastloss.cross_entropy_value_and_grad(np.array([[-np.inf, 1, 0]], np.float32), np.array([1]),
                                                        label_smoothing=0.2)
    assert value == np.inf and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_all_ignored(name):
    x = np.random.default_rng(10).standard_normal((3, 4))
    y = np.full(3, -100)
    value, grad = getattr(fastloss, name + "_value_and_grad")(x, y)
    assert np.isnan(value) and np.all(grad == 0)
    value, grad = getattr(fastloss, name + "_value_and_grad")(x, y, reduction="sum")
    assert value == 0 and np.all(grad == 0)


def test_probability_targets_ignore_index():
    x = np.zeros((2, 5))
    with pytest.raises(ValueError, match="ignore_index"):
        fastloss.cross_entropy(x, np.full((2, 5), 0.2), ignore_index=1)
    with pytest.raises(ValueError, match="target"):
        fastloss.cross_entropy(x, np.full((2, 4), 0.2))


@pytest.mark.parametrize("smoothing", [-0.1, -5.0, float("nan")])
def test_label_smoothing_not_positive_is_plain_cross_entropy(smoothing):
    """torch applies label smoothing only when it is > 0: a negative or NaN
    value gives plain cross entropy (values and gradients)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6))
    for target in (np.array([0, 3, 5, 1]), rng.dirichlet(np.ones(6), size=4)):
        xt = torch.tensor(x, requires_grad=True)
        expected = torch.nn.functional.cross_entropy(xt, torch.tensor(target), label_smoothing=smoothing)
        (grad,) = torch.autograd.grad(expected, xt)
        value, g = fastloss.cross_entropy_value_and_grad(x, target, label_smoothing=smoothing)
        np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
        np.testing.assert_allclose(g, grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(fastloss.reference.cross_entropy(x, target, label_smoothing=smoothing),
                                   expected.item(), rtol=1e-12)
