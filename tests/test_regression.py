"""Every function, option and reduction against the float64 reference
(``fastloss.reference``), on every instruction-set level: hypothesis-drawn
shapes (0-d to 5-d, sizes 0, 1, primes and several 8192-element reduction
blocks), layouts (strided, negative strides, transposed, unaligned),
broadcasting, kinks, NaN and inf, weights, grad_output, ``out=``, dtypes and
the ``fastloss.nn`` classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases import (
    BFLOAT16,
    CASES,
    DTYPES,
    ELEMENTWISE,
    LAYOUTS,
    REDUCTIONS,
    assert_close,
    assert_identical,
    assert_unchanged,
    case_options,
    case_params,
    elementwise_abs_grad,
    relayout,
    result_dtype,
    snapshot,
)

F32, F64, F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)

# ----------------------------------------------------------- strategies

SMALL_DIMS = st.sampled_from([0, 1, 1, 2, 2, 3, 4, 5, 7, 8, 13, 16, 17])
# More than one 8192-element reduction block; primes leave ragged tails.
LARGE_DIMS = st.sampled_from([8191, 8192, 8193, 16411, 24593, 40009])
MAX_SMALL = 4096


@st.composite
def shapes(draw):
    """0-d to 5-d shapes, including empty ones and (one in five) shapes of
    several reduction blocks."""
    if draw(st.integers(0, 4)) == 0:
        ndim = draw(st.integers(1, 3))
        small = draw(st.lists(st.sampled_from([1, 2, 3]), min_size=ndim - 1, max_size=ndim - 1))
        at = draw(st.integers(0, ndim - 1))
        return tuple(small[:at] + [draw(LARGE_DIMS)] + small[at:])
    dims = draw(st.lists(SMALL_DIMS, min_size=0, max_size=5))
    while math.prod(dims) > MAX_SMALL:
        dims[dims.index(max(dims))] //= 2
    return tuple(dims)


@st.composite
def broadcast_pair(draw, shape):
    """(input shape, target shape) broadcasting to ``shape``: equal (most
    often), or with size-1 and missing leading dimensions on either side."""
    if draw(st.integers(0, 2)) != 0:
        return shape, shape
    ins, tgs = [], []
    for n in shape:
        side = draw(st.sampled_from(["both", "input", "target"]))
        ins.append(1 if side == "input" else n)
        tgs.append(1 if side == "target" else n)
    drop = draw(st.integers(0, len(shape)))
    if draw(st.booleans()):
        ins = ins[drop:]
    else:
        tgs = tgs[drop:]
    return tuple(ins), tuple(tgs)


@st.composite
def grad_output_for(draw, loss_shape, rng):
    """A ``grad_output`` for a loss of ``loss_shape``: None, a Python float,
    a NumPy scalar, a 0-d array, or (unreduced) an array broadcastable to it."""
    kinds = ["none", "float", "numpy_scalar", "0d"] + (["array", "array"] if loss_shape != () else [])
    kind = draw(st.sampled_from(kinds))
    value = draw(st.sampled_from([1.0, -1.0, 0.5, 2.0, -3.25, 0.0]))
    if kind == "none":
        return None
    if kind == "float":
        return value
    if kind == "numpy_scalar":
        return np.float32(value)
    if kind == "0d":
        return np.array(value, dtype=draw(st.sampled_from([np.float32, np.float64, np.int64])))
    shape = [1 if draw(st.integers(0, 3)) == 0 else n for n in loss_shape]
    shape = shape[draw(st.integers(0, len(shape))):]
    g = (rng.standard_normal(shape) * 2).astype(draw(st.sampled_from([np.float32, np.float64])))
    return relayout(g, draw(st.sampled_from(LAYOUTS)))


@st.composite
def problems(draw, case):
    """Arrays for ``case`` plus the reduction, as drawn by hypothesis."""
    dtype = draw(st.sampled_from(DTYPES))
    reduction = draw(st.sampled_from(REDUCTIONS))
    shape = draw(shapes())
    in_shape, tg_shape = draw(broadcast_pair(shape))
    values = draw(st.sampled_from(["normal", "grid", "special"]))
    weighted = case.weighted and draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = case.make(rng, in_shape, dtype, values=values, target_shape=tg_shape, weighted=weighted)
    arrays = {k: relayout(v, draw(st.sampled_from(LAYOUTS))) for k, v in arrays.items()}
    return arrays, dtype, reduction, shape, rng


def _check_result_type(result, reduction, shape, dtype):
    if reduction == "none":
        assert isinstance(result, np.ndarray)
        assert result.shape == shape
    else:
        assert isinstance(result, np.generic), type(result)
    assert result.dtype == dtype


# ------------------------------------------------------ hypothesis tests


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@given(data=st.data())
@np.errstate(all="ignore")  # NumPy warnings leaking from fastloss: the *_without_warning tests
def test_forward_matches_reference(isa, case, options, data):
    arrays, dtype, reduction, shape, _ = data.draw(problems(case))
    before = snapshot(arrays)
    result = case.call(case.forward, arrays, reduction=reduction, **options)
    _check_result_type(result, reduction, np.broadcast_shapes(*(np.shape(a) for a in arrays.values())), dtype)
    expected = case.expected(arrays, reduction=reduction, **options)
    assert_close(result, expected, dtype, reduced=reduction != "none", what=case.name)
    assert_unchanged(arrays, before)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@given(data=st.data())
@np.errstate(all="ignore")  # NumPy warnings leaking from fastloss: the *_without_warning tests
def test_backward_matches_reference(isa, case, options, data):
    arrays, dtype, reduction, shape, rng = data.draw(problems(case))
    loss_shape = np.broadcast_shapes(*(np.shape(a) for a in arrays.values())) if reduction == "none" else ()
    go = data.draw(grad_output_for(loss_shape, rng))
    before = snapshot({**arrays, "grad_output": go})
    grad = case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options)
    x = arrays["input"]
    # (that it is an ndarray even for a broadcast 0-d input: test_gradient_is_an_array)
    assert np.shape(grad) == x.shape and grad.dtype == x.dtype
    expected = case.expected_grad(arrays, reduction=reduction, grad_output=go, **options)
    abs_scale = None
    if np.shape(x) != np.broadcast_shapes(x.shape, np.shape(arrays["target"])):
        abs_scale = elementwise_abs_grad(case, arrays, reduction, options, go)
    assert_close(grad, expected, dtype, abs_scale=abs_scale, what=case.name + "_backward")

    # The fused pass gives exactly the separate results.
    value, grad2 = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
    assert_identical(grad2, grad, "value_and_grad's gradient")
    assert_identical(value, case.call(case.forward, arrays, reduction=reduction, **options), "value_and_grad's value")
    assert_unchanged({**arrays, "grad_output": go}, before)


# ------------------------------------------------- deterministic sweeps


def _arrays(case, shape, dtype, values="normal", seed=0, **kw):
    return case.make(np.random.default_rng(seed), shape, dtype, values=values, **kw)


def _check_all(case, arrays, dtype, reduction, options, grad_output=None):
    """Forward, backward and fused against the reference."""
    value = case.call(case.forward, arrays, reduction=reduction, **options)
    assert_close(value, case.expected(arrays, reduction=reduction, **options), dtype,
                 reduced=reduction != "none", what=case.name)
    grad = case.call(case.backward, arrays, reduction=reduction, grad_output=grad_output, **options)
    assert grad.shape == np.shape(arrays["input"]) and grad.dtype == np.asarray(arrays["input"]).dtype
    assert_close(grad, case.expected_grad(arrays, reduction=reduction, grad_output=grad_output, **options),
                 np.asarray(arrays["input"]).dtype, what=case.name + "_backward")
    v2, g2 = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=grad_output, **options)
    assert_identical(v2, value, "value_and_grad value")
    assert_identical(g2, grad, "value_and_grad grad")
    return value, grad


@pytest.mark.parametrize("n", [1, 15, 16, 17, 511, 512, 513, 8191, 8192, 8193, 3 * 8192 + 7, 65537, 100003])
@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_sizes_across_blocks(isa, case, options, n, reduction):
    """Tails of SIMD vectors, 512-element chunks and 8192-element blocks, and
    sizes above the parallel threshold."""
    for dtype in (F32, F64):
        arrays = _arrays(case, (n,), dtype, weighted=case.weighted, seed=n)
        _check_all(case, arrays, dtype, reduction, options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_kinks_exact(isa, case, options, dtype, reduction):
    """x == target, |x - target| == beta/delta/1 exactly (values exact in
    every dtype), from both sides, with and without weight."""
    kinks = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25, -0.25, 3.0, -3.0])
    target = np.repeat(np.array([-1.5, 0.0, 0.75, 2.0]), kinks.size)
    x = target + np.tile(kinks, 4)
    arrays = {"input": x.astype(dtype), "target": target.astype(dtype)}
    if case.weighted:
        _check_all(case, {**arrays, "weight": np.linspace(0.25, 2.0, x.size).astype(dtype)}, dtype, reduction, options)
    _check_all(case, arrays, dtype, reduction, options)
    # also in the middle of a SIMD vector: pad with continuous data
    pad = _arrays(case, (37,), dtype)
    padded = {k: np.concatenate([pad[k], arrays[k], pad[k]]) for k in arrays}
    _check_all(case, padded, dtype, reduction, options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_nan_and_inf(isa, case, options, dtype, reduction):
    """Every pair of NaN, +-inf, +-0 and finite values as input and target."""
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 0.5])
    x, t = np.meshgrid(specials, specials, indexing="ij")
    arrays = {"input": x.ravel().astype(dtype), "target": t.ravel().astype(dtype)}
    _check_all(case, arrays, dtype, reduction, options)
    go = np.linspace(-2, 2, x.size) if reduction == "none" else -1.5
    _check_all(case, arrays, dtype, reduction, options, grad_output=go)
    if case.weighted:
        w = np.linspace(0.5, 2.0, x.size).astype(dtype)
        _check_all(case, {**arrays, "weight": w}, dtype, reduction, options)


@pytest.mark.parametrize(
    "in_shape, tg_shape",
    [((0,), (0,)), ((3, 0), (3, 0)), ((0, 4), (4,)), ((3, 1), (3, 0)), ((1,), (0,)), ((0, 2, 3), (1, 3))],
)
@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_empty(isa, case, options, in_shape, tg_shape, reduction):
    """Zero-size inputs: 'mean' is NaN, 'sum' is 0, gradients are zeros (of
    input's shape, which may be non-empty when broadcast against nothing)."""
    for dtype in (F32, F64):
        for weighted in (False, True) if case.weighted else (False,):
            arrays = _arrays(case, in_shape, dtype, target_shape=tg_shape, weighted=weighted)
            value, grad = _check_all(case, arrays, dtype, reduction, options)
            if reduction == "mean" and arrays["input"].size == 0:
                # (with only the target empty, a weighted L1/MSE mean is
                # 0 / sum(weight) = 0, as the reference says)
                assert np.isnan(value)
            elif reduction == "sum":
                assert value == 0
            assert not np.any(grad)


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
@pytest.mark.parametrize("tg_shape", [(), (1,), (5,), (2, 3)], ids=str)
def test_gradient_is_an_array(case, tg_shape, reduction):
    """The gradient of a 0-d input is a 0-d ndarray (like input, and like
    torch's 0-d tensor), not a NumPy scalar: also when target broadcasts it."""
    arrays = {"input": np.array(0.75, np.float32), "target": np.linspace(-1, 1, math.prod(tg_shape),
                                                                          dtype=np.float32).reshape(tg_shape)}
    for fn in (case.backward, lambda *a, **k: case.value_and_grad(*a, **k)[1]):
        grad = case.call(fn, arrays, reduction=reduction)
        assert isinstance(grad, np.ndarray), type(grad)
        assert grad.shape == () and grad.dtype == np.float32
        assert_close(grad, case.expected_grad(arrays, reduction=reduction), F32)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("ndim", [0, 1, 5, 6, 8, 9, 10])
def test_many_dimensions(case, options, ndim, reduction):
    """Any number of dimensions, as torch (which has no 8-dim limit), also
    with a transposed input and a broadcast target."""
    shape = tuple([2, 1, 3][i % 3] for i in range(ndim))
    arrays = _arrays(case, shape, F64, weighted=case.weighted)
    _check_all(case, arrays, F64, reduction, options)
    arrays["input"] = np.array(arrays["input"], order="F")
    arrays["target"] = arrays["target"][(0,) * min(ndim, 1)]
    _check_all(case, arrays, F64, reduction, options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("layout", ["transposed", "negative_2d", "column", "stride0", "permuted"])
def test_views(isa, case, options, layout, reduction):
    """Views of a larger C array (no copy by the caller): transposes,
    negative strides in some axes only, a column, a stride-0 broadcast and an
    axis permutation, over several reduction blocks."""
    rng = np.random.default_rng(1)
    base = {k: v for k, v in _arrays(case, (130, 257), F32, weighted=case.weighted).items()}
    if layout == "transposed":
        arrays = {k: v.T for k, v in base.items()}
    elif layout == "negative_2d":
        arrays = {k: v[::-1, ::3] for k, v in base.items()}
    elif layout == "column":
        arrays = {k: v[:, 5] for k, v in base.items()}
    elif layout == "stride0":
        arrays = {k: np.broadcast_to(v[7], (300, 257)) for k, v in base.items()}
    else:
        big = _arrays(case, (6, 40, 70), F64, seed=2, weighted=case.weighted)
        arrays = {k: v.transpose(2, 0, 1)[::-2] for k, v in big.items()}
    dtype = next(iter(arrays.values())).dtype
    go = rng.standard_normal(arrays["input"].shape) if reduction == "none" else 0.75
    _check_all(case, arrays, dtype, reduction, options, grad_output=go)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize(
    "in_shape, tg_shape",
    [((4, 5), (5,)), ((5,), (4, 5)), ((4, 1), (1, 5)), ((1,), (3, 4)), ((), (6,)), ((3, 1, 5), (2, 1, 1, 5)),
     ((8193,), (2, 8193)), ((2, 1, 3), (2, 8000, 3))],
)
def test_broadcasting(isa, case, options, in_shape, tg_shape, reduction):
    """target broadcast against input (and input against target): torch's
    UserWarning, the loss of the broadcast shape, and the gradient summed
    back to input's shape; weight (input's shape) broadcasts along."""
    for weighted in (False, True) if case.weighted else (False,):
        arrays = _arrays(case, in_shape, F64, target_shape=tg_shape, weighted=weighted)
        value = case.call(case.forward, arrays, reduction=reduction, **options)
        if reduction == "none":
            assert value.shape == np.broadcast_shapes(in_shape, tg_shape)
        assert_close(value, case.expected(arrays, reduction=reduction, **options), F64, reduced=True)
        grad = case.call(case.backward, arrays, reduction=reduction, **options)
        assert grad.shape == in_shape
        assert_close(grad, case.expected_grad(arrays, reduction=reduction, **options), F64,
                     abs_scale=elementwise_abs_grad(case, arrays, reduction, options))
        with pytest.warns(UserWarning, match="different to the input size"):
            v2, g2 = case.value_and_grad(arrays["input"], arrays["target"], reduction=reduction, **options,
                                         **({"weight": arrays["weight"]} if weighted else {}))
        assert_identical(v2, value)
        assert_identical(g2, grad)


@pytest.mark.parametrize("case", case_params([c for c in ELEMENTWISE if c.weighted]))
@pytest.mark.parametrize("weights", [[1.0, -1.0, 2.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-0.5, 1.0, -3.0, 0.25]],
                         ids=["zero_sum", "zeros", "signed"])
def test_signed_and_zero_sum_weights(isa, case, weights, reduction):
    """Weights may be negative or sum to 0 (torch does not check): a weighted
    L1/MSE 'mean' then divides by 0 (inf/NaN, as torch), gradients too."""
    x = np.array([0.5, -1.0, 2.0, 0.0])
    arrays = {"input": x, "target": np.array([0.0, 0.5, 0.5, 0.0]), "weight": np.array(weights)}
    _check_all(case, arrays, F64, reduction, {})
    big = {k: np.tile(v, 5000) for k, v in arrays.items()}
    _check_all(case, big, F64, reduction, {})


# ------------------------------------------------------------ grad_output


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_grad_output_forms(case, options, reduction):
    """Scalar, NumPy scalar, 0-d array and (unreduced) per-element and
    broadcastable arrays give sum(grad_output * loss)'s gradient."""
    arrays = _arrays(case, (6, 7), F64, weighted=case.weighted)
    rng = np.random.default_rng(3)
    forms = [None, 2.5, -1, np.float32(0.5), np.array(-2.0), np.array(3, np.int32), True]
    if reduction == "none":
        forms += [rng.standard_normal((6, 7)), rng.standard_normal((7,)), rng.standard_normal((6, 1)),
                  np.array([[1.5]]), rng.standard_normal((6, 7)).astype(np.float32)[::-1],
                  rng.standard_normal((7, 6)).T, [0.5] * 7]
    for go in forms:
        grad = case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options)
        assert_close(grad, case.expected_grad(arrays, reduction=reduction, grad_output=go, **options), F64)
        # linear in grad_output
        if go is not None and np.ndim(go) == 0 and not isinstance(go, bool):
            ones = case.call(case.backward, arrays, reduction=reduction, **options)
            assert_close(grad, ones * float(go), F64)


# ------------------------------------------------------------------ out=


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("out_layout", ["C", "strided", "negative", "F"])
@pytest.mark.parametrize("broadcast", [False, True], ids=["same", "broadcast"])
def test_out(case, options, dtype, out_layout, broadcast, reduction):
    """The gradient is written into ``out`` (also a strided view), which is
    returned; values equal the allocating call; nothing else is touched."""
    tg_shape = (3, 9, 10) if broadcast else (9, 10)
    arrays = _arrays(case, (9, 10), dtype, target_shape=tg_shape, weighted=case.weighted)
    go = np.linspace(-1, 1, math.prod(tg_shape)).reshape(tg_shape) if reduction == "none" else 0.5
    before = snapshot(arrays)
    fresh = case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options)

    out = relayout(np.full((9, 10), 7, dtype), out_layout)
    result = case.call(case.backward, arrays, reduction=reduction, grad_output=go, out=out, **options)
    assert result is out
    assert_identical(out, fresh, "out")

    out2 = relayout(np.zeros((9, 10), dtype), out_layout)
    value, g = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, out=out2, **options)
    assert g is out2
    assert_identical(out2, fresh, "value_and_grad out")
    # (bitwise: test_value_and_grad_value_ignores_out_layout)
    assert_close(value, case.expected(arrays, reduction=reduction, **options), dtype, reduced=reduction != "none")
    tup = np.zeros((9, 10), dtype)
    assert case.call(case.backward, arrays, reduction=reduction, grad_output=go, out=(tup,), **options) is tup
    assert_identical(tup, fresh)
    assert_unchanged(arrays, before)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("out_layout", ["strided", "negative", "F"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_value_and_grad_value_ignores_out_layout(case, options, out_layout, dtype, reduction):
    """value_and_grad's loss is forward's loss, bit for bit, whatever the
    layout of the ``out`` buffer that receives the gradient."""
    arrays = _arrays(case, (9, 10), dtype, weighted=case.weighted)
    out = relayout(np.zeros((9, 10), dtype), out_layout)
    value, _ = case.call(case.value_and_grad, arrays, reduction=reduction, out=out, **options)
    assert_identical(value, case.call(case.forward, arrays, reduction=reduction, **options), "loss")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_out_leaves_gaps_untouched(case, options):
    """A strided ``out`` view: the elements between its elements keep their values."""
    arrays = _arrays(case, (5, 300), F32, weighted=case.weighted)
    buf = np.full((5, 900), 42.0, np.float32)
    out = buf[:, 1::3]
    case.call(case.backward, arrays, reduction="sum", out=out, **options)
    assert np.all(buf[:, 0::3] == 42.0) and np.all(buf[:, 2::3] == 42.0)
    assert_identical(out, case.call(case.backward, arrays, reduction="sum", **options))


# --------------------------------------------------------------- dtypes


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_float16_overflow_is_inf_without_warning(case, options, reduction):
    """A float16 loss beyond 65504 is inf, as torch returns it, without a
    NumPy 'overflow encountered in cast' RuntimeWarning (an error under
    filterwarnings=error)."""
    arrays = {"input": np.full(20000, 60000.0, F16), "target": np.full(20000, -60000.0, F16)}
    expected = case.expected(arrays, reduction=reduction, **options)
    # Every loss overflows float16 here, except a Huber with delta < 1 ('none'/'mean').
    assert np.all(np.abs(expected) > 65504) or options.get("delta", 1.0) < 1.0
    value = case.call(case.forward, arrays, reduction=reduction, **options)
    assert value.dtype == F16
    assert_close(value, expected, F16, reduced=True)
    v2, grad = case.call(case.value_and_grad, arrays, reduction=reduction, **options)
    assert_identical(v2, value)
    assert_close(grad, case.expected_grad(arrays, reduction=reduction, **options), F16)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [F32, F64, F16], ids=lambda d: d.name)
def test_broadcast_gradient_with_inf_is_nan_without_warning(case, options, dtype, reduction):
    """Summing a broadcast input's gradient over +inf and -inf terms gives
    NaN, as torch does, without a NumPy 'invalid value encountered in
    reduce' RuntimeWarning."""
    arrays = {"input": np.array([0.5], dtype), "target": np.array([-np.inf, np.inf, 1.0], dtype)}
    grad = case.call(case.backward, arrays, reduction=reduction, **options)
    assert_close(grad, case.expected_grad(arrays, reduction=reduction, **options), dtype)
    _, grad2 = case.call(case.value_and_grad, arrays, reduction=reduction, **options)
    assert_identical(grad2, grad)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [F16, BFLOAT16], ids=lambda d: d.name)
