"""Run-time configuration: instruction-set levels, threads, the environment
variables FASTLOSS_ISA / FASTLOSS_NUM_THREADS and show_config()."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss
from fastloss import _core

ORDER = ["baseline", "avx2", "avx512"]  # lowest first (dispatch.cpp)


def _run(code, **env):
    """Runs ``code`` in a fresh interpreter with ``env`` added; returns its
    stdout (JSON) and stderr. Warnings are printed, not raised."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTLOSS_")}
    full.update(env)
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], env=full, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


REPORT = ("import json, warnings, fastloss\n"
          "print(json.dumps({'isa': fastloss._core.current_isa(), 'available': fastloss._core.available_isas(),"
          " 'threads': fastloss.get_num_threads()}))")


def test_available_isas_ordered_lowest_first():
    available = _core.available_isas()
    assert available[0] == "baseline"
    assert len(set(available)) == len(available)
    assert set(available) <= set(ORDER)
    assert available == sorted(available, key=ORDER.index)


def test_default_isa_is_the_best_available():
    report, _ = _run(REPORT)
    assert report["isa"] == report["available"][-1]


def test_select_isa(isa):
    assert _core.current_isa() == isa
    x = np.linspace(-3, 3, 1001)
    assert fastloss.mse_loss(x, 0 * x) == pytest.approx(np.mean(x**2), rel=1e-12)


@pytest.mark.parametrize("bad", ["bogus", "", "AVX2", "sse2", "avx512 "])
def test_select_isa_rejects_unknown(bad):
    before = _core.current_isa()
    with pytest.raises(ValueError, match="isa"):
        _core.select_isa(bad)
    assert _core.current_isa() == before


def test_show_config_names_the_isa():
    buf = io.StringIO()
    fastloss.show_config(file=buf)
    text = buf.getvalue()
    assert _core.current_isa() in text
    for name in _core.available_isas():
        assert name in text
    assert fastloss.__version__ in text
    assert str(fastloss.get_num_threads()) in text


def test_show_config_follows_the_selected_isa(isa):
    buf = io.StringIO()
    fastloss.show_config(file=buf)
    line = next(l for l in buf.getvalue().splitlines() if "isa" in l)
    assert line.split(":", 1)[1].split()[0] == isa


def test_show_config_prints_to_stdout(capsys):
    fastloss.show_config()
    assert _core.current_isa() in capsys.readouterr().out


def test_env_isa_baseline():
    report, stderr = _run(REPORT, FASTLOSS_ISA="baseline")
    assert report["isa"] == "baseline"
    assert "RuntimeWarning" not in stderr


@pytest.mark.parametrize("level", ORDER)
def test_env_isa_each_level(level):
    report, stderr = _run(REPORT, FASTLOSS_ISA=level)
    if level in report["available"]:
        assert report["isa"] == level
        assert "RuntimeWarning" not in stderr
    else:
        assert "RuntimeWarning" in stderr and level in stderr
        assert report["isa"] == report["available"][-1]


def test_env_isa_unavailable_warns_and_falls_back():
    code = (
        "import json, warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastloss\n"
        "print(json.dumps({'isa': fastloss._core.current_isa(), 'best': fastloss._core.available_isas()[-1],"
        " 'warnings': [(c.category.__name__, str(c.message)) for c in w]}))"
    )
    report, _ = _run(code, FASTLOSS_ISA="bogus")
    assert report["isa"] == report["best"]
    assert any(cat == "RuntimeWarning" and "FASTLOSS_ISA" in msg and "bogus" in msg
               for cat, msg in report["warnings"]), report["warnings"]


def test_env_num_threads():
    report, stderr = _run(REPORT, FASTLOSS_NUM_THREADS="3")
    assert report["threads"] == 3
    assert "RuntimeWarning" not in stderr


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_env_num_threads_invalid_warns(bad):
    report, stderr = _run(REPORT, FASTLOSS_NUM_THREADS=bad)
    assert "RuntimeWarning" in stderr and "FASTLOSS_NUM_THREADS" in stderr
    assert report["threads"] >= 1


def test_default_threads_are_the_usable_cpus():
    report, _ = _run(REPORT)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert report["threads"] == expected


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_set_get_num_threads(restore_threads, n):
    fastloss.set_num_threads(n)
    # Capped at 4x the usable CPUs (more threads only add switching).
    assert fastloss.get_num_threads() == min(n, 4 * len(os.sched_getaffinity(0)))
    x = np.linspace(-1, 1, 100_001)
    assert fastloss.l1_loss(x, np.zeros_like(x), reduction="sum") == pytest.approx(np.abs(x).sum(), rel=1e-12)
