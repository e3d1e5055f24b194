"""What every subcommand shares: the common flags, the config reader, output, and input checks.

One flag set for every command: ``--config FILE``, ``--quiet``, ``--verbose`` (added to every
command by :func:`pinnersage.cli.build_parser`), the action-log columns (:func:`add_log_flags`) on
every command that reads a log, and the profile parameters (:func:`add_profile_flags`). One config
reader: :func:`config_from` (:func:`pinnersage.params.load_config`, which rejects unknown tables and
settings). Messages for people go through :mod:`logging` on stderr (``--quiet``: warnings only,
``--verbose``: debug too), as do warnings (one line each, without their source line) and progress
bars; what a command produces (its results, what it wrote) is printed on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pinnersage.errors import ConfigError, DataFormatError
from pinnersage.params import Config, load_config

#: The logger of the command line (and the parent of the library's loggers).
log = logging.getLogger("pinnersage")


# -- the flags every command takes ----------------------------------------------------------------


def add_config_flag(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--config FILE`` (None when not given; read it through :func:`config_from`).

    ``nested``: the parser is a subcommand of a command (``embed cooccurrence``), where the flag
    may also come before the subcommand's name; it then has no default of its own, so that it does
    not hide the command's value.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if nested else None,
        help="TOML file with [profile], [retrieval], [index], [log], [batch] tables "
        "(configs/pinnersage.toml lists every setting); flags given here override it",
    )


def add_common_flags(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--config``, ``--quiet`` and ``--verbose``, those the command does not define already
    (``nested``: see :func:`add_config_flag`)."""
    present = {s for a in parser._actions for s in a.option_strings}
    if "--config" not in present:
        add_config_flag(parser, nested=nested)
    group = parser.add_argument_group("output")
    for short, name, help in (
        ("-q", "--quiet", "warnings and errors only on stderr (no progress messages or bars)"),
        ("-v", "--verbose", "more detail on stderr (debug messages)"),
    ):
        if name not in present:
            default = argparse.SUPPRESS if nested else False
            group.add_argument(short, name, action="store_true", default=default, help=help)


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: on stderr when it is a terminal, unless ``--quiet`` or
    ``--no-progress`` (a log file or a pipe gets the messages without the bars)."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


