"""The medoid-based cache (paper section 3.7, Table 2: -75% cost against centroid queries).

A medoid is an item, so the ANN query of a cluster can be keyed by the medoid's item id instead of
a float vector, and its neighbour list reused by every user who shares the medoid. Entries are keyed
by ``(medoid item id, k, index version)``: a new index (new embeddings or parameters) never serves
stale neighbours. Two stores share one interface:

* :class:`LruCache`, in-process, least recently used eviction (``IndexParams.cache_size``
  entries), thread-safe; the default;
* :class:`RedisCache`, shared by several serving replicas (the ``redis`` extra), with an optional
  TTL.

Both count hits and misses (:meth:`NeighborCache.stats`). A cached value is a
:class:`NeighborList`: catalog rows and cosine scores, best first.

Memory: an in-process entry holds its rows and scores (12 bytes a neighbour) and about 200 bytes
of Python objects, so about 2.2 KB for the paper's 133 neighbours (fetched 167 deep): the
default 20,000 entries take about 45 MB, 1,000,000 about 2.2 GB. Size ``IndexParams.cache_size``
to the memory of a serving replica.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pinnersage.errors import ConfigError

__all__ = ["CacheKey", "LruCache", "NeighborCache", "NeighborList", "RedisCache"]

#: ``(medoid item id, k, index version)``.
CacheKey = tuple[Any, int, str]


class NeighborList:
    """The ``k`` nearest catalog rows of one query and their cosine scores, best first."""

    __slots__ = ("rows", "scores")

    def __init__(self, rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float32]) -> None:
        self.rows = rows
        self.scores = scores

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NeighborList)
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.scores, other.scores)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NeighborList(k={len(self)})"

    def to_bytes(self) -> bytes:
        """``<u4 count`` + little-endian int64 rows + float32 scores."""
        n = len(self)
        return (
            struct.pack("<I", n)
            + np.ascontiguousarray(self.rows, "<i8").tobytes()
            + np.ascontiguousarray(self.scores, "<f4").tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> NeighborList | None:
        """Parse :meth:`to_bytes`; None when the bytes are malformed."""
        if len(data) < 4:
            return None
        (n,) = struct.unpack_from("<I", data)
        if len(data) != 4 + 12 * n:
            return None
        rows = np.frombuffer(data, "<i8", count=n, offset=4).astype(np.int64)
        scores = np.frombuffer(data, "<f4", count=n, offset=4 + 8 * n).astype(np.float32)
        return cls(rows, scores)


@runtime_checkable
class NeighborCache(Protocol):
    """A store of neighbour lists keyed by ``(medoid item id, k, index version)``."""

    hits: int
    misses: int

    def get_many(self, keys: Sequence[CacheKey]) -> list[NeighborList | None]: ...

    def put_many(self, items: Sequence[tuple[CacheKey, NeighborList]]) -> None: ...

    def clear(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class LruCache:
    """In-process least-recently-used cache of neighbour lists (the default).

    Parameters
    ----------
    maxsize : int
        Entries kept (``IndexParams.cache_size``); 0 disables caching (every lookup misses).
    """

    def __init__(self, maxsize: int = 20_000) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ConfigError(f"cache maxsize must be an integer >= 0, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[CacheKey, NeighborList] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: CacheKey) -> NeighborList | None:
        """One lookup (counts a hit or a miss)."""
        return self.get_many((key,))[0]

    def put(self, key: CacheKey, value: NeighborList) -> None:
        self.put_many(((key, value),))

    def get_many(self, keys: Sequence[CacheKey]) -> list[NeighborList | None]:
        """Look up several keys; each counts a hit or a miss."""
        out: list[NeighborList | None] = []
        with self._lock:
            data = self._data
            for key in keys:
                value = data.get(key)
                if value is None:
                    self.misses += 1
                else:
                    data.move_to_end(key)
                    self.hits += 1
                out.append(value)
        return out

    def put_many(self, items: Sequence[tuple[CacheKey, NeighborList]]) -> None:
        """Store entries, evicting the least recently used beyond ``maxsize``."""
        if self.maxsize == 0:
            return
        with self._lock:
            data = self._data
            for key, value in items:
                data[key] = value
                data.move_to_end(key)
            while len(data) > self.maxsize:
                data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses``, ``hit_rate``, ``size`` and ``maxsize``."""
        total = self.hits + self.misses
        return {
            "kind": "lru",
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / total if total else 0.0,
            "size": len(self._data),
            "maxsize": self.maxsize,
        }


class RedisCache:
    """Neighbour lists in Redis, shared by several serving replicas.

    Keys are ``{prefix}{index version}:{k}:{i|s}:{medoid item id}`` (the type tag keeps item 42
    and item ``"42"`` apart); values are :meth:`NeighborList.to_bytes`. A malformed value counts
    as a miss (and in ``corrupt``) and is overwritten by the next put. Hit and miss counts are
    this client's (per replica).

    Parameters
    ----------
    url : str, optional
        ``redis://host:port/db``; ignored when ``client`` is given.
    client : redis.Redis, optional
        An existing client (binary responses, i.e. ``decode_responses=False``).
    prefix : str
        Namespace of the keys.
    ttl_s : int, optional
        Expiry of each entry in seconds (None: until evicted by Redis's own policy).
    """

    def __init__(
        self,
        url: str | None = "redis://localhost:6379/0",
        *,
        client: Any = None,
        prefix: str = "pinnersage:nbr:",
        ttl_s: int | None = None,
    ) -> None:
        if client is None:
            from pinnersage._optional import require

            redis = require("redis", "redis")
            client = redis.Redis.from_url(url or "redis://localhost:6379/0")
        if ttl_s is not None and (
            isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1
        ):
            raise ConfigError(f"ttl_s must be an integer >= 1 or None, got {ttl_s!r}")
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def key(self, key: CacheKey) -> str:
        """The Redis key of a cache key."""
        item_id, k, version = key
        if isinstance(item_id, int | np.integer) and not isinstance(item_id, bool):
            tag, text = "i", str(int(item_id))
        else:
            tag, text = "s", str(item_id)
        return f"{self.prefix}{version}:{int(k)}:{tag}:{text}"

    def get_many(self, keys: Sequence[CacheKey]) -> list[NeighborList | None]:
        """One ``MGET`` round trip for all keys."""
        if not keys:
            return []
        raw = self.client.mget([self.key(k) for k in keys])
        out: list[NeighborList | None] = []
        for data in raw:
            value = NeighborList.from_bytes(data) if data is not None else None
            if value is None:
                self.misses += 1
                if data is not None:
                    self.corrupt += 1
            else:
                self.hits += 1
            out.append(value)
        return out

    def put_many(self, items: Sequence[tuple[CacheKey, NeighborList]]) -> None:
        """One pipelined round trip for all entries."""
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self.key(key), value.to_bytes(), ex=self.ttl_s)
        pipe.execute()

    def clear(self) -> None:
        """Delete this cache's keys (those under ``prefix``) and reset the counters."""
        batch: list[Any] = []
        for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)
        self.hits = self.misses = self.corrupt = 0

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses``, ``hit_rate`` and ``corrupt`` of this client."""
        total = self.hits + self.misses
        return {
            "kind": "redis",
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / total if total else 0.0,
            "corrupt": self.corrupt,
        }
