"""fastloss: torch.nn's loss functions, forward and backward, as SIMD/OpenMP
C++ kernels for NumPy arrays (torch 2.13 semantics).

    >>> import numpy as np, fastloss
    >>> x, y = np.ones(4, np.float32), np.zeros(4, np.float32)
    >>> float(fastloss.mse_loss(x, y))
    1.0
"""

from __future__ import annotations

import os as _os
import platform as _platform
import sys as _sys
import warnings as _warnings

from . import _core
from . import _validate as _v
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn  # noqa: E402
from . import reference  # noqa: E402,F401  (API.md §8: fastloss.reference.<fn>)

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads the kernels may use (an int >= 1). Results do not depend on it."""
    _core.set_num_threads(_v.positive_int(n, "n"))


def get_num_threads():
    """Threads the kernels may use."""
    return _core.get_num_threads()


def _default_threads():
    env = _os.environ.get("FASTLOSS_NUM_THREADS")
    if env:
        try:
            n = int(env)
            if n >= 1:
                return n
        except ValueError:
            pass
        _warnings.warn(f"FASTLOSS_NUM_THREADS={env!r} is not an int >= 1; ignored", RuntimeWarning, stacklevel=3)
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
        f"  threads:   {get_num_threads()} (openmp {_core.openmp})",
        f"  compiler:  {_core.compiler}",
        f"  python:    {_platform.python_version()} ({_platform.machine()})",
        f"  numpy:     {__import__('numpy').__version__}",
    ]
    print("\n".join(lines), file=file or _sys.stdout)


_core.set_num_threads(_default_threads())
_apply_isa_env()

__all__ = list(_functional_all) + ["nn", "reference", "set_num_threads", "get_num_threads", "show_config", "__version__"]
