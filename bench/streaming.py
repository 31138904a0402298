#!/usr/bin/env python
"""Streaming and cluster evaluation: ``fastloss eval`` against the read
roofline, and ``fastloss.dask.evaluate`` against the same loss written as a
Dask array expression.

    python bench/streaming.py [--gb 1] [--dask-gb 4] [--threads 2] [--dir DIR] [--no-dask]

1. ``fastloss eval mse_loss x.npy y.npy`` over ``--gb`` GB of float32 (two
   files, warm page cache: each is read once first), timed in-process (best
   of 3), against two rooflines measured in the same run:

   - the in-memory read roofline (strict): fastloss's own blocked sum over an
     in-memory array of the same bytes (best of 5);
   - the page-cache roofline: the fastest way found to get the files' bytes
     from the page cache through the CPU at all, with no loss computed (best
     of 3 of each, the faster counts): the same memory-mapped blocks as
     ``fastloss eval`` (pages mapped with ``MADV_POPULATE_READ``, dropped with
     ``MADV_DONTNEED``) with the blocked sum over each, and ``os.preadv``
     into two reused 8 MB buffers (one thread per file) with the blocked sum.

   and a breakdown of one eval pass: mapping the pages, the loss kernel
   (``Accumulator.update``), dropping the pages, and the rest (Python).
2. On a ``LocalCluster`` of 2 process workers x 1 thread: mse over
   ``--dask-gb`` GB of float32 persisted in the workers' memory,
   ``fastloss.dask.evaluate`` vs ``((x - y) ** 2).mean()`` (best of 3 each,
   same arrays, results compared).

Files are written to ``--dir`` (default: a temporary directory, removed at
the end)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import fastloss
from fastloss import _elementwise
from fastloss._cli import main as cli

COLS = 64  # float32 values per row


def _write(path, rows, seed):
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, COLS))
    rng = np.random.default_rng(seed)
    step = 1 << 18
    for lo in range(0, rows, step):
        arr[lo:lo + step] = rng.standard_normal((min(step, rows - lo), COLS), dtype=np.float32)
    arr.flush()
    del arr


def _warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _breakdown(paths, threads):
    """One pass of fastloss eval's loop (same blocks, same calls), each phase
    timed: (map, kernel, release, total) seconds."""
    from fastloss._eval import DEFAULT_BLOCK_BYTES, NpyFile

    fastloss.set_num_threads(threads)
    files = [NpyFile(p) for p in paths]
    try:
        rows = files[0].rows_total
        chunk = max(1, DEFAULT_BLOCK_BYTES // files[0].row_bytes)
        acc = fastloss.Accumulator("mse_loss")
        phases = [0.0, 0.0, 0.0]
        start = time.perf_counter()
        for lo in range(0, rows, chunk):
            hi = min(lo + chunk, rows)
            t0 = time.perf_counter()
            blocks = [f.rows(lo, hi) for f in files]
            t1 = time.perf_counter()
            acc.update(*blocks)
            t2 = time.perf_counter()
            for f in files:
                f.release(lo, hi)
            t3 = time.perf_counter()
            phases[0] += t1 - t0
            phases[1] += t2 - t1
            phases[2] += t3 - t2
        total = time.perf_counter() - start
        del blocks
    finally:
        for f in files:
            f.close()
    return (*phases, total)


def _mapped_sum(paths):
    """eval's memory-mapped blocks with the blocked sum instead of the loss."""
    from fastloss._eval import DEFAULT_BLOCK_BYTES, NpyFile

    files = [NpyFile(p) for p in paths]
    try:
        rows = files[0].rows_total
        chunk = max(1, DEFAULT_BLOCK_BYTES // files[0].row_bytes)
        for lo in range(0, rows, chunk):
            hi = min(lo + chunk, rows)
            for f in files:
                _elementwise.total(f.rows(lo, hi))
                f.release(lo, hi)
    finally:
        for f in files:
            f.close()


def _pread_sum(paths, pool, buffer_bytes=8 << 20):
    """os.preadv of each file into a reused buffer (one thread per file;
    preadv releases the GIL), the blocked sum over each buffer."""
    def one(path):
        buf = np.empty(buffer_bytes // 4, np.float32)
        view = memoryview(buf).cast("B")
        offset, end = _header_bytes(path), os.path.getsize(path)
        with open(path, "rb") as f:
            fd = f.fileno()
            while offset < end:
                n = os.preadv(fd, [view[:min(buffer_bytes, end - offset)]], offset)
                if n <= 0:
                    raise OSError(f"{path}: short read")
                _elementwise.total(buf[:n // 4])
                offset += n

    list(pool.map(one, paths))


def _header_bytes(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        return f.tell()


def bench_eval(directory, gb, threads):
    import contextlib
    import io
    from concurrent.futures import ThreadPoolExecutor

    rows = int(gb * 1e9) // (2 * 4 * COLS)
    x, y = os.path.join(directory, "x.npy"), os.path.join(directory, "y.npy")
    _write(x, rows, 1)
    _write(y, rows, 2)
    for p in (x, y):
        _warm(p)
    argv = ["eval", "mse_loss", x, y, "--quiet", "--threads", str(threads)]
    with contextlib.redirect_stdout(io.StringIO()):
        seconds = _best(lambda: cli(argv), 3)
    nbytes = 2 * rows * COLS * 4
    phases = min((_breakdown((x, y), threads) for _ in range(3)), key=lambda p: p[3])
    fastloss.set_num_threads(threads)
    t_mapped = _best(lambda: _mapped_sum((x, y)), 3)
    with ThreadPoolExecutor(2) as pool:
        t_pread = _best(lambda: _pread_sum((x, y), pool), 3)
    file_roof = min(t_mapped, t_pread)
    probe = np.ones(2 * rows * COLS, np.float32)
    roof = _best(lambda: _elementwise.total(probe), 5)
    del probe

    def rate(t):
        return f"{t * 1e3:.0f} ms = {nbytes / t / 1e9:.1f} GB/s"

    print(f"fastloss eval mse_loss over {nbytes / 1e9:.2f} GB float32 (warm cache, {threads} threads): {rate(seconds)}")
    print(f"  in-memory read roofline (blocked sum over an in-memory array): {rate(roof)}: "
          f"{100 * roof / seconds:.0f} % of it")
    print(f"  page-cache roofline (the files' bytes through the CPU, no loss): {rate(file_roof)} "
          f"[mapped blocks + sum {t_mapped * 1e3:.0f} ms, preadv into 8 MB buffers + sum {t_pread * 1e3:.0f} ms]: "
          f"{100 * file_roof / seconds:.0f} % of it")
    mapping, kernel, release, total = phases
    print(f"  one eval pass ({total * 1e3:.0f} ms): mapping the pages {mapping * 1e3:.0f} ms, loss kernel "
          f"{kernel * 1e3:.0f} ms, dropping the pages {release * 1e3:.0f} ms, "
          f"rest {(total - mapping - kernel - release) * 1e3:.0f} ms")
    return x, y


def bench_dask(gb):
    import dask.array as da
    import distributed

    import fastloss.dask

    rows = int(gb * 1e9) // (2 * 4 * COLS)
    block = 1 << 18  # rows: 64 MB per block and array
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        # The data live in the workers' memory (persisted), as a cluster's
        # inputs do after loading: both sides time the evaluation only.
        rng = da.random.default_rng(0)
        x = rng.standard_normal((rows, COLS), dtype=np.float32, chunks=(block, COLS))
        y = rng.standard_normal((rows, COLS), dtype=np.float32, chunks=(block, COLS))
        x, y = client.persist([x, y])
        distributed.wait([x, y])
        ours = fastloss.dask.evaluate("mse_loss", x, y)  # (also warms the workers)
        expr = ((x - y) ** 2).mean().compute()
        t_ours = _best(lambda: fastloss.dask.evaluate("mse_loss", x, y), 3)
        t_expr = _best(lambda: ((x - y) ** 2).mean().compute(), 3)
    nbytes = 2 * rows * COLS * 4
    print(f"mse over {nbytes / 1e9:.2f} GB float32 in the memory of 2 process workers x 1 thread: "
          f"fastloss.dask.evaluate {t_ours * 1e3:.0f} ms, Dask array expression ((x - y) ** 2).mean() "
          f"{t_expr * 1e3:.0f} ms: {t_expr / t_ours:.1f}x; values {float(ours):.9g} vs {float(expr):.9g} "
          f"(relative difference {abs(ours - expr) / abs(expr):.1e})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="data for fastloss eval (GB, default 1)")
    parser.add_argument("--dask-gb", type=float, default=4.0, help="data for the Dask comparison (GB, default 4)")
    parser.add_argument("--threads", type=int, default=2, help="threads for fastloss eval (default 2)")
    parser.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask comparison")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="fastloss-bench-")
    try:
        x, y = bench_eval(directory, args.gb, args.threads)
        for p in (x, y):
            os.remove(p)
        if not args.no_dask:
            bench_dask(args.dask_gb)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
