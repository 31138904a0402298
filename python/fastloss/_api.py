"""The loss registry and the generator of the public functions.

A loss is defined once, by an implementation ``impl(mode, grad_output, out,
*torch_signature)``; :func:`define` makes the three public functions
``name``, ``name_backward`` and ``name_value_and_grad`` from it with torch's
exact signature (compiled once with ``exec`` so a call costs no argument
binding), and records a :class:`LossSpec` that drives ``fastloss.nn``, the
CLI's ``list``/``check``/``bench`` and the test matrix."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

FORWARD, BACKWARD, VALUE_AND_GRAD = 0, 1, 2
# impl(PARTIAL, None, None, ...) returns the call's Partial instead of its
# value (fastloss.Accumulator's chunks); never with reduction='none'.
PARTIAL = 3


@dataclasses.dataclass(frozen=True)
class Partial:
    """What one call contributes to a streamed loss: the float64 sum of its
    (weighted) per-element losses, the denominator its ``'mean'`` (or
    ``'batchmean'``) divides by, and the dtype its one-shot result has."""

    total: float
    denominator: float
    dtype: Any

_UNSET = object()


@dataclasses.dataclass(frozen=True)
class LossSpec:
    name: str  # functional name, e.g. "l1_loss"
    class_name: str  # fastloss.nn class, e.g. "L1Loss"
    family: str  # "regression", "classification", ...
    arrays: tuple[str, ...]  # array arguments, in torch's order
    grads: tuple[str, ...]  # differentiable arrays, in the order grads are returned
    options: dict[str, Any]  # keyword options and their defaults
    class_options: tuple[str, ...]  # the nn class's constructor arguments, torch's order
    forward: Callable
    backward: Callable
    value_and_grad: Callable
    # sample(rng, size, dtype) -> (arrays tuple, options dict): data for check/bench/tests.
    sample: Callable
    # impl(mode, grad_output, out, *torch_signature): what the three functions
    # call; fastloss.nn's methods call it directly (no extra frame or binding).
    impl: Callable = None
    # The same loss in the peers that `fastloss check` and `fastloss bench` compare with:
    # torch(torch_module, *tensors, **options) and jax(jax.numpy, *arrays, **options)
    # return the loss (None: no such peer). See define()'s torch= and jax=.
    torch: Callable | None = None
    jax: Callable | None = None
    # The nn class as torch's: constructor arguments keyword-only (GaussianNLLLoss),
    # forward's array names where torch's differ from the function's (PoissonNLLLoss: log_input).
    class_keyword_only: bool = False
    class_arrays: tuple[str, ...] | None = None
    # More rows of ``fastloss bench`` for this loss: ``(label, sample)`` pairs,
    # each timed as the row ``name[label]`` with its own sample() (shapes or
    # options the default row does not show, e.g. cross_entropy's probability targets).
    bench_variants: tuple = ()
    # Keyword-only options of the gradient functions only (ctc_loss's exact), with defaults.
    backward_options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def reference(self):
        from . import reference

        return getattr(reference, self.name)

    @property
    def reference_backward(self):
        from . import reference

        return getattr(reference, self.name + "_backward")


REGISTRY: dict[str, LossSpec] = {}


def _deprecated(name, size_average, reduce):
    given = [n for n, v in (("size_average", size_average), ("reduce", reduce)) if v is not _UNSET]
    raise TypeError(
        f"{name}: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} deprecated in torch and not "
        "supported by fastloss; use reduction='none' | 'mean' | 'sum'"
    )


_TEMPLATE = """
def {name}({params}size_average=_UNSET, reduce=_UNSET):
    if size_average is not _UNSET or reduce is not _UNSET:
        _deprecated({name!r}, size_average, reduce)
    return _impl({mode}, {grad_output}, {out}, {call})
"""


def torch_functional(name):
    """The peer ``torch.nn.functional.<name>(*tensors, **options)``: for a loss
    whose torch call takes fastloss's arguments unchanged."""

    def call(torch, *tensors, **options):
        return getattr(torch.nn.functional, name)(*tensors, **options)

    call.__qualname__ = call.__name__ = f"torch.nn.functional.{name}"
    return call


def jax_pointwise(expression, *, weight_divides_mean=True):
    """A ``jax.numpy`` peer for an element-wise loss from its per-element
    expression ``expression(jnp, input, target, **params) -> l``, with torch's
    ``reduction`` and optional ``weight`` (``w * l``; weighted ``'mean'`` is
    ``sum(w * l) / sum(w)`` when ``weight_divides_mean``, else ``mean(w * l)``)."""

    def loss(jnp, input, target, reduction="mean", weight=None, **params):
        value = expression(jnp, input, target, **params)
        if weight is not None:
            value = weight * value
        if reduction == "none":
            return value
        if reduction == "sum":
            return jnp.sum(value)
        if weight is not None and weight_divides_mean:
            return jnp.sum(value) / jnp.sum(jnp.broadcast_to(weight, value.shape))
        return jnp.mean(value)

    return loss


