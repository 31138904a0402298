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
import math
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
class Arg:
    """One array argument of a loss.

    values: ``values(rng, shape, kind) -> float64 array`` of values the loss
        accepts for this argument, for ``kind`` in 'normal' (continuous),
        'grid' (exact in every dtype, hitting the loss's kinks and clamps) and
        'special' (grid plus NaN/inf/0/extremes where the loss accepts them).
    shape: which shape it takes in ``Case.make``: 'input' (the shape asked
        for), 'target' (``target_shape``), 'last' (input's last dimension:
        a per-class ``pos_weight``), 'rows' (input's shape without the
        class axis 1: class-index targets), 'classes' (the class axis: weights).
    optional: a keyword array (``weight``, ``pos_weight``): passed only when
        ``Case.make(..., weighted=True)``.
    """

    name: str
    values: Callable
    shape: str = "input"
    optional: bool = False
    index_dtype: object = None  # class indices of this dtype (values() gives u in [0, 1) per index)
    ignore: int = -100  # the index a negative u becomes (ignore_index; -1 ends a multilabel target row)


@dataclasses.dataclass(frozen=True)
class Case:
    """How the tests exercise one loss (any number of array arguments).

    kind: "elementwise" — every generic test of test_matrix.py,
        test_errors.py, test_determinism.py, test_accuracy.py, test_torch.py
        and test_fuzz.py applies; "classification" — a class-axis loss on the
        row-wise driver: test_classification.py's tests apply (input shapes
        (C), (N, C), (N, C, d1..dk), class-index targets of any width).
    args: the array arguments (:class:`Arg`), torch's positional ones first,
        in torch's order, then the optional keyword ones.
    option_sets: option dicts (besides ``reduction``) to sweep, chosen so the
        'grid' data hit each option's kinks. ``heavy`` is the subset the
        expensive tests (sizes, layouts, threads, ISAs) sweep: the default
        options and the one that changes the kernel most.
    bad_options: ``(options, exception, argument name)`` that must raise.
    reductions: the reductions the loss takes (kl_div adds 'batchmean').
    warns: torch warns ("Using a target size ...") when ``target``'s shape
        differs from ``input``'s (the regression losses), so fastloss does.
    fast_path: plain calls run in C++ (``_core.elementwise``): test_fast_path.
    value_scale / grad_scales: ``f(arrays as float64 broadcast to the loss's
        shape, options) -> |terms|`` per element: the magnitude of the terms
        a value (each gradient) is a difference of, when they can cancel
        (``exp(x) - t*x``): a float32 result then carries an absolute error
        of ``rtol * |terms|``, not a relative one. None: no cancellation.
    tolerance: per-dtype ``(rtol, atol)`` overriding :data:`TOLERANCE`.
    shape_errors: ``({argument: shape}, argument named)``: shapes that must
        raise ValueError naming that argument (input is (3, 4)).
    stable: computed stably where torch overflows (soft margin, pytorch
        #77529): where torch's result is not finite, compare with the
        reference instead.
    shapes: the input shapes test_classification.py sweeps (those the loss takes).
    fma_math: the functor's float32 math uses math.h's loss_* variants
        (fused multiply-adds on avx2/avx512, separate ones on baseline):
        float32 results may differ by a few ulp between baseline and the FMA
        levels (avx2 and avx512 still agree bitwise).
    oracle: what the loss is checked against besides the reference:
        "torch" (``torch.nn.functional.<name>``, test_torch.py and friends),
        else the outside definition it follows (a loss torch.nn does not
        have; tests/test_beyond_torch.py).
    """

    name: str
    args: tuple
    option_sets: tuple = ({},)
    heavy: tuple = ({},)
    bad_options: tuple = ()
    reductions: tuple = ("none", "mean", "sum")
    warns: bool = False
    fast_path: bool = False
    value_scale: Callable | None = None
    grad_scales: Callable | None = None
    tolerance: dict = dataclasses.field(default_factory=dict)
    shape_errors: tuple = ()
    stable: bool = False
    fma_math: bool = False
    kind: str = "elementwise"
    shapes: tuple = ((5,), (7, 5), (1, 1), (4, 6, 3, 2), (2, 3, 37), (3, 2000), (2, 4, 0), (0, 3))  # classification
    oracle: str = "torch"

    @property
    def spec(self):
        return REGISTRY[self.name]

    @property
    def weighted(self):
        """Accepts ``weight=``."""
        return "weight" in self.spec.options

    @property
    def optional(self):
        return tuple(a.name for a in self.args if a.optional)

    @property
    def primary(self):
        """The first array argument (``input``; ``input1`` for margin ranking)."""
        return self.spec.arrays[0]

    @property
    def grad_names(self):
        return self.spec.grads

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

    def make(self, rng, shape, dtype, *, values="normal", target_shape=None, target_dtype=None, weighted=False,
             shapes=None):
        """``{argument: array}`` for this loss in torch's order: every array
        of ``shape`` and ``dtype`` (``target``: ``target_shape`` /
        ``target_dtype`` when given; ``shapes`` overrides any), values of
        ``values``' kind that the loss accepts; the optional keyword arrays
        (weight, pos_weight) when ``weighted`` (True: all of them; or a
        collection of names)."""
        shape = tuple(shape)
        shapes = dict(shapes or {})
        wanted = set(self.optional) if weighted is True else set(weighted or ())
        arrays = {}
        for arg in self.args:
            if arg.optional and arg.name not in wanted:
                continue
            if arg.name in shapes:
                s = tuple(shapes[arg.name])
            elif arg.shape == "target" and target_shape is not None:
                s = tuple(target_shape)
            elif arg.shape == "last":
                s = shape[-1:]
            elif arg.shape == "rows":  # input's shape without the class axis (axis 1; axis 0 of a 1-D input)
                s = () if len(shape) == 1 else shape[:1] + shape[2:]
            elif arg.shape == "classes":  # one value per class
                s = shape[:1] if len(shape) == 1 else shape[1:2]
            else:
                s = shape
            d = target_dtype if arg.name == "target" and target_dtype is not None else dtype
            if arg.index_dtype is not None:  # class indices: values() gives u in [0, 1), or -1 for "ignore"
                u = arg.values(rng, s, values)
                classes = (shape[0] if len(shape) == 1 else shape[1]) if shape else 1
                d = target_dtype if target_dtype is not None else arg.index_dtype
                arrays[arg.name] = np.where(u < 0, arg.ignore, np.floor(u * classes)).astype(d)
                continue
            arrays[arg.name] = _cast(arg.values(rng, s, values), d)
        return arrays

    def split(self, arrays):
        """``(positional arrays in torch's order, keyword arrays)``."""
        positional = tuple(arrays[n] for n in self.spec.arrays)
        keyword = {k: v for k, v in arrays.items() if k not in self.spec.arrays}
        return positional, keyword

    def call(self, fn, arrays, **options):
        """Calls ``fn`` with the arrays (positional in torch's order, the rest
        as keywords), expecting torch's size-mismatch warning where it applies."""
        positional, keyword = self.split(arrays)
        with mismatch_warning(arrays) if self.warns else contextlib.nullcontext():
            return fn(*positional, **keyword, **options)

    def grads(self, result):
        """A backward result as a tuple, one entry per differentiable argument."""
        return result if len(self.grad_names) > 1 else (result,)

    def expected(self, arrays, **options):
        """The float64 reference value for ``arrays``."""
        positional, keyword = self.split(arrays)
        return self.reference(*positional, **keyword, **options)

    def expected_grad(self, arrays, **options):
        positional, keyword = self.split(arrays)
        return self.reference_backward(*positional, **keyword, **options)

    def expected_grads(self, arrays, **options):
        return self.grads(self.expected_grad(arrays, **options))

    def loss_shape(self, arrays, **options):
        """The shape of the unreduced loss (the reference's)."""
        return np.shape(self.expected(arrays, **{**options, "reduction": "none"}))

    def accepts(self, arrays, **options):
        """Whether the reference takes these arrays (shapes and values)."""
        try:
            with np.errstate(all="ignore"):
                self.expected(arrays, **options)
        except ValueError:
            return False
        return True

    def expand(self, name, a, full, arrays):
        """``a`` (argument ``name``) broadcast to the loss's shape ``full``,
        as the loss broadcasts it (a per-row ``var`` gains its last dimension)."""
        a = np.asarray(a)
        if name == "var" and a.shape != np.shape(arrays["input"]) and a.shape == np.shape(arrays["input"])[:-1]:
            a = a[..., np.newaxis]
        return np.broadcast_to(a, full)

    def reduce_to(self, name, a, arrays):
        """A loss-shaped array summed down to argument ``name``'s shape."""
        shape = np.shape(arrays[name])
        row = name == "var" and shape != np.shape(arrays["input"]) and shape == np.shape(arrays["input"])[:-1]
        target = shape + (1,) if row else shape
        lead = a.ndim - len(target)
        a = a.sum(axis=tuple(range(lead)))
        axes = tuple(i for i, n in enumerate(target) if n == 1 and a.shape[i] != 1)
        return a.sum(axis=axes, keepdims=True).reshape(shape)

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
    with np.errstate(over="ignore"):
        return np.asarray(values).astype(dtype)


