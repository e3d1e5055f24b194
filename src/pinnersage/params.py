"""Typed, frozen, validated parameters, and their loading from a TOML file.

Each parameter has a documented default and is validated once, when the object is built, with a
:class:`~pinnersage.errors.ConfigError` that names the value and the rule. A TOML file holds one
table per dataclass (``[profile]``, ``[retrieval]``, ``[index]``, ``[batch]``, ``[log]``); command
line flags override the file (see :func:`load_config`).

Paper symbols: ``distance_threshold`` is α (Algorithm 1, squared-Euclidean units of Eq. 1),
``decay_per_day`` is λ (Eq. 3), ``history_window_days`` is the 90-day batch window,
``clusters_per_request`` is e (3 medoids sampled per request).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from pinnersage.errors import ConfigError

__all__ = [
    "BatchParams",
    "Config",
    "IndexParams",
    "LogParams",
    "ProfileParams",
    "RetrievalParams",
    "load_config",
]

#: Default α. Chosen on measured numbers: see ``docs/tuning.md`` (clusters per user and retrieval
#: quality on Online Retail and MovieLens with co-occurrence embeddings).
DEFAULT_DISTANCE_THRESHOLD = 1.0


def _fail(section: str, name: str, value: object, rule: str) -> ConfigError:
    return ConfigError(f"{section}.{name} must be {rule}, got {value!r}")


def _number(
    section: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise _fail(section, name, value, kind)
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise _fail(section, name, value, f"a finite {kind[2:] if integer else 'number'}")
    if low is not None and (v <= low if low_open else v < low):
        raise _fail(section, name, value, f"{'>' if low_open else '>='} {low:g}")
    if high is not None and (v >= high if high_open else v > high):
        raise _fail(section, name, value, f"{'<' if high_open else '<='} {high:g}")


def _choice(section: str, name: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise _fail(section, name, value, "one of " + ", ".join(repr(o) for o in options))


def _flag(section: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(section, name, value, "true or false")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileParams:
    """How a user's actions become a profile (Algorithm 2)."""

    #: α: Ward merges with distance <= this are kept (squared Euclidean, Eq. 1 units; on unit
    #: vectors two single items merge when ``2 - 2 cos <= α``).
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD
    #: λ: importance of an action decays as ``exp(-λ · age_days)`` (Eq. 3).
    decay_per_day: float = 0.01
    #: Keep actions whose first merge is above α as clusters of one (the paper drops them).
    keep_singletons: bool = True
    #: Bound on one user's history (most recent kept, with a warning): Ward needs O(n²) memory.
    max_actions_per_user: int = 5000
    #: The batch window: actions in the days before the run date (and the run date itself).
    history_window_days: int = 90
    #: Clustering method: the paper's Ward, or the ablations complete linkage and k-means.
    method: Literal["ward", "complete", "kmeans"] = "ward"
    #: k for the k-means ablation (the paper's k = 5).
    kmeans_clusters: int = 5
    #: Store each cluster's centroid (needed by the centroid retrieval variant).
    store_centroids: bool = False
    #: Store the user's decay-weighted average vector (needed by hybrid retrieval,
    #: ``RetrievalParams.decay_average_share > 0``, the default strategy).
    store_decay_average: bool = True

    def __post_init__(self) -> None:
        s = "profile"
        _number(s, "distance_threshold", self.distance_threshold, low=0)
        _number(s, "decay_per_day", self.decay_per_day, low=0)
        _flag(s, "keep_singletons", self.keep_singletons)
        _number(s, "max_actions_per_user", self.max_actions_per_user, low=1, integer=True)
        _number(s, "history_window_days", self.history_window_days, low=1, integer=True)
        _choice(s, "method", self.method, ("ward", "complete", "kmeans"))
        _number(s, "kmeans_clusters", self.kmeans_clusters, low=1, integer=True)
        _flag(s, "store_centroids", self.store_centroids)
        _flag(s, "store_decay_average", self.store_decay_average)

    @classmethod
    def paper(cls, **overrides: Any) -> ProfileParams:
        """The paper's literal Algorithm 2: Ward, singletons dropped, λ = 0.01."""
        return cls(**{"keep_singletons": False, "decay_per_day": 0.01, **overrides})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalParams:
    """How a profile becomes candidates (paper section 3.5)."""

    # Defaults: the hybrid measured best offline (docs/results.md, issue 5): half the budget, at
    # most 64 candidates, split between the user's clusters (up to 100, most important first) in
    # proportion to importance; the rest to the decay-weighted average query, which takes its
    # best items the clusters did not take. It keeps the single vector's recall at every budget
    # and adds the multi-interest relevance; the paper's configuration is ``paper()``.
    #: Which clusters query the index: sampled in proportion to importance, or the top ones.
    selection: Literal["sample", "top"] = "top"
    #: e: how many clusters query the index per request (at most; with ``quota="importance"``
    #: a cluster whose share rounds to zero candidates is not queried).
    clusters_per_request: int = 100
    #: Budget split between the e clusters: equal ``floor(k / e)``, or in proportion to importance.
    quota: Literal["equal", "importance"] = "importance"
    #: Query vector of a cluster: its medoid's embedding (cacheable by id) or its centroid.
    query: Literal["medoid", "centroid"] = "medoid"
    #: Share of the budget given to the decay-weighted average query (0 disables it).
    decay_average_share: float = 0.5
    #: With a decay-average share: the most candidates the clusters take in all; the rest of the
    #: budget goes to the decay-average query (None: no cap, the share alone splits the budget).
    max_cluster_candidates: int | None = 64
    #: Default number of candidates returned by ``recommend``.
    candidates: int = 100
    #: Drop items the user already engaged with.
    exclude_seen: bool = True

    def __post_init__(self) -> None:
        s = "retrieval"
        _choice(s, "selection", self.selection, ("sample", "top"))
        _number(s, "clusters_per_request", self.clusters_per_request, low=1, integer=True)
        _choice(s, "quota", self.quota, ("equal", "importance"))
        _choice(s, "query", self.query, ("medoid", "centroid"))
        _number(s, "decay_average_share", self.decay_average_share, low=0, high=1, high_open=True)
        if self.max_cluster_candidates is not None:
            _number(s, "max_cluster_candidates", self.max_cluster_candidates, low=1, integer=True)
        _number(s, "candidates", self.candidates, low=1, integer=True)
        _flag(s, "exclude_seen", self.exclude_seen)

    @classmethod
    def paper(cls, **overrides: Any) -> RetrievalParams:
        """The paper's configuration: 3 medoids sampled by importance, equal quotas."""
        base: dict[str, Any] = {
            "selection": "sample",
            "clusters_per_request": 3,
            "quota": "equal",
            "query": "medoid",
            "decay_average_share": 0.0,
            "max_cluster_candidates": None,
        }
        return cls(**{**base, **overrides})


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexParams:
    """The approximate nearest-neighbour index over item embeddings."""

    #: ``hnsw`` (hnswlib) or ``exact`` (brute force, the oracle).
    kind: Literal["hnsw", "exact"] = "hnsw"
    #: HNSW graph degree.
    m: int = 16
    #: HNSW build-time beam width.
    ef_construction: int = 200
    #: HNSW query-time beam width (raised to k when a query asks for more).
    ef_search: int = 200
    #: Refined index: items with cosine above this to a kept item are dropped (None: keep all).
    dedupe_cosine: float | None = None
    #: Entries of the in-process medoid cache (neighbour lists keyed by medoid item id).
    cache_size: int = 20_000
    #: Seed of the index build.
    seed: int = 0
    #: Threads of the HNSW build (None: all cores). 1 makes the graph reproducible for a seed;
    #: more threads build faster but insert items in a racy order.
    build_threads: int | None = None

    def __post_init__(self) -> None:
        s = "index"
        _choice(s, "kind", self.kind, ("hnsw", "exact"))
        _number(s, "m", self.m, low=2, integer=True)
        _number(s, "ef_construction", self.ef_construction, low=1, integer=True)
        _number(s, "ef_search", self.ef_search, low=1, integer=True)
        if self.dedupe_cosine is not None:
            _number(s, "dedupe_cosine", self.dedupe_cosine, low=-1, high=1, low_open=True)
        _number(s, "cache_size", self.cache_size, low=0, integer=True)
        _number(s, "seed", self.seed, low=0, integer=True)
        if self.build_threads is not None:
            _number(s, "build_threads", self.build_threads, low=1, integer=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogParams:
    """Column names of the action log, and which action types count."""

    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    action_col: str = "action"
    #: Action types to keep (None: all of them).
    action_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        s = "log"
        for name in ("user_col", "item_col", "time_col", "action_col"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise _fail(s, name, value, "a non-empty column name")
        if self.action_types is not None:
            if isinstance(self.action_types, str) or not all(
                isinstance(a, str) and a for a in self.action_types
            ):
                raise _fail(s, "action_types", self.action_types, "a list of action names")
            object.__setattr__(self, "action_types", tuple(self.action_types))


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchParams:
    """The daily batch job."""

    engine: Literal["local", "spark"] = "local"
    #: Worker processes of the local engine (None: all cores).
    workers: int | None = None
    #: Number of user partitions (hash of user id); also the checkpoint unit.
    partitions: int = 16
    #: Publish an empty snapshot when the window holds no usable action (default: an error, so a
    #: wrong date or path never replaces the previous profiles with nothing).
    allow_empty: bool = False

    def __post_init__(self) -> None:
        s = "batch"
        _choice(s, "engine", self.engine, ("local", "spark"))
        if self.workers is not None:
            _number(s, "workers", self.workers, low=1, integer=True)
        _number(s, "partitions", self.partitions, low=1, integer=True)
        _flag(s, "allow_empty", self.allow_empty)


_P = TypeVar("_P")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """All parameters, one table each in the TOML file."""

    profile: ProfileParams = field(default_factory=ProfileParams)
    retrieval: RetrievalParams = field(default_factory=RetrievalParams)
    index: IndexParams = field(default_factory=IndexParams)
    log: LogParams = field(default_factory=LogParams)
    batch: BatchParams = field(default_factory=BatchParams)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with ``changes`` applied to one section (values of None are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        current = getattr(self, section)
        return dataclasses.replace(
            self, **{section: _build(type(current), section, {**_asdict(current), **changes})}
        )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain data (for manifests and reports)."""
        return {f.name: _asdict(getattr(self, f.name)) for f in fields(self)}


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _build(cls: type[_P], section: str, values: Mapping[str, Any]) -> _P:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {section}.{unknown[0]}; known settings of [{section}]: "
            + ", ".join(sorted(known))
        )
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - kw_only dataclasses report unknown names
        raise ConfigError(f"[{section}]: {exc}") from exc


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """Load a :class:`Config` from a TOML file, then apply ``overrides`` (CLI flags).

    Precedence: ``overrides`` > file > defaults. Overrides whose value is None are ignored, so a
    CLI flag that was not given leaves the file's value in place.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {p} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    sections = {f.name: f.type for f in fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"unknown table [{unknown[0]}] in the config file; known tables: "
            + ", ".join(f"[{s}]" for s in sections)
        )
    built: dict[str, Any] = {}
    default = Config()
    for name in sections:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] in the config file must be a table, got {table!r}")
        extra = {k: v for k, v in (overrides or {}).get(name, {}).items() if v is not None}
        merged = {**table, **extra}
        if name == "log" and isinstance(merged.get("action_types"), list):
            merged["action_types"] = tuple(merged["action_types"])
        built[name] = _build(type(getattr(default, name)), name, merged)
    return Config(**built)
