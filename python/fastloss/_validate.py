"""Argument handling shared by every loss: arrays, dtypes, reductions, shapes,
``grad_output`` and ``out=``. Every error names the argument it is about.

The C++ side trusts what it gets from here (and re-checks only the invariants
that would otherwise touch bad memory)."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np

from . import _core

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
MAX_DIMS = 8  # dimensions the kernels take (fastloss::kMaxDims)
NONE, MEAN, SUM = 0, 1, 2

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def reduction(value, allowed=REDUCTIONS):
    """The reduction code for ``value``; ValueError names the valid ones."""
    code = allowed.get(value) if isinstance(value, str) else None
    if code is None:
        valid = ", ".join(repr(k) for k in allowed)
        raise ValueError(f"reduction: {value!r} is not a valid value for reduction (expected one of {valid})")
    return code


def as_array(obj, name):
    """``obj`` as an ndarray without copying where possible (NumPy arrays,
    objects with ``__dlpack__`` such as torch/JAX CPU arrays, array-likes)."""
    if type(obj) is np.ndarray:
        return obj
    if isinstance(obj, np.ndarray):
        return obj.view(np.ndarray)
    if obj is None:
        raise TypeError(f"{name}: expected an array, got None")
    arr = _torch_tensor(obj)
    if arr is not None:
        return arr
    if hasattr(obj, "__dlpack__") and not isinstance(obj, (np.generic, bytes, str)):
        try:
            return np.from_dlpack(obj)
        except (TypeError, RuntimeError, BufferError, ValueError, AttributeError):
            pass  # e.g. a device array: the array protocol below copies or explains
    try:
        arr = np.asarray(obj)
    except Exception as exc:  # noqa: BLE001 - anything the object raises becomes a clear TypeError
        raise TypeError(f"{name}: cannot be read as an array ({type(obj).__name__}: {exc})") from None
    if arr.dtype.hasobject or (arr.dtype.kind in "USVMm" and not _is_bfloat16(arr.dtype)):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _torch_tensor(obj):
    """A CPU torch tensor as an ndarray, without a copy where torch has the
    values in memory: requires_grad tensors are read through ``detach()``,
    bfloat16 as ml_dtypes' bfloat16. A lazily negated view (``is_neg()``,
    e.g. ``z.conj().imag``) holds the negated values, so it is resolved
    (a copy) first; DLPack would export the unnegated memory. None for
    anything that is not a CPU torch tensor."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.Tensor) or obj.device.type != "cpu":
        return None
    obj = obj.detach()
    if obj.is_neg() or obj.is_conj():
        obj = obj.resolve_neg().resolve_conj()
    if obj.dtype == torch.bfloat16:
        try:
            import ml_dtypes
        except ImportError:
            return None
        return np.from_dlpack(obj.view(torch.int16)).view(ml_dtypes.bfloat16)
    try:
        return np.from_dlpack(obj)
    except (TypeError, RuntimeError, BufferError, ValueError):
        return None  # a dtype NumPy lacks: the array protocol explains


def _is_bfloat16(dtype):
    # (kind first: dtype.name is slow, and ml_dtypes' bfloat16 is kind 'V')
    return dtype.kind == "V" and dtype.name == "bfloat16"


def is_float(dtype):
    """float16/32/64 and ml_dtypes' bfloat16 (not float128: no torch dtype)."""
    return (dtype.kind == "f" and dtype.itemsize in (2, 4, 8)) or _is_bfloat16(dtype)


def check_float(arr, name):
    if not is_float(arr.dtype):
        raise TypeError(
            f"{name}: expected a floating-point array (float32, float64, float16 or bfloat16), got dtype {arr.dtype}"
        )
    return arr


def check_real(arr, name):
    """Float, integer or bool (targets and weights are cast to the compute dtype)."""
    kind = arr.dtype.kind
    if not (is_float(arr.dtype) or kind in "iub"):
        raise TypeError(f"{name}: expected a real-valued (float, int or bool) array, got dtype {arr.dtype}")
    return arr


# Values without a dtype of their own (NumPy 2's "weak" Python scalars, and
# lists/tuples, which fastloss treats alike). Exact types: np.float64 is a
# subclass of float but has a dtype.
_WEAK = frozenset((float, int, bool, list, tuple))


