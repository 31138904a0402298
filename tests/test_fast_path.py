"""The C++ fast path (``_core.elementwise``, cpp/bindings/module.cpp) against
the general Python path: the same call gives bitwise the same result and the
same error on either path, plain calls do take the fast path, and torch/JAX
arrays read through it equal their NumPy copies.

A call is forced onto the general path by passing its arrays as an ndarray
subclass (``Sub``): the fast path takes exact ``numpy.ndarray`` only, the
general path reads a subclass as a view of the same memory."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastloss
import fastloss._validate
import fastloss.nn
from cases import ELEMENTWISE, assert_identical, case_options, case_params, relayout

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
MODES = ("forward", "backward", "value_and_grad")
# The losses with a C++ fast path (Case.fast_path); the others always take
# the general path (test_torch.py reads torch tensors for every loss).
FAST = [c for c in ELEMENTWISE if c.fast_path]


class Sub(np.ndarray):
    """An ndarray subclass: the general path's input."""


def sub(a):
    return a.view(Sub) if isinstance(a, np.ndarray) else a


def function(case, mode):
    return {"forward": case.forward, "backward": case.backward, "value_and_grad": case.value_and_grad}[mode]


def float_options(case):
    """The loss's float options (beta, delta...) besides reduction/weight."""
    return [n for n, d in case.spec.options.items() if isinstance(d, float)]


def copied(result):
    """A result that later calls cannot change (``out=`` buffers are reused)."""
    if isinstance(result, tuple):
        return tuple(copied(r) for r in result)
    return np.array(result, copy=True) if isinstance(result, np.ndarray) else result


def assert_same_result(fast, slow, what=""):
    assert type(fast) is type(slow) or (isinstance(fast, np.ndarray) and isinstance(slow, np.ndarray)), (
        f"{what}: {type(fast)} vs {type(slow)}")
    if isinstance(fast, tuple):
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            assert_same_result(a, b, what)
        return
    assert_identical(np.asarray(fast).view(np.ndarray), np.asarray(slow).view(np.ndarray), what)


# ------------------------------------------------------------ random calls


