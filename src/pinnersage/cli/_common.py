"""Helpers shared by the subcommands: ``--config``, the action-log and profile flags, config."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pinnersage.params import Config, load_config


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with [profile], [retrieval], [index], [log], [batch] "
        "tables; flags given here override it",
    )


def config_from(
    args: argparse.Namespace, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """The config file named by ``--config`` (if any) with ``overrides`` (None values ignored)."""
    return load_config(getattr(args, "config", None), overrides)


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
        help="α: Ward merge threshold, squared-Euclidean units (1.0)",
    )
    group.add_argument(
        "--decay-per-day", type=float, metavar="L", help="λ: importance decay per day (0.01)"
    )
    group.add_argument(
        "--window-days",
        dest="history_window_days",
        type=int,
        metavar="N",
        help="history window in days (90)",
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
