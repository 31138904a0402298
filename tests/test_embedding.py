"""The feature-axis losses and distances (cpp/src/losses/embedding.h),
driven by the case table's "embedding" rows: cosine_embedding_loss,
triplet_margin_loss, triplet_margin_with_distance_loss, and the public
fastloss.pairwise_distance / cosine_distance. Against the float64 reference
and torch autograd (values, gradients for every input, reductions, 1-D, 2-D
and more dimensions, broadcasting, layouts, out=), bitwise determinism across
thread counts and ISA levels, float32 sums, errors, and the issue's example."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import fastloss
import fastloss.nn
from fastloss import _core, reference

from cases import EMBEDDING, assert_close, assert_identical, case_options, relayout

DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]
P_VALUES = [1.0, 2.0, 3.0, 1.5, 0.5, float("inf")]


def _call(case, fn, arrays, **options):
    positional, keyword = case.split(arrays)
    return fn(*positional, **keyword, **options)


def _expected(case, arrays, backward=False, **options):
    positional, keyword = case.split(arrays)
    f = case.reference_backward if backward else case.reference
    return f(*positional, **keyword, **options)


def _grad_output(rng, case, arrays, reduction, options):
    if reduction != "none":
        return 0.75
    return rng.uniform(-1.5, 2.0, np.shape(_expected(case, arrays, reduction="none", **options)))


def _tolerance(dtype):
    return {"float32": (3e-5, 1e-6), "float64": (1e-11, 1e-300)} if dtype == np.float32 else \
        {"float32": (3e-5, 1e-6), "float64": (1e-11, 1e-300)}


def _term_scales(case, arrays, reduction, go, options):
    """Per gradient: the magnitude of the terms each entry is a difference of
    (x2 / denom - cos x1 / |x1|^2 cancels to ~1e-11 for one-feature rows;
    the anchor's gradient is w(a - p) - w(a - n)), float64, input's shape."""
    rows = {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in arrays.items()}
    names = case.grad_names
    full = np.broadcast_shapes(*[rows[n].shape for n in names])
    xs = [np.broadcast_to(rows[n], full) for n in names]
    per_row = np.abs(np.broadcast_to(np.asarray(go, np.float64), np.shape(
        _expected(case, arrays, reduction="none", **options)))).reshape(full[:-1])[..., None]
    if reduction == "mean":
        per_row = per_row / max(1, int(np.prod(full[:-1])))
    with np.errstate(all="ignore"):
        if case.name == "cosine_embedding_loss":
            u, v = xs
            nu, nv = np.sqrt((u * u).sum(-1, keepdims=True) + 1e-12), np.sqrt((v * v).sum(-1, keepdims=True) + 1e-12)
            t = per_row * (np.abs(v) / (nu * nv) + np.abs(u) / (nu * nu) + np.abs(u) / (nu * nv)
                           + np.abs(v) / (nv * nv))
            terms = [t, t]
        else:
            a, p, n = xs
            pp, eps = options.get("p", 2.0), options.get("eps", 1e-6)
            w = [np.abs(reference._norm_backward(d, pp, reference._norm(d, pp)))
                 for d in (a - p + eps, a - n + eps, p - n + eps)]
            t = per_row * (w[0] + w[1] + w[2])
            terms = [t, t, t]
    return [np.nan_to_num(np.broadcast_to(t, full), nan=0.0, posinf=0.0).reshape(np.shape(arrays[n]))
            if np.shape(arrays[n]) == full else None for t, n in zip(terms, names)]


def _check_grads(case, grads, expected, dtype, what, scales=None):
    tol = _tolerance(dtype)
    scales = scales or [None] * len(grads)
    for name, g, e, s in zip(case.grad_names, grads, expected, scales):
        # An entry is a difference of row terms: its error is relative to the largest.
        scale = np.full(np.shape(g), np.nan_to_num(np.abs(e), posinf=0).max(initial=0))
        if s is not None:
            scale = scale + s
        assert_close(g, e, dtype, tolerance=tol, abs_scale=scale, what=f"{what} grad {name}")


@pytest.mark.parametrize("case, options", case_options(EMBEDDING))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("values", ["normal", "grid", "special"])
def test_against_reference(case, options, dtype, values):
    if dtype == np.float32 and values != "normal":
        pytest.skip("float32 rounds distances differently next to the clamp's kink: float64 covers grid/special")
    rng = np.random.default_rng(1)
    for shape in case.shapes:
        arrays = case.make(rng, shape, dtype, values=values)
        for reduction in ("none", "mean", "sum"):
            what = f"{case.name} {shape} {values} {reduction} {options}"
            go = _grad_output(rng, case, arrays, reduction, options)
            value = _call(case, case.forward, arrays, reduction=reduction, **options)
            grads = _call(case, case.backward, arrays, reduction=reduction, grad_output=go, **options)
            fused = _call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
            assert_identical(fused[0], value, what + " fused value")
            for a, b in zip(fused[1], grads):
                assert_identical(a, b, what + " fused grad")
            assert np.asarray(value).dtype == dtype
            for name, g in zip(case.grad_names, grads):
                assert g.dtype == dtype and g.shape == arrays[name].shape, what
            expected = _expected(case, arrays, reduction=reduction, **options)
            assert_close(value, expected, dtype, tolerance=_tolerance(dtype), what=what)
            expected_grads = _expected(case, arrays, backward=True, reduction=reduction, grad_output=go, **options)
            scales = _term_scales(case, arrays, reduction, go, options) if 0 not in shape else None
            _check_grads(case, grads, expected_grads, dtype, what, scales)


@pytest.mark.parametrize("case, options", case_options(EMBEDDING))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_against_torch(case, options, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    for shape in [s for s in case.shapes if 0 not in s]:
        arrays = case.make(rng, shape, dtype, values="normal")
        for reduction in ("none", "mean", "sum"):
            tensors = {k: torch.tensor(v) for k, v in arrays.items()}
            for n in case.grad_names:
                tensors[n].requires_grad_(True)
            positional, keyword = case.split(tensors)
            want = getattr(torch.nn.functional, case.name)(*positional, **keyword, reduction=reduction, **options)
            go = rng.uniform(-1.5, 2.0, tuple(want.shape)).astype(dtype)
            (want * torch.tensor(go)).sum().backward()
            value, grads = _call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=go, **options)
            rtol = 1e-10 if dtype == np.float64 else 5e-5
            what = f"{case.name} {shape} {reduction} {options}"
            # The loss is a difference of distances: torch's float32 sums err relative to their size.
            size = max(np.abs(np.asarray(v, np.float64)).sum(-1).max(initial=0) for v in arrays.values())
            np.testing.assert_allclose(value, want.detach().numpy(), rtol=rtol, atol=rtol * size, err_msg=what)
            for n, g in zip(case.grad_names, grads):
                t = tensors[n].grad.numpy()
                np.testing.assert_allclose(g, t, rtol=rtol, atol=rtol * (1 + np.abs(t).max()), err_msg=f"{what} {n}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("swap", [False, True])
def test_issue_example(dtype, swap):
    """a = p = [[1, 2, 3]], n = [[1, 2, 3.5]], margin 1: 0.5000027320, finite
    gradients, as torch (with swap: d(a, n) == d(p, n), a tie)."""
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 2.0, 3.0]], dtype)
    n = np.array([[1.0, 2.0, 3.5]], dtype)
    value, grads = fastloss.triplet_margin_loss_value_and_grad(a, a.copy(), n, margin=1.0, swap=swap)
    assert float(value) == pytest.approx(0.5000027320, abs=1e-7 if dtype == np.float64 else 1e-6)
    ta, tp, tn = (torch.tensor(x, requires_grad=True) for x in (a, a.copy(), n))
    want = torch.nn.functional.triplet_margin_loss(ta, tp, tn, margin=1.0, swap=swap)
    want.backward()
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(value, want.item(), rtol=rtol)
    for g, t in zip(grads, (ta, tp, tn)):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=rtol)
    assert float(reference.triplet_margin_loss(a, a, n)) == pytest.approx(0.5000027320, abs=1e-10)


@pytest.mark.parametrize("name", ["triplet_margin_loss", "triplet_margin_with_distance_loss"])
@pytest.mark.parametrize("margin", [float("nan"), float("inf"), 0.0, -1.0])
def test_margin_as_torch(name, margin):
    """torch refuses ``margin <= 0`` only: NaN passes (NaN loss, zero
    gradients, its clamp's mask being false) and inf gives inf."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, p, n = (rng.standard_normal((4, 3)) for _ in range(3))
    ts = [torch.tensor(x, requires_grad=True) for x in (a, p, n)]
    try:
        want = getattr(torch.nn.functional, name)(*ts, margin=margin)
    except ValueError:
        for fn in (getattr(fastloss, name), getattr(reference, name)):
            with pytest.raises(ValueError, match="margin"):
                fn(a, p, n, margin=margin)
        return
    want.backward()
    value, grads = getattr(fastloss, f"{name}_value_and_grad")(a, p, n, margin=margin)
    np.testing.assert_array_equal(value, want.item())
    np.testing.assert_array_equal(getattr(reference, name)(a, p, n, margin=margin), want.item())
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------- the distances

DISTANCE_SHAPES = [((5, 7), (5, 7)), ((7,), (7,)), ((3, 4, 6), (4, 6)), ((5, 7), (1, 7)), ((), ()),
                   ((3, 0), (3, 0)), ((0, 4), (0, 4)), ((2, 300), (2, 300))]


def _torch_distance(torch, name, t1, t2, **options):
    if name == "pairwise_distance":
        return torch.nn.functional.pairwise_distance(t1, t2, **options)
    return 1 - torch.nn.functional.cosine_similarity(t1, t2, dim=-1)


@pytest.mark.parametrize("name, options", [("pairwise_distance", {"p": p}) for p in P_VALUES]
                         + [("pairwise_distance", {"keepdim": True}), ("pairwise_distance", {"eps": 0.0}),
                            ("cosine_distance", {})])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_distances(name, options, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    forward = getattr(fastloss, name)
    backward = getattr(fastloss, name + "_backward")
    fused = getattr(fastloss, name + "_value_and_grad")
    rtol = 1e-10 if dtype == np.float64 else 5e-5
    for s1, s2 in DISTANCE_SHAPES:
        if options.get("p") == float("inf") and 0 in s1:
            continue  # torch refuses the inf norm of nothing; fastloss gives 0
        x1, x2 = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
        if s1 == s2 == (5, 7):
            x1[0] = 0.0  # a zero row (cosine: the clamped norm)
            x2[1] = x1[1]  # a zero difference (+ eps)
        t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
        want = _torch_distance(torch, name, t1, t2, **options)
        go = rng.uniform(-1.5, 2.0, tuple(want.shape)).astype(dtype)
        (want * torch.tensor(go)).sum().backward()
        what = f"{name} {s1} {s2} {options}"
        value = forward(x1, x2, **options)
        assert value.shape == tuple(want.shape) and value.dtype == dtype, what
        np.testing.assert_allclose(value, want.detach().numpy(), rtol=rtol, atol=rtol, err_msg=what)
        assert_close(value, getattr(reference, name)(x1, x2, **options), dtype, tolerance=_tolerance(dtype),
                     abs_scale=np.ones(value.shape) if name == "cosine_distance" else None,  # 1 - cos cancels
                     what=what)
        grads = backward(x1, x2, grad_output=go, **options)
        v2, g2 = fused(x1, x2, grad_output=go, **options)
        assert_identical(v2, value, what)
        expected = getattr(reference, name + "_backward")(x1, x2, grad_output=go, **options)
        for k, (g, t, e) in enumerate(zip(grads, (t1, t2), expected)):
            assert_identical(g2[k], g, what)
            assert g.shape == (x1, x2)[k].shape and g.dtype == dtype, what
            tg = t.grad.numpy()
            np.testing.assert_allclose(g, tg, rtol=rtol, atol=rtol * (1 + np.abs(tg).max(initial=0)), err_msg=what)
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * (1 + np.abs(e).max(initial=0)), err_msg=what)


def test_distance_errors():
    x = np.ones((3, 4))
    for bad, exc in ((0.0, ValueError), (-1.0, ValueError), ("2", TypeError), (None, TypeError)):
        with pytest.raises(exc, match="p"):
            fastloss.pairwise_distance(x, x, p=bad)
    with pytest.raises(ValueError, match="x2"):
        fastloss.pairwise_distance(x, np.ones((3, 5)))
    with pytest.raises(ValueError, match="x2"):
        fastloss.cosine_distance(x, np.ones((2, 4)))
    with pytest.raises(TypeError, match="x1"):
        fastloss.cosine_distance(np.ones((3, 4), np.int64), x)
    with pytest.raises(TypeError, match="keepdim"):
        fastloss.pairwise_distance(x, x, keepdim=1)
    with pytest.raises(ValueError, match="out"):
        fastloss.pairwise_distance_backward(x, x, out=(np.empty((3, 4)), np.empty((3, 5))))


# ------------------------------------------------ triplet with a distance


def _with_distance_cases():
    return [
        ("cosine", fastloss.cosine_distance, lambda torch: (lambda a, b: 1 - torch.nn.functional.cosine_similarity(
            a, b, dim=-1))),
        ("partial p=1", functools.partial(fastloss.pairwise_distance, p=1.0),
         lambda torch: functools.partial(torch.nn.functional.pairwise_distance, p=1.0)),
        ("partial eps", functools.partial(fastloss.pairwise_distance, eps=1e-3, p=3.0),
         lambda torch: functools.partial(torch.nn.functional.pairwise_distance, p=3.0, eps=1e-3)),
        ("pairwise", fastloss.pairwise_distance, lambda torch: torch.nn.functional.pairwise_distance),
        ("partial cosine", functools.partial(fastloss.cosine_distance),
         lambda torch: (lambda a, b: 1 - torch.nn.functional.cosine_similarity(a, b, dim=-1))),
    ]


@pytest.mark.parametrize("label, distance, torch_distance", _with_distance_cases(), ids=lambda v: v if isinstance(
    v, str) else "")
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_with_native_distances(label, distance, torch_distance, swap, dtype, monkeypatch):
    """Native distance functions run on the kernel (one call), as torch."""
    torch = pytest.importorskip("torch")
    calls = []
    real = _core.rowwise_call
    monkeypatch.setattr(_core, "rowwise_call", lambda *a: calls.append(a[0]) or real(*a))
    rng = np.random.default_rng(4)
    rtol = 1e-10 if dtype == np.float64 else 5e-5
    for shape in ((6, 5), (5,), (2, 3, 4), (3, 700)):
        a, p, n = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
        if len(shape) == 2:
            p[0] = a[0]  # equal rows: d(a, n) == d(p, n), a tie with swap
        for reduction in ("none", "mean", "sum"):
            ts = [torch.tensor(x, requires_grad=True) for x in (a, p, n)]
            want = torch.nn.functional.triplet_margin_with_distance_loss(
                *ts, distance_function=torch_distance(torch), swap=swap, reduction=reduction, margin=0.7)
            go = rng.uniform(-1.5, 2.0, tuple(want.shape)).astype(dtype)
            (want * torch.tensor(go)).sum().backward()
            calls.clear()
            value, grads = fastloss.triplet_margin_with_distance_loss_value_and_grad(
                a, p, n, distance_function=distance, swap=swap, reduction=reduction, margin=0.7, grad_output=go)
            assert len(calls) == 1, label
            what = f"{label} {shape} {reduction} swap={swap}"
            np.testing.assert_allclose(value, want.detach().numpy(), rtol=rtol, atol=rtol, err_msg=what)
            for g, t in zip(grads, ts):
                tg = t.grad.numpy()
                np.testing.assert_allclose(g, tg, rtol=rtol, atol=rtol * (1 + np.abs(tg).max()), err_msg=what)
            ref = reference.triplet_margin_with_distance_loss_backward(
                a, p, n, distance_function=distance, swap=swap, reduction=reduction, margin=0.7, grad_output=go)
            for g, e in zip(grads, ref):
                np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * (1 + np.abs(e).max()), err_msg=what)


def test_with_python_distance():
    """Any other callable gets NumPy arrays: forward works, backward needs
    its ``backward`` attribute (else NotImplementedError)."""
    rng = np.random.default_rng(5)
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))
    seen = []

    def l1(x1, x2):
        seen.append((type(x1), type(x2)))
        return np.abs(x1 - x2).sum(-1)

    for swap in (False, True):
        for reduction in ("none", "mean", "sum"):
            got = fastloss.triplet_margin_with_distance_loss(a, p, n, distance_function=l1, swap=swap,
                                                             reduction=reduction)
            want = fastloss.triplet_margin_with_distance_loss(
                a, p, n, distance_function=functools.partial(fastloss.pairwise_distance, p=1.0, eps=0.0), swap=swap,
                reduction=reduction)
            np.testing.assert_allclose(got, want, rtol=1e-12)
            np.testing.assert_allclose(got, reference.triplet_margin_with_distance_loss(
                a, p, n, distance_function=l1, swap=swap, reduction=reduction), rtol=1e-12)
    assert all(t == (np.ndarray, np.ndarray) for t in seen)
    for fn in (fastloss.triplet_margin_with_distance_loss_backward,
               fastloss.triplet_margin_with_distance_loss_value_and_grad):
        with pytest.raises(NotImplementedError, match="backward"):
            fn(a, p, n, distance_function=l1)
    with pytest.raises(NotImplementedError, match="backward"):
        fastloss.nn.TripletMarginWithDistanceLoss(distance_function=l1).backward(a, p, n)
    with pytest.raises(ValueError, match="distance_function"):
        fastloss.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x1, x2: "far")
    with pytest.raises(TypeError, match="distance_function"):
        fastloss.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x1, x2: {"d": 1})

    def l1_backward(x1, x2, g):
        s = np.sign(x1 - x2) * g[..., None]
        return s, -s

    l1.backward = l1_backward
    for swap in (False, True):
        got = fastloss.triplet_margin_with_distance_loss_backward(a, p, n, distance_function=l1, swap=swap)
        want = fastloss.triplet_margin_with_distance_loss_backward(
            a, p, n, distance_function=functools.partial(fastloss.pairwise_distance, p=1.0, eps=0.0), swap=swap)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
        ref = reference.triplet_margin_with_distance_loss_backward(a, p, n, distance_function=l1, swap=swap)
        for g, w in zip(got, ref):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------- layouts, out=


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
@pytest.mark.parametrize("layout", ["strided", "negative", "F", "unaligned"])
def test_layouts_and_out(case, layout):
    rng = np.random.default_rng(6)
    arrays = case.make(rng, (9, 37), np.dtype(np.float64))
    want_value, want_grads = _call(case, case.value_and_grad, arrays, reduction="sum")
    moved = {k: relayout(v, layout) if v.ndim == 2 else v for k, v in arrays.items()}
    value, grads = _call(case, case.value_and_grad, moved, reduction="sum")
    np.testing.assert_allclose(value, want_value, rtol=1e-13)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-300)
    outs = tuple(relayout(np.full((9, 37), np.nan), "strided" if layout == "unaligned" else layout)
                 for _ in case.grad_names)
    got = _call(case, case.backward, moved, reduction="sum", out=outs)
    for g, o, w in zip(got, outs, want_grads):
        assert g is o
        np.testing.assert_allclose(o, w, rtol=1e-13, atol=1e-300)
    with pytest.raises(ValueError, match="out"):
        _call(case, case.backward, arrays, out=outs[:-1])
    with pytest.raises(ValueError, match="out"):
        _call(case, case.backward, arrays, out=(arrays[case.grad_names[0]],) + outs[1:])


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
def test_broadcast_operand(case):
    """A (1, D) operand broadcast over the rows: its gradient is the sum over them."""
    rng = np.random.default_rng(7)
    arrays = case.make(rng, (6, 5), np.dtype(np.float64))
    second = case.grad_names[1]
    arrays[second] = arrays[second][:1]
    value, grads = _call(case, case.value_and_grad, arrays, reduction="mean")
    np.testing.assert_allclose(value, _expected(case, arrays, reduction="mean"), rtol=1e-12)
    for g, e in zip(grads, _expected(case, arrays, backward=True, reduction="mean")):
        assert g.shape == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_dtypes(case, half):
    import ml_dtypes  # noqa: F401 - registers bfloat16 with NumPy

    rng = np.random.default_rng(8)
    dtype = np.dtype(half) if half == "float16" else np.dtype(ml_dtypes.bfloat16)
    arrays = case.make(rng, (4, 8), dtype)
    singles = {k: v.astype(np.float32) for k, v in arrays.items()}
    value, grads = _call(case, case.value_and_grad, arrays, reduction="none")
    want, want_grads = _call(case, case.value_and_grad, singles, reduction="none")
    assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert_identical(value, want.astype(dtype))
    for g, w in zip(grads, want_grads):
        assert_identical(g, w.astype(dtype))