def _mixed(normal, grid, specials=()):
    """Values for one argument: ``normal(rng, shape)``, a ``grid`` (values
    exact in every dtype) or the grid with a quarter of ``specials``."""

    def values(rng, shape, kind):
        if kind == "normal":
            return np.asarray(normal(rng, shape), np.float64)
        g = rng.choice(np.asarray(grid, np.float64), size=shape)
        if kind == "grid" or not len(specials):
            return g
        return np.where(rng.random(shape) < 0.25, rng.choice(np.asarray(specials, np.float64), size=shape), g)

    return values


def _real(rng, shape, kind):
    return sample_values(rng, shape, kind)


def _positive_weight(rng, shape, kind):
    # Positive weights (sum(w) is a divisor); multiples of 1/8 are exact in
    # every dtype for grid data.
    return rng.integers(1, 17, size=shape) / 8.0 if kind != "normal" else rng.uniform(0.1, 2.0, shape)


UNIT_GRID = np.arange(9) / 8.0  # 0 and 1 included: BCE's clamp at -100
SIGNS_GRID = [-1.0, 1.0, -1.0, 1.0, 0.0, 0.5, 2.0, -2.0]  # other targets too: torch's formulas apply to any

_unit = _mixed(lambda r, s: r.uniform(0.02, 0.98, s), UNIT_GRID, [0.0, 1.0])
_unit_target = _mixed(lambda r, s: r.uniform(0.0, 1.0, s), UNIT_GRID, [0.0, 1.0])
_logits = _mixed(lambda r, s: r.normal(0.0, 4.0, s), np.arange(-16, 17) / 4.0,
                 [np.nan, np.inf, -np.inf, 120.0, -120.0, 1e4, -1e4, 0.0, -0.0])
_signs = _mixed(lambda r, s: np.where(r.random(s) < 0.5, -1.0, 1.0), SIGNS_GRID, [np.nan, 1.0, -1.0])
_margin_input = _mixed(lambda r, s: r.normal(0.0, 3.0, s), np.arange(-8, 9) / 4.0,
                       [np.nan, np.inf, -np.inf, 100.0, -100.0, 1e4, -1e4, -0.0])
_counts = _mixed(lambda r, s: r.poisson(2.0, s), [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0],
                 [np.nan, np.inf, 0.0, -0.0, 1.0, 100.0])
_rates = _mixed(lambda r, s: r.uniform(0.05, 3.0, s), np.arange(-8, 13) / 4.0,
                [np.nan, np.inf, -np.inf, 0.0, -0.0, 30.0, -0.5])
