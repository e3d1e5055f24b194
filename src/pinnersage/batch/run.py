"""The daily batch job end to end: window, engine, publish (paper sections 3.4, 3.6 and 6).

:func:`run_batch` computes, for every user with actions in the window of a run date, the profile
of Algorithm 2 (clusters, medoids, importances at the end of the run date), with the local or the
Spark engine, and publishes a snapshot (:mod:`pinnersage.batch.snapshot`).

Decisions:

* The window is ``[start of (run date - history_window_days), end of run date)`` in UTC, and
  ``now`` is the end of the run date.
* Actions on items missing from the catalog are counted (``unknown_item``) and dropped, never
  fatal. Users with more than ``max_actions_per_user`` actions keep the most recent ones and are
  counted (one warning for the run, not one per user).
* An empty window (no usable action) is an error by default, so that a wrong ``--date`` or path
  never replaces yesterday's profiles with nothing; ``batch.allow_empty = true`` publishes an
  empty snapshot instead.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pinnersage.batch.job import PartitionStats, ProfileContext, RunWindow
from pinnersage.batch.snapshot import open_snapshot, publish_snapshot, write_atomic
from pinnersage.errors import EmptyWindowError, PinnerSageWarning
from pinnersage.params import Config

__all__ = ["BatchResult", "run_batch"]


#: Why an action was not used, in words (keys of the manifest's ``actions.skipped``).
_SKIPPED = {
    "missing_user": "without a user id",
    "missing_item": "without an item id",
    "bad_timestamp": "with an unreadable time",
    "action_type": "of other action types",
    "before_start": "older than the history window",
    "after_end": "after the run date",
    "unknown_item": "on items without an embedding",
}


@dataclass(frozen=True)
class BatchResult:
    """What a run published and the numbers of its summary."""

    snapshot_dir: Path
    manifest: dict[str, Any]
    #: Partitions taken from checkpoints of an earlier, interrupted run (local engine).
    partitions_reused: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for people: users, clusters per user, skipped actions and why."""
        m = self.manifest
        c = m["counts"]
        per = c["clusters_per_user"]
        skipped = m["actions"]["skipped"]
        lines = [
            f"users: {c['users']:,} ({c['users_with_clusters']:,} with clusters); "
            f"clusters: {c['clusters']:,}",
            f"clusters per user: median {per['median']:g}, p90 {per['p90']:g}, max {per['max']:g}",
            f"actions: {m['actions']['read']:,} read, {m['actions']['used']:,} used",
        ]
        if skipped:
            lines.append(
                "skipped actions: "
                + ", ".join(f"{v:,} {_SKIPPED.get(k, k)}" for k, v in skipped.items())
            )
        else:
            lines.append("skipped actions: none")
        return "\n".join(lines)


def _fingerprint(
    files: list[Path],
    config: Config,
    window: RunWindow,
    embedding_version: str,
    partitions: int,
    engine: str,
) -> dict[str, Any]:
    return {
        "engine": engine,
        "window": window.to_dict(),
        "profile": config.to_dict()["profile"],
        "log": config.to_dict()["log"],
        "embedding_version": embedding_version,
        "partitions": partitions,
        "files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
    }


def _profile_params(config: Config) -> Any:
    """Profile parameters with the vectors that the configured retrieval needs switched on."""
    import dataclasses

    p = config.profile
    changes: dict[str, Any] = {}
    if config.retrieval.query == "centroid" and not p.store_centroids:
        changes["store_centroids"] = True
    if config.retrieval.decay_average_share > 0 and not p.store_decay_average:
        changes["store_decay_average"] = True
    return dataclasses.replace(p, **changes) if changes else p


