"""``run()``: the whole benchmark, from pinning the threads to the result dict.

For each loss, in each allocator configuration ("as_run", then "best" with
:func:`.machine.tuned_malloc`), fastloss's cases, the peers' cases and the
bandwidth probe's cases are timed together round-robin (:mod:`.timing`)."""

from __future__ import annotations

import datetime
import gc
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastloss
from .. import _core
from .._api import REGISTRY
from . import machine, peers as peers_mod
from . import progress as progress_mod
from .roofline import Probe, roofline_seconds
from .timing import spread, time_cases
from .workload import OPS, Data, bench_rows, fastloss_cases

__all__ = ["run", "DTYPES", "REDUCTIONS", "DEFAULT_SIZE", "QUICK_SIZE", "DEFAULT_REPEAT", "QUICK_REPEAT"]

DTYPES = ("float32", "float64", "float16")
REDUCTIONS = ("mean", "sum", "none")
DEFAULT_SIZE = 1 << 24
QUICK_SIZE = 1 << 20
DEFAULT_REPEAT = 7
QUICK_REPEAT = 5


def _measure(names, config, size, dtype, reduction, repeat, peers, rows, errors, skipped, probe, probes, bar):
    """Times every loss of ``names`` in one configuration. The bandwidth probe
    runs in each loss's round-robin, so its roofline shares the loss's
    conditions on a noisy machine; ``probes`` collects the probe results."""
    label = "as run" if config == "as_run" else "tuned malloc"
    for name, spec, sample in bench_rows(names):
        bar.step(f"{name} ({label})")
        try:
            data = Data(spec, size, dtype, reduction, sample)
            value = spec.forward(*data.arrays, **data.options)
        except Exception as exc:  # noqa: BLE001 - one broken loss must not stop the run
            errors.append({"loss": name, "impl": "fastloss", "config": config,
                           "error": f"{type(exc).__name__}: {exc}"})
            continue
        traffic = data.op_traffic(value)
        op_bytes = {op: sum(rw) for op, rw in traffic.items()}
        by_op = {op: {} for op in OPS}
        for op, case in fastloss_cases(spec, data, config, repeat).items():
            by_op[op][case.key[0]] = case
        for peer in peers.values():
            try:
                for op, case in peer.cases(spec, data, config, repeat).items():
                    by_op[op][case.key[0]] = case
            except peers_mod.Skip as why:
                if config == "as_run":
                    skipped.append({"loss": name, "impl": peer.name, "reason": str(why)})
            except Exception as exc:  # noqa: BLE001
                errors.append({"loss": name, "impl": peer.name, "config": config,
                               "error": f"{type(exc).__name__}: {exc}"})
        unique = {id(c): c for cases in by_op.values() for c in cases.values()}
        probe_cases = probe.cases(repeat)
        time_cases(list(unique.values()) + probe_cases)
        bandwidth = probe.summary(probe_cases) or probes[0]
        probes.append(dict(bandwidth, loss=name, config=config))
        for op in OPS:
            row = rows.setdefault((name, op), {"loss": name, "op": op, "bytes": op_bytes[op], "peers": {}})
            for impl, case in by_op[op].items():
                if case.error is not None:
                    errors.append({"loss": name, "impl": impl, "op": op, "config": config, "error": case.error})
                    continue
                entry = spread(case.times)
                entry["times"] = list(case.times)
                entry["gbps"] = op_bytes[op] / entry["seconds"] / 1e9
                if case.key[1] != op:
                    entry["same_as"] = case.key[1]
                if impl.startswith("fastloss"):
                    roof = roofline_seconds(bandwidth, *traffic[op])
                    entry["roofline_seconds"] = roof
                    entry["roofline_gbps"] = op_bytes[op] / roof / 1e9
                    entry["roofline_pct"] = 100.0 * roof / entry["seconds"]
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


