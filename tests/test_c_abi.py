"""Fuzzing the C ABI (cpp/include/fastloss.h) through ctypes: arbitrary loss
ids, dtypes, shapes, strides (negative and zero included), options, missing
arrays and NULL pointers, for the element-wise, row-wise and CTC entry points
(class indices and CTC labels and lengths out of range included). Every call
must return a status (never crash), write nothing outside the arrays' reach
(guard bytes around every buffer), report an out-of-range class index as
FASTLOSS_ERROR_INDEX, and agree with fastloss's Python functions on what it
computes.

Runs when FASTLOSS_C_LIBRARY names a built libfastloss.so (``.ci/run``
builds one with AddressSanitizer + UBSan and preloads the sanitizer runtime);
skipped otherwise. FASTLOSS_FUZZ_EXAMPLES sets the number of examples."""

import ctypes
import os

import numpy as np
import pytest

LIBRARY = os.environ.get("FASTLOSS_C_LIBRARY")
pytestmark = pytest.mark.skipif(not LIBRARY, reason="FASTLOSS_C_LIBRARY (a built libfastloss.so) is not set")

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

MAX_DIMS, MAX_INPUTS, MAX_GRADS, MAX_OPTIONS = 8, 4, 3, 4
GUARD = 64  # elements of guard on each side of a buffer
EXAMPLES = int(os.environ.get("FASTLOSS_FUZZ_EXAMPLES", "400"))


class Array(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("strides", ctypes.c_int64 * MAX_DIMS)]


class Call(ctypes.Structure):
    _fields_ = [
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_DIMS),
        ("inputs", Array * MAX_INPUTS),
        ("weight", Array),
        ("grad_output", Array),
        ("loss_out", Array),
        ("grads", Array * MAX_GRADS),
        ("want_value", ctypes.c_int32),
        ("want_grad", ctypes.c_int32),
        ("grad_scale", ctypes.c_double),
        ("options", ctypes.c_double * MAX_OPTIONS),
    ]


class Totals(ctypes.Structure):
    _fields_ = [("loss", ctypes.c_double), ("weight", ctypes.c_double), ("errors", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def lib():
    so = ctypes.CDLL(LIBRARY)
    so.fastloss_last_error.restype = ctypes.c_char_p
    so.fastloss_loss_id.argtypes = [ctypes.c_char_p]
    so.fastloss_loss_info.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p)]
    so.fastloss_elementwise.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Call), ctypes.POINTER(Totals)]
    so.fastloss_reduce.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(Call),
                                   ctypes.POINTER(ctypes.c_double)]
    so.fastloss_call_init.argtypes = [ctypes.POINTER(Call)]
    assert so.fastloss_abi_version() == 1
    return so


def _info(lib, loss_id):
    name, options = ctypes.c_char_p(), ctypes.c_char_p()
    inputs, grads = ctypes.c_int(), ctypes.c_int()
    assert lib.fastloss_loss_info(loss_id, ctypes.byref(name), ctypes.byref(inputs), ctypes.byref(grads),
                                  ctypes.byref(options)) == 0
    return name.value.decode(), inputs.value, grads.value, options.value.decode().split()


class Buffer:
    """Memory for an array of ``shape`` with ``strides`` (elements), guard
    zones filled with a pattern on both sides."""

    def __init__(self, shape, strides, dtype, rng, fill=None):
        lo = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides)) if all(shape) else 0
        hi = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) if all(shape) else 0
        self.size = hi - lo + 1
        self.mem = np.full(self.size + 2 * GUARD, 12345.0, dtype)
        body = self.mem[GUARD:GUARD + self.size]
        body[:] = rng.uniform(0.05, 0.95, self.size) if fill is None else fill
        self.origin = GUARD - lo  # index of element (0, ..., 0)
        self.dtype = dtype

    def pointer(self):
        return self.mem.ctypes.data + self.origin * self.mem.itemsize

    def guards_intact(self):
        return bool(np.all(self.mem[:GUARD] == 12345.0) and np.all(self.mem[GUARD + self.size:] == 12345.0))


def _table():
    """[(inputs, grads, option count)] per loss id, read from the library."""
    if not LIBRARY:
        return []
    so = ctypes.CDLL(LIBRARY)
    table = []
    for loss_id in range(so.fastloss_loss_count()):
        name, options = ctypes.c_char_p(), ctypes.c_char_p()
        inputs, grads = ctypes.c_int(), ctypes.c_int()
        so.fastloss_loss_info(loss_id, ctypes.byref(name), ctypes.byref(inputs), ctypes.byref(grads),
                              ctypes.byref(options))
        table.append((inputs.value, grads.value, len(options.value.split())))
    return table


TABLE = _table()


@st.composite
def calls(draw):
    """Mostly well-formed calls (the loss's own arrays, valid ids and dtypes),
    so the kernels run, with every kind of deviation mixed in."""
    ndim = draw(st.integers(0, 4))
    shape = [draw(st.integers(0, 5)) for _ in range(ndim)]
    n_losses = max(len(TABLE), 1)
    loss = draw(st.integers(0, n_losses - 1)) if draw(st.integers(0, 9)) else draw(
        st.sampled_from([-1, n_losses, n_losses + 7]))
    inputs, grads, _ = TABLE[loss] if 0 <= loss < len(TABLE) else (2, 1, 0)
    present = [k < inputs for k in range(MAX_INPUTS)] + [draw(st.booleans()), draw(st.booleans()),
                                                         draw(st.booleans())]
    present += [k < grads and draw(st.integers(0, 4)) > 0 for k in range(MAX_GRADS)]
    if not draw(st.integers(0, 9)):  # one array added or removed
        i = draw(st.integers(0, len(present) - 1))
        present[i] = not present[i]
    return {
        "loss": loss,
        "dtype": draw(st.sampled_from([0, 1] * 10 + [7])),
        "ndim": draw(st.sampled_from([ndim] * 20 + [-1, 9])),
        "shape": shape,
        "neg_shape": ndim > 0 and not draw(st.integers(0, 19)),
        "strides": [[draw(st.integers(-7, 7)) for _ in range(ndim)] for _ in range(MAX_INPUTS + 3 + MAX_GRADS)],
        "present": present,
        "want_value": draw(st.booleans()),
        "want_grad": draw(st.booleans()),
        "options": [draw(st.sampled_from([0.0, 1.0, 0.5, 1.0, 2.0, -1.0, float("nan"), 1e300])) for _ in range(4)],
        "reduction": draw(st.integers(-1, 3)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(calls())
def test_fuzz_the_c_abi(lib, case):
    rng = np.random.default_rng(case["seed"])
    dtype = np.float64 if case["dtype"] == 1 else np.float32
    call = Call()
    lib.fastloss_call_init(ctypes.byref(call))
    call.ndim = case["ndim"]
    shape = list(case["shape"])
    if case["neg_shape"]:
        shape[0] = -3
    for d, n in enumerate(shape):
        call.shape[d] = n
    real_shape = [max(n, 0) for n in shape]
    buffers = []
    slots = ([call.inputs[k] for k in range(MAX_INPUTS)] + [call.weight, call.grad_output, call.loss_out]
             + [call.grads[k] for k in range(MAX_GRADS)])
    for i, arr in enumerate(slots):
        if not case["present"][i]:
            continue
        strides = case["strides"][i]
        written = i >= MAX_INPUTS + 2  # loss_out and grads: distinct memory, nonzero strides keep them apart
        if written:
            strides = [s if s != 0 else 1 for s in strides]
            # a written array may not overlap itself: C-order strides of its own shape, signs kept
            step, own = 1, []
            for n, s in zip(reversed(real_shape), reversed(strides)):
                own.append(step if s > 0 else -step)
                step *= max(n, 1)
            strides = list(reversed(own))
        buf = Buffer(real_shape, strides, dtype, rng)
        buffers.append((i, buf))
        arr.data = buf.pointer()
        for d, s in enumerate(strides):
            arr.strides[d] = s
    call.want_value = int(case["want_value"])
    call.want_grad = int(case["want_grad"])
    for k, o in enumerate(case["options"]):
        call.options[k] = o
    totals = Totals()
    status = lib.fastloss_elementwise(case["loss"], case["dtype"], ctypes.byref(call), ctypes.byref(totals))
    assert status in (0, 1, 2, 3)
    hypothesis.event(f"elementwise status {status}")
    if status != 0:
        assert lib.fastloss_last_error()  # a message
    value = ctypes.c_double()
    status_r = lib.fastloss_reduce(case["loss"], case["dtype"], case["reduction"], ctypes.byref(call),
                                   ctypes.byref(value))
    assert status_r in (0, 1, 2, 3)
    hypothesis.event(f"reduce status {status_r}")
    for i, buf in buffers:
        assert buf.guards_intact(), f"slot {i} written outside its reach"


def test_c_abi_agrees_with_python(lib):
    """mse_loss and huber_loss through the C ABI equal fastloss's functions."""
    import fastloss

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 9)), rng.normal(size=(7, 9))
    for name, options, py in (("mse_loss", [], fastloss.mse_loss), ("huber_loss", [0.5], fastloss.huber_loss)):
        loss_id = lib.fastloss_loss_id(name.encode())
        assert _info(lib, loss_id)[0] == name
        call = Call()
        lib.fastloss_call_init(ctypes.byref(call))
        call.ndim = 2
        call.shape[0], call.shape[1] = 7, 9
        for k, a in enumerate((x, y)):
            call.inputs[k].data = a.ctypes.data
            call.inputs[k].strides[0], call.inputs[k].strides[1] = 9, 1
        for k, o in enumerate(options):
            call.options[k] = o
        value = ctypes.c_double()
        assert lib.fastloss_reduce(loss_id, 1, 1, ctypes.byref(call), ctypes.byref(value)) == 0
        kwargs = {"delta": options[0]} if options else {}
        np.testing.assert_allclose(value.value, py(x, y, **kwargs), rtol=1e-14)


# ---------------------------------------------------------------- row-wise losses

MAX_ROW_INPUTS, MAX_ROW_OPTIONS = 3, 8
OK, INVALID, VALUE, INTERNAL, INDEX = 0, 1, 2, 3, 4
TARGET_NONE, TARGET_INDEX, TARGET_INDEX_ROWS, TARGET_FLOAT, TARGET_INDEX_OR_FLOAT = range(5)
# fastloss_element_type order: the call's float dtype, then the integer widths.
ELEMENT_TYPES = [None, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


class RowArray(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("strides", ctypes.c_int64 * 3)]


class RowCall(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int64),
        ("outer", ctypes.c_int64), ("classes", ctypes.c_int64), ("inner", ctypes.c_int64),
        ("inputs", RowArray * MAX_ROW_INPUTS),
        ("grads", RowArray * MAX_ROW_INPUTS),
        ("target", RowArray),
        ("target_type", ctypes.c_int32),
        ("weight", RowArray), ("grad_output", RowArray), ("loss_out", RowArray),
        ("reduction", ctypes.c_int32), ("want_value", ctypes.c_int32), ("want_grad", ctypes.c_int32),
        ("grad_scale", ctypes.c_double),
        ("options", ctypes.c_double * MAX_ROW_OPTIONS),
    ]


