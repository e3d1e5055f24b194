"""``pinnersage embed BUILDER``: build item embeddings (paper section 2: fixed item embeddings).

One subcommand per registered builder (:data:`pinnersage.embed.BUILDERS`): ``cooccurrence``,
``als``, ``text``, ``combine``. Each writes a parquet catalog (``item_id``, ``vector``, metadata
columns) that ``pinnersage index`` and the batch job read, and prints what it wrote.
"""

from __future__ import annotations

import argparse
from typing import Any

from pinnersage.cli._common import add_config_flag, config_from, log_overrides
from pinnersage.embed import BUILDERS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "embed",
        help="build item embeddings (co-occurrence, ALS, text, or a combination)",
        description="Build item embeddings for users who have none, and write them as a parquet "
        "catalog (item_id, vector) for `pinnersage index` and the batch job.",
    )
    add_config_flag(parser)
    builders = parser.add_subparsers(dest="builder", metavar="BUILDER")
    builders.required = True
    for builder in BUILDERS.values():
        sub = builders.add_parser(builder.name, help=builder.help, description=builder.help)
        builder.add_arguments(sub)
        sub.add_argument(
            "--out", required=True, metavar="PATH", help="output embeddings file (parquet)"
        )
        sub.add_argument(
            "--config",
            dest="builder_config",
            metavar="FILE",
            help="TOML config file (its [log] table names the log columns)",
        )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the embeddings named by ``args.builder`` and write them to ``args.out``."""
    from pathlib import Path

    if getattr(args, "builder_config", None):
        args.config = args.builder_config
    config = config_from(args, {"log": log_overrides(args)})
    builder = BUILDERS[args.builder]
    result = builder.build(args, config)
    out = Path(args.out)
    result.catalog.save(out)
    stats = ", ".join(
        f"{k} {v}"
        for k, v in result.stats.items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)
    )
    print(f"{builder.name}: {stats}")
    print(
        f"wrote {len(result.catalog):,} item vectors of {result.catalog.dim} dimensions to "
        f"{out} (embedding_version {result.catalog.embedding_version})"
    )
    return 0
