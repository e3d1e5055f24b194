"""``pinnersage batch``: the daily job, every user's profile from the window's actions (paper 6)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pinnersage.cli._common import (
    add_log_flags,
    add_profile_flags,
    at_least,
    check_input,
    check_out_dir,
    config_from,
    empty_window,
    load_embeddings,
    log_overrides,
    profile_overrides,
    run_window,
    show_progress,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "batch",
        help="compute every user's profile for a day and publish a snapshot",
        description="Cluster each user's actions of the history window (default 90 days up to "
        "the end of --date, UTC) with Ward, summarise every cluster by its medoid "
        "and time-decayed importance, and publish DIR/<date>/profiles.parquet, "
        "DIR/<date>/manifest.json and DIR/CURRENT (replaced last, atomically). "
        "Interrupted runs resume from their last finished partition.",
    )
    parser.add_argument(
        "--actions",
        required=True,
        metavar="PATH",
        help="action log: parquet/CSV file or a folder of them",
    )
    parser.add_argument(
        "--embeddings",
        required=True,
        metavar="PATH",
        help="item embeddings (parquet with item_id and vector, .npy, CSV)",
    )
    parser.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="run date (UTC)")
    parser.add_argument("--out", required=True, metavar="DIR", help="snapshot root directory")
    parser.add_argument(
        "--engine",
        choices=("local", "spark"),
        default=None,
        help="local processes (default) or PySpark",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes of the local engine (default: all cores)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        metavar="N",
        help="user partitions, the checkpoint unit (default 16)",
    )
    parser.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="Spark master for --engine spark outside spark-submit (default local[*])",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        default=None,
        help="publish an empty snapshot when the window has no usable action (default: an error)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_log_flags(parser)
    add_profile_flags(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pinnersage.batch import run_batch
    from pinnersage.errors import EmptyWindowError

    config = config_from(
        args,
        {
            "batch": {
                "engine": args.engine,
                "workers": args.workers,
                "partitions": args.partitions,
                "allow_empty": args.allow_empty,
            },
            "log": log_overrides(args),
            "profile": profile_overrides(args),
        },
    )
    run_window(args.date, config)
    at_least("--workers", args.workers, 1)
    check_input(args.actions, "action log")
    out = check_out_dir(args.out)
    catalog = load_embeddings(args.embeddings)
    spark = None
    if config.batch.engine == "spark":
        from pinnersage.batch.spark import get_session

        spark = get_session(args.spark_master)
    try:
        result = run_batch(
            args.actions,
            catalog,
            args.date,
            out,
            config,
            progress=show_progress(args),
            spark=spark,
        )
    except EmptyWindowError as exc:
        hint = "check --date, or pass --allow-empty to publish an empty snapshot"
        raise empty_window(exc, args.actions, args.date, config, hint) from None
    m = result.manifest
    print(result.summary())
    if result.partitions_reused:
        print(f"resumed: {result.partitions_reused} partition(s) taken from the interrupted run")
    print(
        f"wrote {result.snapshot_dir / 'profiles.parquet'} and "
        f"{result.snapshot_dir / 'manifest.json'} (content_sha256 {m['content_sha256'][:16]}...)"
    )
    print(f"wrote {result.snapshot_dir.parent / 'CURRENT'} -> {m['run_date']}")
    sys.stdout.flush()
    return 0
