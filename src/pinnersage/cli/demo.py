"""``pinnersage demo``: the whole pipeline on the shipped Online Retail log, embedded defaults.

Item embeddings (co-occurrence) -> daily batch (every user's profile, Algorithm 2) -> HNSW index
-> a few users' interests, with their medoid product names and candidates per interest. Nothing
to install by hand: files only, under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

from pinnersage.cli._common import (
    add_log_flags,
    add_profile_flags,
    at_least,
    check_input,
    check_out_dir,
    config_from,
    empty_window,
    log_overrides,
    profile_overrides,
    read_log,
    run_window,
    show_progress,
)
from pinnersage.data import online_retail
from pinnersage.errors import EmptyWindowError

DEFAULT_ACTIONS = online_retail("actions")
DEFAULT_ITEMS = online_retail("items")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the shipped Online Retail log",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--actions",
        type=Path,
        default=DEFAULT_ACTIONS,
        help="action log (default: the shipped Online Retail copy)",
    )
    parser.add_argument(
        "--items",
        type=Path,
        default=DEFAULT_ITEMS,
        help="items file with titles (default: the shipped one)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="folder for embeddings, snapshot and index (default: out/demo)",
    )
    parser.add_argument("--users", type=int, default=3, help="users to show (default: 3)")
    parser.add_argument(
        "--interests", type=int, default=5, help="interests shown per user (default: 5)"
    )
    parser.add_argument("--date", help="run date YYYY-MM-DD (default: the log's last day)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the medoid sampling")
    add_log_flags(parser)
    add_profile_flags(parser)
    parser.set_defaults(func=run)
    return parser


def _title(catalog: Any, item_id: Any) -> str:
    title = catalog.title(item_id)
    return f"{title} ({item_id})" if title else str(item_id)


#: Where a candidate came from, in words, for the sources that are not one of the user's medoids.
_FROM = {
    "decay_average": "(your recent actions as a whole)",
    "popular": "(popular)",
}


def _because(catalog: Any, source_item_id: Any, source: str) -> str:
    if source_item_id is None:
        return _FROM.get(source, f"({source})")
    return "<- " + _title(catalog, source_item_id)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pinnersage.batch.run import run_batch
    from pinnersage.batch.snapshot import open_snapshot
    from pinnersage.catalog import ItemCatalog
    from pinnersage.embed.cooccurrence import cooccurrence_embeddings
    from pinnersage.retrieval import build_index
    from pinnersage.retrieval.recommender import Recommender, popular_items

    at_least("--users", args.users, 1)
    at_least("--interests", args.interests, 1)
    check_input(args.actions, "action log")
    check_input(args.items, "items file")
    config = config_from(args, {"log": log_overrides(args), "profile": profile_overrides(args)})
    if args.date is not None:
        run_window(args.date, config)
    out: Path = check_out_dir(args.out)
    progress = show_progress(args)
    started = time.perf_counter()

    frame = read_log(args.actions, config, progress=progress).frame
    last_day = dt.datetime.fromtimestamp(int(frame["timestamp"].max()), dt.UTC).date()
    run_date = args.date or last_day.isoformat()
    window = run_window(run_date, config)
    times = frame["timestamp"]
    hint = "check --date (default: the log's last day)"
    if not ((times >= window.start_s) & (times < window.end_s)).any():
        bounds = window.to_dict()
        empty = EmptyWindowError("", start=bounds["start"], end=bounds["end"])
        raise empty_window(empty, args.actions, run_date, config, hint)
    out.mkdir(parents=True, exist_ok=True)
    source = "the shipped Online Retail log" if args.actions == DEFAULT_ACTIONS else args.actions
    print(
        f"[1/4] read {source}: {len(frame):,} actions by {frame['user_id'].nunique():,} "
        f"users on {frame['item_id'].nunique():,} items"
    )

    built = cooccurrence_embeddings(frame, dim=64, seed=0)
    embeddings = out / "items.parquet"
    built.catalog.save(embeddings)
    catalog = ItemCatalog.load(embeddings, items=args.items)
    print(
        f"[2/4] co-occurrence embeddings: {len(catalog):,} items x {catalog.dim} "
        f"(embedding_version {catalog.embedding_version}) -> {embeddings}"
    )

    try:
        result = run_batch(
            args.actions, catalog, run_date, out / "snapshots", config, progress=progress
        )
    except EmptyWindowError as exc:
        raise empty_window(exc, args.actions, run_date, config, hint) from None
    print(
        f"[3/4] batch for {run_date} ({config.profile.history_window_days}-day window, "
        f"α = {config.profile.distance_threshold:g}, λ = {config.profile.decay_per_day:g}/day) "
        f"-> {result.snapshot_dir}"
    )
    for line in result.summary().splitlines():
        print("      " + line)

    index = build_index(catalog, config.index, progress=progress)
    index.save(out / "index")
    print(f"[4/4] {config.index.kind} index over {len(index):,} items -> {out / 'index'}")

    snapshot = open_snapshot(out / "snapshots")
    profiles = [p for p in snapshot.profiles() if len(p) >= 3]
    if not profiles:
        print("no user has three interests or more in this window")
        return 0
    by_size = sorted(profiles, key=lambda p: (len(p), str(p.user_id)))
    picks = [by_size[int(q * (len(by_size) - 1))] for q in np.linspace(0.5, 0.95, args.users)]
    seen_by_user = frame.groupby("user_id")["item_id"].agg(set)
    recommender = Recommender(
        index, catalog, params=config.retrieval, popular_item_ids=popular_items(frame, 100)
    )
    rng = np.random.default_rng(args.seed)
    for profile in dict.fromkeys(picks):
        print(
            f"\nuser {profile.user_id}: {len(profile)} interests from {profile.n_actions} actions"
        )
        print(f"  {'rank':>4}  {'importance':>10}  {'size':>4}  medoid item")
        for rank, cluster in enumerate(profile.clusters[: args.interests], 1):
            print(
                f"  {rank:>4}  {cluster.importance:>10.3f}  {cluster.size:>4}  "
                f"{_title(catalog, cluster.medoid_item_id)}"
            )
        if len(profile) > args.interests:
            print(f"  ... and {len(profile) - args.interests} more")
        candidates = recommender.recommend(
            profile, 9, rng=rng, exclude_item_ids=seen_by_user.get(profile.user_id)
        )
        print("  recommended, each with the interest it came from (<- the medoid item):")
        for c in candidates:
            because = _because(catalog, c.source_item_id, c.source)
            print(f"    {c.score:5.3f}  {_title(catalog, c.item_id)}  {because}")
    print(
        f"\ndone in {time.perf_counter() - started:.1f} s; inspect any user with: "
        f"pinnersage inspect USER --snapshot {out / 'snapshots'} --items {args.items}"
    )
    return 0
