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


class LinearCrossEntropyLoss(torch.nn.Module):  # noqa: F811 - replaces the generated module: it holds parameters
    """torch.nn.Module form of :func:`fastloss.torch.linear_cross_entropy`, as
    torch's ``nn.LinearCrossEntropyLoss``: a ``torch.nn.Linear`` (``self.linear``,
    its weight stored flat as ``(num_classes * prod(out_features), in_features)``
    and initialised as torch's) whose parameters receive the gradients.
    ``chunk_size`` replaces torch's ``options``; ``z_loss`` and ``softcap`` are
    :func:`fastloss.cross_entropy`'s (beyond torch)."""

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, device=None, dtype=None,
                 reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0,
                 softcap=None):
        super().__init__()
        # fastloss.nn's checks of the arguments (its own parameters are not used)
        _np_nn.LinearCrossEntropyLoss(in_features, num_classes, out_features=out_features, bias=bias,
                                      reduction=reduction, weight=weight, ignore_index=ignore_index,
                                      label_smoothing=label_smoothing, chunk_size=chunk_size, z_loss=z_loss,
                                      softcap=softcap)
        self.num_classes, self.out_features = num_classes, tuple(out_features)
        self.weight, self.reduction, self.ignore_index = weight, reduction, ignore_index
        self.label_smoothing, self.chunk_size = label_smoothing, chunk_size
        self.z_loss, self.softcap = z_loss, softcap
        rows = num_classes * int(torch.Size(self.out_features).numel())
        self.linear = torch.nn.Linear(in_features, rows, bias=bias, device=device, dtype=dtype)

    def forward(self, input, target):
        from . import linear_cross_entropy

        shape = (self.num_classes, *self.out_features)
        bias = None if self.linear.bias is None else self.linear.bias.reshape(shape)
        weight = self.weight.detach() if isinstance(self.weight, torch.Tensor) else self.weight
        return linear_cross_entropy(input, self.linear.weight.reshape(shape + (self.linear.in_features,)), target,
                                    linear_bias=bias, weight=weight, reduction=self.reduction,
                                    ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                                    chunk_size=self.chunk_size, z_loss=self.z_loss, softcap=self.softcap)

    def extra_repr(self):
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction!r}, ignore_index={self.ignore_index!r}, "
                f"label_smoothing={self.label_smoothing!r}, chunk_size={self.chunk_size!r}, "
                f"z_loss={self.z_loss!r}, softcap={self.softcap!r}")
