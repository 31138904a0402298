"""The benchmark behind ``fastloss bench``: how each number is measured.

For every loss in the registry (:data:`fastloss._api.REGISTRY`) it times, in
one process and with the same threads for everyone, fastloss's forward,
backward and value_and_grad (with and without ``out=``) against the NumPy
reference, torch and JAX (each loss's ``torch=``/``jax=`` expression in the
registry), plus a memory-bandwidth probe: the roofline. ``fastloss bench
--help`` lists the options.

The table, one per loss:

* **op**: ``forward`` = ``f(...)``, ``backward`` = ``f_backward(...)``,
  ``value_and_grad`` = ``f_value_and_grad(...)``, ``value_and_grad(out=)`` =
  the same into preallocated gradient buffers (peers have no ``out=``: their
  fused time). torch's backward is its forward + ``.backward()``.
* **malloc**: ``default`` is what a user gets; ``tuned`` re-times the calls
  with glibc's ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD,
  2**31-1)`` (large results from the heap instead of a fresh page-faulting
  ``mmap``): every library at its best. Linux/glibc only; ``--no-best`` skips it.
* **fastloss** and each peer: median of ``--repeat`` calls, then ``(min–max)``
  in the same unit; ``!`` marks a spread above 1.5× (max/min), and a
  "noisy machine" warning above the tables counts them. ``×N`` after a
  peer's time = peer time / fastloss time (above 1: fastloss is faster).
* **GB/s**: bytes the op reads and writes (inputs; gradients; the loss for
  ``reduction='none'``) / time.
* **% of roofline**: two probes made of fastloss's own kernels (a threaded sum
  over ``2 × size`` elements: reading; a copy of ``size`` elements: reading
  and writing), timed inside each loss's rounds, give a cost per byte read
  and per byte written; roofline time = the op's bytes at those costs, and
  the percentage = roofline time / op time. The probes are simple kernels,
  not a hardware limit: above 100 % (marked ``†``) the op streamed faster
  than they did, its data fit in a cache, or the probes met more noise.
* **reference (NumPy f64)**: :mod:`fastloss.reference`, plain float64 NumPy.

Timing: two warm-up calls (JAX compiles in them), then all cases of a loss,
every implementation and the probes, round-robin, one call each per round
in rotated order, so a noisy neighbour slows them all alike; a 5 ms pause
off the clock before each call lets torch's and XLA's spinning workers go
idle; the garbage collector is off. Threads: before torch and JAX are
imported, the process is pinned to the first ``--threads`` usable CPUs
(``os.sched_setaffinity``), and torch, JAX and fastloss run that many
threads; run it in a fresh process (a torch imported earlier keeps its pools;
the report says so). ``--json`` keeps every call's time; ``load(path)`` reads
a saved run back and ``print_report`` prints it again.

The modules, in the order a run uses them:

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
