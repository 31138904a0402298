"""Every error path: the exception type API.md §5 names (ValueError for
shapes and options, TypeError for dtypes and unknown arguments), a message
that names the argument, and no write into the caller's arrays."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest

import fastloss

from cases import (
    ELEMENTWISE,
    assert_unchanged,
    case_params,
    snapshot,
)

F32 = np.dtype(np.float32)


def _arrays(case, shape=(3, 4), dtype=F32, weighted=False, **kw):
    return case.make(np.random.default_rng(0), shape, dtype, weighted=weighted, **kw)


def _args(case, a, **replace):
    """The positional arrays of ``case`` from ``a``, some replaced."""
    return [replace.get(n, a[n]) if n in replace else a[n] for n in case.spec.arrays]


def _all_modes(case):
    return [pytest.param(case, fn, id=f"{case.name}{suffix}")
            for suffix, fn in (("", case.forward), ("_backward", case.backward),
                               ("_value_and_grad", case.value_and_grad))]


ALL_FUNCTIONS = [p for c in ELEMENTWISE for p in _all_modes(c)]
GRAD_FUNCTIONS = [p for p in ALL_FUNCTIONS if p.values[1] is not p.values[0].forward]


def _raises(exc, match, fn, *args, arrays=None, **kwargs):
    """``fn(*args, **kwargs)`` raises ``exc`` naming ``match``, and leaves the
    caller's arrays as they were."""
    watched = snapshot({**(arrays or {}), **{f"arg{i}": a for i, a in enumerate(args)},
                        **{k: v for k, v in kwargs.items() if isinstance(v, np.ndarray)}})
    with warnings.catch_warnings():
        # torch warns about a size mismatch before it fails; either is fine here
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(exc, match=match):
            fn(*args, **kwargs)
    assert_unchanged({**(arrays or {}), **{f"arg{i}": a for i, a in enumerate(args)},
                      **{k: v for k, v in kwargs.items() if isinstance(v, np.ndarray)}}, watched)


# ------------------------------------------------------------- reduction


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
@pytest.mark.parametrize("bad", ["bogus", "MEAN", "", "batchmean", None, 1, True, b"mean", ("mean",)],
                         ids=repr)
def test_bad_reduction(case, fn, bad):
    if bad in case.reductions:
        return  # ('batchmean' is kl_div's)
    a = _arrays(case)
    _raises(ValueError, "reduction", fn, *_args(case, a), reduction=bad)


# ---------------------------------------------------------------- dtypes


BAD_INPUTS = {
    "int64": np.arange(12).reshape(3, 4),
    "int8": np.ones((3, 4), np.int8),
    "uint8": np.ones((3, 4), np.uint8),
    "bool": np.ones((3, 4), bool),
    "complex64": np.ones((3, 4), np.complex64),
    "complex128": np.ones((3, 4), np.complex128),
    "object": np.full((3, 4), 1.0, dtype=object),
    "str": np.full((3, 4), "a"),
    "datetime": np.full((3, 4), np.datetime64("2020-01-01")),
    "python_int_list": [[1, 2, 3, 4]] * 3,
    "float8": np.ones((3, 4), ml_dtypes.float8_e4m3fn),
    "int4": np.ones((3, 4), ml_dtypes.int4),
    "none": None,
}


def _differentiable(cases):
    """``(case, fn, argument)`` for every differentiable array argument."""
    return [pytest.param(*p.values, n, id=f"{p.id}-{n}") for p in ALL_FUNCTIONS for n in p.values[0].grad_names]


@pytest.mark.parametrize("case, fn, name", _differentiable(ELEMENTWISE))
@pytest.mark.parametrize("bad", list(BAD_INPUTS), ids=str)
def test_bad_input_dtype(case, fn, name, bad):
    """Differentiable arrays must be floating (as torch's autograd)."""
    a = _arrays(case)
    _raises(TypeError, name, fn, *_args(case, a, **{name: BAD_INPUTS[bad]}), arrays=a)


BAD_TARGETS = {k: BAD_INPUTS[k] for k in ("complex64", "complex128", "object", "str", "datetime", "none")}


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
@pytest.mark.parametrize("bad", list(BAD_TARGETS), ids=str)
def test_bad_target_dtype(case, fn, bad):
    a = _arrays(case)
    _raises(TypeError, "target", fn, *_args(case, a, target=BAD_TARGETS[bad]), arrays=a)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
@pytest.mark.parametrize("in_shape, tg_shape", [((3, 4), (5,)), ((3, 4), (4, 3)), ((2, 3), (3, 3, 2)), ((0,), (2,))],
                         ids=str)