def define(impl, *, class_name, family, grads, sample, class_options=("reduction",), module="fastloss.functional",
           torch=None, jax=None, class_keyword_only=False, class_arrays=None, bench_variants=(), backward_options=()):
    """Creates and registers the forward, backward and fused functions of a loss.

    ``torch``: how torch computes the loss, for ``fastloss check`` and
    ``fastloss bench``: the name of a ``torch.nn.functional`` function taking
    the same arguments, or ``f(torch, *tensors, **options)``. ``jax``:
    ``f(jax.numpy, *arrays, **options)`` returning the loss (see
    :func:`jax_pointwise`), or None when there is no JAX peer.
    ``backward_options``: keyword-only parameters of ``impl`` that only the
    gradient functions take (ctc_loss's ``exact``), after ``grad_output``
    and ``out``; the forward function and the ``nn`` class do not have them."""
    sig = inspect.signature(impl)
    params = list(sig.parameters.values())[3:]  # drop mode, grad_output, out
    gradient_only = [p for p in params if p.name in backward_options]
    params = [p for p in params if p.name not in backward_options]
    name = impl.__name__.lstrip("_")
    arrays = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
    options = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    namespace = {"_impl": impl, "_UNSET": _UNSET, "_deprecated": _deprecated}
    text, call = [], []
    star = False
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            text.append("*")
            star = True
        if p.default is inspect.Parameter.empty:
            text.append(p.name)
        else:
            namespace[f"_d{i}"] = p.default
            text.append(f"{p.name}=_d{i}")
        call.append(p.name if p.kind is not inspect.Parameter.KEYWORD_ONLY else f"{p.name}={p.name}")
    public = inspect.Signature(params)
    fns = {}
    for suffix, mode in (("", FORWARD), ("_backward", BACKWARD), ("_value_and_grad", VALUE_AND_GRAD)):
        extra = [] if mode == FORWARD else ["grad_output=None", "out=None"]
        only = [] if mode == FORWARD else gradient_only
        for k, p in enumerate(only):
            namespace[f"_g{k}"] = p.default
        kw = ([] if star else ["*"]) + extra + [f"{p.name}=_g{k}" for k, p in enumerate(only)]
        src = _TEMPLATE.format(
            name=name + suffix,
            params=", ".join(text + kw) + ", ",
            mode=mode,
            grad_output="grad_output" if extra else "None",
            out="out" if extra else "None",
            call=", ".join(call + [f"{p.name}={p.name}" for p in only]),
        )
        exec(compile(src, f"<fastloss.{name}{suffix}>", "exec"), namespace)  # noqa: S102 - fixed template
        fn = namespace[name + suffix]
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
        fn_params = params + [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in ("grad_output", "out")
        ] * (mode != FORWARD) + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in only]
        fn.__signature__ = public.replace(parameters=fn_params)
        fns[mode] = fn
    differentiable = ", ".join(grads)
    fns[FORWARD].__doc__ = inspect.getdoc(impl)
    fns[BACKWARD].__doc__ = (
        f"Gradient of ``sum(grad_output * {name}(...))`` w.r.t. {differentiable}.\n\n"
        f"Same arguments as :func:`{name}`; ``grad_output`` (default ones) broadcasts to the loss's shape;\n"
        "``out=`` (an array of the gradient's shape and dtype, sharing no memory with the other\n"
        "arguments) receives the gradient instead of a new array. See ``fastloss.functional``."
    )
    fns[VALUE_AND_GRAD].__doc__ = (
        f"``({name}(...), {name}_backward(...))`` from one fused pass over the data.\n\n"
        f"Same arguments as :func:`{name}_backward`."
    )
    REGISTRY[name] = LossSpec(
        name=name,
        class_name=class_name,
        family=family,
        arrays=arrays,
        grads=tuple(grads),
        options=options,
        class_options=tuple(class_options),
        forward=fns[FORWARD],
        backward=fns[BACKWARD],
        value_and_grad=fns[VALUE_AND_GRAD],
        sample=sample,
        impl=impl,
        torch=torch_functional(torch) if isinstance(torch, str) else torch,
        jax=jax,
        class_keyword_only=class_keyword_only,
        class_arrays=tuple(class_arrays) if class_arrays is not None else None,
        bench_variants=tuple(bench_variants),
        backward_options={p.name: p.default for p in gradient_only},
    )
    return fns[FORWARD], fns[BACKWARD], fns[VALUE_AND_GRAD]
