"""``pinnersage inspect``: one user's interests (clusters) in a published profile snapshot."""

from __future__ import annotations

import argparse
from typing import Any

from pinnersage.cli._common import add_config_flag


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="print one user's interests from a profile snapshot",
        description="Print a user's clusters from the snapshot that DIR/CURRENT names (or from "
        "a DIR/<date> directory): rank, medoid item (with its title when --items "
        "is given), importance, size and latest action. The snapshot's checksums "
        "are verified first.",
    )
    parser.add_argument("user", metavar="USER", help="user id")
    parser.add_argument(
        "--snapshot",
        required=True,
        metavar="DIR",
        help="snapshot root (with CURRENT) or one dated snapshot directory",
    )
    parser.add_argument(
        "--items",
        metavar="PATH",
        help="items file (parquet or CSV with item_id and title) for titles",
    )
    add_config_flag(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from pinnersage.batch.snapshot import open_snapshot

    snap = open_snapshot(args.snapshot)
    profile = snap.profile(args.user)
    titles: dict[str, str] = {}
    if args.items:
        from pinnersage.catalog import read_items

        items = read_items(args.items)
        if "title" in items.columns:
            wanted = {str(i) for i in profile.medoid_item_ids}
            titles = {
                str(i): t
                for i, t in zip(items["item_id"].tolist(), items["title"].tolist(), strict=True)
                if str(i) in wanted and isinstance(t, str)
            }
    print(
        f"user {profile.user_id}: {len(profile.clusters)} interests from "
        f"{profile.n_actions} actions (snapshot {snap.run_date}, importance as of "
        f"{dt.datetime.fromtimestamp(snap.as_of_s, dt.UTC):%Y-%m-%d %H:%M} UTC)"
    )
    print(f"{'rank':>4}  {'importance':>10}  {'size':>5}  {'latest action (UTC)':<19}  medoid item")
    for k, c in enumerate(profile.clusters, start=1):
        latest = dt.datetime.fromtimestamp(c.last_action_s, dt.UTC).strftime("%Y-%m-%d %H:%M")
        title = titles.get(str(c.medoid_item_id))
        item = f"{c.medoid_item_id}" + (f"  {title}" if title else "")
        print(f"{k:>4}  {c.importance:>10.4f}  {c.size:>5}  {latest:<19}  {item}")
    return 0
