"""Results are bitwise identical for any thread count, any instruction-set
level and any run: reduced values, 'none' arrays and gradients, on sizes spanning many
8192-element reduction blocks (and above the parallel threshold), with
contiguous, strided, transposed and broadcast operands. Also: calls from
many Python threads at once give the same results as serial calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastloss

from cases import ELEMENTWISE, assert_identical, case_options

THREADS = (1, 2, 3, 7)
N = 13 * 8192 + 123  # many blocks (above the parallel threshold), ragged last block


def _layouts(case, dtype):
    """name -> arrays: contiguous, strided views, transposed, broadcast target, with the optional arrays."""
    rng = np.random.default_rng(7)
    make = case.make
    flat = make(rng, (N,), dtype)
    full = dict.fromkeys(case.optional, (611, 499))  # (optional arrays viewed as the others are)
    big = make(rng, (3 * N,), dtype, weighted=True)
    mat = make(rng, (611, 499), dtype, weighted=True, shapes=full)
    layouts = {
        "contiguous": flat,
        "strided": {k: v[::3] for k, v in big.items()},
        "negative": {k: v[::-2] for k, v in big.items()},
        "transposed": {k: v.T for k, v in mat.items()},
    }
    broadcast = dict(make(rng, (611, 499), dtype), target=mat["target"][5])
    if case.accepts(broadcast):
        layouts["broadcast_target"] = broadcast
    if case.optional:
        layouts["weighted"] = make(rng, (N,), dtype, weighted=True)
        layouts["weighted_transposed"] = {k: v.T for k, v in mat.items()}
    return layouts


_GRAD_OUTPUTS = {}


def _results(case, arrays, options):
    """Every result of one configuration, as a list of arrays."""
    out = []
    shape = np.broadcast_shapes(*(np.shape(arrays[n]) for n in case.spec.arrays))
    if shape not in _GRAD_OUTPUTS:
        _GRAD_OUTPUTS.clear()
        _GRAD_OUTPUTS[shape] = np.linspace(-1.5, 2.0, int(np.prod(shape))).reshape(shape)
    go = _GRAD_OUTPUTS[shape]
    for reduction in case.reductions:
        out.append(case.call(case.forward, arrays, reduction=reduction, **options))
        g = go if reduction == "none" else 0.75
        out.extend(case.grads(case.call(case.backward, arrays, reduction=reduction, grad_output=g, **options)))
        value, grads = case.call(case.value_and_grad, arrays, reduction=reduction, grad_output=g, **options)
        out.append(value)
        out.extend(case.grads(grads))
    return out


# (threads split the data the same way for every option: the default options suffice)
@pytest.mark.parametrize("case, options",
                         [p for p in case_options(ELEMENTWISE) if not p.values[1]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_bitwise_identical_across_threads(restore_threads, case, options, dtype):
    for name, arrays in _layouts(case, np.dtype(dtype)).items():
        fastloss.set_num_threads(1)
        reference = _results(case, arrays, options)
        for n in THREADS:
            fastloss.set_num_threads(n)
            for run in range(2 if n == THREADS[-1] else 1):
                got = _results(case, arrays, options)
                for i, (a, b) in enumerate(zip(got, reference)):
                    assert_identical(a, b, f"{name}, {n} threads, run {run}, result {i}")


@pytest.mark.parametrize("case", ELEMENTWISE, ids=lambda c: c.name)
@np.errstate(over="ignore")  # float16 sums overflow here: test_float16_overflow_is_inf_without_warning
def test_half_types_identical_across_threads(restore_threads, case):
    import ml_dtypes

    for dtype in (np.float16, ml_dtypes.bfloat16):
        arrays = case.make(np.random.default_rng(3), (N,), np.dtype(dtype), weighted=True)
        fastloss.set_num_threads(1)
        reference = _results(case, arrays, {})
        for n in THREADS[1:]:
            fastloss.set_num_threads(n)
            for a, b in zip(_results(case, arrays, {}), reference):
                assert_identical(a, b, f"{np.dtype(dtype).name}, {n} threads")


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE, heavy=True))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_bitwise_identical_across_isas(restore_threads, case, options, dtype):
    """Every result, reduced ones included, is bitwise the same under
    FASTLOSS_ISA=baseline, avx2 and avx512: the summation slots do not depend
    on the vector width, the element-wise arithmetic is IEEE-exact (no FMA
    contraction; the float32 loss_* math's explicit fused multiply-adds are
    emulated exactly on baseline) and the vector math (exp, log, log1p...)
    gives the same bits at every width and in the scalar tail."""
    layouts = _layouts(case, np.dtype(dtype))
    layouts["special"] = case.make(np.random.default_rng(5), (10_007,), np.dtype(dtype), values="special",
                                   weighted=True)
    before = fastloss._core.current_isa()
    isas = list(fastloss._core.available_isas())
    first = isas[0]
    fastloss.set_num_threads(2)
    try:
        for name, arrays in layouts.items():
            fastloss._core.select_isa(first)
            reference = _results(case, arrays, options)
            for isa in isas:
                if isa == first:
                    continue
                fastloss._core.select_isa(isa)
                for i, (a, b) in enumerate(zip(_results(case, arrays, options), reference)):
                    assert_identical(a, b, f"{name}, {isa} vs {first}, result {i}")
    finally:
        fastloss._core.select_isa(before)