_variances = _mixed(lambda r, s: r.uniform(0.1, 2.0, s), [0.0, 0.125, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0],
                    [np.nan, np.inf, 0.0, -0.0, 1e-9, 1e-6])
_log_probs = _mixed(lambda r, s: np.log(r.uniform(0.01, 1.0, s)), np.arange(-12, 1) / 4.0,
                    [np.nan, -np.inf, np.inf, 0.0, -0.0])
_probs = _mixed(lambda r, s: r.uniform(0.0, 1.0, s), UNIT_GRID, [np.nan, np.inf, 0.0, -0.0, 1.0])


# Term magnitudes where a float32 result is a difference of larger terms.
def _bce_logits_value(a, o):
    x, t = a["input"], a["target"]
    lw = 1.0 + (a["pos_weight"] - 1.0) * t if "pos_weight" in a else 1.0
    w = np.abs(a["weight"]) if "weight" in a else 1.0
    return w * (np.abs((1 - t) * x) + np.abs(lw) * (np.abs(np.minimum(x, 0)) + np.log1p(np.exp(-np.abs(x)))))


def _bce_logits_grad(a, o):
    t = a["target"]
    pt = a["pos_weight"] * t if "pos_weight" in a else t
    w = np.abs(a["weight"]) if "weight" in a else 1.0
    return (w * (np.abs(pt + 1 - t) + np.abs(pt)),)


def _poisson_value(a, o):
    x, t = a["input"], a["target"]
    if o.get("log_input", True):
        s = np.exp(x) + np.abs(t * x)
    else:
        s = np.abs(x) + np.abs(t * np.log(np.abs(x + o.get("eps", 1e-8))))
    if o.get("full", False):
        s = s + np.abs(t * np.log(np.abs(t))) + np.abs(t) + np.abs(0.5 * np.log(np.abs(2 * np.pi * t)))
    return s


def _poisson_grad(a, o):
    x, t = a["input"], a["target"]
    if o.get("log_input", True):
        return (np.exp(x) + np.abs(t),)
    return (1.0 + np.abs(t / (x + o.get("eps", 1e-8))),)


def _gaussian_value(a, o):
    v = np.maximum(a["var"], o.get("eps", 1e-6))
    return 0.5 * (np.abs(np.log(v)) + (a["input"] - a["target"]) ** 2 / v) + 1.0


def _gaussian_grad(a, o):
    v = np.maximum(a["var"], o.get("eps", 1e-6))
    return (np.zeros_like(v), 0.5 * (1 / v + (a["input"] - a["target"]) ** 2 / v**2))


def _kl_value(a, o):
    x, t = a["input"], a["target"]
    if o.get("log_target", False):
        return np.exp(t) * (np.abs(t) + np.abs(x))
    return np.abs(np.where(t == 0, 0.0, t * np.log(np.abs(t)))) + np.abs(t * x)


def _hinge_value(a, o):
    return abs(o.get("margin", 1.0)) + 2 * np.abs(a["input"])


def _ranking_value(a, o):
    return np.abs(a["target"]) * (np.abs(a["input1"]) + np.abs(a["input2"])) + abs(o.get("margin", 0.0))


def _embedding_values(rng, shape, kind):
    """Feature rows: 'grid' values repeat across rows and operands (equal
    rows, zero differences, distance ties); 'special' adds NaN/inf."""
    return sample_values(rng, shape, kind)


_plus_minus_one = _mixed(lambda r, s: np.where(r.random(s) < 0.5, -1.0, 1.0), [-1.0, 1.0])

IGNORE_INDEX = -100  # torch's default ignore_index: _class_u's -1 entries become it


def _class_u(rng, shape, kind):
    """Class-index draws: u in [0, 1) (Case.make scales by the class count);
    'special' makes about one in eight of them ignore_index (-1 here)."""
    u = rng.random(shape)
    if kind == "special":
        u = np.where(rng.random(shape) < 0.125, -1.0, u)
    return u


def _class_u_plain(rng, shape, kind):
    """Class-index draws without ignored entries (losses without ignore_index)."""
    return rng.random(shape)


def _logits_rows(rng, shape, kind):
    return sample_values(rng, shape, kind) * (2.0 if kind == "normal" else 1.0)


def _log_prob_rows(rng, shape, kind):
    x = sample_values(rng, shape, kind)
    if kind == "special":
        return x
    axis = 0 if len(shape) == 1 else 1
    if not shape or 0 in shape:
        return x
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
def _focal_grad(a, o):
    """|terms| of the focal gradient a_t q^gamma ((A - B) + gamma ce r)."""
    x, t = a["input"], a["target"]
    alpha, gamma = o.get("alpha", 0.25), o.get("gamma", 2.0)
    p, p_neg = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
    q = p * (1 - t) + p_neg * t
    ce = np.logaddexp(0, x) - t * x
    a_t = np.abs(alpha * t + (1 - alpha) * (1 - t)) if alpha >= 0 else 1.0
    r = np.where(q == 0, 0.0, p * p_neg * np.abs(1 - 2 * t) / np.where(q == 0, 1.0, np.abs(q)))
    return (a_t * np.abs(q) ** gamma * (np.abs(p * (1 - t)) + np.abs(p_neg * t) + gamma * np.abs(ce) * r),)


def _jsd_parts(a, o):
    x, t = a["input"], a["target"]
    beta = o.get("beta", 0.5)
    p, log_p = (np.exp(t), t) if o.get("log_target", True) else (t, np.log(np.abs(t)))
    q = np.exp(x)
    log_m = np.log(np.abs(beta * p + (1 - beta) * q))
    return beta, np.abs(p), np.abs(log_p), q, np.abs(x), np.abs(log_m)


def _jsd_value(a, o):
    beta, p, log_p, q, x, log_m = _jsd_parts(a, o)
    if beta == 0:
        return p * (log_p + x)
    if beta == 1:
        return q * (x + log_p)
    return beta * p * (log_p + log_m) + (1 - beta) * q * (x + log_m)


