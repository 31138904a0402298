"""Fuzzing the C ABI (cpp/include/fastloss.h) through ctypes: arbitrary loss
ids, dtypes, shapes, strides (negative and zero included), options, missing
arrays and NULL pointers. Every call must return a status (never crash), write
nothing outside the arrays' reach (guard bytes around every buffer), and agree
with fastloss's Python functions on what it computes.

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