def run_batch(
    actions: str | Path,
    embeddings: str | Path | Any,
    run_date: str,
    out_dir: str | Path,
    config: Config | None = None,
    *,
    engine: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    spark: Any = None,
    after_partition: Callable[[int], None] | None = None,
) -> BatchResult:
    """Compute every user's profile for ``run_date`` and publish a snapshot under ``out_dir``.

    Parameters
    ----------
    actions : path
        Action log: a file or a folder of files (see :func:`pinnersage.actions.action_files`).
    embeddings : path or ItemCatalog
        Item embeddings (see :meth:`pinnersage.catalog.ItemCatalog.load`), or a loaded catalog.
    run_date : str
        ``YYYY-MM-DD`` (UTC).
    out_dir : path
        Snapshot root: ``out_dir/<run_date>/`` and ``out_dir/CURRENT`` are written.
    config : Config, optional
        ``profile`` (α, λ, window, cap, ...), ``log`` (columns, action types) and ``batch``
        (engine, workers, partitions, allow_empty) sections are used.
    engine : {"local", "spark"}, optional
        Overrides ``config.batch.engine``.
    workers : int, optional
        Worker processes of the local engine (overrides ``config.batch.workers``; default: all
        cores).
    progress : bool
        Progress bars on stderr.
    spark : pyspark.sql.SparkSession, optional
        Session for the Spark engine (default: the active one, or a new ``local[*]`` one).
    after_partition : callable, optional
        Called with the partition number after each checkpoint (local engine; for tests).

    Returns
    -------
    BatchResult

    Raises
    ------
    DataFormatError
        Unreadable log or embeddings, or no usable action in the window (unless
        ``batch.allow_empty``).
    """
    from pinnersage.actions import action_files
    from pinnersage.catalog import ItemCatalog

    cfg = config if config is not None else Config()
    engine_name = engine or cfg.batch.engine
    window = RunWindow.for_date(run_date, cfg.profile.history_window_days)
    day = window.run_date.isoformat()
    catalog = embeddings if isinstance(embeddings, ItemCatalog) else ItemCatalog.load(embeddings)
    params = _profile_params(cfg)
    ctx = ProfileContext.from_catalog(catalog, params, window.now_s)
    files = action_files(actions)
    root = Path(out_dir)
    partitions = cfg.batch.partitions
    work = root / ".work" / day
    reused = 0
    import time

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if engine_name == "local":
        from pinnersage.batch.local import compute_partitions, spill_actions

        fingerprint = _fingerprint(
            files, cfg, window, catalog.embedding_version, partitions, engine_name
        )
        job_file = work / "job.json"
        if not job_file.exists() or json.loads(job_file.read_text()) != fingerprint:
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            write_atomic(job_file, json.dumps(fingerprint, sort_keys=True).encode())
        spill = spill_actions(
            files, catalog, cfg.log, window, work / "spill", partitions, progress=progress
        )
        timings["read_s"] = time.perf_counter() - t0
        n_workers = workers or cfg.batch.workers or _cores()
        paths, stats, reused = compute_partitions(
            ctx,
            work / "spill",
            work / "parts",
            spill,
            workers=n_workers,
            progress=progress,
            after_partition=after_partition,
        )
        timings["profiles_s"] = time.perf_counter() - t0 - timings["read_s"]
        import pyarrow.parquet as pq

        tables = [pq.read_table(p) for p in paths]
        table = pa.concat_tables(tables) if tables else None
        rows_read, rows_kept, dropped = spill.rows_read, spill.rows_kept, spill.dropped
    elif engine_name == "spark":
        from pinnersage.batch.spark import run_spark

        out = run_spark(
            files, catalog, ctx, cfg.log, window, partitions, session=spark, work_dir=work
        )
        table, stats = out.table, out.stats
        timings.update(out.timings)
        rows_read, rows_kept, dropped = out.rows_read, out.rows_kept, out.dropped
    else:
        from pinnersage.errors import ConfigError

        raise ConfigError(f"batch.engine must be 'local' or 'spark', got {engine_name!r}")
    if stats.users == 0 and not cfg.batch.allow_empty:
        start, end = window.to_dict()["start"], window.to_dict()["end"]
        raise EmptyWindowError(
            f"no usable action in the window {start} .. {end} of {len(files)} file(s) under "
            f"{actions} ({rows_read:,} rows read; skipped: {dropped or 'none'}); check the run "
            "date and the log, or allow an empty snapshot (batch.allow_empty)",
            start=start,
            end=end,
        )
    if stats.users_capped:
        warnings.warn(
            f"{stats.users_capped:,} users had more than {params.max_actions_per_user:,} actions "
            f"in the window; their most recent {params.max_actions_per_user:,} were clustered "
            f"({stats.actions_capped:,} older actions skipped; raise "
            "profile.max_actions_per_user to keep more)",
            PinnerSageWarning,
            stacklevel=2,
        )
    if table is None or table.num_rows == 0:
        from pinnersage.batch.job import profiles_schema

        table = profiles_schema(
            int_user_ids=bool(
                table is not None and pa.types.is_integer(table.schema.field("user_id").type)
            ),
            int_item_ids=ctx.int_item_ids,
            dim=catalog.dim,
            params=params,
        ).empty_table()
    skipped = dict(sorted(dropped.items()))
    if stats.actions_capped:
        skipped["over_max_actions_per_user"] = stats.actions_capped
    manifest = {
        "engine": engine_name,
        "window": window.to_dict(),
        "parameters": {"profile": _asdict(params), "log": cfg.to_dict()["log"]},
        "embedding_version": catalog.embedding_version,
        "inputs": {"actions": [f.name for f in files], "files": len(files)},
        "actions": {
            "read": int(rows_read),
            "in_window_known_items": int(rows_kept),
            "used": int(stats.actions),
            "skipped": skipped,
        },
        "users_capped": int(stats.users_capped),
        "users_without_clusters": int(stats.users_without_clusters),
    }
    t1 = time.perf_counter()
    snapshot_dir = publish_snapshot(
        root, day, table, manifest, users_without_clusters=stats.users_without_clusters
    )
    if work.exists():
        shutil.rmtree(work)
        parent = work.parent
        if parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
    timings["publish_s"] = time.perf_counter() - t1
    timings["total_s"] = time.perf_counter() - t0
    snap = open_snapshot(snapshot_dir, verify=False)
    return BatchResult(snapshot_dir, snap.manifest, reused, {"timings": timings})


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _cores() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_ = PartitionStats  # re-exported type used in signatures of the engines