def _jsd_grad(a, o):
    beta, p, log_p, q, x, log_m = _jsd_parts(a, o)
    if beta == 0:
        return (np.zeros_like(p),)
    if beta == 1:
        return (q * (x + log_p + 1),)
    return ((1 - beta) * q * (x + log_m),)


def _regression(name, option_sets=({},), heavy=({},), bad_options=(), weighted=True):
    args = (Arg("input", _real), Arg("target", _real, "target"))
    if weighted:
        args += (Arg("weight", _positive_weight, optional=True),)
    # torch: 'Weights and input must have the same size.' — broadcastable is not enough.
    # ... nor is the loss's shape when target broadcasts input to it.
    shape_errors = tuple(({"weight": s}, "weight") for s in ((4, 3), (12,), (1, 4), (3, 1), (), (2, 3, 4), (3, 4, 1))
                         ) + (({"input": (4,), "target": (3, 4), "weight": (3, 4)}, "weight"),) if weighted else ()
    return Case(name, args, option_sets, heavy, bad_options, warns=True, fast_path=True, shape_errors=shape_errors)


def _softmax_row_value(a, o):
    """|terms| of a softmax row's loss (x_y - max - log S, log S rounded in
    any summation order): (max |x| + log C + 1) times the row's factors."""
    x = np.asarray(a["input"], np.float64)
    x = x[np.newaxis] if x.ndim == 1 else np.moveaxis(x, 1, -1)
    with np.errstate(invalid="ignore"):
        rows = np.nan_to_num(np.abs(x).max(axis=-1, initial=0), posinf=0.0) + np.log(max(x.shape[-1], 1)) + 1
    w = np.abs(np.asarray(a.get("weight", 1.0), np.float64)).max(initial=1.0)
    factor = w * (1 + abs(o.get("epsilon", 0.0))) * max(1.0, abs(o.get("alpha", 1.0)))
    shape = np.shape(a["input"])
    return (rows * factor).reshape(() if len(shape) == 1 else shape[:1] + shape[2:])


_REAL_BAD = lambda n: (({n: "1"}, TypeError, n), ({n: None}, TypeError, n), ({n: 1j}, TypeError, n))  # noqa: E731
_FINITE_BAD = lambda n: (({n: float("nan")}, ValueError, n), ({n: float("inf")}, ValueError, n),  # noqa: E731
                         ({n: -float("inf")}, ValueError, n))
_UNIT_BAD = lambda n: (({n: -0.125}, ValueError, n), ({n: 1.5}, ValueError, n),  # noqa: E731
                       ({n: float("nan")}, ValueError, n))
# Binary labels and soft targets in [0, 1] (focal loss).
_labels = _mixed(lambda r, s: np.where(r.random(s) < 0.5, (r.random(s) < 0.3) * 1.0, r.uniform(0.0, 1.0, s)),
                 UNIT_GRID, [0.0, 1.0])
# Probabilities, which are also log-probabilities (of P in [1, e]): valid for
# both log_target settings; -inf too (a zero probability in log space).
_jsd_target = _mixed(lambda r, s: r.uniform(0.0, 1.0, s), UNIT_GRID, [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0])
_BOOL_BAD = lambda n: (({n: 1}, TypeError, n), ({n: None}, TypeError, n), ({n: "True"}, TypeError, n))  # noqa: E731

# ------------------------------------------------------------------- table

