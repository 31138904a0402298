"""ctc_loss (the sequence family): against torch 2.13 autograd and the
float64 reference over the semantics issue 10 lists (random lengths,
repeated labels, empty targets, T = 1, blank != 0, unbatched, concatenated
targets, zero_infinity, every reduction), the exact derivative against
finite differences, long sequences in float32, every ISA level, any thread
count, the errors, and the nn class."""

from __future__ import annotations

import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import _core, reference

REDUCTIONS = ["none", "mean", "sum"]


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def make(rng, T, N, C, S, *, blank=0, repeats=False, min_target=0, dtype=np.float64):
    """(log_probs, padded targets, input_lengths, target_lengths): random
    lengths (input in [1, T], target in [min_target, S]); labels avoid blank;
    ``repeats`` draws from 2 labels so repeated labels are common."""
    lp = log_softmax(rng.standard_normal((T, N, C)) * 2).astype(dtype)
    labels = [c for c in range(C) if c != blank]
    pool = labels[:2] if repeats else labels
    targets = rng.choice(pool, size=(N, S))
    il = rng.integers(1, T + 1, size=N) if T > 0 else np.zeros(N, np.int64)
    tl = rng.integers(min_target, S + 1, size=N)
    return lp, targets, il, tl


def torch_ctc(lp, targets, il, tl, grad_output=None, **options):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(np.ascontiguousarray(lp)).requires_grad_(True)
    loss = torch.nn.functional.ctc_loss(x, torch.from_numpy(np.asarray(targets, np.int64)),
                                        torch.from_numpy(np.asarray(il, np.int64)),
                                        torch.from_numpy(np.asarray(tl, np.int64)), **options)
    g = torch.ones_like(loss) if grad_output is None else torch.as_tensor(grad_output, dtype=loss.dtype)
    loss.backward(g)
    return loss.detach().numpy(), x.grad.numpy()


def assert_matches(got, want, rtol, atol=0.0):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


TOL = {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 2e-6)}

