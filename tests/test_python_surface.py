"""The Python surface as a user meets it: dtypes of Python scalars and lists
(NumPy 2 / torch rule), the ``fastloss.nn`` classes' signatures, errors and
warnings (against torch's modules), what ``dir(fastloss)`` and the docstrings
show, and the thread-count settings (argument and environment variables)."""

import importlib
import inspect
import os
import pathlib
import pydoc
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastloss
import fastloss.functional
import fastloss.nn
from cases import BEYOND_TORCH_OPTIONS, BFLOAT16, CASES, ELEMENTWISE, assert_identical, case_params, check_value

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
MODES = ("forward", "backward", "value_and_grad")


def function(case, mode):
    return {"forward": case.forward, "backward": case.backward, "value_and_grad": case.value_and_grad}[mode]


# --------------------------------------------------- Python scalars, lists


def test_issue_examples_keep_float32():
    x32 = np.ones(3, np.float32)
    with pytest.warns(UserWarning, match="target size"):  # as torch for a 0-d target: it broadcasts
        value = fastloss.mse_loss(x32, 2.0)
    assert type(value) is np.float32
    assert np.result_type(x32, 2.0) == F32  # NumPy 2's own rule, the one followed
    assert value == np.float32(1.0)
    per_element = fastloss.l1_loss(x32, [1.0, 2.0, 3.0], reduction="none")
    assert per_element.dtype == F32
    np.testing.assert_array_equal(per_element, np.array([0.0, 1.0, 2.0], np.float32))
    _, grad = fastloss.l1_loss_value_and_grad(x32, [1.0, 2.0, 3.0], reduction="none")
    assert grad.dtype == F32


WEAK_TARGETS = {
    "float": lambda shape: 0.75,
    "int": lambda shape: 2,
    "bool": lambda shape: True,
    "list": lambda shape: np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).tolist(),
    "tuple": lambda shape: tuple(np.linspace(-1, 1, shape[-1]).tolist()),
    "huge float": lambda shape: 1e300,  # beyond float32: inf, as NumPy 2's float32 + 1e300 overflows
}


def _accepts(case, arrays):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return case.accepts(arrays)


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [F16, BFLOAT16, F32, F64], ids=lambda d: d.name)
@pytest.mark.parametrize("weak", list(WEAK_TARGETS))
def test_python_scalars_and_lists_take_the_input_dtype(case, dtype, weak, reduction):
    """A Python scalar or list target (where the loss takes it: BCE's must
    have input's shape and lie in [0, 1]) takes the arrays' dtype."""
    shape = (4, 5)
    arrays = case.make(np.random.default_rng(0), shape, dtype)
    arrays["target"] = WEAK_TARGETS[weak](shape)
    if not _accepts(case, arrays):
        return
    for name in case.optional:  # weak too
        arrays[name] = np.linspace(0.5, 1.5, 20).reshape(shape).tolist()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using a target size", UserWarning)  # scalar targets broadcast
        warnings.filterwarnings("ignore", "overflow", RuntimeWarning)  # the float64 reference, cast below
        value = case.call(case.forward, arrays, reduction=reduction)
        grads = case.grads(case.call(case.backward, arrays, reduction=reduction))
        fused = case.call(case.value_and_grad, arrays, reduction=reduction)
        expected = case.expected(arrays, reduction=reduction)
    assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert fused[0].dtype == dtype and all(g.dtype == dtype for g in case.grads(fused[1]))
    if weak != "huge float":
        check_value(case, value, arrays, dtype, reduction, {})


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_values_with_a_dtype_promote_as_numpy(case):
    """NumPy scalars and arrays keep NumPy 2 promotion (float64 wins)."""
    base = case.make(np.random.default_rng(0), (6,), F32)
    x32, t32 = base[case.primary], base["target"]

    def forward(target, **kw):
        arrays = dict(base, target=target, **kw)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Using a target size", UserWarning)  # 0-d targets broadcast
            return case.call(case.forward, arrays) if _accepts(case, arrays) else None

    for target in (np.float64(t32[0]), np.asarray(t32[0], F64), t32.astype(F64)):
        got = forward(target)
        assert got is None or got.dtype == np.result_type(x32, target) == F64
    assert forward(t32[0]) is None or forward(t32[0]).dtype == F32  # a float32 NumPy scalar
    assert forward(t32).dtype == F32
    assert forward(t32.tolist()).dtype == F32  # a list meets float32 arrays: float32
    if case.optional:
        name = case.optional[0]
        with_opt = case.make(np.random.default_rng(0), (6,), F32, weighted=[name])
        assert case.call(case.forward, dict(with_opt, **{name: with_opt[name].tolist()})).dtype == F32
        assert case.call(case.forward, dict(with_opt, **{name: with_opt[name].astype(F64)})).dtype == F64
    # Only weak values: they decide, as NumPy would (Python floats are float64).
    assert case.call(case.forward, {k: v.tolist() for k, v in base.items()}).dtype == F64


