"""The memory-bandwidth probe: the "roofline" the losses are compared with.

Two operations made of fastloss's own kernels, as fast as a loss over the
same bytes could be: *read* = the blocked threaded sum of ``2 * size``
elements (the footprint of a two-input forward) and *read+write* = the
element-wise copy of ``size`` elements. Their cases are timed in the same
round-robin as each loss's cases (see :mod:`.timing`), so a loss's roofline
is measured under the same conditions as the loss; of its calls the fastest
counts (contention only slows a call down).

From the two, a linear model: a byte read costs ``read time / bytes``, a byte
written costs what the copy took beyond reading its source (on x86 a write
also reads the line first, so it costs more than a read). An op's roofline
time is ``read bytes * per-read + written bytes * per-write`` and its "% of
roofline" is that time over the op's time. It can still exceed 100 % when the
data fits in a cache (small ``--size``) or when the machine was busier during
the probe's calls than during the op's."""

from __future__ import annotations

import numpy as np

from .. import _core
from .. import _elementwise
from .timing import Case, time_cases

__all__ = ["Probe", "memory_bandwidth", "roofline_seconds"]


class Probe:
    """Arrays with the bytes of ``size`` elements of ``dtype`` (float16 is
    probed with float32 arrays of the same bytes: the kernels read float16
    inputs through float32)."""

    def __init__(self, size, dtype):
        dtype = np.dtype(dtype)
        n = size
        if dtype.itemsize < 4:
            dtype, n = np.dtype(np.float32), max(1, size * dtype.itemsize // 4)
        self.a = np.ones(2 * n, dtype)
        self.src = np.ones(n, dtype)
        self.dst = np.zeros(n, dtype)

    def cases(self, repeat):
        a, src, dst = self.a, self.src, self.dst
        return [
            Case(("probe", "read"), lambda: _elementwise.total(a), repeat, 2),
            Case(("probe", "read_write"), lambda: _core.pointwise(_elementwise.SUM, True, False, 0.0, 1.0,
                                                                  src, None, None, None, dst, None), repeat, 2),
        ]

    def summary(self, cases):
        """GB/s (1e9 bytes/s) of the fastest call of each timed :meth:`cases`;
        None if they failed."""
        if any(c.error or not c.times for c in cases):
            return None
        # The fastest call, not the median: contention only ever slows a call
        # down, so the fastest is the closest to what the memory can do.
        read, copy = (min(c.times) for c in cases)
        return {
            "read_gbps": self.a.nbytes / read / 1e9,
            "read_write_gbps": 2 * self.src.nbytes / copy / 1e9,
            "read_bytes": self.a.nbytes,
            "read_write_bytes": 2 * self.src.nbytes,
            "read_seconds": read,
            "read_write_seconds": copy,
            "seconds_per_byte_read": read / self.a.nbytes,
            # Never below zero: on a noisy machine the copy can look faster than its read.
            "seconds_per_byte_written": max(0.0, copy - self.src.nbytes * read / self.a.nbytes) / self.dst.nbytes,
        }


def roofline_seconds(summary, read_bytes, written_bytes):
    """The time the probe's speeds predict for an op reading and writing these bytes."""
    return read_bytes * summary["seconds_per_byte_read"] + written_bytes * summary["seconds_per_byte_written"]


def memory_bandwidth(size, dtype, repeat=5):
    """Times the probe alone; returns its :meth:`Probe.summary`."""
    probe = Probe(size, dtype)
    cases = probe.cases(max(repeat, 5))
    time_cases(cases)
    return probe.summary(cases)
