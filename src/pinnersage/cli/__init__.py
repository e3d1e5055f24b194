"""The ``pinnersage`` command.

Every module of this package whose name does not start with ``_`` is a subcommand: it defines
``add_parser(subparsers) -> argparse.ArgumentParser`` and sets ``func`` (``args -> int``) as the
parser default. Command modules import heavy libraries inside ``run``, never at module top, so
``pinnersage --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from pinnersage.errors import PinnerSageError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinnersage",
        description="PinnerSage: multi-interest user profiles and retrieval (KDD 2020).",
    )
    from pinnersage import __version__

    parser.add_argument("--version", action="version", version=f"pinnersage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 on bad input, with a one-line error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PinnerSageError as exc:
        print(f"pinnersage {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pinnersage {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
