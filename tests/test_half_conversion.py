"""float16 <-> float32 conversion kernels (``_core.half_to_float`` /
``_core.float_to_half``, cpp/src/simd/half_kernels.cpp): bitwise NumPy's
``astype`` on every ISA level, for every float16 bit pattern and a dense
sample of float32 ones (every rounding boundary and tie, the subnormal range,
overflow, NaN payloads), in any layout and thread count; and the losses on
float16 arrays, which convert through them, give the bits of the float32
computation cast with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import fastloss
from fastloss import _core
from fastloss._api import REGISTRY

from cases import relayout

ALL_HALF_BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def _float_bits(values):
    return np.asarray(values, np.uint32).view(np.float32)


def _numpy_half(f):
    with np.errstate(over="ignore", invalid="ignore"):
        return f.astype(np.float16)


def _rounding_sample():
    """float32 bit patterns around every float16 value and every midpoint
    between neighbours (ties, and one float32 ulp either side), both signs;
    the float32 subnormals' edges; values around float16's overflow
    threshold (65520 is the tie that rounds to inf); infinities; NaNs with
    payloads in the kept and in the dropped bits, quiet and signalling; and a
    uniform stride over all 2^32 patterns."""
    h = ALL_HALF_BITS[: 0x7C01].view(np.float16).astype(np.float64)  # +0 ... +inf
    mid = (h[:-1] + h[1:]) / 2  # exact in float32 (12 significant bits)
    centres = np.concatenate([h, mid, [65520.0, 65536.0, 2.0**-25, 2.0**-26, 2.0**-24 * 1.5]])
    bits = centres.astype(np.float32).view(np.uint32).astype(np.int64)
    bits = np.concatenate([bits + k for k in (-2, -1, 0, 1, 2)])
    f32_edges = [0, 1, 2, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F800000]
    nans = [0x7F800001, 0x7F801FFF, 0x7F802000, 0x7FA00000, 0x7FBFFFFF, 0x7FC00000, 0x7FC00001, 0x7FFFE000,
            0x7FFFFFFF, 0x7F9FE001]
    every = np.arange(0, 1 << 32, 1021, dtype=np.int64)
    bits = np.concatenate([bits, f32_edges, nans, every]) & 0x7FFFFFFF
    bits = np.concatenate([bits, bits | 0x80000000])
    return _float_bits(bits)


ROUNDING_SAMPLE = _rounding_sample()


def _assert_bits(actual, expected, what):
    a = np.asarray(actual).view(np.uint16 if actual.dtype == np.float16 else np.uint32)
    e = np.asarray(expected).view(a.dtype)
    bad = np.flatnonzero((a != e).ravel())
    assert bad.size == 0, (f"{what}: {bad.size} of {a.size} differ; first at {bad[0]}: "
                           f"{a.ravel()[bad[0]]:#x} vs NumPy's {e.ravel()[bad[0]]:#x}")


def half_to_float(src):
    out = np.empty(src.shape, np.float32)
    _core.half_to_float(src, out)
    return out


def float_to_half(src):
    out = np.empty(src.shape, np.float16)
    _core.float_to_half(src, out)
    return out


def test_the_samples_cover_what_they_claim():
    f = ROUNDING_SAMPLE
    with np.errstate(invalid="ignore"):
        assert np.isnan(f).sum() > 0 and np.isposinf(f).any() and np.isneginf(f).any()
    h = _numpy_half(f)
    exact = f == h.astype(np.float32)
    assert (~exact & np.isfinite(h)).sum() > 100_000  # rounded values
    assert np.isin(np.float32(65520.0), f) and np.isinf(_numpy_half(np.float32([65520.0]))).all()
    # Signalling NaNs in both directions (NumPy keeps them signalling).
    assert ((f.view(np.uint32) & 0x7FC00000) == 0x7F800000).sum() > 4
    assert (((ALL_HALF_BITS & 0x7E00) == 0x7C00) & ((ALL_HALF_BITS & 0x1FF) != 0)).sum() == 2 * 511


def test_every_half_to_float(isa):
    h = ALL_HALF_BITS.view(np.float16)
    _assert_bits(half_to_float(h), h.astype(np.float32), f"{isa}: all 65536")
    # Shifted starts and every short length: the vector body, the tails and a
    # signalling NaN at every lane position.
    for start in range(0, 40):
        part = h[0x7C00 + start:0x7C00 + start + 67]
        _assert_bits(half_to_float(part), part.astype(np.float32), f"{isa}: NaNs from {start}")
    for n in range(0, 70):
        part = h[0xFBF0:0xFBF0 + n]
        _assert_bits(half_to_float(part), part.astype(np.float32), f"{isa}: length {n}")


def test_float_to_half_rounding(isa):
    _assert_bits(float_to_half(ROUNDING_SAMPLE), _numpy_half(ROUNDING_SAMPLE), isa)


def test_float_to_half_signalling_nan_at_every_lane(isa):
    for n in range(0, 70):
        f = np.linspace(-70000, 70000, n).astype(np.float32)
        if n:
            f.view(np.uint32)[n // 3] = 0x7F800001 | (n << 13)
        _assert_bits(float_to_half(f), _numpy_half(f), f"{isa}: length {n}")


def test_round_trip_of_every_half(isa):
    h = ALL_HALF_BITS.view(np.float16)
    _assert_bits(float_to_half(half_to_float(h)), h, isa)


def _arrange(base, layout, rng):
    """``base`` (37 x 45) in ``layout``."""
    if layout in ("strided", "negative", "F"):
        return relayout(base, layout)
    if layout == "broadcast":
        return np.broadcast_to(base[:1], base.shape)
    if layout == "0-d":
        return base[3:4, 4].reshape(())
    if layout == "empty":
        return base[:0]
    if layout == "9-d":
        return base.ravel()[: 2 * 3 * 2 * 3 * 2 * 2 * 10].reshape(2, 3, 1, 2, 3, 2, 1, 2, 10)[..., ::2]
    return base.T


@pytest.mark.parametrize("layout", ["strided", "negative", "F", "broadcast", "0-d", "empty", "9-d", "transposed"])
def test_layouts(isa, layout):
    rng = np.random.default_rng(7)
    h = _arrange(rng.integers(0, 1 << 16, size=(37, 45), dtype=np.uint16).view(np.float16), layout, rng)
    _assert_bits(half_to_float(h), h.astype(np.float32), f"{isa} {layout} half->float")
    picks = rng.integers(0, ROUNDING_SAMPLE.size, size=(37, 45))
    f = _arrange(ROUNDING_SAMPLE[picks], layout, rng)
    _assert_bits(float_to_half(f), _numpy_half(f), f"{isa} {layout} float->half")


@pytest.mark.parametrize("layout", ["strided", "negative", "F"])
def test_strided_destination_writes_its_elements_only(isa, layout):
    rng = np.random.default_rng(3)
    f = (rng.standard_normal((23, 31)) * 1000).astype(np.float32)
    parent = np.full((2 * 23 + 1, 2 * 31 + 1), 7.0, np.float16)
    dst = parent[1::2, 1::2] if layout == "strided" else relayout(np.zeros((23, 31), np.float16), layout)
    _core.float_to_half(f, dst)
    _assert_bits(dst, _numpy_half(f), f"{isa} {layout}")
    if layout == "strided":
        untouched = np.ones(parent.shape, bool)
        untouched[1::2, 1::2] = False
        assert (parent[untouched] == 7.0).all()
    out32 = relayout(np.zeros((23, 31), np.float32), layout)
    h = _numpy_half(f)
    _core.half_to_float(h, out32)
    _assert_bits(out32, h.astype(np.float32), f"{isa} {layout} half->float")


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_threads_do_not_change_bits(isa, threads, restore_threads):
    # Larger than one thread's share (2^15) and not a multiple of the pool's
    # task size; subnormal results (the slow case of NumPy's cast) included.
    rng = np.random.default_rng(threads)
    n = 3 * 2**15 + 2**14 + 5
    f = np.concatenate([rng.standard_normal(n // 2).astype(np.float32) * np.float32(1e-6),
                        rng.standard_normal(n - n // 2).astype(np.float32) * np.float32(1e4)])
    fastloss.set_num_threads(threads)
    _assert_bits(float_to_half(f), _numpy_half(f), f"{isa} threads={threads}")
    _assert_bits(float_to_half(f[::-3]), _numpy_half(f[::-3]), f"{isa} threads={threads} reversed")
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint16).view(np.float16)
    _assert_bits(half_to_float(h), h.astype(np.float32), f"{isa} threads={threads}")


def test_flush_to_zero_mode_does_not_change_bits(isa):
    # The calling thread's MXCSR FTZ/DAZ (torch.set_flush_denormal) must not
    # matter: NumPy's casts are integer code. Small arrays run on this thread.
    torch = pytest.importorskip("torch")
    h = ALL_HALF_BITS[:0x7C00].view(np.float16)[::7]
    f = ROUNDING_SAMPLE[:30_000]
    want_f, want_h = h.astype(np.float32), _numpy_half(f)
    if not torch.set_flush_denormal(True):
        pytest.skip("no FTZ/DAZ on this CPU")
    try:
        got_f, got_h = half_to_float(h), float_to_half(f)
    finally:
        torch.set_flush_denormal(False)
    _assert_bits(got_f, want_f, isa)
    _assert_bits(got_h, want_h, isa)


@pytest.mark.parametrize(
    "src, dst, error",
    [
        (np.zeros(3, np.float32), np.zeros(3, np.float32), TypeError),
        (np.zeros(3, np.float16), np.zeros(3, np.float64), TypeError),
        (np.zeros(3, np.float16), np.zeros(4, np.float32), ValueError),
        (np.zeros(3, np.float16), np.zeros((3, 1), np.float32), ValueError),
        (np.zeros(3, ">f2"), np.zeros(3, np.float32), ValueError),
        ([0.0, 1.0], np.zeros(2, np.float32), TypeError),
    ],
)
def test_half_to_float_rejects(src, dst, error):
    with pytest.raises(error, match="half_to_float"):
        _core.half_to_float(src, dst)


def test_float_to_half_rejects_read_only_and_unaligned():
    dst = np.zeros(3, np.float16)
    dst.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.float_to_half(np.zeros(3, np.float32), dst)
    unaligned = relayout(np.zeros(3, np.float32), "unaligned")
    with pytest.raises(ValueError, match="not aligned"):
        _core.float_to_half(unaligned, np.zeros(3, np.float16))


# ------------------------------------------------------------ end to end
#
# The losses compute float16 in float32: their float16 arrays (per-element
# losses, gradients) must be the float32 results of the float32 inputs, cast
# with NumPy. Reduced values are rounded from the float64 total directly, not
# through these kernels, and are not compared here.

NAMES = sorted(REGISTRY)


def _half_and_single(name, rng, size):
    arrays, options = REGISTRY[name].sample(rng, size, np.float16)
    singles = tuple(a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays)
    return arrays, singles, options


def _as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


@pytest.mark.parametrize("name", NAMES)
def test_losses_on_float16_match_float32_cast(isa, name):
    rng = np.random.default_rng(NAMES.index(name))
    n = 2**15 + 2**14 + 3  # several pool tasks; 'mean' gradients are float16 subnormals
    spec = REGISTRY[name]
    half, single, options = _half_and_single(name, rng, n)
    value = spec.forward(*half, **options, reduction="none")
    _assert_bits(value, _numpy_half(spec.forward(*single, **options, reduction="none")), f"{name} none")
    gout = rng.uniform(0.5, 1.5, np.shape(value)).astype(np.float16)  # (one per row for the class-axis losses)
    for reduction, kwargs in (("mean", {}), ("sum", {}), ("none", {"grad_output": gout})):
        if reduction == "none":
            kwargs_single = {"grad_output": gout.astype(np.float32)}
        else:
            kwargs_single = {}
        got = _as_tuple(spec.backward(*half, **options, reduction=reduction, **kwargs))
        want = _as_tuple(spec.backward(*single, **options, reduction=reduction, **kwargs_single))
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            if w is None:
                assert g is None
                continue
            assert g.dtype == np.float16
            _assert_bits(g, _numpy_half(w), f"{name} {reduction} grad {k}")


# (every gradient here has the input's (40, 33) shape; linear_cross_entropy's
# linear_weight gradient has another: tests/test_linear_cross_entropy.py
# covers its out= buffers)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "linear_cross_entropy"])
def test_value_and_grad_into_strided_float16_out(name):
    rng = np.random.default_rng(11)
    spec = REGISTRY[name]
    half, single, options = _half_and_single(name, rng, (40, 33))
    want_value, want_grad = spec.value_and_grad(*single, **options, reduction="none")
    want_grad = _as_tuple(want_grad)
    outs = tuple(None if w is None else relayout(np.zeros((40, 33), np.float16), "strided") for w in want_grad)
    value, grad = spec.value_and_grad(*half, **options, reduction="none",
                                      out=outs if len(outs) > 1 else outs[0])
    _assert_bits(value, _numpy_half(want_value), f"{name} value")
    for k, (g, o, w) in enumerate(zip(_as_tuple(grad), outs, want_grad)):
        if w is None:
            continue
        assert g is o
        _assert_bits(o, _numpy_half(w), f"{name} grad {k}")


def test_mixed_float16_target_converts_exactly():
    # float32 input, float16 target: the target reaches the kernel converted.
    rng = np.random.default_rng(5)
    x = rng.standard_normal(5000).astype(np.float32)
    t = (rng.standard_normal(5000) * 1e-5).astype(np.float16)  # many subnormals
    got = fastloss.mse_loss(x, t, reduction="none")
    assert got.dtype == np.float32
    _assert_bits(got, fastloss.mse_loss(x, t.astype(np.float32), reduction="none"), "mixed")


def test_half_paths_convert_with_the_kernels(monkeypatch):
    # Inputs, per-element losses, returned gradients and float16 out= all go
    # through _core's conversions (NumPy's casts are what made float16 slow).
    from fastloss import _validate

    calls = []
    for fn in ("half_to_float", "float_to_half"):
        real = getattr(_core, fn)
        monkeypatch.setattr(_validate._core, fn, lambda s, d, real=real, fn=fn: (calls.append(fn), real(s, d))[1])
    x, t = np.ones(10, np.float16), np.zeros(10, np.float16)
    fastloss.mse_loss(x, t, reduction="none")
    assert calls == ["half_to_float", "half_to_float", "float_to_half"]
    calls.clear()
    out = np.empty(10, np.float16)
    fastloss.binary_cross_entropy_backward(x * np.float16(0.5), t, out=out)
    assert calls == ["half_to_float", "half_to_float", "float_to_half"]