SCENARIOS = {
    # name: (T, N, C, S, make options)
    "random": (30, 6, 7, 8, {}),
    "repeated": (25, 5, 4, 10, {"repeats": True}),
    "empty_targets": (10, 4, 5, 3, {}),  # min_target 0: some S = 0
    "t1": (1, 4, 5, 1, {}),
    "blank3": (20, 5, 6, 5, {"blank": 3}),
    "blank_last": (20, 5, 6, 5, {"blank": 5}),
    "one_sample": (40, 1, 30, 12, {}),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_against_torch(scenario, zero_infinity, reduction, dtype):
    T, N, C, S, opts = SCENARIOS[scenario]
    rng = np.random.default_rng(list(SCENARIOS).index(scenario))
    lp, tg, il, tl = make(rng, T, N, C, S, dtype=dtype, **opts)
    options = dict(blank=opts.get("blank", 0), reduction=reduction, zero_infinity=zero_infinity)
    go = rng.uniform(0.5, 1.5, N).astype(dtype) if reduction == "none" else np.asarray(0.7, dtype)
    want, want_grad = torch_ctc(lp, tg, il, tl, go, **options)
    rtol, atol = TOL[dtype]
    value, grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, grad_output=go, **options)
    assert np.asarray(value).dtype == dtype and grad.dtype == dtype and grad.shape == lp.shape
    assert_matches(value, want, rtol)
    assert_matches(grad, want_grad, rtol, atol)
    assert_matches(fastloss.ctc_loss(lp, tg, il, tl, **options), want, rtol)
    np.testing.assert_array_equal(fastloss.ctc_loss_backward(lp, tg, il, tl, grad_output=go, **options), grad)
    # and the float64 reference (independent code)
    assert_matches(value, reference.ctc_loss(lp, tg, il, tl, **options), rtol)
    assert_matches(grad, reference.ctc_loss_backward(lp, tg, il, tl, grad_output=go, **options), rtol, atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_and_concatenated_targets(reduction):
    rng = np.random.default_rng(1)
    lp, tg, il, tl = make(rng, 15, 4, 6, 5, min_target=1)
    # unbatched (T, C) with (S,) targets: torch's result for the one sample
    for n in range(4):
        args = (lp[:, n], tg[n, :tl[n]], il[n:n + 1], tl[n:n + 1])
        want, want_grad = torch_ctc(*args, reduction=reduction)
        value, grad = fastloss.ctc_loss_value_and_grad(*args, reduction=reduction)
        # torch takes exactly target_length labels unbatched; fastloss also a longer (padded) row
        padded = fastloss.ctc_loss_value_and_grad(lp[:, n], tg[n], il[n], tl[n], reduction=reduction)
        np.testing.assert_array_equal(padded[0], value)
        np.testing.assert_array_equal(padded[1], grad)
        assert np.shape(value) == () and grad.shape == lp[:, n].shape
        assert isinstance(value, np.ndarray) == (reduction == "none")  # torch: a 0-d tensor for 'none'
        assert_matches(value, want, 1e-10)
        assert_matches(grad, want_grad, 1e-10, 1e-12)
    # concatenated 1-d targets: the same losses as padded ones
    concat = np.concatenate([tg[n, :tl[n]] for n in range(4)])
    want, want_grad = torch_ctc(lp, concat, il, tl, reduction=reduction)
    value, grad = fastloss.ctc_loss_value_and_grad(lp, concat, il, tl, reduction=reduction)
    assert_matches(value, want, 1e-10)
    assert_matches(grad, want_grad, 1e-10, 1e-12)
    np.testing.assert_array_equal(value, fastloss.ctc_loss(lp, tg, il, tl, reduction=reduction))


def test_impossible_alignment_and_zero_infinity():
    """The issue's example: a repeated label needs a blank in between, so
    [[1, 1]] in 2 steps has no alignment: inf and a NaN gradient (torch);
    zero_infinity gives 0 and a zero gradient."""
    lp = log_softmax(np.zeros((2, 1, 3)))
    want, want_grad = torch_ctc(lp, [[1, 1]], [2], [2], reduction="none")
    value, grad = fastloss.ctc_loss_value_and_grad(lp, [[1, 1]], [2], [2], reduction="none")
    assert value[0] == np.inf and want[0] == np.inf
    assert np.isnan(grad).all() and np.isnan(want_grad).all()
    value, grad = fastloss.ctc_loss_value_and_grad(lp, [[1, 1]], [2], [2], reduction="none", zero_infinity=True)
    assert value[0] == 0 and not np.signbit(value[0])
    np.testing.assert_array_equal(grad, np.zeros_like(lp))
    # a batch: the feasible sample is unaffected, its gradient finite
    lp2 = log_softmax(np.random.default_rng(0).standard_normal((2, 2, 3)))
    value, grad = fastloss.ctc_loss_value_and_grad(lp2, [[1, 1], [1, 2]], [2, 2], [2, 2], reduction="sum")
    want, want_grad = torch_ctc(lp2, [[1, 1], [1, 2]], [2, 2], [2, 2], reduction="sum")
    assert value == np.inf and want == np.inf
    assert_matches(grad, want_grad, 1e-12)


def test_input_length_zero():
    """'none' is [-0.0, inf] for target lengths [0, 1] (as torch); the gradient is 0."""
    lp = log_softmax(np.zeros((2, 2, 3)))
    value, grad = fastloss.ctc_loss_value_and_grad(lp, [[1], [1]], [0, 0], [0, 1], reduction="none")
    want, want_grad = torch_ctc(lp, [[1], [1]], [0, 0], [0, 1], reduction="none")
    np.testing.assert_array_equal(value, want)
    assert value[0] == 0 and np.signbit(value[0]) and np.signbit(want[0])
    assert value[1] == np.inf
    np.testing.assert_array_equal(grad, np.zeros_like(lp))
    np.testing.assert_array_equal(want_grad, grad)
    # zero_infinity: [-0.0, 0]
    value = fastloss.ctc_loss(lp, [[1], [1]], [0, 0], [0, 1], reduction="none", zero_infinity=True)
    np.testing.assert_array_equal(value, [0.0, 0.0])


def test_minus_inf_log_probs_follow_torch():
    """log_probs = -inf (masked classes): torch's formula gives NaN for those
    entries' gradient; the loss stays finite."""
    rng = np.random.default_rng(3)
    lp = log_softmax(rng.standard_normal((6, 2, 5)))
    lp[2, 0, 4] = -np.inf  # a class not in the targets
    lp[3, 1, 0] = -np.inf  # the blank
    tg, il, tl = np.array([[1, 2], [2, 3]]), np.array([6, 6]), np.array([2, 2])
    want, want_grad = torch_ctc(lp, tg, il, tl, reduction="sum")
    value, grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction="sum")
    assert_matches(value, want, 1e-12)
    assert_matches(grad, want_grad, 1e-10, 1e-12)


