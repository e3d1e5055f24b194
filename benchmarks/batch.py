"""Benchmark of the daily batch job (issue 4): users/s of the local and Spark engines vs the floor.

Generates a seeded log: USERS users (default 50,000) with heavy-tailed action counts (lognormal,
median 50, p99 about 2,000, capped at 5,000), items drawn from each user's few interests in a
clustered catalog (d = 64) so Ward finds structure, times spread over the 90-day window. Then
measures, in the same run:

* floor: gathering each user's vectors (float64) and one ``X @ X.T`` per user, one core;
* local engine with 1 and 2 worker processes (end to end, and the profiles stage alone);
* Spark ``local[2]`` (session start excluded; stages timed), unless ``--no-spark``.

Prints a table and writes ``benchmarks/results/batch.json`` and ``batch.md``.
Run: ``.venv/bin/python benchmarks/batch.py`` (``--users 5000`` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RUN_DATE = "2024-03-31"
D = 64


def generate(n_users: int, seed: int, folder: Path) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    n_topics, per_topic = 1000, 50
    centers = rng.normal(size=(n_topics, D))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    vectors = np.repeat(centers, per_topic, axis=0) + 0.08 * rng.normal(
        size=(n_topics * per_topic, D)
    )
    from pinnersage.catalog import ItemCatalog

    catalog = ItemCatalog.from_arrays(np.arange(n_topics * per_topic, dtype=np.int64), vectors)
    catalog.save(folder / "items.parquet")
    sigma = np.log(2000 / 50) / 2.326  # p99 / median of a lognormal
    counts = np.minimum(
        np.maximum(1, np.round(rng.lognormal(np.log(50), sigma, n_users))), 5000
    ).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    n = users.shape[0]
    k_interests = rng.integers(2, 9, n_users)  # each user has a few topics
    interests = rng.integers(0, n_topics, (n_users, 8))
    pick = rng.integers(0, 1 << 30, n) % k_interests[users]
    topic = interests[users, pick]
    items = topic * per_topic + rng.integers(0, per_topic, n)
    end = int(dt.datetime.fromisoformat(RUN_DATE).replace(tzinfo=dt.UTC).timestamp()) + 86_400
    ts = end - rng.integers(1, 90 * 86_400, n)
    log = folder / "log"
    log.mkdir()
    day = (end - ts) // 86_400
    order = np.argsort(day, kind="stable")
    bounds = np.searchsorted(day[order], np.arange(91))
    for k in range(90):
        sel = order[bounds[k] : bounds[k + 1]]
        pq.write_table(
            pa.table({"user_id": users[sel], "item_id": items[sel], "timestamp": ts[sel]}),
            log / f"day-{k:02d}.parquet",
        )
    return {"catalog": catalog, "users": users, "items": items, "counts": counts, "actions": n}


def floor(catalog: object, users: np.ndarray, items: np.ndarray) -> float:
    """Seconds to gather each user's vectors and compute one X @ X.T per user (one core)."""
    from threadpoolctl import threadpool_limits

    v = np.ascontiguousarray(catalog.vectors, dtype=np.float64)  # type: ignore[attr-defined]
    order = np.argsort(users, kind="stable")
    rows = catalog.rows(items[order])  # type: ignore[attr-defined]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(users[order])) + 1, [len(users)]))
    with threadpool_limits(limits=1):
        t = time.perf_counter()
        for u in range(starts.shape[0] - 1):
            x = v[rows[starts[u] : starts[u + 1]]]
            x @ x.T
        return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from pinnersage.batch import run_batch
    from pinnersage.params import Config

    tmp = Path(tempfile.mkdtemp(prefix="pinnersage-bench-batch-"))
    try:
        t = time.perf_counter()
        data = generate(args.users, args.seed, tmp)
        gen_s = time.perf_counter() - t
        counts = data["counts"]
        n_users = args.users
        print(
            f"generated {n_users:,} users, {data['actions']:,} actions in {gen_s:.1f}s; "
            f"actions per user: median {np.median(counts):.0f}, "
            f"p99 {np.percentile(counts, 99):.0f}, max {counts.max()}",
            file=sys.stderr,
        )
        config = Config().replace("batch", partitions=32)
        # warm numba's on-disk cache outside the timings
        run_batch(
            tmp / "log",
            data["catalog"],
            RUN_DATE,
            tmp / "warm",
            Config().replace("profile", history_window_days=1),
            workers=1,
        )
        rows: list[dict[str, object]] = []
        floor_s = floor(data["catalog"], data["users"], data["items"])
        rows.append(
            {
                "engine": "floor (gather + X @ X.T)",
                "processes": 1,
                "profiles_s": floor_s,
                "total_s": floor_s,
            }
        )
        hashes = {}
        for workers in (1, 2):
            r = run_batch(
                tmp / "log",
                data["catalog"],
                RUN_DATE,
                tmp / f"local{workers}",
                config,
                workers=workers,
            )
            tm = r.extra["timings"]
            hashes[f"local{workers}"] = r.manifest["content_sha256"]
            rows.append({"engine": "local", "processes": workers, **tm})
        if not args.no_spark:
            from pinnersage.batch.spark import get_session

            t = time.perf_counter()
            spark = get_session("local[2]")
            spark.sparkContext.setLogLevel("ERROR")
            start_s = time.perf_counter() - t
            r = run_batch(
                tmp / "log",
                data["catalog"],
                RUN_DATE,
                tmp / "spark",
                config,
                engine="spark",
                spark=spark,
            )
            hashes["spark"] = r.manifest["content_sha256"]
            rows.append(
                {
                    "engine": "spark local[2]",
                    "processes": 2,
                    "session_start_s": start_s,
                    **r.extra["timings"],
                }
            )
            spark.stop()
        for row in rows:
            cores = int(row["processes"])  # type: ignore[call-overload]
            row["users_per_s_per_core"] = n_users / float(row["profiles_s"]) / cores  # type: ignore[arg-type]
            row["users_per_s_end_to_end"] = n_users / float(row["total_s"])  # type: ignore[arg-type]
        floor_rate = float(rows[0]["users_per_s_per_core"])  # type: ignore[arg-type]
        local1 = float(rows[1]["users_per_s_per_core"])  # type: ignore[arg-type]
        local_of = {
            int(r["processes"]): float(r["users_per_s_per_core"])  # type: ignore[call-overload, arg-type]
            for r in rows
            if r["engine"] == "local"
        }
        for row in rows:
            rate = float(row["users_per_s_per_core"])  # type: ignore[arg-type]
            row["vs_floor"] = rate / floor_rate
            row["vs_local_1"] = rate / local1
            # like with like: the local engine with as many processes
            row["vs_local_same"] = rate / local_of.get(int(row["processes"]), local1)  # type: ignore[call-overload]
        same = len(set(hashes.values())) == 1
        result = {
            "benchmark": "batch",
            "users": n_users,
            "actions": int(data["actions"]),  # type: ignore[call-overload]
            "actions_per_user": {
                "median": float(np.median(counts)),
                "p99": float(np.percentile(counts, 99)),
                "max": int(counts.max()),
            },
            "d": D,
            "seed": args.seed,
            "partitions": 32,
            "rows": rows,
            "content_sha256_equal_across_engines": same,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        }
        header = (
            "| engine | processes | profiles stage users/s per core | vs floor | vs local 1 "
            "| vs local, same processes | end-to-end users/s | end-to-end s |"
        )
        lines = [header, "|" + "---|" * 8]
        for row in rows:
            lines.append(
                f"| {row['engine']} | {row['processes']} | "
                f"{row['users_per_s_per_core']:,.0f} | {row['vs_floor']:.2f}x | "
                f"{row['vs_local_1']:.2f}x | {row['vs_local_same']:.2f}x | "
                f"{row['users_per_s_end_to_end']:,.0f} | {row['total_s']:.1f} |"
            )
        table = "\n".join(lines)
        print(table)
        print(f"content_sha256 equal across engines: {same}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "batch.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "batch.md").write_text(
            f"# batch benchmark\n\n{n_users:,} users, {data['actions']:,} actions (median "
            f"{np.median(counts):.0f}, p99 {np.percentile(counts, 99):.0f}, max {counts.max()} "
            f"per user), d = {D}, 32 partitions, {os.cpu_count()} cores.\n\n{table}\n\n"
            f"content_sha256 equal across engines: {same}\n"
        )
        print(f"wrote {out / 'batch.json'} and {out / 'batch.md'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
