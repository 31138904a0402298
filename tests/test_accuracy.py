"""float32 reductions stay within 1e-6 relative of float64 (of the sum of
|l| where the terms have mixed signs) even at 10^8 elements (API.md §4). 10^8 elements are not allocated: the input is a
stride-0 broadcast of one row, so the exact float64 result is the row's
loss times the number of rows. The data are drift-prone for a naive float32
running sum: all terms positive, of similar size."""

from __future__ import annotations

import numpy as np
import pytest

from cases import ELEMENTWISE, case_options, case_params

ROWS = COLS = 10**4  # 10^8 elements
RTOL = 1e-6


def _rows(case, rng, weighted):
    """One row of float32 arrays (and the optional ones) of the loss's
    'normal' data; for the regression losses, positive losses of similar
    size (input ~ U(0, 1), target -1 .. 0): drift-prone for a running sum."""
    row = case.make(rng, (COLS,), np.float32, weighted=weighted)
    if case.fast_path:
        row["input"] = rng.uniform(0.0, 1.0, COLS).astype(np.float32)
        row["target"] = rng.uniform(-1.0, 0.0, COLS).astype(np.float32)
    return row


def _exact(case, row, reduction, options):
    """The float64 reference for one row, and the sum of |l| (the scale of a
    sum whose terms have mixed signs)."""
    r64 = {k: v.astype(np.float64) for k, v in row.items()}
    return (case.expected(r64, reduction=reduction, **options),
            np.abs(case.expected(r64, reduction="none", **options)).sum())


@pytest.mark.parametrize(
    "case, options, weighted",
    [pytest.param(*p.values, w, id=p.id + ("-weighted" if w else ""))
     for p in case_options(ELEMENTWISE, heavy=True) for w in (False, True) if p.values[0].optional or not w],
)
def test_float32_sum_of_1e8_broadcast_elements(case, options, weighted):
    row = _rows(case, np.random.default_rng(0), weighted)
    arrays = {k: np.broadcast_to(v, (ROWS, COLS)) for k, v in row.items()}
    assert arrays[case.primary].strides[0] == 0  # nothing allocated
    exact_row_sum, abs_row_sum = _exact(case, row, "sum", options)
    got_sum = case.call(case.forward, arrays, reduction="sum", **options)
    assert got_sum.dtype == np.float32
    assert abs(float(got_sum) - ROWS * exact_row_sum) <= RTOL * ROWS * abs_row_sum
    # 'mean' (a weighted L1/MSE mean divides by sum(w), itself a 10^8-term sum)
    exact_row_mean, _ = _exact(case, row, "mean", options)
    got_mean = case.call(case.forward, arrays, reduction="mean", **options)
    assert abs(float(got_mean) - exact_row_mean) <= RTOL * abs(exact_row_mean) * abs_row_sum / abs(exact_row_sum)


def test_mse_sum_1e8_on_every_isa(isa):
    """The SIMD width changes the summation tree: every level stays accurate."""
    case = next(c for c in ELEMENTWISE if c.name == "mse_loss")
    row = _rows(case, np.random.default_rng(1), False)
    arrays = {k: np.broadcast_to(v, (ROWS, COLS)) for k, v in row.items()}
    exact = ROWS * case.expected({k: v.astype(np.float64) for k, v in row.items()}, reduction="sum")
    got = case.call(case.forward, arrays, reduction="sum")
    assert abs(float(got) - exact) <= RTOL * exact


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_float32_contiguous_2_pow_24(case):
    """2^24 contiguous elements: the count where a float32 running sum of ones
    stops growing. (256 copies of one 2^16-element block, so the float64
    reference needs only the block.)"""
    rng = np.random.default_rng(2)
    n, block = 2**24, 2**16
    row = case.make(rng, (block,), np.float32)
    if case.fast_path:
        row = {"input": rng.uniform(0.0, 1.0, block).astype(np.float32), "target": np.zeros(block, np.float32)}
    arrays = {k: np.tile(v, n // block) for k, v in row.items()}
    exact, scale = (n // block * x for x in _exact(case, row, "sum", {}))
    got = case.call(case.forward, arrays, reduction="sum")
    assert abs(float(got) - exact) <= RTOL * scale
    got_mean = case.call(case.forward, arrays, reduction="mean")
    assert abs(float(got_mean) - exact / n) <= RTOL * scale / n