def test_time_steps_past_the_input_length_get_zero():
    rng = np.random.default_rng(4)
    lp, tg, _, tl = make(rng, 12, 3, 5, 3)
    il = np.array([12, 5, 1])
    tl = np.minimum(tl, [3, 2, 0])
    grad = fastloss.ctc_loss_backward(lp, tg, il, tl, reduction="sum")
    for n, length in enumerate(il):
        assert np.all(grad[length:, n] == 0)
        assert np.all(grad[:length, n] != 0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_exact_gradient_against_finite_differences(reduction):
    """exact=True is the true derivative of the loss w.r.t. any log_probs
    (not normalised here); torch's convention differs by exp(log_probs)."""
    rng = np.random.default_rng(5)
    T, N, C = 7, 3, 4
    lp = rng.standard_normal((T, N, C))  # unnormalised
    tg = np.array([[1, 2, 1], [3, 3, 0], [2, 0, 0]])
    tl = np.array([3, 2, 1])
    il = np.array([7, 6, 4])
    go = rng.uniform(0.5, 1.5, N) if reduction == "none" else 0.8
    grad = fastloss.ctc_loss_backward(lp, tg, il, tl, reduction=reduction, grad_output=go, exact=True)

    def f(x):
        return float(np.sum(go * reference.ctc_loss(x, tg, il, tl, reduction=reduction)))

    h = 1e-6
    numeric = np.zeros_like(lp)
    for idx in np.ndindex(lp.shape):
        up, down = lp.copy(), lp.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (f(up) - f(down)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    torch_style = fastloss.ctc_loss_backward(lp, tg, il, tl, reduction=reduction, grad_output=go)
    scale = (np.broadcast_to(go, (N,)) / (np.maximum(tl, 1) * N if reduction == "mean" else 1))
    mask = np.arange(T)[:, None] < il[None, :]
    np.testing.assert_allclose(torch_style - grad, np.exp(lp) * scale[None, :, None] * mask[:, :, None], rtol=1e-10,
                               atol=1e-14)
    value, vg = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction=reduction, grad_output=go, exact=True)
    np.testing.assert_array_equal(vg, grad)
    np.testing.assert_allclose(
        grad, reference.ctc_loss_backward(lp, tg, il, tl, reduction=reduction, grad_output=go, exact=True),
        rtol=1e-10, atol=1e-14)


def test_long_sequence_float32_stays_accurate():
    """T = 5000: float32 inputs, recursions in float64: loss and gradient
    within float32 rounding of the float64 reference."""
    rng = np.random.default_rng(6)
    T, C, S = 5000, 20, 400
    lp64 = log_softmax(rng.standard_normal((T, 1, C)) * 2)
    lp32 = lp64.astype(np.float32)
    tg = rng.integers(1, C, size=(1, S))
    il, tl = np.array([T]), np.array([S])
    value, grad = fastloss.ctc_loss_value_and_grad(lp32, tg, il, tl, reduction="sum")
    want = reference.ctc_loss(lp32.astype(np.float64), tg, il, tl, reduction="sum")
    want_grad = reference.ctc_loss_backward(lp32.astype(np.float64), tg, il, tl, reduction="sum")
    assert abs(float(value) - want) <= 1e-6 * abs(want)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("kind", ["int8", "uint8", "int16", "int32", "uint32", "int64", "list", "tuple"])
def test_integer_inputs_of_any_width(kind):
    rng = np.random.default_rng(7)
    lp, tg, il, tl = make(rng, 10, 3, 6, 4)
    want = fastloss.ctc_loss(lp, tg, il, tl, reduction="none")

    def conv(a):
        a = np.asarray(a)
        if kind == "list":
            return a.tolist()
        if kind == "tuple":
            return tuple(a.tolist()) if a.ndim == 1 else tuple(tuple(r) for r in a.tolist())
        return a.astype(kind)

    np.testing.assert_array_equal(fastloss.ctc_loss(lp, conv(tg), conv(il), conv(tl), reduction="none"), want)


def test_layouts_do_not_change_the_result():
    rng = np.random.default_rng(8)
    lp, tg, il, tl = make(rng, 16, 5, 9, 4)
    want, want_grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction="none")
    batch_first = np.ascontiguousarray(lp.transpose(1, 0, 2)).transpose(1, 0, 2)  # (T, N, C) view of (N, T, C)
    reversed_classes = np.ascontiguousarray(lp[:, :, ::-1])[:, :, ::-1]
    for view in (batch_first, reversed_classes, np.asfortranarray(lp)):
        value, grad = fastloss.ctc_loss_value_and_grad(view, tg, il, tl, reduction="none")
        np.testing.assert_array_equal(value, want)
        np.testing.assert_array_equal(grad, want_grad)
    out = np.full((5, 16, 9), np.nan).transpose(1, 0, 2)  # strided out=
    value, grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction="none", out=out)
    assert grad is out
    np.testing.assert_array_equal(out, want_grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bitwise_identical_across_isas_and_threads(restore_threads, dtype):
    rng = np.random.default_rng(9)
    lp, tg, il, tl = make(rng, 120, 13, 20, 30, dtype=dtype)
    before = _core.current_isa()
    results = []
    try:
        for isa in _core.available_isas():
            _core.select_isa(isa)
            for threads in (1, 2, 5):
                fastloss.set_num_threads(threads)
                value, grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction="none")
                mean = fastloss.ctc_loss(lp, tg, il, tl)
                results.append((isa, threads, value, grad, mean))
    finally:
        _core.select_isa(before)
    first = results[0]
    for isa, threads, value, grad, mean in results[1:]:
        assert value.tobytes() == first[2].tobytes(), (isa, threads)
        assert grad.tobytes() == first[3].tobytes(), (isa, threads)
        assert mean.tobytes() == first[4].tobytes(), (isa, threads)


