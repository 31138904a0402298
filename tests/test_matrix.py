"""Every registered loss (tests/cases.py), function, option and reduction
against the float64 reference (``fastloss.reference``), on every
instruction-set level, for losses of any number of arrays: hypothesis-drawn
shapes (0-d to 5-d, sizes 0, 1, primes and several 8192-element reduction
blocks), layouts (strided, negative strides, transposed, unaligned),
broadcasting, kinks and clamps, NaN and inf, weights, grad_output, ``out=``
for every gradient, dtypes and the ``fastloss.nn`` classes."""

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
    assert_identical,
    assert_unchanged,
    case_options,
    case_params,
    check_grads,
    check_value,
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
def broadcast_variant(draw, shape):
    """A shape broadcasting to ``shape``: itself (most often), or with
    size-1 and missing leading dimensions."""
    if draw(st.integers(0, 2)) != 0:
        return shape
    dims = [1 if draw(st.booleans()) else n for n in shape]
    return tuple(dims[draw(st.integers(0, len(dims))):])


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
    """Arrays, options and reduction for ``case``, as drawn by hypothesis:
    each array of the loss's shape or (where the loss broadcasts it) of a
    broadcast variant of it, in any layout, optional arrays or not."""
    dtype = draw(st.sampled_from(DTYPES))
    options = draw(st.sampled_from(case.option_sets))
    reduction = draw(st.sampled_from(case.reductions))
    shape = draw(shapes())
    values = draw(st.sampled_from(["normal", "grid", "special"]))
    weighted = [n for n in case.optional if draw(st.booleans())]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    variant = {a.name: draw(broadcast_variant(shape)) for a in case.args if not a.optional or a.name in weighted}
    arrays = case.make(rng, shape, dtype, values=values, weighted=weighted, shapes=variant)
    if not case.accepts(arrays, reduction=reduction, **options):  # shapes this loss refuses: the plain ones
        arrays = case.make(rng, shape, dtype, values=values, weighted=weighted)
    arrays = {k: relayout(v, draw(st.sampled_from(LAYOUTS))) for k, v in arrays.items()}
    return arrays, dtype, reduction, options, rng


def _check_result_type(result, reduction, shape, dtype):
    if reduction == "none":
        assert isinstance(result, np.ndarray)
        assert result.shape == shape
    else:
        assert isinstance(result, np.generic), type(result)
    assert result.dtype == dtype


# ------------------------------------------------------ hypothesis tests


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
@given(data=st.data())
@np.errstate(all="ignore")  # NumPy warnings leaking from fastloss: the *_without_warning tests
def test_forward_matches_reference(isa, case, data):
    arrays, dtype, reduction, options, _ = data.draw(problems(case))
    before = snapshot(arrays)
    result = case.call(case.forward, arrays, reduction=reduction, **options)
    _check_result_type(result, reduction, case.loss_shape(arrays, **options), dtype)
    check_value(case, result, arrays, dtype, reduction, options)
    assert_unchanged(arrays, before)


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
@given(data=st.data())
@np.errstate(all="ignore")  # NumPy warnings leaking from fastloss: the *_without_warning tests
def test_backward_matches_reference(isa, case, data):
    arrays, dtype, reduction, options, rng = data.draw(problems(case))
    loss_shape = case.loss_shape(arrays, **options) if reduction == "none" else ()
    go = data.draw(grad_output_for(loss_shape, rng))
    before = snapshot({**arrays, "grad_output": go})
    grad = case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options)
    # (that it is an ndarray even for a broadcast 0-d input: test_gradient_is_an_array)
    check_grads(case, grad, arrays, reduction, options, grad_output=go, what=case.name + "_backward")

    # The fused pass gives exactly the separate results.
    value, grad2 = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
    for a, b in zip(case.grads(grad2), case.grads(grad)):
        assert_identical(a, b, "value_and_grad's gradient")
    assert_identical(value, case.call(case.forward, arrays, reduction=reduction, **options), "value_and_grad's value")
    assert_unchanged({**arrays, "grad_output": go}, before)


# ------------------------------------------------- deterministic sweeps


def _arrays(case, shape, dtype, values="normal", seed=0, **kw):
    return case.make(np.random.default_rng(seed), shape, dtype, values=values, **kw)


