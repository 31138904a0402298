#!/usr/bin/env python
"""Throughput of fastloss's vector math (cpp/src/simd/math.h) against NumPy.

    python bench/vector_math.py [--size 2**20] [--repeat 20] [--isa avx2 ...]

Prints ns per element (one thread, best of --repeat calls, output allocated
by both sides) for each function (and the losses' loss_* variants), dtype and ISA level, and NumPy's time for
the same function (sigmoid: scipy.special.expit when installed). A report,
not a test: the numbers depend on the machine and its load."""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from fastloss import _core


def _numpy_sigmoid():
    try:
        from scipy.special import expit

        return expit
    except ImportError:  # pragma: no cover - scipy is optional
        return lambda x: 1 / (1 + np.exp(-x))


NUMPY = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "softplus": lambda x: np.logaddexp(0, x),
    "log_sigmoid": lambda x: -np.logaddexp(0, -x),
    "sigmoid": _numpy_sigmoid(),
}
# The losses' float32 variants (math.h's loss_*; float64: the functions above).
NUMPY.update({
    "loss_exp": np.exp,
    "loss_log": np.log,
    "loss_log1p": np.log1p,
    "loss_softplus": NUMPY["softplus"],
    "loss_sigmoid": NUMPY["sigmoid"],
})


def best_ns(fn, x, repeat):
    fn(x)  # page faults, caches
    return min(timeit.repeat(lambda: fn(x), number=1, repeat=repeat)) / x.size * 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2**20", help="elements (2**20 and 1<<20 accepted)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--isa", nargs="*", default=None, help="levels (default: all available)")
    parser.add_argument("--dtype", nargs="*", default=["float32", "float64"])
    args = parser.parse_args(argv)
    size = int(eval(args.size, {"__builtins__": {}}))  # noqa: S307 - arithmetic on literals only
    levels = args.isa or _core.available_isas()
    rng = np.random.default_rng(0)
    previous = _core.current_isa()
    print(f"ns/element, {size} elements, best of {args.repeat}; speedup = numpy / fastloss")
    print(f"{'function':12s} {'dtype':8s} {'numpy':>7s} " + " ".join(f"{lv:>16s}" for lv in levels))
    try:
        for dtype in args.dtype:
            for name, np_fn in NUMPY.items():
                if name not in _core._vector_math_functions:
                    continue
                lo, hi = (0.0, 10.0) if "log" in name and "sigmoid" not in name else (-10.0, 10.0)
                x = rng.uniform(lo, hi, size).astype(dtype)
                with np.errstate(all="ignore"):
                    ref = best_ns(np_fn, x, args.repeat)
                cells = []
                for level in levels:
                    _core.select_isa(level)
                    ns = best_ns(lambda v, n=name: _core._vector_math(n, v), x, args.repeat)
                    cells.append(f"{ns:7.3f} ({ref / ns:5.1f}x)")
                print(f"{name:12s} {dtype:8s} {ref:7.3f} " + " ".join(f"{c:>16s}" for c in cells))
    finally:
        _core.select_isa(previous)


if __name__ == "__main__":
    main()
