"""``fastloss eval``: .npy files of any size in blocks of rows through a
memory map; the value equals the one-shot call; bounded memory; clear errors."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss
from fastloss._cli import main


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1001, 7)).astype(np.float32)
    y = rng.normal(size=(1001, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, x, y


def _eval(capsys, *argv):
    code = main(["eval", *map(str, argv), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("chunk", [1, 64, 1000, 5000])
def test_value_equals_one_shot(files, capsys, chunk):
    d, x, y = files
    code, out, _ = _eval(capsys, "smooth_l1_loss", d / "x.npy", d / "y.npy", "--chunk", chunk, "--option", "beta=0.5")
    assert code == 0
    expected = fastloss.smooth_l1_loss(x, y, beta=0.5)
    assert abs(int(np.float32(float(out)).view(np.int32)) - int(expected.view(np.int32))) <= 1


@pytest.mark.parametrize("chunk", [None, 1, 333])
def test_value_is_the_accumulators_over_the_blocks(tmp_path, capsys, chunk):
    """eval's value is an Accumulator over its blocks of rows, bit for bit
    (same sums), and equals the one-shot call (float64: to 1e-12 relative)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1001, 5))
    y = rng.normal(size=(1001, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    argv = ["huber_loss", tmp_path / "x.npy", tmp_path / "y.npy", "--json", "--option", "delta=0.7"]
    code, out, _ = _eval(capsys, *argv, *(() if chunk is None else ("--chunk", chunk)))
    assert code == 0
    record = json.loads(out)
    acc = fastloss.Accumulator("huber_loss", delta=0.7)
    rows = record["chunk_rows"]
    for lo in range(0, len(x), rows):
        acc.update(x[lo:lo + rows], y[lo:lo + rows])
    assert record["value"] == float(acc.result())
    assert record["total"] == sum(acc.state()["total"]) and record["denominator"] == x.size
    one_shot = float(fastloss.huber_loss(x, y, delta=0.7))
    assert abs(record["value"] - one_shot) <= 1e-12 * abs(one_shot)


def test_json_record_and_options(files, capsys):
    d, x, y = files
    np.save(d / "pw.npy", np.linspace(0.5, 2, 7, dtype=np.float32))
    t = (y > 0).astype(np.float32)
    np.save(d / "t.npy", t)
    code, out, _ = _eval(capsys, "binary_cross_entropy_with_logits", d / "x.npy", d / "t.npy", "--json",
                         "--chunk", 100, "--option", "reduction=sum", "--option", f"pos_weight={d / 'pw.npy'}")
    assert code == 0
    record = json.loads(out)
    expected = fastloss.binary_cross_entropy_with_logits(x, t, reduction="sum", pos_weight=np.linspace(0.5, 2, 7, dtype=np.float32))
    np.testing.assert_allclose(record["value"], expected, rtol=1e-6)
    assert record["rows"] == 1001 and record["chunks"] == 11 and record["dtype"] == "float32"
    assert record["options"]["reduction"] == "sum"


def test_errors(files, capsys):
    d, x, y = files
    np.save(d / "short.npy", y[:10])
    (d / "text.npy").write_text("not an array")
    np.save(d / "obj.npy", np.array([object()] * 3), allow_pickle=True)
    np.save(d / "int.npy", np.arange(1001 * 7).reshape(1001, 7))
    cases = [
        ((d / "x.npy", d / "missing.npy"), "missing.npy"),
        ((d / "x.npy", d / "short.npy"), "10 rows"),
        ((d / "x.npy", d / "text.npy"), "not a .npy"),
        ((d / "x.npy", d / "obj.npy"), "objects"),
        ((d / "int.npy", d / "y.npy"), "input"),
        ((d / "x.npy",), "target"),
        ((d / "x.npy", d / "y.npy", d / "y.npy"), "takes 2 arrays"),
    ]
    for paths, message in cases:
        code, _, err = _eval(capsys, "mse_loss", *paths)
        assert code == 2 and message in err, (paths, err)
    code, _, err = _eval(capsys, "mse_loss", d / "x.npy", d / "y.npy", "--option", "reduction=none")
    assert code == 2 and "reduction" in err
    with pytest.raises(SystemExit):
        main(["eval", "no_such_loss", str(d / "x.npy")])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_stays_bounded(tmp_path):
    """Two 256 MB files: the process's peak resident set grows by far less
    than the data (blocks' pages are dropped once done)."""
    rows = 16_000_000
    for name in ("x", "y"):
        arr = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=np.float32, shape=(rows, 4))
        arr[:] = 0.5 if name == "x" else 0.25
        arr.flush()
        del arr
    # VmHWM: this process's peak resident set (ru_maxrss would carry the
    # parent's peak across fork and exec).
    script = textwrap.dedent(f"""
        import re, sys
        from fastloss._cli import main
        def peak_kb():
            with open("/proc/self/status") as f:
                return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1))
        before = peak_kb()
        code = main(["eval", "mse_loss", r"{tmp_path / 'x.npy'}", r"{tmp_path / 'y.npy'}", "--quiet",
                     "--chunk", "1000000"])
        print((peak_kb() - before) // 1024, file=sys.stderr)
        sys.exit(code)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 0.0625
    growth_mb = int(done.stderr.strip().splitlines()[-1])
    assert growth_mb < 100, growth_mb  # (without dropping pages: ~300)


def test_option_values_inf_nan_and_missing_array_files(files, capsys):
    d, x, y = files
    code, out, _ = _eval(capsys, "huber_loss", d / "x.npy", d / "y.npy", "--option", "delta=inf")
    assert code == 0
    expected = fastloss.huber_loss(x, y, delta=float("inf"))
    assert abs(int(np.float32(float(out)).view(np.int32)) - int(expected.view(np.int32))) <= 1
    code, _, err = _eval(capsys, "binary_cross_entropy_with_logits", d / "x.npy", d / "y.npy", "--option",
                         f"pos_weight={d / 'missing.npy'}")
    assert code == 2 and "pos_weight" in err and "missing.npy" in err
    code, _, err = _eval(capsys, "mse_loss", d / "x.npy", d / "y.npy", "--option", "=3")
    assert code == 2 and "NAME=VALUE" in err
