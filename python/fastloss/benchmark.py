"""The benchmark behind ``fastloss bench`` (and ``bench/run.py``).

For every loss in the registry (:data:`fastloss._api.REGISTRY`) it times, in
one process and with the same threads for everyone:

* ``forward``, ``backward``, ``value_and_grad`` and ``value_and_grad`` into
  preallocated ``out=`` buffers, for fastloss;
* the same operations with the NumPy reference (``fastloss.reference``, float64),
  torch (``torch.nn.functional.<name>`` on ``torch.from_numpy`` tensors) and
  JAX (``jax.jit`` of a ``jax.numpy`` implementation), when installed;
* an in-run memory-bandwidth probe made of fastloss's own kernels (a read-only
  blocked sum and a copy), the roofline the losses are compared with.

Timings are the median of ``repeat`` calls after warm-up (``time.perf_counter``);
the implementations of one loss are timed round-robin, so a noisy neighbour
slows them all alike. Speed-ups are ``peer time / fastloss time``; GB/s are the
bytes of the arrays an operation reads and writes divided by its time.

**Same threads.** :func:`run` pins the whole process to the first ``threads``
CPUs it may use (``os.sched_setaffinity`` on every thread) *before* it imports
torch and JAX, whose thread pools size themselves from that mask, then calls
``torch.set_num_threads`` and ``fastloss.set_num_threads`` with the same
number. Run it in a fresh process: a torch or JAX imported earlier keeps the
pools it made (the result's ``meta.peers_imported_before_pinning`` says so).

**Two configurations.** ``as_run`` is what a user gets by default: glibc serves
every allocation of 32 MB or more with a fresh ``mmap``, so each call that
returns a large array pays its page faults (10-16 ms for 64 MB), which is much
of torch's and JAX's time. ``best`` re-times the peers and fastloss (without
``out=``) after ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD,
INT_MAX)`` (the ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` environment
setting), which keeps freed memory in the heap for the next call to reuse:
each library at its best. glibc only; elsewhere ``best`` is skipped. The
defaults are restored afterwards (glibc's dynamic mmap threshold stays off).

    >>> from fastloss import benchmark
    >>> result = benchmark.run(["mse_loss"], quick=True)  # doctest: +SKIP
    >>> benchmark.print_report(result)                     # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
import zlib

import numpy as np

import fastloss
from . import _core
from . import _elementwise
from ._api import REGISTRY

__all__ = [
    "run", "print_report", "write_json", "plot", "print_table", "pin_threads", "usable_cpus",
    "memory_bandwidth", "JAX_LOSSES", "OPS", "PEERS",
]

OPS = ("forward", "backward", "value_and_grad", "value_and_grad_out")
OP_LABELS = {
    "forward": "forward",
    "backward": "backward",
    "value_and_grad": "value_and_grad",
    "value_and_grad_out": "value_and_grad(out=)",
}
PEERS = ("numpy", "torch", "jax")

DEFAULT_SIZE = 1 << 24
QUICK_SIZE = 1 << 20
DEFAULT_REPEAT = 7
QUICK_REPEAT = 5
# The float64 NumPy reference is 10-50x slower than the rest: fewer repeats
# keep the default run short without changing what it shows.
REFERENCE_MAX_REPEAT = 3

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_MAX = -4
_GLIBC_DEFAULT_MMAP_MAX = 65536
_GLIBC_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_INT_MAX = 2**31 - 1


# --------------------------------------------------------------- jax.numpy
# How JAX computes each loss, 'mean' reduction: name -> builder(jnp, options)
# returning f(*arrays) (arrays in the registry's order), or None when these
# options are not covered. Losses without an entry are benchmarked without JAX.


def _jax_l1(jnp, o):
    if o.get("weight") is not None:
        return None
    return lambda input, target: jnp.mean(jnp.abs(input - target))


def _jax_mse(jnp, o):
    if o.get("weight") is not None:
        return None
    return lambda input, target: jnp.mean(jnp.square(input - target))


def _jax_smooth_l1(jnp, o):
    beta = float(o.get("beta", 1.0))
    if beta == 0:
        return _jax_l1(jnp, o)

    def smooth_l1(input, target):
        z = jnp.abs(input - target)
        return jnp.mean(jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta))

    return smooth_l1


def _jax_huber(jnp, o):
    if o.get("weight") is not None:
        return None
    delta = float(o.get("delta", 1.0))

    def huber(input, target):
        z = jnp.abs(input - target)
        return jnp.mean(jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)))

    return huber


JAX_LOSSES = {
    "l1_loss": _jax_l1,
    "mse_loss": _jax_mse,
    "smooth_l1_loss": _jax_smooth_l1,
    "huber_loss": _jax_huber,
}

# torch: torch.nn.functional.<name> with fastloss's arguments (they are
# torch's). An entry here, name -> builder(torch, options) returning
# f(*tensors), overrides that for a loss whose torch call differs.
TORCH_LOSSES: dict = {}


class Skip(Exception):
    """A peer cannot run a loss (missing implementation or options)."""


# ----------------------------------------------------------------- threads


def usable_cpus():
    """The CPUs this process may run on (all of them where affinity is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _set_affinity(cpus):
    """Sets the affinity of every thread of this process (sched_setaffinity
    only changes the thread it is given; threads started later inherit it)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = []
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass  # a thread that ended meanwhile
    os.sched_setaffinity(0, cpus)


def pin_threads(n):
    """Restricts this process to its first ``n`` usable CPUs and sets
    fastloss's thread count to ``n``. Returns the CPUs (None where affinity
    cannot be set). Call before importing torch/JAX."""
    cpus = usable_cpus()
    if not 1 <= n <= len(cpus):
        raise ValueError(f"threads: expected 1..{len(cpus)} (the CPUs this process may use), got {n}")
    chosen = None
    if hasattr(os, "sched_setaffinity"):
        chosen = cpus[:n]
        _set_affinity(chosen)
    fastloss.set_num_threads(n)
    return chosen


# ------------------------------------------------------------------ timing


class _Case:
    __slots__ = ("key", "fn", "repeat", "warmup", "times", "error")

    def __init__(self, key, fn, repeat, warmup):
        self.key, self.fn, self.repeat, self.warmup = key, fn, repeat, warmup
        self.times, self.error = [], None


def _time_cases(cases):
    """Warms every case up, then times them round-robin (rotating the order
    each round). The result of a call is freed after the clock stops."""
    for c in cases:
        try:
            for _ in range(c.warmup):
                c.fn()
        except Exception as exc:  # noqa: BLE001 - a failing peer is reported, not fatal
            c.error = f"{type(exc).__name__}: {exc}".strip()
    active = [c for c in cases if c.error is None]
    if not active:
        return
    clock = time.perf_counter
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(max(c.repeat for c in active)):
            k = r % len(active)
            for c in active[k:] + active[:k]:
                if len(c.times) < c.repeat:
                    t0 = clock()
                    result = c.fn()  # noqa: F841 - freed after the clock stops
                    t1 = clock()
                    del result
                    c.times.append(t1 - t0)
    finally:
        if enabled:
            gc.enable()


class _Probe:
    """Memory-bandwidth probe with fastloss's kernels: read-only (blocked sum
    of ``2*size`` elements, the footprint of a two-input forward) and
    read+write (copy of ``size`` elements)."""

    def __init__(self, size, dtype):
        dtype = np.dtype(dtype)
        self.a = np.ones(2 * size, dtype)
        self.src = np.ones(size, dtype)
        self.dst = np.zeros(size, dtype)

    def cases(self, repeat):
        a, src, dst = self.a, self.src, self.dst
        return [
            _Case(("probe", "read"), lambda: _elementwise.total(a), repeat, 2),
            _Case(("probe", "read_write"), lambda: _core.pointwise(_elementwise.SUM, True, False, 0.0, 1.0,
                                                                   src, None, None, None, dst, None), repeat, 2),
        ]

    def summary(self, cases):
        """GB/s (1e9 bytes/s) from timed :meth:`cases`; None if they failed."""
        if any(c.error or not c.times for c in cases):
            return None
        read, copy = (statistics.median(c.times) for c in cases)
        return {
            "read_gbps": self.a.nbytes / read / 1e9,
            "read_write_gbps": 2 * self.src.nbytes / copy / 1e9,
            "read_bytes": self.a.nbytes,
            "read_write_bytes": 2 * self.src.nbytes,
            "read_seconds": read,
            "read_write_seconds": copy,
        }


def memory_bandwidth(size, dtype, repeat):
    """Times the bandwidth probe alone; returns GB/s (see :class:`_Probe`)."""
    probe = _Probe(size, dtype)
    cases = probe.cases(max(repeat, 5))
    _time_cases(cases)
    return probe.summary(cases)


# ------------------------------------------------------------------- malloc


def _glibc_mallopt():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def _tune_malloc(mallopt):
    """Keeps large allocations in the heap and freed memory in the process."""
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def _restore_malloc(mallopt):
    mallopt(_M_MMAP_MAX, _GLIBC_DEFAULT_MMAP_MAX)
    mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_TRIM_THRESHOLD)


# -------------------------------------------------------------------- peers


class _Peer:
    name = ""
    version = ""
    note = ""

    def cases(self, spec, data, config, repeat):  # pragma: no cover - interface
        raise NotImplementedError


class _NumpyReference(_Peer):
    name = "numpy"
    note = "fastloss.reference: plain NumPy, float64"

    def __init__(self):
        self.version = np.__version__
        importlib.import_module("fastloss.reference")

    def cases(self, spec, data, config, repeat):
        if config != "as_run":
            return {}
        try:
            fwd, bwd = spec.reference, spec.reference_backward
        except AttributeError:
            raise Skip("no reference implementation") from None
        a, o = data.arrays, data.options
        rep = max(1, min(repeat, REFERENCE_MAX_REPEAT))
        # One warm-up for the forward only: nothing to compile, and it is slow.
        return {
            "forward": _Case(("numpy", "forward"), lambda: fwd(*a, **o), rep, 1),
            "backward": _Case(("numpy", "backward"), lambda: bwd(*a, **o), rep, 0),
            "value_and_grad": _Case(("numpy", "value_and_grad"), lambda: (fwd(*a, **o), bwd(*a, **o)), rep, 0),
        }


class _Torch(_Peer):
    name = "torch"
    note = ("torch.nn.functional on torch.from_numpy tensors; forward under no_grad; backward and "
            "value_and_grad = a fresh forward with requires_grad + .backward()")

    def __init__(self, threads):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.version = torch.__version__

    def _tensor(self, v):
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "iu":  # class indices and lengths are int64 in torch
                v = v.astype(np.int64)
            return self.torch.from_numpy(np.ascontiguousarray(v))
        return v

    def cases(self, spec, data, config, repeat):
        torch = self.torch
        build = TORCH_LOSSES.get(spec.name)
        opts = {k: self._tensor(v) for k, v in data.options.items()}
        if build is not None:
            fn = build(torch, data.options)
            if fn is None:
                raise Skip("options not covered")
        else:
            fn = getattr(torch.nn.functional, spec.name, None)
            if fn is None:
                raise Skip(f"torch.nn.functional has no {spec.name}")
            fn = _bind(fn, opts)
        tensors = [self._tensor(a) for a in data.arrays]
        gidx = data.grad_index

        def forward():
            with torch.no_grad():
                return fn(*tensors)

        def forward_backward():
            xs = list(tensors)
            for i in gidx:
                xs[i] = tensors[i].detach().requires_grad_(True)
            loss = fn(*xs)
            loss.backward()
            return loss.detach(), [xs[i].grad for i in gidx]

        suffix = "" if config == "as_run" else "_best"
        fb = _Case(("torch" + suffix, "value_and_grad"), forward_backward, repeat, 2)
        return {
            "forward": _Case(("torch" + suffix, "forward"), forward, repeat, 2),
            "value_and_grad": fb,
            "backward": fb,  # torch has no gradient without its forward
        }


class _Jax(_Peer):
    name = "jax"
    note = ("jax.jit of a jax.numpy implementation (mean), inputs already jax arrays, "
            "block_until_ready; backward = jit(grad), value_and_grad = jit(value_and_grad)")

    def __init__(self, dtype):
        import jax

        if np.dtype(dtype) == np.float64:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.version = jax.__version__
        self._compiled = {}

    def cases(self, spec, data, config, repeat):
        jax = self.jax
        build = JAX_LOSSES.get(spec.name)
        if build is None:
            raise Skip("no jax.numpy implementation in benchmark.JAX_LOSSES")
        key = spec.name
        if key not in self._compiled:
            f = build(self.jnp, data.options)
            if f is None:
                raise Skip("options not covered by the jax.numpy implementation")
            argnums = tuple(data.grad_index)
            self._compiled[key] = (
                jax.jit(f),
                jax.jit(jax.grad(f, argnums=argnums)),
                jax.jit(jax.value_and_grad(f, argnums=argnums)),
            )
        jf, jg, jvg = self._compiled[key]
        xs = [jax.device_put(a) for a in data.arrays]
        jax.block_until_ready(xs)
        block = jax.block_until_ready
        suffix = "" if config == "as_run" else "_best"
        return {
            "forward": _Case(("jax" + suffix, "forward"), lambda: block(jf(*xs)), repeat, 2),
            "backward": _Case(("jax" + suffix, "backward"), lambda: block(jg(*xs)), repeat, 2),
            "value_and_grad": _Case(("jax" + suffix, "value_and_grad"), lambda: block(jvg(*xs)), repeat, 2),
        }


def _bind(fn, options):
    if not options:
        return fn
    return lambda *arrays: fn(*arrays, **options)


def _load_peers(wanted, dtype, threads):
    """Imports the peers (after pin_threads). Returns ({name: peer}, {name: why not})."""
    peers, missing = {}, {}
    for name in wanted:
        try:
            if name == "numpy":
                peers[name] = _NumpyReference()
            elif name == "torch":
                peers[name] = _Torch(threads)
            elif name == "jax":
                peers[name] = _Jax(dtype)
            else:
                raise ValueError(f"unknown peer {name!r}")
        except ImportError as exc:
            missing[name] = f"not installed ({exc})"
    return peers, missing


# --------------------------------------------------------------------- data


class _Data:
    """One loss's sampled arrays and options, and the bytes each op moves."""

    def __init__(self, spec, size, dtype):
        rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
        arrays, options = spec.sample(rng, size, np.dtype(dtype))
        options = dict(options)
        if "reduction" in spec.options:
            options["reduction"] = "mean"
        self.arrays, self.options = tuple(arrays), options
        self.grad_index = [spec.arrays.index(g) for g in spec.grads
                           if isinstance(self.arrays[spec.arrays.index(g)], np.ndarray)]
        self.read_bytes = sum(a.nbytes for a in list(self.arrays) + list(options.values())
                              if isinstance(a, np.ndarray))
        self.grad_bytes = sum(self.arrays[i].nbytes for i in self.grad_index)
        outs = []
        for g in spec.grads:
            a = self.arrays[spec.arrays.index(g)]
            outs.append(np.zeros_like(a) if isinstance(a, np.ndarray) else None)
        self.out = outs[0] if len(outs) == 1 else tuple(outs)

    def op_bytes(self, value):
        value_bytes = value.nbytes if isinstance(value, np.ndarray) and value.ndim else 0
        grads = self.read_bytes + self.grad_bytes + value_bytes
        return {
            "forward": self.read_bytes + value_bytes,
            "backward": self.read_bytes + self.grad_bytes,
            "value_and_grad": grads,
            "value_and_grad_out": grads,
        }