def _accepted(case, shape_pairs):
    """The (input shape, target shape) pairs ``case`` accepts (BCE wants
    equal shapes, soft margin a target broadcasting into input...)."""
    return [p for p in shape_pairs if case.accepts(_arrays(case, p[0], F64, target_shape=p[1]))]


def _pairs_params(cases, shape_pairs, heavy=False):
    return [pytest.param(*p.values, *pair, id=f"{p.id}-{pair[0]}-{pair[1]}".replace(" ", ""))
            for p in case_options(cases, heavy) for pair in _accepted(p.values[0], shape_pairs)]


def _each_grad(case, a, b, what):
    for x, y in zip(case.grads(a), case.grads(b)):
        assert_identical(x, y, what)


def _check_all(case, arrays, dtype, reduction, options, grad_output=None):
    """Forward, backward and fused against the reference."""
    value = case.call(case.forward, arrays, reduction=reduction, **options)
    check_value(case, value, arrays, dtype, reduction, options)
    grad = case.call(case.backward, arrays, reduction=reduction, grad_output=grad_output, **options)
    check_grads(case, grad, arrays, reduction, options, grad_output=grad_output, what=case.name + "_backward")
    v2, g2 = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=grad_output, **options)
    assert_identical(v2, value, "value_and_grad value")
    _each_grad(case, g2, grad, "value_and_grad grad")
    return value, grad


