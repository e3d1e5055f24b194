"""``python -m pinnersage``: the command line."""

import sys

from pinnersage.cli import main

sys.exit(main())
