"""``pinnersage embed BUILDER``: build item embeddings (paper section 2: fixed item embeddings).

One subcommand per registered builder (:data:`pinnersage.embed.BUILDERS`): ``cooccurrence``,
``als``, ``text``, ``combine``. Each writes a parquet catalog (``item_id``, ``vector``, metadata
columns) that ``pinnersage index`` and the batch job read, and prints what it wrote.
"""

from __future__ import annotations

import argparse
from typing import Any

from pinnersage.cli._common import (
    add_common_flags,
    at_least,
    check_out_file,
    config_from,
    log,
    log_overrides,
)
from pinnersage.embed import BUILDERS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "embed",
        help="build item embeddings (co-occurrence, ALS, text, or a combination)",
        description="Build item embeddings for users who have none, and write them as a parquet "
        "catalog (item_id, vector) for `pinnersage index` and the batch job.",
    )
    builders = parser.add_subparsers(dest="builder", metavar="BUILDER")
    builders.required = True
    for builder in BUILDERS.values():
        sub = builders.add_parser(builder.name, help=builder.help, description=builder.help)
        builder.add_arguments(sub)
        sub.add_argument(
            "--out", required=True, metavar="PATH", help="output embeddings file (parquet)"
        )
        add_common_flags(sub, nested=True)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the embeddings named by ``args.builder`` and write them to ``args.out``."""
    out = check_out_file(args.out)
    config = config_from(args, {"log": log_overrides(args)})
    asked = getattr(args, "dim", None)
    at_least("--dim", asked, 1)
    builder = BUILDERS[args.builder]
    result = builder.build(args, config)
    if asked is not None and result.catalog.dim < asked:
        log.warning(
            "--dim %d asked, but these embeddings have %d dimensions: %s embeddings "
            "have at most one dimension per embedded item (%d items)",
            asked,
            result.catalog.dim,
            builder.name,
            len(result.catalog),
        )
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