@pytest.mark.parametrize("n", [1, 15, 16, 17, 511, 513, 8191, 8193, 3 * 8192 + 7, 100003])
@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
def test_sizes_across_blocks(isa, case, options, n):
    """Tails of SIMD vectors, 512-element chunks and 8192-element blocks, and
    sizes above the parallel threshold."""
    for dtype in (F32, F64):
        arrays = _arrays(case, (n,), dtype, weighted=True, seed=n)
        for reduction in case.reductions:
            _check_all(case, arrays, dtype, reduction, options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_kinks_exact(isa, case, options, dtype):
    """The 'grid' data (exact in every dtype) hit the kinks and clamps of
    every option set exactly (|x - target| == beta/delta, x == margin, BCE's
    x = 0 and 1, var below eps...), with and without the optional arrays,
    also in the middle of a SIMD vector."""
    for weighted in (False, True) if case.optional else (False,):
        arrays = _arrays(case, (600,), dtype, values="grid", weighted=weighted, seed=1)
        for reduction in case.reductions:
            _check_all(case, arrays, dtype, reduction, options)
    pad = _arrays(case, (37,), dtype, weighted=True)
    padded = {k: np.concatenate([pad[k], arrays[k], pad[k]]) for k in arrays}
    _check_all(case, padded, dtype, "sum", options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_nan_and_inf(isa, case, options, dtype):
    """NaN, +-inf, +-0 and extremes wherever the loss accepts them."""
    for seed in range(2):
        arrays = _arrays(case, (257,), dtype, values="special", weighted=bool(seed), seed=seed)
        for reduction in case.reductions:
            _check_all(case, arrays, dtype, reduction, options)
            go = np.linspace(-2, 2, 257) if reduction == "none" else -1.5
            _check_all(case, arrays, dtype, reduction, options, grad_output=go)


EMPTY = [((0,), (0,)), ((3, 0), (3, 0)), ((0, 4), (4,)), ((3, 1), (3, 0)), ((1,), (0,)), ((0, 2, 3), (1, 3))]


@pytest.mark.parametrize("case, options, in_shape, tg_shape", _pairs_params(ELEMENTWISE, EMPTY, heavy=True))
def test_empty(isa, case, options, in_shape, tg_shape):
    """Zero-size inputs: 'mean' is NaN, 'sum' is 0, gradients are zeros (of
    input's shape, which may be non-empty when broadcast against nothing)."""
    for dtype in (F32, F64):
        for weighted in (False, True) if case.optional else (False,):
            arrays = _arrays(case, in_shape, dtype, target_shape=tg_shape, weighted=weighted)
            for reduction in case.reductions:
                value, grad = _check_all(case, arrays, dtype, reduction, options)
                if reduction == "mean" and arrays[case.primary].size == 0:
                    # (with only the target empty, a weighted L1/MSE mean is
                    # 0 / sum(weight) = 0, as the reference says)
                    assert np.isnan(value)
                elif reduction == "sum":
                    assert value == 0
                assert not any(np.any(g) for g in case.grads(grad))


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
@pytest.mark.parametrize("tg_shape", [(), (1,), (5,), (2, 3)], ids=str)
def test_gradient_is_an_array(case, tg_shape, reduction):
    """The gradient of a 0-d input is a 0-d ndarray (like input, and like
    torch's 0-d tensor), not a NumPy scalar: also when target broadcasts it."""
    arrays = _arrays(case, (), F32, target_shape=tg_shape)
    if not case.accepts(arrays):
        arrays = _arrays(case, (), F32)
    for fn in (case.backward, lambda *a, **k: case.value_and_grad(*a, **k)[1]):
        grad = case.call(fn, arrays, reduction=reduction)
        for g in case.grads(grad):
            assert isinstance(g, np.ndarray), type(g)
            assert g.shape == () and g.dtype == np.float32
        check_grads(case, grad, arrays, reduction, {})


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("ndim", [0, 1, 5, 6, 8, 9, 10])
def test_many_dimensions(case, options, ndim):
    """Any number of dimensions, as torch (which has no 8-dim limit), also
    with transposed arrays and a broadcast target."""
    shape = tuple([2, 1, 3][i % 3] for i in range(ndim))
    arrays = _arrays(case, shape, F64, weighted=True)
    for reduction in case.reductions:
        _check_all(case, arrays, F64, reduction, options)
    arrays = {k: np.array(v, order="F") for k, v in arrays.items()}
    sliced = dict(arrays, target=arrays["target"][(0,) * min(ndim, 1)])
    if case.accepts(sliced):
        arrays = sliced
    for reduction in case.reductions:
        _check_all(case, arrays, F64, reduction, options)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("layout", ["transposed", "negative_2d", "column", "stride0", "permuted"])
def test_views(isa, case, options, layout, reduction):
    """Views of a larger C array (no copy by the caller): transposes,
    negative strides in some axes only, a column, a stride-0 broadcast and an
    axis permutation, over several reduction blocks."""
    rng = np.random.default_rng(1)
    # (every optional array full-sized too, so it is viewed the same way)
    base = _arrays(case, (130, 257), F32, weighted=True, shapes=dict.fromkeys(case.optional, (130, 257)))
    if layout == "transposed":
        arrays = {k: v.T for k, v in base.items()}
    elif layout == "negative_2d":
        arrays = {k: v[::-1, ::3] for k, v in base.items()}
    elif layout == "column":
        arrays = {k: v[:, 5] for k, v in base.items()}
    elif layout == "stride0":
        arrays = {k: np.broadcast_to(v[7], (300, 257)) for k, v in base.items()}
    else:
        big = _arrays(case, (6, 40, 70), F64, seed=2, weighted=True, shapes=dict.fromkeys(case.optional, (6, 40, 70)))
        arrays = {k: v.transpose(2, 0, 1)[::-2] for k, v in big.items()}
    dtype = arrays[case.primary].dtype
    go = rng.standard_normal(case.loss_shape(arrays)) if reduction == "none" else 0.75
    _check_all(case, arrays, dtype, reduction, options, grad_output=go)


# (3, 1) and (3, 1000): a row longer than the driver's 256-element chunks
# with one operand constant along it (its chunk buffer is reused, not moved).
BROADCAST = [((4, 5), (5,)), ((5,), (4, 5)), ((4, 1), (1, 5)), ((1,), (3, 4)), ((), (6,)), ((3, 1, 5), (2, 1, 1, 5)),
             ((8193,), (2, 8193)), ((2, 1, 3), (2, 8000, 3)), ((3, 1), (3, 1000)), ((3, 1000), (3, 1))]


@pytest.mark.parametrize("case, options, in_shape, tg_shape", _pairs_params(ELEMENTWISE, BROADCAST))
def test_broadcasting(isa, case, options, in_shape, tg_shape):
    """target broadcast against input (and input against target), as the
    loss allows: torch's UserWarning where torch warns, the loss of the
    broadcast shape, and the gradients summed back to their arguments'
    shapes; the optional arrays broadcast along."""
    for weighted in (False, True) if case.optional else (False,):
        arrays = _arrays(case, in_shape, F64, target_shape=tg_shape, weighted=weighted)
        if not case.accepts(arrays):
            continue  # e.g. a pos_weight of input's last dimension against a larger target
        for reduction in case.reductions:
            value = case.call(case.forward, arrays, reduction=reduction, **options)
            if reduction == "none":
                assert value.shape == np.broadcast_shapes(*(np.shape(a) for a in arrays.values()))
            check_value(case, value, arrays, F64, reduction, options)
            grad = case.call(case.backward, arrays, reduction=reduction, **options)
            check_grads(case, grad, arrays, reduction, options)
            v2, g2 = case.call(case.value_and_grad, arrays, reduction=reduction, **options)
            assert_identical(v2, value)
            _each_grad(case, g2, grad, "value_and_grad")


@pytest.mark.parametrize("case", case_params([c for c in ELEMENTWISE if c.weighted]))
@pytest.mark.parametrize("weights", [[1.0, -1.0, 2.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-0.5, 1.0, -3.0, 0.25]],
                         ids=["zero_sum", "zeros", "signed"])
def test_signed_and_zero_sum_weights(isa, case, weights, reduction):
    """Weights may be negative or sum to 0 (torch does not check): a weighted
    L1/MSE 'mean' then divides by 0 (inf/NaN, as torch), gradients too."""
    arrays = _arrays(case, (4,), F64, values="grid", seed=4)
    arrays["weight"] = np.array(weights)
    _check_all(case, arrays, F64, reduction, {})
    big = {k: np.tile(v, 5000) for k, v in arrays.items()}
    _check_all(case, big, F64, reduction, {})


# ------------------------------------------------------------ grad_output


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_grad_output_forms(case, options):
    """Scalar, NumPy scalar, 0-d array and (unreduced) per-element and
    broadcastable arrays give sum(grad_output * loss)'s gradient."""
    arrays = _arrays(case, (6, 7), F64, weighted=True)
    rng = np.random.default_rng(3)
    for reduction in case.reductions:
        forms = [None, 2.5, -1, np.float32(0.5), np.array(-2.0), np.array(3, np.int32), True]
        if reduction == "none":
            forms += [rng.standard_normal((6, 7)), rng.standard_normal((7,)), rng.standard_normal((6, 1)),
                      np.array([[1.5]]), rng.standard_normal((6, 7)).astype(np.float32)[::-1],
                      rng.standard_normal((7, 6)).T, [0.5] * 7]
        ones = case.call(case.backward, arrays, reduction=reduction, **options)
        for go in forms:
            grad = case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options)
            check_grads(case, grad, arrays, reduction, options, grad_output=go)
            # linear in grad_output
            if go is not None and np.ndim(go) == 0 and not isinstance(go, bool):
                for g, one in zip(case.grads(grad), case.grads(ones)):
                    np.testing.assert_allclose(g, one * float(go), rtol=1e-12, atol=0, equal_nan=True)


# ------------------------------------------------------------------ out=


def _outs(case, arrays, dtype, layout, fill):
    """One ``out`` buffer per gradient, of its argument's shape, in ``layout``."""
    return tuple(relayout(np.full(np.shape(arrays[n]), fill, dtype), layout) for n in case.grad_names)


def _out_arg(outs):
    return outs[0] if len(outs) == 1 else outs


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("out_layout", ["C", "strided", "negative", "F"])
@pytest.mark.parametrize("broadcast", [False, True], ids=["same", "broadcast"])
def test_out(case, options, dtype, out_layout, broadcast, reduction):
    """Every gradient is written into its ``out`` buffer (also a strided
    view; a tuple, one per gradient), which is returned; values equal the
    allocating call; nothing else is touched."""
    arrays = _arrays(case, (9, 10), dtype, target_shape=(3, 9, 10) if broadcast else None, weighted=True)
    if not case.accepts(arrays):
        arrays = _arrays(case, (9, 10), dtype, weighted=True)  # (this loss does not broadcast target so)
    loss_shape = case.loss_shape(arrays, **options)
    go = np.linspace(-1, 1, math.prod(loss_shape)).reshape(loss_shape) if reduction == "none" else 0.5
    before = snapshot(arrays)
    fresh = case.grads(case.call(case.backward, arrays, reduction=reduction, grad_output=go, **options))

    outs = _outs(case, arrays, dtype, out_layout, 7)
    result = case.call(case.backward, arrays, reduction=reduction, grad_output=go, out=_out_arg(outs), **options)
    for r, o, f in zip(case.grads(result), outs, fresh):
        assert r is o
        assert_identical(o, f, "out")

    outs2 = _outs(case, arrays, dtype, out_layout, 0)
    value, g = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=go, out=_out_arg(outs2),
                         **options)
    for r, o, f in zip(case.grads(g), outs2, fresh):
        assert r is o
        assert_identical(o, f, "value_and_grad out")
    # (bitwise: test_value_and_grad_value_ignores_out_layout)
    check_value(case, value, arrays, dtype, reduction, options)
    tup = _outs(case, arrays, dtype, "C", 0)
    result = case.call(case.backward, arrays, reduction=reduction, grad_output=go, out=tup, **options)
    for r, o, f in zip(case.grads(result), tup, fresh):
        assert r is o
        assert_identical(o, f)
    if len(tup) > 1:  # None entries: those gradients are allocated
        for k in range(len(tup)):
            partial = tuple(o if i == k else None for i, o in enumerate(_outs(case, arrays, dtype, "C", 0)))
            result = case.call(case.backward, arrays, reduction=reduction, grad_output=go, out=partial, **options)
            for i, (r, f) in enumerate(zip(result, fresh)):
                assert (r is partial[k]) == (i == k)
                assert_identical(r, f)
    assert_unchanged(arrays, before)


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("out_layout", ["strided", "negative", "F"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=lambda d: d.name)
def test_value_and_grad_value_ignores_out_layout(case, options, out_layout, dtype):
    """value_and_grad's loss is forward's loss, bit for bit, whatever the
    layout of the ``out`` buffers that receive the gradients."""
    arrays = _arrays(case, (9, 10), dtype, weighted=True)
    for reduction in case.reductions:
        value, _ = case.call(case.value_and_grad, arrays, reduction=reduction,
                             out=_out_arg(_outs(case, arrays, dtype, out_layout, 0)), **options)
        assert_identical(value, case.call(case.forward, arrays, reduction=reduction, **options), "loss")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
def test_out_leaves_gaps_untouched(case, options):
    """Strided ``out`` views: the elements between their elements keep their values."""
    arrays = _arrays(case, (5, 300), F32, weighted=True)
    bufs = [np.full((5, 900), 42.0, np.float32) for _ in case.grad_names]
    outs = tuple(b[:, 1::3] for b in bufs)
    case.call(case.backward, arrays, reduction="sum", out=_out_arg(outs), **options)
    for b in bufs:
        assert np.all(b[:, 0::3] == 42.0) and np.all(b[:, 2::3] == 42.0)
    for o, f in zip(outs, case.grads(case.call(case.backward, arrays, reduction="sum", **options))):
        assert_identical(o, f)


# --------------------------------------------------------------- dtypes


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
def test_float16_overflow_is_inf_without_warning(case, options):
    """A float16 loss (or gradient) beyond 65504 is inf, as torch returns it,
    without a NumPy 'overflow encountered in cast' RuntimeWarning (an error
    under filterwarnings=error): 'sum' over 200000 elements, and the values
    of large inputs, overflow."""
    arrays = _arrays(case, (200_000,), F16, weighted=True)
    big = dict(arrays, **{case.primary: arrays[case.primary] * np.float16(2000)})
    overflowed = False
    for data in (arrays, big) if case.accepts(big) else (arrays,):
        for reduction in case.reductions:
            value = case.call(case.forward, data, reduction=reduction, **options)
            assert value.dtype == F16
            check_value(case, value, data, F16, reduction, options)
            v2, grad = case.call(case.value_and_grad, data, reduction=reduction, **options)
            assert_identical(v2, value)
            check_grads(case, grad, data, reduction, options)
            overflowed |= bool(np.isinf(value).any())
    assert overflowed, "no float16 overflow: the test data are too tame"


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("dtype", [F32, F64, F16], ids=lambda d: d.name)
def test_broadcast_gradient_with_inf_is_nan_without_warning(case, options, dtype, reduction):
    """Summing a broadcast argument's gradient over +inf and -inf terms
    gives NaN, as torch does, without a NumPy 'invalid value encountered in
    reduce' RuntimeWarning."""
    arrays = _arrays(case, (1,), dtype, values="special", target_shape=(64,), seed=5)
    if not case.accepts(arrays):  # target must have input's shape: broadcast another argument
        arrays = _arrays(case, (64,), dtype, values="special", seed=5)
        if "weight" in case.optional:
            arrays["weight"] = np.array([1.0], dtype)
    grad = case.call(case.backward, arrays, reduction=reduction, **options)
    check_grads(case, grad, arrays, reduction, options)
    _, grad2 = case.call(case.value_and_grad, arrays, reduction=reduction, **options)
    _each_grad(case, grad2, grad, "value_and_grad")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [F16, BFLOAT16], ids=lambda d: d.name)
