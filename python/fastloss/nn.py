"""torch.nn-style loss classes: ``crit = MSELoss(reduction='sum')``, then
``crit(input, target)``, ``crit.backward(input, target, grad_output=None)`` and
``crit.value_and_grad(...)``. One class per registered loss, with torch's name
and constructor arguments (without the deprecated ``size_average``/``reduce``)."""

from __future__ import annotations

from . import functional as _functional  # noqa: F401 - registers the losses
from ._api import REGISTRY, _deprecated, _UNSET

__all__ = []


class _Loss:
    """Base of every loss class: holds the options, forwards to the functional."""

    _spec = None

    def __init__(self, *args, size_average=_UNSET, reduce=_UNSET, **kwargs):
        spec = self._spec
        if size_average is not _UNSET or reduce is not _UNSET:
            _deprecated(type(self).__name__, size_average, reduce)
        names = spec.class_options
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} positional arguments ({len(args)} given)")
        options = {n: spec.options[n] for n in names}
        for n, value in zip(names, args):
            options[n] = value
        for n, value in kwargs.items():
            if n not in options:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {n!r}")
            if n in names[: len(args)]:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {n!r}")
            options[n] = value
        for n, value in options.items():
            setattr(self, n, value)

    def _options(self):
        return {n: getattr(self, n) for n in self._spec.class_options}

    def forward(self, *arrays):
        return self._spec.forward(*arrays, **self._options())

    __call__ = forward

    def backward(self, *arrays, grad_output=None, out=None):
        return self._spec.backward(*arrays, grad_output=grad_output, out=out, **self._options())

    def value_and_grad(self, *arrays, grad_output=None, out=None):
        return self._spec.value_and_grad(*arrays, grad_output=grad_output, out=out, **self._options())

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({opts})"


def _make(name):
    spec = REGISTRY[name]
    doc = f"Class form of :func:`fastloss.{spec.name}`; constructor: ({', '.join(spec.class_options)})."
    cls = type(spec.class_name, (_Loss,), {"_spec": spec, "__doc__": doc, "__module__": __name__})
    __all__.append(spec.class_name)
    return cls


L1Loss = _make("l1_loss")
MSELoss = _make("mse_loss")
SmoothL1Loss = _make("smooth_l1_loss")
HuberLoss = _make("huber_loss")
