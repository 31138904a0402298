"""Regression tests for what the libFuzzer harness of the C ABI
(fuzz/c_abi_fuzz.cpp, run by fuzz/run.sh) found, one test per finding, as
plain ctypes calls (they do not depend on how the harness decodes its bytes,
which its crash inputs do).

Like tests/test_c_abi.py these run when FASTLOSS_C_LIBRARY names a built
libfastloss.so (``.ci/run`` builds it with AddressSanitizer + UBSan, which is
what turns the undefined behaviour below into a failure)."""

import ctypes
import itertools

import numpy as np
import pytest

from test_c_abi import LIBRARY, OK, CtcCall, RowCall, lib, rlib  # noqa: F401 (lib: rlib's fixture)

pytestmark = pytest.mark.skipif(not LIBRARY, reason="FASTLOSS_C_LIBRARY (a built libfastloss.so) is not set")


def _uniform_ctc(rlib, classes, want_grad=False):
    """CTC over T = 5 steps of one sample (labels [1, 2]) whose log-probs are
    all log(1/4), given as one element broadcast with zero strides over
    ``classes`` classes. Returns (status, loss)."""
    log_probs = np.array([np.log(0.25)])
    labels = np.array([1, 2], np.int64)
    input_lengths, target_lengths = np.array([5], np.int64), np.array([2], np.int64)
    call = CtcCall()
    rlib.fastloss_ctc_call_init(ctypes.byref(call))
    call.max_time, call.batch, call.classes = 5, 1, classes
    call.log_probs = log_probs.ctypes.data  # strides stay 0: every (t, n, c) is this one element
    call.targets, call.target_count, call.padded_length = labels.ctypes.data, 2, 2
    call.input_lengths, call.target_lengths = input_lengths.ctypes.data, target_lengths.ctypes.data
    call.reduction = 2  # sum
    size = ctypes.c_size_t()
    assert rlib.fastloss_ctc_workspace_size(5, 1, 2, int(want_grad), 1, ctypes.byref(size)) == OK
    workspace = np.zeros(size.value, np.uint8)
    value = ctypes.c_double(-7.0)
    status = rlib.fastloss_ctc_loss(1, ctypes.byref(call), workspace.ctypes.data, workspace.size,
                                    ctypes.byref(value))
    return status, value.value


def test_ctc_with_more_classes_than_int64_elements(rlib):
    """Found by fuzz/run.sh (UBSan in ctc_driver.cpp): the null
    check of log_probs multiplied T * N * classes in int64, which overflows
    (undefined behaviour) for classes = 2^62. With zero strides such a call
    reads one element and is valid; its loss depends only on the paths, not
    on the class count: the same as with 4 classes, and -log(paths) - 5 log(1/4)
    with the alignments of [1, 2] in 5 steps counted by brute force."""
    status, small = _uniform_ctc(rlib, 4)
    assert status == OK
    status, huge = _uniform_ctc(rlib, 2**62)
    assert status == OK, rlib.fastloss_last_error()
    assert huge == small
    # Brute force: the length-5 sequences over {blank, 1, 2} that collapse to [1, 2].

    def collapse(seq):  # merge repeats, drop blanks (0)
        return [s for i, s in enumerate(seq) if s != 0 and (i == 0 or seq[i - 1] != s)]

    paths = sum(collapse(seq) == [1, 2] for seq in itertools.product(range(3), repeat=5))
    np.testing.assert_allclose(huge, -np.log(paths) - 5 * np.log(0.25), rtol=1e-12)


@pytest.mark.parametrize("want_grad", [False, True])
def test_ctc_without_time_steps_checks_the_other_strides(rlib, want_grad):
    """Found by fuzz/run.sh (UBSan in ctc_driver.cpp): with max_time = 0 the
    log-probs reach nothing, so the stride rule skipped them, but the driver
    still forms each sample's address, n * stride * size, which overflows
    int64 for a stride of 2^61. Now an empty axis counts as extent 1: the
    batch stride is checked and refused, naming the array; a sane one runs
    (every sample empty: loss -log 1 = 0)."""
    log_probs, grad = np.zeros(1), np.full(1, 7.0)

    def call_with(stride):
        call = CtcCall()
        rlib.fastloss_ctc_call_init(ctypes.byref(call))
        call.max_time, call.batch, call.classes = 0, 2, 3
        call.log_probs = log_probs.ctypes.data
        call.log_probs_strides[:] = [1, stride, 1]
        if want_grad:
            call.grad = grad.ctypes.data
            call.grad_strides[:] = [1, 1, 1]
        call.input_lengths, call.target_lengths = lengths.ctypes.data, lengths.ctypes.data
        call.targets, call.target_count, call.padded_length = lengths.ctypes.data, 0, 0
        call.reduction = 2  # sum
        value = ctypes.c_double(-7.0)
        status = rlib.fastloss_ctc_loss(1, ctypes.byref(call), workspace.ctypes.data, size.value,
                                        ctypes.byref(value))
        return status, value.value

    lengths = np.zeros(2, np.int64)
    size = ctypes.c_size_t()
    assert rlib.fastloss_ctc_workspace_size(0, 2, 0, int(want_grad), 1, ctypes.byref(size)) == OK
    workspace = np.zeros(max(size.value, 1), np.uint8)
    status, _ = call_with(2**61)
    assert status != OK
    assert "log_probs_strides" in rlib.fastloss_last_error().decode()
    status, value = call_with(0)
    assert status == OK, rlib.fastloss_last_error()
    assert value == 0.0
    assert grad[0] == 7.0  # the gradient has no elements: nothing written


def test_a_target_for_a_loss_that_takes_none_is_refused(rlib):
    """Found by fuzz/run.sh (ASan SEGV in embedding.h): a target array passed
    to triplet_margin_loss (which takes none) was read by the kernel, with
    strides the reach check had no shape for. Now the call is refused naming
    target, as a class weight for a loss without one already was."""
    x = np.random.default_rng(3).standard_normal((4, 5))
    t = np.ones(1)
    loss_id = rlib.fastloss_rowwise_loss_id(b"triplet_margin_loss")
    call = RowCall()
    assert rlib.fastloss_rowwise_call_init(loss_id, ctypes.byref(call)) == OK
    call.outer, call.classes, call.inner = 4, 5, 1
    for k in range(3):
        call.inputs[k].data = x.ctypes.data
        call.inputs[k].strides[0], call.inputs[k].strides[1] = 5, 1
    value = ctypes.c_double()
    assert rlib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), ctypes.byref(value)) == OK
    call.target.data = t.ctypes.data
    call.target.strides[0] = 2**40  # within the address range's rule for a (4, 1, 1) target, far outside t
    assert rlib.fastloss_rowwise(loss_id, 1, ctypes.byref(call), ctypes.byref(value)) != OK
    assert b"target" in rlib.fastloss_last_error()
