"""Sphinx extension: one page per registered loss, generated at build time
from the loss registry (fastloss._api.REGISTRY), with its figure drawn by
``fastloss._plot`` and links to its kernel, reference and test sources (shown
as pages of the site, so the links work offline).

Generated files go to ``docs/_generated`` (not in git); every build rewrites
them, so a new loss gets its page with no edit here."""

from __future__ import annotations

import json
import os
import pathlib

from fastloss._api import REGISTRY

DOCS = pathlib.Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"
BENCH = ROOT / "bench" / "results" / "avx512-2threads-float32.json"

# Source files shown on the site: (path in the repository, language).
FAMILY_KERNELS = {
    "regression": "cpp/src/losses/regression.h",
    "probabilistic": "cpp/src/losses/probabilistic.h",
    "margin": "cpp/src/losses/margin.h",
    "classification": "cpp/src/losses/classification.h",
    "sequence": "cpp/src/losses/ctc.cpp",
    "embedding": "cpp/src/losses/embedding.h",
}
SOURCES = [
    ("cpp/include/fastloss/losses.h", "c++"),
    ("cpp/src/simd/elementwise_driver.h", "c++"),
    ("cpp/src/simd/rowwise_driver.h", "c++"),
    ("cpp/src/simd/math.h", "c++"),
    ("tests/cases.py", "python"),
]


def _slug(path):
    return path.replace("/", "-").replace(".", "-")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _speed(results, name):
    """Lines of the measured forward/fused speed of ``name`` (bench JSON), or []."""
    rows = [r for r in results if r.get("loss") == name]
    lines = []
    for r in rows:
        fl = r.get("fastloss", {})
        peers = r.get("peers", {})
        torch = peers.get("torch", {})
        if not fl or not torch:
            continue
        lines.append(f"| {r['op']} | {fl['seconds'] * 1e3:.2f} ms | {torch['seconds'] * 1e3:.2f} ms | "
                     f"{torch.get('speedup', 0):.1f}x |")
    if not lines:
        return []
    return ["| operation | fastloss | torch | speed-up |", "|---|---|---|---|", *lines]


def _kernel_path(spec):
    path = FAMILY_KERNELS.get(spec.family, f"cpp/src/losses/{spec.family}.h")
    return path if (ROOT / path).exists() else None


def generate(app=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastloss import _plot

    bench = json.loads(BENCH.read_text()) if BENCH.exists() else None
    results = bench["results"] if bench else []
    _performance(bench)
    sources = list(SOURCES)
    for path in sorted(set(filter(None, (_kernel_path(s) for s in REGISTRY.values())))):
        sources.append((path, "c++"))
    for path, lang in sources:
        if (ROOT / path).exists():
            _write(OUT / "source" / f"{_slug(path)}.md",
                   f"# `{path}`\n\n```{{literalinclude}} ../../../{path}\n:language: {lang}\n:linenos:\n```\n")
    names = list(REGISTRY)
    for name in names:
        spec = REGISTRY[name]
        if name in _plot.SETUPS:
            fig = _plot.plot(name)
            fig.savefig(OUT / "losses" / f"{name}.png" if (OUT / "losses").exists() else _mk(OUT / "losses")
                        / f"{name}.png", dpi=90)
            plt.close(fig)
        kernel = _kernel_path(spec)
        torch_peer = getattr(spec.torch, "__qualname__", None)
        lines = [
            f"# {name}",
            "",
            f"`fastloss.{name}`, `fastloss.{name}_backward`, `fastloss.{name}_value_and_grad`; class "
            f"`fastloss.nn.{spec.class_name}`; torch: `{torch_peer or 'none'}`. Differentiable arrays: "
            f"{', '.join(f'`{g}`' for g in spec.grads)}.",
            "",
        ]
        if name in _plot.SETUPS:
            lines += [f"![{name} and its gradient]({name}.png)", "",
                      f"*The loss and its gradient w.r.t. `{spec.arrays[0]}`, computed by the kernels "
                      f"(`fastloss plot {name} -o {name}.png`).*", ""]
        lines += ["## Function", "", "```{eval-rst}", f".. autofunction:: fastloss.{name}", "```", ""]
        lines += ["```{eval-rst}", f".. autofunction:: fastloss.{name}_backward", "",
                  f".. autofunction:: fastloss.{name}_value_and_grad", "```", ""]
        speed = _speed(results, name)
        if speed:
            lines += ["## Speed", "",
                      "float32, 2^24 elements, 2 threads, against torch as users run it (`fastloss bench`; "
                      "see [performance](../../performance.md)):", "", *speed, ""]
        lines += ["## Sources", ""]
        if kernel:
            lines.append(f"- kernel: [`{kernel}`](../source/{_slug(kernel)}.md) (the functor), listed in "
                         f"[`cpp/include/fastloss/losses.h`](../source/{_slug('cpp/include/fastloss/losses.h')}.md)")
        lines += [f"- reference: `fastloss.reference.{name}` (plain NumPy, float64; its [source] link below)",
                  f"- tests: its row in [`tests/cases.py`](../source/{_slug('tests/cases.py')}.md) drives the "
                  "registry-wide tests", "",
                  "```{eval-rst}", f".. autofunction:: fastloss.reference.{name}", "```", ""]
        _write(OUT / "losses" / f"{name}.md", "\n".join(lines))
    index = ["# Losses", "", "One page per registered loss (generated from the registry).", "",
             "| loss | class | family |", "|---|---|---|"]
    index += [f"| [{n}]({n}.md) | `{REGISTRY[n].class_name}` | {REGISTRY[n].family} |" for n in names]
    index += ["", "```{toctree}", ":hidden:", "", *names, "```", ""]
    _write(OUT / "losses" / "index.md", "\n".join(index))
    src_index = ["# Source files", "", "```{toctree}", ""]
    src_index += [f"{_slug(p)}" for p, _ in sources if (ROOT / p).exists()]
    src_index += ["```", ""]
    _write(OUT / "source" / "index.md", "\n".join(src_index))


def _performance(bench):
    """The performance page's tables from the committed bench JSON: the
    summary (one row per loss) and the whole report, as ``fastloss bench
    --markdown`` prints them, so the page shows exactly the saved run."""
    import io

    from fastloss.bench import report

    if bench is None:
        _write(OUT / "performance-summary.md", "No saved run (bench/results/avx512-2threads-float32.json).\n")
        _write(OUT / "performance-full.md", "\n")
        return
    headers, rows = report.summary_rows(bench)
    summary, full = io.StringIO(), io.StringIO()
    report.print_table("", headers, rows, file=summary, left=1, markdown=True)
    report.print_report(bench, file=full, markdown=True)
    text = summary.getvalue().strip().splitlines()
    _write(OUT / "performance-summary.md", "\n".join(ln for ln in text if ln.startswith("|")) + "\n")
    _write(OUT / "performance-full.md", full.getvalue())


def _mk(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    os.chdir(DOCS)
    generate()
