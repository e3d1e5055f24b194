"""The local engine of the daily batch job: Algorithm 2 for every user, on this machine's cores.

Paper section 6 runs the job on MapReduce; this is the same map (group actions by user, one
profile per user) on one machine, in two passes that keep memory bounded:

1. **spill**: the action log is read one file at a time (:func:`pinnersage.actions.iter_actions`),
   restricted to the window, joined to the catalog (unknown items are counted and dropped), and
   each action is appended to the spill file of its user's partition
   (:func:`pinnersage.batch.job.partition_of`). Memory: one log file.
2. **profiles**: partitions are processed in parallel by a fixed number of worker processes
   (:func:`pinnersage.batch.job.profile_partition`); each finished partition is written as a
   checkpoint file (temp + rename) and is never recomputed when the job is run again.
   Memory: one partition per worker.

A killed job re-run with the same inputs resumes from the last checkpoint and publishes
byte-identical output. Checkpoints live in ``DIR/.work/<run-date>/`` and are discarded when their
inputs (files, parameters, embeddings) change, and after a successful publish.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pinnersage.batch.job import (
    PartitionStats,
    ProfileContext,
    RunWindow,
    partition_of,
    profile_partition,
)
from pinnersage.batch.snapshot import write_atomic
from pinnersage.params import LogParams

__all__ = ["SpillResult", "compute_partitions", "spill_actions"]

SPILL_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_row", pa.int32(), nullable=False),
        pa.field("timestamp", pa.int64(), nullable=False),
    ]
)
_STATS_KEY = b"pinnersage.partition_stats"


@dataclass(frozen=True)
class SpillResult:
    """What the spill pass read and kept."""

    rows_read: int
    rows_kept: int
    #: Reason -> rows dropped (the reader's reasons, plus ``unknown_item``).
    dropped: dict[str, int]
    #: Every file gave integer user ids (else they are all strings).
    int_user_ids: bool
    #: Distinct users per partition.
    users: list[int]
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "dropped": dict(self.dropped),
            "int_user_ids": self.int_user_ids,
            "users": list(self.users),
            "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpillResult:
        return cls(
            int(d["rows_read"]),
            int(d["rows_kept"]),
            dict(d["dropped"]),
            bool(d["int_user_ids"]),
            [int(u) for u in d["users"]],
            list(d["files"]),
        )


def _user_strings(values: np.ndarray) -> tuple[pa.Array, bool]:
    if values.dtype.kind in "iu":
        return pa.array(values, type=pa.int64()).cast(pa.string()), True
    return pa.array(values.tolist(), type=pa.string()), False


def spill_actions(
    files: list[Path],
    catalog: Any,
    log_params: LogParams,
    window: RunWindow,
    spill_dir: Path,
    partitions: int,
    *,
    progress: bool = False,
) -> SpillResult:
    """Pass 1: split the window's actions into one parquet file per user partition.

    Returns the counts; ``spill_dir/DONE.json`` marks a finished spill (written last).
    """
    from pinnersage.actions import iter_actions

    done = spill_dir / "DONE.json"
    if done.exists():
        return SpillResult.from_dict(json.loads(done.read_text()))
    if spill_dir.exists():
        shutil.rmtree(spill_dir)
    spill_dir.mkdir(parents=True)
    writers = [
        pq.ParquetWriter(spill_dir / f".part-{k:05d}.tmp", SPILL_SCHEMA, compression="lz4")
        for k in range(partitions)
    ]
    uniques: list[list[np.ndarray]] = [[] for _ in range(partitions)]
    rows_read = rows_kept = unknown = 0
    dropped: dict[str, int] = {}
    int_users = True
    try:
        for _, log in iter_actions(
            files, log_params, start_s=window.start_s, end_s=window.end_s, progress=progress
        ):
            rows_read += log.report.rows_read
            for reason, v in log.report.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + int(v)
            frame = log.frame
            if len(frame) == 0:
                continue
            item_rows = catalog.rows(frame["item_id"].to_numpy(), missing="mask")
            known = item_rows >= 0
            unknown += int((~known).sum())
            if not known.any():
                continue
            users_np = frame["user_id"].to_numpy()[known]
            users, is_int = _user_strings(users_np)
            int_users = int_users and is_int
            part = partition_of(users_np, partitions)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(partitions + 1))
            table = pa.table(
                {
                    "user_id": users,
                    "item_row": pa.array(item_rows[known].astype(np.int32)),
                    "timestamp": pa.array(frame["timestamp"].to_numpy(np.int64)[known]),
                },
                schema=SPILL_SCHEMA,
            ).take(pa.array(order))
            rows_kept += table.num_rows
            for k in range(partitions):
                a, b = int(bounds[k]), int(bounds[k + 1])
                if b > a:
                    piece = table.slice(a, b - a)
                    writers[k].write_table(piece)
                    uniques[k].append(np.unique(users_np[order[a:b]]))
    finally:
        for w in writers:
            w.close()
    for k in range(partitions):
        os.replace(spill_dir / f".part-{k:05d}.tmp", spill_dir / f"part-{k:05d}.parquet")
    if unknown:
        dropped["unknown_item"] = unknown
    users_per_part = [int(np.unique(np.concatenate(u)).shape[0]) if u else 0 for u in uniques]
    result = SpillResult(
        rows_read, rows_kept, dropped, int_users, users_per_part, [f.name for f in files]
    )
    write_atomic(done, (json.dumps(result.to_dict(), sort_keys=True) + "\n").encode())
    return result


# -- pass 2: profiles per partition, in worker processes ------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(ctx: ProfileContext, int_user_ids: bool) -> None:
    from threadpoolctl import threadpool_limits

    # One BLAS thread per worker: the workers already use every core.
    _WORKER["limits"] = threadpool_limits(limits=1)
    _WORKER["ctx"] = ctx
    _WORKER["int_user_ids"] = int_user_ids


def read_partition_stats(path: Path) -> PartitionStats:
    """The counts stored in a partition checkpoint's metadata."""
    meta = pq.read_schema(path).metadata or {}
    return PartitionStats.from_dict(json.loads(meta[_STATS_KEY]))


