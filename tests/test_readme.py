"""Every ```python block of README.md runs, as a script in a fresh process
(blocks needing torch, JAX or Dask are skipped when those are missing)."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S) if README.exists() else []
OPTIONAL = ("torch", "jax", "dask", "distributed")


@pytest.mark.skipif(not BLOCKS, reason="no README.md next to the tests (an installed copy of the tests)")
@pytest.mark.parametrize("index", list(range(len(BLOCKS))))
def test_readme_block_runs(index, tmp_path):
    code = BLOCKS[index]
    for module in OPTIONAL:
        if re.search(rf"^\s*(import|from) {module}\b|import .*\b{module}\b", code, re.M) and \
                importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    script = tmp_path / f"block{index}.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(script)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_has_python_blocks():
    if not README.exists():
        pytest.skip("no README.md next to the tests")
    assert len(BLOCKS) >= 3
