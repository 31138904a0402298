"""``torch.nn.Module`` forms of every fastloss loss: ``MSELoss(reduction='sum')``
then ``crit(input, target)``, differentiable through ``fastloss.torch``. The
constructor takes what ``fastloss.nn``'s class of the same name takes
(torch's arguments without ``size_average``/``reduce``); the options are the
module's attributes, read at each call."""

from __future__ import annotations

import torch

from .. import nn as _np_nn
from .._api import REGISTRY as _REGISTRY
from . import _LossFunction

__all__ = []


def _make(name):
    spec = _REGISTRY[name]
    base = getattr(_np_nn, spec.class_name)

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        options = base(*args, **kwargs)._options()  # torch's constructor arguments, checked as fastloss.nn does
        for k, v in options.items():
            setattr(self, k, v)

    def forward(self, *arrays):
        if len(arrays) != len(spec.arrays):
            raise TypeError(f"{spec.class_name}.forward() takes {len(spec.arrays)} arrays "
                            f"({', '.join(spec.class_arrays or spec.arrays)}), got {len(arrays)}")
        options = {k: getattr(self, k) for k in spec.class_options}
        options = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in options.items()}
        return _LossFunction.apply(name, options, *arrays)

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in spec.class_options)

    cls = type(spec.class_name, (torch.nn.Module,), {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr, "__module__": __name__,
        "__doc__": f"torch.nn.Module form of :func:`fastloss.torch.{name}` ({base.__doc__.splitlines()[0]})",
    })
    __all__.append(spec.class_name)
    return cls


for _name in _REGISTRY:
    globals()[_REGISTRY[_name].class_name] = _make(_name)
del _name