def _compute_one(k: int, spill_path: str, out_path: str) -> tuple[int, PartitionStats]:
    ctx: ProfileContext = _WORKER["ctx"]
    spill = pq.read_table(spill_path)
    users = spill.column("user_id")
    if _WORKER["int_user_ids"]:
        users = users.cast(pa.int64())
    user_ids = users.to_numpy(zero_copy_only=False)
    table, stats = profile_partition(
        user_ids,
        spill.column("item_row").to_numpy(zero_copy_only=False),
        spill.column("timestamp").to_numpy(zero_copy_only=False),
        ctx,
    )
    table = table.replace_schema_metadata({_STATS_KEY: json.dumps(stats.to_dict()).encode()})
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, tmp, compression="lz4")
    os.replace(tmp, out)
    return k, stats


def _mp_context() -> Any:
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def compute_partitions(
    ctx: ProfileContext,
    spill_dir: Path,
    parts_dir: Path,
    spill: SpillResult,
    *,
    workers: int,
    progress: bool = False,
    after_partition: Callable[[int], None] | None = None,
) -> tuple[list[Path], PartitionStats, int]:
    """Pass 2: the profiles of every partition not yet checkpointed.

    Returns the partition files (in partition order), the summed counts, and how many
    partitions were reused from an earlier, interrupted run. ``after_partition(k)`` is called in
    this process after partition k's checkpoint is written (tests use it to simulate a crash).
    """
    from tqdm.auto import tqdm

    parts_dir.mkdir(parents=True, exist_ok=True)
    n = len(spill.users)
    paths = [parts_dir / f"part-{k:05d}.parquet" for k in range(n)]
    todo = [k for k in range(n) if not paths[k].exists()]
    reused = n - len(todo)
    total = PartitionStats()
    for k in range(n):
        if paths[k].exists():
            total = total.merge(read_partition_stats(paths[k]))
    # Largest partitions first, so that the slowest one does not start last.
    todo.sort(key=lambda k: -(spill_dir / f"part-{k:05d}.parquet").stat().st_size)
    bar = tqdm(
        total=sum(spill.users),
        initial=sum(spill.users[k] for k in range(n) if k not in set(todo)),
        unit="user",
        desc="profiles",
        disable=not progress,
        smoothing=0.0,
    )
    try:
        if workers <= 1 or len(todo) <= 1:
            _init_worker(ctx, spill.int_user_ids)
            try:
                for k in todo:
                    _, stats = _compute_one(
                        k, str(spill_dir / f"part-{k:05d}.parquet"), str(paths[k])
                    )
                    total = total.merge(stats)
                    bar.update(spill.users[k])
                    if after_partition is not None:
                        after_partition(k)
            finally:
                _WORKER["limits"].restore_original_limits()
                _WORKER.clear()
        else:
            with ProcessPoolExecutor(
                max_workers=min(workers, len(todo)),
                mp_context=_mp_context(),
                initializer=_init_worker,
                initargs=(ctx, spill.int_user_ids),
            ) as pool:
                pending: set[Future[tuple[int, PartitionStats]]] = {
                    pool.submit(
                        _compute_one, k, str(spill_dir / f"part-{k:05d}.parquet"), str(paths[k])
                    )
                    for k in todo
                }
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        k, stats = fut.result()
                        total = total.merge(stats)
                        bar.update(spill.users[k])
                        if after_partition is not None:
                            after_partition(k)
    finally:
        bar.close()
    return paths, total, reused
