"""The peers fastloss is timed against, each built from the registry.

* ``numpy``: ``fastloss.reference``, plain NumPy in float64 (what a NumPy user
  would write);
* ``torch``: the loss's ``torch=`` expression (``fastloss._api.define``),
  usually ``torch.nn.functional.<name>``, on ``torch.from_numpy`` tensors;
* ``jax``: ``jax.jit`` of the loss's ``jax=`` expression (``jax.numpy``),
  inputs already on the device, every call ended by ``block_until_ready``.

A loss without a ``torch=``/``jax=`` expression is timed without that peer.
Import them only after :func:`.machine.pin_threads`: their thread pools size
themselves from the CPU mask they see at import."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from .timing import Case

__all__ = ["PEERS", "LABELS", "Skip", "PeerUnavailable", "is_installed", "load"]

PEERS = ("numpy", "torch", "jax")

# The float64 NumPy reference is 10-50x slower than the rest: fewer repeats
# keep the default run short without changing what it shows.
REFERENCE_MAX_REPEAT = 3


class Skip(Exception):
    """A peer cannot run a loss (no expression in the registry, or options it lacks)."""


class PeerUnavailable(RuntimeError):
    """A peer that was asked for explicitly cannot be imported."""


def is_installed(name):
    """Whether peer ``name`` can be imported (without importing it)."""
    if name == "numpy":
        return True
    return importlib.util.find_spec(name) is not None


class Reference:
    name = "numpy"
    note = "fastloss.reference: plain NumPy, float64"

    def __init__(self):
        self.version = np.__version__
        self.label = "reference (NumPy f64)"
        importlib.import_module("fastloss.reference")

    def cases(self, spec, data, config, repeat):
        if config != "as_run":
            return {}  # float64 NumPy: its allocations are not what it is slow at
        try:
            fwd, bwd = spec.reference, spec.reference_backward
        except AttributeError:
            raise Skip("no reference implementation") from None
        a, o = data.arrays, data.options
        rep = max(1, min(repeat, REFERENCE_MAX_REPEAT))
        # One warm-up for the forward only: nothing to compile, and it is slow.
        return {
            "forward": Case(("numpy", "forward"), lambda: fwd(*a, **o), rep, 1),
            "backward": Case(("numpy", "backward"), lambda: bwd(*a, **o), rep, 0),
            "value_and_grad": Case(("numpy", "value_and_grad"), lambda: (fwd(*a, **o), bwd(*a, **o)), rep, 0),
        }


class Torch:
    name = "torch"
    note = ("the registry's torch= expression (torch.nn.functional) on torch.from_numpy tensors; forward "
            "under no_grad; backward and value_and_grad = a fresh forward with requires_grad + .backward()")

    def __init__(self, threads):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.version = torch.__version__
        self.label = f"torch {self.version.split('+')[0]}"

    def tensor(self, v):
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "iu":  # class indices and lengths are int64 in torch
                v = v.astype(np.int64)
            return self.torch.from_numpy(np.ascontiguousarray(v))
        return v

    def cases(self, spec, data, config, repeat):
        torch = self.torch
        if spec.torch is None:
            raise Skip("no torch= expression in the registry")
        opts = {k: self.tensor(v) for k, v in data.options.items()}
        tensors = [self.tensor(a) for a in data.arrays]
        gidx = data.grad_index

        def call(*xs):
            return spec.torch(torch, *xs, **opts)

        with torch.no_grad():
            ones = torch.ones_like(call(*tensors))  # d loss for reduction='none', made once

        def forward():
            with torch.no_grad():
                return call(*tensors)

        def forward_backward():
            xs = list(tensors)
            for i in gidx:
                xs[i] = tensors[i].detach().requires_grad_(True)
            loss = call(*xs)
            loss.backward(ones)
            return loss.detach(), [xs[i].grad for i in gidx]

        suffix = "" if config == "as_run" else "_best"
        fb = Case(("torch" + suffix, "value_and_grad"), forward_backward, repeat)
        return {
            "forward": Case(("torch" + suffix, "forward"), forward, repeat),
            "value_and_grad": fb,
            "backward": fb,  # torch has no gradient without its forward
        }


class Jax:
    name = "jax"
    note = ("jax.jit of the registry's jax= expression (jax.numpy), inputs already jax arrays, "
            "block_until_ready; backward = jit(grad) (jit(vjp) for reduction='none'), "
            "value_and_grad = jit(value_and_grad)")

    def __init__(self, dtype):
        import jax

        if np.dtype(dtype) == np.float64:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.version = jax.__version__
        self.label = f"JAX {self.version}"
        self._compiled = {}

    def _compile(self, spec, data):
        jax, jnp = self.jax, self.jnp
        options = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data.options.items()}
        gidx = list(data.grad_index)

        def f(*xs):
            return spec.jax(jnp, *xs, **options)

        if data.options.get("reduction", "mean") != "none":
            argnums = tuple(gidx)
            return jax.jit(f), jax.jit(jax.grad(f, argnums=argnums)), jax.jit(jax.value_and_grad(f, argnums=argnums))

        def value_and_grad(*xs):  # an unreduced loss: vjp with ones, as fastloss's grad_output=None
            def of_grads(*g):
                ys = list(xs)
                for i, v in zip(gidx, g):
                    ys[i] = v
                return f(*ys)

            value, pull = jax.vjp(of_grads, *[xs[i] for i in gidx])
            return value, pull(jnp.ones_like(value))

        return jax.jit(f), jax.jit(lambda *xs: value_and_grad(*xs)[1]), jax.jit(value_and_grad)

    def cases(self, spec, data, config, repeat):
        jax = self.jax
        if spec.jax is None:
            raise Skip("no jax= expression in the registry")
        if spec.name not in self._compiled:
            self._compiled[spec.name] = self._compile(spec, data)
        jf, jg, jvg = self._compiled[spec.name]
        xs = [jax.device_put(a) for a in data.arrays]
        jax.block_until_ready(xs)
        block = jax.block_until_ready
        suffix = "" if config == "as_run" else "_best"
        return {
            "forward": Case(("jax" + suffix, "forward"), lambda: block(jf(*xs)), repeat),
            "backward": Case(("jax" + suffix, "backward"), lambda: block(jg(*xs)), repeat),
            "value_and_grad": Case(("jax" + suffix, "value_and_grad"), lambda: block(jvg(*xs)), repeat),
        }


def load(wanted, dtype, threads, required=()):
    """Imports the peers ``wanted`` (after pin_threads). Returns ``({name:
    peer}, {name: why not})``; a peer in ``required`` that cannot be imported
    raises :class:`PeerUnavailable` instead."""
    peers, missing = {}, {}
    for name in wanted:
        try:
            if name == "numpy":
                peers[name] = Reference()
            elif name == "torch":
                peers[name] = Torch(threads)
            elif name == "jax":
                peers[name] = Jax(dtype)
            else:
                raise ValueError(f"unknown peer {name!r} (known: {', '.join(PEERS)})")
        except ImportError as exc:
            if name in required:
                raise PeerUnavailable(f"peer {name} was requested but cannot be imported ({exc})") from exc
            missing[name] = f"not installed ({exc})"
    return peers, missing
