"""torch.nn-style loss classes: ``crit = MSELoss(reduction='sum')``, then
``crit(input, target)``, ``crit.backward(input, target, grad_output=None)`` and
``crit.value_and_grad(...)``. One class per registered loss, with torch's name,
constructor arguments (without the deprecated ``size_average``/``reduce``)
and ``forward`` arguments, by position or keyword as torch takes them."""

import inspect as _inspect
import math as _math

import numpy as _np

from . import functional as _functional  # noqa: F401 - registers the losses
from ._api import BACKWARD as _BACKWARD, FORWARD as _FORWARD, REGISTRY as _REGISTRY
from ._api import VALUE_AND_GRAD as _VALUE_AND_GRAD, _deprecated, _UNSET

__all__ = []


class _Loss:
    """Base of every loss class: options are plain attributes, read at call time."""

    _spec = None

    def __init_subclass__(cls, **kwargs):
        # Calling an instance runs ``forward`` (as torch's Module.__call__); the
        # classes alias the two, so a subclass that overrides forward is called
        # through its own forward.
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ and "__call__" not in cls.__dict__:
            cls.__call__ = cls.__dict__["forward"]

    def _options(self):
        return {n: getattr(self, n) for n in self._spec.class_options}

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({opts})"


# Compiled once per class (as _api.define compiles the functions), so a call
# binds its arguments as any Python method does: keywords work, and a wrong
# call raises Python's own TypeError naming the method, as torch's modules do
# ("MSELoss.forward() takes 3 positional arguments but 4 were given"). The
# methods call the loss implementation directly, so a warning raised inside
# (stacklevel counted from there) points at the caller's line, as it does for
# the functions.
_TEMPLATE = """
def __init__(self, {init_params}size_average=_UNSET, reduce=_UNSET):
    if size_average is not _UNSET or reduce is not _UNSET:
        _deprecated({cls!r}, size_average, reduce)
{init_body}

def forward(self, {arrays}):
    return _impl({forward}, None, None, {arrays}, {options})

def backward(self, {arrays}, *, grad_output=None, out=None{gradient_params}):
    return _impl({backward}, grad_output, out, {arrays}, {options}{gradient_args})

def value_and_grad(self, {arrays}, *, grad_output=None, out=None{gradient_params}):
    return _impl({value_and_grad}, grad_output, out, {arrays}, {options}{gradient_args})
"""


def _make(name):
    spec = _REGISTRY[name]
    cls_name = spec.class_name
    impl = spec.impl
    namespace = {"_impl": impl, "_UNSET": _UNSET, "_deprecated": _deprecated}
    for i, default in enumerate(spec.backward_options.values()):
        namespace[f"_b{i}"] = default
    init_params = []
    for i, n in enumerate(spec.class_options):
        namespace[f"_d{i}"] = spec.options[n]
        init_params.append(f"{n}=_d{i}, ")
    # Keyword-only from the first option as torch's GaussianNLLLoss, else after them.
    init_params = ["*, "] + init_params if spec.class_keyword_only else init_params + ["*, "]
    names = spec.class_arrays or spec.arrays
    src = _TEMPLATE.format(
        cls=cls_name,
        init_params="".join(init_params),
        init_body="\n".join(f"    self.{n} = {n}" for n in spec.class_options) or "    pass",
        arrays=", ".join(names),
        options=", ".join(f"{n}=self.{n}" for n in spec.class_options),
        forward=_FORWARD,
        backward=_BACKWARD,
        value_and_grad=_VALUE_AND_GRAD,
        # the gradient functions' own keywords (ctc_loss's exact=), as the functions take them
        gradient_params="".join(f", {n}=_b{i}" for i, n in enumerate(spec.backward_options)),
        gradient_args="".join(f", {n}={n}" for n in spec.backward_options),
    )
    exec(compile(src, f"<fastloss.nn.{cls_name}>", "exec"), namespace)  # noqa: S102 - fixed template

    P = _inspect.Parameter
    self_param = P("self", P.POSITIONAL_OR_KEYWORD)
    arrays = [P(n, P.POSITIONAL_OR_KEYWORD) for n in names]
    grad_kw = [P(n, P.KEYWORD_ONLY, default=None) for n in ("grad_output", "out")]
    grad_kw += [P(n, P.KEYWORD_ONLY, default=d) for n, d in spec.backward_options.items()]
    kind = P.KEYWORD_ONLY if spec.class_keyword_only else P.POSITIONAL_OR_KEYWORD
    init_sig = [self_param] + [P(n, kind, default=spec.options[n]) for n in spec.class_options]
    signatures = {
        "__init__": init_sig,  # size_average/reduce only raise: not shown
        "forward": [self_param] + arrays,
        "backward": [self_param] + arrays + grad_kw,
        "value_and_grad": [self_param] + arrays + grad_kw,
    }
    arg_list = ", ".join(names)
    docs = {
        "__init__": f"Options as :func:`fastloss.{spec.name}`'s: {', '.join(spec.class_options)}.",
        "forward": f"``fastloss.{spec.name}({arg_list}, **options)``.",
        "backward": f"``fastloss.{spec.name}_backward({arg_list}, grad_output=..., out=..., **options)``.",
        "value_and_grad": f"``fastloss.{spec.name}_value_and_grad({arg_list}, grad_output=..., out=..., **options)``.",
    }
    body = {"__module__": __name__, "__doc__": _class_doc(spec)}
    for method, params in signatures.items():
        fn = namespace[method]
        fn.__module__ = __name__
        fn.__qualname__ = f"{cls_name}.{method}"
        fn.__signature__ = _inspect.Signature(params)
        fn.__doc__ = docs[method]
        body[method] = fn
    body["__call__"] = body["forward"]  # as torch's Module.__call__: the forward arguments
    cls = type(cls_name, (_Loss,), body)
    cls._spec = spec
    __all__.append(cls_name)
    return cls