@st.composite
def calls(draw):
    case = draw(st.sampled_from(FAST))
    mode = draw(st.sampled_from(MODES))
    dtype = draw(st.sampled_from([F32, F64]))
    shape = draw(st.sampled_from([(), (0,), (1,), (7,), (100,), (3, 5), (2, 0, 3), (2, 3, 4), (1, 9, 1)]))
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layouts = st.sampled_from(["C", "C", "strided", "negative", "F"])

    def values():
        v = rng.integers(-8, 9, size=shape) / 4.0 if draw(st.booleans()) else rng.standard_normal(shape)
        if draw(st.integers(0, 9)) == 0 and v.size:
            v.reshape(-1)[rng.integers(v.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return relayout(np.asarray(v, dtype), draw(layouts))

    kwargs = {"reduction": reduction}
    for name in float_options(case):
        if draw(st.booleans()):
            value = draw(st.sampled_from([0.5, 1.0, 2.0, 1e-50, 1e300, 3]))
            if name == "beta":
                value = draw(st.sampled_from([value, 0.0]))
            kwargs[name] = value
    if case.weighted and draw(st.booleans()):
        kwargs["weight"] = relayout(np.asarray(rng.uniform(0.0, 2.0, shape), dtype), draw(layouts))
    if mode != "forward":
        loss_shape = shape if reduction == "none" else ()
        kind = draw(st.sampled_from(["none", "float", "int", "0-d", "full"]))
        if kind == "float":
            kwargs["grad_output"] = float(rng.standard_normal())
        elif kind == "int":
            kwargs["grad_output"] = int(rng.integers(-3, 4))
        elif kind == "0-d":
            kwargs["grad_output"] = np.asarray(rng.standard_normal(), dtype)
        elif kind == "full":
            kwargs["grad_output"] = relayout(np.asarray(rng.standard_normal(loss_shape), dtype), draw(layouts))
    x, t = values(), values()
    with_out = mode != "forward" and draw(st.booleans())
    out_layout = draw(layouts)
    return case, mode, x, t, kwargs, with_out, out_layout


@given(calls())
def test_fast_and_general_paths_agree_bitwise(call):
    case, mode, x, t, kwargs, with_out, out_layout = call
    fn = function(case, mode)
    outs = {}
    if with_out:
        outs = {p: relayout(np.zeros(x.shape, x.dtype), out_layout) for p in ("fast", "slow")}
    fast_kw = dict(kwargs, **({"out": outs["fast"]} if with_out else {}))
    slow_kw = {k: sub(v) for k, v in kwargs.items()}
    if with_out:
        slow_kw["out"] = outs["slow"]
    fast = fn(x, t, **fast_kw)
    slow = fn(sub(x), sub(t), **slow_kw)
    assert_same_result(fast, slow, f"{case.name}_{mode}")
    if with_out:
        grad_fast = fast if mode == "backward" else fast[1]
        grad_slow = slow if mode == "backward" else slow[1]
        assert grad_fast is outs["fast"] and grad_slow is outs["slow"]
        assert_identical(outs["fast"], outs["slow"])


# ------------------------------------------------------ the path is taken


def _general_path_refused(monkeypatch):
    """Makes the general path raise, so a call that succeeds ran in C++."""

    def refuse(*args, **kwargs):
        raise AssertionError("took the general path")

    monkeypatch.setattr(fastloss._validate, "reduction", refuse)


@pytest.mark.parametrize("case", case_params(FAST))
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_plain_calls_take_the_fast_path(case, dtype, monkeypatch):
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((2, 100)).astype(dtype)
    w, go = rng.uniform(0.5, 1.5, (2, 100)).astype(dtype)
    g = np.empty_like(x)
    options = {n: 0.5 for n in float_options(case)}
    weights = [{}, {"weight": w}] if case.weighted else [{}]
    # What each call returns, computed on the general path first.
    expected = []
    calls = []
    for reduction in ("none", "mean", "sum"):
        for extra in weights:
            kw = dict(reduction=reduction, **options, **extra)
            calls.append((case.forward, kw))
            for go_value in ([None, 2.0, 3, np.asarray(0.5, dtype)] + ([go] if reduction == "none" else [])):
                calls.append((case.backward, dict(kw, grad_output=go_value)))
                calls.append((case.value_and_grad, dict(kw, grad_output=go_value)))
                calls.append((case.value_and_grad, dict(kw, grad_output=go_value, out=g)))
    for fn, kw in calls:
        expected.append(copied(fn(sub(x), sub(t), **{k: sub(v) for k, v in kw.items()})))
    crit = case.nn_class(reduction="sum", **options)
    expected += [crit(sub(x), sub(t)), crit.backward(sub(x), sub(t)), crit.value_and_grad(sub(x), sub(t))]
    _general_path_refused(monkeypatch)
    results = [copied(fn(x, t, **kw)) for fn, kw in calls]
    results += [crit(x, t), crit.backward(x, t), crit.value_and_grad(x, t)]
    results += [crit(input=x, target=t), crit.forward(target=t, input=x)]
    expected += [expected[-3], expected[-3]]
    names = [f"{fn.__name__} {kw}" for fn, kw in calls] + ["nn"] * 5
    assert len(results) == len(expected) == len(names)
    for what, r, e in zip(names, results, expected):
        assert_same_result(r, e, what)


# ------------------------------------------------------------------ errors


def _error_calls(case, dtype):
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((2, 4, 5)).astype(dtype)
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    buf = np.zeros(40, dtype)
    yield "bad reduction", case.forward, (x, t), {"reduction": "avg"}
    yield "reduction type", case.forward, (x, t), {"reduction": None}
    yield "shapes", case.forward, (x, t[:3]), {}
    yield "grad_output shape", case.backward, (x, t), {"reduction": "none", "grad_output": x[:2]}
    yield "grad_output reduced shape", case.backward, (x, t), {"grad_output": np.ones(1, dtype)}
    yield "grad_output type", case.backward, (x, t), {"grad_output": "1"}
    yield "out read-only", case.backward, (x, t), {"out": ro}
    yield "out dtype", case.backward, (x, t), {"out": np.zeros(x.shape, F32 if dtype == F64 else F64)}
    yield "out shape", case.backward, (x, t), {"out": np.zeros((5, 4), dtype)}
    yield "out is input", case.value_and_grad, (x, t), {"out": x}
    yield "out overlaps target", case.backward, (x, buf[:20].reshape(4, 5)), {"out": buf[10:30].reshape(4, 5)}
    yield "out overlaps grad_output", case.backward, (x, t), {"reduction": "none", "grad_output": buf[:20].reshape(4, 5),
                                                              "out": buf[19:39].reshape(4, 5)}
    yield "out self-overlapping", case.backward, (x, t), {
        "out": np.lib.stride_tricks.as_strided(buf, shape=(4, 5), strides=(dtype.itemsize, dtype.itemsize))}
    yield "out list", case.backward, (x, t), {"out": [0.0] * 20}
    yield "out tuple", case.backward, (x, t), {"out": (np.zeros_like(x), np.zeros_like(x))}
    if case.weighted:
        yield "weight shape", case.forward, (x, t), {"weight": x[:2]}
        yield "weight type", case.forward, (x, t), {"weight": "w"}
    for name in float_options(case):
        yield f"{name} type", case.forward, (x, t), {name: "1"}
        yield f"{name} negative", case.forward, (x, t), {name: -1.0}


@pytest.mark.parametrize("case", case_params(FAST))
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_errors_are_the_same_on_both_paths(case, dtype):
    for what, fn, arrays, kw in _error_calls(case, dtype):
        with pytest.raises(Exception) as fast:  # noqa: PT011 - compared with the general path's below
            fn(*arrays, **kw)
        slow_kw = {k: (v if k == "out" else sub(v)) for k, v in kw.items()}
        with pytest.raises(Exception) as slow:  # noqa: PT011
            fn(*(sub(a) for a in arrays), **slow_kw)
        assert type(fast.value) is type(slow.value), what
        assert type(fast.value) in (TypeError, ValueError), (what, fast.value)
        assert str(fast.value) == str(slow.value), what


# ---------------------------------------------------- torch, JAX, buffers


def _torch_layouts(torch, a):
    t = torch.from_numpy(a.copy())
    yield "contiguous", t
    yield "requires_grad", t.clone().requires_grad_(True)
    yield "parameter", torch.nn.Parameter(t.clone())
    yield "transposed", torch.from_numpy(np.ascontiguousarray(a.T)).T
    yield "strided", torch.from_numpy(np.repeat(a, 2, axis=-1))[..., ::2]
    yield "flipped", torch.from_numpy(a[::-1, ::-1].copy()).flip(0, 1)


@pytest.mark.parametrize("case", case_params(FAST))
@pytest.mark.parametrize("mode", MODES)
def test_torch_tensors_equal_their_numpy_copies(case, mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    fn = function(case, mode)
    for dtype in (F32, F64):
        x, t = rng.standard_normal((2, 6, 7)).astype(dtype)
        for reduction in ("none", "mean", "sum"):
            expected = fn(x, t, reduction=reduction)
            for name, tx in _torch_layouts(torch, x):
                for _, tt in _torch_layouts(torch, t):
                    assert_same_result(fn(tx, tt, reduction=reduction), expected, f"{name} {reduction}")


def test_torch_negated_views_and_bfloat16():
    """A lazily negated tensor (``is_neg``) holds -values in memory: it is read
    as its values on both paths; bfloat16 tensors take the general path."""
    torch = pytest.importorskip("torch")
    z = torch.tensor([1 + 2j, 3 - 4j, -5 + 0.5j, 2 + 2j])
    neg = z.conj().imag
    assert neg.is_neg()
    x = np.array([0.5, -1.0, 2.0, 3.0], np.float32)
    values = neg.resolve_neg().numpy()
    for mode in MODES:
        for loss in ("mse_loss", "l1_loss"):
            fn = getattr(fastloss, loss + ("" if mode == "forward" else "_" + mode))
            assert_same_result(fn(x, neg, reduction="none"), fn(x, values, reduction="none"))
            assert_same_result(fn(neg, x, reduction="sum"), fn(values, x, reduction="sum"))
    bf = torch.tensor([0.5, -1.0, 2.0], dtype=torch.bfloat16, requires_grad=True)
    v = fastloss.mse_loss(bf, bf.detach() * 2, reduction="none")
    assert v.dtype.name == "bfloat16"
    assert_identical(v, fastloss.mse_loss(bf.detach().float().numpy(), bf.detach().float().numpy() * 2,
                                          reduction="none").astype(v.dtype))


def test_jax_arrays_and_memoryviews_equal_their_numpy_copies():
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((2, 50)).astype(np.float32)
    others = [("memoryview", memoryview(x), memoryview(t))]
    try:
        import jax.numpy as jnp
    except ImportError:
        pass
    else:
        others.append(("jax", jnp.asarray(x), jnp.asarray(t)))
    for what, ox, ot in others:
        for mode in MODES:
            for reduction in ("none", "mean"):
                fn = getattr(fastloss, "huber_loss" + ("" if mode == "forward" else "_" + mode))
                assert_same_result(fn(ox, ot, reduction=reduction, delta=0.7),
                                   fn(x, t, reduction=reduction, delta=0.7), what)


def test_out_may_not_overlap_a_torch_input():
    torch = pytest.importorskip("torch")
    x = np.linspace(-1, 1, 12).astype(np.float32)
    t = torch.from_numpy(x.copy())
    with pytest.raises(ValueError, match="out"):
        fastloss.mse_loss_backward(x, t, out=t.numpy())


# ------------------------------------------ table losses (_core.table_plain)

# The element-wise losses of fastloss/losses.h's table without the older
# fast path: their plain calls run in C++ after the Python validation.
TABLE_CASES = [c for c in ELEMENTWISE if not c.fast_path and c.name in fastloss._elementwise.TABLE]


def _table_calls(case, options, dtype):
    rng = np.random.default_rng(6)
    for weighted in ((False, True) if case.optional else (False,)):
        arrays = case.make(rng, (3, 37), dtype, weighted=weighted)
        for reduction in case.reductions:
            for fn in (case.forward, case.backward, case.value_and_grad):
                yield f"{fn.__name__} weighted={weighted} {reduction}", fn, arrays, dict(options, reduction=reduction)


@pytest.mark.parametrize("case, options", case_options(TABLE_CASES))
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_table_plain_calls_run_in_cpp_and_equal_the_general_path(case, options, dtype, monkeypatch):
    table_plain = fastloss._core.table_plain
    taken = []

    def spy(*args):
        result = table_plain(*args)
        taken.append(result is not None)
        return result

    calls = list(_table_calls(case, options, dtype))
    monkeypatch.setattr(fastloss._core, "table_plain", spy)
    results = [copied(case.call(fn, arrays, **kw)) for _, fn, arrays, kw in calls]
    # (the calls of an operand that broadcasts or has no gradient array
    # decline, and go on as the general path)
    assert any(taken), f"{case.name}: no call ran in C++"
    monkeypatch.setattr(fastloss._core, "table_plain", lambda *args: None)
    for (what, fn, arrays, kw), got in zip(calls, results):
        assert_same_result(got, copied(case.call(fn, arrays, **kw)), f"{case.name} {what}")


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("bad", ["input", "target"])
def test_table_plain_raises_the_kernel_checks_as_the_general_path(dtype, bad, monkeypatch):
    rng = np.random.default_rng(7)
    x, t = rng.uniform(0, 1, (2, 50)).astype(dtype)
    {"input": x, "target": t}[bad][17] = np.nan
    fns = (fastloss.binary_cross_entropy, fastloss.binary_cross_entropy_backward,
           fastloss.binary_cross_entropy_value_and_grad)
    messages = []
    for general in (False, True):
        if general:
            monkeypatch.setattr(fastloss._core, "table_plain", lambda *args: None)
        for fn in fns:
            with pytest.raises(ValueError, match=f"{bad}: all elements of {bad} should be between 0 and 1") as e:
                fn(x, t, reduction="none")
            messages.append(str(e.value))
    assert messages[:3] == messages[3:]


def test_table_plain_declines_what_it_does_not_take():
    """None (the general path) for a wrong argument count's neighbours:
    mixed dtypes, other shapes, non-arrays, unknown ids."""
    lid = fastloss._elementwise.TABLE["kl_div"][0]
    x = np.ones(4, F32)
    plain = fastloss._core.table_plain
    assert plain(lid, 0, 1, (x, x), None, (0.0,), None, (), (0,)) is not None
    assert plain(lid, 0, 1, (x, x.astype(F64)), None, (0.0,), None, (), (0,)) is None
    assert plain(lid, 0, 1, (x, np.ones(5, F32)), None, (0.0,), None, (), (0,)) is None
    assert plain(lid, 0, 1, (x, [1.0] * 4), None, (0.0,), None, (), (0,)) is None
    assert plain(lid, 0, 1, (x, x.view(Sub)), None, (0.0,), None, (), (0,)) is None
    assert plain(lid, 0, 1, (x,), None, (0.0,), None, (), (0,)) is None
    assert plain(10**6, 0, 1, (x, x), None, (0.0,), None, (), (0,)) is None
    assert plain(lid, 0, 1, (x, x), None, ("nope",), None, (), (0,)) is None
    assert plain(lid, 2, 1, (x, x), None, (0.0,), None, (), (None,)) is None