def test_half_types_return_their_dtype(case, options, dtype):
    arrays = _arrays(case, (33, 7), dtype, weighted=True)
    for reduction in case.reductions:
        value, grad = _check_all(case, arrays, dtype, reduction, options)
        assert value.dtype == dtype and all(g.dtype == dtype for g in case.grads(grad))


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
     for p in case_options(ELEMENTWISE, heavy=True) for m in MIXED if m[2] is None or p.values[0].optional],
)
def test_mixed_dtypes_promote(case, options, in_dtype, tg_dtype, w_dtype, expected_dtype):
    """Mixed floating dtypes promote to the wider one (even where torch
    refuses); each gradient keeps its argument's dtype."""
    assert result_dtype(in_dtype, tg_dtype, *(() if w_dtype is None else (w_dtype,))) == expected_dtype
    arrays = _arrays(case, (40, 3), in_dtype, values="grid", target_dtype=tg_dtype, weighted=w_dtype is not None)
    for name in case.optional:
        if name in arrays:
            arrays[name] = arrays[name].astype(w_dtype)
    for reduction in case.reductions:
        value = case.call(case.forward, arrays, reduction=reduction, **options)
        assert value.dtype == expected_dtype
        check_value(case, value, arrays, expected_dtype, reduction, options)
        grad = case.call(case.backward, arrays, reduction=reduction, **options)
        check_grads(case, grad, arrays, reduction, options)
        assert all(g.dtype == in_dtype for g in case.grads(grad))


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("tg_dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_integer_targets(case, options, tg_dtype, dtype):
    """Integer and bool targets (the loss's own valid values, rounded)."""
    arrays = _arrays(case, (5, 31), dtype, values="grid", target_dtype=tg_dtype)
    for reduction in case.reductions:
        value, grad = _check_all(case, arrays, dtype, reduction, options)
        assert value.dtype == dtype and all(g.dtype == dtype for g in case.grads(grad))


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
def test_array_likes_and_byte_order(case, options, reduction):
    """Lists, scalars and non-native byte order are read as NumPy would."""
    arrays = _arrays(case, (4,), F64, values="grid", seed=6)
    _check_all(case, {k: v.tolist() for k, v in arrays.items()}, F64, reduction, options)
    scalars = _arrays(case, (), F64, values="grid", seed=7)
    _check_all(case, {k: v.item() if k != "var" else v for k, v in scalars.items()}, F64, reduction, options)
    swapped = {k: v.astype(">f8" if k == case.primary else ">f4") for k, v in arrays.items()}
    value, grad = _check_all(case, swapped, F64, reduction, options)
    assert case.grads(grad)[0].dtype == np.dtype(">f8")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_positional_and_keyword_arguments(case, options):
    """Arrays positionally in torch's order, options by keyword or (forward's
    signature) positionally."""
    arrays = _arrays(case, (11,), F64)
    pos = [arrays[n] for n in case.spec.arrays]
    kw = dict(zip(case.spec.arrays, pos))
    reversed_kw = dict(reversed(list(kw.items())))
    assert_identical(case.forward(*pos, reduction="sum", **options),
                     case.forward(**kw, reduction="sum", **options))
    _each_grad(case, case.backward(*pos, reduction="sum", **options, grad_output=2.0),
               case.backward(**reversed_kw, reduction="sum", grad_output=2.0, **options), "backward")
    default = case.spec.options["reduction"]  # torch's 'mean' (test_registry.py), else its oracle's
    assert default == "mean" or case.oracle != "torch"
    assert_identical(case.forward(*pos, **options), case.forward(*pos, reduction=default, **options))
    # every option positionally, in torch's order
    merged = {**case.spec.options, "reduction": "sum", **options}
    assert_identical(case.forward(*pos, *[merged[n] for n in case.spec.options]),
                     case.forward(*pos, reduction="sum", **options))


# ------------------------------------------------------------ nn classes


def _class_args(case, reduction, options):
    merged = {**case.spec.options, "reduction": reduction, **options}
    return [merged[n] for n in case.spec.class_options]


def _class_kwargs(case, reduction, options, arrays):
    """Constructor keywords: the options, and the optional arrays the class
    takes (``weight``, ``pos_weight``)."""
    kw = {"reduction": reduction, **options}
    kw.update({k: v for k, v in arrays.items() if k in case.spec.class_options})
    return kw


# (LinearCrossEntropyLoss holds parameters and takes in_features/num_classes:
# tests/test_linear_cross_entropy.py tests it against torch's module.)
OPTION_CLASSES = [c for c in CASES.values() if c.kind != "linear"]


@pytest.mark.parametrize("case, options", case_options(OPTION_CLASSES))
def test_nn_class(case, options, reduction):
    if reduction not in case.reductions:
        reduction = case.reductions[-1]
    cls = case.nn_class
    assert cls.__name__ == case.spec.class_name
    arrays = _arrays(case, (4, 9), F32, weighted=True)
    positional, keyword = case.split(arrays)
    ctor = _class_kwargs(case, reduction, options, keyword)
    crit = cls(**ctor)
    expected = case.forward(*positional, **ctor)
    assert_identical(crit(*positional), expected)
    assert_identical(crit.forward(*positional), expected)
    loss_shape = case.loss_shape(arrays, **options)
    go = np.linspace(-1, 1, math.prod(loss_shape)).reshape(loss_shape) if reduction == "none" else 3.0
    grad = case.backward(*positional, grad_output=go, **ctor)
    _each_grad(case, crit.backward(*positional, grad_output=go), grad, "nn backward")
    v, g = crit.value_and_grad(*positional, grad_output=go)
    assert_identical(v, expected)
    _each_grad(case, g, grad, "nn value_and_grad")
    outs = tuple(np.empty_like(x) for x in case.grads(grad))
    result = crit.backward(*positional, grad_output=go, out=_out_arg(outs))
    for r, o, x in zip(case.grads(result), outs, case.grads(grad)):
        assert r is o
        assert_identical(o, x)
    # default construction and positional constructor arguments (torch's order)
    assert_identical(cls()(*positional), case.forward(*positional))
    merged = {**case.spec.options, **ctor}
    if case.spec.class_keyword_only:  # (GaussianNLLLoss, as torch's)
        with pytest.raises(TypeError, match="positional"):
            cls(*[merged[n] for n in case.spec.class_options])
        pos = cls(**{n: merged[n] for n in case.spec.class_options})
    else:
        pos = cls(*[merged[n] for n in case.spec.class_options])
    assert_identical(pos(*positional), expected)
    for name in case.spec.class_options:
        assert np.all(getattr(pos, name) == getattr(crit, name))
    # options are plain attributes, read at call time
    crit.reduction = "sum"
    assert_identical(crit(*positional), case.forward(*positional, **dict(ctor, reduction="sum")))
    assert cls.__name__ in repr(crit)


@pytest.mark.parametrize("case", case_params(OPTION_CLASSES))
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
    if not case.spec.class_keyword_only:
        with pytest.raises(TypeError, match="reduction"):
            cls(*_class_args(case, "sum", {}), reduction="mean")
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="bogus")(*case.split(_arrays(case, (3,), F32))[0])