def _class_doc(spec):
    options = ", ".join(f"{n}={spec.options[n]!r}" for n in spec.class_options)
    arrays = ", ".join(spec.arrays)
    return (
        f"Class form of :func:`fastloss.{spec.name}`: ``{spec.class_name}({options})``, then\n"
        f"``crit({arrays})``, ``crit.backward({arrays}, grad_output=None, out=None)`` and\n"
        f"``crit.value_and_grad(...)``. Options are attributes read at each call."
    )


# One class per registered loss, in registration order (nothing to add here
# for a new loss: its define() call is enough).
for _name in _REGISTRY:
    globals()[_REGISTRY[_name].class_name] = _make(_name)
del _name
del _make



class NLLLoss2d(NLLLoss):  # noqa: F821 - made by the loop above
    """torch's NLLLoss2d: :class:`NLLLoss`, whose inputs may be (N, C, d1..dk)."""


__all__.append("NLLLoss2d")


class LinearCrossEntropyLoss(_Loss):  # noqa: F811 - replaces the generated class: it holds parameters
    """torch's ``nn.LinearCrossEntropyLoss``: a linear layer's parameters and
    :func:`fastloss.linear_cross_entropy` over them.

    ``LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(),
    bias=False, dtype=numpy.float32, reduction='mean', weight=None,
    ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0, softcap=None, rng=None)``
    holds ``linear_weight`` (``(num_classes, *out_features, in_features)``;
    ``(num_classes, in_features)`` as torch's ``linear.weight`` when
    ``out_features=()``) and ``linear_bias`` (``(num_classes,
    *out_features)`` or None), plain NumPy arrays you may assign. They start
    as torch's ``nn.Linear`` does: uniform in ``[-1/sqrt(in_features),
    1/sqrt(in_features)]`` (``rng``: a ``numpy.random.Generator`` or seed;
    torch uses its global generator instead). ``crit(input, target)`` is
    the loss; ``crit.backward(input, target, grad_output=None, out=None)``
    returns ``(grad_input, grad_linear_weight, grad_linear_bias)``
    (``grad_linear_bias`` None without a bias) and ``crit.value_and_grad``
    both. torch's ``options`` (LinearCrossEntropyOptions) become
    ``chunk_size`` (rows per chunk; the result is the same maths for any)."""

    _spec = _REGISTRY["linear_cross_entropy"]

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, dtype=_np.float32, reduction="mean",
                 weight=None, ignore_index=None, label_smoothing=0.0, chunk_size=None, z_loss=0.0, softcap=None,
                 rng=None):
        from . import _validate as v

        in_features = v.positive_int(in_features, "in_features") if in_features != 0 else 0
        num_classes = v.positive_int(num_classes, "num_classes")
        out_features = tuple(v.positive_int(d, "out_features") for d in out_features)
        dtype = _np.dtype(dtype)
        if not v.is_float(dtype):
            raise TypeError(f"dtype: expected a floating dtype, got {dtype}")
        self.in_features, self.num_classes, self.out_features = in_features, num_classes, out_features
        self.weight, self.reduction, self.ignore_index = weight, reduction, ignore_index
        self.label_smoothing, self.chunk_size = label_smoothing, chunk_size
        self.z_loss, self.softcap = z_loss, softcap
        rng = _np.random.default_rng(rng)
        bound = 1.0 / _math.sqrt(in_features) if in_features > 0 else 0.0
        shape = (num_classes, *out_features)
        self.linear_weight = rng.uniform(-bound, bound, shape + (in_features,)).astype(dtype)
        self.linear_bias = rng.uniform(-bound, bound, shape).astype(dtype) if bias else None

    def _options(self):
        return {"weight": self.weight, "reduction": self.reduction, "ignore_index": self.ignore_index,
                "label_smoothing": self.label_smoothing, "chunk_size": self.chunk_size, "z_loss": self.z_loss,
                "softcap": self.softcap}

    def __repr__(self):
        return (f"LinearCrossEntropyLoss(in_features={self.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear_bias is not None}, "
                + ", ".join(f"{k}={val!r}" for k, val in self._options().items() if k != "weight") + ")")

    def forward(self, input, target):
        """``fastloss.linear_cross_entropy(input, self.linear_weight, target, linear_bias=self.linear_bias, ...)``."""
        return _LCE(_FORWARD, None, None, input, self.linear_weight, target, linear_bias=self.linear_bias,
                    **self._options())

    def backward(self, input, target, *, grad_output=None, out=None):
        """``(grad_input, grad_linear_weight, grad_linear_bias)``, as :func:`fastloss.linear_cross_entropy_backward`."""
        return _LCE(_BACKWARD, grad_output, out, input, self.linear_weight, target, linear_bias=self.linear_bias,
                    **self._options())

    def value_and_grad(self, input, target, *, grad_output=None, out=None):
        """``(loss, (grad_input, grad_linear_weight, grad_linear_bias))`` from one pass."""
        return _LCE(_VALUE_AND_GRAD, grad_output, out, input, self.linear_weight, target,
                    linear_bias=self.linear_bias, **self._options())


_LCE = _REGISTRY["linear_cross_entropy"].impl

def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