CASES = {
    c.name: c
    for c in (
        _regression("l1_loss"),
        _regression("mse_loss"),
        _regression(
            "smooth_l1_loss",
            ({}, {"beta": 0.0}, {"beta": 0.5}, {"beta": 2.0}),
            ({}, {"beta": 0.0}),
            (({"beta": -1.0}, ValueError, "beta"), ({"beta": -1e-300}, ValueError, "beta"),
             ({"beta": "1"}, TypeError, "beta"), ({"beta": None}, TypeError, "beta"),
             ({"beta": 1j}, TypeError, "beta")),
            weighted=False,
        ),
        _regression(
            "huber_loss",
            ({}, {"delta": 0.5}, {"delta": 2.0}),
            ({}, {"delta": 0.5}),
            (({"delta": 0.0}, ValueError, "delta"), ({"delta": -1.0}, ValueError, "delta"),
             ({"delta": float("nan")}, ValueError, "delta"), ({"delta": "1"}, TypeError, "delta"),
             ({"delta": None}, TypeError, "delta")),
        ),
        Case(
            "binary_cross_entropy",
            (Arg("input", _unit), Arg("target", _unit_target, "target"),
             Arg("weight", _positive_weight, optional=True)),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (1, 4)}, "target"),
                          ({"weight": (3,)}, "weight"), ({"weight": (2, 3, 4)}, "weight"),
                          ({"weight": (1, 3, 4)}, "weight")),
            fma_math=True,
        ),
        Case(
            "binary_cross_entropy_with_logits",
            (Arg("input", _logits), Arg("target", _unit_target, "target"),
             Arg("weight", _positive_weight, optional=True), Arg("pos_weight", _positive_weight, "last", True)),
            value_scale=_bce_logits_value, grad_scales=_bce_logits_grad,
            shape_errors=(({"target": (4,)}, "target"), ({"pos_weight": (3,)}, "pos_weight"),
                          ({"pos_weight": (1, 3, 4)}, "pos_weight"), ({"pos_weight": (0,)}, "pos_weight"),
                          ({"weight": (4, 3)}, "weight")),
            fma_math=True,
        ),
        Case(
            "soft_margin_loss",
            (Arg("input", _margin_input), Arg("target", _signs, "target")),
            shape_errors=(({"target": (2, 3, 4)}, "target"), ({"target": (3, 3)}, "target")),
            stable=True,
            fma_math=True,
        ),
        Case(
            "poisson_nll_loss",
            (Arg("input", _rates), Arg("target", _counts, "target")),
            # (eps off the grid: x + eps == 0 exactly is test_torch_losses.py's)
            tuple({"log_input": li, "full": fu, **e} for li in (True, False) for fu in (False, True)
                  for e in ({}, {"eps": 0.3})),
            ({}, {"log_input": False, "full": True}),
            (*_BOOL_BAD("log_input"), *_BOOL_BAD("full"), *_REAL_BAD("eps")),
            value_scale=_poisson_value, grad_scales=_poisson_grad,
            shape_errors=(({"target": (5,)}, "target"),),
            fma_math=True,
        ),
        Case(
            "gaussian_nll_loss",
            (Arg("input", _real), Arg("target", _real, "target"), Arg("var", _variances)),
            ({}, {"full": True}, {"eps": 0.25}, {"full": True, "eps": 0.5}),
            ({}, {"full": True, "eps": 0.5}),
            (*_BOOL_BAD("full"), *_REAL_BAD("eps")),
            value_scale=_gaussian_value, grad_scales=_gaussian_grad,
            shape_errors=(({"var": (4,)}, "var"), ({"var": (1, 1)}, "var"), ({"var": ()}, "var"),
                          ({"var": (3, 4, 1)}, "var"), ({"target": (5,)}, "target")),
            fma_math=True,
        ),
        Case(
            "kl_div",
            (Arg("input", _log_probs), Arg("target", _probs, "target")),
            ({}, {"log_target": True}),
            ({}, {"log_target": True}),
            _BOOL_BAD("log_target"),
            reductions=("none", "mean", "sum", "batchmean"),
            value_scale=_kl_value,
            shape_errors=(({"target": (5,)}, "target"),),
            fma_math=True,
        ),
        Case(
            "hinge_embedding_loss",
            (Arg("input", _margin_input), Arg("target", _signs, "target")),
            ({}, {"margin": 0.0}, {"margin": -0.5}, {"margin": 2.0}),
            ({}, {"margin": -0.5}),
            _REAL_BAD("margin"),
            value_scale=_hinge_value,
            shape_errors=(({"target": (5,)}, "target"),),
        ),
        Case(
            "cross_entropy",
            (Arg("input", _logits_rows), Arg("target", _class_u, "rows", index_dtype=np.int64),
             Arg("weight", _positive_weight, "classes", True)),
            ({}, {"label_smoothing": 0.2}, {"ignore_index": 1}, {"label_smoothing": 1.0},
             # beyond torch (its peer: Liger-Kernel's definition in torch ops, BEYOND_TORCH_OPTIONS)
             {"z_loss": 0.01}, {"softcap": 2.5}, {"z_loss": 0.05, "softcap": 1.5, "label_smoothing": 0.2},
             {"z_loss": -0.5, "ignore_index": 1}),
            ({}, {"label_smoothing": 0.2}),
            (({"label_smoothing": 1.5}, ValueError, "label_smoothing"), *_REAL_BAD("label_smoothing"),
             *_REAL_BAD("z_loss"), *_FINITE_BAD("z_loss"), *_FINITE_BAD("softcap"),
             ({"softcap": 0.0}, ValueError, "softcap"), ({"softcap": -1.0}, ValueError, "softcap"),
             ({"softcap": "1"}, TypeError, "softcap"),
             ({"ignore_index": 1.0}, TypeError, "ignore_index"), ({"ignore_index": None}, TypeError, "ignore_index"),
             ({"ignore_index": 2**63}, ValueError, "ignore_index")),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"weight": (3,)}, "weight"),
                          ({"weight": (1, 4)}, "weight")),
            kind="classification",
            fma_math=True,
            shapes=((5,), (7, 5), (1, 1), (4, 6, 3, 2), (2, 3, 37), (3, 2000), (2, 4, 0), (0, 3)),
        ),
        Case(
            "nll_loss",
            (Arg("input", _log_prob_rows), Arg("target", _class_u, "rows", index_dtype=np.int64),
             Arg("weight", _positive_weight, "classes", True)),
            ({}, {"ignore_index": 0}),
            ({},),
            (({"ignore_index": 1.0}, TypeError, "ignore_index"), ({"ignore_index": "1"}, TypeError, "ignore_index")),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"weight": (5,)}, "weight")),
            kind="classification",
        ),
        Case(
            "multilabel_soft_margin_loss",
            (Arg("input", _logits_rows), Arg("target", _unit_target), Arg("weight", _positive_weight, "last", True)),
            shape_errors=(({"target": (3, 5)}, "target"), ({"target": (4,)}, "target"), ({"weight": (3,)}, "weight")),
            kind="classification",
            fma_math=True,
            shapes=((5,), (7, 5), (1, 1), (2, 3, 37), (3, 2000), (0, 3)),
        ),
        Case(
            "multi_margin_loss",
            (Arg("input", _logits_rows), Arg("target", _class_u_plain, "rows", index_dtype=np.int64),
             Arg("weight", _positive_weight, "classes", True)),
            ({}, {"p": 2}, {"margin": 0.5}, {"p": 2, "margin": -0.25}),
            ({}, {"p": 2}),
            (({"p": 3}, ValueError, "p"), ({"p": "1"}, TypeError, "p"), *_REAL_BAD("margin")),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"weight": (1, 4)}, "weight"),
                          ({"input": (3, 4, 2), "target": (3,)}, "input")),
            kind="classification",
            shapes=((5,), (7, 5), (1, 1), (3, 2000), (0, 3)),
        ),
        Case(
            "multilabel_margin_loss",
            (Arg("input", _logits_rows), Arg("target", _class_u, index_dtype=np.int64, ignore=-1)),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 5)}, "target"),
                          ({"input": (3, 4, 2), "target": (3, 4, 2)}, "input")),
            kind="classification",
            shapes=((5,), (7, 5), (1, 1), (3, 200), (0, 3)),
        ),
        Case(
            "cosine_embedding_loss",
            (Arg("input1", _embedding_values), Arg("input2", _embedding_values), Arg("target", _plus_minus_one, "rows")),
            ({}, {"margin": 0.5}, {"margin": -0.25}),
            ({}, {"margin": 0.5}),
            _REAL_BAD("margin"),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"input2": (3, 5)}, "input2"),
                          ({"input2": (4,)}, "input2"), ({"input1": (3, 4, 2), "input2": (3, 4, 2)}, "input1")),
            kind="embedding",
            shapes=((5,), (7, 5), (1, 1), (3, 2000), (0, 3), (3, 0)),
        ),
        Case(
            "triplet_margin_loss",
            (Arg("anchor", _embedding_values), Arg("positive", _embedding_values), Arg("negative", _embedding_values)),
            ({}, {"swap": True}, {"p": 1.0}, {"p": 1.0, "swap": True}, {"p": 3.0}, {"p": 1.5, "eps": 0.0},
             {"p": 0.5}, {"p": float("inf")}, {"margin": 0.25, "eps": 1e-3}),
            ({}, {"p": 1.0, "swap": True}),
            (({"margin": 0.0}, ValueError, "margin"), ({"margin": -1.0}, ValueError, "margin"),
             ({"p": 0.0}, ValueError, "p"), ({"p": -2.0}, ValueError, "p"), ({"swap": 1}, TypeError, "swap"),
             *_REAL_BAD("eps"), *_REAL_BAD("p")),
            shape_errors=(({"positive": (4,)}, "positive"), ({"negative": (3, 5)}, "negative"),
                          ({"negative": (2, 3, 4)}, "negative")),
            kind="embedding",
        ),
        Case(
            "triplet_margin_with_distance_loss",
            (Arg("anchor", _embedding_values), Arg("positive", _embedding_values), Arg("negative", _embedding_values)),
            # (distance_function=fastloss.cosine_distance and partials: tests/test_embedding.py;
            # torch's own function takes only torch callables)
            ({}, {"swap": True}, {"margin": 0.25}),
            ({}, {"swap": True}),
            (({"margin": 0.0}, ValueError, "margin"), ({"swap": 1}, TypeError, "swap"),
             ({"distance_function": 3}, TypeError, "distance_function")),
            shape_errors=(({"positive": (4,)}, "positive"), ({"negative": (3, 5)}, "negative")),
            kind="embedding",
        ),
        Case(
            "margin_ranking_loss",
            (Arg("input1", _margin_input), Arg("input2", _margin_input), Arg("target", _signs, "target")),
            ({}, {"margin": 0.5}, {"margin": -0.25}),
            ({}, {"margin": 0.5}),
            _REAL_BAD("margin"),
            value_scale=_ranking_value,
            shape_errors=(({"target": (4,)}, "target"), ({"input2": (4,)}, "input2"),
                          ({"input2": (5, 4)}, "input2")),
        ),
        # ---- beyond torch.nn: checked against their own oracles (test_beyond_torch.py)
        Case(
            "sigmoid_focal_loss",
            (Arg("input", _logits), Arg("target", _labels, "target")),
            ({}, {"gamma": 0.0}, {"gamma": 0.5}, {"gamma": 1.0, "alpha": -1.0}, {"alpha": 0.75, "gamma": 3.0},
             {"gamma": 1.5, "alpha": 0.0}),
            ({}, {"gamma": 0.5}),
            (*_REAL_BAD("alpha"), *_FINITE_BAD("alpha"), *_REAL_BAD("gamma"), *_FINITE_BAD("gamma"),
             ({"gamma": -0.5}, ValueError, "gamma")),
            grad_scales=_focal_grad,
            shape_errors=(({"target": (4,)}, "target"), ({"target": (1, 4)}, "target")),
            fma_math=True,
            oracle="torchvision",
        ),
        Case(
            "log_cosh_loss",
            (Arg("input", _real), Arg("target", _real, "target")),
            shape_errors=(({"target": (5,)}, "target"),),
            fma_math=True,
            oracle="optax",
        ),
        Case(
            "pinball_loss",
            (Arg("input", _real), Arg("target", _real, "target"), Arg("weight", _positive_weight, optional=True)),
            ({}, {"quantile": 0.1}, {"quantile": 0.9}, {"quantile": 0.0}, {"quantile": 1.0}),
            ({}, {"quantile": 0.9}),
            (*_REAL_BAD("quantile"), *_UNIT_BAD("quantile")),
            shape_errors=(({"target": (5,)}, "target"), ({"weight": (4, 3)}, "weight"),
                          ({"weight": (2, 3, 4)}, "weight")),
            oracle="scikit-learn",
        ),
        Case(
            "jensen_shannon_divergence",
            (Arg("input", _log_probs), Arg("target", _jsd_target, "target")),
            ({}, {"beta": 0.0}, {"beta": 1.0}, {"beta": 0.25}, {"log_target": False},
             {"log_target": False, "beta": 0.0}, {"log_target": False, "beta": 1.0}, {"log_target": False, "beta": 0.9}),
            ({}, {"log_target": False, "beta": 0.0}),
            (*_REAL_BAD("beta"), *_UNIT_BAD("beta"), *_BOOL_BAD("log_target")),
            reductions=("none", "mean", "sum", "batchmean"),
            value_scale=_jsd_value, grad_scales=_jsd_grad,
            shape_errors=(({"target": (5,)}, "target"),),
            fma_math=True,
            oracle="Liger-Kernel",
        ),
        Case(
            "poly1_cross_entropy",
            (Arg("input", _logits_rows), Arg("target", _class_u, "rows", index_dtype=np.int64),
             Arg("weight", _positive_weight, "classes", True)),
            ({}, {"epsilon": 2.0}, {"epsilon": -0.5, "label_smoothing": 0.2}, {"ignore_index": 1},
             {"epsilon": 0.0}),
            ({}, {"epsilon": 2.0, "label_smoothing": 0.2}),
            (*_REAL_BAD("epsilon"), *_FINITE_BAD("epsilon"), ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
             ({"ignore_index": 1.0}, TypeError, "ignore_index")),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"weight": (3,)}, "weight")),
            value_scale=_softmax_row_value,
            kind="classification",
            fma_math=True,
            oracle="optax",
        ),
        Case(
            "softmax_focal_loss",
            (Arg("input", _logits_rows), Arg("target", _class_u, "rows", index_dtype=np.int64),
             Arg("weight", _positive_weight, "classes", True)),
            ({}, {"gamma": 0.0}, {"gamma": 0.5}, {"alpha": 0.25}, {"alpha": 0.75, "gamma": 3.0, "ignore_index": 1},
             {"gamma": 1.0, "ignore_index": 1}),
            ({}, {"alpha": 0.25, "gamma": 0.5}),
            (*_REAL_BAD("gamma"), *_FINITE_BAD("gamma"), ({"gamma": -1.0}, ValueError, "gamma"),
             *_FINITE_BAD("alpha"), ({"alpha": "1"}, TypeError, "alpha"), ({"alpha": [1.0, 2.0]}, ValueError, "alpha"),
             ({"ignore_index": 1.0}, TypeError, "ignore_index")),
            shape_errors=(({"target": (4,)}, "target"), ({"target": (3, 1)}, "target"), ({"weight": (3,)}, "weight")),
            value_scale=_softmax_row_value,
            kind="classification",
            fma_math=True,
            oracle="Keras",
        ),
        Case(
            "dice_loss",
            (Arg("input", _unit_target), Arg("target", _unit_target)),
            ({}, {"smooth": 1.0}, {"smooth": 0.5, "eps": 0.0}, {"eps": 1e-3}),
            ({}, {"smooth": 1.0}),
            (*_REAL_BAD("smooth"), *_FINITE_BAD("smooth"), *_REAL_BAD("eps"), *_FINITE_BAD("eps")),
            shape_errors=(({"target": (3, 5)}, "target"), ({"target": (4,)}, "target")),
            kind="classification",
            shapes=((5,), (7, 5), (1, 1), (4, 6, 3, 2), (2, 3, 37), (3, 2000), (0, 3)),
            oracle="Keras",
        ),
    )
}