class CtcCall(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int64),
        ("max_time", ctypes.c_int64), ("batch", ctypes.c_int64), ("classes", ctypes.c_int64),
        ("log_probs", ctypes.c_void_p), ("log_probs_strides", ctypes.c_int64 * 3),
        ("targets", ctypes.c_void_p), ("target_count", ctypes.c_int64), ("padded_length", ctypes.c_int64),
        ("input_lengths", ctypes.c_void_p), ("target_lengths", ctypes.c_void_p),
        ("blank", ctypes.c_int64),
        ("reduction", ctypes.c_int32), ("zero_infinity", ctypes.c_int32),
        ("losses", ctypes.c_void_p), ("losses_stride", ctypes.c_int64),
        ("grad", ctypes.c_void_p), ("grad_strides", ctypes.c_int64 * 3),
        ("exact", ctypes.c_int32),
        ("grad_output", ctypes.c_void_p), ("grad_output_stride", ctypes.c_int64),
    ]


@pytest.fixture(scope="module")
def rlib(lib):
    so = lib
    so.fastloss_rowwise_loss_id.argtypes = [ctypes.c_char_p]
    so.fastloss_rowwise_loss_info.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                              ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int),
                                              ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p)]
    so.fastloss_rowwise_option.argtypes = [ctypes.c_int, ctypes.c_char_p]
    so.fastloss_rowwise_call_init.argtypes = [ctypes.c_int, ctypes.POINTER(RowCall)]
    so.fastloss_rowwise.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(RowCall),
                                    ctypes.POINTER(ctypes.c_double)]
    so.fastloss_ctc_call_init.argtypes = [ctypes.POINTER(CtcCall)]
    so.fastloss_ctc_workspace_size.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int,
                                               ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
    so.fastloss_ctc_loss.argtypes = [ctypes.c_int, ctypes.POINTER(CtcCall), ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.POINTER(ctypes.c_double)]
    return so


def _row_info(lib, loss_id):
    name, options = ctypes.c_char_p(), ctypes.c_char_p()
    inputs, grads, target = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    assert lib.fastloss_rowwise_loss_info(loss_id, ctypes.byref(name), ctypes.byref(inputs), ctypes.byref(grads),
                                          ctypes.byref(target), ctypes.byref(options)) == OK
    return name.value.decode(), inputs.value, grads.value, target.value, options.value.decode().split()


def _row_table():
    """[(name, inputs, target kind, option names)] per row-wise id, read from the library."""
    if not LIBRARY:
        return []
    so = ctypes.CDLL(LIBRARY)
    table = []
    for loss_id in range(so.fastloss_rowwise_loss_count()):
        name, options = ctypes.c_char_p(), ctypes.c_char_p()
        inputs, grads, target = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        so.fastloss_rowwise_loss_info(loss_id, ctypes.byref(name), ctypes.byref(inputs), ctypes.byref(grads),
                                      ctypes.byref(target), ctypes.byref(options))
        table.append((name.value.decode(), inputs.value, target.value, options.value.decode().split()))
    return table


ROW_TABLE = _row_table()


def _cube(a):
    """(data pointer, element strides) of an ndarray."""
    return a.ctypes.data, [s // a.itemsize for s in a.strides]


def _set(arr, a, strides3):
    arr.data = a.ctypes.data
    for k, s in enumerate(strides3):
        arr.strides[k] = s


def _row_call(lib, name, dtype, inputs, cube, *, target=None, target_type=None, weight=None, reduction=1,
              options=None, grads=False):
    """A row-wise call over ``inputs`` (ndarrays viewable as ``cube``) and a
    target (per row ``(outer, inner)``, or the cube); returns (status,
    value, per-row losses or None, grads or None)."""
    loss_id = lib.fastloss_rowwise_loss_id(name.encode())
    assert loss_id >= 0
    call = RowCall()
    assert lib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call)) == OK
    assert call.struct_size == ctypes.sizeof(RowCall)
    outer, classes, inner = cube
    call.outer, call.classes, call.inner = cube
    keep = []
    for k, x in enumerate(inputs):
        v = x.reshape(cube) if x.flags.c_contiguous else x
        _set(call.inputs[k], v, _cube(v)[1])
        keep.append(v)
    if target is not None:
        t = target
        st = _cube(t)[1]
        st3 = [st[0], 0, st[1]] if t.ndim == 2 else st
        _set(call.target, t, st3)
        call.target_type = ELEMENT_TYPES.index(t.dtype.type) if t.dtype.kind in "iu" else 0
    if target_type is not None:
        call.target_type = target_type
    if weight is not None:
        _set(call.weight, weight, [0, 1, 0])
    call.reduction = reduction
    for key, value in (options or {}).items():
        index = lib.fastloss_rowwise_option(loss_id, key.encode())
        assert index >= 0, key
        call.options[index] = value
    out = None
    if reduction == 0:
        out = np.full((outer, inner), -7.0, dtype)
        _set(call.loss_out, out, [inner, 0, 1])
    g = None
    if grads:
        call.want_grad = 1
        g = [np.full(cube, -7.0, dtype) for _ in inputs]
        for k, a in enumerate(g):
            _set(call.grads[k], a, _cube(a)[1])
    value = ctypes.c_double(-7.0)
    status = lib.fastloss_rowwise(loss_id, 0 if dtype == np.float32 else 1, ctypes.byref(call), ctypes.byref(value))
    return status, value.value, out, g


def test_rowwise_metadata_matches_the_python_table(rlib):
    """The C ABI's row-wise ids, names, operand counts and option names are
    the table the Python package is built on (fastloss._core.rowwise_losses)."""
    from fastloss import _core

    table = {name: (inputs, grads, options) for name, _, inputs, grads, _, options in _core.rowwise_losses()}
    assert rlib.fastloss_rowwise_loss_count() == len(table)
    for loss_id in range(rlib.fastloss_rowwise_loss_count()):
        name, inputs, grads, _, options = _row_info(rlib, loss_id)
        assert rlib.fastloss_rowwise_loss_id(name.encode()) == loss_id
        py_inputs, py_grads, py_options = table[name]
        assert (inputs, grads) == (py_inputs, py_grads)
        assert options == list(py_options.split() if isinstance(py_options, str) else py_options)
        for k, option in enumerate(options):
            assert rlib.fastloss_rowwise_option(loss_id, option.encode()) == k
        assert rlib.fastloss_rowwise_option(loss_id, b"no_such_option") == -1
    assert rlib.fastloss_rowwise_loss_id(b"mse_loss") == -1
    assert rlib.fastloss_rowwise_loss_info(-1, None, None, None, None, None) == INVALID
    assert b"loss" in rlib.fastloss_last_error()


def test_rowwise_defaults_are_the_python_functions(rlib):
    """fastloss_rowwise_call_init fills, for every option of every row-wise
    loss, the default of the Python function's argument of that name (torch's)."""
    import inspect

    import fastloss

    checked = 0
    for loss_id in range(rlib.fastloss_rowwise_loss_count()):
        name, _, _, _, options = _row_info(rlib, loss_id)
        call = RowCall()
        assert rlib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call)) == OK
        assert (call.inner, call.reduction, call.want_value, call.grad_scale) == (1, 1, 1, 1.0)
        parameters = inspect.signature(getattr(fastloss, name)).parameters
        for k, option in enumerate(options):
            default = parameters[option].default
            default = 0.0 if default is None else default  # (cross_entropy's softcap=None: 0, no cap)
            assert call.options[k] == float(default), (name, option)
            checked += 1
        assert all(call.options[k] == 0 for k in range(len(options), MAX_ROW_OPTIONS))
    assert checked >= 10


REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _check(status, value, out, reduction, expected, rtol):
    assert status == OK
    if reduction == 0:
        np.testing.assert_allclose(out.reshape(np.shape(expected)), expected, rtol=rtol, atol=1e-6 * rtol)
    else:
        np.testing.assert_allclose(value, expected, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_class_axis_losses_agree_with_python(rlib, dtype, reduction):
    """cross_entropy (K-dim, narrow int targets, weight, ignore_index, label
    smoothing; probabilities), nll_loss, multilabel_soft_margin_loss,
    multi_margin_loss and multilabel_margin_loss through the C ABI equal
    fastloss's functions, values and gradients."""
    import fastloss

    rng = np.random.default_rng(7)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    red = REDUCTIONS[reduction]
    N, C, H, W = 3, 5, 2, 3
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    y = rng.integers(0, C, (N, H, W)).astype(np.int16)
    y[0, 0, 1] = -100
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    cases = [
        ("cross_entropy", x, y, w, {"label_smoothing": 0.2}, (x, y), dict(weight=w, label_smoothing=0.2)),
        ("nll_loss", x, y.clip(0).astype(np.uint8), w, {"ignore_index": 2},
         (x, y.clip(0).astype(np.uint8)), dict(weight=w, ignore_index=2)),
    ]
    p = rng.random((N, C, H, W)).astype(dtype)
    p /= p.sum(1, keepdims=True)
    cases.append(("cross_entropy", x, p, None, {}, (x, p), {}))
    x2 = rng.standard_normal((6, C)).astype(dtype)
    t2 = (rng.random((6, C)) < 0.4).astype(dtype)
    cases.append(("multilabel_soft_margin_loss", x2, t2, w, {}, (x2, t2), dict(weight=w)))
    y2 = rng.integers(0, C, 6).astype(np.int32)
    cases.append(("multi_margin_loss", x2, y2, w, {"p": 2, "margin": 0.7}, (x2, y2), dict(p=2, margin=0.7, weight=w)))
    rows = np.full((6, C), -1, np.int64)
    rows[:, 0] = rng.integers(0, C, 6)
    rows[::2, 1] = rng.integers(0, C, 3)
    cases.append(("multilabel_margin_loss", x2, rows, None, {}, (x2, rows), {}))
    for name, xin, target, weight, options, args, kwargs in cases:
        cube = (xin.shape[0], xin.shape[1], int(np.prod(xin.shape[2:])))
        tgt = target.reshape(cube[0], cube[2]) if target.ndim == xin.ndim - 1 else target.reshape(cube)
        if target.ndim == 1:
            tgt = target.reshape(-1, 1)
        status, value, out, grads = _row_call(rlib, name, dtype, [xin], cube, target=tgt, weight=weight,
                                              reduction=reduction, options=options, grads=True)
        fn = getattr(fastloss, name)
        assert status == OK, rlib.fastloss_last_error()
        _check(status, value, out, reduction, fn(*args, reduction=red, **kwargs), rtol)
        grad = getattr(fastloss, name + "_backward")(*args, reduction=red, **kwargs)
        np.testing.assert_allclose(grads[0].reshape(xin.shape), grad, rtol=rtol, atol=rtol * 1e-3, err_msg=name)


def test_class_axis_strided_input(rlib):
    """A class axis walked backwards and every other row (negative and
    non-unit strides) gives the contiguous result."""
    import fastloss

    rng = np.random.default_rng(8)
    base = rng.standard_normal((8, 7))
    x = base[::2, ::-1]
    y = rng.integers(0, 7, 4).astype(np.int64)
    call_strides = [s // 8 for s in x.strides]
    loss_id = rlib.fastloss_rowwise_loss_id(b"cross_entropy")
    call = RowCall()
    rlib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
    call.outer, call.classes, call.inner = 4, 7, 1
    _set(call.inputs[0], x, [call_strides[0], call_strides[1], 0])
    _set(call.target, y, [1, 0, 0])
    value = ctypes.c_double()
    assert rlib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), ctypes.byref(value)) == OK
    np.testing.assert_allclose(value.value, fastloss.cross_entropy(np.ascontiguousarray(x), y), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_feature_axis_losses_agree_with_python(rlib, dtype, reduction):
    """cosine_embedding_loss, triplet_margin_loss (p, swap),
    triplet_margin_with_distance_loss (cosine_distance) and the two
    distances through the C ABI equal fastloss's functions."""
    import fastloss

    rng = np.random.default_rng(9)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    red = REDUCTIONS[reduction]
    a, b, c = (rng.standard_normal((6, 9)).astype(dtype) for _ in range(3))
    t = np.where(rng.random(6) < 0.5, -1.0, 1.0).astype(dtype)
    cube = (6, 9, 1)
    cases = [
        ("cosine_embedding_loss", [a, b], t.reshape(6, 1), {"margin": 0.1},
         lambda **k: fastloss.cosine_embedding_loss(a, b, t, margin=0.1, **k),
         lambda **k: fastloss.cosine_embedding_loss_backward(a, b, t, margin=0.1, **k)),
        ("triplet_margin_loss", [a, b, c], None, {"p": 1.5, "swap": 1, "margin": 2.0},
         lambda **k: fastloss.triplet_margin_loss(a, b, c, p=1.5, swap=True, margin=2.0, **k),
         lambda **k: fastloss.triplet_margin_loss_backward(a, b, c, p=1.5, swap=True, margin=2.0, **k)),
        ("triplet_margin_with_distance_loss", [a, b, c], None, {"swap": 1},
         lambda **k: fastloss.triplet_margin_with_distance_loss(a, b, c, distance_function=fastloss.cosine_distance,
                                                                swap=True, **k),
         lambda **k: fastloss.triplet_margin_with_distance_loss_backward(
             a, b, c, distance_function=fastloss.cosine_distance, swap=True, **k)),
    ]
    for name, xs, target, options, fn, bw in cases:
        status, value, out, grads = _row_call(rlib, name, dtype, xs, cube, target=target, reduction=reduction,
                                              options=options, grads=True)
        assert status == OK, rlib.fastloss_last_error()
        _check(status, value, out, reduction, fn(reduction=red), rtol)
        for got, want in zip(grads, bw(reduction=red)):
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=rtol, atol=rtol * 1e-3, err_msg=name)
    if reduction == 0:
        for name, options, fn, bw in (
                ("pairwise_distance", {"p": 3.0, "eps": 1e-3},
                 lambda: fastloss.pairwise_distance(a, b, p=3.0, eps=1e-3),
                 lambda: fastloss.pairwise_distance_backward(a, b, p=3.0, eps=1e-3)),
                ("cosine_distance", {}, lambda: fastloss.cosine_distance(a, b),
                 lambda: fastloss.cosine_distance_backward(a, b))):
            status, value, out, grads = _row_call(rlib, name, dtype, [a, b], cube, reduction=0, options=options,
                                                  grads=True)
            _check(status, value, out, 0, fn(), rtol)
            for got, want in zip(grads, bw()):
                np.testing.assert_allclose(got.reshape(want.shape), want, rtol=rtol, atol=rtol * 1e-3, err_msg=name)


def test_rowwise_errors_write_nothing(rlib):
    """A class index out of range is FASTLOSS_ERROR_INDEX naming it, a bad
    option FASTLOSS_ERROR_INVALID_ARGUMENT naming the option; nothing is
    written either way (as fastloss's IndexError / ValueError)."""
    import fastloss

    x = np.zeros((4, 3))
    y = np.array([0, 1, 3, 2], np.int64)
    status, _, out, grads = _row_call(rlib, "cross_entropy", np.float64, [x], (4, 3, 1), target=y.reshape(4, 1),
                                      reduction=0, grads=True)
    assert status == INDEX and b"class index 3" in rlib.fastloss_last_error()
    assert np.all(out == -7.0) and np.all(grads[0] == -7.0)
    with pytest.raises(IndexError):
        fastloss.cross_entropy(x, y)
    y[2] = -100  # ignore_index: fine
    assert _row_call(rlib, "cross_entropy", np.float64, [x], (4, 3, 1), target=y.reshape(4, 1))[0] == OK
    for name, options, word in (("cross_entropy", {"label_smoothing": 1.5}, b"label_smoothing"),
                                ("cross_entropy", {"ignore_index": 0.5}, b"ignore_index"),
                                ("multi_margin_loss", {"p": 3}, b"p must be 1 or 2"),
                                ("nll_loss", {"ignore_index": float("nan")}, b"ignore_index"),
                                # the beyond-torch options, as the Python functions check them
                                ("cross_entropy", {"z_loss": float("nan")}, b"z_loss"),
                                ("cross_entropy", {"z_loss": float("inf")}, b"z_loss"),
                                ("cross_entropy", {"softcap": -1.0}, b"softcap"),
                                ("cross_entropy", {"softcap": float("nan")}, b"softcap"),
                                ("cross_entropy", {"softcap": float("inf")}, b"softcap"),
                                ("softmax_focal_loss", {"gamma": -1.0}, b"gamma"),
                                ("softmax_focal_loss", {"gamma": float("nan")}, b"gamma"),
                                ("poly1_cross_entropy", {"epsilon": float("inf")}, b"epsilon")):
        status, _, out, grads = _row_call(rlib, name, np.float64, [x], (4, 3, 1), target=y.reshape(4, 1).clip(0),
                                          reduction=0, options=options, grads=True)
        assert status == INVALID and word in rlib.fastloss_last_error(), (name, rlib.fastloss_last_error())
        assert np.all(out == -7.0) and np.all(grads[0] == -7.0)
    a = np.ones((2, 3))
    for name, options, target, word in (("triplet_margin_loss", {"margin": 0.0}, None, b"margin"),
                                        ("triplet_margin_loss", {"swap": 2}, None, b"swap"),
                                        ("pairwise_distance", {"p": -1.0}, None, b"p must be > 0"),
                                        ("cosine_embedding_loss", {}, np.array([[1.0], [0.5]]), b"1 or -1")):
        xs = [a, a] if name != "triplet_margin_loss" else [a, a, a]
        status, *_ = _row_call(rlib, name, np.float64, xs, (2, 3, 1), target=target, options=options, reduction=2)
        assert status == INVALID and word in rlib.fastloss_last_error(), (name, rlib.fastloss_last_error())
    # torch checks margin <= 0: a NaN margin passes and gives NaN, as fastloss.triplet_margin_loss.
    status, value, _, _ = _row_call(rlib, "triplet_margin_loss", np.float64, [a, a, a], (2, 3, 1),
                                    options={"margin": float("nan")}, reduction=2)
    assert status == OK and np.isnan(value) and np.isnan(fastloss.triplet_margin_loss(a, a, a, margin=float("nan")))
    # A struct from another version (struct_size too small), an option beyond the loss's, a bad id.
    call = RowCall()
    loss_id = rlib.fastloss_rowwise_loss_id(b"nll_loss")
    rlib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
    call.struct_size = 16
    assert rlib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), None) == INVALID
    assert b"struct_size" in rlib.fastloss_last_error()
    rlib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
    call.options[5] = 1.0
    assert rlib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), None) == INVALID
    assert b"options[5]" in rlib.fastloss_last_error()
    assert rlib.fastloss_rowwise(99, 1, ctypes.byref(call), None) == INVALID


# ---------------------------------------------------------------- CTC


def _ctc(lib, dtype, log_probs, targets, input_lengths, target_lengths, *, padded, reduction=1, blank=0,
         zero_infinity=0, grads=False, workspace=None):
    T, N, C = log_probs.shape
    call = CtcCall()
    lib.fastloss_ctc_call_init(ctypes.byref(call))
    assert call.struct_size == ctypes.sizeof(CtcCall)
    call.max_time, call.batch, call.classes = T, N, C
    call.log_probs = log_probs.ctypes.data
    for k, s in enumerate(_cube(log_probs)[1]):
        call.log_probs_strides[k] = s
    call.targets = targets.ctypes.data
    call.target_count = targets.size
    call.padded_length = targets.shape[1] if padded else -1
    call.input_lengths = input_lengths.ctypes.data
    call.target_lengths = target_lengths.ctypes.data
    call.blank, call.reduction, call.zero_infinity = blank, reduction, zero_infinity
    losses = np.full(N, -7.0, dtype)
    if reduction == 0:
        call.losses = losses.ctypes.data
    grad = np.full((T, N, C), -7.0, dtype)
    if grads:
        call.grad = grad.ctypes.data
        call.grad_strides[0], call.grad_strides[1], call.grad_strides[2] = N * C, C, 1
    size = ctypes.c_size_t()
    max_target = int(target_lengths.max()) if N and target_lengths.min() >= 0 else 0
    assert lib.fastloss_ctc_workspace_size(T, N, max_target, int(grads), 2, ctypes.byref(size)) == OK
    ws = np.zeros(size.value if workspace is None else workspace, np.uint8)
    value = ctypes.c_double(-7.0)
    status = lib.fastloss_ctc_loss(0 if dtype == np.float32 else 1, ctypes.byref(call), ws.ctypes.data, ws.size,
                                   ctypes.byref(value))
    return status, value.value, losses, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", [0, 1, 2])
