"""Shared fixtures: instruction-set level, thread count, dtype, reduction, and
the hypothesis profile that keeps the suite fast."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastloss
from fastloss import _core

from cases import DTYPES, REDUCTIONS

# Hypothesis imports this module (and, through it, a dependency that emits a
# DeprecationWarning) only when it reports a failing example; with
# `filterwarnings = error` that would turn every hypothesis failure into a
# pytest INTERNALERROR. Import it once here, warnings silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - optional in hypothesis
        pass


# Bounded examples, no deadline (first calls pay for page faults, CI machines
# are noisy), no example database written into the repository, and function-
# scoped fixtures are fine: `isa`/`threads` set global state that is the same
# for every example.
def _profile(name, max_examples, suppress=(HealthCheck.function_scoped_fixture, HealthCheck.too_slow),
             derandomize=False):
    settings.register_profile(name, max_examples=max_examples, deadline=None, database=None, print_blob=True,
                              suppress_health_check=list(suppress), derandomize=derandomize)


# The default profile draws the same examples every run (a CI result is
# reproducible); "thorough" and "fuzz" explore new ones each time.
_profile("ci", 50, derandomize=True)
_profile("thorough", 400)
# Long hostile-input fuzzing (meant for tests/test_fuzz.py, ~5 minutes):
# HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_fuzz.py
_profile("fuzz", 10_000, suppress=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=_core.available_isas())
def isa(request):
    """Runs the test on one instruction-set level (every available one in
    turn), restoring the level that was selected before."""
    previous = _core.current_isa()
    _core.select_isa(request.param)
    assert _core.current_isa() == request.param
    try:
        yield request.param
    finally:
        _core.select_isa(previous)


@pytest.fixture
def restore_threads():
    """Restores fastloss's thread setting after the test."""
    previous = fastloss.get_num_threads()
    try:
        yield
    finally:
        fastloss.set_num_threads(previous)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(params=REDUCTIONS)
def reduction(request):
    return request.param
