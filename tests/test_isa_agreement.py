"""Every registered loss gives the same bits under every instruction-set level
(FASTLOSS_ISA=baseline, avx2, avx512; the levels this CPU lacks are left
out): per-element values (reduction 'none') and gradients, float32 and
float64, every option set, on random, grid, special (NaN/inf), wide-range
(magnitudes from the denormals to beyond the overflow threshold) and, for
the element-wise losses, dense data (every k-th bit pattern of the dtype as
``input``). API.md §5 allows the transcendental functions 1 ulp between
levels; the kernels do better (the same operations and roundings on every
level, FMA emulated exactly on baseline), and this asserts that. A failure
reports the largest difference in ulp per result."""

from __future__ import annotations

import numpy as np
import pytest

import fastloss
from fastloss import _core

from cases import CASES

LEVELS = tuple(_core.available_isas())
N = 20_011  # above one 8192-element block, a ragged vector tail
pytestmark = pytest.mark.skipif(len(LEVELS) < 2, reason="this CPU has one instruction-set level")


def ulp_distance(a, b):
    """Elementwise |a - b| in ulps of a's dtype (float32/float64), counting
    the representable values between them (+0 and -0 are 0 apart; NaN vs NaN
    is 0, NaN vs a number is inf)."""
    a, b = np.asarray(a), np.asarray(b)
    bits = {4: (np.int32, np.uint32), 8: (np.int64, np.uint64)}[a.dtype.itemsize]

    def ordered(x):
        i = x.view(bits[0]).astype(np.float64)  # exact enough for distances of a few ulp
        mag = (x.view(bits[1]) & np.array(np.iinfo(bits[0]).max, bits[1])).astype(np.float64)
        return np.where(i < 0, -mag, i)

    with np.errstate(invalid="ignore"):
        d = np.abs(ordered(a) - ordered(b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0.0, np.where(nan_a | nan_b, np.inf, d))


def _dense(dtype, lo_bits, hi_bits, n):
    """n bit patterns spread evenly over [lo_bits, hi_bits], both signs, as dtype."""
    udt = np.uint32 if dtype == np.float32 else np.uint64
    mags = np.linspace(lo_bits, hi_bits, n // 2).astype(udt)
    sign = udt(1) << udt(8 * dtype.itemsize - 1)
    return np.concatenate([mags, mags | sign]).view(dtype)


def _accepts(case, arrays, options):
    """Whether the reference takes these arrays with these options."""
    try:
        with np.errstate(all="ignore"):
            case.expected(arrays, **options)
    except (ValueError, IndexError):  # IndexError: an ignore_index option turns -100 into a bad class
        return False
    return True


def data_sets(case, dtype, options):
    """name -> arrays the loss accepts with these options."""
    rng = np.random.default_rng(11)
    if case.kind not in ("elementwise", "classification", "embedding"):
        return {"sample": case.make(rng, (N // 10,), dtype)}
    sets = {kind: case.make(rng, (N,) if case.kind == "elementwise" else (N // 20, 20), dtype, values=kind,
                            weighted=True)
            for kind in ("normal", "grid", "special")}
    sets = {k: v for k, v in sets.items() if _accepts(case, v, options)}
    # wide: every floating operand times 10^u, u spanning the dtype's range
    # (denormals to overflow); operands limited to [0, 1] (or >= 0) only shrink.
    top = np.log10(float(np.finfo(dtype).max))
    base = sets["normal"]
    for name, lo, hi in (("wide", -top - 8, top + 1), ("small", -top - 8, 0.0)):
        with np.errstate(all="ignore"):  # beyond the dtype's range: inf (and 0 * inf), on purpose
            wide = {k: (v * np.power(10.0, rng.uniform(lo, hi, np.shape(v)))).astype(dtype) if v.dtype == dtype else v
                    for k, v in base.items()}
        if _accepts(case, wide, options):
            sets["wide"] = wide
            break
    if case.kind == "elementwise":
        # dense: input runs through every k-th bit pattern (0, denormals, ...,
        # inf and NaN where the loss accepts them; else [0, 1]).
        inf_bits = int(np.array(np.inf, dtype).view(np.uint32 if dtype == np.float32 else np.uint64))
        one_bits = int(np.array(1.0, dtype).view(np.uint32 if dtype == np.float32 else np.uint64))
        primary = case.primary
        for hi_bits, both in ((inf_bits + 4, True), (one_bits, False)):
            x = _dense(dtype, 0, hi_bits, 2 * N)
            if not both:
                x = np.abs(x)
            dense = case.make(rng, (len(x),), dtype, values="normal", weighted=True)
            dense[primary] = x
            if _accepts(case, dense, options):
                sets["dense"] = dense
                break
    return sets


def _results(case, arrays, options):
    """('none' value, gradients of 'sum') as a list of (label, array)."""
    positional, keyword = case.split(arrays)
    out = [("none", case.forward(*positional, **keyword, reduction="none", **options))]
    _, grads = case.value_and_grad(*positional, **keyword, reduction="sum", **options)
    out.extend((f"d/d{n}", g) for n, g in zip(case.grad_names, case.grads(grads)) if g is not None)
    return out


def _cases():
    return [pytest.param(c, o, id=c.name + ("" if not o else "-" + ",".join(f"{k}={v}" for k, v in o.items())))
            for c in CASES.values() for o in c.option_sets]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case, options", _cases())
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's size-mismatch / 'mean' warnings where they apply
def test_bitwise_identical_across_isa_levels(restore_threads, case, options, dtype):
    dtype = np.dtype(dtype)
    before = _core.current_isa()
    fastloss.set_num_threads(2)
    worst = {}
    try:
        for name, arrays in data_sets(case, dtype, options).items():
            results = {}
            with np.errstate(all="ignore"):
                for level in LEVELS:
                    _core.select_isa(level)
                    results[level] = _results(case, arrays, options)
            first = results[LEVELS[0]]
            for level in LEVELS[1:]:
                for (label, a), (_, b) in zip(results[level], first):
                    a, b = np.asarray(a), np.asarray(b)
                    assert a.shape == b.shape and a.dtype == b.dtype, (name, label, level)
                    d = ulp_distance(a, b)
                    # signed zeros: as different as two bit patterns can be here
                    d = np.where((d == 0) & ~np.isnan(a) & (np.signbit(a) != np.signbit(b)), 0.5, d)
                    key = f"{name} {label} {level} vs {LEVELS[0]}"
                    worst[key] = float(d.max()) if d.size else 0.0
    finally:
        _core.select_isa(before)
    differing = {k: v for k, v in worst.items() if v > 0}
    assert not differing, f"{case.name} {dtype.name}: max ulp differences between levels: {differing}"
