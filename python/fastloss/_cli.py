"""The ``fastloss`` command line: ``list``, ``check`` and ``bench``.

    fastloss list                      # registered losses
    fastloss check [--losses ...]      # self-test against fastloss.reference
    fastloss bench [--quick] [...]     # see fastloss.benchmark and bench/README.md

Everything is driven by the loss registry (``fastloss._api.REGISTRY``)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import zlib

import numpy as np

from ._api import REGISTRY

# check: max |fastloss - reference| / max |reference| allowed, per dtype.
CHECK_TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
CHECK_REDUCTIONS = ("none", "mean", "sum")


def _count(text):
    """An element count: 1048576, 1_048_576, 2**20, 2^20 or 1<<20."""
    s = text.strip().replace("_", "")
    m = re.fullmatch(r"(\d+)\s*(?:\*\*|\^|<<)\s*(\d+)", s)
    try:
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            n = a << b if "<<" in s else a**b
        else:
            n = int(s)
    except ValueError:
        n = 0
    if n < 1 or n > 1 << 40:
        raise argparse.ArgumentTypeError(f"expected a positive element count (e.g. 1048576, 2**20), got {text!r}")
    return n


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return n


def _loss_names(parser, names):
    if not names:
        return list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown loss(es): {', '.join(unknown)} (registered: {', '.join(REGISTRY)})")
    return list(dict.fromkeys(names))


def _table(*args, **kwargs):
    from .benchmark import print_table

    print_table(*args, **kwargs)


# -------------------------------------------------------------------- list


def _cmd_list(args, parser):
    rows = [(s.name, f"nn.{s.class_name}", s.family, ", ".join(s.grads)) for s in REGISTRY.values()]
    _table(f"{len(rows)} registered losses", ["name", "class", "family", "differentiable inputs"], rows, left=4)
    return 0


# ------------------------------------------------------------------- check


def _as_tuple(grads, count):
    if count == 1 and not isinstance(grads, tuple):
        return (grads,)
    return tuple(grads)


def _error(got, want, dtype, what, notes):
    """max |got - want| / max |want| (NaNs must sit at the same places);
    also checks shape and dtype. Returns inf on a structural mismatch."""
    if want is None or got is None:
        if want is None and got is None:
            return 0.0
        notes.append(f"{what}: got {type(got).__name__}, reference {type(want).__name__}")
        return np.inf
    g = np.asarray(got)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        notes.append(f"{what}: shape {g.shape}, reference {w.shape}")
        return np.inf
    if g.dtype != dtype:
        notes.append(f"{what}: dtype {g.dtype}, expected {dtype}")
        return np.inf
    g = g.astype(np.float64)
    gn, wn = np.isnan(g), np.isnan(w)
    if not np.array_equal(gn, wn):
        notes.append(f"{what}: NaN at other places than the reference")
        return np.inf
    g, w = g[~wn], w[~wn]
    if g.size == 0:
        return 0.0
    finite = np.isfinite(w)
    if not np.array_equal(np.isfinite(g), finite) or np.any(g[~finite] != w[~finite]):
        notes.append(f"{what}: infinities differ from the reference")
        return np.inf
    g, w = g[finite], w[finite]
    if g.size == 0:
        return 0.0
    diff = float(np.max(np.abs(g - w)))
    scale = float(np.max(np.abs(w)))
    return diff / scale if scale > 0 else diff


def _check_case(spec, arrays, options, rng, dtype, notes):
    """Errors of forward, backward and value_and_grad (plus its out= form)."""
    grad_dtypes = [arrays[spec.arrays.index(g)].dtype if isinstance(arrays[spec.arrays.index(g)], np.ndarray)
                   else None for g in spec.grads]
    n = len(spec.grads)
    errors = {}
    step = "reference forward"
    try:
        want = spec.reference(*arrays, **options)
        # A scalar grad_output for reduced losses, random ones for 'none'.
        if np.ndim(want) == 0:
            gout = 0.75
        else:
            gout = rng.uniform(0.5, 1.5, np.shape(want)).astype(dtype)
        step = "reference backward"
        want_grads = _as_tuple(spec.reference_backward(*arrays, grad_output=gout, **options), n)

        step = "forward"
        errors["forward"] = _error(spec.forward(*arrays, **options), want, dtype, "forward", notes)

        step = "backward"
        grads = _as_tuple(spec.backward(*arrays, grad_output=gout, **options), n)
        errors["backward"] = max(_error(g, w, d, f"backward[{name}]", notes)
                                 for g, w, d, name in zip(grads, want_grads, grad_dtypes, spec.grads))

        step = "value_and_grad"
        value, grads = spec.value_and_grad(*arrays, grad_output=gout, **options)
        grads = _as_tuple(grads, n)
        err = max([_error(value, want, dtype, "value_and_grad value", notes)]
                  + [_error(g, w, d, f"value_and_grad[{name}]", notes)
                     for g, w, d, name in zip(grads, want_grads, grad_dtypes, spec.grads)])

        step = "value_and_grad(out=)"
        bufs = [None if d is None else np.full(np.shape(arrays[spec.arrays.index(g)]), np.nan, d)
                for g, d in zip(spec.grads, grad_dtypes)]
        out = bufs[0] if n == 1 else tuple(bufs)
        value, grads = spec.value_and_grad(*arrays, grad_output=gout, out=out, **options)
        grads = _as_tuple(grads, n)
        for g, b, name in zip(grads, bufs, spec.grads):
            if b is not None and g is not b:
                notes.append(f"value_and_grad(out=)[{name}]: did not return the out= array")
                err = np.inf
        err = max([err, _error(value, want, dtype, "value_and_grad(out=) value", notes)]
                  + [_error(b, w, d, f"value_and_grad(out=)[{name}]", notes)
                     for b, w, d, name in zip(bufs, want_grads, grad_dtypes, spec.grads)])
        errors["value_and_grad"] = err
    except Exception as exc:  # noqa: BLE001 - any failure is a FAIL row, not a crash
        notes.append(f"{step} raised {type(exc).__name__}: {exc}")
        errors.setdefault(step.split("(")[0] if step.startswith("value") else step, np.inf)
    return errors


def _cmd_check(args, parser):
    names = _loss_names(parser, args.losses)
    try:
        from . import reference  # noqa: F401
    except ImportError as exc:
        print(f"fastloss check: cannot import fastloss.reference ({exc})", file=sys.stderr)
        return 1
    headers = ["loss", "dtype", "reduction", "forward", "backward", "value_and_grad", "result"]
    rows, failures = [], []
    for name in names:
        spec = REGISTRY[name]
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            tol = CHECK_TOLERANCE[dtype.name]
            rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
            try:
                arrays, options = spec.sample(rng, args.size, dtype)
            except Exception as exc:  # noqa: BLE001
                rows.append([name, dtype.name, "-", "-", "-", "-", ("FAIL", "bold red")])
                failures.append(f"{name} {dtype.name}: sample raised {type(exc).__name__}: {exc}")
                continue
            reductions = CHECK_REDUCTIONS if "reduction" in spec.options else (None,)
            for red in reductions:
                opts = dict(options)
                if red is not None:
                    opts["reduction"] = red
                notes = []
                errors = _check_case(spec, tuple(arrays), opts, rng, dtype, notes)
                ok = not notes and all(errors.get(k, np.inf) <= tol
                                       for k in ("forward", "backward", "value_and_grad"))
                cells = []
                for k in ("forward", "backward", "value_and_grad"):
                    e = errors.get(k)
                    text = "-" if e is None else ("inf" if not np.isfinite(e) else f"{e:.1e}")
                    cells.append((text, "red" if e is None or e > tol else ""))
                rows.append([name, dtype.name, red or "-", *cells,
                             ("PASS", "green") if ok else ("FAIL", "bold red")])
                if not ok:
                    detail = "; ".join(notes) or f"error above {tol:g}"
                    failures.append(f"{name} {dtype.name} {red or ''}: {detail}")
    _table(f"fastloss check: {len(names)} loss(es) vs fastloss.reference, size {args.size}",
           headers, rows, left=3,
           caption="max |fastloss - reference| / max |reference|; tolerance "
                   + ", ".join(f"{k} {v:g}" for k, v in CHECK_TOLERANCE.items()))
    for f in failures:
        print(f"FAIL {f}")
    print(f"{len(rows) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


# ------------------------------------------------------------------- bench


def _cmd_bench(args, parser):
    from . import benchmark

    names = _loss_names(parser, args.losses)
    ncpu = len(benchmark.usable_cpus())
    if args.threads is not None and args.threads > ncpu:
        parser.error(f"--threads {args.threads}: this process may use {ncpu} CPU(s)")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib (pip install 'fastloss[bench]')")

    def progress(msg):
        if not args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    result = benchmark.run(names, size=args.size, dtype=args.dtype, threads=args.threads, repeat=args.repeat,
                           quick=args.quick, peers=args.peers, best=not args.no_best, progress=progress)
    benchmark.print_report(result)
    if args.json:
        benchmark.write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        benchmark.plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 1 if any(e["impl"].startswith("fastloss") for e in result["errors"]) else 0


# ------------------------------------------------------------------ parser


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastloss",
        description="torch.nn loss functions, forward and backward, as SIMD/OpenMP kernels for NumPy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="registered losses")
    p.set_defaults(func=_cmd_list, parser=p)

    p = sub.add_parser("check", help="self-test: every loss against fastloss.reference (exit 1 on a mismatch)")
    p.add_argument("--losses", nargs="+", metavar="NAME", help="losses to check (default: all)")
    p.add_argument("--size", type=_count, default=4099, metavar="N", help="elements per sample (default 4099)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_cmd_check, parser=p)

    p = sub.add_parser(
        "bench", help="time forward/backward/fused vs the NumPy reference, torch and JAX",
        description="Times every loss (forward, backward, value_and_grad with and without out=) "
                    "against the NumPy reference and torch/JAX when installed, all with the same "
                    "threads, plus an in-run memory-bandwidth probe. See bench/README.md.",
    )
    p.add_argument("--quick", action="store_true", help="small run: 2**20 elements, 5 repeats (< 1 min)")
    p.add_argument("--losses", nargs="+", metavar="NAME", help="losses to time (default: all)")
    p.add_argument("--threads", type=_positive, metavar="N", help="threads for everyone (default: the CPUs this process may use)")
    p.add_argument("--size", type=_count, metavar="N", help="elements per input array (default 2**24; --quick 2**20)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    p.add_argument("--repeat", type=_positive, metavar="R", help="timed calls per case, median reported (default 7; --quick 5)")
    p.add_argument("--peers", nargs="*", choices=("numpy", "torch", "jax"),
                   help="peers to time (default: numpy reference, torch and jax when installed)")
    p.add_argument("--no-best", action="store_true",
                   help="skip the allocator-tuned 'best' re-measurement (mallopt)")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--plot", metavar="PNG", help="bar chart of the speed-ups (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_cmd_bench, parser=p)
    return parser


def main(argv=None):
    """Entry point of the ``fastloss`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args, args.parser)
    except BrokenPipeError:  # e.g. `fastloss bench | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
