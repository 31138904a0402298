"""Loss options (beta, delta...) at values that round away in the compute
dtype, against torch (issue: ``smooth_l1_loss_backward(..., beta=1e-50)`` on
float32 was all NaN).

An option is converted to the compute dtype (float32 for float32, float16 and
bfloat16 inputs; float64 for float64) before any branch depends on it, as
torch's kernels convert it: ``beta=1e-50`` is 0 in float32, so smooth L1 is
L1 there (value and gradient, ``sign(0) = 0``), which is what torch gives for
``beta=0``; ``delta=1e-50`` is 0 (value 0, gradient +-0, as torch);
``1e300`` is inf. Validation uses the value as given, as torch
(``delta=1e-50`` is accepted, ``beta=-1e-50`` refused).

Oracles: float32/float64 against torch in that dtype, called with the option
already in the compute dtype where torch accepts that value (so torch's own
``beta == 0`` dispatch sees what its kernel computes with: its float32 vector
kernel otherwise returns -1 at ``input == target`` for a beta that rounds to
0, and 0 in its scalar tail); float16/bfloat16 against torch in float32 on
the same values, rounded (fastloss computes half types in float32; torch's
float16 forward rounds beta to float16, its backward does not), and no NaN
where torch in the half type has none."""

import ml_dtypes
import numpy as np
import pytest

import fastloss
from cases import ELEMENTWISE, assert_identical, case_params

torch = pytest.importorskip("torch")

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
BF16 = np.dtype(ml_dtypes.bfloat16)
TORCH_DTYPE = {F16: torch.float16, F32: torch.float32, F64: torch.float64, BF16: torch.bfloat16}
TOLERANCE = {F64: 1e-12, F32: 2e-6, F16: 1e-3, BF16: 8e-3}

# Underflow (to 0 or a subnormal) and overflow in float16 and float32.
EDGE_VALUES = (1e-320, 1e-50, 1e-40, 1e-30, 1e-8, 1e-7, 6e-8, 70000.0, 3.5e38, 1e300)


def float_options(case):
    return [n for n, d in case.spec.options.items() if isinstance(d, float)]


def _data(dtype):
    """Differences 0, tiny, around the edge values' scale, and large: 48
    elements, so torch's vector kernels and scalar tails both run."""
    rng = np.random.default_rng(7)
    x = np.concatenate([np.zeros(8), rng.standard_normal(8), np.full(8, 1e-9), np.full(8, 1e-3),
                        np.full(8, 3.0), np.full(8, 60000.0)])
    y = np.concatenate([np.zeros(8), rng.standard_normal(8), np.zeros(8), -np.full(8, 1e-3), np.zeros(8),
                        np.zeros(8)])
    x[1::2] *= -1
    return x.astype(dtype), y.astype(dtype)


def _torch(name, x, y, reduction, dtype, options):
    tx = torch.from_numpy(np.asarray(x, np.float64)).to(TORCH_DTYPE[dtype]).requires_grad_(True)
    ty = torch.from_numpy(np.asarray(y, np.float64)).to(TORCH_DTYPE[dtype])
    value = getattr(torch.nn.functional, name)(tx, ty, reduction=reduction, **options)
    (grad,) = torch.autograd.grad(value.sum(), tx)
    return value.detach().double().numpy(), grad.double().numpy()


def _in_compute_dtype(name, option, value, dtype):
    """``value`` as the kernels see it, if torch accepts that value, else as given."""
    compute = F64 if dtype == F64 else F32
    with np.errstate(over="ignore"):
        converted = float(np.asarray(value, np.float64).astype(compute))
    try:
        _torch(name, np.ones(1), np.zeros(1), "sum", compute, {option: converted})
    except RuntimeError:  # e.g. delta = 0: torch refuses what its kernel computes with
        return value
    return converted