@pytest.mark.parametrize("padded", [True, False])
def test_ctc_agrees_with_python(rlib, dtype, reduction, padded):
    import fastloss

    rng = np.random.default_rng(11)
    T, N, C, S = 12, 3, 6, 4
    x = rng.standard_normal((T, N, C))
    lp = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    tl = np.array([4, 2, 3], np.int64)
    il = np.array([12, 9, 11], np.int64)
    tg = rng.integers(1, C, (N, S)).astype(np.int64)
    targets = tg if padded else np.concatenate([tg[n, :tl[n]] for n in range(N)])
    red = REDUCTIONS[reduction]
    status, value, losses, grad = _ctc(rlib, dtype, lp, targets, il, tl, padded=padded, reduction=reduction,
                                       grads=True)
    assert status == OK, rlib.fastloss_last_error()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    want = fastloss.ctc_loss(lp, targets, il, tl, reduction=red)
    if reduction == 0:
        np.testing.assert_allclose(losses, want, rtol=rtol)
    else:
        np.testing.assert_allclose(value, want, rtol=rtol)
    np.testing.assert_allclose(grad, fastloss.ctc_loss_backward(lp, targets, il, tl, reduction=red), rtol=rtol,
                               atol=rtol)


def test_ctc_errors(rlib):
    """A label out of range or equal to blank: FASTLOSS_ERROR_INDEX; a short
    workspace or bad lengths: FASTLOSS_ERROR_INVALID_ARGUMENT; nothing written."""
    T, N, C = 5, 2, 4
    lp = np.full((T, N, C), -np.log(C))
    il = np.array([5, 4], np.int64)
    tl = np.array([2, 2], np.int64)
    for labels, code, word in (([[1, 4], [1, 2]], INDEX, b"label 4"), ([[1, 0], [1, 2]], INDEX, b"blank"),
                               ([[1, -1], [1, 2]], INDEX, b"label -1")):
        status, value, losses, grad = _ctc(rlib, np.float64, lp, np.array(labels, np.int64), il, tl, padded=True,
                                           reduction=0, grads=True)
        assert status == code and word in rlib.fastloss_last_error(), rlib.fastloss_last_error()
        assert np.all(losses == -7.0) and np.all(grad == -7.0)
    good = np.array([[1, 2], [3, 1]], np.int64)
    assert _ctc(rlib, np.float64, lp, good, il, tl, padded=True, grads=True, workspace=8)[0] == INVALID
    assert b"workspace" in rlib.fastloss_last_error()
    assert _ctc(rlib, np.float64, lp, good, np.array([6, 4], np.int64), tl, padded=True)[0] == INVALID
    assert b"input_lengths[0]" in rlib.fastloss_last_error()
    size = ctypes.c_size_t()
    assert rlib.fastloss_ctc_workspace_size(-1, 1, 1, 1, 1, ctypes.byref(size)) == INVALID
    # Sizes whose workspace cannot be addressed are refused, not wrapped to a small size.
    for T, N, S in ((100, 4, 2**60), (2**58, 4, 10), (2**40, 1, 2**40)):
        assert rlib.fastloss_ctc_workspace_size(T, N, S, 1, 2, ctypes.byref(size)) == INVALID, (T, N, S)
        assert b"workspace" in rlib.fastloss_last_error()


# ---------------------------------------------------------------- fuzzing the row-wise and CTC entry points


def _reach(shape, strides):
    """(lowest, highest) element offset an array of ``shape`` and ``strides`` reaches."""
    if not all(shape):
        return 0, 0
    lo = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
    return lo, hi


class Guarded:
    """Elements ``values`` laid out with ``strides`` over ``shape`` (any
    dtype), between guard zones."""

    def __init__(self, shape, strides, dtype, values=None, rng=None):
        lo, hi = _reach(shape, strides)
        self.size = hi - lo + 1
        self.dtype = np.dtype(dtype)
        self.pattern = self.dtype.type(123 if self.dtype.kind in "iu" else 12345.0)
        self.mem = np.full(self.size + 2 * GUARD, self.pattern, self.dtype)
        body = self.mem[GUARD:GUARD + self.size]
        if values is None:
            body[:] = rng.uniform(0.05, 0.95, self.size) if self.dtype.kind == "f" else 0
        self.origin = GUARD - lo
        if values is not None:  # element (i, j, k) = values[i, j, k] (later writes win where strides alias)
            for idx in np.ndindex(*shape):
                self.mem[self.origin + sum(i * s for i, s in zip(idx, strides))] = values[idx]
        self.shape, self.strides = shape, strides

    def pointer(self):
        return self.mem.ctypes.data + self.origin * self.mem.itemsize

    def read(self, idx):
        return self.mem[self.origin + sum(i * s for i, s in zip(idx, self.strides))]

    def guards_intact(self):
        return bool(np.all(self.mem[:GUARD] == self.pattern) and np.all(self.mem[GUARD + self.size:] == self.pattern))


def _own_strides(shape, signs):
    """C-order strides of ``shape`` with the given signs: an array that does not overlap itself."""
    step, out = 1, []
    for n, s in zip(reversed(shape), reversed(signs)):
        out.append(step if s >= 0 else -step)
        step *= max(n, 1)
    return list(reversed(out))


def _wrap(v, dtype):
    """``v`` wrapped into an integer dtype's range (as a C cast would)."""
    bits = 8 * np.dtype(dtype).itemsize
    v %= 1 << bits
    return v - (1 << bits) if np.iinfo(dtype).min < 0 and v >= 1 << (bits - 1) else v