# Options of a torch-oracle loss that torch's own function does not take
# (its peer then follows the outside definition named in the loss's docstring).
BEYOND_TORCH_OPTIONS = {"cross_entropy": ("z_loss", "softcap"), "linear_cross_entropy": ("z_loss", "softcap")}



@dataclasses.dataclass(frozen=True)
class SequenceCase(Case):
    """A sequence loss (CTC): its arrays come from the registry's sample()
    (a 2-tuple shape gives unbatched (T, C) data, an int an element budget);
    the element-wise matrix does not apply, tests/test_ctc.py tests it."""

    kind: str = "sequence"

    def make(self, rng, shape, dtype, *, values="normal", target_shape=None, target_dtype=None, weighted=False,
             shapes=None):
        size = tuple(shape) if len(tuple(shape)) == 2 else int(np.prod(shape))
        arrays, _ = self.spec.sample(rng, size, np.dtype(dtype) if np.dtype(dtype) != BFLOAT16 else np.float32)
        arrays = dict(zip(self.spec.arrays, arrays))
        if np.dtype(dtype) == BFLOAT16:
            arrays["log_probs"] = arrays["log_probs"].astype(BFLOAT16)
        return arrays


CASES["ctc_loss"] = SequenceCase("ctc_loss", (), option_sets=({}, {"zero_infinity": True}),
                                 bad_options=(({"blank": 1.5}, TypeError, "blank"), ({"blank": -1}, ValueError, "blank"),
                                              ({"zero_infinity": 1}, TypeError, "zero_infinity")))