def test_shapes_not_broadcastable(case, fn, in_shape, tg_shape):
    a = _arrays(case, in_shape, target_shape=tg_shape)
    _raises(ValueError, "target", fn, *_args(case, a))


@pytest.mark.parametrize("case, fn, shapes, name",
                         [pytest.param(*p.values, s, n, id=f"{p.id}-{n}{tuple(s.values())}".replace(" ", ""))
                          for p in ALL_FUNCTIONS for s, n in p.values[0].shape_errors])
def test_shape_errors(case, fn, shapes, name):
    """The shapes the loss refuses (Case.shape_errors; input (3, 4) unless
    given): torch's rules, e.g. L1's 'Weights and input must have the same
    size.' (broadcastable is not enough, nor the loss's shape), BCE's target
    of input's shape, pos_weight broadcasting into input, gaussian var's
    three forms, ranking's equal number of dimensions."""
    a = _arrays(case, shapes.get(case.primary, (3, 4)), weighted=[n for n in case.optional if n in shapes],
                shapes=shapes)
    positional, keyword = case.split(a)
    _raises(ValueError, name, fn, *positional, arrays=a, **keyword)


@pytest.mark.parametrize("case, fn, name", [pytest.param(*p.values, n, id=f"{p.id}-{n}") for p in ALL_FUNCTIONS
                                            for n in p.values[0].optional])
@pytest.mark.parametrize("bad", ["complex64", "object", "str"])
def test_bad_weight_dtype(case, fn, name, bad):
    a = _arrays(case)
    _raises(TypeError, name, fn, *_args(case, a), **{name: BAD_INPUTS[bad]}, arrays=a)


# --------------------------------------------------------------- options


@pytest.mark.parametrize(
    "case, options, exc, name",
    [pytest.param(c, o, e, n, id=f"{c.name}-{o}") for c in ELEMENTWISE for o, e, n in c.bad_options],
)
def test_bad_options(case, options, exc, name):
    a = _arrays(case)
    for fn in (case.forward, case.backward, case.value_and_grad):
        _raises(exc, name, fn, *_args(case, a), arrays=a, **options)
    with pytest.raises(exc, match=name):
        case.nn_class(**options)(*_args(case, a))


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
@pytest.mark.parametrize("deprecated", ["size_average", "reduce"])
@pytest.mark.parametrize("value", [True, False, None])
def test_deprecated_arguments(case, fn, deprecated, value):
    a = _arrays(case)
    _raises(TypeError, deprecated, fn, *_args(case, a), arrays=a, **{deprecated: value})


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
def test_unknown_keyword(case, fn):
    a = _arrays(case)
    _raises(TypeError, "bogus", fn, *_args(case, a), bogus=1, arrays=a)
    _raises(TypeError, "Input", fn, *_args(case, a), Input=a[case.primary], arrays=a)


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_forward_takes_no_gradient_arguments(case):
    a = _arrays(case)
    _raises(TypeError, "grad_output", case.forward, *_args(case, a), grad_output=1.0, arrays=a)
    _raises(TypeError, "out", case.forward, *_args(case, a), out=np.empty((3, 4), F32), arrays=a)


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
def test_too_many_positional_arguments(case, fn):
    a = _arrays(case)
    args = _args(case, a) + [case.spec.options[n] for n in case.spec.options] + [1.0]
    _raises(TypeError, "", fn, *args, arrays=a)


@pytest.mark.parametrize("case, fn", ALL_FUNCTIONS)
def test_missing_array(case, fn):
    """Leaving out the last array argument names it."""
    a = _arrays(case)
    _raises(TypeError, case.spec.arrays[-1], fn, *_args(case, a)[:-1], arrays=a)


# ------------------------------------------------------------ grad_output


@pytest.mark.parametrize("case, fn", GRAD_FUNCTIONS)
@pytest.mark.parametrize(
    "reduction, go_shape",
    [("none", (5,)), ("none", (4, 3)), ("none", (2, 3, 4)), ("none", (3, 4, 1)), ("mean", (3, 4)), ("mean", (1,)),
     ("sum", (1, 1)), ("sum", (2,))],
    ids=str,
)
def test_grad_output_not_broadcastable(case, fn, reduction, go_shape):
    """grad_output must broadcast to the loss's shape (which is () when reduced)."""
    a = _arrays(case)
    _raises(ValueError, "grad_output", fn, *_args(case, a), reduction=reduction,
            grad_output=np.ones(go_shape, F32), arrays=a)


