"""The machine under the benchmark: which CPUs, thread pinning, glibc's
allocator settings, and a description of the hardware and software.

**Same threads.** :func:`pin_threads` restricts the whole process to its first
``n`` usable CPUs (``os.sched_setaffinity`` on every thread) *before* torch and
JAX are imported, whose thread pools size themselves from that mask.

**Allocator.** By default glibc serves every allocation of 32 MB or more with
a fresh ``mmap``, so a call returning a large array pays its page faults.
:func:`tuned_malloc` sets ``mallopt(M_MMAP_MAX, 0)`` and
``mallopt(M_TRIM_THRESHOLD, INT_MAX)`` (the ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647`` environment setting) for the duration of a
``with`` block: freed memory stays in the heap for the next call to reuse."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import platform
import sys

import numpy as np

import fastloss

__all__ = ["usable_cpus", "set_affinity", "pin_threads", "tuned_malloc", "TUNED_MALLOC", "cpu_model", "versions"]

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_MAX = -4
_GLIBC_DEFAULT_MMAP_MAX = 65536
_GLIBC_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_INT_MAX = 2**31 - 1

TUNED_MALLOC = (f"mallopt(M_MMAP_MAX=0), mallopt(M_TRIM_THRESHOLD={_INT_MAX}) "
                f"(= MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_={_INT_MAX})")


def usable_cpus():
    """The CPUs this process may run on (all of them where affinity is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def set_affinity(cpus):
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
        set_affinity(chosen)
    fastloss.set_num_threads(n)
    return chosen


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


@contextlib.contextmanager
def tuned_malloc():
    """Inside the block, large allocations come from the heap and freed memory
    stays in the process. Yields None when that worked, else why not (not
    glibc, or mallopt refused). glibc's defaults are restored afterwards (its
    dynamic mmap threshold stays off)."""
    mallopt = _glibc_mallopt()
    if mallopt is None:
        yield "needs Linux with glibc"
        return
    try:
        ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
        yield None if ok else "mallopt refused"
    finally:
        mallopt(_M_MMAP_MAX, _GLIBC_DEFAULT_MMAP_MAX)
        mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_TRIM_THRESHOLD)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "cpu model", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(peers):
    """Versions of Python, NumPy, fastloss and the loaded peers (plus jaxlib)."""
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
