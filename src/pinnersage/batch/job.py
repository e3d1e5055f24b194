"""Algorithm 2 for every user of a partition: the per-user work of the daily batch job.

Paper sections 3.4 and 6: each user's actions of the last 90 days are clustered (Algorithm 1),
each cluster is summarised by its medoid (Eq. 2) and importance (Eq. 3), and the profiles are
written to a key-value store. Users are independent, so the job maps onto any engine that groups
actions by user. This module is that per-group function, shared by the local engine
(:mod:`pinnersage.batch.local`) and the Spark engine (:mod:`pinnersage.batch.spark`):

* :class:`RunWindow` turns a run date into the window ``[start_s, end_s)`` and ``now_s``.
* :func:`partition_of` assigns users to partitions with a stable hash (crc32 of the id's text),
  never Python's salted ``hash()``.
* :func:`profile_partition` computes the profiles of one partition's actions, in canonical order
  (users ascending; each user's actions by (timestamp, item id)), so the result depends neither
  on input order nor on how users were partitioned. It calls the core's own clustering
  (:func:`pinnersage.core.profile.cluster_labels`) and summary kernels directly, skipping the
  per-call validation and object building of :func:`pinnersage.build_profile`;
  :func:`profile_partition_reference` is its slow twin, one ``build_profile`` call per user, and
  the tests check the two give identical tables.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from pinnersage.core.baselines import weighted_direction
from pinnersage.core.importance import SECONDS_PER_DAY, action_weights
from pinnersage.core.medoid import _summarise
from pinnersage.core.profile import (
    InterestProfile,
    build_profile,
    cluster_labels,
    ward_labels_of_items,
)
from pinnersage.errors import ConfigError, PinnerSageWarning
from pinnersage.params import ProfileParams

__all__ = [
    "PartitionStats",
    "ProfileContext",
    "RunWindow",
    "partition_of",
    "profile_partition",
    "profile_partition_reference",
    "profiles_schema",
    "table_to_profiles",
]


@dataclass(frozen=True, slots=True)
class RunWindow:
    """The actions a run uses: ``start_s <= timestamp < end_s``; importances at ``now_s``."""

    run_date: dt.date
    #: First second of the day ``history_window_days`` before the run date (inclusive).
    start_s: int
    #: First second after the run date (exclusive); also ``now_s``.
    end_s: int

    @property
    def now_s(self) -> int:
        """The time importances are evaluated at: the end of the run date (UTC)."""
        return self.end_s

    @classmethod
    def for_date(cls, run_date: str | dt.date, history_window_days: int) -> RunWindow:
        """The window of a run date (``YYYY-MM-DD``, UTC) over ``history_window_days`` days.

        The window covers the run date itself and the ``history_window_days`` days before it.
        """
        if isinstance(run_date, str):
            try:
                day = dt.date.fromisoformat(run_date)
            except ValueError as exc:
                raise ConfigError(f"run date must be YYYY-MM-DD, got {run_date!r}") from exc
        else:
            day = run_date
        if history_window_days < 1:
            raise ConfigError(f"history_window_days must be >= 1, got {history_window_days!r}")
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        start = end - dt.timedelta(days=history_window_days + 1)
        return cls(day, int(start.timestamp()), int(end.timestamp()))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest."""
        iso = lambda s: dt.datetime.fromtimestamp(s, dt.UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "now_s": self.now_s,
            "start": iso(self.start_s),
            "end": iso(self.end_s),
        }


def partition_of(user_ids: npt.ArrayLike, partitions: int) -> npt.NDArray[np.int64]:
    """Partition of each user: ``crc32(str(user_id)) % partitions``.

    Stable across processes, machines and ``PYTHONHASHSEED``. Each distinct id is hashed once.
    """
    ids = np.asarray(user_ids)
    if ids.shape[0] == 0:
        return np.zeros(0, np.int64)
    codes, uniques = pd.factorize(ids)
    part = np.fromiter(
        (zlib.crc32(str(u).encode("utf-8")) % partitions for u in uniques),
        dtype=np.int64,
        count=len(uniques),
    )
    return part[codes]


