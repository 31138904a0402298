"""Losses over data that arrive in chunks: :class:`Accumulator`.

A reduced loss is a sum of per-element (or per-sample) terms divided by a
denominator (the element count, the sum of the weights, the batch size of
``'batchmean'`` ...). Each chunk's call gives both as float64 (the kernels'
blocked sums); an accumulator keeps their compensated sums, so chunked updates
and merges in any order equal one call over all the data to float64 rounding.
The state is a few numbers: it pickles, travels between processes and merges
on a cluster (``fastloss.dask``)."""

from __future__ import annotations

import math

import numpy as np

from . import _validate as _v
from ._api import PARTIAL, REGISTRY

STATE_VERSION = 1


class _CompensatedSum:
    """Neumaier's compensated sum of float64 terms; non-finite terms are kept
    apart (their plain sum), so one inf or NaN gives the one-shot result's
    inf or NaN instead of a NaN compensation."""

    __slots__ = ("high", "low", "nonfinite")

    def __init__(self, high=0.0, low=0.0, nonfinite=0.0):
        self.high, self.low, self.nonfinite = float(high), float(low), float(nonfinite)

    def add(self, x, low=0.0):
        x = float(x)
        if not math.isfinite(x):
            self.nonfinite += x
            return
        t = self.high + x
        if abs(self.high) >= abs(x):
            self.low += (self.high - t) + x
        else:
            self.low += (x - t) + self.high
        self.high = t
        self.low += low

    def merge(self, other):
        self.add(other.high, other.low)
        self.nonfinite += other.nonfinite

    def value(self):
        return (self.high + self.low) + self.nonfinite

    def as_tuple(self):
        return (self.high, self.low, self.nonfinite)


def _options_equal(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype
                    and np.array_equal(x, y, equal_nan=True)):
                return False
        elif type(x) is not type(y) or not (x == y or (x != x and y != y)):
            return False
    return True