@st.composite
def row_calls(draw):
    n_losses = max(len(ROW_TABLE), 1)
    loss = draw(st.integers(0, n_losses - 1)) if draw(st.integers(0, 19)) else draw(
        st.sampled_from([-1, n_losses, 1 << 20]))
    name, inputs, kind, options = ROW_TABLE[loss] if 0 <= loss < len(ROW_TABLE) else ("?", 1, 1, [])
    outer, classes, inner = (draw(st.integers(0, 4)) for _ in range(3))
    if kind in (TARGET_NONE, TARGET_FLOAT) or name == "cosine_embedding_loss":
        inner = draw(st.sampled_from([1, 1, 1, inner]))
    option_values = st.sampled_from([0.0, 1.0, 2.0, -1.0, 0.5, -100.0, 3.0, float("nan"), float("inf"), 1e300])
    index_target = kind in (TARGET_INDEX, TARGET_INDEX_ROWS) or (kind == TARGET_INDEX_OR_FLOAT and draw(st.booleans()))
    target_type = draw(st.integers(1, 8)) if index_target else 0
    if not draw(st.integers(0, 19)):
        target_type = draw(st.sampled_from([-1, 0, 4, 9, 1 << 30]))
    strides = st.integers(-6, 6)
    return {
        "loss": loss, "inputs": inputs, "kind": kind, "name": name,
        "cube": [outer, classes, inner],
        "input_strides": [[draw(strides) for _ in range(3)] for _ in range(MAX_ROW_INPUTS)],
        "present_inputs": [k < inputs or not draw(st.integers(0, 29)) for k in range(MAX_ROW_INPUTS)],
        "drop_input": not draw(st.integers(0, 29)),
        "target_type": target_type,
        "target_strides": [draw(strides) for _ in range(3)],
        "target_values": draw(st.lists(st.integers(-3, 7) if draw(st.integers(0, 9)) else st.sampled_from(
            [-100, -(2**63), 2**63 - 1, 255, 2**31, 2**64 - 1]), min_size=1, max_size=4)),
        "signs": draw(st.sampled_from([1.0, -1.0, 0.5])),
        "weight": draw(st.booleans()), "weight_stride": draw(strides),
        "grad_output": draw(st.booleans()), "go_strides": [draw(strides) for _ in range(3)],
        "reduction": draw(st.sampled_from([0, 1, 2] * 5 + [-1, 3])),
        "want_value": draw(st.integers(0, 9)) > 0, "want_grad": draw(st.booleans()),
        "grad_signs": [draw(st.sampled_from([1, -1])) for _ in range(3)],
        "options": {o: draw(st.sampled_from(
            [{"ignore_index": -100.0, "label_smoothing": 0.1, "p": 1.0, "margin": 1.0, "eps": 1e-6,
              "swap": 0.0}.get(o, 0.0)] * 3 + [None])) for o in options},
        "other_options": [draw(option_values) for _ in range(MAX_ROW_OPTIONS)],
        "dtype": draw(st.sampled_from([0, 1] * 10 + [2])),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(row_calls())
def test_fuzz_the_rowwise_abi(rlib, case):
    """Arbitrary row-wise calls: a status, never a crash or a write outside
    the arrays; an out-of-range class index is FASTLOSS_ERROR_INDEX (and a
    call that succeeds had none)."""
    rng = np.random.default_rng(case["seed"])
    dtype = np.float64 if case["dtype"] == 1 else np.float32
    outer, classes, inner = cube = case["cube"]
    call = RowCall()
    loss = case["loss"]
    if 0 <= loss < len(ROW_TABLE):
        assert rlib.fastloss_rowwise_call_init(loss, ctypes.byref(call)) == OK
    else:
        assert rlib.fastloss_rowwise_call_init(loss, ctypes.byref(call)) == INVALID
        call.struct_size = ctypes.sizeof(RowCall)
    call.outer, call.classes, call.inner = cube
    buffers = []
    for k in range(MAX_ROW_INPUTS):
        if case["present_inputs"][k] and not (case["drop_input"] and k == 0):
            b = Guarded(cube, case["input_strides"][k], dtype, rng=rng)
            buffers.append(b)
            call.inputs[k].data = b.pointer()
            for d in range(3):
                call.inputs[k].strides[d] = case["input_strides"][k][d]
    kind, tt = case["kind"], case["target_type"]
    call.target_type = tt
    rows_of_indices = kind == TARGET_INDEX_ROWS
    per_row = kind in (TARGET_INDEX, TARGET_INDEX_OR_FLOAT) and 1 <= tt <= 8 or case["name"] == "cosine_embedding_loss"
    target = None
    if kind != TARGET_NONE:
        tshape = [outer, 1, inner] if per_row else cube
        vals = case["target_values"]
        if 1 <= tt <= 8:
            tdtype = ELEMENT_TYPES[tt]
            flat = [_wrap(int(vals[i % len(vals)]) if rng.random() < 0.3 else int(rng.integers(-1, classes + 1)),
                          tdtype) for i in range(int(np.prod(tshape)))]
            values = np.array(flat, dtype=tdtype).reshape(tshape)
        else:
            tdtype = dtype
            if case["name"] == "cosine_embedding_loss":
                values = np.where(rng.random(tshape) < 0.5, -1.0, 1.0) * (case["signs"] if rng.random() < 0.2 else 1)
            else:
                values = rng.uniform(0, 1, tshape)
            values = values.astype(dtype)
        tstrides = list(case["target_strides"])
        target = Guarded(tshape, tstrides, tdtype, values=values)
        buffers.append(target)
        call.target.data = target.pointer()
        for d in range(3):
            call.target.strides[d] = tstrides[d]
    if case["weight"]:
        b = Guarded([1, classes, 1], [0, case["weight_stride"], 0], dtype, rng=rng)
        buffers.append(b)
        call.weight.data = b.pointer()
        call.weight.strides[1] = case["weight_stride"]
    if case["grad_output"]:
        st3 = [case["go_strides"][0], 0, case["go_strides"][2]]
        b = Guarded([outer, 1, inner], st3, dtype, rng=rng)
        buffers.append(b)
        call.grad_output.data = b.pointer()
        for d in range(3):
            call.grad_output.strides[d] = st3[d]
    call.reduction = case["reduction"]
    if call.reduction == 0 or rng.random() < 0.1:
        st3 = _own_strides([outer, 1, inner], case["grad_signs"])
        b = Guarded([outer, 1, inner], st3, dtype, rng=rng)
        buffers.append(b)
        call.loss_out.data = b.pointer()
        for d in range(3):
            call.loss_out.strides[d] = st3[d]
    call.want_value = int(case["want_value"])
    call.want_grad = int(case["want_grad"])
    if case["want_grad"]:
        for k in range(MAX_ROW_INPUTS):
            if k < case["inputs"] or not rng.integers(0, 20):
                st3 = _own_strides(cube, case["grad_signs"])
                b = Guarded(cube, st3, dtype, rng=rng)
                buffers.append(b)
                call.grads[k].data = b.pointer()
                for d in range(3):
                    call.grads[k].strides[d] = st3[d]
    names = ROW_TABLE[loss][3] if 0 <= loss < len(ROW_TABLE) else []
    for k, name in enumerate(names):
        value = case["options"].get(name)
        call.options[k] = value if value is not None else case["other_options"][k]
    if rng.random() < 0.05:
        call.options[len(names)] = case["other_options"][-1]
    value = ctypes.c_double()
    status = rlib.fastloss_rowwise(loss, case["dtype"], ctypes.byref(call), ctypes.byref(value))
    hypothesis.event(f"rowwise status {status}")
    assert status in (OK, INVALID, VALUE, INTERNAL, INDEX)
    if status != OK:
        assert rlib.fastloss_last_error()
    for b in buffers:
        assert b.guards_intact()
    index_loss = kind in (TARGET_INDEX, TARGET_INDEX_ROWS) or (kind == TARGET_INDEX_OR_FLOAT and 1 <= tt <= 8)
    if status in (OK, INDEX) and index_loss and 1 <= tt <= 8 and outer * inner > 0:
        # Whether the target has an index outside the range, by reading it back.
        ignore = None
        if "ignore_index" in names:
            ignore = call.options[names.index("ignore_index")]
        bad = False
        for n in range(outer):
            for s in range(inner):
                if rows_of_indices:
                    ys = [int(target.read((n, c, s))) for c in range(classes)]
                    bad = bad or any(y < -1 or y >= classes for y in ys)
                else:
                    y = int(target.read((n, 0, s)))
                    bad = bad or (not (ignore is not None and y == ignore) and not 0 <= y < classes)
        assert (status == INDEX) == bad, (status, rlib.fastloss_last_error())


@st.composite
def ctc_calls(draw):
    T, N, C, S = (draw(st.integers(0, 5)) for _ in range(4))
    lengths = st.integers(-1, 7) if draw(st.integers(0, 4)) else st.sampled_from([-(2**62), 2**62, 2**63 - 1])
    return {
        "shape": [T, N, C], "S": S,
        "strides": [draw(st.integers(-5, 5)) for _ in range(3)],
        "padded": draw(st.booleans()),
        "labels": [draw(st.integers(1, 4) if draw(st.integers(0, 9)) else st.integers(-2, 6))
                   for _ in range(max(N * S, 1))],
        "input_lengths": [draw(st.integers(0, T) if draw(st.integers(0, 29)) else lengths) for _ in range(N)],
        "target_lengths": [draw(st.integers(0, S) if draw(st.integers(0, 29)) else lengths) for _ in range(N)],
        "target_count": draw(st.sampled_from([None] * 8 + [-1, 0, 2**62])),
        "blank": draw(st.sampled_from([0] * 6 + [1, -1, 7])),
        "reduction": draw(st.sampled_from([0, 1, 2] * 4 + [-1, 5])),
        "zero_infinity": draw(st.booleans()), "exact": draw(st.booleans()),
        "grad": draw(st.booleans()), "grad_output": draw(st.booleans()),
        "workspace": draw(st.sampled_from(["query"] * 8 + ["short", "none"])),
        "threads": draw(st.sampled_from([1, 2, 4, 0])),
        "dtype": draw(st.sampled_from([0, 1] * 5 + [3])),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@hypothesis.settings(max_examples=max(EXAMPLES // 2, 50), deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(ctc_calls())
def test_fuzz_the_ctc_abi(rlib, case):
    """Arbitrary CTC calls (lengths and labels out of range, short
    workspaces): a status, never a crash or a write outside the arrays."""
    rng = np.random.default_rng(case["seed"])
    dtype = np.float64 if case["dtype"] == 1 else np.float32
    T, N, C = case["shape"]
    S = case["S"]
    call = CtcCall()
    rlib.fastloss_ctc_call_init(ctypes.byref(call))
    call.max_time, call.batch, call.classes = T, N, C
    lp = Guarded([T, N, C], case["strides"], dtype, rng=rng)
    call.log_probs = lp.pointer()
    for d in range(3):
        call.log_probs_strides[d] = case["strides"][d]
    labels = Guarded([len(case["labels"])], [1], np.int64, values=np.array(case["labels"], np.int64))
    call.targets = labels.pointer()
    call.padded_length = S if case["padded"] else -1
    count = N * S if case["padded"] else int(sum(max(0, min(t, S)) for t in case["target_lengths"]))
    count = min(count, len(case["labels"]))
    call.target_count = count if case["target_count"] is None else case["target_count"]
    hypothesis.assume(call.target_count <= len(case["labels"]))  # the caller's promise: target_count is readable
    il = Guarded([max(N, 1)], [1], np.int64, values=np.array(case["input_lengths"] or [0], np.int64))
    tl = Guarded([max(N, 1)], [1], np.int64, values=np.array(case["target_lengths"] or [0], np.int64))
    call.input_lengths, call.target_lengths = il.pointer(), tl.pointer()
    call.blank, call.reduction = case["blank"], case["reduction"]
    call.zero_infinity, call.exact = int(case["zero_infinity"]), int(case["exact"])
    buffers = [lp, labels, il, tl]
    losses = Guarded([max(N, 1)], [1], dtype, rng=rng)
    buffers.append(losses)
    call.losses = losses.pointer()
    if case["grad"]:
        gs = _own_strides([T, N, C], [1, -1, 1])
        grad = Guarded([T, N, C], gs, dtype, rng=rng)
        buffers.append(grad)
        call.grad = grad.pointer()
        for d in range(3):
            call.grad_strides[d] = gs[d]
    if case["grad_output"]:
        go = Guarded([max(N, 1)], [1], np.float64, rng=rng)
        buffers.append(go)
        call.grad_output = go.pointer()
        call.grad_output_stride = 1
    size = ctypes.c_size_t(0)
    longest = max([t for t in case["target_lengths"] if 0 <= t <= 64] or [0])
    qs = rlib.fastloss_ctc_workspace_size(T, N, longest, int(case["grad"]), case["threads"], ctypes.byref(size))
    assert qs == OK
    nbytes = {"query": size.value, "short": size.value // 3, "none": 0}[case["workspace"]]
    ws = np.zeros(nbytes + 1, np.uint8)
    value = ctypes.c_double()
    status = rlib.fastloss_ctc_loss(case["dtype"], ctypes.byref(call), ws.ctypes.data if nbytes else None, nbytes,
                                    ctypes.byref(value))
    hypothesis.event(f"ctc status {status}")
    assert status in (OK, INVALID, INDEX, INTERNAL)
    if status != OK:
        assert rlib.fastloss_last_error()
    for b in buffers:
        assert b.guards_intact()


# ---------------------------------------------------------------- linear_cross_entropy


class Matrix(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("strides", ctypes.c_int64 * 2)]


SGEMM = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                         ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_float,
                         ctypes.c_void_p, ctypes.c_int)
DGEMM = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                         ctypes.c_double, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                         ctypes.c_double, ctypes.c_void_p, ctypes.c_int)


class LceCall(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int64),
        ("rows", ctypes.c_int64), ("features", ctypes.c_int64), ("classes", ctypes.c_int64),
        ("inner", ctypes.c_int64),
        ("input", Matrix), ("linear_weight", Matrix),
        ("linear_bias", ctypes.c_void_p), ("linear_bias_stride", ctypes.c_int64),
        ("target", RowArray), ("target_type", ctypes.c_int32),
        ("weight", RowArray), ("grad_output", RowArray), ("loss_out", RowArray),
        ("grad_input", Matrix), ("grad_linear_weight", Matrix),
        ("grad_linear_bias", ctypes.c_void_p), ("grad_linear_bias_stride", ctypes.c_int64),
        ("reduction", ctypes.c_int32), ("want_value", ctypes.c_int32), ("want_grad", ctypes.c_int32),
        ("grad_scale", ctypes.c_double),
        ("ignore_index", ctypes.c_int64),
        ("label_smoothing", ctypes.c_double), ("z_loss", ctypes.c_double), ("softcap", ctypes.c_double),
        ("chunk_size", ctypes.c_int64),
        ("sgemm", SGEMM), ("dgemm", DGEMM),
    ]


@pytest.fixture(scope="module")
def llib(rlib):
    so = rlib
    so.fastloss_linear_cross_entropy_call_init.argtypes = [ctypes.POINTER(LceCall)]
    so.fastloss_linear_cross_entropy_workspace_size.argtypes = [ctypes.c_int, ctypes.POINTER(LceCall), ctypes.c_int,
                                                                ctypes.POINTER(ctypes.c_size_t)]
    so.fastloss_linear_cross_entropy.argtypes = [ctypes.c_int, ctypes.POINTER(LceCall), ctypes.c_void_p,
                                                 ctypes.c_size_t, ctypes.POINTER(ctypes.c_double)]
    return so


def _view(address, dtype, rows, cols, ld):
    """The row-major (rows, cols) matrix with leading dimension ``ld`` at ``address``."""
    item = np.dtype(dtype).itemsize
    count = (rows - 1) * ld + cols if rows and cols else 0
    flat = np.ctypeslib.as_array((ctypes.c_byte * (count * item)).from_address(address)).view(dtype)
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (ld * item, item))


class NumpyGemm:
    """cblas_?gemm's contract in NumPy (a BLAS plugged in through ctypes);
    counts its calls and checks the arguments fastloss promises."""

    def __init__(self, dtype):
        self.dtype, self.calls = np.dtype(dtype), 0
        self.callback = (SGEMM if self.dtype == np.float32 else DGEMM)(self)

    def __call__(self, layout, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        self.calls += 1
        assert layout == 101 and trans_a in (111, 112) and trans_b in (111, 112)
        assert min(m, n, k) >= 1 and alpha == 1 and beta in (0, 1)
        A = _view(a, self.dtype, m, k, lda) if trans_a == 111 else _view(a, self.dtype, k, m, lda).T
        B = _view(b, self.dtype, k, n, ldb) if trans_b == 111 else _view(b, self.dtype, n, k, ldb).T
        C = _view(c, self.dtype, m, n, ldc)
        C[...] = A @ B if beta == 0 else C + A @ B


def _lce(lib, dtype, x, w, y, *, bias=None, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0,
         z_loss=0.0, softcap=0.0, chunk=0, gemm=None, want_grad=True, grad_output=None, grad_scale=1.0,
         layouts=None, threads=None):
    """One fastloss_linear_cross_entropy call over ndarrays (any strides);
    returns (status, value, per-row losses, (grad_input, grad_linear_weight,
    grad_linear_bias))."""
    layouts = layouts or {}
    classes = w.shape[0]
    inner = int(np.prod(w.shape[1:-1]))
    rows, features = x.shape
    w2 = w.reshape(classes * inner, features) if w.flags.c_contiguous else w
    call = LceCall()
    lib.fastloss_linear_cross_entropy_call_init(ctypes.byref(call))
    assert call.struct_size == ctypes.sizeof(LceCall)
    call.rows, call.features, call.classes, call.inner = rows, features, classes, inner
    keep = [w2]

    def matrix(m, a):
        m.data = a.ctypes.data
        m.strides[0], m.strides[1] = (s // a.itemsize for s in a.strides)

    matrix(call.input, x)
    matrix(call.linear_weight, w2)
    if bias is not None:
        bias = bias.reshape(-1) if bias.flags.c_contiguous else bias
        keep.append(bias)
        call.linear_bias = bias.ctypes.data
        call.linear_bias_stride = bias.strides[0] // bias.itemsize
    if y.dtype.kind == "f":
        yc = y.reshape(rows, classes, inner)
        _set(call.target, yc, [s // yc.itemsize for s in yc.strides])
        call.target_type = 0
    else:
        yc = y.reshape(rows, inner)
        _set(call.target, yc, [yc.strides[0] // yc.itemsize, 0, yc.strides[1] // yc.itemsize])
        call.target_type = ELEMENT_TYPES.index(yc.dtype.type)
    keep.append(yc)
    if weight is not None:
        _set(call.weight, weight, [0, weight.strides[0] // weight.itemsize, 0])
    call.reduction = reduction
    call.ignore_index, call.label_smoothing, call.z_loss, call.softcap = ignore_index, label_smoothing, z_loss, softcap
    call.chunk_size = chunk
    call.grad_scale = grad_scale
    out = None
    if reduction == 0:
        out = np.full((rows, inner), -7.0, dtype)
        _set(call.loss_out, out, [inner, 0, 1])
        if grad_output is not None:
            _set(call.grad_output, grad_output, [inner, 0, 1])
    grads = None
    if want_grad:
        call.want_grad = 1
        gx = layouts.get("grad_input", np.full((rows, features), -7.0, dtype))
        gw = layouts.get("grad_linear_weight", np.full((classes * inner, features), -7.0, dtype))
        gx[...] = -7.0
        gw[...] = -7.0
        matrix(call.grad_input, gx)
        matrix(call.grad_linear_weight, gw)
        gb = None
        if bias is not None:
            gb = np.full(classes * inner, -7.0, dtype)
            call.grad_linear_bias = gb.ctypes.data
        grads = (gx, gw, gb)
    code = 0 if dtype == np.float32 else 1
    if gemm is not None:
        if dtype == np.float32:
            call.sgemm = gemm.callback
        else:
            call.dgemm = gemm.callback
    size = ctypes.c_size_t()
    status = lib.fastloss_linear_cross_entropy_workspace_size(code, ctypes.byref(call), threads or 4, ctypes.byref(size))
    if status != OK:  # (the query checks the sizes and chunk_size too)
        return status, None, out, grads
    ws = np.zeros(size.value, np.uint8)
    value = ctypes.c_double(-7.0)
    status = lib.fastloss_linear_cross_entropy(code, ctypes.byref(call), ws.ctypes.data, size.value,
                                               ctypes.byref(value))
    return status, value.value, out, grads


def _lce_problem(rng, dtype, rows=11, features=6, classes=9, out_features=()):
    x = rng.standard_normal((rows, features)).astype(dtype)
    w = (rng.standard_normal((classes, *out_features, features)) / np.sqrt(features)).astype(dtype)
    b = rng.standard_normal((classes, *out_features)).astype(dtype)
    y = rng.integers(0, classes, (rows, *out_features)).astype(np.int32)
    if y.size > 2:
        y.flat[2] = -100
    return x, w, b, y


def _compare_lce(status, value, out, grads, lib, reduction, x, w, y, kwargs, rtol, has_bias):
    import fastloss

    assert status == OK, lib.fastloss_last_error()
    red = REDUCTIONS[reduction]
    expected = fastloss.linear_cross_entropy(x, w, y, reduction=red, **kwargs)
    if reduction == 0:
        np.testing.assert_allclose(out.reshape(np.shape(expected)), expected, rtol=rtol, atol=rtol)
    else:
        np.testing.assert_allclose(value, expected, rtol=rtol, atol=rtol * 1e-3)
    gx, gw, gb = fastloss.linear_cross_entropy_backward(x, w, y, reduction=red, **kwargs)
    np.testing.assert_allclose(grads[0], gx, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(grads[1].reshape(gw.shape), gw, rtol=rtol, atol=rtol * 1e-2)
    if has_bias:
        np.testing.assert_allclose(grads[2].reshape(gb.shape), gb, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", [0, 1, 2])
@pytest.mark.parametrize("gemm", ["builtin", "numpy"])
def test_linear_cross_entropy_agrees_with_python(llib, dtype, reduction, gemm):
    """fastloss_linear_cross_entropy equals fastloss.linear_cross_entropy
    (value and the three gradients) for every reduction, with ignore_index,
    class weights, label smoothing, a bias or none, chunks of 1, 7 and more
    than the rows, through the built-in GEMM and a caller's (NumPy) one."""
    rng = np.random.default_rng(21)
    rtol = 2e-5 if dtype == np.float32 else 1e-11
    x, w, b, y = _lce_problem(rng, dtype)
    cw = rng.uniform(0.5, 2.0, w.shape[0]).astype(dtype)
    cases = [
        (dict(), dict(chunk=0)),
        (dict(linear_bias=b, weight=cw, label_smoothing=0.1), dict(bias=b, weight=cw, label_smoothing=0.1, chunk=7)),
        (dict(linear_bias=b, ignore_index=3), dict(bias=b, ignore_index=3, chunk=1)),
        (dict(weight=cw, label_smoothing=0.3), dict(weight=cw, label_smoothing=0.3, chunk=100)),
    ]
    for kwargs, options in cases:
        g = NumpyGemm(dtype) if gemm == "numpy" else None
        yy = y.copy()
        if "ignore_index" in kwargs:
            yy[yy == -100] = kwargs["ignore_index"]
        status, value, out, grads = _lce(llib, dtype, x, w, yy, reduction=reduction, gemm=g, **options)
        _compare_lce(status, value, out, grads, llib, reduction, x, w, yy, kwargs, rtol, "linear_bias" in kwargs)
        if g is not None:
            assert g.calls >= 3  # the caller's GEMM did the products


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_cross_entropy_k_dimensional_probabilities_and_extras(llib, dtype):
    """A K-dimensional linear_weight (classes, d1, F), probability targets,
    z_loss, softcap (its own gradient buffer when inner > 1) and a
    per-row grad_output, against Python."""
    import fastloss

    rng = np.random.default_rng(22)
    rtol = 3e-5 if dtype == np.float32 else 1e-11
    x, w, b, y = _lce_problem(rng, dtype, rows=5, features=4, classes=6, out_features=(3,))
    for gemm in (None, NumpyGemm(dtype)):
        for kwargs, options in (
            (dict(linear_bias=b, z_loss=1e-3, softcap=5.0), dict(bias=b, z_loss=1e-3, softcap=5.0, chunk=2)),
            (dict(softcap=3.0), dict(softcap=3.0)),
        ):
            for reduction in (0, 1, 2):
                status, value, out, grads = _lce(llib, dtype, x, w, y, reduction=reduction, gemm=gemm, **options)
                _compare_lce(status, value, out, grads, llib, reduction, x, w, y, kwargs, rtol, "linear_bias" in kwargs)
        p = rng.random((5, 6, 3)).astype(dtype)
        p /= p.sum(1, keepdims=True)
        status, value, _, grads = _lce(llib, dtype, x, w, p, reduction=1, gemm=gemm, chunk=3)
        _compare_lce(status, value, None, grads, llib, 1, x, w, p, {}, rtol, False)
        go = rng.uniform(0.5, 1.5, (5, 3)).astype(dtype)
        status, _, out, grads = _lce(llib, dtype, x, w, y, reduction=0, gemm=gemm, grad_output=go, chunk=4)
        assert status == OK
        gx, gw, _ = fastloss.linear_cross_entropy_backward(x, w, y, reduction="none", grad_output=go)
        np.testing.assert_allclose(grads[0], gx, rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_allclose(grads[1].reshape(gw.shape), gw, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("gemm", ["builtin", "numpy"])
def test_linear_cross_entropy_strided_operands(llib, gemm):
    """Transposed, reversed and every-other-row operands (inputs and
    gradients) give the contiguous results; with a caller's GEMM the ones a
    BLAS cannot take are copied through the workspace."""
    rng = np.random.default_rng(23)
    dtype = np.float64
    x, w, b, y = _lce_problem(rng, dtype, rows=9, features=5, classes=7)
    ref = _lce(llib, dtype, x, w, y, bias=b, chunk=4)
    assert ref[0] == OK
    xs = np.asfortranarray(x)  # column-major: a BLAS transpose
    ws_ = np.empty((14, 10))[::2, ::2]
    ws_[...] = w  # every other row and column: no BLAS layout
    bs = np.empty(14)[::-2]
    bs[:7] = b
    bs = bs[:7]
    gx = np.empty((5, 9)).T  # column-major gradient
    gw = np.empty((7, 10))[:, ::-2]  # reversed columns
    g = NumpyGemm(dtype) if gemm == "numpy" else None
    status, value, _, grads = _lce(llib, dtype, xs, ws_, y, bias=bs, chunk=4, gemm=g,
                                   layouts={"grad_input": gx, "grad_linear_weight": gw})
    assert status == OK, llib.fastloss_last_error()
    np.testing.assert_allclose(value, ref[1], rtol=1e-13)
    for got, want in zip(grads, ref[3]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_linear_cross_entropy_builtin_gemm_is_deterministic(llib):
    """The built-in GEMM on 1 and 4 threads, over several tiles (more than
    96 rows and 256 columns, a K of more than one block): the same bits."""
    rng = np.random.default_rng(24)
    x, w, b, y = _lce_problem(rng, np.float32, rows=130, features=300, classes=270)
    before = llib.fastloss_get_num_threads()
    try:
        llib.fastloss_set_num_threads(1)
        one = _lce(llib, np.float32, x, w, y, bias=b, threads=1)
        llib.fastloss_set_num_threads(4)
        four = _lce(llib, np.float32, x, w, y, bias=b, threads=4)
    finally:
        llib.fastloss_set_num_threads(before)
    assert one[0] == four[0] == OK
    assert one[1] == four[1]
    for a, c in zip(one[3], four[3]):
        assert np.array_equal(a, c)
    _compare_lce(*one, llib, 1, x, w, y, dict(linear_bias=b), 2e-4, True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_cross_entropy_empty_batch(llib, dtype):
    """No rows: 'mean' is NaN, 'sum' 0, and grad_linear_weight / grad_linear_bias are zeros (Python's)."""
    import fastloss

    rng = np.random.default_rng(25)
    x, w, b, y = _lce_problem(rng, dtype, rows=0)
    for reduction in (1, 2):
        status, value, _, grads = _lce(llib, dtype, x, w, y, bias=b, reduction=reduction)
        assert status == OK, llib.fastloss_last_error()
        expected = fastloss.linear_cross_entropy(x, w, y, linear_bias=b, reduction=REDUCTIONS[reduction])
        np.testing.assert_equal(value, float(expected))
        _, gw, gb = fastloss.linear_cross_entropy_backward(x, w, y, linear_bias=b, reduction=REDUCTIONS[reduction])
        np.testing.assert_array_equal(grads[1], gw)
        np.testing.assert_array_equal(grads[2], gb)


def test_linear_cross_entropy_errors(llib):
    """Index errors name the index (FASTLOSS_ERROR_INDEX), bad options and a
    short workspace are FASTLOSS_ERROR_INVALID_ARGUMENT; nothing is written."""
    rng = np.random.default_rng(26)
    x, w, b, y = _lce_problem(rng, np.float64, rows=4)
    bad = y.copy()
    bad[3] = 9
    status, _, _, grads = _lce(llib, np.float64, x, w, bad)
    assert status == INDEX and b"class index 9" in llib.fastloss_last_error()
    assert np.all(grads[0] == -7.0) and np.all(grads[1] == -7.0)
    big = y.astype(np.uint64)
    big[1] = 2**64 - 1
    status, _, _, _ = _lce(llib, np.float64, x, w, big)
    assert status == INDEX and b"18446744073709551615" in llib.fastloss_last_error()
    for options, word in ((dict(label_smoothing=1.5), b"label_smoothing"), (dict(softcap=-1.0), b"softcap"),
                          (dict(z_loss=float("inf")), b"z_loss"), (dict(chunk=-1), b"chunk_size"),
                          (dict(reduction=5), b"reduction")):
        status, _, _, grads = _lce(llib, np.float64, x, w, y, **options)
        assert status == INVALID and word in llib.fastloss_last_error(), options
        assert np.all(grads[0] == -7.0)
    call = LceCall()
    llib.fastloss_linear_cross_entropy_call_init(ctypes.byref(call))
    call.rows, call.features, call.classes = 4, 6, 9
    for m, a in ((call.input, x), (call.linear_weight, w)):
        m.data = a.ctypes.data
        m.strides[0], m.strides[1] = a.shape[1], 1
    call.target.data, call.target.strides[0] = y.ctypes.data, 1
    call.target_type = ELEMENT_TYPES.index(np.int32)
    ws = np.zeros(64, np.uint8)
    assert llib.fastloss_linear_cross_entropy(1, ctypes.byref(call), ws.ctypes.data, 64, None) == INVALID
    assert b"workspace" in llib.fastloss_last_error()
    assert llib.fastloss_linear_cross_entropy(1, ctypes.byref(call), None, 1 << 30, None) == INVALID
    assert b"workspace: NULL" in llib.fastloss_last_error()
    call.struct_size = 8
    assert llib.fastloss_linear_cross_entropy(1, ctypes.byref(call), ws.ctypes.data, 64, None) == INVALID
    assert b"struct_size" in llib.fastloss_last_error()


# ---------------------------------------------------------------- strides that overflow


HUGE = [2**63 - 1, (2**63 - 1) // 3, -(2**63 - 1), 2**62, -(2**62)]


@pytest.mark.parametrize("stride", HUGE)
def test_strides_beyond_the_address_range_are_refused(llib, stride):
    """A stride whose reach overflows int64 or wraps the pointer is
    FASTLOSS_ERROR_INVALID_ARGUMENT naming the array, at every entry point
    that takes strides (before: a class stride of INT64_MAX/3 crashed, a row
    stride of INT64_MAX wrapped the address)."""
    rng = np.random.default_rng(27)
    x = rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 1], np.int64)
    # row-wise: the class stride, then the row stride
    for axis in (1, 0):
        loss_id = llib.fastloss_rowwise_loss_id(b"cross_entropy")
        call = RowCall()
        llib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
        call.outer, call.classes, call.inner = 4, 3, 1
        _set(call.inputs[0], x, [3, 1, 0])
        call.inputs[0].strides[axis] = stride
        _set(call.target, y, [1, 0, 0])
        value = ctypes.c_double()
        assert llib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), ctypes.byref(value)) == INVALID
        assert b"inputs[0].strides" in llib.fastloss_last_error()
    # a per-row target's row stride
    loss_id = llib.fastloss_rowwise_loss_id(b"cross_entropy")
    call = RowCall()
    llib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
    call.outer, call.classes, call.inner = 4, 3, 1
    _set(call.inputs[0], x, [3, 1, 0])
    _set(call.target, y, [stride, 0, 0])
    assert llib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), None) == INVALID
    assert b"target.strides" in llib.fastloss_last_error()
    # element-wise
    mse = llib.fastloss_loss_id(b"mse_loss")
    ecall = Call()
    llib.fastloss_call_init(ctypes.byref(ecall))
    ecall.ndim, ecall.shape[0], ecall.shape[1] = 2, 4, 3
    for k in range(2):
        ecall.inputs[k].data = x.ctypes.data
        ecall.inputs[k].strides[0], ecall.inputs[k].strides[1] = 3, 1
    ecall.inputs[1].strides[0] = stride
    assert llib.fastloss_elementwise(mse, 1, ctypes.byref(ecall), None) == INVALID
    assert b"inputs[1].strides" in llib.fastloss_last_error()
    value = ctypes.c_double()
    assert llib.fastloss_reduce(mse, 1, 1, ctypes.byref(ecall), ctypes.byref(value)) == INVALID
    # CTC
    lp = np.log(np.full((3, 1, 4), 0.25))
    ccall = CtcCall()
    llib.fastloss_ctc_call_init(ctypes.byref(ccall))
    ccall.max_time, ccall.batch, ccall.classes = 3, 1, 4
    ccall.log_probs = lp.ctypes.data
    ccall.log_probs_strides[0], ccall.log_probs_strides[1], ccall.log_probs_strides[2] = 4, 4, stride
    labels, il, tl = np.array([1], np.int64), np.array([3], np.int64), np.array([1], np.int64)
    ccall.targets, ccall.target_count, ccall.padded_length = labels.ctypes.data, 1, 1
    ccall.input_lengths, ccall.target_lengths = il.ctypes.data, tl.ctypes.data
    ws = np.zeros(1 << 16, np.uint8)
    assert llib.fastloss_ctc_loss(1, ctypes.byref(ccall), ws.ctypes.data, ws.size, None) == INVALID
    assert b"log_probs_strides" in llib.fastloss_last_error()
    # linear_cross_entropy: input, linear_weight, a gradient
    xw, w, b, yl = _lce_problem(rng, np.float64, rows=4, features=3, classes=5)
    for name in ("input", "linear_weight", "grad_input"):
        lcall = LceCall()
        llib.fastloss_linear_cross_entropy_call_init(ctypes.byref(lcall))
        lcall.rows, lcall.features, lcall.classes = 4, 3, 5
        lcall.input.data, lcall.input.strides[0], lcall.input.strides[1] = xw.ctypes.data, 3, 1
        lcall.linear_weight.data, lcall.linear_weight.strides[0], lcall.linear_weight.strides[1] = w.ctypes.data, 3, 1
        lcall.target.data, lcall.target.strides[0], lcall.target_type = yl.ctypes.data, 1, ELEMENT_TYPES.index(np.int32)
        gx = np.zeros((4, 3))
        lcall.want_grad = 1
        lcall.grad_input.data, lcall.grad_input.strides[0], lcall.grad_input.strides[1] = gx.ctypes.data, 3, 1
        getattr(lcall, name).strides[0] = stride
        assert llib.fastloss_linear_cross_entropy(1, ctypes.byref(lcall), ws.ctypes.data, ws.size, None) == INVALID
        assert f"{name}.strides".encode() in llib.fastloss_last_error()
        assert np.all(gx == 0)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (0, 4, 5)])
def test_an_empty_arrays_other_strides_are_checked_too(llib, shape):
    """The stride rule counts an empty axis as extent 1 at every entry point
    (the row-wise and CTC drivers form the addresses of an empty array's
    rows): an element-wise call over an empty shape with a stride beyond the
    address range on another axis is refused too, and runs with sane ones."""
    x = np.zeros(1)
    mse = llib.fastloss_loss_id(b"mse_loss")
    call = Call()
    llib.fastloss_call_init(ctypes.byref(call))
    call.ndim = len(shape)
    for d, n in enumerate(shape):
        call.shape[d] = n
    for k in range(2):
        call.inputs[k].data = x.ctypes.data
    huge_axis = 1 if shape[0] == 0 else 0
    call.inputs[0].strides[huge_axis] = -(2**63)
    value = ctypes.c_double()
    assert llib.fastloss_reduce(mse, 1, 1, ctypes.byref(call), ctypes.byref(value)) == INVALID
    assert b"inputs[0].strides" in llib.fastloss_last_error()
    call.inputs[0].strides[huge_axis] = 0
    assert llib.fastloss_reduce(mse, 1, 2, ctypes.byref(call), ctypes.byref(value)) == OK
    assert value.value == 0.0  # 'sum' of nothing


def test_large_in_range_strides_still_run(llib):
    """The rule refuses only what overflows: a broadcast (0) and a large
    negative-but-fitting stride over one element still run."""
    x = np.array([[0.5, 1.0, -1.0]])
    y = np.array([2], np.int64)
    loss_id = llib.fastloss_rowwise_loss_id(b"cross_entropy")
    call = RowCall()
    llib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call))
    call.outer, call.classes, call.inner = 1, 3, 1
    _set(call.inputs[0], x, [2**62, 1, 2**62])  # extent-1 axes: their stride is never used
    _set(call.target, y, [2**63 - 1, 0, 0])
    value = ctypes.c_double()
    assert llib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), ctypes.byref(value)) == OK, llib.fastloss_last_error()
    import fastloss

    np.testing.assert_allclose(value.value, fastloss.cross_entropy(x, y), rtol=1e-14)


def test_uint64_class_index_message(rlib):
    """A uint64 class index 2**64 - 1 is named as itself (as Python does), not as INT64_MAX."""
    x = np.zeros((2, 3))
    y = np.array([1, 2**64 - 1], np.uint64)
    status, _, _, _ = _row_call(rlib, "cross_entropy", np.float64, [x], (2, 3, 1), target=y.reshape(2, 1))
    assert status == INDEX
    message = rlib.fastloss_last_error().decode()
    assert "18446744073709551615" in message and "9223372036854775807" not in message
    import fastloss

    with pytest.raises(IndexError, match="18446744073709551615"):
        fastloss.cross_entropy(x, y)


def test_uint64_beyond_int64_is_never_ignore_index(llib):
    """linear_cross_entropy's int64 ignore_index INT64_MAX does not let the
    uint64 index 2**64 - 1 through (it is read clamped to INT64_MAX): an
    index error, as Python's exact comparison gives."""
    import fastloss

    rng = np.random.default_rng(28)
    x, w, _, _ = _lce_problem(rng, np.float64, rows=2)
    y = np.array([1, 2**64 - 1], np.uint64)
    status, _, _, _ = _lce(llib, np.float64, x, w, y, ignore_index=2**63 - 1)
    assert status == INDEX and b"18446744073709551615" in llib.fastloss_last_error()
    with pytest.raises(IndexError):
        fastloss.linear_cross_entropy(x, w, y, ignore_index=2**63 - 1)
    y[1] = 2**63 - 1  # the index itself is ignored
    status, value, _, _ = _lce(llib, np.float64, x, w, y, ignore_index=2**63 - 1)
    assert status == OK
    np.testing.assert_allclose(value, fastloss.linear_cross_entropy(x, w, y, ignore_index=2**63 - 1), rtol=1e-12)


@st.composite
def lce_calls(draw):
    strides = st.integers(-6, 6)
    want_grad = draw(st.booleans())
    return {
        "sizes": [draw(st.integers(0, 5)) for _ in range(4)],  # rows, features, classes, inner
        "x_strides": [draw(strides) for _ in range(2)], "w_strides": [draw(strides) for _ in range(2)],
        "bias": draw(st.booleans()), "bias_stride": draw(strides),
        "float_target": not draw(st.integers(0, 4)),
        "target_type": draw(st.integers(1, 8)) if draw(st.integers(0, 9)) else draw(st.sampled_from([-1, 9])),
        "target_strides": [draw(strides) for _ in range(3)],
        "target_values": draw(st.lists(st.integers(-3, 7) if draw(st.integers(0, 9)) else st.sampled_from(
            [-100, -(2**63), 2**63 - 1, 2**64 - 1]), min_size=1, max_size=4)),
        "weight": draw(st.booleans()), "weight_stride": draw(strides),
        "reduction": draw(st.sampled_from([0, 1, 2] * 5 + [-1, 3])),
        "want_value": draw(st.integers(0, 19)) > 0 or not want_grad, "want_grad": want_grad,
        "grads": [draw(st.integers(0, 4)) > 0 for _ in range(3)], "grad_signs": [draw(st.sampled_from([1, -1]))
                                                                                 for _ in range(2)],
        "ignore_index": draw(st.sampled_from([-100] * 5 + [0, 2, 2**63 - 1])),
        "label_smoothing": draw(st.sampled_from([0.0] * 8 + [0.1, 1.5, float("nan")])),
        "z_loss": draw(st.sampled_from([0.0] * 8 + [1e-3, float("inf")])),
        "softcap": draw(st.sampled_from([0.0] * 8 + [5.0, -1.0, 1e-300])),
        "chunk": draw(st.sampled_from([0, 1, 2, 7] * 4 + [-1])),
        "gemm": draw(st.sampled_from(["builtin"] * 3 + ["numpy"])),
        "workspace": draw(st.sampled_from(["query"] * 8 + ["short", "none"])),
        "threads": draw(st.sampled_from([1, 2, 4, 0])),
        "dtype": draw(st.sampled_from([0, 1] * 5 + [2])),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@hypothesis.settings(max_examples=max(EXAMPLES // 2, 50), deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(lce_calls())
def test_fuzz_the_linear_cross_entropy_abi(llib, case):
    """Arbitrary linear_cross_entropy calls (sizes, strides, missing arrays,
    target types and indices, options, chunk sizes, short workspaces, the
    built-in GEMM or a caller's): a status, never a crash or a write outside
    the arrays; a caller's GEMM only sees what the contract promises."""
    rng = np.random.default_rng(case["seed"])
    dtype = np.float64 if case["dtype"] == 1 else np.float32
    N, F, C, S = case["sizes"]
    V = C * S
    call = LceCall()
    llib.fastloss_linear_cross_entropy_call_init(ctypes.byref(call))
    call.rows, call.features, call.classes, call.inner = N, F, C, S
    buffers = []

    def place(struct, shape, strides, kind=dtype, values=None):
        b = Guarded(shape, strides, kind, values=values, rng=rng)
        buffers.append(b)
        struct.data = b.pointer()
        for d, s in enumerate(strides):
            struct.strides[d] = s

    place(call.input, [N, F], case["x_strides"])
    place(call.linear_weight, [V, F], case["w_strides"])
    if case["bias"]:
        b = Guarded([V], [case["bias_stride"]], dtype, rng=rng)
        buffers.append(b)
        call.linear_bias, call.linear_bias_stride = b.pointer(), case["bias_stride"]
    tstrides = case["target_strides"]
    if case["float_target"]:
        call.target_type = 0
        place(call.target, [N, C, S], tstrides)
    else:
        tt = case["target_type"]
        call.target_type = tt
        kind = ELEMENT_TYPES[tt] if 1 <= tt <= 8 else np.int64
        vals = case["target_values"]
        flat = [_wrap(int(vals[i % len(vals)]) if rng.random() < 0.3 else int(rng.integers(-1, C + 1)), kind)
                for i in range(N * S)]
        place(call.target, [N, 1, S], [tstrides[0], 0, tstrides[2]], kind,
              np.array(flat, dtype=kind).reshape(N, 1, S))
    if case["weight"]:
        place(call.weight, [1, C, 1], [0, case["weight_stride"], 0])
    call.reduction = case["reduction"]
    if call.reduction == 0 or rng.random() < 0.1:
        place(call.loss_out, [N, 1, S], _own_strides([N, 1, S], [case["grad_signs"][0], 1, 1]))
    call.want_value, call.want_grad = int(case["want_value"]), int(case["want_grad"])
    if case["want_grad"]:
        if case["grads"][0]:
            place(call.grad_input, [N, F], _own_strides([N, F], case["grad_signs"]))
        if case["grads"][1]:
            place(call.grad_linear_weight, [V, F], _own_strides([V, F], case["grad_signs"][::-1]))
        if case["grads"][2] and (case["bias"] or rng.random() < 0.2):
            b = Guarded([V], [case["grad_signs"][0]], dtype, rng=rng)
            buffers.append(b)
            call.grad_linear_bias, call.grad_linear_bias_stride = b.pointer(), case["grad_signs"][0]
    call.ignore_index, call.label_smoothing = case["ignore_index"], case["label_smoothing"]
    call.z_loss, call.softcap, call.chunk_size = case["z_loss"], case["softcap"], case["chunk"]
    gemm = NumpyGemm(dtype) if case["gemm"] == "numpy" else None
    if gemm is not None:
        call.sgemm, call.dgemm = (gemm.callback, DGEMM()) if dtype == np.float32 else (SGEMM(), gemm.callback)
    size = ctypes.c_size_t(0)
    qs = llib.fastloss_linear_cross_entropy_workspace_size(case["dtype"], ctypes.byref(call), case["threads"],
                                                           ctypes.byref(size))
    assert qs in (OK, INVALID)
    nbytes = {"query": size.value, "short": size.value // 3, "none": 0}[case["workspace"]] if qs == OK else 4096
    ws = np.zeros(nbytes + 1, np.uint8)
    value = ctypes.c_double()
    status = llib.fastloss_linear_cross_entropy(case["dtype"], ctypes.byref(call),
                                                ws.ctypes.data if nbytes else None, nbytes, ctypes.byref(value))
    hypothesis.event(f"linear_cross_entropy status {status}")
    if status == INVALID:
        hypothesis.event(llib.fastloss_last_error().decode().replace("fastloss::linear_cross_entropy: ", "")[:24])
    assert status in (OK, INVALID, INDEX, INTERNAL)
    if status != OK:
        assert llib.fastloss_last_error()
    for b in buffers:
        assert b.guards_intact()