def _fastloss_cases(spec, data, config, repeat):
    a, o, out = data.arrays, data.options, data.out
    name = "fastloss" if config == "as_run" else "fastloss_best"
    cases = {
        "forward": _Case((name, "forward"), lambda: spec.forward(*a, **o), repeat, 2),
        "backward": _Case((name, "backward"), lambda: spec.backward(*a, **o), repeat, 2),
        "value_and_grad": _Case((name, "value_and_grad"), lambda: spec.value_and_grad(*a, **o), repeat, 2),
    }
    if config == "as_run":
        cases["value_and_grad_out"] = _Case(
            (name, "value_and_grad_out"), lambda: spec.value_and_grad(*a, out=out, **o), repeat, 2)
    return cases


# ---------------------------------------------------------------------- run


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "cpu model", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions(peers):
    v = {"fastloss": fastloss.__version__, "python": platform.python_version(), "numpy": np.__version__}
    for name, peer in peers.items():
        if name != "numpy":
            v[name] = peer.version
    if "jax" in peers:
        try:
            v["jaxlib"] = importlib.import_module("jaxlib").__version__
        except (ImportError, AttributeError):
            pass
    return v


def _measure(names, config, size, dtype, repeat, peers, rows, errors, skipped, probe, probes, say):
    """Times every loss of ``names`` in one configuration. The bandwidth probe
    runs in each loss's round-robin, so its roofline shares the loss's
    conditions on a noisy machine; ``probes`` collects the probe results."""
    for name in names:
        spec = REGISTRY[name]
        say(f"{name}: sampling {size:,} {np.dtype(dtype).name} elements")
        try:
            data = _Data(spec, size, dtype)
            value = spec.forward(*data.arrays, **data.options)
        except Exception as exc:  # noqa: BLE001 - one broken loss must not stop the run
            errors.append({"loss": name, "impl": "fastloss", "config": config,
                           "error": f"{type(exc).__name__}: {exc}"})
            continue
        op_bytes = data.op_bytes(value)
        by_op = {op: {} for op in OPS}
        for op, case in _fastloss_cases(spec, data, config, repeat).items():
            by_op[op][case.key[0]] = case
        for peer in peers.values():
            try:
                for op, case in peer.cases(spec, data, config, repeat).items():
                    by_op[op][case.key[0]] = case
            except Skip as why:
                if config == "as_run":
                    skipped.append({"loss": name, "impl": peer.name, "reason": str(why)})
            except Exception as exc:  # noqa: BLE001
                errors.append({"loss": name, "impl": peer.name, "config": config,
                               "error": f"{type(exc).__name__}: {exc}"})
        unique = {id(c): c for cases in by_op.values() for c in cases.values()}
        say(f"{name}: timing {len(unique)} cases ({config})")
        probe_cases = probe.cases(repeat)
        _time_cases(list(unique.values()) + probe_cases)
        bandwidth = probe.summary(probe_cases) or probes[0]
        probes.append(dict(bandwidth, loss=name, config=config))
        for op in OPS:
            row = rows.setdefault((name, op), {"loss": name, "op": op, "bytes": op_bytes[op], "peers": {}})
            for impl, case in by_op[op].items():
                if case.error is not None:
                    errors.append({"loss": name, "impl": impl, "op": op, "config": config, "error": case.error})
                    continue
                sec = statistics.median(case.times)
                entry = {"seconds": sec, "times": list(case.times), "gbps": op_bytes[op] / sec / 1e9}
                if case.key[1] != op:
                    entry["same_as"] = case.key[1]
                if impl.startswith("fastloss"):
                    roof = bandwidth["read_gbps"] if op == "forward" else bandwidth["read_write_gbps"]
                    entry["roofline_gbps"] = roof
                    entry["roofline_pct"] = 100.0 * entry["gbps"] / roof
                    row[impl] = entry
                else:
                    row["peers"][impl] = entry
        del data, value, by_op, unique
        gc.collect()


