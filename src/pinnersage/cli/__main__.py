"""``python -m pinnersage.cli``."""

import sys

from pinnersage.cli import main

sys.exit(main())
