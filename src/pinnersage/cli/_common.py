"""Helpers shared by the subcommands: the ``--config`` flag and config loading."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pinnersage.params import Config, load_config


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file with [profile], [retrieval], [index], [log], [batch] "
                             "tables; flags given here override it")


def config_from(args: argparse.Namespace,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """The config file named by ``--config`` (if any) with ``overrides`` (None values ignored)."""
    return load_config(getattr(args, "config", None), overrides)
