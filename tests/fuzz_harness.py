"""The hostile-input fuzzing harness (tests/test_fuzz.py runs it): for any
registered loss (``fastloss._api.REGISTRY``, whatever its number of arrays,
gradients and options; valid data from the case table, tests/cases.py), it
builds calls with what a careless or malicious caller can pass and checks
the contract of one call.

* Memory: every array lives in a buffer with guard bytes (:class:`Memory`),
  stored in a hostile :class:`Layout` (negative, zero, odd and unaligned
  strides, Fortran and permuted orders, byte-swapped, read-only) and handed
  over in a hostile form (subclass, memoryview, ``__array__``, ``__dlpack__``,
  list, scalar) by :func:`place`.
* Strategies: :func:`hostile_calls` (anything goes: every numpy dtype kind,
  0-d / empty / mismatched / up to 64-d shapes, non-arrays, options of the
  wrong type or value, ``grad_output`` and ``out=`` — tuples for several
  gradients — of every wrong kind) and :func:`valid_calls` (a valid call in
  hostile layouts, with the same call on contiguous copies).
* :func:`call_and_check` runs a :class:`Call` and checks: it either succeeds
  with a result of the documented shape and dtype (``out`` returned) and
  writes no byte of the caller's memory except ``out``'s elements, or raises
  exactly ValueError, TypeError or IndexError naming one of the function's
  arguments, having written nothing. Any other exception or warning (but
  torch's size-mismatch one) fails.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import warnings

import ml_dtypes
import numpy as np
from hypothesis import Phase, assume, note, settings
from hypothesis import strategies as st

import fastloss
import fastloss.nn
from fastloss import _core
from fastloss._api import REGISTRY

from cases import BFLOAT16, CASES, assert_identical, sample_values

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
KERNEL_FLOATS = (F32, F64, F16, BFLOAT16)
ALLOWED = (ValueError, TypeError, IndexError)
MODES = ("forward", "backward", "value_and_grad")
VIAS = ("functional", "nn")
# LinearCrossEntropyLoss holds parameters (constructed from in_features and
# num_classes, not from the function's options): its class is tested in
# tests/test_linear_cross_entropy.py, the fuzzers call its function.
FUNCTION_ONLY = frozenset({"linear_cross_entropy"})


def vias(spec):
    return ("functional",) if spec.name in FUNCTION_ONLY else VIAS
SPECS = sorted(REGISTRY)
ABSENT = type("Absent", (), {"__repr__": lambda self: "<not passed>"})()
GUARD = 64  # guard bytes on each side of every buffer an array lives in
MAX_ELEMENTS = 1 << 12  # per hostile array
MAX_BROADCAST = 1 << 20

HOSTILE_DTYPES = [np.dtype(d) for d in (
    bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble,
    object, "U5", "S5", "M8[ns]", "m8[s]", [("a", "<f4"), ("b", "<i2")], "V8",
    ">f2", ">f4", ">f8", ">i4", ">u2", ">c16",
    ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.int4,
)]

# Values a float array may be made of.
SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e-45, 65504.0,
                    65520.0, 3.3895314e38, 3.4028235e38, 3.5e38, 1e300, -1e300, 1.7976931348623157e308,
                    -1.7976931348623157e308, 2.0**63, 2.0**64, 1.0, -1.0, 0.5])
HUGE = np.array([65504.0, 1e5, 1e38, 3.4028235e38, 1e300, 1.7976931348623157e308])
VALUE_KINDS = ("normal", "grid", "special", "huge", "nan")


class Unconvertible:
    """np.asarray raises from inside __array__."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("refuses to be an array")

    def __repr__(self):
        return "Unconvertible()"


class BadSequence:
    """A sequence whose items cannot be read."""

    def __len__(self):
        return 3

    def __getitem__(self, i):
        raise KeyError(i)

    def __repr__(self):
        return "BadSequence()"


class Opaque:
    def __repr__(self):
        return "Opaque()"


NON_ARRAYS = [None, "abc", "", b"ab", 1.5, 7, True, 1j, 10**400, -(10**400), math.nan, [], [[]], [1.0, [2.0]],
              [[1.0, 2.0], [3.0]], ["a", 1.0], [None], {}, {"a": 1}, set(), Opaque(), Unconvertible(),
              BadSequence(), np.float32(1.5), np.longdouble(2), np.datetime64("2020-01-01"), np.complex64(1),
              slice(None), Ellipsis, range(3), np.array(Opaque()), np.array(None), np.array([], dtype=object)]

OPTION_VALUES = [None, True, False, 0, 1, -1, 2, 3, 10**400, -(10**400), 2**63, 2**64, 0.0, -0.0, 0.5, 1.0, 2.0,
                 -1.0, 1e-300, -1e-300, 5e-324, 1e308, -1e308, math.nan, math.inf, -math.inf, np.float32(0.5),
                 np.float16(np.nan), np.float64(-1.0), np.int64(-1), np.uint64(2**64 - 1), np.int8(3),
                 np.longdouble("1e4000"), np.longdouble(0.5), np.bool_(True), 1j, np.complex64(1), "mean", "sum",
                 "none", "batchmean", "bogus", "", "MEAN", "mean ", b"mean", np.str_("sum"), ["mean"], ("sum",), {},
                 Opaque(), Unconvertible(), np.array(1.0), np.array([1.0, 2.0]), np.array("mean"), -100, 10**6]
