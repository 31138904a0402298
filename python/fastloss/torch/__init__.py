"""fastloss for torch users: every loss as a ``torch.autograd.Function``.

    >>> import torch, fastloss.torch
    >>> x = torch.randn(8, 3, requires_grad=True)
    >>> loss = fastloss.torch.mse_loss(x, torch.zeros(8, 3))
    >>> loss.backward()                      # x.grad from fastloss's kernel

``fastloss.torch.<name>(...)`` takes the arguments of ``fastloss.<name>``
(torch's) as CPU tensors and returns a tensor; ``fastloss.torch.nn`` has the
modules (``fastloss.torch.nn.MSELoss(reduction='sum')``). A reduced loss
runs the fused kernel once in forward (``<name>_value_and_grad``, when a
gradient is wanted) and keeps the gradient: backward only scales it by the
incoming gradient. ``reduction='none'`` runs the forward kernel, and backward
runs ``<name>_backward`` with the incoming gradient. Gradients flow to the
loss's differentiable arrays (``input``; ``input1``/``input2`` of
``margin_ranking_loss``; ``input``/``var`` of ``gaussian_nll_loss``;
``input``/``linear_weight``/``linear_bias`` of ``linear_cross_entropy``, whose
module ``fastloss.torch.nn.LinearCrossEntropyLoss`` holds a ``torch.nn.Linear``),
not to ``target``, ``weight`` or ``pos_weight`` (as torch, except that torch
also differentiates some weights). Tensors are read without a copy (DLPack);
results are tensors sharing the kernels' output memory. Semantics and errors
are fastloss's (``ValueError``/``TypeError`` naming the argument), values are
torch's. The gradients are computed by the kernels, not by torch ops, so they
are not differentiable again: a double backward (``create_graph=True``, a
gradient penalty) raises RuntimeError instead of silently dropping terms.
torch is optional: importing this module needs it."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .. import functional as _functional  # noqa: F401 - registers the losses
from .._api import REGISTRY as _REGISTRY

__all__ = []


def _to_torch(value):
    """A NumPy result (array or scalar) as a tensor, without a copy where possible."""
    arr = np.asarray(value)
    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(arr).view(np.int16)).view(torch.bfloat16)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.from_numpy(arr)


def _detach(obj):
    return obj.detach() if isinstance(obj, torch.Tensor) else obj


class _LossFunction(torch.autograd.Function):
    """forward(ctx, name, options, *arrays): arrays in the loss's order."""

    @staticmethod
    def forward(ctx, name, options, *arrays):
        spec = _REGISTRY[name]
        names = _operands(spec)
        plain = [_detach(a) for a in arrays]
        wanted = [ctx.needs_input_grad[2 + names.index(g)] for g in spec.grads]
        reduction = options.get("reduction", spec.options.get("reduction"))
        ctx.name, ctx.options, ctx.plain, ctx.saved_grads = name, options, None, None
        # keyword operands (linear_cross_entropy's linear_bias) are passed as keywords
        options = {**options, **dict(zip(names[len(spec.arrays):], plain[len(spec.arrays):]))}
        plain = plain[:len(spec.arrays)]
        ctx.options = options
        if any(wanted) and reduction != "none":
            value, grads = spec.value_and_grad(*plain, **options)
            ctx.saved_grads = grads if len(spec.grads) > 1 else (grads,)
        else:
            value = spec.forward(*plain, **options)
            if any(wanted):
                ctx.plain = plain
        return _to_torch(value)

    @staticmethod
    @once_differentiable  # the gradients come from the kernel: a double backward raises, not a silent 0
    def backward(ctx, grad_output):
        spec = _REGISTRY[ctx.name]
        if ctx.saved_grads is not None:
            scale = grad_output.detach()
            grads = [None if g is None else (_to_torch(g) if bool(scale == 1) else _to_torch(g) * scale)
                     for g in ctx.saved_grads]
        else:
            result = spec.backward(*ctx.plain, grad_output=grad_output.detach(), **ctx.options)
            grads = [None if g is None else _to_torch(g)
                     for g in (result if len(spec.grads) > 1 else (result,))]
        by_name = dict(zip(spec.grads, grads))
        return (None, None, *(by_name.get(n) for n in _operands(spec)))


def _operands(spec):
    """The tensors a loss's Function takes: its arrays, then the
    differentiable keyword arrays (linear_cross_entropy's linear_bias)."""
    return spec.arrays + tuple(g for g in spec.grads if g not in spec.arrays)


def _make(name):
    spec = _REGISTRY[name]
    sig = inspect.signature(spec.forward)
    arrays = spec.arrays

    def loss(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        given = bound.arguments
        names = _operands(spec)
        options = {k: _detach(v) for k, v in given.items() if k not in names}
        return _LossFunction.apply(name, options, *(given.get(n) for n in names))

    loss.__name__ = loss.__qualname__ = name
    loss.__module__ = __name__
    loss.__signature__ = sig
    loss.__doc__ = (f"``fastloss.{name}`` on tensors, differentiable w.r.t. {', '.join(spec.grads)} "
                     f"(a torch.autograd.Function). See fastloss.{name} for the formula and arguments.")
    return loss


for _name in _REGISTRY:
    globals()[_name] = _make(_name)
    __all__.append(_name)
del _name


def __getattr__(attr):  # fastloss.torch.nn on first use
    if attr == "nn":
        return importlib.import_module(__name__ + ".nn")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__():
    return sorted(set(__all__) | {"nn"} | {n for n in globals() if n.startswith("__") and n.endswith("__")})