def test_every_isa_against_torch(isa):
    rng = np.random.default_rng(10)
    lp, tg, il, tl = make(rng, 40, 6, 9, 10, blank=2)
    want, want_grad = torch_ctc(lp, tg, il, tl, blank=2, reduction="none")
    value, grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, blank=2, reduction="none")
    assert_matches(value, want, 1e-10)
    assert_matches(grad, want_grad, 1e-10, 1e-12)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_types_compute_in_float32(dtype):
    import ml_dtypes

    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(np.float16)
    rng = np.random.default_rng(11)
    lp, tg, il, tl = make(rng, 20, 4, 6, 5)
    half = lp.astype(dt)
    value, grad = fastloss.ctc_loss_value_and_grad(half, tg, il, tl, reduction="none")
    v32, g32 = fastloss.ctc_loss_value_and_grad(half.astype(np.float32), tg, il, tl, reduction="none")
    assert value.dtype == dt and grad.dtype == dt
    np.testing.assert_array_equal(value, v32.astype(dt))
    np.testing.assert_array_equal(grad, g32.astype(dt))


def test_empty_batch():
    lp = np.zeros((5, 0, 4))
    assert np.isnan(fastloss.ctc_loss(lp, np.zeros((0, 2), np.int64), [], []))
    assert fastloss.ctc_loss(lp, np.zeros((0, 2), np.int64), [], [], reduction="sum") == 0
    assert fastloss.ctc_loss_backward(lp, np.zeros((0, 2), np.int64), [], []).shape == (5, 0, 4)