REDUCTIONS = ("none", "mean", "sum")


# ------------------------------------------------------------------ memory


class Memory:
    """Every buffer a call's arrays live in, with guard bytes, so any write
    (into an input, next to an array, or outside ``out``'s elements) shows."""

    def __init__(self):
        self.buffers = []
        self.objects = []  # (object, fingerprint function) for things without a buffer

    def new(self, nbytes, rng):
        buf = rng.integers(0, 256, size=nbytes + 2 * GUARD, dtype=np.uint8)
        self.buffers.append(buf)
        return buf

    def watch(self, obj, fingerprint):
        self.objects.append((obj, fingerprint))

    def snapshot(self):
        return [b.copy() for b in self.buffers], [fp(o) for o, fp in self.objects]

    def changes(self, snap):
        bufs, prints = snap
        out = []
        for i, (old, new) in enumerate(zip(bufs, self.buffers)):
            if not np.array_equal(old, new):
                where = np.flatnonzero(old != new)
                out.append(f"buffer {i}: {where.size} bytes changed, first at byte {where[0]} of {new.size}")
        for (obj, fp), old in zip(self.objects, prints):
            if fp(obj) != old:
                out.append(f"{type(obj).__name__} {obj!r:.80} changed")
        return out


def _object_fingerprint(arr):
    if arr.dtype.hasobject:
        return (arr.shape, [id(x) for x in arr.reshape(-1)])  # (.flat stops at 32 dimensions)
    return (arr.shape, arr.dtype.str, arr.tobytes())


# ------------------------------------------------------------------ arrays


class Sub(np.ndarray):
    """A plain ndarray subclass."""


class ArrayLike:
    """Only ``__array__`` (shares memory)."""

    def __init__(self, arr):
        self.arr = arr

    def __array__(self, dtype=None, copy=None):
        return self.arr if dtype is None else self.arr.astype(dtype)

    def __repr__(self):
        return f"ArrayLike({describe(self.arr)})"


class DLPackLike(ArrayLike):
    """``__dlpack__`` (zero-copy, as torch/JAX CPU arrays) and ``__array__``."""

    def __dlpack__(self, **kwargs):
        return self.arr.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.arr.__dlpack_device__()

    def __repr__(self):
        return f"DLPackLike({describe(self.arr)})"


def describe(obj):
    """One line about an argument, for the falsifying example."""
    if isinstance(obj, np.ndarray):
        return (f"{type(obj).__name__}(dtype={obj.dtype.str if obj.dtype.fields is None else obj.dtype}, "
                f"shape={obj.shape}, strides={obj.strides}, aligned={obj.flags.aligned}, "
                f"writeable={obj.flags.writeable}, data%16={obj.ctypes.data % 16})")
    if isinstance(obj, memoryview):
        return f"memoryview(format={obj.format!r}, shape={obj.shape}, strides={obj.strides})"
    if isinstance(obj, tuple) and any(isinstance(o, np.ndarray) for o in obj):
        return "(" + ", ".join(describe(o) for o in obj) + ")"
    text = repr(obj)
    return text if len(text) < 120 else text[:117] + "..."


def is_float(dtype):
    return (dtype.kind == "f" and dtype.itemsize in (2, 4, 8)) or dtype == BFLOAT16


def native(dtype):
    return dtype.newbyteorder("=") if dtype.kind in "biufcmM" else dtype


def values(rng, shape, kind):
    """float64 values of one kind: cases.sample_values' 'normal' and 'grid',
    plus a denser 'special' mix and 'huge' magnitudes."""
    if kind in ("normal", "grid"):
        return sample_values(rng, shape, kind)
    grid = sample_values(rng, shape, "grid")
    if kind == "special":
        return np.where(rng.random(shape) < 0.3, rng.choice(SPECIAL, size=shape), grid)
    if kind == "huge":
        return rng.choice(HUGE, size=shape) * rng.choice([1.0, -1.0], size=shape)
    return np.full(shape, np.nan)


