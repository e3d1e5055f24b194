"""Entry file for ``spark-submit``: runs ``pinnersage batch`` with the submitted Spark session.

``spark-submit [options] $(python -m pinnersage.batch.submit --path) --engine spark --actions ...``
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """``pinnersage batch`` with ``argv``; ``--path`` prints this file's path (for spark-submit)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--path"]:
        print(__file__)
        return 0
    from pinnersage.cli import main as cli_main

    return cli_main(["batch", *args])


if __name__ == "__main__":
    sys.exit(main())