@contextmanager
def command_output(args: argparse.Namespace) -> Iterator[None]:
    """For the length of a command: the ``pinnersage`` logger on the current stderr at the level
    of ``--quiet``/``--verbose``, and warnings written as one ``warning: ...`` line each (through
    :mod:`warnings`, so that callers that record warnings still see them)."""
    level = (
        logging.WARNING
        if getattr(args, "quiet", False)
        else logging.DEBUG
        if getattr(args, "verbose", False)
        else logging.INFO
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False

    formatwarning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        yield
    finally:
        warnings.formatwarning = formatwarning
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """``warning: <message>``: what a user reads, without the source line that raised it."""
    return f"warning: {message}\n"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        if record.levelno < logging.INFO:
            return f"debug: {text}"
        return text


# -- the config reader ----------------------------------------------------------------------------


def config_from(
    args: argparse.Namespace, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """The config file named by ``--config`` (if any) with ``overrides`` (None values ignored).

    Every command reads its config here, so every command rejects the same unknown tables and
    settings with the same message.
    """
    config = load_config(getattr(args, "config", None), overrides)
    log.debug("settings: %s", config.to_dict())
    return config


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    """``--user-col``, ``--item-col``, ``--time-col``, ``--action-col``, ``--action-types``
    (None when not given, so a ``[log]`` table of the config file applies)."""
    group = parser.add_argument_group(
        "action log columns (default: the [log] config table, "
        "else user_id, item_id, timestamp, action)"
    )
    group.add_argument("--user-col", metavar="NAME", help="user id column")
    group.add_argument("--item-col", metavar="NAME", help="item id column")
    group.add_argument(
        "--time-col",
        metavar="NAME",
        help="time column: unix seconds, or ISO 8601 (UTC when it has no zone)",
    )
    group.add_argument("--action-col", metavar="NAME", help="action type column (optional)")
    group.add_argument(
        "--action-types", metavar="A,B", help="comma-separated action types to keep (default: all)"
    )


def log_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The ``[log]`` overrides given by :func:`add_log_flags` flags (None where not given)."""
    types = getattr(args, "action_types", None)
    return {
        "user_col": getattr(args, "user_col", None),
        "item_col": getattr(args, "item_col", None),
        "time_col": getattr(args, "time_col", None),
        "action_col": getattr(args, "action_col", None),
        "action_types": tuple(t.strip() for t in types.split(",") if t.strip()) if types else None,
    }


def add_items_flags(parser: argparse.ArgumentParser, help: str) -> None:
    """``--items PATH`` (titles for display) with ``--item-col`` and ``--title-col`` to name its
    columns (for commands that read no log; with a log, ``--item-col`` names both)."""
    parser.add_argument("--items", metavar="PATH", help=help)
    group = parser.add_argument_group("items file columns")
    group.add_argument(
        "--item-col", metavar="NAME", help="item id column (default: [log] item_col, else item_id)"
    )
    group.add_argument("--title-col", metavar="NAME", help="title column (default: title)")


def add_profile_flags(parser: argparse.ArgumentParser) -> None:
    """The profile parameters most often tuned (None when not given: the config file applies)."""
    group = parser.add_argument_group(
        "profile (default: the [profile] config table, else the documented defaults)"
    )
    group.add_argument(
        "--alpha",
        "--distance-threshold",
        dest="distance_threshold",
        type=float,
        metavar="A",
        help="α, the Ward merge threshold in squared-Euclidean units: distance_threshold in "
        "the [profile] table (1.0)",
    )
    group.add_argument(
        "--decay-per-day",
        type=float,
        metavar="L",
        help="λ, the importance decay per day: decay_per_day in [profile] (0.01)",
    )
    group.add_argument(
        "--window-days",
        dest="history_window_days",
        type=int,
        metavar="N",
        help="history window in days: history_window_days in [profile] (90)",
    )
    group.add_argument(
        "--max-actions-per-user",
        type=int,
        metavar="N",
        help="most recent actions clustered per user (5000)",
    )
    group.add_argument(
        "--keep-singletons",
        dest="keep_singletons",
        action="store_const",
        const=True,
        help="keep single-action interests (the default)",
    )
    group.add_argument(
        "--drop-singletons",
        dest="keep_singletons",
        action="store_const",
        const=False,
        help="drop them, as the paper's literal algorithm does",
    )


def profile_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The ``[profile]`` overrides given by :func:`add_profile_flags` flags."""
    return {
        name: getattr(args, name, None)
        for name in (
            "distance_threshold",
            "decay_per_day",
            "history_window_days",
            "max_actions_per_user",
            "keep_singletons",
        )
    }


# -- checks of inputs and outputs, before any work ------------------------------------------------


def at_least(flag: str, value: int | float | None, low: int | float) -> None:
    """A numeric flag's lower bound, as a :class:`ConfigError` naming the flag and the value."""
    if value is not None and value < low:
        raise ConfigError(f"{flag} must be >= {low:g}, got {value:g}")


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """An output folder: it may exist (as a folder) or not; no part of it may be a file."""
    p = Path(path)
    for part in (p, *p.parents):
        if part.exists() and not part.is_dir():
            what = "is a file" if part == p else f"is under {part}, which is a file"
            raise ConfigError(f"{flag} {path} {what}; name a folder")
    return p


def check_out_file(path: str | Path, flag: str = "--out", example: str = "items.parquet") -> Path:
    """An output file: not a folder (nor a name ending with ``/``), under a folder or nothing."""
    text = str(path)
    p = Path(path)
    if text.endswith(("/", "\\")) or p.is_dir():
        raise ConfigError(f"{flag} {text} is a folder; name the file to write, e.g. {p / example}")
    check_out_dir(p.parent, flag=f"{flag} {text}: its folder")
    return p


def check_input(path: str | Path, what: str) -> Path:
    """An input file or folder that must exist."""
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"{what} {p} does not exist")
    return p


def read_log(path: str | Path, config: Config, *, progress: bool) -> Any:
    """:func:`pinnersage.actions.read_actions` for a command that needs at least one action."""
    from pinnersage.actions import read_actions

    actions = read_actions(path, config.log, progress=progress)
    if len(actions.frame) == 0:
        raise DataFormatError(
            f"action log {path} holds no usable action ({actions.report.summary()})"
        )
    return actions


def load_embeddings(path: str | Path, **kwargs: Any) -> Any:
    """:meth:`ItemCatalog.load` for a command that needs at least one item."""
    from pinnersage.catalog import ItemCatalog

    p = check_input(path, "embeddings file")
    if _row_count(p) == 0:
        raise DataFormatError(f"embeddings file {p} holds no item (0 rows); it needs at least one")
    catalog = ItemCatalog.load(p, **kwargs)
    if len(catalog) == 0:
        raise DataFormatError(f"embeddings file {p} holds no item (0 rows); it needs at least one")
    return catalog


def _row_count(p: Path) -> int | None:
    """Rows of a parquet or ``.npy`` file from its header alone (None: another format)."""
    name = p.name.lower()
    try:
        if p.is_file() and name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if p.is_file() and name.endswith(".npy"):
            import numpy as np

            return int(np.load(p, mmap_mode="r").shape[0]) if p.stat().st_size else None
    except Exception:  # unreadable: the reader itself says why, with its own message
        return None
    return None


def run_window(date: str, config: Config) -> Any:
    """The batch window of ``--date`` and ``--window-days``, or a :class:`ConfigError` naming the
    flag (a date that is not a day, a window reaching before year 1 or past year 9999)."""
    import datetime as dt

    from pinnersage.batch.job import RunWindow

    days = config.profile.history_window_days
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"--date must be a day YYYY-MM-DD, got {date!r}") from None
    try:
        return RunWindow.for_date(day, days)
    except (OverflowError, ValueError):
        most = max((day - dt.date.min).days - 1, 1)
        raise ConfigError(
            f"--window-days {days} reaches before year 1 from --date {date}; give at most {most}"
        ) from None


def empty_window(exc: Any, actions: str | Path, date: str, config: Config, hint: str) -> Any:
    """The batch job's :class:`EmptyWindowError` in the words of the command line: the window,
    the flags that set it, the days the log covers, and ``hint`` (what to do)."""
    from pinnersage.errors import EmptyWindowError

    return EmptyWindowError(
        f"no usable action in the window {exc.start} .. {exc.end} (--date {date}, "
        f"--window-days {config.profile.history_window_days}); the log {actions} covers "
        f"{log_dates(actions, config)}: {hint}",
        start=exc.start,
        end=exc.end,
    )


def log_dates(actions: str | Path, config: Config) -> str:
    """``"2010-12-01 .. 2011-12-09"``: the days (UTC) of a log's usable actions, for messages."""
    import datetime as dt

    from pinnersage.actions import read_actions

    frame = read_actions(actions, config.log).frame
    if len(frame) == 0:
        return "no usable action"
    lo, hi = (
        dt.datetime.fromtimestamp(int(t), dt.UTC).date().isoformat()
        for t in (frame["timestamp"].min(), frame["timestamp"].max())
    )
    return f"{lo} .. {hi}"