def result_dtype(*operands):
    """The dtype rule of every call: ``operands`` are ``(given object, its
    ndarray)`` pairs (ndarray None: absent); returns ``(result dtype, kernel
    dtype)``.

    Operands with a dtype (arrays, NumPy scalars, tensors) promote as in
    NumPy 2: float64 if any is, else their common float16/bfloat16/float32
    type, mixed half types give float32 (also where torch refuses mixed
    dtypes); integer and bool arrays do not promote. Python int/float/bool
    scalars and (nested) lists/tuples are weak (NumPy 2 and torch): they take
    the dtype of the arrays they meet, ``mse_loss(float32 array, 2.0)`` is
    float32, and decide it only when no operand with a floating dtype is
    given (Python floats are then float64). float16/bfloat16 are computed in
    float32 (the kernel dtype). ``grad_output`` is not an operand here: it is
    cast to the kernel dtype and never changes a result's dtype."""
    first = operands[0][1].dtype
    if first is _F32 or first is _F64:  # the common case: one dtype throughout, weak or not
        if all(a is None or a.dtype is first or not is_float(a.dtype) for _, a in operands[1:]):
            return first, first
    strong, weak = [], []
    for obj, arr in operands:
        if arr is not None and is_float(arr.dtype):
            (weak if type(obj) in _WEAK else strong).append(arr.dtype.newbyteorder("="))
    dtypes = strong or weak
    if not dtypes:
        return _F32, _F32
    if _F64 in dtypes:
        return _F64, _F64
    first = dtypes[0]
    if all(d == first for d in dtypes):
        return first, _F32
    return _F32, _F32


def for_kernel(arr, dtype, shape, kernel_shape=None):
    """A view/copy of ``arr`` the kernels can read: kernel dtype, native byte
    order, aligned, broadcast to ``shape`` (strides 0). ``kernel_shape`` (the
    flat size) is given when ``shape`` has more dimensions than the kernels
    take: the result is then a flat contiguous copy."""
    if arr.dtype == _F16 and dtype == _F32 and arr.flags.aligned:
        arr = half_to_float(arr)
    elif arr.dtype != dtype or not arr.dtype.isnative or not arr.flags.aligned:
        with np.errstate(over="ignore", invalid="ignore"):  # float64 -> float32 overflow is inf
            arr = arr.astype(dtype)
    if arr.shape != shape:
        arr = np.broadcast_to(arr, shape)
    if kernel_shape is not None and kernel_shape != shape:
        arr = np.ascontiguousarray(arr).reshape(kernel_shape)
    return arr


# NumPy's float16 <-> float32 casts are slow (~1.7 ms / ~2.6 ms for 2**20
# elements, ~70 ms when the float16 results are subnormal); the kernels'
# conversions give the same bits (cpp/src/simd/half_kernels.cpp).
def half_to_float(arr):
    """A native, aligned float16 array as a new float32 array of its layout:
    ``arr.astype(np.float32)``, bitwise."""
    out = np.empty_like(arr, dtype=_F32)
    _core.half_to_float(arr, out)
    return out


def float_to_half(arr, out=None):
    """A native, aligned float32 array as float16, into ``out`` (native,
    aligned, of ``arr``'s shape, any strides) or a new array of ``arr``'s
    layout: ``arr.astype(np.float16)`` (round to nearest even, overflow to
    inf silently), bitwise."""
    if out is None:
        out = np.empty_like(arr, dtype=_F16)
    _core.float_to_half(arr, out)
    return out


def broadcast_operands(operands):
    """The broadcast shape of ``operands`` (``(name, object, array)``
    triples), ValueError naming the first that does not fit."""
    shape = operands[0][2].shape
    for name, _, a in operands[1:]:
        new = broadcast_shapes(shape, a.shape)
        if new is None:
            raise ValueError(f"{name}: shape {a.shape} cannot be broadcast with {operands[0][0]}'s shape "
                             f"{operands[0][2].shape}")
        shape = new
    return shape


def broadcast_shapes(a, b):
    """NumPy's broadcast of two shapes (any number of dimensions:
    np.broadcast_shapes stops at 32); None if they do not broadcast."""
    if a == b:
        return a
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for p, q in zip(a, b):
        if p != q and p != 1 and q != 1:
            return None
        out.append(q if p == 1 else p)
    return tuple(out)


def broadcast_shape(a, b, name_a, name_b):
    shape = broadcast_shapes(a.shape, b.shape)
    if shape is None:
        raise ValueError(f"{name_a} and {name_b}: shapes {a.shape} and {b.shape} cannot be broadcast together")
    return shape


def warn_size_mismatch(input, target, stacklevel=4):
    # torch warns too: broadcasting input against target is rarely intended.
    warnings.warn(
        f"Using a target size ({tuple(target.shape)}) that is different to the input size "
        f"({tuple(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.",
        UserWarning,
        stacklevel=stacklevel,
    )


def grad_output(value, loss_shape, dtype, kernel_shape=None):
    """``grad_output`` broadcast to the loss's shape. Returns ``(scale, array,
    source)``: ``scale`` a Python float when it is a scalar (``array`` None),
    else ``(1.0, kernel array)``; ``source`` is the caller's memory (for the
    overlap check of ``out=``), None for Python numbers."""
    if value is None:
        return 1.0, None, None
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return real_number(value, "grad_output"), None, None
    g = check_real(as_array(value, "grad_output"), "grad_output")
    if broadcast_shapes(g.shape, tuple(loss_shape)) != tuple(loss_shape):
        raise ValueError(
            f"grad_output: shape {g.shape} cannot be broadcast to the loss's shape {tuple(loss_shape)}"
        )
    if g.size == 1:
        return float(g.reshape(())), None, g
    return 1.0, for_kernel(g, dtype, tuple(loss_shape), kernel_shape), g