class Accumulator:
    """A reduced loss over chunks of data.

    ``Accumulator(name, **options)``: ``name`` is a functional name
    (``"mse_loss"``, ``"kl_div"`` ...; see ``fastloss list``), ``options``
    the keyword arguments of that function that hold for every chunk
    (``reduction``, ``beta``, ``pos_weight`` ...). ``reduction='none'`` has no
    partial form (``ValueError``).

    ``update(*arrays, **chunk_arrays)`` evaluates one chunk: the function's
    array arguments (``input, target`` ...) for the chunk's rows, plus any
    per-element keyword array of the chunk (``weight=`` of
    ``binary_cross_entropy``). ``merge(other)`` adds another accumulator of
    the same loss and options (``ValueError`` otherwise), in place; it returns
    ``self``. ``result()`` is the loss over everything seen, a NumPy scalar
    of the dtype a one-shot call would return: equal to that call to float64
    rounding (the compensated sums of float64 partials), for any chunking and
    merge order. An accumulator that has seen nothing returns what a call on
    empty arrays does (``'mean'``: NaN, ``'sum'``: 0, in float32).

    ``state()`` is a small picklable dict (versioned);
    ``Accumulator.from_state(state)`` rebuilds the accumulator.

    Chunks split the data along the first (batch) axis, as the one-shot call
    would see it: ``'batchmean'`` divides by the sum of the chunks' first
    dimensions."""

    def __init__(self, name, **options):
        spec = REGISTRY.get(name)
        if spec is None:
            raise ValueError(f"name: unknown loss {name!r}; one of {', '.join(sorted(REGISTRY))}")
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            raise TypeError(f"{name}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                            f"its options are {', '.join(spec.options)}")
        reduction = options.get("reduction", spec.options.get("reduction", "mean"))
        if reduction == "none":
            raise ValueError("reduction: 'none' has no partial form (one value per element); use 'sum', 'mean' "
                             "or the loss's other reductions, or call the function on each chunk")
        self._spec = spec
        self._options = dict(options)
        self._reduction = reduction
        self._total = _CompensatedSum()
        self._denominator = _CompensatedSum()
        self._dtype = None
        self._updates = 0

    @property
    def name(self):
        return self._spec.name

    @property
    def options(self):
        return dict(self._options)

    def update(self, *arrays, **chunk_arrays):
        """Adds one chunk (the function's array arguments); returns ``self``."""
        clash = sorted(set(chunk_arrays) & set(self._options))
        if clash:
            raise TypeError(f"{', '.join(clash)}: given to the Accumulator and to update(); give it once")
        part = self._spec.impl(PARTIAL, None, None, *arrays, **self._options, **chunk_arrays)
        self._total.add(part.total)
        self._denominator.add(part.denominator)
        self._dtype = part.dtype if self._dtype is None else np.promote_types(self._dtype, part.dtype)
        self._updates += 1
        return self

    def merge(self, other):
        """Adds ``other`` (same loss and options) into this accumulator; returns ``self``."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"other: expected an Accumulator, got {type(other).__name__}")
        if other._spec.name != self._spec.name:
            raise ValueError(f"other: accumulates {other._spec.name}, this one {self._spec.name}")
        if not _options_equal(other._options, self._options):
            raise ValueError(f"other: options {other._options} differ from this accumulator's {self._options}")
        self._total.merge(other._total)
        self._denominator.merge(other._denominator)
        if other._dtype is not None:
            self._dtype = other._dtype if self._dtype is None else np.promote_types(self._dtype, other._dtype)
        self._updates += other._updates
        return self

    def result(self):
        """The loss over every chunk seen (and merged), as the one-shot call returns it."""
        dtype = self._dtype if self._dtype is not None else np.dtype(np.float32)
        total = self._total.value()
        if self._reduction == "sum":
            return _v.narrow(total, dtype)
        return _v.narrow(_v.divide(total, self._denominator.value()), dtype)

    def state(self):
        """A small picklable dict from which :meth:`from_state` rebuilds this accumulator."""
        return {
            "version": STATE_VERSION,
            "name": self._spec.name,
            "options": dict(self._options),
            "total": self._total.as_tuple(),
            "denominator": self._denominator.as_tuple(),
            "dtype": None if self._dtype is None else self._dtype.name,
            "updates": self._updates,
        }

    @classmethod
    def from_state(cls, state):
        """The accumulator a :meth:`state` dict describes (``ValueError`` for
        another version or a malformed state)."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state: expected a fastloss Accumulator state of version {STATE_VERSION}, got {found!r}")
        try:
            name, options = state["name"], state["options"]
            total, denominator = _state_sum(state, "total"), _state_sum(state, "denominator")
            dtype, updates = state["dtype"], state["updates"]
        except KeyError as e:
            raise ValueError(f"state: malformed (no {e} entry)") from None
        if not isinstance(name, str) or not isinstance(options, dict):
            raise ValueError("state: malformed ('name' must be a str and 'options' a dict)")
        if isinstance(updates, bool) or not isinstance(updates, (int, np.integer)) or updates < 0:
            raise ValueError(f"state: malformed ('updates' must be a non-negative integer, got {updates!r})")
        acc = cls(name, **options)
        acc._total, acc._denominator = total, denominator
        acc._dtype = None if dtype is None else _state_dtype(dtype)
        acc._updates = int(updates)
        return acc

    def __getstate__(self):
        return self.state()

    def __setstate__(self, state):
        self.__dict__.update(Accumulator.from_state(state).__dict__)

    def __repr__(self):
        return (f"Accumulator({self._spec.name!r}, {', '.join(f'{k}={v!r}' for k, v in self._options.items())}"
                f"{', ' if self._options else ''}updates={self._updates})")


def _state_sum(state, key):
    """The compensated sum a state's ``key`` entry (three real numbers) holds."""
    value = state[key]
    try:
        if len(value) != 3:
            raise TypeError
        return _CompensatedSum(*(_real(v) for v in value))
    except TypeError:
        raise ValueError(f"state: malformed ({key!r} must be three real numbers, got {value!r})") from None


def _real(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError
    return float(v)


_STATE_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _state_dtype(name):
    if name not in _STATE_DTYPES:
        raise ValueError(f"state: malformed ('dtype' must be one of {', '.join(_STATE_DTYPES)} or None, got {name!r})")
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)