def run(losses=None, *, size=None, dtype="float32", reduction="mean", threads=None, repeat=None, quick=False,
        peers=None, best=True, progress=None):
    """Runs the benchmark; returns a JSON-ready dict (``meta``, ``bandwidth``,
    ``results``, ``skipped``, ``errors``; the numbers are described in
    :mod:`fastloss.bench`).

    ``losses``: registry names (default all); ``size``: elements per input
    array (default 2**24, 2**20 with ``quick``); ``dtype``: float32, float64
    or float16 (fastloss computes float16 in float32; peers in float16 where
    they can); ``reduction``: mean, sum or none; ``threads``: for everyone
    (default: the CPUs this process may use); ``repeat``: timed calls per case
    (default 7, 5 with ``quick``); ``peers``: subset of ``("numpy", "torch",
    "jax")``, each of which must then be importable (default: those
    installed); ``best``: also time with the tuned allocator; ``progress``: a
    :class:`.progress.Progress` (default: plain lines on stderr)."""
    names = list(REGISTRY) if not losses else list(losses)
    unknown = [n for n in names if n.partition("[")[0] not in REGISTRY or not bench_rows([n])]
    if unknown:
        raise ValueError(f"losses: unknown {', '.join(unknown)} (registered: {', '.join(REGISTRY)})")
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    size = int(size or (QUICK_SIZE if quick else DEFAULT_SIZE))
    repeat = int(repeat or (QUICK_REPEAT if quick else DEFAULT_REPEAT))
    if size < 1 or repeat < 1:
        raise ValueError("size and repeat must be >= 1")
    wanted = list(peers_mod.PEERS) if peers is None else list(peers)
    required = () if peers is None else wanted
    bar = progress if progress is not None else progress_mod.Progress()

    before = [m for m in ("torch", "jax") if sys.modules.get(m) is not None]
    old_cpus, old_threads = machine.usable_cpus(), fastloss.get_num_threads()
    threads = int(threads or len(old_cpus))
    started = time.perf_counter()
    cpus = machine.pin_threads(threads)
    best_how = "not requested"
    labels = [label for label, _, _ in bench_rows(names)]
    bar.start(2 + len(labels) * (2 if best else 1))
    try:
        bar.step(f"importing peers: {', '.join(wanted) or 'none'}")
        loaded, missing = peers_mod.load(wanted, dtype, threads, required)
        bar.step("memory-bandwidth probe")
        probe = Probe(size, dtype)
        cases = probe.cases(max(repeat, 5))
        time_cases(cases)
        probes = [dict(probe.summary(cases), loss=None, config="start")]
        rows, errors, skipped = {}, [], []
        _measure(names, "as_run", size, dtype, reduction, repeat, loaded, rows, errors, skipped, probe, probes, bar)
        if best:
            with machine.tuned_malloc() as refused:
                if refused is None:
                    best_peers = {k: v for k, v in loaded.items() if k != "numpy"}
                    _measure(names, "best", size, dtype, reduction, repeat, best_peers, rows, errors, skipped,
                             probe, probes, bar)
                    best_how = machine.TUNED_MALLOC
                else:
                    best_how = f"skipped: {refused}"
        _speedups(rows)
        del probe, cases
    finally:
        bar.close()
        if hasattr(os, "sched_setaffinity"):
            machine.set_affinity(old_cpus)
        fastloss.set_num_threads(old_threads)

    meta = {
        "fastloss": fastloss.__version__,
        "isa": _core.current_isa(),
        "available_isas": list(_core.available_isas()),
        "compiler": getattr(_core, "compiler", ""),
        "threads": threads,
        "cpus": cpus,
        "cpu_model": machine.cpu_model(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "dtype": dtype.name,
        "compute_dtype": "float32" if dtype.itemsize < 4 else dtype.name,
        "size": size,
        "reduction": reduction,
        "repeat": repeat,
        "reference_repeat": max(1, min(repeat, peers_mod.REFERENCE_MAX_REPEAT)),
        "quick": bool(quick),
        "losses": names,
        "peers": {k: {"version": v.version, "label": v.label, "how": v.note} for k, v in loaded.items()},
        "peers_missing": missing,
        "peers_imported_before_pinning": before,
        "best": best_how,
        "versions": machine.versions(loaded),
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
        "results": [_ordered(rows[k]) for k in sorted(rows, key=lambda k: (labels.index(k[0]), OPS.index(k[1])))],
        "skipped": skipped,
        "errors": errors,
    }
