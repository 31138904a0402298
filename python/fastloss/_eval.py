"""``fastloss eval LOSS INPUT.npy TARGET.npy ...``: a loss over ``.npy`` files
of any size, read in blocks of rows through a memory map (a
:class:`fastloss.Accumulator` adds them up), with a progress bar on stderr.

Memory stays bounded: the pages of a block are dropped from the process
(``madvise(MADV_DONTNEED)``; the page cache keeps them) once the block is
done, so the resident set grows by about one block per file, not by the
files' size. ``--dask ADDRESS`` sends the blocks to a dask.distributed
cluster instead (the workers open the files themselves: a shared file
system, or the same machine).

Speed with a warm page cache: most of the time goes to the kernel's page
tables, not to the loss. Each 4 KiB page of a block is mapped once
(``MADV_POPULATE_READ``, one call per block) and unmapped once
(``MADV_DONTNEED``): on the 2-core development VM about 70 + 30 ms per GB,
two to three times the in-memory read roofline's time for the same bytes, before the loss
kernel reads them. Measured there and not kept (no faster, or slower):
the two ``madvise`` calls split over 2 threads in C++ without the GIL (the
page-table work did not scale), ``os.preadv`` into reused 4-16 MB buffers
(one thread per file; copying out of the page cache ran at ~5 GB/s per
thread), blocks of 4 to 64 MB (the cost is per page). The Python work per
block (8 blocks per GB) is under a millisecond. The documentation's
performance page compares eval with the in-memory roofline and with a
page-cache roofline (the files' bytes through the CPU with no loss)."""

from __future__ import annotations

import ast
import json
import mmap
import os
import sys
import time

import numpy as np

from ._api import REGISTRY
from .streaming import Accumulator

DEFAULT_BLOCK_BYTES = 64 << 20  # rows per block: about this much of the first file
# Linux 5.14+: map a block's (cached) pages in one call instead of a fault per
# 64 KB as the kernel reads them (~15 % of the time of a warm-cache block).
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform.startswith("linux") else None)


class NpyFile:
    """A ``.npy`` file mapped read-only: ``rows(lo, hi)`` is a zero-copy view
    of rows ``lo:hi`` (C order) and ``release(lo, hi)`` drops their pages
    from this process."""

    def __init__(self, path):
        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise ValueError(f"{path}: cannot open ({e.strerror})") from None
        try:
            version = np.lib.format.read_magic(self._file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(self._file)
        except Exception as e:  # noqa: BLE001 - any parse failure is "not a .npy file"
            self._file.close()
            raise ValueError(f"{path}: not a .npy file ({e})") from None
        if dtype.hasobject:
            self._file.close()
            raise ValueError(f"{path}: holds Python objects (dtype {dtype}); expected numbers")
        self.shape, self.dtype, self.fortran = tuple(shape), dtype, fortran
        self.offset = self._file.tell()
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if os.fstat(self._file.fileno()).st_size < self.offset + nbytes:
            self._file.close()
            raise ValueError(f"{path}: truncated (its header says {shape} {dtype})")
        self._map = None
        self._array = None
        if nbytes:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            order = "F" if fortran else "C"
            self._array = np.ndarray(shape, dtype, buffer=self._map, offset=self.offset, order=order)
        else:
            self._array = np.empty(shape, dtype)
        self.row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)) if shape else dtype.itemsize

    @property
    def rows_total(self):
        return self.shape[0] if self.shape else None

    def rows(self, lo, hi):
        """Rows lo:hi (a view), their pages mapped in one go first."""
        if not self.shape:
            return self._array
        self._advise(_MADV_POPULATE_READ, lo, hi)
        return self._array[lo:hi]

    def _advise(self, advice, lo, hi):
        if advice is None or self._map is None or self.fortran or not hasattr(self._map, "madvise"):
            return
        page = mmap.PAGESIZE
        start = self.offset + lo * self.row_bytes
        stop = min(self.offset + hi * self.row_bytes, len(self._map))
        start -= start % page
        if stop > start:
            try:
                self._map.madvise(advice, start, stop - start)
            except OSError:  # an older kernel without this advice: the reads fault the pages in instead
                pass

    def release(self, lo, hi):
        """Drops rows lo:hi's pages from this process's resident set."""
        if self.shape:
            self._advise(getattr(mmap, "MADV_DONTNEED", None), lo, hi)

    def close(self):
        self._array = None
        if self._map is not None:
            self._map.close()
        self._file.close()


def _option(text):
    """``k=v``: v as a Python literal (numbers, True, None, strings), inf and
    nan as floats, a ``.npy`` path as its array, anything else as a string."""
    if "=" not in text:
        raise ValueError(f"--option {text!r}: expected NAME=VALUE")
    key, value = text.split("=", 1)
    if not key.isidentifier():
        raise ValueError(f"--option {text!r}: expected NAME=VALUE with an option name")
    if value.endswith(".npy"):
        try:
            return key, np.load(value)
        except (OSError, ValueError) as e:
            raise ValueError(f"--option {key}: cannot read {value} ({e})") from None
    if value.strip().lower() in ("inf", "+inf", "-inf", "nan", "infinity", "-infinity"):
        return key, float(value)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


