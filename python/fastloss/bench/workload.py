"""What is timed for one loss: its sampled data, the bytes each operation
moves, and fastloss's own cases (forward, backward, value_and_grad with and
without ``out=``)."""

from __future__ import annotations

import zlib

import numpy as np

from .timing import Case

__all__ = ["OPS", "OP_LABELS", "Data", "fastloss_cases", "bench_rows"]

OPS = ("forward", "backward", "value_and_grad", "value_and_grad_out")
OP_LABELS = {
    "forward": "forward",
    "backward": "backward",
    "value_and_grad": "value_and_grad",
    "value_and_grad_out": "value_and_grad(out=)",
}


def bench_rows(names):
    """``[(row label, spec, sample)]`` for the registry names ``names``: each
    loss's default row, then its ``bench_variants`` as ``name[label]``; a
    name may also be one ``name[label]`` row alone."""
    from .._api import REGISTRY

    rows = []
    for name in names:
        base, _, label = name.partition("[")
        spec = REGISTRY[base]
        if not label:
            rows.append((name, spec, spec.sample))
            rows.extend((f"{name}[{lab}]", spec, sample) for lab, sample in spec.bench_variants)
        else:
            rows.extend((name, spec, sample) for lab, sample in spec.bench_variants if lab == label.rstrip("]"))
    return rows


class Data:
    """One loss's sampled arrays and options (``spec.sample`` with a seed fixed
    per loss, then ``reduction``), and the bytes each op moves."""

    def __init__(self, spec, size, dtype, reduction="mean", sample=None):
        rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
        arrays, options = (sample or spec.sample)(rng, size, np.dtype(dtype))
        options = dict(options)
        if "reduction" in spec.options:
            options["reduction"] = reduction
        self.arrays, self.options = tuple(arrays), options
        # (a gradient of a keyword array, linear_cross_entropy's linear_bias, is
        # not timed: the samples leave it out)
        self.grad_index = [spec.arrays.index(g) for g in spec.grads
                           if g in spec.arrays and isinstance(self.arrays[spec.arrays.index(g)], np.ndarray)]
        self.read_bytes = sum(a.nbytes for a in list(self.arrays) + list(options.values())
                              if isinstance(a, np.ndarray))
        self.grad_bytes = sum(self.arrays[i].nbytes for i in self.grad_index)
        outs = []
        for g in spec.grads:
            a = self.arrays[spec.arrays.index(g)] if g in spec.arrays else options.get(g)
            outs.append(np.zeros_like(a) if isinstance(a, np.ndarray) else None)
        self.out = outs[0] if len(outs) == 1 else tuple(outs)

    def op_traffic(self, value):
        """``{op: (bytes read, bytes written)}``, given the forward's result:
        the inputs are read; the gradients, and the loss for
        ``reduction='none'``, are written."""
        value_bytes = value.nbytes if isinstance(value, np.ndarray) and value.ndim else 0
        both = (self.read_bytes, self.grad_bytes + value_bytes)
        return {
            "forward": (self.read_bytes, value_bytes),
            "backward": (self.read_bytes, self.grad_bytes),
            "value_and_grad": both,
            "value_and_grad_out": both,
        }


def fastloss_cases(spec, data, config, repeat):
    """``{op: Case}`` for fastloss; ``config`` "best" (tuned malloc) has no
    ``out=`` row, which allocates nothing anyway."""
    a, o, out = data.arrays, data.options, data.out
    name = "fastloss" if config == "as_run" else "fastloss_best"
    cases = {
        "forward": Case((name, "forward"), lambda: spec.forward(*a, **o), repeat),
        "backward": Case((name, "backward"), lambda: spec.backward(*a, **o), repeat),
        "value_and_grad": Case((name, "value_and_grad"), lambda: spec.value_and_grad(*a, **o), repeat),
    }
    if config == "as_run":
        cases["value_and_grad_out"] = Case(
            (name, "value_and_grad_out"), lambda: spec.value_and_grad(*a, out=out, **o), repeat)
    return cases