# ------------------------------------------------------------------ errors

GOOD = dict(log_probs=log_softmax(np.zeros((5, 2, 4))), targets=np.array([[1, 2], [3, 3]]),
            input_lengths=np.array([5, 4]), target_lengths=np.array([2, 1]))

BAD = [
    ({"input_lengths": np.array([5, -1])}, ValueError, "input_lengths"),
    ({"input_lengths": np.array([5, 6])}, ValueError, "input_lengths"),
    ({"input_lengths": np.array([5])}, ValueError, "input_lengths"),
    ({"input_lengths": np.array([5.0, 4.0])}, TypeError, "input_lengths"),
    ({"target_lengths": np.array([2, -1])}, ValueError, "target_lengths"),
    ({"target_lengths": np.array([3, 1])}, ValueError, "target_lengths"),
    ({"target_lengths": np.array([2, 1, 1])}, ValueError, "target_lengths"),
    ({"targets": np.array([[1, 4], [3, 3]])}, IndexError, "targets"),  # label == C
    ({"targets": np.array([[1, 2], [-1, 3]])}, IndexError, "targets"),
    ({"targets": np.array([[1, 0], [3, 3]])}, IndexError, "targets"),  # label == blank
    ({"targets": np.array([[1, 2]])}, ValueError, "targets"),  # batch mismatch
    ({"targets": np.array([1, 2, 3, 3])}, ValueError, "targets"),  # concatenated: 4 labels, lengths add to 3
    # concatenated: lengths whose int64 sum wraps
    ({"targets": np.array([1, 2, 3]), "target_lengths": np.array([2**62, 2**62])}, ValueError, "target_lengths"),
    ({"targets": np.array([[1.0, 2.0], [3.0, 3.0]])}, TypeError, "targets"),
    ({"targets": np.zeros((2, 2, 1), np.int64)}, ValueError, "targets"),
    ({"log_probs": np.zeros((5, 2, 4), np.int64)}, TypeError, "log_probs"),
    ({"log_probs": np.zeros((5, 2, 4, 1))}, ValueError, "log_probs"),
    ({"log_probs": np.zeros(5)}, ValueError, "log_probs"),
    ({"blank": 4}, ValueError, "blank"),
    ({"blank": -1}, ValueError, "blank"),
    ({"blank": 1.0}, TypeError, "blank"),
    ({"reduction": "batchmean"}, ValueError, "reduction"),
    ({"zero_infinity": 1}, TypeError, "zero_infinity"),
]


