"""linear_cross_entropy and LinearCrossEntropyLoss against torch 2.13's
F.linear_cross_entropy / nn.LinearCrossEntropyLoss (values and autograd
gradients), plus the properties of the chunked driver: any chunk_size gives
the same maths, thread counts change no bit, the logits never exist."""

import json
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import nn
from fastloss._api import REGISTRY

from cases import BEYOND_TORCH_OPTIONS

F32, F64 = np.float32, np.float64


def _data(rng, n, h, c, out_features=(), bias=False, dtype=F64, probabilities=False, target_dtype=np.int64,
          ignored=0):
    x = rng.standard_normal((n, h)).astype(dtype)
    w = rng.standard_normal((c, *out_features, h)).astype(dtype)
    b = rng.standard_normal((c, *out_features)).astype(dtype) if bias else None
    if probabilities:
        p = rng.random((n, c, *out_features))
        t = (p / p.sum(1, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, c, (n, *out_features)).astype(target_dtype)
        if ignored:
            t.reshape(-1)[:ignored] = -100 if np.dtype(target_dtype).kind == "i" else 0
    return x, w, t, b


def _torch(x, w, t, b=None, grad_output=None, options=None, **kw):
    """torch's value and autograd gradients, in float64 (the oracle for both dtypes)."""
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tb = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t.astype(np.float64) if t.dtype.kind == "f" else t.astype(np.int64))
    if "weight" in kw and kw["weight"] is not None:
        kw["weight"] = torch.tensor(kw["weight"], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "options ignored" fallback warning
        value = torch.nn.functional.linear_cross_entropy(tx, tw, tt, linear_bias=tb, options=options, **kw)
    go = torch.ones_like(value) if grad_output is None else torch.as_tensor(np.asarray(grad_output, np.float64))
    (value * go).sum().backward()
    grads = (tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())
    return value.detach().numpy(), grads


def _close(got, want, dtype):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if dtype == F64:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max(initial=0)))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1e-3, np.abs(want).max(initial=0)))


def _check(args, kw, dtype, grad_output=None, chunk_size=None, torch_options=None):
    x, w, t, b = args
    want_value, want_grads = _torch(x, w, t, b, grad_output=grad_output, options=torch_options, **dict(kw))
    value, grads = fastloss.linear_cross_entropy_value_and_grad(
        x, w, t, linear_bias=b, grad_output=grad_output, chunk_size=chunk_size, **kw)
    assert np.asarray(value).dtype == dtype
    _close(value, want_value, dtype)
    for g, want, arr in zip(grads, want_grads, (x, w, b)):
        if arr is None:
            assert g is None
            continue
        assert g.shape == arr.shape and g.dtype == arr.dtype
        _close(g, want, dtype)
    forward = fastloss.linear_cross_entropy(x, w, t, linear_bias=b, chunk_size=chunk_size, **kw)
    np.testing.assert_array_equal(forward, value)
    backward = fastloss.linear_cross_entropy_backward(x, w, t, linear_bias=b, grad_output=grad_output,
                                                      chunk_size=chunk_size, **kw)
    for g, gg in zip(backward, grads):
        if g is not None:
            np.testing.assert_array_equal(g, gg)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_class_indices_match_torch(dtype, reduction, bias, weighted, label_smoothing):
    rng = np.random.default_rng(1)
    args = _data(rng, 37, 11, 53, bias=bias, dtype=dtype, ignored=4)
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    if weighted:
        kw["weight"] = rng.random(53).astype(dtype)
    _check(args, kw, dtype, chunk_size=8)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("out_features", [(), (3,), (2, 3)])
def test_probabilities_match_torch(dtype, reduction, out_features):
    rng = np.random.default_rng(2)
    args = _data(rng, 19, 7, 13, out_features, bias=True, dtype=dtype, probabilities=True)
    kw = {"reduction": reduction, "weight": rng.random(13).astype(dtype), "label_smoothing": 0.2}
    _check(args, kw, dtype, chunk_size=5)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
