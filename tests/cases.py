"""The case table: one row per registered loss (``fastloss._api.REGISTRY``)
saying how to make its inputs, which options to sweep and which tolerances
apply. Adding a loss to the package costs one row here (plus its reference
functions); ``test_registry.py`` fails until the row exists.

Also the helpers every test file shares: array layouts (non-contiguous,
negative strides, transposed, unaligned), calling a loss with the torch-style
size-mismatch warning expected, and dtype-aware comparison."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

import ml_dtypes
import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import reference
from fastloss._api import REGISTRY

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BFLOAT16)
REDUCTIONS = ("none", "mean", "sum")
LAYOUTS = ("C", "strided", "negative", "F", "unaligned")

# Element-wise comparison against the float64 reference: (rtol, atol). The
# expected value is first rounded to the result dtype, so rtol covers the
# kernel's own rounding: float32 math is a few ulp (2^-24) per element; half
# types are computed in float32 and rounded once (1 ulp: 2^-11 / 2^-8).
TOLERANCE = {
    "float64": (1e-12, 1e-300),
    "float32": (1e-5, 1e-6),
    "float16": (2e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}
# Reduced values (sums of non-negative terms) against the float64 reference.
REDUCED_RTOL = {"float64": 1e-11, "float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}
# Against torch in its own precision (torch rounds half types after each op).
TORCH_TOLERANCE = {
    "float64": (1e-12, 1e-300),
    "float32": (2e-5, 1e-6),
    "float16": (4e-3, 1e-4),
    "bfloat16": (3.2e-2, 1e-3),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """How the tests exercise one loss.

    kind: "elementwise" — arrays ``input``, ``target`` (broadcastable to
        ``input``), optional ``weight`` of ``input``'s shape; the hypothesis,
        layout and broadcasting tests of ``test_regression.py`` apply.
    option_sets: option dicts (besides ``reduction``/``weight``) to sweep,
        chosen so kinks (``|input - target| == beta``) are hit by grid data.
    weighted: accepts ``weight=``.
    bad_options: ``(options, exception, argument name)`` that must raise.
    make: ``make(rng, shape, dtype, values=..., ...) -> {argument: array}``.
    """

    name: str
    kind: str
    option_sets: tuple
    weighted: bool
    bad_options: tuple
    make: Callable

    @property
    def spec(self):
        return REGISTRY[self.name]

    @property
    def forward(self):
        return getattr(fastloss, self.name)

    @property
    def backward(self):
        return getattr(fastloss, self.name + "_backward")

    @property
    def value_and_grad(self):
        return getattr(fastloss, self.name + "_value_and_grad")

    @property
    def reference(self):
        return getattr(reference, self.name)

    @property
    def reference_backward(self):
        return getattr(reference, self.name + "_backward")

    @property
    def nn_class(self):
        return getattr(fastloss.nn, self.spec.class_name)

    def split(self, arrays):
        """``(positional arrays in torch's order, keyword arrays)``."""
        positional = tuple(arrays[n] for n in self.spec.arrays)
        keyword = {k: v for k, v in arrays.items() if k not in self.spec.arrays}
        return positional, keyword

    def call(self, fn, arrays, **options):
        """Calls ``fn`` with the arrays (positional in torch's order, the rest
        as keywords), expecting torch's size-mismatch warning where it applies."""
        positional, keyword = self.split(arrays)
        with mismatch_warning(arrays):
            return fn(*positional, **keyword, **options)

    def expected(self, arrays, **options):
        """The float64 reference value for ``arrays``."""
        positional, keyword = self.split(arrays)
        return self.reference(*positional, **keyword, **options)

    def expected_grad(self, arrays, **options):
        positional, keyword = self.split(arrays)
        return self.reference_backward(*positional, **keyword, **options)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"CASES[{self.name!r}]"

    def _repr_pretty_(self, printer, cycle):  # hypothesis' falsifying-example printer
        printer.text(repr(self))


# ------------------------------------------------------------ data makers


def sample_values(rng, shape, kind):
    """float64 values: 'normal' (continuous), 'grid' (multiples of 1/4 in
    [-2, 2]: exact in every dtype, so differences hit 0, +-0.5, +-1, +-2 — the
    kinks of every option set — exactly), 'special' (grid with NaN/+-inf)."""
    if kind == "normal":
        return rng.standard_normal(shape) * 2.0
    grid = rng.integers(-8, 9, size=shape) / 4.0
    if kind == "grid":
        return grid
    if kind == "special":
        specials = np.array([np.nan, np.inf, -np.inf])
        mask = rng.random(shape) < 0.25
        return np.where(mask, rng.choice(specials, size=shape), grid)
    raise ValueError(kind)


def _cast(values, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.round(np.nan_to_num(values)), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return values > 0
    return np.asarray(values).astype(dtype)


def make_elementwise(rng, shape, dtype, *, values="normal", target_shape=None, target_dtype=None, weighted=False):
    """``input`` (shape, dtype), ``target`` (target_shape, target_dtype;
    default input's) and optionally a positive ``weight`` of input's shape."""
    target_shape = shape if target_shape is None else target_shape
    target_dtype = dtype if target_dtype is None else target_dtype
    arrays = {
        "input": _cast(sample_values(rng, shape, values), dtype),
        "target": _cast(sample_values(rng, target_shape, values), target_dtype),
    }
    if weighted:
        # Positive weights (sum(w) is a divisor); multiples of 1/8 are exact in
        # every dtype for grid data.
        w = rng.integers(1, 17, size=shape) / 8.0 if values != "normal" else rng.uniform(0.1, 2.0, shape)
        arrays["weight"] = _cast(w, dtype)
    return arrays


# ------------------------------------------------------------------- table

CASES = {
    c.name: c
    for c in (
        Case("l1_loss", "elementwise", ({},), True, (), make_elementwise),
        Case("mse_loss", "elementwise", ({},), True, (), make_elementwise),
        Case(
            "smooth_l1_loss",
            "elementwise",
            ({}, {"beta": 0.0}, {"beta": 0.5}, {"beta": 2.0}),
            False,
            (({"beta": -1.0}, ValueError, "beta"), ({"beta": -1e-300}, ValueError, "beta"),
             ({"beta": "1"}, TypeError, "beta"), ({"beta": None}, TypeError, "beta"),
             ({"beta": 1j}, TypeError, "beta")),
            make_elementwise,
        ),
        Case(
            "huber_loss",
            "elementwise",
            ({}, {"delta": 0.5}, {"delta": 2.0}),
            True,
            (({"delta": 0.0}, ValueError, "delta"), ({"delta": -1.0}, ValueError, "delta"),
             ({"delta": float("nan")}, ValueError, "delta"), ({"delta": "1"}, TypeError, "delta"),
             ({"delta": None}, TypeError, "delta")),
            make_elementwise,
        ),
    )
}

KNOWN_KINDS = {"elementwise"}
ELEMENTWISE = [c for c in CASES.values() if c.kind == "elementwise"]


def case_options(cases):
    """``[(case, options)]`` for pytest.mark.parametrize, with readable ids."""
    return [
        pytest.param(c, o, id=c.name + ("" if not o else "-" + ",".join(f"{k}={v}" for k, v in o.items())))
        for c in cases
        for o in c.option_sets
    ]


def case_params(cases):
    return [pytest.param(c, id=c.name) for c in cases]


# ----------------------------------------------------------------- layouts


def _garbage(dtype):
    return np.nan if np.dtype(dtype).kind == "f" or np.dtype(dtype) == BFLOAT16 else 99


def relayout(arr, layout):
    """A new array equal to ``arr`` (values and shape) stored another way:
    'C' contiguous, 'strided' (every other element of a larger buffer filled
    with NaN, so reading a gap shows), 'negative' (reversed along every axis),
    'F' (Fortran order: a transpose of a C array), 'unaligned' (data pointer
    not a multiple of the item size)."""
    arr = np.asarray(arr)
    if layout == "C":
        return np.array(arr, order="C", copy=True)
    if layout == "F":
        return np.array(arr, order="F", copy=True)
    if layout == "strided":
        big = np.full(tuple(2 * n + 1 for n in arr.shape), _garbage(arr.dtype), dtype=arr.dtype)
        view = big[tuple(slice(1, None, 2) for _ in arr.shape) + (Ellipsis,)]
        view[...] = arr
        return view
    if layout == "negative":
        buf = np.empty(arr.shape, arr.dtype)
        view = buf[tuple(slice(None, None, -1) for _ in arr.shape) + (Ellipsis,)]
        view[...] = arr
        return view
    if layout == "unaligned":
        if arr.dtype.itemsize == 1:
            return arr.copy()
        raw = np.zeros(arr.nbytes + 1, np.uint8)
        view = raw[1:].view(arr.dtype).reshape(arr.shape)
        view[...] = arr
        return view
    raise ValueError(layout)


def snapshot(arrays):
    """Copies of the caller's arrays, to check nothing was written into them."""
    return {k: np.array(v, copy=True) for k, v in arrays.items() if isinstance(v, np.ndarray)}


def assert_unchanged(arrays, before):
    for k, old in before.items():
        new = np.asarray(arrays[k])
        assert new.tobytes() == old.tobytes(), f"{k} was modified by the call"


# ----------------------------------------------------------------- calling


def mismatch_warning(arrays):
    """pytest.warns for torch's size-mismatch UserWarning when ``target``'s
    shape differs from ``input``'s, else a null context (with
    ``filterwarnings = error`` any unexpected warning fails the test)."""
    if "target" in arrays and np.shape(arrays["target"]) != np.shape(arrays["input"]):
        return pytest.warns(UserWarning, match="different to the input size")
    return contextlib.nullcontext()


def result_dtype(*dtypes):
    """fastloss's promotion of floating dtypes (API.md §4)."""
    floats = [np.dtype(d) for d in dtypes if np.dtype(d).kind == "f" or np.dtype(d) == BFLOAT16]
    if not floats:
        return np.dtype(np.float32)
    if np.dtype(np.float64) in floats:
        return np.dtype(np.float64)
    if all(d == floats[0] for d in floats):
        return floats[0]
    return np.dtype(np.float32)


# -------------------------------------------------------------- comparison


def as_float64(a):
    return np.asarray(a).astype(np.float64)


def assert_close(actual, expected, dtype, *, reduced=False, abs_scale=None, tolerance=TOLERANCE, what=""):
    """``actual`` (computed in/returned as ``dtype``) equals the float64
    ``expected`` rounded to ``dtype``, within that dtype's tolerance; NaN
    where expected is NaN, the same infinities. ``abs_scale`` adds
    ``rtol * abs_scale`` to the allowed error (sums with cancellation)."""
    name = np.dtype(dtype).name
    rtol, atol = tolerance[name]
    if reduced and tolerance is TOLERANCE:
        rtol = REDUCED_RTOL[name]
    act = as_float64(actual)
    with np.errstate(over="ignore"):  # the float64 reference may overflow float16: inf, as the kernel
        exp = as_float64(np.asarray(expected, np.float64).astype(dtype))
    assert act.shape == exp.shape, f"{what}: shape {act.shape} != expected {exp.shape}"
    allowed = atol + rtol * np.abs(exp)
    if abs_scale is not None:
        allowed = allowed + rtol * np.nan_to_num(np.abs(abs_scale), nan=0.0, posinf=0.0)
    with np.errstate(invalid="ignore"):
        err = np.abs(act - exp)
        ok = (err <= allowed) | (act == exp) | (np.isnan(act) & np.isnan(exp))
    if not np.all(ok):
        bad = np.argwhere(~ok) if act.ndim else [()]
        first = tuple(bad[0])
        raise AssertionError(
            f"{what}: {int((~ok).sum())} of {ok.size} elements differ (dtype {name}, rtol {rtol}); "
            f"first at {first}: actual {act[first]!r}, expected {exp[first]!r}"
        )


def assert_identical(a, b, what=""):
    """Bitwise equality (so -0.0 != 0.0), same shape and dtype; any NaN equals
    any NaN (the sign and payload of a NaN carry no meaning)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
    if a.dtype.kind == "f" or a.dtype == BFLOAT16:
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        assert np.array_equal(nan_a, nan_b), f"{what}: NaN at different places"
        a, b = np.where(nan_a, np.zeros((), a.dtype), a), np.where(nan_b, np.zeros((), b.dtype), b)
    if a.tobytes() != b.tobytes():
        diff = np.argwhere(np.asarray(a != b) | (np.signbit(a.astype(np.float64)) != np.signbit(b.astype(np.float64)))
                           if a.dtype.kind == "f" or a.dtype == BFLOAT16 else a != b)
        first = tuple(diff[0]) if diff.size else ()
        raise AssertionError(f"{what}: results differ bitwise ({len(diff)} elements; first at {first}: "
                             f"{a[first]!r} vs {b[first]!r})")


def elementwise_abs_grad(case, arrays, reduction, options, grad_output=None):
    """Sum over the broadcast dimensions of |per-element gradient| (float64
    reference): the scale of the rounding error of a gradient that is summed
    because ``input`` was broadcast (float32 terms may cancel)."""
    x = np.asarray(arrays["input"])
    shape = np.broadcast_shapes(x.shape, np.shape(arrays["target"]))
    loss_shape = shape if reduction == "none" else ()
    g = np.ones(loss_shape) if grad_output is None else np.abs(as_float64(grad_output))
    full = dict(arrays)
    full["input"] = np.broadcast_to(as_float64(x), shape)
    if "weight" in full:
        full["weight"] = np.broadcast_to(as_float64(full["weight"]), shape)
    positional, keyword = case.split(full)
    scale = 1.0
    if reduction == "mean":
        # d mean / d sum, as the loss defines its mean (e.g. 1 / sum(w)).
        o_pos, o_kw = case.split(arrays)
        with np.errstate(all="ignore"):
            scale = float(case.reference(*o_pos, reduction="mean", **o_kw, **options)
                          / case.reference(*o_pos, reduction="sum", **o_kw, **options))
        if not np.isfinite(scale) or scale == 0:
            scale = 1.0
        g = np.broadcast_to(g, shape)
    full_grad = case.reference_backward(*positional, reduction="none", grad_output=np.broadcast_to(g, shape),
                                        **keyword, **options)
    a = np.abs(full_grad) * abs(scale)
    lead = a.ndim - x.ndim
    a = a.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(x.shape) if n == 1 and a.shape[i] != 1)
    return a.sum(axis=axes, keepdims=True).reshape(x.shape)
