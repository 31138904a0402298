"""Every example of README.md and docs/*.md runs: each ```python block that
imports something is run as a script in a fresh process (blocks needing
torch, JAX, Dask or matplotlib are skipped when those are missing). Blocks
without an import are signatures or fragments of a running text, not
examples, and are not run."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if (ROOT / "README.md").exists() else []
BLOCKS = [(f"{path.relative_to(ROOT)}[{i}]", code)
          for path in FILES
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S))]
OPTIONAL = ("torch", "jax", "dask", "distributed", "matplotlib")


@pytest.mark.skipif(not BLOCKS, reason="no README.md/docs next to the tests (an installed copy of the tests)")
@pytest.mark.parametrize("code", [pytest.param(code, id=name) for name, code in BLOCKS])
def test_example_runs(code, tmp_path):
    if not re.search(r"^\s*(import|from)\s", code, re.M):
        pytest.skip("a signature or fragment, not an example")
    for module in OPTIONAL:
        if re.search(rf"^\s*(import|from)\s+{module}\b|^\s*import .*\b{module}\b", code, re.M) and \
                importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(script)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


def test_there_are_examples():
    if not FILES:
        pytest.skip("no README.md next to the tests")
    assert len(BLOCKS) >= 5
