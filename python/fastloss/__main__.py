"""``python -m fastloss`` = the ``fastloss`` command."""

import sys

from ._cli import main

sys.exit(main())
