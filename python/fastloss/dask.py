"""Losses over Dask arrays: one :class:`fastloss.Accumulator` state per block
of rows, merged as a tree (``pip install "fastloss[dask]"``).

    >>> import dask.array as da, fastloss.dask
    >>> x = da.random.random((1_000_000, 8), chunks=(100_000, 8))
    >>> y = da.zeros_like(x)
    >>> value = fastloss.dask.evaluate("mse_loss", x, y)       # a NumPy scalar
    >>> lazy = fastloss.dask.evaluate("mse_loss", x, y, compute=False)  # a Dask Delayed

Works with any Dask scheduler: threads, processes, and ``dask.distributed``
clusters (process workers started by fork or spawn). On a distributed worker
each task sets fastloss's threads to its share of the host's CPUs (the CPUs
the worker may use divided by the Dask threads of all workers on that host),
so workers x threads never oversubscribe the cores."""

from __future__ import annotations

import os

import numpy as np

from .streaming import Accumulator

__all__ = ["evaluate"]

_FAN_IN = 8  # states merged per tree node


def _is_dask(obj):
    return hasattr(obj, "dask") and hasattr(obj, "chunks") and hasattr(obj, "to_delayed")


def _worker_threads(host_threads):
    """On a dask.distributed worker: sets fastloss's thread count to this
    task's share of the host's CPUs. Elsewhere (threaded or synchronous
    schedulers, where concurrent calls already run one thread each) nothing."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return
    from . import set_num_threads

    host = worker.address.rsplit(":", 1)[0].split("://")[-1]
    dask_threads = host_threads.get(host) or worker.state.nthreads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    set_num_threads(max(1, cpus // max(1, dask_threads)))


def _block_state(name, options, host_threads, names, *blocks):
    """The Accumulator state of one block of rows (runs on a worker)."""
    _worker_threads(host_threads)
    positional = [b for n, b in zip(names, blocks) if n is None]
    keyword = {n: b for n, b in zip(names, blocks) if n is not None}
    return Accumulator(name, **options).update(*positional, **keyword).state()


def _merge_states(*states):
    acc = Accumulator.from_state(states[0])
    for s in states[1:]:
        acc.merge(Accumulator.from_state(s))
    return acc.state()


def _result(state):
    return Accumulator.from_state(state).result()


def _host_threads():
    """{host: Dask threads of all workers there} of the current distributed
    client, or {} when there is none."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return {}
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # older distributed: no n_workers
        workers = client.scheduler_info()["workers"]
    hosts = {}
    for info in workers.values():
        hosts[info["host"]] = hosts.get(info["host"], 0) + int(info.get("nthreads", 1))
    return hosts


def evaluate(name, *arrays, compute=True, **options):
    """The loss ``name`` (a functional name, e.g. ``"cross_entropy"``) over
    Dask arrays, equal to ``fastloss.<name>(*arrays, **options)`` on the
    computed arrays to float64 rounding.

    Args:
        arrays: the function's array arguments (``input, target`` ...). Dask
            arrays whose first dimension is ``input``'s are split into blocks
            of rows (rechunked to ``input``'s row blocks, whole along the other
            axes); NumPy arrays and Dask arrays without that batch axis are
            given whole to every block.
        compute: False returns a ``dask.delayed.Delayed`` (call ``.compute()``).
        options: the function's keyword options (``reduction`` must not be
            ``'none'``); a Dask array among them with the batch axis (a
            per-element ``weight=``) is split like the arrays.

    Returns:
        A NumPy scalar of the one-shot call's dtype (or a Delayed).

    Raises:
        ValueError / TypeError as :class:`fastloss.Accumulator` and the loss
        itself (bad options, shapes, values), when the graph runs for errors
        inside a block; ``ImportError`` without Dask."""
    import dask

    Accumulator(name, **{k: v for k, v in options.items() if not _is_dask(v)})  # options checked now
    from ._api import REGISTRY

    if REGISTRY[name].family == "sequence":
        raise NotImplementedError(f"{name}: its batch axis is not the arrays' first (log_probs is (T, N, C)); "
                                  "stream it with fastloss.Accumulator over chunks of samples")
    if not arrays:
        raise TypeError(f"{name}: expected its array arguments")
    lead = arrays[0]
    if not _is_dask(lead) or lead.ndim == 0:  # nothing to split: one block
        import dask.array as da

        lead = da.from_array(np.asarray(lead.compute() if _is_dask(lead) else lead), chunks=-1)
        arrays = (lead,) + arrays[1:]
    row_chunks = lead.chunks[0] if lead.ndim else (1,)
    if any(np.isnan(c) for c in row_chunks):
        raise ValueError(f"{name}: input has unknown chunk sizes; call compute_chunk_sizes() first")

    def blocks(a):
        """``a``'s blocks of rows (a list), or ``a`` whole (a NumPy array)."""
        if _is_dask(a) and a.ndim >= 1 and lead.ndim >= 1 and a.shape[0] == lead.shape[0]:
            return list(a.rechunk((row_chunks,) + (-1,) * (a.ndim - 1)).to_delayed().ravel())
        return np.asarray(a.compute() if _is_dask(a) else a)

    # Positional arguments keep torch's order; a per-element keyword array
    # (weight=) is split too; everything else is given whole to every block.
    positional = [blocks(a) for a in arrays]
    split_kw = {k: blocks(v) for k, v in options.items() if _is_dask(v)}
    fixed = {k: v for k, v in options.items() if k not in split_kw}
    fixed.update({k: b for k, b in split_kw.items() if not isinstance(b, list)})
    split_kw = {k: b for k, b in split_kw.items() if isinstance(b, list)}
    names = [None] * len(positional) + list(split_kw)
    host_threads = _host_threads()
    state_fn = dask.delayed(_block_state, pure=True)
    states = []
    for i in range(len(row_chunks)):
        args = [b[i] if isinstance(b, list) else b for b in positional]
        states.append(state_fn(name, fixed, host_threads, names, *args, *(b[i] for b in split_kw.values())))
    merge_fn = dask.delayed(_merge_states, pure=True)
    while len(states) > 1:
        states = [merge_fn(*states[i:i + _FAN_IN]) for i in range(0, len(states), _FAN_IN)]
    result = dask.delayed(_result, pure=True)(states[0])
    return result.compute() if compute else result
