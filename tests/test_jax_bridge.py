"""fastloss.jax: every registered loss as a jax.custom_vjp function — under
jit and grad it gives the JAX formulas' values and gradients (the registry's
jax peers), passes jax.test_util.check_grads in float64, and vmaps."""

import numpy as np
import pytest

from cases import CASES, case_params

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import fastloss  # noqa: E402
import fastloss.jax  # noqa: E402

BRIDGED = [c for c in CASES.values() if c.kind in ("elementwise", "classification")]


def _call(case, fn, arrays, **options):
    positional, keyword = case.split(arrays)
    return fn(*positional, **keyword, **options)


@pytest.mark.parametrize("case", case_params(BRIDGED))
def test_jit_value_and_grad_match_the_jax_formula(case):
    if case.spec.jax is None:
        pytest.skip("no JAX peer")
    rng = np.random.default_rng(0)
    arrays = {k: jnp.asarray(v) for k, v in case.make(rng, (6, 5), np.float32, weighted=True).items()}
    names = case.grad_names
    for reduction in case.reductions:
        def ours(*diff, reduction=reduction):
            return _call(case, fastloss.jax.__dict__[case.name], {**arrays, **dict(zip(names, diff))},
                         reduction=reduction)

        def theirs(*diff, reduction=reduction):
            positional, keyword = case.split({**arrays, **dict(zip(names, diff))})
            return case.spec.jax(jnp, *positional, **keyword, reduction=reduction)

        diff = tuple(arrays[n] for n in names)
        a, b = jax.jit(ours)(*diff), jax.jit(theirs)(*diff)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-6)
        ct = jnp.linspace(-1, 2, a.size).reshape(a.shape).astype(a.dtype)
        ga = jax.jit(lambda *d: jax.vjp(ours, *d)[1](ct))(*diff)
        gb = jax.jit(lambda *d: jax.vjp(theirs, *d)[1](ct))(*diff)
        for x, y in zip(ga, gb):
            np.testing.assert_allclose(x, y, rtol=3e-5, atol=1e-6)


@pytest.mark.parametrize("case", case_params(BRIDGED))
def test_check_grads_float64(case):
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        arrays = {k: jnp.asarray(v) for k, v in case.make(rng, (3, 4), np.float64, weighted=True).items()}
        names = case.grad_names
        for reduction in [r for r in case.reductions if r != "mean"] + ["mean"]:
            def f(*diff, reduction=reduction):
                return _call(case, fastloss.jax.__dict__[case.name], {**arrays, **dict(zip(names, diff))},
                             reduction=reduction)

            check_grads(f, tuple(arrays[n] for n in names), order=1, modes=("rev",), eps=1e-6, atol=1e-5,
                        rtol=1e-4)


def test_grad_of_a_reduced_loss_is_the_fused_gradient_scaled():
    x, y = jnp.linspace(-2, 2, 12).reshape(3, 4), jnp.zeros((3, 4))
    g = jax.grad(lambda x: 3.0 * fastloss.jax.huber_loss(x, y, delta=0.5))(x)
    np.testing.assert_allclose(g, 3.0 * fastloss.huber_loss_backward(np.asarray(x), np.asarray(y), delta=0.5),
                               rtol=1e-6)


def test_vmap_and_static_options():
    xs = jnp.arange(24.0).reshape(2, 3, 4) / 10
    ys = jnp.zeros((2, 3, 4))
    got = jax.vmap(lambda x, y: fastloss.jax.smooth_l1_loss(x, y, beta=0.5))(xs, ys)
    expected = [fastloss.smooth_l1_loss(np.asarray(x), np.asarray(y), beta=0.5) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="delta"):
        fastloss.jax.huber_loss(xs, ys, delta=-1.0)
