#!/usr/bin/env python
"""Per-call cost of every entry point on 100 float32 elements (µs), for every
registered loss, with torch's own call alongside: ``python bench/small_calls.py
[--losses ...] [--size N] [--repeat R] [--markdown]`` is ``fastloss bench
--small-calls [...]``. The engine is ``fastloss.bench.small_calls``."""

import sys

from fastloss._cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--small-calls", *sys.argv[1:]]))
