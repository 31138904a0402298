"""torch.nn-style loss classes: ``crit = MSELoss(reduction='sum')``, then
``crit(input, target)``, ``crit.backward(input, target, grad_output=None)`` and
``crit.value_and_grad(...)``. One class per registered loss, with torch's name,
constructor arguments (without the deprecated ``size_average``/``reduce``)
and ``forward`` arguments, by position or keyword as torch takes them."""

import inspect as _inspect

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

def __dir__():
    """Public names and the module's dunders only: no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
