"""The timing engine: warm every case up, then time all of them round-robin.

A *case* is one zero-argument callable (e.g. torch's ``mse_loss`` forward on
prepared tensors). :func:`time_cases` times a list of cases together, one call
of each per round with the order rotated every round, so a noisy neighbour on
a shared machine slows all of them alike and their ratios stay meaningful.
The clock is ``time.perf_counter``; the garbage collector is off while timing
and a call's result is freed only after the clock stopped."""

from __future__ import annotations

import gc
import statistics
import time

__all__ = ["Case", "time_cases", "spread", "NOISY_SPREAD", "SETTLE_SECONDS"]

# max/min of a case's times above which the machine is called noisy.
NOISY_SPREAD = 1.5
# Pause before each timed call (off the clock). torch's OpenMP workers and
# XLA's thread pool keep spinning for a while after a call returns; without
# the pause, whichever case follows a peer in the round-robin shares the
# cores with those spinning threads.
SETTLE_SECONDS = 0.005


class Case:
    """One callable to time: ``key`` names it (implementation, op), ``repeat``
    timed calls after ``warmup`` untimed ones. After :func:`time_cases`,
    ``times`` holds the seconds of each call, or ``error`` why it failed."""

    __slots__ = ("key", "fn", "repeat", "warmup", "times", "error")

    def __init__(self, key, fn, repeat, warmup=2):
        self.key, self.fn, self.repeat, self.warmup = key, fn, repeat, warmup
        self.times, self.error = [], None


def time_cases(cases, settle=None):
    """Warms every case up, then times them round-robin (rotating the order
    each round), sleeping ``settle`` seconds (default :data:`SETTLE_SECONDS`)
    before each call. A case that raises is marked with ``error`` and left out."""
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
    pause = SETTLE_SECONDS if settle is None else settle
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(max(c.repeat for c in active)):
            k = r % len(active)
            for c in active[k:] + active[:k]:
                if len(c.times) < c.repeat and c.error is None:
                    if pause:
                        time.sleep(pause)
                    try:
                        t0 = clock()
                        result = c.fn()  # noqa: F841 - freed after the clock stops
                        t1 = clock()
                    except Exception as exc:  # noqa: BLE001
                        c.error = f"{type(exc).__name__}: {exc}".strip()
                        continue
                    del result
                    c.times.append(t1 - t0)
    finally:
        if enabled:
            gc.enable()


def spread(times):
    """``{"seconds": median, "min", "max", "q1", "q3", "noisy"}`` of a case's
    times; ``noisy`` when max/min exceeds :data:`NOISY_SPREAD`."""
    ts = sorted(times)
    if len(ts) >= 2:
        q1, _, q3 = statistics.quantiles(ts, n=4, method="inclusive")
    else:
        q1 = q3 = ts[0]
    return {
        "seconds": statistics.median(ts),
        "min": ts[0],
        "max": ts[-1],
        "q1": q1,
        "q3": q3,
        "noisy": ts[-1] > NOISY_SPREAD * ts[0],
    }