@pytest.mark.parametrize("case", case_params(ELEMENTWISE))
def test_python_scalar_grad_output_keeps_the_dtype(case):
    arrays = case.make(np.random.default_rng(0), (6,), F32)
    for go in (2.0, 3, [1.0] * 6):
        reduction = "none" if isinstance(go, list) else "mean"
        for g in case.grads(case.call(case.backward, arrays, reduction=reduction, grad_output=go)):
            assert g.dtype == F32


# ---------------------------------------------------------------- nn


def _torch_class(case):
    torch = pytest.importorskip("torch")
    return getattr(torch.nn, case.spec.class_name)


def _forward_names(case):
    return list(case.spec.class_arrays or case.spec.arrays)


# (LinearCrossEntropyLoss holds parameters: its constructor takes in_features
# and num_classes; tests/test_linear_cross_entropy.py checks it against torch's.)
OPTION_CLASSES = [c for c in CASES.values() if c.kind != "linear"]


@pytest.mark.parametrize("case", case_params(c for c in OPTION_CLASSES if c.oracle == "torch"))
def test_nn_signatures_are_torchs(case):
    """Constructor and forward as torch's (constructor without the deprecated
    size_average/reduce), visible to inspect and help()."""
    ours, theirs = case.nn_class, _torch_class(case)

    def described(sig, drop=()):
        return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name not in drop]

    beyond = BEYOND_TORCH_OPTIONS.get(case.name, ())  # options torch lacks, after torch's
    assert described(inspect.signature(ours), beyond) == described(inspect.signature(theirs),
                                                                  ("size_average", "reduce"))
    assert described(inspect.signature(ours.forward)) == described(inspect.signature(theirs.forward))
    crit = ours()
    assert list(inspect.signature(crit.backward).parameters) == (_forward_names(case) + ["grad_output", "out"]
                                                                 + list(case.spec.backward_options))
    text = pydoc.render_doc(ours, renderer=pydoc.plaintext)
    star = "*, " if case.spec.class_keyword_only else ""
    options = ", ".join(f"{n}={case.spec.options[n]!r}" for n in case.spec.class_options)
    assert f"{ours.__name__}({star}{options})" in text
    assert f"forward(self, {', '.join(_forward_names(case))})" in text
    assert "<object" not in text and "*args" not in text


@pytest.mark.parametrize("case", case_params(OPTION_CLASSES))
def test_nn_arguments_by_keyword(case):
    arrays = case.make(np.random.default_rng(0), (3, 4), F32, weighted=False)
    pos = [arrays[n] for n in case.spec.arrays]
    kw = dict(zip(_forward_names(case), pos))
    crit = case.nn_class(reduction="sum")
    expected = case.forward(*pos, reduction="sum")
    assert_identical(crit(**kw), expected)
    assert_identical(crit(*pos[:-1], **dict(list(kw.items())[-1:])), expected)
    assert_identical(crit.forward(**dict(reversed(list(kw.items())))), expected)
    for a, b in zip(case.grads(crit.backward(**kw, grad_output=2.0)),
                    case.grads(case.backward(*pos, reduction="sum", grad_output=2.0))):
        assert_identical(a, b)
    v, g = crit.value_and_grad(**dict(reversed(list(kw.items()))))
    assert_identical(v, expected)
    for a, b in zip(case.grads(g), case.grads(case.backward(*pos, reduction="sum"))):
        assert_identical(a, b)


