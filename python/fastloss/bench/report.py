"""Everything a run's result becomes: the printed tables, JSON, CSV, the
plot, and the comparison with a saved run. All of it works from the result
dict alone, so a saved JSON can be printed again (``print_report(load(p))``).

Output paths are checked by :func:`check_output` *before* a run, so a run
is never lost to an unwritable path at its end."""

from __future__ import annotations

import csv
import json
import math
import os
import sys

import numpy as np

from .._table import print_table
from .timing import NOISY_SPREAD
from .workload import OP_LABELS

__all__ = ["print_report", "summary_rows", "print_comparison", "write_json", "write_csv", "plot", "load", "check_output",
           "check_plot_path", "compare", "differences", "comparison_warning", "OutputError"]

PEER_ORDER = ("numpy", "torch", "jax")
FALLBACK_LABELS = {"numpy": "reference (NumPy f64)", "torch": "torch", "jax": "JAX"}
ROOF_MARK = "†"
NOISY_MARK = "!"


class OutputError(ValueError):
    """An output path that cannot be written, or a file that cannot be read back."""


# -------------------------------------------------------------- paths


def check_output(path, option):
    """Raises :class:`OutputError` (naming ``option``) unless ``path`` can be
    written: it is really opened for writing, as root too (for whom
    permission bits say nothing, while /proc or /sys still refuse), with
    the folders it needs. Leaves no trace: an existing file is opened
    without truncating it, a file or folder made for the test is removed."""
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise OutputError(f"{option} {path}: is a directory, expected a file name")
    folder = os.path.dirname(full)
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f"{option} {path}: {existing} is not a folder")
    made = []  # folders created here, innermost last
    try:
        for part in _missing_folders(folder, existing):
            try:
                os.mkdir(part)
            except OSError as exc:
                raise OutputError(f"{option} {path}: cannot create the folder {part} ({_reason(exc)})") from None
            made.append(part)
        existed = os.path.exists(full)
        try:
            fd = os.open(full, os.O_WRONLY | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot open it for writing ({_reason(exc)})") from None
        os.close(fd)
        if not existed:
            os.unlink(full)
    finally:
        for part in reversed(made):
            os.rmdir(part)


def _missing_folders(folder, existing):
    """The folders from ``existing`` (exclusive) down to ``folder`` (inclusive)."""
    parts = []
    while folder != existing:
        parts.append(folder)
        folder = os.path.dirname(folder)
    return parts[::-1]


def _reason(exc):
    """``permission denied``, ``no such file or directory``, ... (lower case)."""
    return (exc.strerror or str(exc)).lower()


def check_plot_path(path):
    """Raises :class:`OutputError` unless matplotlib is installed and can
    write ``path``'s format (from its extension)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise OutputError("--plot needs matplotlib (pip install 'fastloss[bench]')") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in formats:
        what = "." + ext if ext else "a file without an extension"
        raise OutputError(f"--plot {path}: matplotlib cannot write {what}"
                          f"; use one of {', '.join('.' + e for e in sorted(formats))}")
    check_output(path, "--plot")


def load(path):
    """A result saved by :func:`write_json`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: cannot read a saved bench result ({exc})") from None
    if not isinstance(data, dict) or not {"meta", "results"} <= data.keys():
        raise OutputError(f"{path}: not a fastloss bench JSON (no meta/results)")
    return data


# ------------------------------------------------------------- files


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _open_for_writing(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="")


def write_json(result, path):
    """Writes a result as JSON (non-finite numbers become null), creating the
    file's folder if needed."""
    with _open_for_writing(path) as f:
        json.dump(_clean(result), f, indent=1, allow_nan=False)
        f.write("\n")


CSV_COLUMNS = ("loss", "op", "malloc", "implementation", "version", "median_s", "min_s", "max_s", "q1_s", "q3_s",
               "noisy", "gbps", "roofline_pct", "speedup_vs_fastloss", "bytes", "dtype", "size", "reduction",
               "threads", "isa")


def _entries(result):
    """(row, implementation key, entry) for every timing of a result."""
    for r in result["results"]:
        for impl in ("fastloss", "fastloss_best"):
            if impl in r:
                yield r, impl, r[impl]
        for impl, entry in r["peers"].items():
            yield r, impl, entry


def write_csv(result, path):
    """One line per (loss, op, allocator, implementation): median, spread,
    GB/s, % of roofline, speed-up of fastloss (peer time / fastloss time)."""
    m = result["meta"]
    versions = m.get("versions", {})
    with _open_for_writing(path) as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r, impl, e in _entries(result):
            base = impl.removesuffix("_best")
            w.writerow([r["loss"], r["op"], "tuned" if impl.endswith("_best") else "default", base,
                        versions.get(base, m.get("fastloss") if base == "fastloss" else ""),
                        e["seconds"], e.get("min", ""), e.get("max", ""), e.get("q1", ""), e.get("q3", ""),
                        int(bool(e.get("noisy"))), e.get("gbps", ""), e.get("roofline_pct", ""),
                        e.get("speedup", ""), r["bytes"], m["dtype"], m["size"], m["reduction"], m["threads"],
                        m["isa"]])


# ------------------------------------------------------------- formatting


def _scale(sec):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if sec >= scale or unit == "µs":
            return unit, scale
    raise AssertionError("unreachable")


def _num(v):
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def fmt_time(sec):
    if sec is None:
        return "-"
    unit, scale = _scale(sec)
    return f"{_num(sec / scale)} {unit}"


def _fmt_spread(entry):
    """``12.3 ms (12.1–13.0)``: median, then min–max in the median's unit."""
    unit, scale = _scale(entry["seconds"])
    text = f"{_num(entry['seconds'] / scale)} {unit}"
    if "min" in entry and entry["max"] > entry["min"]:
        text += f" ({_num(entry['min'] / scale)}–{_num(entry['max'] / scale)})"
    return text


def _fmt_bytes(n):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def _fmt_ratio(r):
    if r is None:
        return "-"
    return f"×{r:.3g}" if r < 1000 else f"×{r:.0f}"


def _noisy(entry):
    return entry.get("noisy", False)


def _time_cell(entry):
    if entry is None:
        return "-"
    text = _fmt_spread(entry)
    if _noisy(entry):
        return (text + NOISY_MARK, "yellow")
    return text


def _peer_cell(entry):
    if entry is None:
        return "-"
    text = f"{_fmt_spread(entry)}{NOISY_MARK if _noisy(entry) else ''} {_fmt_ratio(entry.get('speedup'))}"
    speedup = entry.get("speedup")
    return (text, "red" if speedup is not None and speedup < 1 else ("yellow" if _noisy(entry) else ""))


def _roof_cell(entry):
    pct = entry.get("roofline_pct")
    if pct is None:
        return "-"
    if pct > 100:
        return (f"{pct:.0f} %{ROOF_MARK}", "yellow")
    return f"{pct:.0f} %"


def _labels(result):
    return {k: v.get("label") or FALLBACK_LABELS.get(k, k) for k, v in result["meta"].get("peers", {}).items()}


def _noise_count(result):
    entries = [e for _, _, e in _entries(result) if "same_as" not in e]
    return sum(1 for e in entries if _noisy(e)), len(entries)


def summary_rows(result):
    """``(headers, rows)``: one row per loss with its forward and
    ``value_and_grad(out=)`` times, the forward's % of the roofline and the
    speed-up over each compiled peer (torch, JAX) as run and at its best —
    the overview the per-loss tables detail (the NumPy reference is left
    out: it is a correctness oracle, not a peer)."""
    peers = [p for p in PEER_ORDER if p != "numpy"
             and any(p in r["peers"] or p + "_best" in r["peers"] for r in result["results"])]
    labels = _labels(result)
    by_key = {(r["loss"], r["op"]): r for r in result["results"]}
    names = list(dict.fromkeys(r["loss"] for r in result["results"]))
    headers = ["loss", "forward", "% of roofline"]
    for p in peers:
        name = labels.get(p, p).split(" ")[0]
        headers += [f"× {name}", f"× {name}*"]
    headers += ["value_and_grad(out=)"]
    for p in peers:
        name = labels.get(p, p).split(" ")[0]
        headers += [f"× {name} fwd+bwd" if p == "torch" else f"× {name} v&g", f"× {name}*"]
    rows = []
    for name in names:
        row = [name]
        for op in ("forward", "value_and_grad_out"):
            r = by_key.get((name, op))
            fl = r.get("fastloss") if r else None
            row.append(fmt_time(fl["seconds"]) if fl else "-")
            if op == "forward":
                row.append(_roof_cell(fl) if fl else "-")
            for p in peers:
                for key in (p, p + "_best"):
                    e = r["peers"].get(key) if r else None
                    row.append(_fmt_ratio(e.get("speedup")) if e else "-")
        rows.append(row)
    return headers, rows


def print_report(result, file=None, markdown=False, console=None):
    """Prints a result: what was run, then one table per loss, then notes.
    ``console``: a rich Console for the tables (and its file for the rest),
    e.g. to render at a given width."""
    file = console.file if console is not None else (file or sys.stdout)
    m, bw = result["meta"], result["bandwidth"]
    labels = _labels(result)
    cpus = m.get("cpus")
    computed = f" (computed in {m['compute_dtype']})" if m.get("compute_dtype", m["dtype"]) != m["dtype"] else ""
    head = [
        f"fastloss {m['fastloss']} bench · isa {m['isa']} · {m['threads']} thread(s) for everyone"
        + (f" (cpus {','.join(map(str, cpus))})" if cpus else "")
        + f" · {m['dtype']}{computed} · {m['size']:,} elements per array · reduction='{m['reduction']}'",
        f"cpu: {m['cpu_model']} · peers: "
        + ("; ".join(f"{labels[k]} ({v['version']})" if k == "numpy" else labels[k] for k, v in m["peers"].items())
           or "none"),
        f"times: median of {m['repeat']} calls (reference: {m['reference_repeat']}) with (min–max); "
        "×N after a peer's time = peer time / fastloss time (above 1: fastloss is faster)",
        "roofline: % of roofline = the time fastloss's own sum (read) and copy (read+write) kernels, timed between each "
        "loss's calls, need for the op's reads and writes / the op's time "
        f"(probes' fastest calls: read {bw['read_gbps']:.1f} GB/s, copy {bw['read_write_gbps']:.1f} GB/s, "
        "medians over the losses)",
    ]
    if str(m.get("best", "")).startswith("mallopt"):
        head.append("malloc 'tuned' rows: re-timed with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 "
                    "(set by mallopt): no fresh page-faulting mmap per large result; each library at its best")
    elif m.get("best"):
        head.append(f"malloc 'tuned' rows: {m['best']}")
    for k, why in m.get("peers_missing", {}).items():
        head.append(f"peer {k}: {why}")
    if m.get("peers_imported_before_pinning"):
        head.append("note: imported before the threads were pinned (thread pools may be larger): "
                    + ", ".join(m["peers_imported_before_pinning"]))
    noisy, total = _noise_count(result)
    if noisy:
        head.append(f"WARNING: noisy machine: {noisy} of {total} timings vary by more than {NOISY_SPREAD}× "
                    f"(max/min, marked {NOISY_MARK}); trust the ratios more than the times, or re-run")
    if markdown:
        print("\n".join(f"{line}  " for line in head) + "\n", file=file)
    else:
        print("\n".join(head) + "\n", file=file)

    summary_headers, summary = summary_rows(result)
    if summary:
        print_table("Summary · forward and value_and_grad(out=) · ×N = peer time / fastloss time, "
                    "* = the peer at its best (tuned malloc, against fastloss tuned)",
                    summary_headers, summary, file=file, left=1, markdown=markdown, console=console)

    peer_cols = [p for p in PEER_ORDER if any(p in r["peers"] or p + "_best" in r["peers"] for r in result["results"])]
    headers = ["op", "malloc", "fastloss", "GB/s", "% of roofline"] + [labels.get(p, p) for p in peer_cols]
    by_loss = {}
    for r in result["results"]:
        by_loss.setdefault(r["loss"], []).append(r)
    for name, rs in by_loss.items():
        rows, over = [], False
        for config, suffix in (("default", ""), ("tuned", "_best")):
            for r in rs:
                fl = r.get("fastloss" + suffix)
                peers = [r["peers"].get(p + suffix) for p in peer_cols]
                if fl is None and not any(peers):
                    continue
                if fl is None and suffix:  # value_and_grad(out=) allocates nothing: as-run time
                    fl_cells = ["= default", "", ""]
                else:
                    fl_cells = [_time_cell(fl), f"{fl['gbps']:.1f}" if fl else "-", _roof_cell(fl) if fl else "-"]
                    over = over or (fl is not None and fl.get("roofline_pct", 0) > 100)
                rows.append([OP_LABELS[r["op"]], config, *fl_cells, *(_peer_cell(e) for e in peers)])
        title = f"{name} · forward moves {_fmt_bytes(rs[0]['bytes'])}"
        for p in bw.get("probes", []):
            if p["loss"] == name and p["config"] == "as_run":
                title += f" · probes read {p['read_gbps']:.1f}, copy {p['read_write_gbps']:.1f} GB/s"
        caption = None
        if over:
            caption = (f"{ROOF_MARK} above 100 %: the op moved its bytes faster than the probes timed alongside "
                       "predict. The probes are simple kernels, not a hardware limit: a two-input op may stream "
                       "faster than the probe's one-array sum, the data may fit in a cache (small --size), or the "
                       "probes' calls met more contention (noise).")
        print_table(title, headers, rows, file=file, caption=caption, left=2, markdown=markdown, console=console)
    notes = ["torch's backward is its forward + .backward() (no gradient without it); peers have no out=, so "
             "the value_and_grad(out=) row shows their fused time."]
    for s in result.get("skipped", []):
        notes.append(f"skipped {s['impl']} for {s['loss']}: {s['reason']}")
    for e in result.get("errors", []):
        notes.append(f"ERROR {e['impl']} {e['loss']} {e.get('op', '')} ({e['config']}): {e['error']}")
    notes.append(f"total {m['seconds']:.1f} s")
    print("\n".join(notes), file=file)


# ------------------------------------------------------------- compare


def compare(result, old):
    """``[(loss, op, malloc, implementation, old seconds, new seconds, new/old)]``
    for every timing present in both results."""
    before = {(r["loss"], r["op"], impl): e for r, impl, e in _entries(old)}
    out = []
    for r, impl, e in _entries(result):
        o = before.get((r["loss"], r["op"], impl))
        if o is None or "same_as" in e or not o.get("seconds"):
            continue
        out.append((r["loss"], r["op"], "tuned" if impl.endswith("_best") else "default", impl.removesuffix("_best"),
                    o["seconds"], e["seconds"], e["seconds"] / o["seconds"]))
    return out


# What makes two runs' times comparable: a ratio across any of these is not
# a speed-up or a regression of the code, but of the setting.
COMPARED_META = ("isa", "threads", "dtype", "compute_dtype", "size", "reduction", "cpu_model")


def differences(result, old):
    """``["dtype float32 → float64", ...]``: the settings (:data:`COMPARED_META`)
    in which a run differs from a saved one (keys missing from either are
    not compared)."""
    new_meta, old_meta = result["meta"], old["meta"]
    return [f"{k} {old_meta[k]} → {new_meta[k]}" for k in COMPARED_META
            if k in old_meta and k in new_meta and old_meta[k] != new_meta[k]]


def comparison_warning(result, old, old_path):
    """The warning printed when the runs differ in a setting, else None."""
    diffs = differences(result, old)
    if not diffs:
        return None
    return (f"WARNING: --compare {old_path} was run with other settings ({'; '.join(diffs)}): "
            "the now/then ratios below measure that change too, not only the code's speed")


def print_comparison(result, old, old_path, file=None, markdown=False, console=None):
    """Prints :func:`compare` as a table: this run's time / the saved run's,
    under a warning when the runs differ in a setting (:func:`differences`)."""
    file = console.file if console is not None else (file or sys.stdout)
    rows = []
    for loss, op, malloc, impl, t_old, t_new, ratio in compare(result, old):
        style = "green" if ratio < 0.9 else ("red" if ratio > 1.1 else "")
        rows.append([loss, OP_LABELS.get(op, op), malloc, impl, fmt_time(t_old), fmt_time(t_new),
                     (f"{ratio:.2f}", style)])
    warning = comparison_warning(result, old, old_path)
    if warning:
        print(warning + ("  \n" if markdown else "\n"), file=file)
    caption = "now/then below 1: this run is faster. "
    caption += ("Runs differ in: " + "; ".join(differences(result, old)) if warning
                else "Same " + ", ".join(COMPARED_META) + ".")
    print_table(f"compared with {old_path} ({old['meta'].get('timestamp', '?')})",
                ["loss", "op", "malloc", "library", "then", "now", "now/then"], rows, file=file, left=4,
                caption=caption, markdown=markdown, console=console)


# ------------------------------------------------------------- plot


def plot(result, path):
    """Bar chart of the speed-ups (log scale) vs each peer, per loss and op."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = _labels(result)
    series = [p for p in ("numpy", "torch", "torch_best", "jax", "jax_best")
              if any(p in r["peers"] for r in result["results"])]
    rows = [r for r in result["results"] if r["peers"]]
    ticks = [f"{r['loss']}\n{OP_LABELS[r['op']]}" for r in rows]
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, p in enumerate(series):
        xs, ys = [], []
        for i, r in enumerate(rows):
            s = r["peers"].get(p, {}).get("speedup")
            if s:
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(s)
        base = p.removesuffix("_best")
        ax.bar(xs, ys, width, label=labels.get(base, base) + (" (tuned malloc)" if p.endswith("_best") else ""))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(ticks, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speed-up of fastloss (peer time / fastloss time)")
    m = result["meta"]
    fig.suptitle(f"fastloss {m['fastloss']} · {m['isa']} · {m['threads']} threads · {m['dtype']} · "
                 f"{m['size']:,} elements · reduction='{m['reduction']}'", fontsize=9)
    if series:
        ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)

