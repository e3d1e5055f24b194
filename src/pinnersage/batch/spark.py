"""The Spark engine of the daily batch job: Algorithm 2 per user on an Apache Spark cluster.

Paper section 6 runs PinnerSage daily on MapReduce. This engine runs the same per-partition
function as the local engine (:func:`pinnersage.batch.job.profile_partition`) through PySpark,
in two stages:

1. **read**: one task per log file reads it with the project's reader
   (:func:`pinnersage.actions.iter_actions`, so both engines keep exactly the same rows), keeps the
   window, maps item ids to catalog rows (unknown items counted and dropped) and writes the
   actions as parquet under the work directory, each row filed under its user's partition
   (``partitionBy``, with the local engine's partitioner
   :func:`~pinnersage.batch.job.partition_of`), as the local engine's spill does.
2. **profiles**: one task per partition (``mapInArrow`` over the partition numbers) reads its
   partition's files and hands them whole to the per-partition function, which puts them in
   canonical order itself: no Spark shuffle or sort, and no pandas frame per user
   (``applyInPandas`` measured 0.43x of plain multiprocessing for that reason). A partition is
   held in memory at once, as in the local engine: raise P for bigger logs. Each task writes
   its partition's profiles as one parquet file under the work directory (handing them back to
   Spark would convert every vector column into JVM rows).

The driver reads the profiles back and publishes the snapshot exactly as the local engine
does; the content checksum is the same for both engines. Run locally with ``local[*]``, or on a
cluster with ``spark-submit`` (see ``docs/batch.md``). PySpark is the optional extra
``pinnersage[spark]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pinnersage._optional import require
from pinnersage.batch.job import (
    PartitionStats,
    ProfileContext,
    RunWindow,
    partition_of,
    profile_partition,
    profiles_schema,
)
from pinnersage.params import LogParams

__all__ = ["SparkOutput", "get_session", "run_spark"]


@dataclass(frozen=True)
class SparkOutput:
    """Profiles and counts computed by Spark."""

    table: pa.Table
    stats: PartitionStats
    rows_read: int
    rows_kept: int
    dropped: dict[str, int]
    #: Wall seconds of the read and profiles stages.
    timings: dict[str, float]


def get_session(master: str | None = None) -> Any:
    """The active SparkSession, or a new one (``local[*]`` unless ``master`` says otherwise).

    Under ``spark-submit`` the session of the submitted application is used as is.
    """
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Python workers must run this interpreter (the one with pinnersage installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("pinnersage-batch")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if master is not None or "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        builder = builder.master(master or "local[*]")
    return builder.getOrCreate()


def _dict_accumulator(sc: Any) -> Any:
    from pyspark.accumulators import AccumulatorParam

    class _DictSum(AccumulatorParam):
        def zero(self, value: dict[str, int]) -> dict[str, int]:
            return {}

        def addInPlace(self, a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            for k, v in b.items():
                a[k] = a.get(k, 0) + v
            return a

    return sc.accumulator({}, _DictSum())


_ACTIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("item_row", pa.int32()),
        pa.field("timestamp", pa.int64()),
        pa.field("part", pa.int32()),
    ]
)


def run_spark(
    files: list[Path],
    catalog: Any,
    ctx: ProfileContext,
    log_params: LogParams,
    window: RunWindow,
    partitions: int,
    *,
    session: Any = None,
    work_dir: Path,
) -> SparkOutput:
    """Run both stages on Spark and return the profiles table (any row order) and the counts."""
    spark = session if session is not None else get_session()
    sc = spark.sparkContext
    shared = sc.broadcast((catalog, ctx))
    report = _dict_accumulator(sc)
    start_s, end_s = window.start_s, window.end_s

    def read_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pinnersage.actions import iter_actions

        cat, _ = shared.value
        for rb in batches:
            for path in rb.column(0).to_pylist():
                for _, log in iter_actions([Path(path)], log_params, start_s=start_s, end_s=end_s):
                    counts = {
                        "rows_read": log.report.rows_read,
                        **{f"dropped.{k}": int(v) for k, v in log.report.dropped.items()},
                    }
                    frame = log.frame
                    if len(frame):
                        rows = cat.rows(frame["item_id"].to_numpy(), missing="mask")
                        known = rows >= 0
                        counts["dropped.unknown_item"] = int((~known).sum())
                        users = frame["user_id"].to_numpy()[known]
                        is_int = users.dtype.kind in "iu"
                        counts["files_with_str_users"] = 0 if is_int or not len(users) else 1
                        counts["rows_kept"] = int(known.sum())
                        user_arr = (
                            pa.array(users, pa.int64()).cast(pa.string())
                            if is_int
                            else pa.array(users.tolist(), pa.string())
                        )
                        item_rows = rows[known]
                        yield pa.RecordBatch.from_arrays(
                            [
                                user_arr,
                                pa.array(item_rows.astype(np.int32)),
                                pa.array(frame["timestamp"].to_numpy(np.int64)[known]),
                                pa.array(partition_of(users, partitions).astype(np.int32)),
                            ],
                            schema=_ACTIONS_SCHEMA,
                        )
                    report.add(counts)

    actions_dir = work_dir / "spark-actions"
    profiles_dir = work_dir / "spark-profiles"
    t0 = time.perf_counter()
    paths = spark.createDataFrame([(str(f.resolve()),) for f in files], "path string")
    paths = paths.repartition(max(1, min(len(files), sc.defaultParallelism * 4)))
    # each read task files its rows under the user's partition (the local engine's partitioner),
    # so the profiles stage reads its partition directly: no shuffle, as in the local engine
    (
        paths.mapInArrow(read_files, "user_id string, item_row int, timestamp bigint, part int")
        .write.mode("overwrite")
        .partitionBy("part")
        .parquet(str(actions_dir))
    )
    counts = dict(report.value)
    read_s = time.perf_counter() - t0
    int_users = counts.get("files_with_str_users", 0) == 0
    stats_acc = _dict_accumulator(sc)

    def profiles(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.dataset as ds
        from threadpoolctl import threadpool_limits

        _, c = shared.value
        for rb in batches:
            for k in rb.column(0).to_pylist():
                folder = actions_dir / f"part={k}"
                if not folder.is_dir():
                    continue
                part = ds.dataset(str(folder), format="parquet").to_table()
                if part.num_rows == 0:
                    continue
                users = part.column("user_id")
                if int_users:
                    users = users.cast(pa.int64())
                with threadpool_limits(limits=1):
                    table, stats = profile_partition(
                        users.to_numpy(zero_copy_only=False),
                        part.column("item_row").to_numpy(zero_copy_only=False),
                        part.column("timestamp").to_numpy(zero_copy_only=False),
                        c,
                    )
                # written from here, as the local engine writes its partitions: handing the
                # profiles back to Spark would convert every vector column to JVM rows
                tmp = profiles_dir / f".part-{k:05d}.parquet.tmp"
                pq.write_table(table, tmp)
                tmp.replace(profiles_dir / f"part-{k:05d}.parquet")
                stats_acc.add(stats.to_dict())
                yield pa.RecordBatch.from_arrays(
                    [pa.array([k], pa.int32()), pa.array([table.num_rows], pa.int64())],
                    names=["part", "rows"],
                )

    if profiles_dir.exists():
        shutil.rmtree(profiles_dir)
    profiles_dir.mkdir(parents=True)
    # a few partitions per task: Spark's own cost per task is not small next to a partition's
    # work (users are assigned to partitions by hash, so consecutive ones are alike in size)
    tasks = max(1, min(partitions, sc.defaultParallelism * 4))
    (
        spark.range(0, partitions, 1, numPartitions=tasks)
        .mapInArrow(profiles, "part int, rows bigint")
        .collect()
    )
    stats = PartitionStats.from_dict(stats_acc.value)
    profiles_s = time.perf_counter() - t0 - read_s
    t1 = time.perf_counter()
    # reading the partition files back is not part of the profiles stage (nor is it for the
    # local engine, whose timing stops when the last partition file is written)
    table = _collect(profiles_dir, ctx, int_users)
    collect_s = time.perf_counter() - t1
    dropped = {
        k.split(".", 1)[1]: int(v) for k, v in counts.items() if k.startswith("dropped.") and v
    }
    shared.unpersist()
    return SparkOutput(
        table,
        stats,
        int(counts.get("rows_read", 0)),
        int(counts.get("rows_kept", 0)),
        dropped,
        {"read_s": read_s, "profiles_s": profiles_s, "collect_s": collect_s},
    )


def _collect(profiles_dir: Path, ctx: ProfileContext, int_users: bool) -> pa.Table:
    """Read the profile part files back into the schema of the local engine."""
    import pyarrow.dataset as ds

    schema = profiles_schema(
        int_user_ids=int_users,
        int_item_ids=ctx.int_item_ids,
        dim=ctx.vectors.shape[1],
        params=ctx.params,
    )
    files = sorted(str(p) for p in profiles_dir.glob("part-*.parquet"))
    if not files:
        return schema.empty_table()
    raw = ds.dataset(files, format="parquet").to_table()
    dim = ctx.vectors.shape[1]
    columns = []
    for f in schema:
        col = raw.column(f.name).combine_chunks()
        if pa.types.is_fixed_size_list(f.type):
            col = pa.FixedSizeListArray.from_arrays(col.flatten().cast(pa.float32()), dim)
        else:
            col = col.cast(f.type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)