def _speedups(rows):
    """peer time / fastloss time, as_run against as_run and best against best.
    Peers have no ``out=``: their fused time is compared with fastloss's."""
    for (name, op), row in rows.items():
        if op == "value_and_grad_out":
            fused = rows.get((name, "value_and_grad"), {}).get("peers", {})
            row["peers"] = {k: dict(v, same_as="value_and_grad") for k, v in fused.items()}
        base = row.get("fastloss")
        best = row.get("fastloss_best") or base
        for impl, entry in row["peers"].items():
            ref = best if impl.endswith("_best") else base
            entry["speedup"] = entry["seconds"] / ref["seconds"] if ref else None


def _ordered(row):
    keys = ("loss", "op", "bytes", "fastloss", "fastloss_best", "peers")
    return {k: row[k] for k in keys if k in row}


def run(losses=None, *, size=None, dtype="float32", threads=None, repeat=None, quick=False,
        peers=None, best=True, progress=None):
    """Runs the benchmark; returns a JSON-ready dict (see :func:`write_json`).

    ``losses``: registry names (default all); ``size``: elements per input
    array (default 2**24, 2**20 with ``quick``); ``threads``: for everyone
    (default: the CPUs this process may use); ``repeat``: timed calls per
    case (median; default 7, 5 with ``quick``); ``peers``: subset of
    ``("numpy", "torch", "jax")`` (default: those installed); ``best``: also
    time the allocator-tuned configuration; ``progress``: callable(str)."""
    names = list(REGISTRY) if not losses else list(losses)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"losses: unknown {', '.join(unknown)} (registered: {', '.join(REGISTRY)})")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    size = int(size or (QUICK_SIZE if quick else DEFAULT_SIZE))
    repeat = int(repeat or (QUICK_REPEAT if quick else DEFAULT_REPEAT))
    if size < 1 or repeat < 1:
        raise ValueError("size and repeat must be >= 1")
    wanted = list(PEERS) if peers is None else list(peers)
    say = progress or (lambda msg: None)

    before = [m for m in ("torch", "jax") if sys.modules.get(m) is not None]
    old_cpus, old_threads = usable_cpus(), fastloss.get_num_threads()
    threads = int(threads or len(old_cpus))
    started = time.perf_counter()
    cpus = pin_threads(threads)
    try:
        say(f"importing peers: {', '.join(wanted) or 'none'}")
        loaded, missing = _load_peers(wanted, dtype, threads)
        say("memory-bandwidth probe")
        probe = _Probe(size, dtype)
        cases = probe.cases(max(repeat, 5))
        _time_cases(cases)
        probes = [dict(probe.summary(cases), loss=None, config="start")]
        rows, errors, skipped = {}, [], []
        _measure(names, "as_run", size, dtype, repeat, loaded, rows, errors, skipped, probe, probes, say)
        tuned = None
        mallopt = _glibc_mallopt() if best else None
        if mallopt is not None:
            tuned = _tune_malloc(mallopt)
            try:
                if tuned:
                    best_peers = {k: v for k, v in loaded.items() if k != "numpy"}
                    _measure(names, "best", size, dtype, repeat, best_peers, rows, errors, skipped, probe,
                             probes, say)
            finally:
                _restore_malloc(mallopt)
        _speedups(rows)
        del probe, cases
    finally:
        if hasattr(os, "sched_setaffinity"):
            _set_affinity(old_cpus)
        fastloss.set_num_threads(old_threads)

    if not best:
        best_how = "not requested"
    elif mallopt is None:
        best_how = "skipped: needs Linux with glibc"
    elif not tuned:
        best_how = "skipped: mallopt refused"
    else:
        best_how = (f"mallopt(M_MMAP_MAX=0), mallopt(M_TRIM_THRESHOLD={_INT_MAX}) "
                    "(= MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647)")
    meta = {
        "fastloss": fastloss.__version__,
        "isa": _core.current_isa(),
        "available_isas": list(_core.available_isas()),
        "compiler": getattr(_core, "compiler", ""),
        "threads": threads,
        "cpus": cpus,
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "dtype": dtype.name,
        "size": size,
        "reduction": "mean",
        "repeat": repeat,
        "reference_repeat": max(1, min(repeat, REFERENCE_MAX_REPEAT)),
        "quick": bool(quick),
        "losses": names,
        "peers": {k: {"version": v.version, "how": v.note} for k, v in loaded.items()},
        "peers_missing": missing,
        "peers_imported_before_pinning": before,
        "best": best_how,
        "versions": _versions(loaded),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    meta["seconds"] = time.perf_counter() - started
    return {
        "meta": meta,
        "bandwidth": {
            "read_gbps": statistics.median(p["read_gbps"] for p in probes),
            "read_write_gbps": statistics.median(p["read_write_gbps"] for p in probes),
            "read_bytes": probes[0]["read_bytes"],
            "read_write_bytes": probes[0]["read_write_bytes"],
            "probes": probes,
        },
        "results": [_ordered(rows[k]) for k in sorted(rows, key=lambda k: (names.index(k[0]), OPS.index(k[1])))],
        "skipped": skipped,
        "errors": errors,
    }


# ------------------------------------------------------------------- output


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def write_json(result, path):
    """Writes a :func:`run` result as JSON (non-finite numbers become null),
    creating the file's folder if needed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_clean(result), f, indent=1, allow_nan=False)
        f.write("\n")


def print_table(title, headers, rows, *, file=None, caption=None, left=1):
    """A table with rich when it is installed, else aligned plain text.
    A cell is a str or ``(str, style)``; the first ``left`` columns are
    left-aligned, the others right-aligned."""
    file = file or sys.stdout
    cells = [[c if isinstance(c, tuple) else (str(c), "") for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i][0]) for r in cells]) for i, h in enumerate(headers)]
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        out = [title] if title else []
        line = "  ".join(h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
        out += [line, "-" * len(line)]
        for r in cells:
            out.append("  ".join(c[0].ljust(w) if i < left else c[0].rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))))
        if caption:
            out.append(caption)
        print("\n".join(out) + "\n", file=file)
        return
    natural = sum(widths) + 3 * len(widths) + 4
    isatty = getattr(file, "isatty", lambda: False)()
    console = Console(file=file, highlight=False, width=None if isatty else max(100, natural))
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, title_justify="left",
                  caption_justify="left", pad_edge=False)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i < left else "right", no_wrap=True)
    for r in cells:
        table.add_row(*(Text(text, style=style) for text, style in r))
    console.print(table)


def _fmt_time(sec):
    if sec is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if sec >= scale or unit == "µs":
            v = sec / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return "-"  # unreachable


def _fmt_bytes(n):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def _fmt_ratio(r):
    if r is None:
        return "-"
    return f"×{r:.3g}" if r < 1000 else f"×{r:.0f}"


def _peer_cell(entry):
    if entry is None:
        return "-"
    text = f"{_fmt_time(entry['seconds'])} {_fmt_ratio(entry.get('speedup'))}"
    speedup = entry.get("speedup")
    return (text, "red" if speedup is not None and speedup < 1 else "")


def print_report(result, file=None):
    """Prints a :func:`run` result: a header, then one table per loss."""
    file = file or sys.stdout
    m, bw = result["meta"], result["bandwidth"]
    cpus = m.get("cpus")
    print(f"fastloss {m['fastloss']} bench · isa {m['isa']} · {m['threads']} thread(s)"
          + (f" (cpus {','.join(map(str, cpus))})" if cpus else "")
          + f" · {m['dtype']} · {m['size']:,} elements per array · {m['reduction']} reduction"
          + f" · median of {m['repeat']} (reference: {m['reference_repeat']})", file=file)
    print(f"cpu: {m['cpu_model']}", file=file)
    if m["peers"]:
        print("peers: " + "; ".join(f"{k} {v['version']}" for k, v in m["peers"].items()), file=file)
    for k, why in m.get("peers_missing", {}).items():
        print(f"peer {k}: {why}", file=file)
    if m.get("peers_imported_before_pinning"):
        print("note: imported before the threads were pinned (thread pools may be larger): "
              + ", ".join(m["peers_imported_before_pinning"]), file=file)
    print(f"memory bandwidth (fastloss kernels, probed with every loss; median): read {bw['read_gbps']:.1f} GB/s"
          f" · read+write {bw['read_write_gbps']:.1f} GB/s", file=file)
    print(f"best (*): {m['best']}", file=file)
    print(file=file)

    peer_cols = [p for p in ("numpy", "torch", "jax")
                 if any(p in r["peers"] for r in result["results"])]
    best_cols = [p for p in ("torch_best", "jax_best") if any(p in r["peers"] for r in result["results"])]
    has_best = any("fastloss_best" in r for r in result["results"])
    headers = ["op", "fastloss", "GB/s", "roof"] + peer_cols
    if has_best:
        headers += ["fastloss*"] + [c.replace("_best", "*") for c in best_cols]
    by_loss = {}
    for r in result["results"]:
        by_loss.setdefault(r["loss"], []).append(r)
    for name, rs in by_loss.items():
        rows = []
        for r in rs:
            fl = r.get("fastloss")
            row = [OP_LABELS[r["op"]], _fmt_time(fl and fl["seconds"]),
                   f"{fl['gbps']:.1f}" if fl else "-", f"{fl['roofline_pct']:.0f}%" if fl else "-"]
            row += [_peer_cell(r["peers"].get(p)) for p in peer_cols]
            if has_best:
                flb = r.get("fastloss_best")
                row.append(_fmt_time(flb["seconds"]) if flb else "=")
                row += [_peer_cell(r["peers"].get(p)) for p in best_cols]
            rows.append(row)
        title = f"{name}  (forward moves {_fmt_bytes(rs[0]['bytes'])}"
        for p in bw.get("probes", []):
            if p["loss"] == name and p["config"] == "as_run":
                title += f"; probe: read {p['read_gbps']:.1f}, read+write {p['read_write_gbps']:.1f} GB/s"
        print_table(title + ")", headers, rows, file=file)
    notes = [
        "×N = peer time / fastloss time (>1: fastloss faster); GB/s = bytes read+written / time;",
        "roof = fastloss GB/s as % of the probe timed with it: read-only for forward, read+write for the others.",
        "torch backward = forward + .backward() (torch has no gradient without it); peers have no out=:",
        "the value_and_grad(out=) row compares their fused time. * = best configuration (see above);",
        "fastloss* is without out=, and the out= row's * ratios use its as-run time.",
    ]
    for s in result.get("skipped", []):
        notes.append(f"skipped {s['impl']} for {s['loss']}: {s['reason']}")
    for e in result.get("errors", []):
        notes.append(f"ERROR {e['impl']} {e['loss']} {e.get('op', '')} ({e['config']}): {e['error']}")
    print("\n".join(notes), file=file)
    print(f"total {m['seconds']:.1f} s", file=file)


def plot(result, path):
    """Bar chart of the speed-ups (log scale) vs each peer, per loss and op."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = [p for p in ("numpy", "torch", "torch_best", "jax", "jax_best")
              if any(p in r["peers"] for r in result["results"])]
    rows = [r for r in result["results"] if r["peers"]]
    labels = [f"{r['loss']}\n{OP_LABELS[r['op']]}" for r in rows]
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, p in enumerate(series):
        xs, ys = [], []
        for i, r in enumerate(rows):
            s = r["peers"].get(p, {}).get("speedup")
            if s:
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(s)
        ax.bar(xs, ys, width, label=p.replace("_best", " (best)"))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speed-up of fastloss (peer time / fastloss time)")
    m = result["meta"]
    fig.suptitle(f"fastloss {m['fastloss']} · {m['isa']} · {m['threads']} threads · {m['dtype']} · "
                 f"{m['size']:,} elements", fontsize=9)
    if series:
        ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