@pytest.mark.parametrize("case", case_params(c for c in OPTION_CLASSES if c.oracle == "torch"))
def test_nn_wrong_calls_raise_torchs_errors(case):
    """The same TypeError text as torch's module for the same mistake."""
    torch = pytest.importorskip("torch")
    theirs_cls = _torch_class(case)
    n = len(case.spec.arrays)
    first = _forward_names(case)[0]
    x = np.ones(3, np.float32)
    tx = torch.ones(3)
    mistakes = [
        lambda c, a: c(*[a] * (n + 1)),  # e.g. a weight passed to forward
        lambda c, a: c(*[a] * (n - 1)),
        lambda c, a: c(*[a] * n, weight=a),
        lambda c, a: c(a, **{first: a}),
        lambda c, a: c(),
    ]
    for mistake in mistakes:
        with pytest.raises(TypeError) as ours:
            mistake(case.nn_class(), x)
        with pytest.raises(TypeError) as theirs:
            mistake(theirs_cls(), tx)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match=rf"backward\(\) takes {n + 1} positional arguments but {n + 2} were given"):
        case.nn_class().backward(*[x] * (n + 1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        case.nn_class().value_and_grad(*[x] * n, bogus=1)


def _warning_site(call):
    """(filename, lineno) of the size-mismatch warning ``call`` raises."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    mismatch = [w for w in record if "target size" in str(w.message)]
    assert len(mismatch) == 1, [str(w.message) for w in record]
    return mismatch[0].filename, mismatch[0].lineno


@pytest.mark.parametrize("case", case_params([c for c in ELEMENTWISE if c.warns]))
def test_broadcast_warning_points_at_the_callers_line(case):
    x = np.ones((3, 4), np.float32)
    t = np.ones(4, np.float32)
    crit = case.nn_class()
    here = inspect.currentframe()
    sites = [  # (where the warning points, the line of the call), one call per line
        (_warning_site(lambda: crit(x, t)), here.f_lineno),
        (_warning_site(lambda: crit.forward(x, t)), here.f_lineno),
        (_warning_site(lambda: crit.backward(x, t)), here.f_lineno),
        (_warning_site(lambda: crit.value_and_grad(x, t)), here.f_lineno),
        (_warning_site(lambda: case.forward(x, t)), here.f_lineno),
        (_warning_site(lambda: case.backward(x, t)), here.f_lineno),
        (_warning_site(lambda: case.value_and_grad(x, t)), here.f_lineno),
    ]
    del here
    for site, line in sites:
        assert site == (__file__, line)
    assert len({line for _, line in sites}) == len(sites)


def test_nn_subclass_forward_is_what_a_call_runs():
    class Doubled(fastloss.nn.MSELoss):
        def forward(self, input, target):
            return 2 * super().forward(input, target)

    x, t = np.ones(3, np.float32), np.zeros(3, np.float32)
    assert Doubled()(x, t) == 2 * fastloss.mse_loss(x, t)


# ---------------------------------------------------- names and docstrings


@pytest.mark.parametrize("module", ["fastloss", "fastloss.nn", "fastloss.functional", "fastloss.reference"])
def test_dir_shows_public_names_only(module):
    """No imports (np, functools, annotations) or helpers in dir()."""
    mod = importlib.import_module(module)
    names = set(dir(mod))
    dunders = {n for n in names if n.startswith("__") and n.endswith("__")}
    submodules = {"functional", "streaming", "dask", "torch", "jax"} if module == "fastloss" else set()
    assert names - dunders == (set(mod.__all__) - dunders) | submodules
    for name in mod.__all__:
        assert hasattr(mod, name), name


def _package_texts():
    root = pathlib.Path(fastloss.__file__).parent
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".pyi", ".txt", ".md"):
            yield path.name, path.read_text(encoding="utf-8")
    for name in fastloss.__all__:
        yield f"fastloss.{name}.__doc__", getattr(fastloss, name).__doc__ or ""
    for name in fastloss.nn.__all__:
        cls = getattr(fastloss.nn, name)
        yield f"fastloss.nn.{name}", pydoc.render_doc(cls, renderer=pydoc.plaintext)
    # What the command line prints: `fastloss --help` and every command's --help.
    from fastloss import _cli

    parser = _cli.build_parser()
    yield "fastloss --help", parser.format_help()
    for action in parser._subparsers._group_actions:
        for command, sub in action.choices.items():
            yield f"fastloss {command} --help", sub.format_help()


def test_no_reference_to_files_users_do_not_have():
    """Docstrings, sources and the CLI's help name no file outside the
    package (the design notes the package was written from, and the
    repository's README.md, bench/, docs/ and tests/, are not installed)."""
    pattern = re.compile(r"API\.md|STYLE\.md|\.\./shared|§|README|(?<![\w./])(?:bench|docs|tests|\.ci)/")
    found = [(where, m.group()) for where, text in _package_texts() for m in pattern.finditer(text)]
    assert not found, found


# ------------------------------------------------------------ threads


@pytest.mark.usefixtures("restore_threads")
def test_set_num_threads_validates_n():
    for bad in (0, -1, 2**31, 2**40):
        with pytest.raises(ValueError, match=r"\bn\b"):
            fastloss.set_num_threads(bad)
    for bad in (2.0, True, "2", None):
        with pytest.raises(TypeError, match=r"\bn\b"):
            fastloss.set_num_threads(bad)
    fastloss.set_num_threads(2**31 - 1)  # accepted; the kernels cap what they start
    fastloss.set_num_threads(np.int64(3))
    assert fastloss.get_num_threads() == 3


def _threads_in_child(env):
    """(threads, RuntimeWarning texts) of ``import fastloss`` under ``env``."""
    script = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastloss\n"
        "print(fastloss.get_num_threads())\n"
        "for x in w:\n"
        "    print(x.category.__name__, x.message)\n"
    )
    full = {k: v for k, v in os.environ.items() if k not in ("FASTLOSS_NUM_THREADS", "OMP_NUM_THREADS")}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", script], env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    return int(lines[0]), lines[1:]


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "cpus"),
        ({"FASTLOSS_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "3,2"}, 3),  # OpenMP's nested list: the first level
        ({"OMP_NUM_THREADS": " 2 "}, 2),
        ({"FASTLOSS_NUM_THREADS": "2", "OMP_NUM_THREADS": "3"}, 2),
        ({"OMP_NUM_THREADS": "many"}, "cpus"),  # not ours: ignored without a warning
        ({"OMP_NUM_THREADS": "0"}, "cpus"),
    ],
    ids=str,
)
def test_thread_environment_variables(env, expected):
    threads, messages = _threads_in_child(env)
    assert threads == (_usable_cpus() if expected == "cpus" else expected)
    assert not messages


@pytest.mark.parametrize("value", ["abc", "0", "-2", "2.5", str(2**31), ""], ids=repr)
def test_invalid_fastloss_num_threads_warns_and_is_ignored(value):
    threads, messages = _threads_in_child({"FASTLOSS_NUM_THREADS": value, "OMP_NUM_THREADS": "3"})
    if value == "":  # set but empty: as unset
        assert threads == 3 and not messages
        return
    assert threads == 3  # ignored, as if unset: OMP_NUM_THREADS applies
    assert len(messages) == 1
    assert messages[0].startswith("RuntimeWarning") and "FASTLOSS_NUM_THREADS" in messages[0]
    assert repr(value) in messages[0]
