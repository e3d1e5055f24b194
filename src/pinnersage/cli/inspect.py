"""``pinnersage inspect``: one user's interests (clusters) in a published profile snapshot."""

from __future__ import annotations

import argparse
from typing import Any

from pinnersage.cli._common import add_items_flags, at_least, config_from


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="print one user's interests from a profile snapshot",
        description="Print a user's clusters from the snapshot that DIR/CURRENT names (or from "
        "a DIR/<date> directory): rank, medoid item (with its title when --items "
        "is given), importance, size and latest action, most important first. The "
        "snapshot's checksums are verified first.",
    )
    parser.add_argument("user", metavar="USER", help="user id")
    parser.add_argument(
        "--snapshot",
        required=True,
        metavar="DIR",
        help="snapshot root (with CURRENT) or one dated snapshot directory",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=20,
        metavar="N",
        help="print the N most important interests (default 20; 0 prints all)",
    )
    add_items_flags(parser, "items file (parquet or CSV with an item id and a title) for titles")
    parser.set_defaults(func=run)
    return parser


def _titles(args: argparse.Namespace, item_col: str, wanted: set[str]) -> dict[str, str]:
    """Titles of the ``wanted`` items from ``--items`` (its columns named by the flags)."""
    from pinnersage.catalog import read_items, read_items_table

    if args.title_col:
        items = read_items_table(args.items, id_col=item_col, columns=(args.title_col,))
        titles = items[args.title_col]
    else:
        items = read_items(args.items, id_col=item_col)
        if "title" not in items.columns:
            return {}
        titles = items["title"]
    ids = items.iloc[:, 0]
    return {
        str(i): t
        for i, t in zip(ids.tolist(), titles.tolist(), strict=True)
        if str(i) in wanted and isinstance(t, str)
    }


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from pinnersage.batch.snapshot import open_snapshot

    config = config_from(args, {"log": {"item_col": args.item_col}})
    at_least("--top", args.top, 0)
    snap = open_snapshot(args.snapshot)
    profile = snap.profile(args.user)
    shown = profile.clusters[: args.top] if args.top else profile.clusters
    titles = (
        _titles(args, config.log.item_col, {str(c.medoid_item_id) for c in shown})
        if args.items
        else {}
    )
    print(
        f"user {profile.user_id}: {len(profile.clusters)} interests from "
        f"{profile.n_actions} actions (snapshot {snap.run_date}, importance as of "
        f"{dt.datetime.fromtimestamp(snap.as_of_s, dt.UTC):%Y-%m-%d %H:%M} UTC)"
    )
    print(f"{'rank':>4}  {'importance':>10}  {'size':>5}  {'latest action (UTC)':<19}  medoid item")
    for k, c in enumerate(shown, start=1):
        latest = dt.datetime.fromtimestamp(c.last_action_s, dt.UTC).strftime("%Y-%m-%d %H:%M")
        title = titles.get(str(c.medoid_item_id))
        item = f"{c.medoid_item_id}" + (f"  {title}" if title else "")
        print(f"{k:>4}  {c.importance:>10.4f}  {c.size:>5}  {latest:<19}  {item}")
    if len(shown) < len(profile.clusters):
        rest = len(profile.clusters) - len(shown)
        print(f"... and {rest} more (--top 0 prints all)")
    return 0