@dataclasses.dataclass(frozen=True)
class LinearCase(Case):
    """linear_cross_entropy: a matrix product then cross entropy, with
    parameter operands (``linear_weight``, ``linear_bias``) that have no
    element-wise or class-axis layout; its arrays come from the registry's
    sample(), and tests/test_linear_cross_entropy.py tests it against torch
    (values, all three gradients, chunking, threads, memory, errors)."""

    kind: str = "linear"

    def make(self, rng, shape, dtype, *, values="normal", target_shape=None, target_dtype=None, weighted=False,
             shapes=None):
        arrays, _ = self.spec.sample(rng, int(np.prod(shape)) * 10, np.dtype(dtype))
        return dict(zip(self.spec.arrays, arrays))


CASES["linear_cross_entropy"] = LinearCase(
    "linear_cross_entropy", (), option_sets=({}, {"label_smoothing": 0.1}, {"ignore_index": 3},
                                             {"z_loss": 1e-3, "softcap": 5.0}),
    bad_options=(({"label_smoothing": 2.0}, ValueError, "label_smoothing"),
                 ({"chunk_size": 0}, ValueError, "chunk_size"),
                 ({"ignore_index": 1.5}, TypeError, "ignore_index")))

KNOWN_KINDS = {"elementwise", "classification", "sequence", "embedding", "linear"}
ELEMENTWISE = [c for c in CASES.values() if c.kind == "elementwise"]
CLASSIFICATION = [c for c in CASES.values() if c.kind == "classification"]
EMBEDDING = [c for c in CASES.values() if c.kind == "embedding"]


