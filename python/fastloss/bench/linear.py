"""``fastloss bench --lce``: linear_cross_entropy at a language-model head's
shape (default N=8192 rows, H=1024 features, V=32000 classes, float32),
forward + backward, against torch's fused ``F.linear_cross_entropy`` (with
``LinearCrossEntropyOptions()``: its chunked path) and torch's unfused
``F.linear`` + ``F.cross_entropy`` (the logits materialised).

Each peer runs in a fresh interpreter (``python -m fastloss.bench.linear
--child ...``), so one's allocator state and thread pools do not touch
another's. Memory: the resident-set high-water mark (``VmHWM``) of the first
call minus the resident set just before it (inputs already made), i.e. the
call's peak extra memory *including* the gradients it returns (``grad_input``
and ``grad_linear_weight``, the same for every peer). Time: the median of
``repeat`` calls after one warm-up, wall clock, every peer with the same
threads (fastloss and NumPy's BLAS, or torch's intra-op threads)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PEERS = ("fastloss", "torch_fused", "torch_unfused")
LABELS = {
    "fastloss": "fastloss.linear_cross_entropy_value_and_grad",
    "torch_fused": "torch F.linear_cross_entropy(options=LinearCrossEntropyOptions())",
    "torch_unfused": "torch F.linear + F.cross_entropy",
}
DEFAULT_SHAPE = (8192, 1024, 32000)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak():
    """Resets VmHWM to the current resident set (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(peer, n, h, v, dtype, repeat, threads):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h), dtype=np.float32).astype(dtype)
    w = (rng.standard_normal((v, h), dtype=np.float32) / np.sqrt(h)).astype(dtype)
    t = rng.integers(0, v, n)
    if peer == "fastloss":
        import fastloss

        if threads:
            fastloss.set_num_threads(threads)

        def call():
            return fastloss.linear_cross_entropy_value_and_grad(x, w, t)
    else:
        import torch

        if threads:
            torch.set_num_threads(threads)
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w).requires_grad_()
        tt = torch.from_numpy(t)
        options = torch.nn.LinearCrossEntropyOptions() if peer == "torch_fused" else None

        def call():
            tx.grad = tw.grad = None
            if options is None:
                loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(tx, tw), tt)
            else:
                loss = torch.nn.functional.linear_cross_entropy(tx, tw, tt, options=options)
            loss.backward()
            return loss.item(), (tx.grad, tw.grad)

    before = _status_kib("VmRSS")
    exact = _reset_peak()
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    peak = _status_kib("VmHWM") - before
    value = float(result[0])
    del result
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        r = call()
        times.append(time.perf_counter() - start)
        del r
    times.sort()
    return {"peer": peer, "value": value, "peak_extra_bytes": peak * 1024, "peak_exact": exact,
            "first_s": first, "median_s": times[len(times) // 2], "min_s": times[0], "max_s": times[-1]}


def run(shape=DEFAULT_SHAPE, dtype="float32", repeat=3, threads=None, peers=PEERS, progress=None):
    """Runs every peer in its own process; returns ``{"shape", "dtype", "rows": [...], "load": ...}``."""
    n, h, v = shape
    rows = []
    for peer in peers:
        if progress:
            progress(f"{peer} ...")
        cmd = [sys.executable, "-m", "fastloss.bench.linear", "--child", peer, "--shape", str(n), str(h), str(v),
               "--dtype", dtype, "--repeat", str(repeat)]
        if threads:
            cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            rows.append({"peer": peer, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                         else f"exit {proc.returncode}"})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"shape": list(shape), "dtype": dtype, "repeat": repeat, "threads": threads, "rows": rows,
            "load": os.getloadavg()}


def print_report(result, file=None):
    file = file or sys.stdout
    n, h, v = result["shape"]
    print(f"linear_cross_entropy forward+backward, N={n} H={h} V={v} {result['dtype']}, 'mean', "
          f"median of {result['repeat']} (load average {result['load'][0]:.1f})", file=file)
    rows = {r["peer"]: r for r in result["rows"]}
    ours = rows.get("fastloss")
    header = f"{'peer':<66} {'time (s)':>10} {'peak extra (MiB)':>17} {'time ×':>7} {'memory ×':>9}"
    print(header, file=file)
    print("-" * len(header), file=file)
    for peer in result["rows"]:
        label = LABELS.get(peer["peer"], peer["peer"])
        if "error" in peer:
            print(f"{label:<66} error: {peer['error']}", file=file)
            continue
        speed = memory = ""
        if ours and "error" not in ours:
            speed = f"{peer['median_s'] / ours['median_s']:.2f}"
            memory = f"{peer['peak_extra_bytes'] / max(1, ours['peak_extra_bytes']):.2f}"
        print(f"{label:<66} {peer['median_s']:>10.3f} {peer['peak_extra_bytes'] / 2**20:>17.0f} "
              f"{speed:>7} {memory:>9}", file=file)
    print("peak extra = resident-set high-water mark of the first call minus the resident set before it "
          "(includes the returned gradients); ×: peer / fastloss (above 1: fastloss better)", file=file)


def _main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastloss.bench.linear")
    p.add_argument("--child", choices=PEERS)
    p.add_argument("--shape", type=int, nargs=3, default=DEFAULT_SHAPE, metavar=("N", "H", "V"))
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, *args.shape, args.dtype, args.repeat, args.threads)))
        return 0
    print_report(run(tuple(args.shape), args.dtype, args.repeat, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
