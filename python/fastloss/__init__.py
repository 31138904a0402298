"""fastloss: torch.nn's loss functions, forward and backward, as SIMD/OpenMP
C++ kernels for NumPy arrays (torch 2.13 semantics).

    >>> import numpy as np, fastloss
    >>> x, y = np.ones(4, np.float32), np.zeros(4, np.float32)
    >>> float(fastloss.mse_loss(x, y))
    1.0
"""

import os as _os
import platform as _platform
import sys as _sys
import warnings as _warnings

from . import _core
from . import _validate as _v
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn  # noqa: E402
from .streaming import Accumulator  # noqa: E402
from . import reference  # noqa: E402,F401  (fastloss.reference.<fn>: the NumPy float64 reference)

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads the kernels may use: an int from 1 to 2**31 - 1 (``TypeError``
    for other types, ``ValueError`` outside that range). Counts beyond what
    helps (4x the CPUs this process may use, or the blocks of a call) are
    capped by the kernels. Results do not depend on it."""
    _core.set_num_threads(_v.thread_count(n, "n"))


def get_num_threads():
    """Threads the kernels may use (the last ``set_num_threads``, else
    ``FASTLOSS_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this
    process may use)."""
    return _core.get_num_threads()


def _default_threads():
    """The thread count at import. ``FASTLOSS_NUM_THREADS`` is ours: a value
    that is not an int from 1 to 2**31 - 1 is ignored (as if unset) with a
    RuntimeWarning naming it. ``OMP_NUM_THREADS`` (set for torch, NumPy's
    BLAS...) is the default when FASTLOSS_NUM_THREADS is unset; OpenMP's list
    form ("4,2": nested levels) gives its first entry, and an invalid value
    is ignored silently (not ours; the OpenMP runtime reports it)."""
    env = _os.environ.get("FASTLOSS_NUM_THREADS")
    if env:
        n = _v.thread_count_env(env)
        if n is not None:
            return n
        _warnings.warn(
            f"FASTLOSS_NUM_THREADS={env!r} is not an int from 1 to {_v.MAX_THREADS}; ignored",
            RuntimeWarning,
            stacklevel=3,
        )
    omp = _os.environ.get("OMP_NUM_THREADS")
    if omp:
        n = _v.thread_count_env(omp.split(",")[0])
        if n is not None:
            return n
    return _usable_cpus()


def _usable_cpus():
    try:
        return max(1, len(_os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, _os.cpu_count() or 1)


def _apply_isa_env():
    env = _os.environ.get("FASTLOSS_ISA")
    if not env:
        return
    available = _core.available_isas()
    if env not in available:
        _warnings.warn(
            f"FASTLOSS_ISA={env!r} is not available here (available: {', '.join(available)}); "
            f"using {_core.current_isa()}",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    _core.select_isa(env)


def show_config(file=None):
    """Prints the version, the instruction set chosen and available, threads and compiler."""
    lines = [
        f"fastloss {__version__}",
        f"  isa:       {_core.current_isa()} (available: {', '.join(_core.available_isas())})",
        f"  threads:   {get_num_threads()} (fastloss's own fork-safe pool; {_usable_cpus()} usable CPUs, "
        f"capped at 4 per CPU)",
        f"  compiler:  {_core.compiler}",
        f"  python:    {_platform.python_version()} ({_platform.machine()})",
        f"  numpy:     {__import__('numpy').__version__}",
    ]
    print("\n".join(lines), file=file or _sys.stdout)


_core.set_num_threads(_default_threads())
_apply_isa_env()

__all__ = list(_functional_all) + ["Accumulator", "nn", "reference", "set_num_threads", "get_num_threads", "show_config", "__version__"]

# Documented submodules that are not in __all__ (imported on use).
_SUBMODULES = ("functional", "streaming", "dask", "torch", "jax")


def __dir__():
    """Public names, documented submodules and the module's dunders only:
    no imports or helpers (PEP 562)."""
    return sorted(set(__all__) | set(_SUBMODULES) | {n for n in globals() if n.startswith("__") and n.endswith("__")})


del _default_threads, _apply_isa_env