# ------------------------------------------------ determinism, accuracy


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(3001, 67), (40, 5000), (2000, 256)], ids=str)
def test_bitwise_identical_across_threads_and_isas(restore_threads, case, dtype, shape):
    rng = np.random.default_rng(9)
    arrays = case.make(rng, shape, dtype, values="special")
    options = {"swap": True} if "swap" in case.spec.options else {}

    def results():
        out = []
        for reduction in ("none", "mean", "sum"):
            out.append(_call(case, case.forward, arrays, reduction=reduction, **options))
            value, grads = _call(case, case.value_and_grad, arrays, reduction=reduction, grad_output=0.5, **options)
            out.append(value)
            out.extend(grads)
        out.extend(fastloss.cosine_distance_value_and_grad(*list(arrays.values())[:2])[1])
        out.extend(fastloss.pairwise_distance_value_and_grad(*list(arrays.values())[:2], p=3.0)[1])
        return out

    isa = _core.current_isa()
    fastloss.set_num_threads(1)
    first = results()
    try:
        for level in _core.available_isas():
            _core.select_isa(level)
            for n in (1, 2, 3, 7):
                fastloss.set_num_threads(n)
                for i, (a, b) in enumerate(zip(results(), first)):
                    assert_identical(a, b, f"{level}, {n} threads, result {i}")
    finally:
        _core.select_isa(isa)


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
def test_float32_sums_on_1e7_terms(case):
    """A float32 'sum' over 40000 rows of 256 features is within 1e-6 of the
    float64 sum of the same rows' float32 losses."""
    rng = np.random.default_rng(10)
    arrays = case.make(rng, (40_000, 256), np.dtype(np.float32))
    got = _call(case, case.forward, arrays, reduction="sum")
    rows = _call(case, case.forward, arrays, reduction="none").astype(np.float64)
    assert abs(float(got) - rows.sum()) <= 1e-6 * np.abs(rows).sum()


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
def test_errors(case):
    rng = np.random.default_rng(11)
    arrays = case.make(rng, (3, 4), np.dtype(np.float64))
    for bad_options, exc, name in case.bad_options:
        for fn in (case.forward, case.backward, case.value_and_grad):
            with pytest.raises(exc, match=name):
                _call(case, fn, arrays, **bad_options)
    for shapes, name in case.shape_errors:
        bad = dict(arrays)
        for k, s in shapes.items():
            bad[k] = case.make(rng, (3, 4), np.dtype(np.float64), shapes={k: s})[k]
        with pytest.raises(ValueError, match=name):
            _call(case, case.forward, bad)
    first = case.spec.arrays[0]
    with pytest.raises(TypeError, match=first):
        _call(case, case.forward, dict(arrays, **{first: np.zeros((3, 4), np.int64)}))
    with pytest.raises(TypeError, match="size_average"):
        _call(case, case.forward, arrays, size_average=True)
    with pytest.raises(ValueError, match="reduction"):
        _call(case, case.forward, arrays, reduction="batchmean")