@pytest.mark.parametrize("case, fn", GRAD_FUNCTIONS)
@pytest.mark.parametrize("bad", [1j, np.array(1j), "1", np.array(["a"]), object()], ids=repr)
def test_grad_output_bad_type(case, fn, bad):
    a = _arrays(case)
    _raises(TypeError, "grad_output", fn, *_args(case, a), grad_output=bad, arrays=a)


# ------------------------------------------------------------------ out=


def _out_cases():
    return [
        ("wrong shape", lambda a: np.zeros((4, 3), F32)),
        ("loss shape, not input's", lambda a: np.zeros((2, 3, 4), F32)),
        ("wrong dtype", lambda a: np.zeros((3, 4), np.float64)),
        ("int dtype", lambda a: np.zeros((3, 4), np.int32)),
        ("read-only", lambda a: _readonly(np.zeros((3, 4), F32))),
        ("elements overlap (writeable stride 0)",
         lambda a: np.lib.stride_tricks.as_strided(np.zeros(4, F32), (3, 4), (0, 4), writeable=True)),
        ("elements overlap (rows overlap)",
         lambda a: np.lib.stride_tricks.as_strided(np.zeros(8, F32), (3, 4), (4, 4), writeable=True)),
        ("is input", lambda a: a["primary"]),
        ("view of input", lambda a: a["primary"][::-1]),
        ("is target", lambda a: a["target"][0] if a["target"].ndim == 3 else a["target"]),
        ("overlaps weight", lambda a: a["weight"]),
        ("overlaps grad_output", lambda a: a["grad_output"][0]),
        ("list", lambda a: [[0.0] * 4] * 3),
        ("tuple of the wrong length", lambda a: None),
        ("scalar", lambda a: 0.0),
    ]


def _readonly(arr):
    arr.flags.writeable = False
    return arr


@pytest.mark.parametrize(
    "case, fn, what, make_out",
    [pytest.param(*p.values, what, make, id=f"{p.id}-{what}")
     for p in GRAD_FUNCTIONS for what, make in _out_cases() if what != "overlaps weight" or p.values[0].weighted],
)
def test_bad_out(case, fn, what, make_out):
    """Each bad ``out`` (for a loss with several gradients: in the first
    slot of the tuple, the others valid) raises ValueError naming ``out``
    and writes nothing."""
    a = _arrays(case, (3, 4), target_shape=(2, 3, 4))
    if not case.accepts(a) or what == "is target":
        a = _arrays(case, (3, 4))  # same shape as input: no broadcasting
    kwargs = {}
    if case.weighted:
        a["weight"] = np.ones((3, 4), F32)
        kwargs["weight"] = a["weight"]
    loss_shape = case.loss_shape(a)
    a["grad_output"] = np.ones(loss_shape, F32)
    a["primary"] = a[case.primary]
    n = len(case.grad_names)
    if what == "tuple of the wrong length":
        out = tuple(np.zeros((3, 4), F32) for _ in range(n + 1))
    else:
        bad = make_out(a)
        out = bad if n == 1 else (bad,) + tuple(np.zeros((3, 4), F32) for _ in range(n - 1))
    if what == "loss shape, not input's" and loss_shape == (3, 4):
        return  # (this loss does not broadcast input: 'wrong shape' covers it)
    outs = out if isinstance(out, tuple) else (out,)
    before = [np.array(o, copy=True) if isinstance(o, np.ndarray) else None for o in outs]
    positional = _args(case, a)
    _raises(ValueError, "out", fn, *positional, reduction="none",
            grad_output=a["grad_output"] if loss_shape != (3, 4) else None, out=out,
            arrays={k: v for k, v in a.items() if k != "primary"}, **kwargs)
    for o, b in zip(outs, before):
        if b is not None:
            assert np.array_equal(o, b, equal_nan=True), "out was written despite the error"


# --------------------------------------------------------------- threads


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (-(2**40), ValueError),
                                      (1.5, TypeError), (2.0, TypeError), (True, TypeError), (False, TypeError),
                                      ("2", TypeError), (None, TypeError), (np.float64(2), TypeError)],
                         ids=repr)
def test_set_num_threads_rejects(restore_threads, bad, exc):
    before = fastloss.get_num_threads()
    with pytest.raises(exc, match=r"\bn\b"):
        fastloss.set_num_threads(bad)
    assert fastloss.get_num_threads() == before


def test_set_num_threads_accepts_numpy_int(restore_threads):
    fastloss.set_num_threads(np.int64(3))
    assert fastloss.get_num_threads() == 3
