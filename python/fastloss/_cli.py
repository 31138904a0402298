"""The ``fastloss`` command line: ``list``, ``config``, ``check``, ``bench``, ``eval`` and ``plot``.

    fastloss --version
    fastloss list                      # registered losses
    fastloss config                    # what fastloss.show_config() prints
    fastloss check [--losses ...]      # self-test against fastloss.reference and torch
    fastloss bench [--quick] [...]     # how it measures: python -m pydoc fastloss.bench
    fastloss eval LOSS X.npy Y.npy     # a loss over files of any size (fastloss._eval)
    fastloss plot LOSS -o out.png      # the loss and its gradient as curves (fastloss._plot)

Everything is driven by the loss registry (``fastloss._api.REGISTRY``).
``list``, ``config`` and ``check`` do not import the benchmark (``fastloss.bench``)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import zlib

import numpy as np

import fastloss
from . import _core
from ._api import REGISTRY
from ._table import print_table as _table

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


# -------------------------------------------------------------------- list


def _cmd_list(args, parser):
    rows = [(s.name, f"nn.{s.class_name}", s.family, ", ".join(s.grads),
             ", ".join(p for p in ("torch", "jax") if getattr(s, p) is not None) or "-") for s in REGISTRY.values()]
    _table(f"{len(rows)} registered losses", ["name", "class", "family", "differentiable inputs", "peers"], rows,
           left=5)
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


def _grad_operand(spec, arrays, options, name):
    """The array the gradient ``name`` is taken for: an array argument, or a
    keyword one (linear_cross_entropy's linear_bias); None when absent."""
    value = arrays[spec.arrays.index(name)] if name in spec.arrays else options.get(name)
    return value if isinstance(value, np.ndarray) else None


def _check_case(spec, arrays, options, rng, dtype, notes):
    """Errors of forward, backward and value_and_grad (plus its out= form)."""
    operands = [_grad_operand(spec, arrays, options, g) for g in spec.grads]
    grad_dtypes = [None if a is None else a.dtype for a in operands]
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
        bufs = [None if a is None else np.full(a.shape, np.nan, a.dtype) for a in operands]
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


def _torch_case(torch, spec, arrays, options, gout, dtype, notes):
    """max error of fastloss's value_and_grad against torch's forward and
    autograd (the registry's ``torch=`` expression) on the same data."""
    def tensor(v):
        if isinstance(v, np.ndarray):
            return torch.from_numpy(np.array(v, dtype=np.int64 if v.dtype.kind in "iu" else v.dtype))
        return v

    try:
        xs = [tensor(a) for a in arrays]
        kw = {k: tensor(v) for k, v in options.items()}
        # the tensors the gradients are taken for: array arguments, or keyword ones (linear_bias)
        wrt = [xs[spec.arrays.index(g)] if g in spec.arrays else kw.get(g) for g in spec.grads]
        for t in wrt:
            if isinstance(t, torch.Tensor):
                t.requires_grad_(True)
        loss = spec.torch(torch, *xs, **kw)
        loss.backward(torch.as_tensor(gout, dtype=loss.dtype).expand_as(loss))
        want = loss.detach().numpy()
        want_grads = [t.grad.numpy() if isinstance(t, torch.Tensor) else None for t in wrt]
    except Exception as exc:  # noqa: BLE001 - torch refusing the data is a FAIL row too
        notes.append(f"torch raised {type(exc).__name__}: {exc}")
        return np.inf
    try:
        value, grads = spec.value_and_grad(*arrays, grad_output=gout, **options)
    except Exception as exc:  # noqa: BLE001
        notes.append(f"value_and_grad raised {type(exc).__name__}: {exc}")
        return np.inf
    grads = _as_tuple(grads, len(spec.grads))
    return max([_error(value, want, dtype, "value vs torch", notes)]
               + [_error(g, w, None if w is None else w.dtype, f"grad[{name}] vs torch", notes)
                  for g, w, name in zip(grads, want_grads, spec.grads)])


def _import_torch(wanted):
    """torch when wanted and importable, else (None, why not)."""
    if not wanted:
        return None, "skipped (--no-torch)"
    if importlib.util.find_spec("torch") is None:
        return None, "not installed, skipped"
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken torch install must not break the self-test
        return None, f"cannot be imported ({type(exc).__name__}: {exc}), skipped"
    return torch, f"torch {torch.__version__}: values and gradients compared"


def _cmd_check(args, parser):
    names = _loss_names(parser, args.losses)
    try:
        from . import reference  # noqa: F401
    except ImportError as exc:
        print(f"fastloss check: cannot import fastloss.reference ({exc})", file=sys.stderr)
        return 1
    torch, torch_status = _import_torch(not args.no_torch)
    print(f"fastloss {fastloss.__version__} check · isa {_core.current_isa()} "
          f"(available: {', '.join(_core.available_isas())}) · {fastloss.get_num_threads()} thread(s)")
    print(f"vs torch: {torch_status}")
    headers = ["loss", "dtype", "reduction", "forward", "backward", "value_and_grad"]
    headers += ["vs torch"] * (torch is not None) + ["result"]
    step_keys = ("forward", "backward", "value_and_grad") + ("torch",) * (torch is not None)
    rows, failures = [], []
    for name in names:
        spec = REGISTRY[name]
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            tol = CHECK_TOLERANCE[dtype.name]
            rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
            try:
                arrays, options = spec.sample(rng, args.size, dtype)
            except Exception as exc:  # noqa: BLE001
                rows.append([name, dtype.name, "-", *("-" for _ in step_keys), ("FAIL", "bold red")])
                failures.append(f"{name} {dtype.name}: sample raised {type(exc).__name__}: {exc}")
                continue
            reductions = CHECK_REDUCTIONS if "reduction" in spec.options else (None,)
            for red in reductions:
                opts = dict(options)
                if red is not None:
                    opts["reduction"] = red
                notes = []
                errors = _check_case(spec, tuple(arrays), opts, rng, dtype, notes)
                if torch is not None:
                    if spec.torch is None:
                        errors["torch"] = None
                    else:
                        want = spec.reference(*arrays, **opts)
                        gout = 0.75 if np.ndim(want) == 0 else rng.uniform(0.5, 1.5, np.shape(want)).astype(dtype)
                        errors["torch"] = _torch_case(torch, spec, tuple(arrays), opts, gout, dtype, notes)
                ok = not notes and all(errors.get(k, np.inf) is None or errors.get(k, np.inf) <= tol
                                       for k in step_keys)
                cells = []
                for k in step_keys:
                    e = errors.get(k, np.inf)
                    if k == "torch" and e is None:
                        cells.append("no torch=")
                        continue
                    text = "inf" if e is None or not np.isfinite(e) else f"{e:.1e}"
                    cells.append((text, "red" if e is None or e > tol else ""))
                rows.append([name, dtype.name, red or "-", *cells,
                             ("PASS", "green") if ok else ("FAIL", "bold red")])
                if not ok:
                    detail = "; ".join(notes) or f"error above {tol:g}"
                    failures.append(f"{name} {dtype.name} {red or ''}: {detail}")
    _table(f"{len(names)} loss(es) vs fastloss.reference" + (" and torch" if torch is not None else "")
           + f", {args.size} elements", headers, rows, left=3,
           caption="max |fastloss - reference| / max |reference| (vs torch: of the value and the gradients, "
                   "against torch's forward and autograd); tolerance "
                   + ", ".join(f"{k} {v:g}" for k, v in CHECK_TOLERANCE.items()))
    for f in failures:
        print(f"FAIL {f}")
    print(f"{len(rows) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


# ------------------------------------------------------------------ config


def _cmd_config(args, parser):
    fastloss.show_config()
    return 0


# ------------------------------------------------------------------- bench


def _bench_arguments(args, parser):
    """Everything that can be found wrong before a run, so a run is never
    lost to a bad path or a missing peer at its end. Returns the saved run
    to compare with (or None)."""
    from .bench import machine, peers, report

    ncpu = len(machine.usable_cpus())
    if args.threads is not None and args.threads > ncpu:
        parser.error(f"--threads {args.threads}: this process may use {ncpu} CPU(s)")
    for name in args.peers or ():
        if not peers.is_installed(name):
            parser.error(f"--peers {name}: {name} is not installed (pip install {name}); "
                         "leave --peers out to time the peers that are installed")
    try:
        if args.plot:
            report.check_plot_path(args.plot)
        for option in ("json", "csv"):
            if getattr(args, option):
                report.check_output(getattr(args, option), f"--{option}")
    except report.OutputError as exc:
        parser.error(str(exc))
    try:
        return report.load(args.compare) if args.compare else None
    except report.OutputError as exc:
        parser.error(f"--compare {exc}")


def _cmd_small_calls(args, parser, names):
    from .bench import small_calls

    if args.threads is not None:
        fastloss.set_num_threads(args.threads)
    wanted = ("torch", "jax") if args.peers is None else tuple(args.peers)
    say = None if args.quiet else (lambda msg: print(f"[small-calls] {msg}", file=sys.stderr, flush=True))
    result = small_calls.run(names, size=args.size or small_calls.DEFAULT_SIZE,
                             dtype="float32" if args.dtype is None else args.dtype,
                             repeat=args.repeat or 7, peers=wanted, progress=say)
    small_calls.print_table_of(result, markdown=args.markdown)
    return 0


def _cmd_lce(args, parser):
    from .bench import linear

    if len(args.lce) not in (0, 3):
        parser.error(f"--lce: expected N H V (three counts) or nothing, got {len(args.lce)} values")
    if args.dtype == "float16":
        parser.error("--lce: float32 or float64")
    say = None if args.quiet else (lambda msg: print(f"[lce] {msg}", file=sys.stderr, flush=True))
    result = linear.run(tuple(args.lce) or linear.DEFAULT_SHAPE, args.dtype or "float32", args.repeat or 3,
                        args.threads, progress=say)
    linear.print_report(result)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if any("error" in r and r["peer"] == "fastloss" for r in result["rows"]) else 0


def _cmd_bench(args, parser):
    names = _loss_names(parser, args.losses)
    old = _bench_arguments(args, parser)
    if args.small_calls:
        return _cmd_small_calls(args, parser, names)
    if args.lce is not None:
        return _cmd_lce(args, parser)
    from . import bench
    from .bench import progress, report

    bar = progress.make(quiet=args.quiet)
    try:
        result = bench.run(names, size=args.size, dtype=args.dtype or "float32", reduction=args.reduction,
                           threads=args.threads, repeat=args.repeat, quick=args.quick, peers=args.peers,
                           best=not args.no_best, progress=bar)
    except bench.peers.PeerUnavailable as exc:
        parser.error(str(exc))
    bench.print_report(result, markdown=args.markdown)
    if old is not None:
        warning = report.comparison_warning(result, old, args.compare)
        if warning:
            print(f"fastloss bench: {warning}", file=sys.stderr)
        print()
        bench.print_comparison(result, old, args.compare, markdown=args.markdown)
    status = 1 if any(e["impl"].startswith("fastloss") for e in result["errors"]) else 0
    for option, write in (("json", bench.write_json), ("csv", bench.write_csv), ("plot", bench.plot)):
        path = getattr(args, option)
        if path:
            try:
                write(result, path)
            except OSError as exc:  # checked before the run, but the disk may fill or the folder go
                print(f"fastloss bench: --{option} {path}: cannot write it ({exc}); the other outputs are "
                      "still written", file=sys.stderr)
                status = 1
                continue
            print(f"wrote {path}")
    return status


# ------------------------------------------------------------------ parser


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastloss",
        description="torch.nn loss functions, forward and backward, as SIMD/OpenMP kernels for NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"fastloss {fastloss.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="registered losses")
    p.set_defaults(func=_cmd_list, parser=p)

    p = sub.add_parser("config", help="version, instruction set, threads, compiler (fastloss.show_config())")
    p.set_defaults(func=_cmd_config, parser=p)

    p = sub.add_parser("check", help="self-test: every loss against fastloss.reference and torch (exit 1 on a "
                                     "mismatch)")
    p.add_argument("--losses", nargs="+", metavar="NAME", help="losses to check (default: all)")
    p.add_argument("--size", type=_count, default=4099, metavar="N", help="elements per sample (default 4099)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-torch", action="store_true", help="do not compare with torch even when it is installed")
    p.set_defaults(func=_cmd_check, parser=p)

    p = sub.add_parser(
        "bench", help="time forward/backward/fused vs the NumPy reference, torch and JAX",
        description="Times every loss (forward, backward, value_and_grad with and without out=) "
                    "against the NumPy reference and torch/JAX when installed, all with the same "
                    "threads, plus an in-run memory-bandwidth probe (the roofline). What each column means and "
                    "how it is measured: python -m pydoc fastloss.bench",
    )
    p.add_argument("--quick", action="store_true", help="small run: 2**20 elements, 5 repeats (< 1 min)")
    p.add_argument("--losses", nargs="+", metavar="NAME", help="losses to time (default: all)")
    p.add_argument("--threads", type=_positive, metavar="N",
                   help="threads for everyone (default: the CPUs this process may use)")
    p.add_argument("--size", type=_count, metavar="N",
                   help="elements per input array (default 2**24; --quick 2**20; --small-calls 100)")
    p.add_argument("--dtype", choices=("float32", "float64", "float16"),
                   help="default float32; float16 is computed in float32 by fastloss, in float16 by the peers "
                        "where they can")
    p.add_argument("--reduction", choices=("mean", "sum", "none"), default="mean", help="default mean")
    p.add_argument("--repeat", type=_positive, metavar="R",
                   help="timed calls per case, median reported (default 7; --quick 5)")
    p.add_argument("--peers", nargs="*", choices=("numpy", "torch", "jax"),
                   help="peers to time; each must be installed (default: numpy reference, and torch and jax "
                        "when installed)")
    p.add_argument("--no-best", action="store_true",
                   help="skip the re-measurement with the tuned allocator (mallopt)")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--csv", metavar="PATH", help="write one line per timing as CSV")
    p.add_argument("--plot", metavar="IMAGE", help="bar chart of the speed-ups (.png, .svg, .pdf...; matplotlib)")
    p.add_argument("--compare", metavar="OLD_JSON", help="also print this run's times / those of a saved --json run")
    p.add_argument("--markdown", action="store_true", help="print the tables as GitHub markdown")
    p.add_argument("--small-calls", action="store_true",
                   help="instead: per-call cost of every entry point on 100 elements (µs), with torch's own call")
    p.add_argument("--lce", nargs="*", type=_positive, metavar="N H V",
                   help="instead: linear_cross_entropy forward+backward at N rows, H features, V classes "
                        "(default 8192 1024 32000) vs torch's fused F.linear_cross_entropy and unfused "
                        "linear + cross_entropy: time and peak memory, each peer in a fresh process "
                        "(python -m pydoc fastloss.bench.linear)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_bench, parser=p)

    p = sub.add_parser(
        "eval", help="a loss over .npy files of any size (memory-mapped, in blocks of rows; value on stdout)",
        description="Evaluates LOSS over .npy files given in the loss's argument order (input, target, ...), "
                    "read in blocks of rows through a memory map with bounded memory; prints the value (or, "
                    "with --json, the value, counts and timing). Progress on stderr.",
    )
    p.add_argument("loss", metavar="LOSS", help="functional name, e.g. mse_loss (fastloss list)")
    p.add_argument("files", nargs="+", metavar="FILE.npy", help="the loss's arrays, in its argument order")
    p.add_argument("--chunk", type=_positive, metavar="ROWS", help="rows per block (default: ~64 MB of the first file)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="a keyword option of the loss (repeatable): reduction=sum, beta=0.5, pos_weight=pw.npy")
    p.add_argument("--json", action="store_true", help="print a JSON record: value, rows, blocks, seconds, rows/s")
    p.add_argument("--threads", type=_positive, metavar="N", help="fastloss threads (default: all CPUs)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the blocks on this dask.distributed scheduler")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval, parser=p)

    p = sub.add_parser("plot", help="a loss and its gradient against the prediction, as an image (matplotlib)")
    p.add_argument("loss", metavar="LOSS", help="functional name, e.g. huber_loss (fastloss list)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="fix an option (repeatable); by default the loss's main option is swept (beta, delta, "
                        "margin ...)")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", help="output file (.png, .svg, .pdf ...)")
    p.add_argument("--dpi", type=_positive, default=120, help="resolution of raster images (default 120)")
    p.set_defaults(func=_cmd_plot, parser=p)
    return parser


def _cmd_plot(args, parser):
    from . import _plot

    return _plot.run(args, parser)


def _cmd_eval(args, parser):
    from . import _eval

    return _eval.run(args, parser)


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
