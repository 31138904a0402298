#!/usr/bin/env python
"""The fastloss benchmark: ``python bench/run.py [options]`` is ``fastloss bench [options]``.

The engine is the ``fastloss.bench`` package (installed with fastloss); see
bench/README.md for what is measured and how the peers are configured."""

import sys

from fastloss._cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
