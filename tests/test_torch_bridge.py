"""fastloss.torch: every registered loss as a torch.autograd.Function and a
torch.nn.Module — gradcheck in float64, torch's own values and gradients in
float32, and a training loop that follows torch's loss curve."""

import numpy as np
import pytest

from cases import CASES, case_params

torch = pytest.importorskip("torch")
import fastloss.torch  # noqa: E402
import fastloss.torch.nn  # noqa: E402

BRIDGED = [c for c in CASES.values() if c.kind in ("elementwise", "classification")]


def _tensors(case, arrays, dtype, grad):
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype.kind in "iub":  # class indices keep their integer dtype
            out[k] = torch.from_numpy(v.copy())
            continue
        t = torch.tensor(v, dtype=dtype)
        out[k] = t.requires_grad_(grad and k in case.grad_names)
    return out


def _reductions(case):
    return list(case.reductions)


@pytest.mark.parametrize("case", case_params(BRIDGED))
def test_gradcheck_float64(case):
    rng = np.random.default_rng(0)
    arrays = case.make(rng, (3, 4), np.float64, weighted=True)
    for reduction in _reductions(case):
        for options in case.option_sets[:2]:
            ts = _tensors(case, arrays, torch.float64, True)
            inputs = tuple(ts[n] for n in case.grad_names)

            def f(*diff, ts=ts, options=options, reduction=reduction):
                args = {**ts, **dict(zip(case.grad_names, diff))}
                return case.call(getattr(fastloss.torch, case.name), args, reduction=reduction, **options)

            assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4), (reduction, options)


@pytest.mark.parametrize("case", case_params(BRIDGED))
def test_matches_torch_float32(case):
    if case.spec.torch is None:
        pytest.skip("no torch peer")
    rng = np.random.default_rng(1)
    arrays = case.make(rng, (5, 6), np.float32, weighted=True)
    for reduction in _reductions(case):
        ours = _tensors(case, arrays, torch.float32, True)
        theirs = _tensors(case, arrays, torch.float32, True)
        a = case.call(getattr(fastloss.torch, case.name), ours, reduction=reduction)
        positional, keyword = case.split(theirs)
        b = case.spec.torch(torch, *positional, **keyword, reduction=reduction)
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-6)
        g = torch.linspace(-1, 2, a.numel()).reshape(a.shape) if a.ndim else torch.tensor(0.7)
        ga = torch.autograd.grad(a, [ours[n] for n in case.grad_names], g)
        gb = torch.autograd.grad(b, [theirs[n] for n in case.grad_names], g)
        for x, y in zip(ga, gb):
            torch.testing.assert_close(x, y, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("case", case_params(BRIDGED))
def test_module_equals_function(case):
    rng = np.random.default_rng(2)
    arrays = case.make(rng, (4, 3), np.float32)
    module = getattr(fastloss.torch.nn, case.spec.class_name)(reduction="sum")
    ts = _tensors(case, arrays, torch.float32, True)
    positional, keyword = case.split(ts)
    value = module(*positional)
    expected = getattr(fastloss, case.name)(*(t.detach().numpy() for t in positional), reduction="sum")
    np.testing.assert_array_equal(value.detach().numpy(), expected)
    value.backward()
    assert ts[case.grad_names[0]].grad is not None
    assert isinstance(module, torch.nn.Module) and "reduction='sum'" in repr(module)


def test_reduced_backward_scales_the_fused_gradient_and_none_runs_backward():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 5, dtype=torch.float64)
    (3.0 * fastloss.torch.huber_loss(x, y, delta=0.5)).backward()
    expected = 3.0 * fastloss.huber_loss_backward(x.detach().numpy(), y.numpy(), delta=0.5)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-15)
    x.grad = None
    g = torch.randn(6, 5, dtype=torch.float64)
    fastloss.torch.huber_loss(x, y, delta=0.5, reduction="none").backward(g)
    np.testing.assert_allclose(x.grad.numpy(), fastloss.huber_loss_backward(
        x.detach().numpy(), y.numpy(), delta=0.5, reduction="none", grad_output=g.numpy()), rtol=1e-15)
    # no gradient wanted: the forward kernel only, a plain tensor
    assert not fastloss.torch.mse_loss(x.detach(), y).requires_grad


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_double_backward_raises(reduction):
    """The gradients come from the kernels, not torch ops: create_graph=True
    then differentiating the gradient raises instead of silently giving a
    zero second-order term (torch's once_differentiable)."""
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (4,))
    loss = fastloss.torch.cross_entropy(x, t, reduction=reduction).sum()
    (gx,) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.pow(2).sum().backward()


def test_errors_are_fastlosss():
    with pytest.raises(ValueError, match="delta"):
        fastloss.torch.huber_loss(torch.zeros(3), torch.zeros(3), delta=-1.0)
    with pytest.raises(TypeError):
        fastloss.torch.mse_loss(torch.zeros(3))


def test_training_loop_follows_torchs_loss_curve():
    """A small MLP trained with fastloss.torch's losses and with torch's own
    from the same start: the same loss curve (float64)."""
    def train(loss_fn):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(64, 8, generator=gen, dtype=torch.float64)
        y = (torch.randn(64, 4, generator=gen, dtype=torch.float64) > 0).double()
        curve = []
        for _ in range(30):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            curve.append(loss.item())
        return np.array(curve)

    for ours, theirs in ((fastloss.torch.binary_cross_entropy_with_logits,
                          torch.nn.functional.binary_cross_entropy_with_logits),
                         (fastloss.torch.nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5))):
        a, b = train(ours), train(theirs)
        assert a[-1] < a[0]
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_nn_is_reachable_as_an_attribute():
    import subprocess
    import sys

    code = "import fastloss.torch; print(fastloss.torch.nn.MSELoss.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "fastloss.torch.nn", done.stderr[-2000:]
