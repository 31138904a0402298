"""Tests of the ``fastloss`` command line (--version, list, config, check,
bench) and of the benchmark package behind it (``fastloss.bench``).

A ``bench`` run with torch/JAX runs in a subprocess: their imports, the
thread pinning and the ``mallopt`` calls then stay out of the test process.
In-process runs use ``--peers numpy --no-best`` and tiny sizes. No test
asserts a timing."""

import collections
import csv
import copy
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import _cli
from fastloss import bench
from fastloss._api import REGISTRY
from fastloss.bench import peers, progress, report
from fastloss.bench import OPS

from cases import BEYOND_TORCH_OPTIONS, CASES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--quick", "--size", "4096", "--repeat", "1"]
IN_PROCESS = [*TINY, "--losses", "mse_loss", "--peers", "numpy", "--no-best", "--quiet"]


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One small `fastloss bench` in a subprocess, with every peer installed,
    writing JSON and CSV: (completed process, json path, csv path)."""
    folder = tmp_path_factory.mktemp("bench")
    js, cs = folder / "out.json", folder / "out.csv"
    r = _run("bench", *TINY, "--losses", "mse_loss", "huber_loss", "--json", str(js), "--csv", str(cs), cwd=folder)
    return r, js, cs


@pytest.fixture
def no_run(monkeypatch):
    """Makes a benchmark run fail the test: for checks that must happen before it."""
    def run(*args, **kwargs):
        raise AssertionError("the benchmark ran before the arguments were checked")

    monkeypatch.setattr(bench, "run", run)


# ------------------------------------------------------------------ general


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"fastloss {fastloss.__version__}"


def test_config_prints_show_config(capsys):
    expected = io.StringIO()
    fastloss.show_config(file=expected)
    assert _cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert out == expected.getvalue()
    assert fastloss._core.current_isa() in out


def test_list_shows_every_loss_and_its_peers(capsys):
    assert _cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in REGISTRY.values():
        assert spec.name in out
        assert spec.class_name in out
    assert "torch, jax" in out


def test_list_does_not_import_the_benchmark(tmp_path):
    code = ("import sys; from fastloss import _cli; assert _cli.main(['list']) == 0; "
            "print(sorted(m for m in sys.modules if m.startswith('fastloss.bench')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_cli(tmp_path):
    r = _run("list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(name in r.stdout for name in REGISTRY)


def test_no_command_prints_help(capsys):
    assert _cli.main([]) == 2
    assert "bench" in capsys.readouterr().out


# -------------------------------------------------------------------- check


def test_check_passes_and_names_the_isa(capsys):
    assert _cli.main(["check", "--size", "257", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert all(name in out for name in REGISTRY)
    assert f"isa {fastloss._core.current_isa()}" in out
    assert "vs torch: skipped (--no-torch)" in out


def test_check_reports_a_mismatch(monkeypatch, capsys):
    from fastloss import reference

    right = reference.mse_loss
    monkeypatch.setattr(reference, "mse_loss", lambda *a, **k: right(*a, **k) * 1.01)
    assert _cli.main(["check", "--losses", "mse_loss", "--size", "257", "--no-torch"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_check_compares_with_torch(capsys):
    torch = pytest.importorskip("torch")
    assert _cli.main(["check", "--size", "257"]) == 0
    out = capsys.readouterr().out
    assert f"vs torch: torch {torch.__version__}: values and gradients compared" in out
    assert "FAIL" not in out


@pytest.mark.parametrize("wrong", ["value", "gradient"])
def test_check_reports_a_mismatch_with_torch(monkeypatch, capsys, wrong):
    pytest.importorskip("torch")
    spec = REGISTRY["mse_loss"]

    def value_off(torch, x, y, **options):
        return torch.nn.functional.mse_loss(x, y, **options) * 1.01

    def gradient_off(torch, x, y, **options):
        # Same value (x * 1.01 - x * 0.01 == x up to rounding), gradient * 1.01.
        return torch.nn.functional.mse_loss(x * 1.01 - x.detach() * 0.01, y, **options)

    bad = value_off if wrong == "value" else gradient_off
    monkeypatch.setitem(REGISTRY, "mse_loss", dataclasses.replace(spec, torch=bad))
    assert _cli.main(["check", "--losses", "mse_loss", "--size", "257"]) == 1
    out = capsys.readouterr().out
    assert "FAIL mse_loss" in out and "error above 1e-05" in out


def _numpy_as_jnp(spec, arrays, options):
    return spec.jax(np, *arrays, **options)


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_registry_jax_expressions_equal_the_reference(name, reduction, weighted):
    """The bench's JAX peer computes the loss: run its expression with NumPy
    standing in for jax.numpy (the same API for these functions)."""
    spec = REGISTRY[name]
    if spec.family == "sequence":
        pytest.skip("optax.ctc_loss needs JAX itself (tests/test_ctc.py compares it under JAX)")
    rng = np.random.default_rng(0)
    arrays, options = spec.sample(rng, 257, np.dtype(np.float64))
    options = dict(options, reduction=reduction)
    if weighted:
        if "weight" not in spec.options:
            pytest.skip("no weight= option")
        # (a class weight for the class-axis losses: their samples are (N, C))
        shape = arrays[0].shape[-1:] if spec.family == "classification" else arrays[0].shape
        if name == "linear_cross_entropy":  # (its classes are linear_weight's first axis)
            shape = arrays[1].shape[:1]
        options["weight"] = rng.uniform(0.5, 1.5, shape)
    for extra in ({}, {k: 0.5 for k in ("beta", "delta") if k in spec.options}):
        opts = dict(options, **extra)
        got = _numpy_as_jnp(spec, arrays, opts)
        np.testing.assert_allclose(got, spec.reference(*arrays, **opts), rtol=1e-12, atol=0)


def test_registry_torch_expressions_equal_torch_functional():
    """The bench's torch peer of every loss computes torch.nn.functional's
    loss, for every option set and reduction, with the optional arrays too,
    and without a warning (kl_div's peer silences torch's 'mean' warning,
    which would flood the bench; torch's own call may warn)."""
    torch = pytest.importorskip("torch")
    for spec in REGISTRY.values():
        case = CASES[spec.name]
        if case.oracle != "torch":
            continue  # a loss torch.nn lacks: its peer is its oracle's definition (test_beyond_torch.py)
        arrays = case.make(np.random.default_rng(1), (8, 9), np.dtype(np.float64), weighted=True)
        positional, keyword = case.split(arrays)
        tensors = [torch.from_numpy(a) for a in positional]
        kw = {k: torch.from_numpy(v) for k, v in keyword.items()}
        beyond = set(BEYOND_TORCH_OPTIONS.get(spec.name, ()))  # (test_beyond_torch_rows.py checks those)
        for options in [o for o in case.option_sets if not beyond & set(o)]:
            for reduction in case.reductions:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    want = getattr(torch.nn.functional, spec.name)(*tensors, reduction=reduction, **kw, **options)
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    got = spec.torch(torch, *tensors, reduction=reduction, **kw, **options)
                assert torch.equal(got, want), (spec.name, options, reduction)


# -------------------------------------------------------------------- bench


def test_bench_writes_json_and_csv(quick_run):
    r, js, cs = quick_run
    assert r.returncode == 0, r.stderr
    assert "mse_loss" in r.stdout and "huber_loss" in r.stdout
    data = json.loads(js.read_text())
    assert {"meta", "bandwidth", "results", "skipped", "errors"} <= data.keys()
    meta = data["meta"]
    assert {"isa", "threads", "dtype", "size", "versions", "cpu_model", "peers", "best"} <= meta.keys()
    assert meta["isa"] == fastloss._core.current_isa()
    assert (meta["size"], meta["dtype"], meta["reduction"], meta["losses"]) == (
        4096, "float32", "mean", ["mse_loss", "huber_loss"])
    assert data["bandwidth"]["read_gbps"] > 0 and data["bandwidth"]["read_write_gbps"] > 0
    assert data["errors"] == []
    assert [row["op"] for row in data["results"]] == list(OPS) * 2
    n_entries = 0
    for row in data["results"]:
        assert row["bytes"] > 0
        fl = row["fastloss"]
        assert fl["seconds"] > 0 and fl["gbps"] > 0
        assert fl["min"] <= fl["seconds"] <= fl["max"] and fl["times"]
        assert "numpy" in row["peers"]
        for entry in row["peers"].values():
            assert entry["seconds"] > 0 and entry["speedup"] > 0
        n_entries += 1 + ("fastloss_best" in row) + len(row["peers"])
    with open(cs, newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == n_entries
    assert set(lines[0]) == set(report.CSV_COLUMNS)
    by_key = {(ln["loss"], ln["op"], ln["malloc"], ln["implementation"]): ln for ln in lines}
    first = data["results"][0]
    line = by_key[(first["loss"], first["op"], "default", "fastloss")]
    assert float(line["median_s"]) == pytest.approx(first["fastloss"]["seconds"])
    assert line["isa"] == fastloss._core.current_isa() and int(line["size"]) == 4096


def test_bench_table_names_its_columns(quick_run):
    r, _, _ = quick_run
    out = r.stdout
    for column in ("op", "malloc", "fastloss", "GB/s", "% of roofline", "reference (NumPy f64)"):
        assert column in out
    assert "% of roofline = the time" in out
    assert "(min–max)" in out
    assert "numpy  " not in out  # the peer is named for what it is


def _with_every_peer(path):
    """The quick run's result with a torch and a JAX column whatever is
    installed (copies of the reference's timings): the widest table."""
    data = report.load(path)
    for name, label in (("torch", "torch 2.13.0"), ("jax", "JAX 0.10.2")):
        data["meta"]["peers"].setdefault(name, {"version": label.split()[1], "label": label})
        for row in data["results"]:
            for suffix in ("", "_best"):
                if "numpy" in row["peers"]:
                    row["peers"].setdefault(name + suffix, copy.deepcopy(row["peers"]["numpy"]))
    return data


NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.mark.parametrize("width", [80, 60, 30])
def test_bench_table_keeps_every_number_on_a_narrow_terminal(quick_run, width):
    """Rendered by rich at ``width`` columns: nothing cut (no "…", every
    number and header word of the markdown table, which cuts nothing, is
    there whole), and no line wider than the terminal while it can fit."""
    rich_console = pytest.importorskip("rich.console")
    data = _with_every_peer(quick_run[1])
    console = rich_console.Console(width=width, record=True, file=io.StringIO())
    report.print_report(data, console=console)
    report.print_comparison(data, data, "old.json", console=console)
    text = console.file.getvalue()
    full = io.StringIO()
    report.print_report(data, file=full, markdown=True)
    report.print_comparison(data, data, "old.json", file=full, markdown=True)
    table_lines = [ln for ln in full.getvalue().splitlines() if ln.startswith("| ")]
    assert "…" not in text
    want = collections.Counter(n for ln in table_lines for n in NUMBER.findall(ln))
    got = collections.Counter(NUMBER.findall(text))
    assert not want - got, want - got
    words = set(text.split())
    for header in ("op", "malloc", "fastloss", "GB/s", "% of roofline", "reference (NumPy f64)", "torch 2.13.0",
                   "JAX 0.10.2", "library", "then", "now", "now/then"):
        assert set(header.split()) <= words, header
    if width >= 60:
        tables = console.export_text()
        assert max(len(ln) for ln in tables.splitlines()) <= width


def test_bench_progress_goes_to_stderr(quick_run):
    r, _, _ = quick_run
    assert "[bench 1/" in r.stderr and "mse_loss" in r.stderr
    assert "[bench" not in r.stdout


@pytest.mark.parametrize("library", ["rich", "tqdm", None])
def test_progress_bar_on_a_terminal(monkeypatch, capsys, library):
    """rich first, else tqdm, else plain lines: each tested when its library
    is installed (the [test] extra has neither), the others hidden."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    if library is not None:
        pytest.importorskip(library)
    for other in ("rich", "tqdm"):
        if other != library:
            monkeypatch.setitem(sys.modules, other, None)  # import raises ImportError
    stream = Terminal()
    bar = progress.make(stream=stream)
    bar.start(2)
    bar.step("first")
    bar.note("a note")
    bar.step("second")
    bar.close()
    expected = {"rich": progress._Rich, "tqdm": progress._Tqdm, None: progress.Progress}[library]
    assert type(bar) is expected
    assert "a note" in stream.getvalue()
    if library is None:
        assert stream.getvalue() == "[bench 1/2] first\n[bench] a note\n[bench 2/2] second\n"
    assert capsys.readouterr().out == ""


def test_progress_plain_lines_when_not_a_terminal_and_nothing_when_quiet():
    stream = io.StringIO()
    bar = progress.make(stream=stream)
    bar.start(1)
    bar.step("mse_loss (as run)")
    bar.close()
    assert stream.getvalue() == "[bench 1/1] mse_loss (as run)\n"
    quiet = io.StringIO()
    bar = progress.make(quiet=True, stream=quiet)
    bar.start(1)
    bar.step("x")
    assert quiet.getvalue() == ""


def test_bench_compare_with_a_saved_run(quick_run, capsys):
    _, js, _ = quick_run
    assert _cli.main(["bench", *IN_PROCESS, "--compare", str(js)]) == 0
    out = capsys.readouterr().out
    assert f"compared with {js}" in out
    assert "now/then" in out
    assert "WARNING: --compare" not in out and "WARNING" not in capsys.readouterr().err
    old = report.load(js)
    # The numpy and fastloss rows of mse_loss are in both runs.
    table = out[out.index("compared with"):]
    assert "mse_loss" in table and "numpy" in table and "huber_loss" not in table
    assert old["meta"]["losses"] == ["mse_loss", "huber_loss"]


def test_bench_compare_warns_when_the_settings_differ(quick_run, tmp_path, capsys):
    _, js, _ = quick_run
    old = report.load(js)
    changed = {"dtype": "float64", "size": 12345, "reduction": "sum", "threads": 97, "isa": "sse9"}
    old["meta"].update(changed)
    path = tmp_path / "other.json"
    path.write_text(json.dumps(old))
    assert _cli.main(["bench", *IN_PROCESS, "--compare", str(path)]) == 0
    captured = capsys.readouterr()
    for where in (captured.err, captured.out):
        assert "WARNING" in where and str(path) in where
        for key, value in changed.items():
            assert f"{key} {value} → " in where, key
    out = captured.out
    assert out.index("WARNING: --compare") < out.index("compared with")  # above the table


def test_compare_differences():
    new = {"meta": {"isa": "avx2", "threads": 2, "dtype": "float32", "size": 8, "reduction": "mean"}}
    assert report.differences(new, copy.deepcopy(new)) == []
    old = copy.deepcopy(new)
    old["meta"].update(threads=1, isa="avx512")
    assert report.differences(new, old) == ["isa avx512 → avx2", "threads 1 → 2"]
    del old["meta"]["threads"]  # a key a saved run lacks is not compared
    assert report.differences(new, old) == ["isa avx512 → avx2"]


def test_bench_summary_has_a_row_per_loss_from_its_entries(quick_run):
    """The summary (printed before the per-loss tables) picks, for each loss,
    the forward and value_and_grad(out=) entries and each peer's ratio as run
    and at its best: each cell is the entry it claims to be."""
    data = _with_every_peer(quick_run[1])
    by_key = {(r["loss"], r["op"]): r for r in data["results"]}
    headers, rows = report.summary_rows(data)
    assert headers[:3] == ["loss", "forward", "% of roofline"] and "value_and_grad(out=)" in headers
    assert [row[0] for row in rows] == ["mse_loss", "huber_loss"]
    split = headers.index("value_and_grad(out=)")
    for row in rows:
        for op, first in (("forward", 1), ("value_and_grad_out", split)):
            r = by_key[(row[0], op)]
            assert row[first] == report.fmt_time(r["fastloss"]["seconds"])
            ratios = row[first + (2 if op == "forward" else 1):][:4]
            want = [r["peers"][k]["speedup"] for k in ("torch", "torch_best", "jax", "jax_best")]
            assert [float(c.lstrip("×")) for c in ratios] == pytest.approx(want, rel=6e-3)
    out = io.StringIO()
    report.print_report(data, file=out, markdown=True)
    assert out.getvalue().index("Summary") < out.getvalue().index("mse_loss · forward moves")


def test_compare_ratios():
    def result(seconds):
        entry = {"seconds": seconds, "times": [seconds]}
        return {"meta": {}, "results": [{"loss": "l", "op": "forward", "bytes": 8, "fastloss": entry,
                                         "peers": {"torch": dict(entry, speedup=1.0)}}]}

    rows = report.compare(result(2.0), result(4.0))
    assert [(r[3], r[6]) for r in rows] == [("fastloss", 0.5), ("torch", 0.5)]


def test_bench_float16_none_reduction(tmp_path, capsys):
    path = tmp_path / "f16.json"
    argv = [*IN_PROCESS, "--dtype", "float16", "--reduction", "none", "--json", str(path)]
    assert _cli.main(["bench", *argv]) == 0
    out = capsys.readouterr().out
    assert "float16 (computed in float32)" in out and "reduction='none'" in out
    data = json.loads(path.read_text())
    assert (data["meta"]["dtype"], data["meta"]["compute_dtype"], data["meta"]["reduction"]) == (
        "float16", "float32", "none")
    forward = data["results"][0]
    assert forward["op"] == "forward"
    assert forward["bytes"] == 3 * 4096 * 2  # two float16 inputs and the unreduced float16 loss


def test_bench_markdown(capsys):
    assert _cli.main(["bench", *IN_PROCESS, "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| op | malloc | fastloss | GB/s | % of roofline | reference (NumPy f64) |" in out
    assert "|---|" in out


def test_bench_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    assert _cli.main(["bench", *IN_PROCESS, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "mse_loss" in capsys.readouterr().out


@pytest.mark.parametrize("option, path, message", [
    ("--plot", "out.txt", "matplotlib cannot write .txt"),
    ("--plot", "out", "without an extension"),
    ("--json", "{file}/out.json", "is not a folder"),
    ("--csv", "{file}/sub/out.csv", "is not a folder"),
    ("--json", "{dir}", "is a directory"),
    ("--compare", "{dir}/missing.json", "cannot read a saved bench result"),
    ("--compare", "{file}", "cannot read a saved bench result"),
])
def test_bench_fails_before_the_run(tmp_path, capsys, no_run, option, path, message):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    afile = tmp_path / "a-file"
    afile.write_text("not json")
    path = path.format(file=afile, dir=tmp_path)
    with pytest.raises(SystemExit) as exc:
        _cli.main(["bench", *IN_PROCESS, option, path])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert f"{option} {path}" in captured.err and message in captured.err
    assert captured.out == ""
    assert not os.path.exists(os.path.join(str(afile), "out.json"))


def _unwritable(kind, tmp_path):
    """A path no one, root included, can write (``/proc``, ``/sys``), or a
    read-only folder (permission bits: not for root)."""
    if kind == "read-only folder":
        if not hasattr(os, "geteuid") or os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder / "sub" / "out"), "permission denied"
    root = {"no folder in /proc": "/proc", "file in /sys": "/sys"}[kind]
    if not os.path.isdir(root):
        pytest.skip(f"no {root} here")
    if kind == "no folder in /proc":
        return "/proc/fastloss-no-such-folder/out", "cannot create the folder /proc/fastloss-no-such-folder"
    return "/sys/fastloss-out", "cannot open it for writing"


@pytest.mark.parametrize("kind", ["no folder in /proc", "file in /sys", "read-only folder"])
@pytest.mark.parametrize("option, ext", [("--json", ".json"), ("--csv", ".csv"), ("--plot", ".png")])
def test_bench_fails_before_the_run_on_an_unwritable_path(tmp_path, capsys, no_run, kind, option, ext):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    path, message = _unwritable(kind, tmp_path)
    try:
        with pytest.raises(SystemExit) as exc:
            _cli.main(["bench", *IN_PROCESS, option, path + ext])
    finally:
        if kind == "read-only folder":
            (tmp_path / "ro").chmod(0o755)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert f"{option} {path + ext}: " in captured.err and message in captured.err.lower()
    assert captured.out == ""
    assert not os.path.exists(path + ext)


def test_output_check_leaves_no_trace(tmp_path):
    new = tmp_path / "a" / "b" / "out.json"
    report.check_output(str(new), "--json")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.json"
    old.write_text("saved run")
    report.check_output(str(old), "--json")
    assert old.read_text() == "saved run"


def test_bench_writes_into_folders_it_creates(tmp_path, capsys):
    path = tmp_path / "new" / "folder" / "out.csv"
    assert _cli.main(["bench", *IN_PROCESS, "--csv", str(path)]) == 0
    assert path.read_text().startswith("loss,op,")


def test_bench_reports_an_output_that_fails_after_the_run(tmp_path, capsys, monkeypatch):
    """Checked before the run, gone at its end (a full disk, a removed
    folder): a message naming the option, the other outputs still written."""
    def full_disk(result, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench, "write_json", full_disk)
    js, cs = tmp_path / "out.json", tmp_path / "out.csv"
    assert _cli.main(["bench", *IN_PROCESS, "--json", str(js), "--csv", str(cs)]) == 1
    err = capsys.readouterr().err
    assert f"--json {js}: cannot write it" in err and "No space left on device" in err
    assert cs.exists() and not js.exists()


def test_bench_peer_requested_but_not_installed(monkeypatch, capsys, no_run):
    monkeypatch.setattr(peers, "is_installed", lambda name: name != "jax")
    with pytest.raises(SystemExit) as exc:
        _cli.main(["bench", *TINY, "--peers", "jax"])
    assert exc.value.code == 2
    assert "--peers jax: jax is not installed" in capsys.readouterr().err


def test_run_raises_when_a_requested_peer_cannot_be_imported(monkeypatch):
    def missing(self, *args):
        raise ImportError("No module named 'jax'")

    monkeypatch.setattr(peers.Jax, "__init__", missing)
    threads = fastloss.get_num_threads()
    with pytest.raises(peers.PeerUnavailable, match="jax was requested"):
        bench.run(["mse_loss"], size=64, repeat=1, peers=["jax"], best=False, progress=progress.make(quiet=True))
    assert fastloss.get_num_threads() == threads
    # Not requested explicitly: a missing peer is a note, not an error.
    monkeypatch.setattr(peers, "PEERS", ("numpy", "jax"))
    result = bench.run(["mse_loss"], size=64, repeat=1, best=False, progress=progress.make(quiet=True))
    assert "jax" in result["meta"]["peers_missing"] and "numpy" in result["meta"]["peers"]


def test_bench_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli.main(["bench", "--losses", "no_such_loss"])
    assert exc.value.code == 2
    assert "no_such_loss" in capsys.readouterr().err


def test_small_calls_table(capsys):
    assert _cli.main(["bench", "--small-calls", "--losses", "mse_loss", "smooth_l1_loss", "--repeat", "1",
                      "--peers", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("f(x, y)", "f(x, y, reduction='none')", "f(x, y, weight=w)", "f_backward(x, y)",
                  "f_value_and_grad(x, y, out=g)", "nn class: crit.value_and_grad(x, y)"):
        assert label in out
    assert "per-call cost on 100 float32 elements" in out
    assert "smooth_l1_loss" in out


def test_small_calls_with_torch_and_jax():
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from fastloss.bench import small_calls

    result = small_calls.run(["mse_loss"], repeat=1, target=1e-4)
    rows = result["rows"]
    for label in ("f(torch tensors)", "f(JAX arrays)", "torch: F.f(tensors) (reference)"):
        assert isinstance(rows[label]["mse_loss"], float), rows[label]
    assert all(not isinstance(v, str) for row in rows.values() for v in row.values()), rows