@pytest.mark.parametrize("change, error, name", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_errors_name_the_argument(change, error, name):
    args = dict(GOOD, **change)
    for fn in (fastloss.ctc_loss, fastloss.ctc_loss_backward, fastloss.ctc_loss_value_and_grad):
        with pytest.raises(error, match=name):
            fn(**args)


def test_label_beyond_classes_is_never_read():
    """torch reads out of bounds for labels >= C; fastloss raises, even for
    huge unsigned labels that wrap when cast."""
    args = dict(GOOD, targets=np.array([[1, 2], [2**63 + 1, 3]], np.uint64))
    with pytest.raises(IndexError, match="targets"):
        fastloss.ctc_loss(**args)


def test_bad_grad_output_and_out():
    with pytest.raises(ValueError, match="grad_output"):
        fastloss.ctc_loss_backward(**GOOD, reduction="none", grad_output=np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        fastloss.ctc_loss_backward(**GOOD, grad_output=np.ones(2))
    with pytest.raises(ValueError, match="out"):
        fastloss.ctc_loss_backward(**GOOD, out=np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="out"):
        fastloss.ctc_loss_backward(**GOOD, out=np.zeros((5, 2, 4), np.float32))
    with pytest.raises(TypeError, match="exact"):
        fastloss.ctc_loss_backward(**GOOD, exact=1)
    with pytest.raises(TypeError):
        fastloss.ctc_loss(**GOOD, exact=True)  # the forward has no exact=


def test_core_rechecks_what_python_checked():
    """The binding and C++ driver refuse what the Python layer would have
    (a caller that skips it gets an exception, not a bad read)."""
    lp = np.ascontiguousarray(GOOD["log_probs"])
    il, tl = np.array([5, 4]), np.array([2, 1])
    with pytest.raises(IndexError):
        _core.ctc_loss(lp, np.array([1, 2, 9, 9]), 2, il, tl, 0, 1, False, None, None, False, None)
    with pytest.raises(ValueError):
        _core.ctc_loss(lp, np.array([1, 2, 3, 3]), 2, np.array([6, 4]), tl, 0, 1, False, None, None, False, None)
    with pytest.raises(ValueError):
        _core.ctc_loss(lp, np.array([1, 2, 3]), -1, il, np.array([2, 2]), 0, 1, False, None, None, False, None)
    with pytest.raises(ValueError):
        _core.ctc_loss(lp, np.array([1, 2, 3, 3]), 2, il, tl, 4, 1, False, None, None, False, None)


# ------------------------------------------------------------ nn and peers


def test_nn_class():
    torch = pytest.importorskip("torch")
    crit = fastloss.nn.CTCLoss(blank=3, reduction="sum", zero_infinity=True)
    assert repr(crit) == "CTCLoss(blank=3, reduction='sum', zero_infinity=True)"
    rng = np.random.default_rng(12)
    lp, tg, il, tl = make(rng, 12, 3, 5, 4, blank=3)
    value, grad = crit.value_and_grad(lp, tg, il, tl)
    assert value == crit(lp, tg, il, tl) == fastloss.ctc_loss(lp, tg, il, tl, blank=3, reduction="sum",
                                                              zero_infinity=True)
    np.testing.assert_array_equal(crit.backward(lp, tg, il, tl), grad)
    exact = fastloss.ctc_loss_backward(lp, tg, il, tl, blank=3, reduction="sum", zero_infinity=True, exact=True)
    np.testing.assert_array_equal(crit.backward(lp, tg, il, tl, exact=True), exact)
    np.testing.assert_array_equal(crit.value_and_grad(lp, tg, il, tl, exact=True)[1], exact)
    theirs = torch.nn.CTCLoss(blank=3, reduction="sum", zero_infinity=True)
    x = torch.from_numpy(lp).requires_grad_(True)
    loss = theirs(x, *(torch.from_numpy(a) for a in (tg, il, tl)))
    loss.backward()
    assert_matches(value, loss.detach().numpy(), 1e-10)
    assert_matches(grad, x.grad.numpy(), 1e-10, 1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_jax_peer_computes_the_same_loss(reduction):
    """The bench's JAX peer (optax.ctc_loss under jit) is the same loss and
    gradient (optax differentiates through its log_softmax: torch's
    convention on log_softmax outputs)."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("optax")
    from fastloss._api import REGISTRY

    spec = REGISTRY["ctc_loss"]
    (lp, tg, il, tl), _ = spec.sample(np.random.default_rng(13), 3000, np.dtype(np.float32))
    f = jax.jit(lambda x: spec.jax(jax.numpy, x, tg, il, tl, reduction=reduction))
    value = np.asarray(f(lp))
    want, want_grad = fastloss.ctc_loss_value_and_grad(lp, tg, il, tl, reduction=reduction)
    np.testing.assert_allclose(value, want, rtol=1e-4)
    grad = np.asarray(jax.grad(lambda x: jax.numpy.sum(f(x)))(lp))
    np.testing.assert_allclose(grad, want_grad, rtol=1e-3, atol=1e-5)
