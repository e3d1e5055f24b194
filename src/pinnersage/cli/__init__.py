"""The ``pinnersage`` command.

Every module of this package whose name does not start with ``_`` is a subcommand: it defines
``add_parser(subparsers) -> argparse.ArgumentParser`` and sets ``func`` (``args -> int``) as the
parser default. Command modules import heavy libraries inside ``run``, never at module top, so
``pinnersage --help`` stays fast. Every command gets ``--config``, ``--quiet`` and ``--verbose``
(:mod:`pinnersage.cli._common`).

Bad input of any kind (a flag, a file, a row, a value) ends the command with exit status 2 and one
line on stderr, ``pinnersage COMMAND: error: ...``, naming what was wrong and the rule it broke.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from pinnersage.cli._common import add_common_flags, command_output
from pinnersage.errors import PinnerSageError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (the usage is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        add_common_flags(module.add_parser(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 on bad input, with a one-line error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (already printed)
        return done.code if isinstance(done.code, int) else 2
    with command_output(args):
        try:
            return int(args.func(args) or 0)
        except (PinnerSageError, OSError) as exc:  # bad input; or the system (disk, permissions)
            text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            print(f"pinnersage {args.command}: error: {text}", file=sys.stderr)
            return 2 if isinstance(exc, PinnerSageError) else 1
        except KeyboardInterrupt:
            print(f"pinnersage {args.command}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