def _assert_matches(ours, theirs, dtype, what):
    ours = np.asarray(ours).astype(np.float64)
    with np.errstate(over="ignore"):
        theirs = np.asarray(theirs).astype(dtype).astype(np.float64)  # torch's float32, rounded as ours
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE[dtype], atol=1e-300, equal_nan=True, err_msg=what)


# beta and delta: options that must be positive (validated as given) and
# select a branch. (margin and eps of the likelihood/margin losses enter the
# arithmetic only: test_torch.py sweeps them; torch refuses values beyond the
# tensor's dtype, see test_torch_losses.py.)
WITH_OPTIONS = case_params([c for c in ELEMENTWISE if float_options(c) and c.fast_path])


@pytest.mark.parametrize("case", WITH_OPTIONS)
@pytest.mark.parametrize("dtype", [F32, F64, F16, BF16], ids=lambda d: d.name)
def test_options_that_round_away_match_torch(case, dtype):
    names = float_options(case)
    x, y = _data(dtype)
    oracle_dtype = F64 if dtype == F64 else F32
    for name in names:
        for value in EDGE_VALUES:
            for reduction in ("none", "mean", "sum"):
                options = {name: value}
                what = f"{case.name}({name}={value}, reduction={reduction!r}) {dtype.name}"
                v, g = case.value_and_grad(x, y, reduction=reduction, **options)
                assert_identical(case.forward(x, y, reduction=reduction, **options), v, what)
                assert_identical(case.backward(x, y, reduction=reduction, **options), g, what)
                torch_options = {name: _in_compute_dtype(case.name, name, value, dtype)}
                tv, tg = _torch(case.name, x, y, reduction, oracle_dtype, torch_options)
                _assert_matches(v, tv, dtype, what + " value")
                _assert_matches(g, tg, dtype, what + " gradient")
                # No NaN where torch, in the input's own dtype, has none.
                nv, ng = _torch(case.name, x, y, reduction, dtype, options)
                assert not (np.isnan(np.asarray(v, np.float64)) & ~np.isnan(nv)).any(), what
                assert not (np.isnan(np.asarray(g, np.float64)) & ~np.isnan(ng)).any(), what


def test_issue_example_smooth_l1_beta_1e_50():
    """The issue's example: zeros, beta=1e-50 (0 in float32): gradient 0, as
    torch's smooth_l1 with beta=0 (and fastloss.l1_loss)."""
    for dtype in (np.float32, np.float16, ml_dtypes.bfloat16):
        x = np.zeros(16, dtype)
        g = fastloss.smooth_l1_loss_backward(x, x, beta=1e-50)
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g.astype(np.float64), np.zeros(16))
        tx = torch.zeros(16, dtype=TORCH_DTYPE[np.dtype(dtype)], requires_grad=True)
        (tg,) = torch.autograd.grad(torch.nn.functional.smooth_l1_loss(tx, tx.detach(), beta=0.0), tx)
        np.testing.assert_array_equal(g.astype(np.float64), tg.double().numpy())
    # float64 keeps beta = 1e-50 (not 0): smooth, d / beta inside the kink.
    x = np.array([0.0, 1e-51, -1e-49])
    y = np.zeros(3)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    (tg,) = torch.autograd.grad(torch.nn.functional.smooth_l1_loss(tx, torch.from_numpy(y), beta=1e-50), tx)
    np.testing.assert_allclose(fastloss.smooth_l1_loss_backward(x, y, beta=1e-50), tg.numpy(), rtol=1e-15)


@pytest.mark.parametrize("case", WITH_OPTIONS)
def test_options_are_validated_as_given(case):
    """A negative option that rounds to -0 is still negative (torch checks the
    double); a positive one that rounds to 0 is accepted."""
    x = np.ones(4, np.float32)
    for name in float_options(case):
        with pytest.raises(ValueError, match=name):
            case.forward(x, x, **{name: -1e-50})
        assert np.isfinite(case.forward(x, x * 2, **{name: 1e-50}))