def test_cosine_embedding_targets():
    """Targets must be 1 or -1 (torch gives other values a loss of 0): any
    real dtype is read; the target does not change the result's dtype."""
    x1, x2 = np.ones((3, 4), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)
    want = fastloss.cosine_embedding_loss(x1, x2, np.array([1.0, -1.0, 1.0], np.float32), reduction="none")
    for t in (np.array([1, -1, 1], np.int8), np.array([1, -1, 1], np.int64), [1, -1, 1],
              np.array([1.0, -1.0, 1.0])):
        got = fastloss.cosine_embedding_loss(x1, x2, t, reduction="none")
        assert got.dtype == np.float32
        assert_identical(got, want)
    for bad in ([1, 0, 1], [1, 0.5, -1], [1, np.nan, 1], [2, 1, 1], [True, False, True]):
        for fn in (fastloss.cosine_embedding_loss, fastloss.cosine_embedding_loss_backward):
            with pytest.raises(ValueError, match="target"):
                fn(x1, x2, bad)
    with pytest.raises(ValueError, match="target"):
        fastloss.cosine_embedding_loss(x1, x2, np.ones((3, 1)))
    with pytest.raises(ValueError, match="input1"):
        fastloss.cosine_embedding_loss(x1[0], x2[0], np.ones(1))
    with pytest.raises(ValueError, match="input1"):
        fastloss.cosine_embedding_loss(x1, x2, np.float32(1))
    # 1-D inputs, 0-d target; a broadcast target
    # (float32: 1 - cos is a difference of terms of size 1)
    np.testing.assert_allclose(fastloss.cosine_embedding_loss(x1[1], x2[1], -1.0),
                               reference.cosine_embedding_loss(x1[1], x2[1], -1.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fastloss.cosine_embedding_loss(x1, x2, [1.0], reduction="none"),
                               reference.cosine_embedding_loss(x1, x2, [1.0], reduction="none"), rtol=1e-6, atol=1e-6)


def test_cosine_embedding_kink():
    """cos - margin == 0 exactly (orthogonal rows, margin 0): the gradient
    passes, as torch's clamp_min (self >= min)."""
    torch = pytest.importorskip("torch")
    x1 = np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    x2 = np.array([[0.0, 3.0, 0.0], [2.0, -2.0, 1.0]])
    t = np.array([-1.0, -1.0])
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    torch.nn.functional.cosine_embedding_loss(t1, t2, torch.tensor(t), margin=0.0, reduction="sum").backward()
    g1, g2 = fastloss.cosine_embedding_loss_backward(x1, x2, t, margin=0.0, reduction="sum")
    assert np.any(g1 != 0)
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", EMBEDDING, ids=str)
def test_classes(case):
    rng = np.random.default_rng(12)
    arrays = case.make(rng, (5, 6), np.dtype(np.float64))
    options = {"margin": 0.5} if "margin" in case.spec.class_options else {}
    crit = case.nn_class(**options, reduction="sum")
    positional, _ = case.split(arrays)
    assert_identical(crit(*positional), case.forward(*positional, reduction="sum", **options))
    for a, b in zip(crit.backward(*positional), case.backward(*positional, reduction="sum", **options)):
        assert_identical(a, b)