@dataclass(frozen=True, slots=True, eq=False)
class ProfileContext:
    """Everything the per-user function needs besides the actions (shipped to every worker)."""

    #: Catalog vectors as float64 (the precision the core computes in).
    vectors: npt.NDArray[np.float64]
    #: Catalog item ids, int64 or object (str).
    item_ids: np.ndarray
    #: Position of each catalog row in ascending item-id order (the tie-breaker of equal times).
    item_rank: npt.NDArray[np.int64]
    params: ProfileParams
    now_s: float

    @classmethod
    def from_catalog(cls, catalog: Any, params: ProfileParams, now_s: float) -> ProfileContext:
        """Build from an :class:`~pinnersage.catalog.ItemCatalog`."""
        ids = np.asarray(catalog.item_ids)
        order = np.argsort(ids, kind="stable")
        rank = np.empty(ids.shape[0], np.int64)
        rank[order] = np.arange(ids.shape[0])
        vectors = np.ascontiguousarray(catalog.vectors, dtype=np.float64)
        return cls(vectors, ids, rank, params, float(now_s))

    @property
    def int_item_ids(self) -> bool:
        return bool(self.item_ids.dtype.kind in "iu")


@dataclass(slots=True)
class PartitionStats:
    """Counts of one partition (summed over partitions by :meth:`merge`)."""

    users: int = 0
    actions: int = 0
    #: Users whose history was cut to ``max_actions_per_user`` (most recent kept).
    users_capped: int = 0
    #: Actions dropped by that cap.
    actions_capped: int = 0
    #: Users whose every action was a dropped singleton (``keep_singletons = false``).
    users_without_clusters: int = 0
    clusters: int = 0

    def merge(self, other: PartitionStats) -> PartitionStats:
        return PartitionStats(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartitionStats:
        return cls(**{f.name: int(data.get(f.name, 0)) for f in fields(cls)})


def profiles_schema(
    *, int_user_ids: bool, int_item_ids: bool, dim: int, params: ProfileParams
) -> pa.Schema:
    """Arrow schema of a profiles table: one row per cluster.

    Columns: ``user_id``, ``rank`` (1 = most important), ``medoid_item_id``, ``importance``
    (Eq. 3 at the run's ``now_s``), ``size`` (actions in the cluster), ``last_action_ts`` (unix
    seconds), ``n_actions`` (the user's actions after the cap), and, when the profile parameters
    ask for them, ``centroid`` and ``decay_average`` (float32 vectors of length ``dim``).
    """
    cols: list[pa.Field] = [
        pa.field("user_id", pa.int64() if int_user_ids else pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("medoid_item_id", pa.int64() if int_item_ids else pa.string(), nullable=False),
        pa.field("importance", pa.float64(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),
        pa.field("last_action_ts", pa.int64(), nullable=False),
        pa.field("n_actions", pa.int32(), nullable=False),
    ]
    if params.store_centroids:
        cols.append(pa.field("centroid", pa.list_(pa.float32(), dim), nullable=False))
    if params.store_decay_average:
        cols.append(pa.field("decay_average", pa.list_(pa.float32(), dim), nullable=False))
    return pa.schema(cols)


@dataclass(slots=True)
class _Columns:
    """Per-user pieces of the output, concatenated once at the end."""

    users: list[int] = field(default_factory=list)  # index of the user (into uniques)
    counts: list[int] = field(default_factory=list)  # clusters of that user
    n_actions: list[int] = field(default_factory=list)
    medoid_rows: list[np.ndarray] = field(default_factory=list)  # catalog rows
    importance: list[np.ndarray] = field(default_factory=list)
    size: list[np.ndarray] = field(default_factory=list)
    last: list[np.ndarray] = field(default_factory=list)
    centroid: list[np.ndarray] = field(default_factory=list)
    decay_average: list[np.ndarray] = field(default_factory=list)


def _canonical(
    user_ids: np.ndarray, item_rows: np.ndarray, timestamps_s: np.ndarray, ctx: ProfileContext
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort actions by (user, timestamp, item id); return uniques, user starts, rows, times."""
    codes, uniques = pd.factorize(user_ids, sort=True)
    codes = np.asarray(codes, np.int64)
    order = np.lexsort((ctx.item_rank[item_rows], timestamps_s, codes))
    codes = codes[order]
    rows = np.ascontiguousarray(item_rows[order], dtype=np.int64)
    times = np.ascontiguousarray(timestamps_s[order], dtype=np.float64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(codes)) + 1, [codes.shape[0]]))
    return np.asarray(uniques), starts.astype(np.int64), rows, times


def _check_inputs(
    user_ids: np.ndarray, item_rows: np.ndarray, timestamps_s: np.ndarray, ctx: ProfileContext
) -> None:
    n = user_ids.shape[0]
    if item_rows.shape[0] != n or timestamps_s.shape[0] != n:
        raise ConfigError(
            f"user_ids, item_rows and timestamps_s must have one entry per action; "
            f"got {n}, {item_rows.shape[0]}, {timestamps_s.shape[0]}"
        )
    if n and (item_rows.min() < 0 or item_rows.max() >= ctx.vectors.shape[0]):
        bad = int(np.argmax((item_rows < 0) | (item_rows >= ctx.vectors.shape[0])))
        raise ConfigError(
            f"item row {int(item_rows[bad])} at action {bad} is outside the "
            f"catalog (rows 0..{ctx.vectors.shape[0] - 1}); drop unknown items first"
        )


def _prepared(
    user_ids: npt.ArrayLike,
    item_rows: npt.ArrayLike,
    timestamps_s: npt.ArrayLike,
    ctx: ProfileContext,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked inputs in canonical order: unique users, their starts, item rows and times."""
    users_in = np.asarray(user_ids)
    rows_in = np.asarray(item_rows, dtype=np.int64)
    times_in = np.asarray(timestamps_s, dtype=np.int64)
    _check_inputs(users_in, rows_in, times_in, ctx)
    return _canonical(users_in, rows_in, times_in, ctx)


def profile_partition(
    user_ids: npt.ArrayLike,
    item_rows: npt.ArrayLike,
    timestamps_s: npt.ArrayLike,
    ctx: ProfileContext,
) -> tuple[pa.Table, PartitionStats]:
    """Profiles (Algorithm 2) of every user among these actions, one row per cluster.

    Parameters
    ----------
    user_ids : array-like of shape (n,)
        User of each action (int64 or str). Any order; a user's actions must all be here.
    item_rows : array-like of shape (n,)
        Catalog row of each action's item (unknown items already dropped).
    timestamps_s : array-like of shape (n,)
        Action times, unix seconds (int64).
    ctx : ProfileContext
        Catalog vectors and ids, profile parameters, ``now_s``.

    Returns
    -------
    (pyarrow.Table, PartitionStats)
        Rows sorted by (user_id, rank), schema :func:`profiles_schema`; and the counts.
        Identical to :func:`profile_partition_reference` on the same input.
    """
    uniques, starts, rows, times = _prepared(user_ids, item_rows, timestamps_s, ctx)
    p = ctx.params
    stats = PartitionStats(users=len(uniques))
    out = _Columns()
    cap = p.max_actions_per_user
    now = ctx.now_s
    vectors = ctx.vectors
    for u in range(len(uniques)):
        a, b = int(starts[u]), int(starts[u + 1])
        if b - a > cap:
            stats.users_capped += 1
            stats.actions_capped += b - a - cap
            a = b - cap
        r = rows[a:b]
        x = vectors[r]
        t = times[a:b]
        stats.actions += b - a
        if p.method == "ward":
            labels, c = ward_labels_of_items(x, r, p)
        else:
            labels, c = cluster_labels(x, p, None)
        w = action_weights(t, now, p.decay_per_day)
        if c == 0:
            stats.users_without_clusters += 1
            continue
        medoid, sizes, imps, lasts, centroids = _summarise(x, labels, c, t, w)
        rank = np.argsort(-imps, kind="stable")
        out.users.append(u)
        out.counts.append(c)
        out.n_actions.append(b - a)
        out.medoid_rows.append(r[medoid[rank]])
        out.importance.append(imps[rank])
        out.size.append(sizes[rank])
        out.last.append(lasts[rank])
        if p.store_centroids:
            out.centroid.append(centroids[rank].astype(np.float32))
        if p.store_decay_average:
            out.decay_average.append(_decay_average(w, x))
    table = _assemble(out, uniques, ctx)
    stats.clusters = table.num_rows
    return table, stats


def _decay_average(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return weighted_direction(w, x).astype(np.float32)  # the arithmetic of build_profile


def _assemble(out: _Columns, uniques: np.ndarray, ctx: ProfileContext) -> pa.Table:
    p = ctx.params
    dim = ctx.vectors.shape[1]
    int_users = uniques.dtype.kind in "iu"
    schema = profiles_schema(
        int_user_ids=int_users, int_item_ids=ctx.int_item_ids, dim=dim, params=p
    )
    counts = np.asarray(out.counts, np.int64)
    user_index = np.repeat(np.asarray(out.users, np.int64), counts)
    ranks = (
        np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        if counts.size
        else np.zeros(0, np.int64)
    )

    def cat(parts: list[Any], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    medoid_rows = cat(out.medoid_rows, np.int64)
    users = uniques[user_index] if user_index.size else uniques[:0]
    columns: list[pa.Array] = [
        pa.array(users, type=schema.field("user_id").type),
        pa.array(ranks.astype(np.int32), type=pa.int32()),
        pa.array(ctx.item_ids[medoid_rows], type=schema.field("medoid_item_id").type),
        pa.array(cat(out.importance, np.float64), type=pa.float64()),
        pa.array(cat(out.size, np.int32), type=pa.int32()),
        pa.array(cat(out.last, np.int64), type=pa.int64()),
        pa.array(np.repeat(np.asarray(out.n_actions, np.int32), counts), type=pa.int32()),
    ]
    if p.store_centroids:
        flat = cat(out.centroid, np.float32).reshape(-1)
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim))
    if p.store_decay_average:
        per_user = (
            np.stack(out.decay_average) if out.decay_average else np.zeros((0, dim), np.float32)
        )
        flat = np.repeat(per_user, counts, axis=0).reshape(-1)
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim))
    return pa.Table.from_arrays(columns, schema=schema)


def profile_partition_reference(
    user_ids: npt.ArrayLike,
    item_rows: npt.ArrayLike,
    timestamps_s: npt.ArrayLike,
    ctx: ProfileContext,
) -> tuple[pa.Table, PartitionStats]:
    """The slow twin of :func:`profile_partition`: one :func:`build_profile` call per user."""
    uniques, starts, rows, times = _prepared(user_ids, item_rows, timestamps_s, ctx)
    p = ctx.params
    stats = PartitionStats(users=len(uniques))
    profiles: list[InterestProfile] = []
    vectors32 = ctx.vectors.astype(np.float32)
    for u in range(len(uniques)):
        a, b = int(starts[u]), int(starts[u + 1])
        r = rows[a:b]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PinnerSageWarning)
            prof = build_profile(
                vectors32[r],
                ctx.item_ids[r],
                times[a:b],
                now_s=ctx.now_s,
                params=p,
                user_id=uniques[u].item() if isinstance(uniques[u], np.generic) else uniques[u],
            )
        if caught:
            stats.users_capped += 1
            stats.actions_capped += b - a - prof.n_actions
        stats.actions += prof.n_actions
        if not prof.clusters:
            stats.users_without_clusters += 1
        profiles.append(prof)
    table = profiles_to_table(profiles, ctx, int_user_ids=uniques.dtype.kind in "iu")
    stats.clusters = table.num_rows
    return table, stats


def profiles_to_table(
    profiles: Iterable[InterestProfile], ctx: ProfileContext, *, int_user_ids: bool
) -> pa.Table:
    """Profiles as a profiles table (:func:`profiles_schema`), in the order given."""
    p = ctx.params
    dim = ctx.vectors.shape[1]
    schema = profiles_schema(
        int_user_ids=int_user_ids, int_item_ids=ctx.int_item_ids, dim=dim, params=p
    )
    rows: dict[str, list[Any]] = {f.name: [] for f in schema}
    for prof in profiles:
        for k, c in enumerate(prof.clusters):
            rows["user_id"].append(prof.user_id)
            rows["rank"].append(k + 1)
            rows["medoid_item_id"].append(c.medoid_item_id)
            rows["importance"].append(c.importance)
            rows["size"].append(c.size)
            rows["last_action_ts"].append(int(c.last_action_s))
            rows["n_actions"].append(prof.n_actions)
            if p.store_centroids:
                rows["centroid"].append(c.centroid)
            if p.store_decay_average:
                rows["decay_average"].append(prof.decay_average)
    return pa.Table.from_pydict(rows, schema=schema)


def table_to_profiles(table: pa.Table, *, as_of_s: float) -> list[InterestProfile]:
    """Rows of a profiles table (sorted by user, rank) back as :class:`InterestProfile` objects."""
    from pinnersage.core.profile import InterestCluster

    data = table.to_pydict()
    n = table.num_rows
    out: list[InterestProfile] = []
    start = 0
    users = data["user_id"]
    while start < n:
        end = start
        while end < n and users[end] == users[start]:
            end += 1
        clusters = tuple(
            InterestCluster(
                data["medoid_item_id"][i],
                float(data["importance"][i]),
                int(data["size"][i]),
                float(data["last_action_ts"][i]),
                np.asarray(data["centroid"][i], np.float32) if "centroid" in data else None,
            )
            for i in range(start, end)
        )
        avg = (
            np.asarray(data["decay_average"][start], np.float32)
            if "decay_average" in data
            else None
        )
        out.append(
            InterestProfile(
                users[start], float(as_of_s), clusters, int(data["n_actions"][start]), avg
            )
        )
        start = end
    return out


#: Seconds per day, re-exported for engines that compute windows.
DAY_S = int(SECONDS_PER_DAY)
