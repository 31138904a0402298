"""The benchmark behind ``fastloss bench`` (and ``bench/run.py``).

For every loss in the registry (:data:`fastloss._api.REGISTRY`) it times, in
one process and with the same threads for everyone, fastloss's forward,
backward and value_and_grad (with and without ``out=``) against the NumPy
reference, torch and JAX (each loss's ``torch=``/``jax=`` expression in the
registry), plus a memory-bandwidth probe: the roofline. bench/README.md says
how each number is measured. The modules, in the order a run uses them:

* :mod:`.machine`    CPUs, thread pinning, glibc malloc tuning, hardware/software description;
* :mod:`.peers`      the NumPy reference, torch and JAX, built from the registry;
* :mod:`.workload`   a loss's sampled data, the bytes each op moves, fastloss's own cases;
* :mod:`.roofline`   the memory-bandwidth probe made of fastloss's kernels;
* :mod:`.timing`     warm-up and round-robin timing of cases, median and spread;
* :mod:`.progress`   the progress bar on stderr;
* :mod:`.runner`     :func:`run`, which ties them together into a result dict;
* :mod:`.report`     the printed tables, JSON, CSV, plot and ``--compare``;
* :mod:`.small_calls`  per-call overhead of every entry point on 100 elements.

    >>> from fastloss import bench
    >>> result = bench.run(["mse_loss"], quick=True)  # doctest: +SKIP
    >>> bench.print_report(result)                     # doctest: +SKIP
"""

from .report import load, plot, print_comparison, print_report, write_csv, write_json
from .runner import run
from .workload import OPS

__all__ = ["run", "print_report", "print_comparison", "write_json", "write_csv", "plot", "load", "OPS"]