def test_k_dimensional_out_features_match_torch(dtype, reduction, bias):
    rng = np.random.default_rng(3)
    args = _data(rng, 23, 9, 17, (4, 3), bias=bias, dtype=dtype, ignored=5)
    kw = {"reduction": reduction, "weight": rng.random(17).astype(dtype), "label_smoothing": 0.05}
    _check(args, kw, dtype, chunk_size=6)


@pytest.mark.parametrize("target_dtype", [np.int64, np.int32, np.int16, np.uint8, np.uint64])
def test_any_integer_target_width(target_dtype):
    rng = np.random.default_rng(4)
    args = _data(rng, 29, 8, 40, dtype=F64, target_dtype=target_dtype)
    _check(args, {"reduction": "mean"}, F64, chunk_size=7)


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 7, 40, 41, 1000])
def test_any_chunk_size_same_maths(chunk_size):
    rng = np.random.default_rng(5)
    x, w, t, b = _data(rng, 40, 16, 300, bias=True, dtype=F64, ignored=3)
    _check((x, w, t, b), {"label_smoothing": 0.1}, F64, chunk_size=chunk_size)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extras", [{"z_loss": 1e-3}, {"softcap": 2.5}, {"z_loss": 0.2, "softcap": 4.0}], ids=str)
@pytest.mark.parametrize("probabilities", [False, True])
def test_z_loss_and_softcap_as_cross_entropy(dtype, reduction, extras, probabilities):
    """z_loss / softcap act on the logits exactly as in cross_entropy: the
    fused loss equals fastloss.cross_entropy of the formed logits (chunked or
    not), and the peer written in torch ops (linear, then Liger-Kernel's
    definition) gives the same values and gradients."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x, w, t, b = _data(rng, 21, 6, 17, (3,) if probabilities else (), bias=True, dtype=dtype,
                       probabilities=probabilities, ignored=0 if probabilities else 3)
    kw = {"reduction": reduction, "label_smoothing": 0.1, **extras}
    if not probabilities:
        kw["weight"] = rng.random(17).astype(dtype)
    value, grads = fastloss.linear_cross_entropy_value_and_grad(x, w, t, linear_bias=b, chunk_size=4, **kw)
    logits = np.einsum("nh,cjh->ncj", x, w) + b if probabilities else x @ w.T + b
    ce_value, ce_grad = fastloss.cross_entropy_value_and_grad(logits, t, **kw)
    _close(value, ce_value, dtype)
    g = ce_grad.reshape(len(x), -1)
    _close(grads[0], g @ w.reshape(-1, w.shape[-1]), dtype)
    _close(grads[1], (g.T @ x).reshape(w.shape), dtype)
    _close(grads[2], g.sum(0).reshape(b.shape), dtype)
    tx, tw, tb = (torch.tensor(a.astype(F64), requires_grad=True) for a in (x, w, b))
    tt = torch.tensor(t.astype(F64) if probabilities else t)
    tkw = {k: torch.tensor(v.astype(F64)) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    want = REGISTRY["linear_cross_entropy"].torch(torch, tx, tw, tt, linear_bias=tb, **tkw)
    want.sum().backward()
    _close(value, want.detach().numpy(), dtype)
    for got, tv in zip(grads, (tx, tw, tb)):
        _close(got, tv.grad.numpy(), dtype)
    # The defaults run torch's own computation.
    np.testing.assert_array_equal(
        fastloss.linear_cross_entropy(x, w, t, linear_bias=b, z_loss=0.0, softcap=None),
        fastloss.linear_cross_entropy(x, w, t, linear_bias=b))


@pytest.mark.parametrize("bad, error", [({"z_loss": float("nan")}, ValueError), ({"z_loss": "a"}, TypeError),
                                        ({"softcap": 0.0}, ValueError), ({"softcap": -1.0}, ValueError),
                                        ({"softcap": float("inf")}, ValueError)], ids=str)
def test_z_loss_and_softcap_errors(bad, error):
    rng = np.random.default_rng(12)
    x, w, t, _ = _data(rng, 4, 3, 5)
    name = next(iter(bad))
    with pytest.raises(error, match=name):
        fastloss.linear_cross_entropy(x, w, t, **bad)
    with pytest.raises(error, match=name):
        fastloss.cross_entropy(x @ w.T, t, **bad)


@pytest.mark.parametrize("softcap", [1e-300, 1e39])
def test_softcap_outside_the_computation_dtype_raises(softcap):
    """float32 would round 1e-300 to 0 and 1e39 to inf (NaN logits): a
    ValueError naming softcap; float64 computes them."""
    rng = np.random.default_rng(13)
    x, w, t, _ = _data(rng, 4, 3, 5)
    for fn, args in ((fastloss.linear_cross_entropy, (x, w, t)), (fastloss.cross_entropy, (x @ w.T, t))):
        assert np.isfinite(fn(*args, softcap=softcap))
        with pytest.raises(ValueError, match="softcap"):
            fn(*(a.astype(F32) if a.dtype == F64 else a for a in args), softcap=softcap)
    with pytest.raises(ValueError, match="softcap"):
        fastloss.cross_entropy((x @ w.T).astype(np.float16), t, softcap=1e39)


def test_out_buffers_must_not_overlap_each_other():
    rng = np.random.default_rng(14)
    x, w, t, _ = _data(rng, 4, 4, 4)
    buf = np.zeros(16)
    with pytest.raises(ValueError, match=r"out\[1\]: overlaps out\[0\]"):
        fastloss.linear_cross_entropy_backward(x, w, t, out=(buf.reshape(4, 4), buf.reshape(4, 4), None))
    a, b, y, g = rng.standard_normal(5), rng.standard_normal(5), np.sign(rng.standard_normal(5)), np.zeros(5)
    with pytest.raises(ValueError, match="overlaps out"):
        fastloss.margin_ranking_loss_backward(a, b, y, out=(g, g))
    assert not g.any()


def test_ignore_index_explicit_and_default():
    rng = np.random.default_rng(6)
    x, w, t, b = _data(rng, 30, 6, 10, dtype=F64)
    t[::3] = 4
    _check((x, w, t, b), {"ignore_index": 4}, F64, chunk_size=4)
    t[::4] = -100  # the default (None) ignores -100, as torch
    _check((x, w, t, b), {}, F64, chunk_size=4)


def test_grad_output_reduced_and_per_row():
    rng = np.random.default_rng(7)
    x, w, t, b = _data(rng, 21, 5, 12, (2,), bias=True, dtype=F64, ignored=2)
    _check((x, w, t, b), {"reduction": "mean"}, F64, grad_output=2.5, chunk_size=4)
    _check((x, w, t, b), {"reduction": "none"}, F64, grad_output=rng.standard_normal((21, 2)), chunk_size=4)
    _check((x, w, t, b), {"reduction": "none"}, F64, grad_output=rng.standard_normal((2,)), chunk_size=4)


def test_unbatched_input():
    rng = np.random.default_rng(8)
    x = rng.standard_normal(6)
    w = rng.standard_normal((9, 6))
    b = rng.standard_normal(9)
    for reduction in ("mean", "sum", "none"):
        _check((x, w, np.array(3), b), {"reduction": reduction}, F64)
        p = rng.random(9)
        _check((x, w, p / p.sum(), b), {"reduction": reduction, "label_smoothing": 0.1}, F64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batch(reduction):
    rng = np.random.default_rng(9)
    x, w, t, b = _data(rng, 0, 4, 7, bias=True, dtype=F64)
    _check((x, w, t, b), {"reduction": reduction}, F64)


def test_all_ignored_mean_is_nan_with_zero_gradients():
    # torch's reference path (options=None); its chunked path gives NaN gradients instead.
    rng = np.random.default_rng(10)
    x, w, t, b = _data(rng, 6, 4, 5, bias=True, dtype=F64)
    t[:] = -100
    _check((x, w, t, b), {}, F64, chunk_size=4)
    value, grads = fastloss.linear_cross_entropy_value_and_grad(x, w, t, linear_bias=b)
    assert np.isnan(value) and all(not g.any() for g in grads)


def test_half_dtypes_computed_in_float32():
    rng = np.random.default_rng(11)
    x, w, t, _ = _data(rng, 12, 8, 20, dtype=F32)
    want, want_grads = fastloss.linear_cross_entropy_value_and_grad(x.astype(np.float16).astype(F32),
                                                                    w.astype(np.float16).astype(F32), t)
    value, grads = fastloss.linear_cross_entropy_value_and_grad(x.astype(np.float16), w.astype(np.float16), t)
    assert value.dtype == np.float16 and grads[0].dtype == np.float16 and grads[1].dtype == np.float16
    np.testing.assert_allclose(value, want.astype(np.float16), rtol=1e-3)
    np.testing.assert_allclose(grads[1], want_grads[1].astype(np.float16), rtol=1e-3, atol=1e-4)


def test_mixed_dtypes_promote():
    rng = np.random.default_rng(12)
    x, w, t, _ = _data(rng, 10, 4, 6, dtype=F32)
    value, (gx, gw, _) = fastloss.linear_cross_entropy_value_and_grad(x, w.astype(F64), t)
    assert value.dtype == F64 and gx.dtype == F32 and gw.dtype == F64
    want = fastloss.linear_cross_entropy(x.astype(F64), w.astype(F64), t)
    assert value == want


def test_out_buffers_receive_the_gradients():
    rng = np.random.default_rng(13)
    x, w, t, b = _data(rng, 10, 4, 6, bias=True, dtype=F64)
    want = fastloss.linear_cross_entropy_backward(x, w, t, linear_bias=b)
    outs = (np.empty_like(x), np.empty_like(w), np.empty_like(b))
    got = fastloss.linear_cross_entropy_backward(x, w, t, linear_bias=b, out=outs)
    for g, o, wnt in zip(got, outs, want):
        assert g is o
        np.testing.assert_array_equal(o, wnt)
    fortran = (np.asfortranarray(np.empty_like(x)), None, np.empty(6, F32).astype(F64))
    got = fastloss.linear_cross_entropy_backward(x, w, t, linear_bias=b, out=fortran)
    assert got[0] is fortran[0] and got[2] is fortran[2]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="out"):
        fastloss.linear_cross_entropy_backward(x, w, t, out=(None, None, np.empty(6)))
    with pytest.raises(ValueError, match="out"):
        fastloss.linear_cross_entropy_backward(x, w, t, out=(np.empty((10, 5)), None, None))
    with pytest.raises(ValueError, match="overlaps"):
        fastloss.linear_cross_entropy_backward(x, w, t, out=(x, None, None))


def test_strided_inputs():
    rng = np.random.default_rng(14)
    x, w, t, b = _data(rng, 30, 10, 24, bias=True, dtype=F64)
    xs = np.asfortranarray(x)[::-1][::-1]
    ws = np.repeat(w, 2, axis=1)[:, ::2]  # neither C- nor F-contiguous
    want = fastloss.linear_cross_entropy_value_and_grad(x, w, t, linear_bias=b)
    got = fastloss.linear_cross_entropy_value_and_grad(xs, ws, t[::-1][::-1], linear_bias=b[::-1][::-1])
    _close(got[0], want[0], F64)
    for g, wnt in zip(got[1], want[1]):
        _close(g, wnt, F64)


def _thread_runs(dtype, combos):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(15)
    x, w, t, b = _data(rng, 300, 64, 700, bias=True, dtype=dtype, ignored=10)
    before = fastloss.get_num_threads()
    results = []
    try:
        for fastloss_threads, blas_threads in combos:
            fastloss.set_num_threads(fastloss_threads)
            with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
                results.append(fastloss.linear_cross_entropy_value_and_grad(
                    x, w, t, linear_bias=b, label_smoothing=0.1, chunk_size=64))
    finally:
        fastloss.set_num_threads(before)
    return results


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("blas_threads", [1, 2])
def test_bitwise_identical_for_any_fastloss_thread_count(dtype, blas_threads):
    results = _thread_runs(dtype, [(n, blas_threads) for n in (1, 2, 3)])
    for value, grads in results[1:]:
        assert value.tobytes() == results[0][0].tobytes()
        for g, g0 in zip(grads, results[0][1]):
            assert g.tobytes() == g0.tobytes()


@pytest.mark.parametrize("dtype", [F32, F64])
def test_blas_thread_count_changes_only_rounding(dtype):
    # OpenBLAS rounds some product shapes differently with another thread
    # count (e.g. 64 x 700 x 64): the matrix products are NumPy's, so only
    # fastloss's own thread count is bitwise neutral (docs/api.md says so).
    results = _thread_runs(dtype, [(1, 1), (1, 2)])
    (v1, g1), (v2, g2) = results
    _close(v2, v1, dtype)
    for a, b in zip(g1, g2):
        _close(a, b, dtype)


def test_peak_memory_is_one_chunk_not_the_logits():
    # NumPy reports its allocations to tracemalloc: the peak of a fused call
    # (gradients into out=) is the chunk buffer, the accumulation scratch (at
    # most as large) and O(N + V), far below the N x V logits (here 12.8 MB).
    rng = np.random.default_rng(16)
    n, h, c, chunk = 800, 64, 2000, 16
    x, w, t, b = _data(rng, n, h, c, bias=True, dtype=F64)
    outs = (np.empty_like(x), np.empty_like(w), np.empty_like(b))
    fastloss.linear_cross_entropy_value_and_grad(x, w, t, linear_bias=b, chunk_size=chunk, out=outs)  # warm up
    tracemalloc.start()
    try:
        fastloss.linear_cross_entropy_value_and_grad(x, w, t, linear_bias=b, chunk_size=chunk, out=outs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = 2 * chunk * c * 8 + 64 * (n + c) + (1 << 16)  # buffer, accumulation scratch, O(N + V)
    assert peak <= bound, (peak, bound, n * c * 8)


def test_default_chunk_size_from_the_vocabulary():
    from fastloss import _linear

    assert _linear.default_chunk_rows(32000, 4) * 32000 * 4 <= _linear.CHUNK_BYTES
    assert _linear.default_chunk_rows(32000, 4) >= 64
    assert _linear.default_chunk_rows(10**9, 8) == 1
    assert _linear.default_chunk_rows(10, 4) == _linear.MAX_CHUNK_ROWS


def test_accumulator_over_row_chunks():
    rng = np.random.default_rng(17)
    x, w, t, b = _data(rng, 50, 6, 15, bias=True, dtype=F64, ignored=5)
    wt = rng.random(15)
    want = fastloss.linear_cross_entropy(x, w, t, linear_bias=b, weight=wt)
    acc = fastloss.Accumulator("linear_cross_entropy", weight=wt)
    for k in range(0, 50, 13):
        acc.update(x[k:k + 13], w, t[k:k + 13], linear_bias=b)
    _close(acc.result(), want, F64)
    again = pickle.loads(pickle.dumps(acc))
    _close(again.result(), want, F64)


# ----------------------------------------------------------------- the module


def test_module_initialisation_as_torch_linear():
    crit = nn.LinearCrossEntropyLoss(64, 10, out_features=(3,), bias=True, rng=0)
    assert crit.linear_weight.shape == (10, 3, 64) and crit.linear_weight.dtype == F32
    assert crit.linear_bias.shape == (10, 3)
    bound = 1 / 8
    for p in (crit.linear_weight, crit.linear_bias):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    assert nn.LinearCrossEntropyLoss(4, 5).linear_bias is None
    assert nn.LinearCrossEntropyLoss(4, 5, dtype=F64).linear_weight.dtype == F64
    np.testing.assert_array_equal(nn.LinearCrossEntropyLoss(4, 5, rng=1).linear_weight,
                                  nn.LinearCrossEntropyLoss(4, 5, rng=1).linear_weight)


def test_module_signature_is_torchs():
    """torch's constructor and forward, with chunk_size for torch's options,
    a NumPy dtype (float32 as torch's default), z_loss and softcap (beyond
    torch, after its arguments) and an rng for its generator; no device."""
    import inspect

    torch = pytest.importorskip("torch")

    def described(fn, drop=()):
        return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values() if p.name not in drop]

    theirs = described(torch.nn.LinearCrossEntropyLoss.__init__, ("device",))
    theirs = [("chunk_size", k) if n == "options" else (n, k) for n, k in theirs]
    theirs += [(n, inspect.Parameter.KEYWORD_ONLY) for n in BEYOND_TORCH_OPTIONS["linear_cross_entropy"]]
    assert described(nn.LinearCrossEntropyLoss.__init__, ("rng",)) == theirs
    assert described(nn.LinearCrossEntropyLoss.forward) == described(torch.nn.LinearCrossEntropyLoss.forward)
    crit = nn.LinearCrossEntropyLoss(3, 4)
    with pytest.raises(TypeError):
        crit(np.ones((2, 3)), np.zeros(2, np.int64), np.ones(2))
    with pytest.raises(TypeError):
        nn.LinearCrossEntropyLoss(3, 4, 5)
    with pytest.raises(TypeError, match="dtype"):
        nn.LinearCrossEntropyLoss(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="num_classes"):
        nn.LinearCrossEntropyLoss(3, 0)


def _torch_options():
    torch = pytest.importorskip("torch")
    opts = torch.nn.LinearCrossEntropyOptions
    return [None, opts(), opts(batch_chunk_size=3), opts(chunking_method="aspect_ratio:2"),
            opts(acc_policy="accurate"), opts(batch_chunk_size=1000, chunking_method=None)]


@pytest.mark.parametrize("k", range(6))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
def test_module_matches_torch_module_and_its_chunking_variants(k, reduction, bias):
    torch = pytest.importorskip("torch")
    options = _torch_options()[k]
    rng = np.random.default_rng(18)
    weight = rng.random(40)
    ours = nn.LinearCrossEntropyLoss(12, 40, bias=bias, reduction=reduction, weight=weight, chunk_size=4,
                                     dtype=F64, rng=2)
    theirs = torch.nn.LinearCrossEntropyLoss(12, 40, bias=bias, reduction=reduction, dtype=torch.float64,
                                             weight=torch.tensor(weight), options=options)
    with torch.no_grad():
        theirs.linear.weight.copy_(torch.tensor(ours.linear_weight))
        if bias:
            theirs.linear.bias.copy_(torch.tensor(ours.linear_bias))
    x = rng.standard_normal((26, 12))
    t = rng.integers(0, 40, 26)
    t[:3] = -100
    tx = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = theirs(tx, torch.tensor(t))
    value.sum().backward()
    got_value, (gx, gw, gb) = ours.value_and_grad(x, t)
    _close(ours(x, t), value.detach().numpy(), F64)
    _close(got_value, value.detach().numpy(), F64)
    _close(gx, tx.grad.numpy(), F64)
    _close(gw, theirs.linear.weight.grad.numpy(), F64)
    if bias:
        _close(gb, theirs.linear.bias.grad.numpy(), F64)
    else:
        assert gb is None
    grads = ours.backward(x, t)
    np.testing.assert_array_equal(grads[1], gw)


def test_module_parameters_are_assignable_and_k_dimensional():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(19)
    ours = nn.LinearCrossEntropyLoss(5, 7, out_features=(2, 2), bias=True, label_smoothing=0.1, dtype=F64)
    ours.linear_weight = rng.standard_normal((7, 2, 2, 5))
    ours.linear_bias = rng.standard_normal((7, 2, 2))
    theirs = torch.nn.LinearCrossEntropyLoss(5, 7, out_features=(2, 2), bias=True, label_smoothing=0.1,
                                             dtype=torch.float64)
    with torch.no_grad():
        theirs.linear.weight.copy_(torch.tensor(ours.linear_weight.reshape(28, 5)))
        theirs.linear.bias.copy_(torch.tensor(ours.linear_bias.reshape(28)))
    x = rng.standard_normal((9, 5))
    t = rng.integers(0, 7, (9, 2, 2))
    _close(ours(x, t), theirs(torch.tensor(x), torch.tensor(t)).detach().numpy(), F64)
    assert "out_features=(2, 2)" in repr(ours)


# ----------------------------------------------------------------- errors


def test_bad_inputs_raise_naming_the_argument():
    rng = np.random.default_rng(20)
    x, w, t, b = _data(rng, 4, 3, 5, bias=True, dtype=F64)
    lce = fastloss.linear_cross_entropy
    cases = [
        (ValueError, "input", lambda: lce(np.ones((2, 2, 3)), w, t)),
        (ValueError, "linear_weight", lambda: lce(x, np.ones(3), t)),
        (ValueError, "linear_weight", lambda: lce(x, np.ones((5, 4)), t)),
        (ValueError, "linear_bias", lambda: lce(x, w, t, linear_bias=np.ones(4))),
        (ValueError, "input", lambda: lce(np.ones(3), np.ones((5, 2, 3)), np.array(1))),
        (ValueError, "target", lambda: lce(x, w, t[:3])),
        (ValueError, "target", lambda: lce(x, w, np.ones((4, 4)))),
        (ValueError, "weight", lambda: lce(x, w, t, weight=np.ones(4))),
        (ValueError, "reduction", lambda: lce(x, w, t, reduction="batchmean")),
        (ValueError, "label_smoothing", lambda: lce(x, w, t, label_smoothing=1.5)),
        (ValueError, "ignore_index", lambda: lce(x, w, np.full((4, 5), 0.2), ignore_index=-100)),
        (ValueError, "chunk_size", lambda: lce(x, w, t, chunk_size=0)),
        (TypeError, "chunk_size", lambda: lce(x, w, t, chunk_size=2.0)),
        (TypeError, "input", lambda: lce(x.astype(int), w, t)),
        (TypeError, "linear_weight", lambda: lce(x, w.astype(np.complex128), t)),
        (TypeError, "target", lambda: lce(x, w, t.astype(bool))),
        (TypeError, "ignore_index", lambda: lce(x, w, t, ignore_index=1.5)),
        (IndexError, "target", lambda: lce(x, w, np.array([0, 1, 5, 2]))),
        (IndexError, "target", lambda: lce(x, w, np.array([0, -1, 2, 2]))),
        (TypeError, "size_average", lambda: lce(x, w, t, size_average=True)),
    ]
    for exc, name, call in cases:
        with pytest.raises(exc, match=name):
            call()


def test_index_error_names_the_first_bad_index_in_row_order():
    x, w = np.ones((4, 3)), np.ones((5, 3))
    with pytest.raises(IndexError, match="class index 7 "):
        fastloss.linear_cross_entropy(x, w, np.array([0, 7, 9, 1]), chunk_size=1)
    with pytest.raises(IndexError, match="class index 18446744073709551615"):
        fastloss.linear_cross_entropy(x, w, np.array([0, 2**64 - 1, 1, 1], np.uint64))


# ----------------------------------------------------------------- bridges


def test_torch_bridge_gradients_reach_every_parameter():
    torch = pytest.importorskip("torch")
    import fastloss.torch
    import fastloss.torch.nn

    rng = np.random.default_rng(21)
    x, w, t, b = _data(rng, 14, 6, 9, bias=True, dtype=F64, ignored=2)
    ours = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    for reduction in ("mean", "none"):
        for a in ours + theirs:
            a.grad = None
        fastloss.torch.linear_cross_entropy(ours[0], ours[1], torch.tensor(t), linear_bias=ours[2], chunk_size=4,
                                            reduction=reduction).sum().backward()
        torch.nn.functional.linear_cross_entropy(theirs[0], theirs[1], torch.tensor(t), linear_bias=theirs[2],
                                                 reduction=reduction).sum().backward()
        for a, c in zip(ours, theirs):
            _close(a.grad.numpy(), c.grad.numpy(), F64)
    assert torch.autograd.gradcheck(
        lambda *p: fastloss.torch.linear_cross_entropy(p[0], p[1], torch.tensor(t), linear_bias=p[2]),
        tuple(torch.tensor(a, requires_grad=True) for a in (x, w, b)))
    module = fastloss.torch.nn.LinearCrossEntropyLoss(6, 9, bias=True, dtype=torch.float64, label_smoothing=0.1)
    reference = torch.nn.LinearCrossEntropyLoss(6, 9, bias=True, dtype=torch.float64, label_smoothing=0.1)
    reference.load_state_dict(module.state_dict())
    module(torch.tensor(x), torch.tensor(t)).backward()
    reference(torch.tensor(x), torch.tensor(t)).backward()
    _close(module.linear.weight.grad.numpy(), reference.linear.weight.grad.numpy(), F64)
    _close(module.linear.bias.grad.numpy(), reference.linear.bias.grad.numpy(), F64)


def test_jax_bridge_gradients_reach_every_parameter():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import fastloss.jax

    rng = np.random.default_rng(22)
    x, w, t, b = _data(rng, 10, 5, 7, bias=True, dtype=F32, ignored=1)
    formula = REGISTRY["linear_cross_entropy"].jax

    def ours(x, w, b):
        return fastloss.jax.linear_cross_entropy(x, w, t, linear_bias=b, label_smoothing=0.1)

    def theirs(x, w, b):
        return formula(jnp, x, w, jnp.asarray(t), linear_bias=b, label_smoothing=0.1)

    got = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2)))(x, w, b)
    want = jax.value_and_grad(theirs, argnums=(0, 1, 2))(x, w, b)
    _close(got[0], want[0], F32)
    for g, wnt in zip(got[1], want[1]):
        _close(g, wnt, F32)


def test_case_row_options_and_bad_options():
    """tests/cases.py's row: its option sets match the reference, its bad options raise."""
    from cases import CASES

    case = CASES["linear_cross_entropy"]
    arrays = case.make(np.random.default_rng(23), (40, 10), F64)
    args = [arrays[n] for n in case.spec.arrays]
    for options in case.option_sets:
        for reduction in case.reductions:
            want = fastloss.reference.linear_cross_entropy(*args, reduction=reduction, **options)
            _close(fastloss.linear_cross_entropy(*args, reduction=reduction, chunk_size=7, **options), want, F64)
            want_grads = fastloss.reference.linear_cross_entropy_backward(*args, reduction=reduction, **options)
            got = fastloss.linear_cross_entropy_backward(*args, reduction=reduction, chunk_size=7, **options)
            for g, w in zip(got[:2], want_grads[:2]):
                _close(g, w, F64)
    for options, exc, name in case.bad_options:
        with pytest.raises(exc, match=name):
            fastloss.linear_cross_entropy(*args, **options)


def test_bench_lce_runs_every_peer_on_the_same_loss(capsys, tmp_path):
    """fastloss bench --lce at a tiny shape: each peer in its own process
    computes the same loss and reports a time and a peak memory (read from
    the run's --json: one run, each peer's process starts once)."""
    pytest.importorskip("torch")
    from fastloss._cli import main

    path = tmp_path / "lce.json"
    assert main(["bench", "--lce", "64", "32", "100", "--repeat", "1", "--quiet", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "N=64 H=32 V=100" in out and "error" not in out
    result = json.loads(path.read_text())
    values = [r["value"] for r in result["rows"]]
    assert len(values) == 3 and all(r["peak_extra_bytes"] >= 0 and r["median_s"] > 0 for r in result["rows"])
    np.testing.assert_allclose(values, values[0], rtol=1e-5)
    with pytest.raises(SystemExit):
        main(["bench", "--lce", "64", "32"])
