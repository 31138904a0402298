"""fastloss for JAX users: every loss as a ``jax.custom_vjp`` function that
works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

    >>> import jax, jax.numpy as jnp, fastloss.jax
    >>> x, y = jnp.ones((8, 3)), jnp.zeros((8, 3))
    >>> jax.jit(jax.value_and_grad(fastloss.jax.mse_loss))(x, y)

``fastloss.jax.<name>(...)`` takes the arguments of ``fastloss.<name>``
(torch's names): arrays (JAX or NumPy; array-valued options such as
``weight``/``pos_weight`` too) are traced operands, everything else
(``reduction``, ``delta`` ...) is static. The kernels run on the host through
``jax.pure_callback`` (CPU arrays are handed over without a copy). A reduced
loss's forward under differentiation runs the fused ``<name>_value_and_grad``
once and keeps the gradient (the VJP only scales it); ``reduction='none'``
runs ``<name>_backward`` with the cotangent. Gradients flow to the loss's
differentiable arrays (``input``; ``input1``/``input2``; ``input``/``var``);
other operands get zero cotangents. The shape and dtype of a result are found
once per (shapes, dtypes, options) by running the loss on broadcast zero
arrays (cached). JAX is optional: importing this module needs it."""

from __future__ import annotations

import functools
import inspect

import numpy as np

import jax
import jax.numpy as jnp

from . import functional as _functional  # noqa: F401 - registers the losses
from ._api import REGISTRY as _REGISTRY

__all__ = []


def _is_array(obj):
    return isinstance(obj, (jax.Array, np.ndarray, np.generic)) or hasattr(obj, "__jax_array__")


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"option {value!r}: expected a number, bool, string or None (arrays are operands)") from None
    return value


@functools.lru_cache(maxsize=1024)
def _result_struct(name, names, static, shapes, dtypes):
    """(shape, dtype) of the loss for operands of these shapes and dtypes."""
    spec = _REGISTRY[name]
    zeros = {n: np.broadcast_to(np.zeros((), d), s) for n, s, d in zip(names, shapes, dtypes)}
    options = dict(static)
    try:
        value = np.asarray(spec.forward(**zeros, **options))
    except IndexError:
        # zeros the loss refuses (ctc_loss: label 0 is its blank; bad options
        # still raise their ValueError here, at trace time): a reduced
        # result is a scalar of the floating operands' dtype
        if options.get("reduction", spec.options.get("reduction", "mean")) == "none":
            raise
        floats = [d for d in dtypes if np.issubdtype(d, np.floating) or d.name == "bfloat16"]
        return (), np.result_type(*floats) if floats else np.dtype(np.float32)
    return value.shape, value.dtype


@functools.lru_cache(maxsize=None)
def _function(name, names, static):
    """The custom_vjp function of ``name`` over the operands ``names`` with
    the static options ``static`` (a sorted tuple of items)."""
    spec = _REGISTRY[name]
    options = dict(static)
    reduction = options.get("reduction", spec.options.get("reduction", "mean"))
    diff = [names.index(g) for g in spec.grads if g in names]  # operand index of each gradient returned
    grad_of = [g for g in spec.grads if g in names]

    def host_grads(result):
        grads = result if len(spec.grads) > 1 else (result,)
        by_name = dict(zip(spec.grads, grads))
        return tuple(np.asarray(by_name[g]) for g in grad_of)

    def host_forward(*arrays):
        return np.asarray(spec.forward(**dict(zip(names, arrays)), **options))

    def host_value_and_grad(*arrays):
        value, grads = spec.value_and_grad(**dict(zip(names, arrays)), **options)
        return (np.asarray(value), *host_grads(grads))

    def host_backward(g, *arrays):
        return host_grads(spec.backward(**dict(zip(names, arrays)), grad_output=g, **options))

    def value_struct(arrays):
        shape, dtype = _result_struct(name, names, static, tuple(tuple(a.shape) for a in arrays),
                                      tuple(np.dtype(a.dtype) for a in arrays))
        return jax.ShapeDtypeStruct(shape, dtype)

    def grad_structs(arrays):
        return tuple(jax.ShapeDtypeStruct(arrays[i].shape, arrays[i].dtype) for i in diff)

    @jax.custom_vjp
    def f(*arrays):
        return jax.pure_callback(host_forward, value_struct(arrays), *arrays, vmap_method="sequential")

    def f_fwd(*arrays):
        if reduction == "none":
            return f(*arrays), (arrays, None)
        out = jax.pure_callback(host_value_and_grad, (value_struct(arrays), *grad_structs(arrays)), *arrays,
                                vmap_method="sequential")
        return out[0], (arrays, out[1:])

    def f_bwd(residual, g):
        arrays, grads = residual
        if grads is None:
            grads = jax.pure_callback(host_backward, grad_structs(arrays), g, *arrays, vmap_method="sequential")
        else:
            grads = tuple(gr * g.astype(gr.dtype) for gr in grads)
        cotangents = []
        for i, a in enumerate(arrays):
            if i in diff:
                cotangents.append(grads[diff.index(i)])
            elif jnp.issubdtype(a.dtype, jnp.inexact):
                cotangents.append(jnp.zeros_like(a))
            else:
                cotangents.append(np.zeros(a.shape, jax.dtypes.float0))
        return tuple(cotangents)

    f.defvjp(f_fwd, f_bwd)
    return f


def _make(name):
    spec = _REGISTRY[name]
    sig = inspect.signature(spec.forward)

    def loss(*args, **kwargs):
        given = sig.bind(*args, **kwargs).arguments
        names = tuple(n for n, v in given.items() if _is_array(v) or (n in spec.arrays and not isinstance(v, float)))
        static = tuple(sorted((k, _hashable(v)) for k, v in given.items() if k not in names))
        return _function(name, names, static)(*(jnp.asarray(given[n]) for n in names))

    loss.__name__ = loss.__qualname__ = name
    loss.__module__ = __name__
    loss.__signature__ = sig
    loss.__doc__ = (f"``fastloss.{name}`` as a jax.custom_vjp function (jit, grad, vmap), differentiable "
                     f"w.r.t. {', '.join(spec.grads)}. See fastloss.{name} for the formula and arguments.")
    return loss


for _name in _REGISTRY:
    globals()[_name] = _make(_name)
    __all__.append(_name)
del _name


def __dir__():
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