def out_array(out, shape, dtype, inputs, name="out"):
    """Validates a user ``out=`` buffer for one gradient."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: shape {out.shape} does not match the gradient's shape {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"{name}: dtype {out.dtype} does not match the gradient's dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    if _self_overlapping(out):
        raise ValueError(f"{name}: its elements overlap each other (e.g. a writeable stride-0 view)")
    for arr in inputs:
        if arr is not None and isinstance(arr, np.ndarray) and np.may_share_memory(out, arr):
            raise ValueError(f"{name}: overlaps an input array")
    return out


def _self_overlapping(a):
    """True unless the strides prove that no two elements share memory (each
    dimension, by increasing stride, steps over everything inside it). An
    empty array has no elements to overlap (its strides may be anything)."""
    if a.size == 0:
        return False
    extent = a.itemsize
    for stride, n in sorted((abs(st), n) for st, n in zip(a.strides, a.shape) if n > 1):
        if stride < extent:
            return True
        extent += stride * (n - 1)
    return False


def outs(out, count):
    """``out=`` as a tuple of ``count`` entries (None where not given)."""
    if out is None:
        return (None,) * count
    if isinstance(out, tuple):
        if len(out) != count:
            raise ValueError(f"out: expected a tuple of {count} arrays, got {len(out)}")
        arrays = [(i, o) for i, o in enumerate(out) if isinstance(o, np.ndarray)]
        for k, (i, a) in enumerate(arrays):
            for j, b in arrays[k + 1:]:
                if np.may_share_memory(a, b):
                    raise ValueError(f"out[{j}]: overlaps out[{i}] (each gradient needs its own buffer)")
        return out
    if count == 1:
        return (out,)
    raise ValueError(f"out: expected a tuple of {count} arrays")


_F32_MAX = float(np.finfo(np.float32).max)


def narrow(value, dtype):
    """An array or a Python float as ``dtype`` (a NumPy scalar for floats);
    overflow (a float32 sum beyond float32's range, float16/bfloat16) gives
    inf silently, as torch."""
    if isinstance(value, float):
        if dtype is _F64 or (dtype is _F32 and not abs(value) > _F32_MAX):
            return dtype.type(value)
    elif value.dtype == dtype:
        return value
    elif value.dtype == _F32 and dtype == _F16 and value.flags.aligned:
        return float_to_half(value)
    with np.errstate(over="ignore"):
        return dtype.type(value) if isinstance(value, float) else value.astype(dtype)


def option_fits(value, name, operands):
    """Where torch turns an option into a tensor of the input's dtype
    (hinge_embedding_loss's ``margin``, gaussian_nll_loss's ``eps``), a
    finite value beyond that dtype's range is torch's RuntimeError ("value
    cannot be converted to type float without overflow"): ValueError here.
    ``operands`` are the loss's ``(name, given object, ndarray)`` triples."""
    if not abs(value) > 65504.0:  # fits every dtype (float16's max); NaN too
        return value
    dtype, _ = result_dtype(*((obj, arr) for _, obj, arr in operands))
    finfo = np.finfo(dtype) if not _is_bfloat16(dtype) else _bfloat16_finfo(dtype)
    if math.isfinite(value) and abs(value) > float(finfo.max):
        raise ValueError(f"{name}: {value!r} overflows {dtype.name} (the input's dtype), as torch refuses it")
    return value


def _bfloat16_finfo(dtype):
    import ml_dtypes  # only reached with a bfloat16 array, which needs ml_dtypes

    return ml_dtypes.finfo(dtype)


def divide(num, den):
    """IEEE num / den (inf or NaN on a zero denominator, as torch)."""
    if den != 0:
        return num / den
    if num != num or num == 0:
        return math.nan
    return math.copysign(math.inf, num) * math.copysign(1.0, den)


MAX_THREADS = 2**31 - 1  # an int the kernels take; larger counts are capped there anyway


def thread_count(value, name):
    """A thread count: an int from 1 to MAX_THREADS, the argument named in the error."""
    n = positive_int(value, name)
    if n > MAX_THREADS:
        raise ValueError(f"{name}: expected an int from 1 to 2**31 - 1, got {n}")
    return n


def thread_count_env(text):
    """A thread count from an environment variable's text; None if it is not one."""
    try:
        n = int(text.strip())
    except ValueError:
        return None
    return n if 1 <= n <= MAX_THREADS else None


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return int(value)


def real_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float's range
        raise ValueError(f"{name}: an int of {int(value).bit_length()} bits is out of the floating-point range") from None
