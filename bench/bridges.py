#!/usr/bin/env python
"""The torch and JAX bridges against the frameworks' own losses: forward +
backward at 2^24 and at 100 float32 elements, same threads for everyone.

    python bench/bridges.py [--threads 2] [--losses mse_loss binary_cross_entropy_with_logits] [--repeat 7]

- torch: ``loss = F.<name>(x, y); loss.backward()`` against
  ``fastloss.torch.<name>(x, y)`` (its forward runs the fused kernel).
- JAX: ``jax.jit(jax.value_and_grad(f))`` of the registry's JAX formula
  against the same of ``fastloss.jax.<name>`` (a pure_callback).

Medians of ``--repeat`` calls (after a warm-up) in ms, and each bridge's
time over the framework's own."""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _median(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--losses", nargs="+", default=["mse_loss", "binary_cross_entropy_with_logits"])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    import jax
    import jax.numpy as jnp
    import torch

    import fastloss
    import fastloss.jax
    import fastloss.torch
    from fastloss._api import REGISTRY

    torch.set_num_threads(args.threads)
    fastloss.set_num_threads(args.threads)
    rows = []
    for name in args.losses:
        spec = REGISTRY[name]
        for n in (1 << 24, 100):
            rng = np.random.default_rng(0)
            arrays, _ = spec.sample(rng, n, np.float32)
            tx = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
            x = tx[0].clone().requires_grad_(True)

            def torch_own():
                x.grad = None
                spec.torch(torch, x, *tx[1:]).backward()

            def torch_bridge():
                x.grad = None
                getattr(fastloss.torch, name)(x, *tx[1:]).backward()

            ja = [jnp.asarray(a) for a in arrays]
            own = jax.jit(jax.value_and_grad(lambda x, *rest: spec.jax(jnp, x, *rest)))
            bridge = jax.jit(jax.value_and_grad(lambda x, *rest: getattr(fastloss.jax, name)(x, *rest)))
            t = {
                "torch": _median(torch_own, args.repeat),
                "fastloss.torch": _median(torch_bridge, args.repeat),
                "jax.jit": _median(lambda: jax.block_until_ready(own(*ja)), args.repeat),
                "fastloss.jax (jit)": _median(lambda: jax.block_until_ready(bridge(*ja)), args.repeat),
            }
            rows.append((name, n, t))
    print(f"forward + backward, float32, {args.threads} threads, median ms (ratio: framework's own / bridge)")
    print(f"{'loss':36} {'n':>9} {'torch':>9} {'fastloss.torch':>15} {'ratio':>6} {'jax.jit':>9} "
          f"{'fastloss.jax':>13} {'ratio':>6}")
    for name, n, t in rows:
        print(f"{name:36} {n:>9} {t['torch']:>9.3f} {t['fastloss.torch']:>15.3f} "
              f"{t['torch'] / t['fastloss.torch']:>5.2f}x {t['jax.jit']:>9.3f} {t['fastloss.jax (jit)']:>13.3f} "
              f"{t['jax.jit'] / t['fastloss.jax (jit)']:>5.2f}x")


if __name__ == "__main__":
    main()
