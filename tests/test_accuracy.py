"""float32 reductions stay within 1e-6 relative of float64 even at 10^8
elements (API.md §4). 10^8 elements are not allocated: the input is a
stride-0 broadcast of one row, so the exact float64 result is the row's
loss times the number of rows. The data are drift-prone for a naive float32
running sum: all terms positive, of similar size."""

from __future__ import annotations

import numpy as np
import pytest

from cases import ELEMENTWISE, case_options

ROWS = COLS = 10**4  # 10^8 elements
RTOL = 1e-6


def _rows(case, rng, weighted):
    """One row of float32 input/target (and weight) with positive losses
    ~ uniform magnitude: input ~ U(0, 1), target 0 (or -1 .. 1 for variety)."""
    row = {"input": rng.uniform(0.0, 1.0, COLS).astype(np.float32),
           "target": rng.uniform(-1.0, 0.0, COLS).astype(np.float32)}
    if weighted:
        row["weight"] = rng.uniform(0.5, 1.5, COLS).astype(np.float32)
    return row


@pytest.mark.parametrize(
    "case, options, weighted",
    [pytest.param(*p.values, w, id=p.id + ("-weighted" if w else "")) for p in case_options(ELEMENTWISE)
     for w in (False, True) if p.values[0].weighted or not w],
)
def test_float32_sum_of_1e8_broadcast_elements(case, options, weighted):
    row = _rows(case, np.random.default_rng(0), weighted)
    arrays = {k: np.broadcast_to(v, (ROWS, COLS)) for k, v in row.items()}
    assert arrays["input"].strides[0] == 0  # nothing allocated
    exact_row_sum = case.expected({k: v.astype(np.float64) for k, v in row.items()}, reduction="sum", **options)
    got_sum = case.call(case.forward, arrays, reduction="sum", **options)
    assert got_sum.dtype == np.float32
    assert abs(float(got_sum) - ROWS * exact_row_sum) <= RTOL * ROWS * exact_row_sum
    # 'mean' (a weighted L1/MSE mean divides by sum(w), itself a 10^8-term sum)
    exact_row_mean = case.expected({k: v.astype(np.float64) for k, v in row.items()}, reduction="mean", **options)
    got_mean = case.call(case.forward, arrays, reduction="mean", **options)
    assert abs(float(got_mean) - exact_row_mean) <= RTOL * exact_row_mean


def test_mse_sum_1e8_on_every_isa(isa):
    """The SIMD width changes the summation tree: every level stays accurate."""
    case = next(c for c in ELEMENTWISE if c.name == "mse_loss")
    row = _rows(case, np.random.default_rng(1), False)
    arrays = {k: np.broadcast_to(v, (ROWS, COLS)) for k, v in row.items()}
    exact = ROWS * case.expected({k: v.astype(np.float64) for k, v in row.items()}, reduction="sum")
    got = case.call(case.forward, arrays, reduction="sum")
    assert abs(float(got) - exact) <= RTOL * exact


@pytest.mark.parametrize("case, options", case_options(ELEMENTWISE))
def test_float32_contiguous_2_pow_24(case, options):
    """2^24 contiguous elements: the count where a float32 running sum of ones
    stops growing."""
    rng = np.random.default_rng(2)
    n = 2**24
    x = rng.uniform(0.0, 1.0, n).astype(np.float32)
    t = np.zeros(n, np.float32)
    arrays = {"input": x, "target": t}
    chunk = 2**20  # float64 reference chunk by chunk (positive terms: exact to ~1e-16)
    exact = sum(case.expected({"input": x[i:i + chunk], "target": t[i:i + chunk]}, reduction="sum", **options)
                for i in range(0, n, chunk))
    got = case.call(case.forward, arrays, reduction="sum", **options)
    assert abs(float(got) - exact) <= RTOL * exact
    got_mean = case.call(case.forward, arrays, reduction="mean", **options)
    assert abs(float(got_mean) - exact / n) <= RTOL * exact / n