def cast(vals, dtype):
    """float64 ``vals`` as an array of any ``dtype``."""
    vals = np.asarray(vals, np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype.fields is not None:
            out = np.zeros(vals.shape, dtype)
            out[dtype.names[0]] = vals
            return out
        if dtype.kind == "b":
            return vals > 0
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.clip(np.nan_to_num(vals), info.min, info.max).astype(dtype)
        if dtype.kind in "mM":
            return np.clip(np.nan_to_num(vals), -1e15, 1e15).astype(np.int64).astype(dtype)
        if dtype.kind == "c":
            return (vals + 0.5j).astype(dtype)
        if dtype.kind == "V" and dtype.names is None and dtype.name.startswith("void"):
            return np.zeros(vals.shape, dtype)
        return vals.astype(dtype)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How an array is stored (and handed over): ``order`` of the dimensions
    in memory, per-dimension ``steps`` (gaps), ``negative`` and ``zero``
    strides (cycled over the dimensions), ``pad`` bytes between elements (odd:
    unaligned strides), ``misalign`` of the data pointer, ``size1_stride`` for
    size-1 dimensions (0: the natural one), byte order, read-only, and the
    ``form`` the caller passes."""

    order: str = "C"
    steps: tuple = (1,)
    negative: tuple = (False,)
    zero: tuple = (False,)
    pad: int = 0
    misalign: int = 0
    size1_stride: int = 0
    byteswap: bool = False
    readonly: bool = False
    form: str = "ndarray"


CONTIGUOUS = Layout()
FORMS = ("ndarray", "ndarray", "ndarray", "subclass", "memoryview", "array_like", "dlpack")


def layouts(*, forms=FORMS, zero=True, readonly=True, byteswap=True):
    """Storage strategies; ``zero`` allows overlapping (stride-0) views."""
    flags = st.lists(st.booleans(), min_size=1, max_size=4).map(tuple)
    return st.builds(
        Layout,
        order=st.sampled_from(["C", "C", "F", "shuffle"]),
        steps=st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=1, max_size=4).map(tuple),
        negative=flags,
        zero=flags if zero else st.just((False,)),
        pad=st.sampled_from([0, 0, 0, 1, 3, 8]),
        misalign=st.sampled_from([0, 0, 0, 1, 2, 4]),
        size1_stride=st.sampled_from([0, 0, 1, 3, -7, 0x10000]),
        byteswap=st.booleans() if byteswap else st.just(False),
        readonly=st.booleans() if readonly else st.just(False),
        form=st.sampled_from(forms),
    )


@dataclasses.dataclass
class Arg:
    obj: object  # what the caller passes
    array: np.ndarray | None  # the memory it refers to (None: a Python value)
    numpy: np.ndarray | None  # numpy.asarray(obj), None if that fails

    def __repr__(self):
        return describe(self.obj)

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))


def as_numpy(obj):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(obj)
    except Exception:  # noqa: BLE001 - any object is fair game
        return None


def place(mem, rng, a, lay):
    """A copy of ``a`` stored as ``lay`` says (values may collapse where
    strides are 0), in a fresh guarded buffer of ``mem``."""
    dtype = a.dtype
    if lay.byteswap and dtype.kind in "biufcmM" and dtype.itemsize > 1:
        dtype = dtype.newbyteorder("S")
    if dtype.hasobject:
        arr = a.copy()
        if lay.negative[0] and arr.ndim:
            arr = arr[::-1]
        mem.watch(arr, _object_fingerprint)
    else:
        nd, itemsize = a.ndim, dtype.itemsize
        order = list(range(nd))  # outermost first
        if lay.order == "F":
            order.reverse()
        elif lay.order == "shuffle":
            rng.shuffle(order)
        for steps in (lay.steps, (1,)):  # gaps, unless they would need a huge buffer
            strides = [0] * nd
            acc = itemsize + lay.pad
            for d in reversed(order):
                n = a.shape[d]
                if n <= 1:  # never stepped over: any stride
                    strides[d] = lay.size1_stride or acc
                    continue
                if lay.zero[d % len(lay.zero)]:
                    continue
                mag = acc * steps[d % len(steps)]
                acc = mag * n
                strides[d] = -mag if lay.negative[d % len(lay.negative)] else mag
            lo = sum(min(0, (n - 1) * s) for n, s in zip(a.shape, strides) if n > 0)
            hi = sum(max(0, (n - 1) * s) for n, s in zip(a.shape, strides) if n > 0)
            if hi - lo <= 1 << 24:
                break
        buf = mem.new(hi - lo + itemsize + lay.misalign, rng)
        arr = np.ndarray(a.shape, dtype, buffer=buf, offset=GUARD + lay.misalign - lo, strides=strides)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr[...] = a
    if lay.readonly:
        arr.flags.writeable = False
    obj = arr
    if lay.form == "subclass":
        obj = arr.view(Sub)
    elif lay.form == "memoryview":
        try:
            obj = memoryview(arr)
        except (ValueError, TypeError, BufferError):
            obj = arr
    elif lay.form == "array_like":
        obj = ArrayLike(arr)
    elif lay.form == "dlpack":
        obj = DLPackLike(arr)
    elif lay.form == "list":
        obj = arr.tolist()
        mem.watch(obj, repr)
    elif lay.form == "scalar":
        obj = arr.reshape(-1)[0] if arr.size == 1 else arr.tolist()
    if lay.form in ("list", "scalar"):  # a copy: the caller's object does not refer to arr
        return Arg(obj, None, as_numpy(obj))
    return Arg(obj, arr, arr)


def non_array(mem, obj):
    if isinstance(obj, list):
        mem.watch(obj, repr)
    if isinstance(obj, np.ndarray):
        mem.watch(obj, _object_fingerprint)
    return Arg(obj, None, as_numpy(obj))


# ------------------------------------------------------------------ shapes


def bounded(dims, limit=MAX_ELEMENTS):
    dims = list(dims)
    while math.prod(dims) > limit:
        dims[dims.index(max(dims))] //= 2
    return tuple(dims)


@st.composite
def hostile_shapes(draw, base):
    """Shapes related (or not) to ``base``: itself, 0-d, empty, broadcast
    variants, transposed, random, and many (9..64) dimensions."""
    kind = draw(st.sampled_from(["same", "scalar", "empty", "broadcast", "transposed", "random", "many"]))
    if kind == "same":
        return base
    if kind == "scalar":
        return ()
    if kind == "empty":
        dims = list(base) or [1]
        dims[draw(st.integers(0, len(dims) - 1))] = 0
        return tuple(dims)
    if kind == "broadcast":
        dims = [1 if draw(st.booleans()) else n for n in base]
        return tuple([1] * draw(st.integers(0, 3)) + dims)[-64:]
    if kind == "transposed":
        return tuple(reversed(base))
    if kind == "random":
        return bounded(draw(st.lists(st.sampled_from([0, 1, 1, 2, 3, 4, 5, 7]), max_size=5)))
    ndim = draw(st.integers(9, draw(st.sampled_from([12, 32, 60]))))
    dims = [1] * ndim
    for _ in range(draw(st.integers(0, 4))):
        dims[draw(st.integers(0, ndim - 1))] = draw(st.sampled_from([0, 2, 3]))
    if draw(st.booleans()) and len(base) <= ndim:  # broadcast-compatible with base
        dims[ndim - len(base):] = base
    return bounded(dims)


SMALL_SHAPES = st.lists(st.sampled_from([1, 2, 3, 4, 5]), max_size=3).map(tuple)


def base_arrays(spec, rng, shape, dtype, kind):
    """Valid arrays and options for ``spec`` from the case table (falls back
    to the loss's own sample): ``{argument name: array}``."""
    case = CASES.get(spec.name)
    if case is not None:
        for kwargs in ({"values": kind, "weighted": case.weighted}, {"values": kind}, {}):
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return dict(case.make(rng, shape, dtype, **kwargs))
            except (TypeError, ValueError):
                continue
    arrays, options = spec.sample(rng, max(1, math.prod(shape)), dtype)
    return {**dict(zip(spec.arrays, arrays)), **options}


def _reference_array(a):
    """An argument for the float64 reference: floats (and bools) as float64,
    integer arrays (class indices, lengths) as they are."""
    a = np.asarray(a)
    return a if a.dtype.kind in "iu" else a.astype(np.float64)


def loss_shape(spec, arrays, options, reduction="none"):
    """The shape of the loss (``reduction='none'``) per the float64
    reference, or the exception with which the reference refuses the call."""
    if reduction != "none":
        return ()
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pos = [_reference_array(a) for a in arrays]
            kw = {k: _reference_array(v) if isinstance(v, (np.ndarray, list, tuple)) else v
                  for k, v in options.items()}
            return np.shape(spec.reference(*pos, reduction="none", **kw))
    except Exception as exc:  # noqa: BLE001
        return exc


def split(spec, base):
    """``base`` ({name: value}) as (arrays in torch's order, options)."""
    return [base[n] for n in spec.arrays], {k: v for k, v in base.items() if k not in spec.arrays}


# ------------------------------------------------------------------- calls


def nn_class(spec):
    return getattr(fastloss.nn, spec.class_name)


def function(spec, mode):
    return {"forward": spec.forward, "backward": spec.backward, "value_and_grad": spec.value_and_grad}[mode]


def positional_options(spec, via):
    """Options that may be passed positionally, in order."""
    if via == "nn":
        return [] if spec.class_keyword_only else list(spec.class_options)
    params = inspect.signature(spec.forward).parameters
    return [n for n in spec.options if params[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


@dataclasses.dataclass
class Call:
    spec: object
    mode: str
    via: str
    arrays: dict  # name -> Arg, torch's order
    options: dict  # name -> Arg or raw value (absent options are not in it)
    n_positional: int  # options passed positionally (a prefix of positional_options)
    grad_output: object = ABSENT  # Arg or raw value
    out: object = ABSENT  # raw value (ndarray / tuple / ...)
    out_arrays: tuple = ()  # the ndarrays of out
    mem: Memory = dataclasses.field(default_factory=Memory)

    @property
    def names(self):
        """Argument names an error message may name."""
        names = set(self.spec.arrays) | set(self.spec.options)
        if self.mode != "forward":
            names |= {"grad_output", "out"}
        return names

    def option_value(self, name):
        v = self.options[name]
        return v.obj if isinstance(v, Arg) else v

    def run(self):
        spec = self.spec
        pos = [a.obj for a in self.arrays.values()]
        names = positional_options(spec, self.via)[: self.n_positional]
        pos_opts = [self.option_value(n) if n in self.options else spec.options[n] for n in names]
        kw = {n: self.option_value(n) for n in self.options if n not in names}
        grad_kw = {}
        if self.grad_output is not ABSENT:
            grad_kw["grad_output"] = self.grad_output.obj if isinstance(self.grad_output, Arg) else self.grad_output
        if self.out is not ABSENT:
            grad_kw["out"] = self.out
        if self.via == "nn":
            crit = nn_class(spec)(*pos_opts, **kw)
            fn = {"forward": crit, "backward": crit.backward, "value_and_grad": crit.value_and_grad}[self.mode]
            return fn(*pos, **grad_kw)
        return function(spec, self.mode)(*pos, *pos_opts, **kw, **grad_kw)

    def __repr__(self):
        return "Call(" + self.report() + ")"

    def _repr_pretty_(self, printer, cycle):  # hypothesis' falsifying-example printer
        printer.text(repr(self))

    def report(self):
        lines = [f"{self.spec.name}{'' if self.mode == 'forward' else '_' + self.mode} via {self.via}"]
        lines += [f"  {n} = {a!r}" for n, a in self.arrays.items()]
        names = positional_options(self.spec, self.via)[: self.n_positional]
        lines += [f"  {n} = {self.options.get(n, '<default>')!r}  (positional)" for n in names]
        lines += [f"  {n} = {v!r}" for n, v in self.options.items() if n not in names]
        if self.grad_output is not ABSENT:
            lines.append(f"  grad_output = {self.grad_output!r}")
        if self.out is not ABSENT:
            lines.append(f"  out = {describe(self.out)}")
        return "\n".join(lines)

    # ---------------------------------------------------------- expectations

    def reduction(self):
        if "reduction" in self.options:
            return self.option_value("reduction")
        return self.spec.options.get("reduction", "mean")

    def value_dtype(self):
        """API.md §4: the floating arrays promote (float64 if any, else their
        common half/single type, else float32)."""
        strong, weak = [], []
        for name, arg in [*self.arrays.items(), *self.options.items()]:
            if name == "reduction" or not isinstance(arg, Arg) or arg.numpy is None:
                continue
            if name not in self.spec.arrays and self.spec.options[name] is not None:
                continue  # a scalar option (beta, margin...) does not promote; weight-like ones (None) do
            if is_float(arg.numpy.dtype):
                # Python scalars and lists are weak (NumPy 2 / torch): they take the
                # dtype of the arrays they meet, and decide only when there are none.
                weak_value = type(arg.obj) in (float, int, bool, list, tuple)
                (weak if weak_value else strong).append(native(arg.numpy.dtype))
        dtypes = strong or weak
        if not dtypes:
            return F32
        if F64 in dtypes:
            return F64
        return dtypes[0] if all(d == dtypes[0] for d in dtypes) else F32

    def overlapping(self):
        """Names of caller arrays that ``out`` shares memory with."""
        found = []
        others = [*self.arrays.items(), *self.options.items(), ("grad_output", self.grad_output)]
        for o in self.out_arrays:
            for name, arg in others:
                if isinstance(arg, Arg) and arg.array is not None and shares_memory(o, arg.array):
                    found.append(name)
        return found


def shares_memory(a, b):
    try:
        return np.shares_memory(a, b, max_work=10**5)
    except np.exceptions.TooHardError:
        return np.may_share_memory(a, b)


def word(name):
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")


def call_and_check(call):
    """Runs ``call`` and checks the contract; returns the result or the exception."""
    note(call.report())
    out_before = [np.array(o, copy=True) for o in call.out_arrays]
    snap = call.mem.snapshot()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.filterwarnings("ignore", message="Using a target size", category=UserWarning)
            result = call.run()
    except Exception as exc:  # noqa: BLE001 - the point is which exception
        assert type(exc) in ALLOWED, f"raised {type(exc).__module__}.{type(exc).__name__}: {exc}"
        message = str(exc)
        assert any(word(n).search(message) for n in call.names), (
            f"{type(exc).__name__} names no argument of {sorted(call.names)}: {message!r}")
        changed = call.mem.changes(snap)
        assert not changed, f"{type(exc).__name__} ({message}) but memory was written: {changed}"
        return exc
    overlap = call.overlapping()
    assert not overlap, f"out overlaps {overlap}, yet the call succeeded (API.md §2: ValueError)"
    check_result(call, result)
    result = copied(result)  # before out's elements are put back
    for o, before in zip(call.out_arrays, out_before):  # out's own elements may change: put them back
        if o.flags.writeable:
            o[...] = before
    changed = call.mem.changes(snap)
    assert not changed, f"the call wrote outside out: {changed}"
    return result


def copied(result):
    if isinstance(result, tuple):
        return tuple(copied(r) for r in result)
    return np.array(result, copy=True) if isinstance(result, np.ndarray) else result


def check_result(call, result):
    spec = call.spec
    grads = None
    if call.mode == "forward":
        value = result
    elif call.mode == "backward":
        value, grads = ABSENT, result
    else:
        assert isinstance(result, tuple) and len(result) == 2, f"value_and_grad returned {describe(result)}"
        value, grads = result
    if value is not ABSENT:
        dtype = call.value_dtype()
        if call.reduction() == "none":
            assert type(value) is np.ndarray, f"reduction='none' returned {describe(value)}"
            kw = {n: v.numpy if isinstance(v, Arg) and v.array is not None else call.option_value(n)
                  for n, v in call.options.items() if n != "reduction"}
            expected = loss_shape(spec, [a.numpy for a in call.arrays.values()], kw)
            assert not isinstance(expected, Exception), f"fastloss accepts a call fastloss.reference refuses: {expected!r}"
            assert value.shape == expected, f"loss shape {value.shape}, expected {expected}"
        else:
            assert isinstance(value, np.generic), f"a reduced loss returned {describe(value)}"
        assert native(value.dtype) == dtype, f"loss dtype {value.dtype}, expected {dtype}"
    if grads is None:
        return
    outs = call.out if isinstance(call.out, tuple) else (call.out,) * len(spec.grads)
    if len(spec.grads) == 1:
        grads = (grads,)
    else:
        assert isinstance(grads, tuple) and len(grads) == len(spec.grads), f"grads: {describe(grads)}"
    for name, g, o in zip(spec.grads, grads, outs):
        arg = call.arrays.get(name) or call.options.get(name)
        if not isinstance(arg, Arg) or arg.numpy is None or isinstance(arg.obj, (int, float)):
            assert g is None or isinstance(g, np.ndarray), f"grad {name}: {describe(g)}"
            continue
        assert type(g) is np.ndarray or (isinstance(o, np.ndarray) and g is o), f"grad {name}: {describe(g)}"
        assert g.shape == arg.numpy.shape, f"grad {name}: shape {g.shape}, expected {arg.numpy.shape}"
        assert native(g.dtype) == native(arg.numpy.dtype), f"grad {name}: dtype {g.dtype}, expected {arg.numpy.dtype}"
        if isinstance(o, np.ndarray):
            assert g is o, f"grad {name} was not written into out"


# ---------------------------------------------------------- hostile calls


@st.composite
def hostile_array(draw, mem, rng, base, base_dtype, value_kind):
    """One array argument, derived from the valid ``base`` (or not)."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "values", "dtype", "shape", "shape", "object"]))
    if how == "object":
        return non_array(mem, draw(st.sampled_from(NON_ARRAYS)))
    a = base
    if how == "values" and is_float(a.dtype):
        a = cast(values(rng, a.shape, draw(st.sampled_from(VALUE_KINDS))), a.dtype)
    elif how == "dtype":
        a = cast(np.asarray(a, np.float64) if a.dtype.kind in "biuf" or a.dtype == BFLOAT16 else
                 values(rng, a.shape, value_kind), draw(st.sampled_from(HOSTILE_DTYPES)))
    elif how == "shape":
        shape = draw(hostile_shapes(base.shape))
        dtype = draw(st.sampled_from([base.dtype, base.dtype, base_dtype, *HOSTILE_DTYPES]))
        a = cast(values(rng, shape, value_kind), dtype)
    lay = draw(layouts(forms=FORMS + ("list", "scalar")))
    return place(mem, rng, a, lay)


@st.composite
def hostile_option(draw, mem, rng, name, base_value, input_shape, base_dtype):
    how = draw(st.sampled_from(["absent", "absent", "valid", "pool", "pool", "array"]))
    if name == "reduction":
        how = draw(st.sampled_from(["absent", "valid", "valid", "valid", "pool"]))
        if how == "valid":
            return non_array(mem, draw(st.sampled_from(REDUCTIONS)))
    if how == "absent":
        return ABSENT
    if how == "valid":
        if isinstance(base_value, np.ndarray):
            return place(mem, rng, base_value, draw(layouts()))
        return non_array(mem, base_value)
    if how == "pool":
        return non_array(mem, draw(st.sampled_from(OPTION_VALUES)))
    shape = draw(st.sampled_from([input_shape, input_shape, (), (1,)]) | hostile_shapes(input_shape))
    dtype = draw(st.sampled_from([base_dtype, base_dtype, *HOSTILE_DTYPES]))
    return place(mem, rng, cast(values(rng, shape, "grid") + 2.0, dtype), draw(layouts()))


GRAD_OUTPUT_SCALARS = [None, 0.0, -0.0, 1.0, 2, -3, 0.5, True, False, math.nan, math.inf, -math.inf, 1e308, 10**400,
                       -(10**400), 2**63, 1j, np.float16(2), np.float32(0.5), np.float64(-1), np.int8(4),
                       np.uint64(2**64 - 1), np.longdouble(1), np.bool_(True), np.complex64(1), "1", b"1", [], [1.0],
                       [[1.0]], Opaque(), np.datetime64("2020-01-01")]


@st.composite
def hostile_grad_output(draw, mem, rng, shape, base_dtype):
    how = draw(st.sampled_from(["absent", "scalar", "array", "array", "array"]))
    if how == "absent":
        return ABSENT
    if how == "scalar":
        return non_array(mem, draw(st.sampled_from(GRAD_OUTPUT_SCALARS)))
    shape = shape if shape is not None else ()
    shapes = st.sampled_from([shape, shape, (), (1,), tuple(1 for _ in shape), (1, *shape)[-64:]]) | hostile_shapes(shape)
    dtype = draw(st.sampled_from([base_dtype, base_dtype, F32, F64, *HOSTILE_DTYPES]))
    kind = draw(st.sampled_from(VALUE_KINDS))
    return place(mem, rng, cast(values(rng, draw(shapes), kind), dtype), draw(layouts()))


@st.composite
def hostile_out_one(draw, mem, rng, arg, arrays):
    """One ``out`` entry for the gradient of ``arg``."""
    shape = arg.numpy.shape if arg.numpy is not None else ()
    dtype = arg.numpy.dtype if arg.numpy is not None and not arg.numpy.dtype.hasobject else F32
    how = draw(st.sampled_from(["right", "right", "right", "shape", "dtype", "alias", "value"]))
    if how == "value":
        return draw(st.sampled_from([None, 0.0, [0.0], "out", Opaque(), np.float32(0)]))
    if how == "alias":  # memory of an argument, viewed with the gradient's shape and dtype
        sources = [a.array for a in arrays if a.array is not None and a.array.dtype == dtype
                   and a.array.shape == shape and a.array.flags.writeable]
        if sources:
            src = draw(st.sampled_from(sources))
            return src if draw(st.booleans()) or src.ndim == 0 else src[(slice(None, None, -1),) * src.ndim]
        how = "right"
    if how == "shape":
        shape = draw(hostile_shapes(shape))
    elif how == "dtype":
        dtype = draw(st.sampled_from(HOSTILE_DTYPES))
    return place(mem, rng, np.zeros(shape, dtype), draw(layouts(forms=("ndarray", "ndarray", "subclass")))).obj


@st.composite
def hostile_out(draw, mem, rng, spec, call_arrays, other_args):
    how = draw(st.sampled_from(["absent", "none", "given", "given", "given", "tuple"]))
    if how == "absent":
        return ABSENT
    if how == "none":
        return None
    grad_args = [call_arrays.get(n) for n in spec.grads]
    entries = []
    for g in grad_args:
        if g is None or g.numpy is None:
            entries.append(None)
        else:
            entries.append(draw(hostile_out_one(mem, rng, g, other_args)))
    if how == "tuple" or len(entries) > 1:
        n = draw(st.sampled_from([len(entries), len(entries), 0, len(entries) + 1]))
        entries = (entries * 2)[:n]
        if draw(st.booleans()) and entries:
            entries[draw(st.integers(0, len(entries) - 1))] = None
        return tuple(entries)
    return entries[0]


@st.composite
def hostile_calls(draw):
    spec = REGISTRY[draw(st.sampled_from(SPECS))]
    mode = draw(st.sampled_from(MODES))
    via = draw(st.sampled_from(vias(spec)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base_dtype = draw(st.sampled_from(KERNEL_FLOATS))
    value_kind = draw(st.sampled_from(VALUE_KINDS))
    base = base_arrays(spec, rng, draw(SMALL_SHAPES), base_dtype, value_kind)
    call = Call(spec, mode, via, {}, {}, 0)
    mem = call.mem
    for name in spec.arrays:
        call.arrays[name] = draw(hostile_array(mem, rng, base[name], base_dtype, value_kind))
    input_shape = np.shape(base[spec.arrays[0]])
    option_names = spec.class_options if via == "nn" else tuple(spec.options)
    for name in option_names:
        value = draw(hostile_option(mem, rng, name, base.get(name, spec.options[name]), input_shape, base_dtype))
        if value is not ABSENT:
            call.options[name] = value
    allowed = positional_options(spec, via)
    call.n_positional = draw(st.integers(0, len(allowed)))
    shapes = [np.shape(a.numpy) for a in call.arrays.values() if a.numpy is not None]
    ndim = max(map(len, shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + s for s in shapes]
    assume(math.prod(max(dims) for dims in zip(*padded)) <= MAX_BROADCAST)  # what 'none' would allocate
    if mode != "forward":
        reduction = call.reduction()
        shape = loss_shape(spec, *split(spec, base), reduction if isinstance(reduction, str) else "mean")
        shape = None if isinstance(shape, Exception) else shape
        call.grad_output = draw(hostile_grad_output(mem, rng, shape, base_dtype))
        others = [*call.arrays.values(), *[v for v in call.options.values() if isinstance(v, Arg)]]
        if isinstance(call.grad_output, Arg):
            others.append(call.grad_output)
        call.out = draw(hostile_out(mem, rng, spec, call.arrays, others))
        outs = call.out if isinstance(call.out, tuple) else (call.out,)
        call.out_arrays = tuple(o for o in outs if isinstance(o, np.ndarray))
    return call


class Knobs:
    """Global state a call may run under: instruction set and threads."""

    def __init__(self, isa, threads):
        self.isa, self.threads = isa, threads

    def __enter__(self):
        self.saved = (_core.current_isa(), fastloss.get_num_threads())
        _core.select_isa(self.isa)
        fastloss.set_num_threads(self.threads)

    def __exit__(self, *exc):
        _core.select_isa(self.saved[0])
        fastloss.set_num_threads(self.saved[1])


ISAS = st.sampled_from(_core.available_isas())
THREADS = st.sampled_from([1, 2, 3, 8])


NO_EXPLAIN = settings(phases=[p for p in Phase if p is not Phase.explain])  # explain re-runs slow examples


# -------------------------------------------------- layout independence

# Shapes for valid calls: small N-d ones, empty ones, and (one in six) ones
# of several 8192-element reduction blocks / the multi-thread threshold.
VALID_SHAPES = st.one_of(
    st.lists(st.sampled_from([0, 1, 1, 2, 3, 4, 5, 7, 16, 17]), max_size=5).map(bounded),
    st.lists(st.sampled_from([1, 1, 2, 3]), min_size=9, max_size=12).map(bounded),
    st.sampled_from([(8193,), (3, 12007), (40009,), (2, 1, 20011), (257, 129)]),
)


@st.composite
def valid_calls(draw):
    """A valid call (arrays from the case table, valid options) whose arrays,
    ``grad_output`` and ``out`` are stored in hostile ways; returns
    ``(call, plain)``, ``plain`` being the same call on contiguous copies."""
    spec = REGISTRY[draw(st.sampled_from(SPECS))]
    mode = draw(st.sampled_from(MODES))
    via = draw(st.sampled_from(vias(spec)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from(KERNEL_FLOATS))
    base = base_arrays(spec, rng, draw(VALID_SHAPES), dtype, draw(st.sampled_from(VALUE_KINDS)))
    reduction = draw(st.sampled_from(REDUCTIONS))
    call = Call(spec, mode, via, {}, {"reduction": reduction}, 0)
    plain = Call(spec, mode, via, {}, {"reduction": reduction}, 0)
    allowed = spec.class_options if via == "nn" else spec.options
    keep_bf16 = ("ndarray", "ndarray", "subclass", "array_like", "dlpack")
    for name, a in base.items():
        if name not in spec.arrays and name not in allowed:
            continue
        lay = draw(layouts(forms=keep_bf16 + ("memoryview",) if a.dtype != BFLOAT16 else keep_bf16))
        arg = place(call.mem, rng, a, lay) if isinstance(a, np.ndarray) else a
        copy = place(plain.mem, rng, np.array(arg.array, order="C").astype(native(arg.array.dtype)),
                     CONTIGUOUS) if isinstance(a, np.ndarray) else a
        (call.arrays if name in spec.arrays else call.options)[name] = arg
        (plain.arrays if name in spec.arrays else plain.options)[name] = copy
    if mode != "forward":
        shape = loss_shape(spec, *split(spec, base), reduction)
        how = draw(st.sampled_from(["absent", "scalar", "array", "array"]))
        if how == "scalar":
            call.grad_output = plain.grad_output = draw(st.sampled_from([None, 0.5, -2, math.nan, np.float32(3)]))
        elif how == "array" and not isinstance(shape, Exception):
            g = cast(values(rng, shape, draw(st.sampled_from(VALUE_KINDS))),
                     draw(st.sampled_from([F32, F64, F16, BFLOAT16, np.dtype(np.int8)])))
            call.grad_output = place(call.mem, rng, g, draw(layouts(forms=keep_bf16)))
            plain.grad_output = place(plain.mem, rng, np.array(call.grad_output.array, order="C").astype(
                native(call.grad_output.array.dtype)), CONTIGUOUS)
        if draw(st.booleans()):
            outs = []
            for name in spec.grads:
                arg = call.arrays.get(name) or call.options.get(name)
                if not isinstance(arg, Arg):
                    outs.append(None)
                    continue
                o = place(call.mem, rng, np.zeros(arg.numpy.shape, arg.numpy.dtype),
                          draw(layouts(forms=("ndarray", "subclass"), zero=False, readonly=False, byteswap=False)))
                outs.append(o.obj)
            call.out = outs[0] if len(outs) == 1 else tuple(outs)
            call.out_arrays = tuple(o for o in outs if o is not None)
    return call, plain


def normalized(result):
    """Results as native-byte-order plain ndarrays / scalars (tuples kept)."""
    if isinstance(result, tuple):
        return tuple(normalized(r) for r in result)
    if result is None:
        return None
    arr = np.asarray(result)
    return arr.astype(native(arr.dtype)).view(np.ndarray)


def assert_same(got, expected, what="result"):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{what}[{i}]")
    elif expected is None:
        assert got is None, what
    else:
        assert_identical(got, expected, what)
