"""Per-call cost of every entry point on small arrays (default 100 float32
elements), for every registered loss: what an embedder calling a loss in a
loop pays in argument handling around the kernel.

Each entry is timed ``timeit``-style: a loop of ``number`` calls (chosen so a
loop takes about ``target`` seconds), repeated ``repeat`` times; the table
shows the median time per call in µs. torch's own call (the registry's
``torch=`` expression on torch tensors, e.g. ``F.mse_loss``) is timed the
same way alongside, for reference. Nothing here is asserted: it is a table to
read (``fastloss bench --small-calls``)."""

from __future__ import annotations

import gc
import importlib.util
import statistics
import time
import zlib

import numpy as np

from .._api import REGISTRY
from .._table import print_table

__all__ = ["entries", "run", "print_table_of", "DEFAULT_SIZE"]

DEFAULT_SIZE = 100


def _grad_out(spec, arrays):
    # (None for a keyword array's gradient, linear_cross_entropy's linear_bias: the samples leave it out)
    outs = [np.zeros_like(arrays[spec.arrays.index(g)]) if g in spec.arrays else None for g in spec.grads]
    return outs[0] if len(outs) == 1 else tuple(outs)


def entries(spec, arrays, options, *, torch=None, jax=None):
    """``[(label, fn or None)]``: the entry points of one loss on ``arrays``;
    None where the entry does not apply (e.g. no ``weight=``)."""
    import fastloss

    a, o = tuple(arrays), dict(options)
    f, b, vg = spec.forward, spec.backward, spec.value_and_grad
    out = _grad_out(spec, a)
    cls = getattr(fastloss.nn, spec.class_name)
    weight = None
    if spec.name == "linear_cross_entropy":  # a class holding the linear layer's parameters; class weights
        x, w, y = a
        crit = cls(x.shape[-1], w.shape[0], dtype=w.dtype)
        crit.linear_weight = w
        a_nn = (x, y)
        weight = np.linspace(0.5, 1.5, w.shape[0], dtype=x.dtype)
    else:
        crit, a_nn = cls(), a
        if "weight" in spec.options:
            x = a[0]
            weight = np.linspace(0.5, 1.5, x.size, dtype=x.dtype).reshape(x.shape)
    rows = [
        ("f(x, y)", lambda: f(*a, **o)),
        ("f(x, y, reduction='none')", lambda: f(*a, **dict(o, reduction="none"))),
        ("f(x, y, reduction='sum')", lambda: f(*a, **dict(o, reduction="sum"))),
        ("f(x, y, weight=w)", (lambda: f(*a, weight=weight, **o)) if weight is not None else None),
        ("f_backward(x, y)", lambda: b(*a, **o)),
        ("f_value_and_grad(x, y)", lambda: vg(*a, **o)),
        ("f_value_and_grad(x, y, out=g)", lambda: vg(*a, out=out, **o)),
        ("nn class: crit(x, y)", lambda: crit(*a_nn)),
        ("nn class: crit.backward(x, y)", lambda: crit.backward(*a_nn)),
        ("nn class: crit.value_and_grad(x, y)", lambda: crit.value_and_grad(*a_nn)),
    ]
    if "reduction" not in spec.options:
        rows = [r for r in rows if "reduction=" not in r[0]]
    if torch is not None:
        ta = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in a)
        rows.append(("f(torch tensors)", lambda: f(*ta, **o)))
        rows.append(("f_value_and_grad(torch tensors)", lambda: vg(*ta, **o)))
    if jax is not None:
        ja = tuple(jax.device_put(v) for v in a)
        jax.block_until_ready(ja)
        rows.append(("f(JAX arrays)", lambda: f(*ja, **o)))
        rows.append(("f_value_and_grad(JAX arrays)", lambda: vg(*ja, **o)))
    if torch is not None and spec.torch is not None:
        ta = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in a)
        rows.append(("torch: F.f(tensors) (reference)", lambda: spec.torch(torch, *ta, **o)))

        def torch_vg():
            xs = list(ta)
            grads = [spec.arrays.index(g) for g in spec.grads if g in spec.arrays]
            for i in grads:
                xs[i] = ta[i].detach().requires_grad_(True)
            loss = spec.torch(torch, *xs, **o)
            loss.backward()
            return loss, [xs[i].grad for i in grads]

        rows.append(("torch: F.f + .backward() (reference)", torch_vg))
    return rows


def _per_call(fn, repeat, target):
    """Median seconds per call over ``repeat`` loops of ``number`` calls."""
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target / 4 or number >= 1 << 20:
            break
        number *= 4
    number = max(1, int(number * target / max(dt, 1e-9)))
    loops = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            loops.append((time.perf_counter() - t0) / number)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(loops)


def run(losses=None, *, size=DEFAULT_SIZE, dtype="float32", repeat=7, target=0.01, peers=("torch", "jax"),
        progress=None):
    """Times every entry point of every loss; returns ``{"meta", "losses",
    "rows": {label: {loss: seconds per call or None}}}``."""
    names = list(REGISTRY) if not losses else list(losses)
    torch = jax = None
    if "torch" in peers and importlib.util.find_spec("torch") is not None:
        import torch
    if "jax" in peers and importlib.util.find_spec("jax") is not None:
        import jax
    table = {}
    for k, name in enumerate(names):
        spec = REGISTRY[name]
        if progress is not None:
            progress(f"{name} ({k + 1}/{len(names)})")
        rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
        arrays, options = spec.sample(rng, size, np.dtype(dtype))
        for label, fn in entries(spec, arrays, options, torch=torch, jax=jax):
            row = table.setdefault(label, {})
            if fn is None:
                row[name] = None
                continue
            try:
                row[name] = _per_call(fn, repeat, target)
            except Exception as exc:  # noqa: BLE001 - an entry that fails is shown, not fatal
                row[name] = f"{type(exc).__name__}"
    meta = {"size": size, "dtype": np.dtype(dtype).name, "repeat": repeat,
            "torch": getattr(torch, "__version__", None), "jax": getattr(jax, "__version__", None)}
    return {"meta": meta, "losses": names, "rows": table}


def print_table_of(result, file=None, markdown=False):
    """The :func:`run` result as a table: one row per entry point, one column per loss."""
    m = result["meta"]
    rows = []
    for label, cells in result["rows"].items():
        row = [label]
        for name in result["losses"]:
            v = cells.get(name)
            if v is None:
                row.append("-")
            elif isinstance(v, str):
                row.append((v, "red"))
            else:
                row.append(f"{v * 1e6:.2f}")
        rows.append(row)
    caption = ("median µs per call (timeit-style loops); f = the loss in each column, x, y = its sample "
               f"arrays; torch {m['torch'] or 'not installed'}, JAX {m['jax'] or 'not installed'}")
    print_table(f"per-call cost on {m['size']} {m['dtype']} elements (µs)", ["entry point", *result["losses"]],
                rows, file=file, caption=caption, markdown=markdown)