def case_options(cases, heavy=False):
    """``[(case, options)]`` for pytest.mark.parametrize, with readable ids;
    ``heavy``: only each case's ``heavy`` subset (expensive tests)."""
    return [
        pytest.param(c, o, id=c.name + ("" if not o else "-" + ",".join(f"{k}={v}" for k, v in o.items())))
        for c in cases
        for o in (c.heavy if heavy else c.option_sets)
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


def _reduction_factor(case, arrays, reduction, options, full):
    """d value / d sum(l) of a reduction: 1 ('sum', 'none'), 1 / count
    ('mean'; 1 / sum(w) for a weighted L1/MSE), 1 / batch ('batchmean')."""
    if reduction in ("none", "sum"):
        return 1.0
    with np.errstate(all="ignore"):
        ratio = float(case.expected(arrays, reduction=reduction, **options)
                      / case.expected(arrays, reduction="sum", **options))
    if np.isfinite(ratio) and ratio != 0:
        return abs(ratio)
    if reduction == "batchmean":
        shape = np.shape(arrays[case.primary])
        return 1.0 / shape[0] if shape and shape[0] else 1.0
    return 1.0 / max(1, math.prod(full))


def _full(case, arrays, options):
    """The arrays as float64, broadcast to the loss's shape."""
    full = case.loss_shape(arrays, **options)
    return full, {k: case.expand(k, as_float64(v), full, arrays) for k, v in arrays.items()}


def value_abs_scale(case, arrays, reduction, options):
    """The magnitude of the terms the value is a difference of (see
    ``Case.value_scale``), reduced as the loss is; None when they cannot cancel."""
    if case.value_scale is None:
        return None
    full, wide = _full(case, arrays, options)
    with np.errstate(all="ignore"):
        s = np.abs(case.value_scale(wide, options))
    s = np.broadcast_to(s, full)
    if reduction == "none":
        return s
    with np.errstate(over="ignore"):  # a sum beyond float64: no bound (assert_close ignores inf scales)
        total = np.sum(np.where(np.isfinite(s), s, 0.0))
    return total * _reduction_factor(case, arrays, reduction, options, full)


def grad_abs_scales(case, arrays, reduction, options, grad_output=None):
    """For each gradient (``case.grad_names``): the magnitude of the terms it
    is a sum of — the per-element gradients summed over the dimensions its
    argument was broadcast along (float32 terms may cancel), and the
    ``Case.grad_scales`` of each element — in the argument's shape, or None
    when neither applies."""
    full, wide = _full(case, arrays, options)
    broadcast = [np.shape(arrays[n]) != tuple(full) for n in case.grad_names]
    if case.grad_scales is None and not any(broadcast):
        return (None,) * len(case.grad_names)
    loss_shape = full if reduction == "none" else ()
    g = np.ones(loss_shape) if grad_output is None else np.abs(as_float64(grad_output))
    g = np.broadcast_to(g, full)
    factor = _reduction_factor(case, arrays, reduction, options, full)
    positional, keyword = case.split(wide)
    with np.errstate(all="ignore"):
        per_element = case.grads(case.reference_backward(*positional, reduction="none", grad_output=g, **keyword,
                                                         **options))
        extra = case.grad_scales(wide, options) if case.grad_scales is not None else (0.0,) * len(per_element)
    scales = []
    for name, pe, ex in zip(case.grad_names, per_element, extra):
        with np.errstate(all="ignore"):
            a = (np.abs(pe) + np.abs(ex) * g) * factor
        a = np.where(np.isfinite(a), a, 0.0)
        scales.append(case.reduce_to(name, np.broadcast_to(a, full), arrays))
    return tuple(scales)


def check_value(case, value, arrays, dtype, reduction, options, *, expected=None, tolerance=TOLERANCE, what=""):
    """The loss ``value`` against the reference (or ``expected``)."""
    if expected is None:
        expected = case.expected(arrays, reduction=reduction, **options)
    tolerance = {**tolerance, **case.tolerance} if tolerance is TOLERANCE else tolerance
    assert_close(value, expected, dtype, reduced=reduction != "none", tolerance=tolerance,
                 abs_scale=value_abs_scale(case, arrays, reduction, options), what=what or case.name)


def check_grads(case, grads, arrays, reduction, options, *, grad_output=None, expected=None, tolerance=TOLERANCE,
                what=""):
    """A backward result (one array or a tuple) against the reference (or
    ``expected``, a tuple): shape and dtype of each differentiable argument."""
    grads = case.grads(grads)
    if expected is None:
        expected = case.expected_grads(arrays, reduction=reduction, grad_output=grad_output, **options)
    scales = grad_abs_scales(case, arrays, reduction, options, grad_output)
    tolerance = {**tolerance, **case.tolerance} if tolerance is TOLERANCE else tolerance
    assert len(grads) == len(case.grad_names), what
    for name, g, e, s in zip(case.grad_names, grads, expected, scales):
        a = np.asarray(arrays[name])
        assert isinstance(g, np.ndarray), f"{what} grad {name}: {type(g)}"
        dtype = a.dtype if (a.dtype.kind == "f" or a.dtype == BFLOAT16) else result_dtype(a.dtype)
        assert g.shape == a.shape and g.dtype == dtype, f"{what} grad {name}: {g.shape}/{g.dtype} vs {a.shape}/{dtype}"
        assert_close(g, e, dtype, abs_scale=s, tolerance=tolerance, what=f"{what or case.name} grad {name}")


def fused_value_and_grad(name, arrays, dtype, grad_output, **options):
    """fastloss's fused value and gradient of ``name`` with its float arrays
    (and a non-scalar ``grad_output``) in ``dtype``; its separate forward and
    backward checked equal to it bitwise, and both results of ``dtype``."""
    arrays = [np.asarray(a).astype(dtype) if np.asarray(a).dtype.kind == "f" else a for a in arrays]
    go = np.asarray(grad_output).astype(dtype) if np.ndim(grad_output) else float(grad_output)
    value, grad = getattr(fastloss, name + "_value_and_grad")(*arrays, grad_output=go, **options)
    np.testing.assert_array_equal(getattr(fastloss, name)(*arrays, **options), value)
    np.testing.assert_array_equal(getattr(fastloss, name + "_backward")(*arrays, grad_output=go, **options), grad)
    assert np.asarray(value).dtype == dtype and grad.dtype == dtype
    return value, grad