def test_half_types_return_their_dtype(case, options, dtype, reduction):
    arrays = _arrays(case, (33, 7), dtype, weighted=case.weighted)
    value, grad = _check_all(case, arrays, dtype, reduction, options)
    assert value.dtype == dtype and grad.dtype == dtype


MIXED = [
    (F32, F64, None, F64),
    (F64, F32, None, F64),
    (F16, F32, None, F32),
    (BFLOAT16, F16, None, F32),
    (BFLOAT16, F64, None, F64),
    (F32, F32, F64, F64),
    (F16, F16, F32, F32),
    (F32, np.dtype(np.int64), F64, F64),
]


@pytest.mark.parametrize(
    "case, options, in_dtype, tg_dtype, w_dtype, expected_dtype",
    [pytest.param(*p.values, *m, id=f"{p.id}-{'-'.join(str(d) for d in m)}")
     for p in case_options(ELEMENTWISE) for m in MIXED if m[2] is None or p.values[0].weighted],
)
def test_mixed_dtypes_promote(case, options, in_dtype, tg_dtype, w_dtype, expected_dtype, reduction):
    """Mixed floating dtypes promote to the wider one (even where torch
    refuses); the gradient keeps input's dtype."""
    assert result_dtype(in_dtype, tg_dtype, *(() if w_dtype is None else (w_dtype,))) == expected_dtype
    arrays = _arrays(case, (40, 3), in_dtype, values="grid", target_dtype=tg_dtype, weighted=w_dtype is not None)
    if w_dtype is not None:
        arrays["weight"] = arrays["weight"].astype(w_dtype)
    value = case.call(case.forward, arrays, reduction=reduction, **options)
    assert value.dtype == expected_dtype
    assert_close(value, case.expected(arrays, reduction=reduction, **options), expected_dtype, reduced=True)
    grad = case.call(case.backward, arrays, reduction=reduction, **options)
    assert grad.dtype == in_dtype
    assert_close(grad, case.expected_grad(arrays, reduction=reduction, **options), in_dtype)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("tg_dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_integer_targets(case, options, tg_dtype, dtype, reduction):
    arrays = _arrays(case, (5, 31), dtype, values="grid", target_dtype=tg_dtype)
    arrays["target"] = (np.arange(5 * 31).reshape(5, 31) % 5).astype(tg_dtype)
    value, grad = _check_all(case, arrays, dtype, reduction, options)
    assert value.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_array_likes_and_byte_order(case, options, reduction):
    """Lists, scalars and non-native byte order are read as NumPy would."""
    x = [0.5, -1.0, 2.0, 3.5]
    t = [0.0, 1.0, 2.5, -1.0]
    _check_all(case, {"input": x, "target": t}, F64, reduction, options)
    _check_all(case, {"input": 1.5, "target": -0.5}, F64, reduction, options)
    big = {"input": np.array(x, ">f8"), "target": np.array(t, ">f4")}
    value, grad = _check_all(case, big, F64, reduction, options)
    assert grad.dtype == np.dtype(">f8")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_positional_and_keyword_arguments(case, options):
    """Arrays positionally in torch's order, reduction too, options by keyword."""
    arrays = _arrays(case, (11,), F64)
    x, t = arrays["input"], arrays["target"]
    assert_identical(case.forward(x, t, "sum", **options), case.forward(input=x, target=t, reduction="sum", **options))
    assert_identical(case.backward(x, t, "sum", **options, grad_output=2.0),
                     case.backward(target=t, input=x, reduction="sum", grad_output=2.0, **options))
    assert case.spec.options["reduction"] == "mean"
    assert_identical(case.forward(x, t, **options), case.forward(x, t, reduction="mean", **options))


# ------------------------------------------------------------ nn classes


def _class_args(case, reduction, options):
    merged = {**case.spec.options, "reduction": reduction, **options}
    return [merged[n] for n in case.spec.class_options]


@pytest.mark.parametrize("case, options", case_options(CASES.values()))
def test_nn_class(case, options, reduction):
    cls = case.nn_class
    assert cls.__name__ == case.spec.class_name
    arrays = _arrays(case, (4, 9), F32)
    positional, _ = case.split(arrays)
    crit = cls(reduction=reduction, **options)
    expected = case.forward(*positional, reduction=reduction, **options)
    assert_identical(crit(*positional), expected)
    assert_identical(crit.forward(*positional), expected)
    go = np.linspace(-1, 1, 36).reshape(4, 9) if reduction == "none" else 3.0
    grad = case.backward(*positional, reduction=reduction, grad_output=go, **options)
    assert_identical(crit.backward(*positional, grad_output=go), grad)
    v, g = crit.value_and_grad(*positional, grad_output=go)
    assert_identical(v, expected)
    assert_identical(g, grad)
    out = np.empty_like(grad)
    assert crit.backward(*positional, grad_output=go, out=out) is out
    assert_identical(out, grad)
    # default construction and positional constructor arguments (torch's order)
    assert_identical(cls()(*positional), case.forward(*positional))
    pos = cls(*_class_args(case, reduction, options))
    assert_identical(pos(*positional), expected)
    for name in case.spec.class_options:
        assert getattr(pos, name) == getattr(crit, name)
    # options are plain attributes, read at call time
    crit.reduction = "sum"
    assert_identical(crit(*positional), case.forward(*positional, reduction="sum", **options))
    assert cls.__name__ in repr(crit)


@pytest.mark.parametrize("case", case_params(CASES.values()))
def test_nn_class_rejects_bad_arguments(case):
    cls = case.nn_class
    with pytest.raises(TypeError, match="size_average"):
        cls(size_average=True)
    with pytest.raises(TypeError, match="reduce"):
        cls(reduce=False)
    with pytest.raises(TypeError, match="bogus"):
        cls(bogus=1)
    with pytest.raises(TypeError):
        cls(*_class_args(case, "mean", {}), "extra")
    with pytest.raises(TypeError, match="reduction"):
        cls("sum", reduction="mean")
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="bogus")(*case.split(_arrays(case, (3,), F32))[0])
