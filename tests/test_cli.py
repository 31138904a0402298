"""Smoke tests of the ``fastloss`` command line (list, check, bench).

``bench`` with torch/JAX runs in a subprocess: their imports, the thread
pinning and the ``mallopt`` calls then stay out of the test process."""

import json
import subprocess
import sys

import pytest

import fastloss
from fastloss import _cli
from fastloss._api import REGISTRY
from fastloss.benchmark import OPS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_list_shows_every_loss(capsys):
    assert _cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in REGISTRY.values():
        assert spec.name in out
        assert spec.class_name in out


def test_python_dash_m_runs_the_cli(tmp_path):
    r = _run("list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(name in r.stdout for name in REGISTRY)


def test_no_command_prints_help(capsys):
    assert _cli.main([]) == 2
    assert "bench" in capsys.readouterr().out


def test_check_passes(capsys):
    assert _cli.main(["check", "--size", "257"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert all(name in out for name in REGISTRY)


def test_check_reports_a_mismatch(monkeypatch, capsys):
    from fastloss import reference

    right = reference.mse_loss
    monkeypatch.setattr(reference, "mse_loss", lambda *a, **k: right(*a, **k) * 1.01)
    assert _cli.main(["check", "--losses", "mse_loss", "--size", "257"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_bench_writes_json(tmp_path):
    path = tmp_path / "out.json"
    r = _run("bench", "--quick", "--size", "4096", "--repeat", "1", "--json", str(path), "--losses", "mse_loss",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mse_loss" in r.stdout
    data = json.loads(path.read_text())
    assert {"meta", "bandwidth", "results", "skipped", "errors"} <= data.keys()
    meta = data["meta"]
    assert {"isa", "threads", "dtype", "size", "versions", "cpu_model", "peers", "best"} <= meta.keys()
    assert meta["isa"] == fastloss._core.current_isa()
    assert (meta["size"], meta["dtype"], meta["losses"]) == (4096, "float32", ["mse_loss"])
    assert data["bandwidth"]["read_gbps"] > 0 and data["bandwidth"]["read_write_gbps"] > 0
    assert data["errors"] == []
    assert [row["op"] for row in data["results"]] == list(OPS)
    for row in data["results"]:
        assert row["loss"] == "mse_loss" and row["bytes"] > 0
        assert row["fastloss"]["seconds"] > 0 and row["fastloss"]["gbps"] > 0
        assert "numpy" in row["peers"]
        for entry in row["peers"].values():
            assert entry["seconds"] > 0 and entry["speedup"] > 0


def test_bench_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    argv = ["bench", "--quick", "--size", "2**12", "--repeat", "1", "--losses", "mse_loss", "--peers", "numpy",
            "--no-best", "--quiet", "--plot", str(png)]
    assert _cli.main(argv) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "mse_loss" in capsys.readouterr().out


def test_bench_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli.main(["bench", "--losses", "no_such_loss"])
    assert exc.value.code == 2
    assert "no_such_loss" in capsys.readouterr().err