class _Bar:
    """rows/s and ETA on stderr: tqdm, else rich, else a line per second."""

    def __init__(self, total, quiet):
        self._impl = None
        self._plain = None
        if quiet:
            return
        try:
            from tqdm import tqdm

            self._impl = tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True,
                              desc="eval")
            return
        except ImportError:
            pass
        self._plain = [total, 0, time.perf_counter(), 0.0]

    def update(self, n):
        if self._impl is not None:
            self._impl.update(n)
        elif self._plain is not None:
            total, done, start, last = self._plain
            done += n
            now = time.perf_counter()
            if now - last >= 1.0 or done == total:
                rate = done / max(now - start, 1e-9)
                eta = (total - done) / rate if rate else float("inf")
                print(f"[eval] {done}/{total} rows, {rate:,.0f} rows/s, ETA {eta:.0f} s", file=sys.stderr,
                      flush=True)
                last = now
            self._plain = [total, done, start, last]

    def close(self):
        if self._impl is not None:
            self._impl.close()


def run(args, parser):
    """The ``eval`` command; returns the exit code."""
    spec = REGISTRY.get(args.loss)
    if spec is None:
        parser.error(f"unknown loss {args.loss!r} (registered: {', '.join(REGISTRY)})")
    if args.threads:
        from . import set_num_threads

        set_num_threads(args.threads)
    files = []
    try:
        options = dict(_option(o) for o in args.option or ())
        for path in args.files:
            files.append(NpyFile(path))
        return _evaluate(args, spec, files, options)
    except (ValueError, TypeError, IndexError) as e:
        print(f"fastloss eval: {e}", file=sys.stderr)
        return 2
    finally:
        for f in files:
            f.close()


def _evaluate(args, spec, files, options):
    if len(files) > len(spec.arrays):
        raise ValueError(f"{spec.name} takes {len(spec.arrays)} arrays ({', '.join(spec.arrays)}); "
                         f"got {len(files)} files")
    if len(files) < len(spec.arrays):
        missing = ", ".join(spec.arrays[len(files):])
        raise ValueError(f"{spec.name}: missing file(s) for {missing}")
    first = files[0]
    if not first.shape:
        raise ValueError(f"{first.path}: a 0-d array has no rows to stream")
    rows = first.rows_total
    for f in files[1:]:
        if f.shape and f.shape[0] != rows and f.shape[0] != 1:
            raise ValueError(f"{f.path}: {f.shape[0]} rows, but {first.path} has {rows}")
    chunk = args.chunk or max(1, DEFAULT_BLOCK_BYTES // max(1, first.row_bytes))
    start = time.perf_counter()
    if args.dask:
        value, acc = _evaluate_dask(args.dask, spec, files, options, chunk), None
    else:
        acc = Accumulator(spec.name, **options)
        bar = _Bar(rows, args.quiet)
        try:
            for lo in range(0, max(rows, 1), chunk):
                hi = min(lo + chunk, rows)
                blocks = [f.rows(lo, hi) if f.shape and f.shape[0] == rows else f.rows(0, f.rows_total)
                          for f in files]
                acc.update(*blocks)
                for f in files:
                    if f.shape and f.shape[0] == rows:
                        f.release(lo, hi)
                bar.update(hi - lo)
        finally:
            bar.close()
        value = acc.result()
    seconds = time.perf_counter() - start
    if args.json:
        record = {
            "loss": spec.name,
            "value": float(value),
            "dtype": np.asarray(value).dtype.name,
            "rows": rows,
            "chunk_rows": chunk,
            "chunks": -(-rows // chunk) if rows else 0,
            "seconds": seconds,
            "rows_per_second": rows / seconds if seconds > 0 else None,
            "bytes_read": sum(f.row_bytes * (f.rows_total or 1) for f in files),
            "options": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in options.items()},
            "files": [f.path for f in files],
            "dask": args.dask,
        }
        if acc is not None:
            state = acc.state()
            record["total"] = state["total"][0] + state["total"][1] + state["total"][2]
            record["denominator"] = state["denominator"][0] + state["denominator"][1]
        print(json.dumps(record))
    else:
        print(repr(float(value)))
    return 0


def _load_rows(path, lo, hi):
    """Rows lo:hi of a .npy file (a worker's copy of its block)."""
    return np.array(np.load(path, mmap_mode="r")[lo:hi])


def _evaluate_dask(address, spec, files, options, chunk):
    import dask
    import dask.array as da
    from distributed import Client

    from . import dask as fl_dask

    arrays = []
    for f in files:
        path = os.path.abspath(f.path)
        if not f.shape or f.shape[0] != files[0].rows_total:
            arrays.append(np.array(f.rows(0, f.rows_total)))
            continue
        blocks = []
        for lo in range(0, f.rows_total, chunk):
            hi = min(lo + chunk, f.rows_total)
            blocks.append(da.from_delayed(dask.delayed(_load_rows, pure=True)(path, lo, hi),
                                          shape=(hi - lo,) + f.shape[1:], dtype=f.dtype))
        arrays.append(da.concatenate(blocks) if blocks else da.from_array(np.empty(f.shape, f.dtype)))
    with Client(address):
        return fl_dask.evaluate(spec.name, *arrays, **options)
