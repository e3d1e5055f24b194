"""The medoid-keyed neighbour cache: one behavioural suite over LruCache and RedisCache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.core.profile import InterestCluster, InterestProfile
from pinnersage.errors import ConfigError
from pinnersage.params import IndexParams, RetrievalParams
from pinnersage.retrieval import (
    ExactIndex,
    LruCache,
    NeighborCache,
    NeighborList,
    Recommender,
    RedisCache,
)


def _list(seed: int, n: int = 5) -> NeighborList:
    rng = np.random.default_rng(seed)
    return NeighborList(
        rng.integers(0, 1000, n).astype(np.int64),
        np.sort(rng.random(n).astype(np.float32))[::-1].copy(),
    )


@pytest.fixture(params=["lru", pytest.param("redis", marks=pytest.mark.redis)])
def cache(request: pytest.FixtureRequest) -> Iterator[NeighborCache]:
    if request.param == "lru":
        yield LruCache(100)
        return
    url = request.getfixturevalue("redis_url")
    redis_cache = RedisCache(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield redis_cache
    redis_cache.clear()


def test_miss_then_hit_with_counts(cache: NeighborCache) -> None:
    key = ("medoid-1", 5, "v1")
    assert cache.get_many([key]) == [None]
    value = _list(1)
    cache.put_many([(key, value)])
    (got,) = cache.get_many([key])
    assert got == value
    assert got is not None and got.rows.dtype == np.int64 and got.scores.dtype == np.float32
    assert (cache.hits, cache.misses) == (1, 1)
    stats = cache.stats()
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_rate"] == 0.5


def test_key_holds_k_version_and_id_type(cache: NeighborCache) -> None:
    cache.put_many([((42, 5, "v1"), _list(1)), (("42", 5, "v1"), _list(2))])
    got = cache.get_many(
        [(42, 5, "v1"), ("42", 5, "v1"), (42, 6, "v1"), (42, 5, "v2"), (np.int64(42), 5, "v1")]
    )
    assert got[0] == _list(1) and got[1] == _list(2)
    assert got[2] is None and got[3] is None  # another k, another index version
    assert got[4] == _list(1)  # numpy ints are the same item


def test_many_keys_in_one_call_keep_order(cache: NeighborCache) -> None:
    items = [((f"m{i}", 3, "v"), _list(i, 3)) for i in range(10)]
    cache.put_many(items)
    got = cache.get_many([key for key, _ in reversed(items)])
    assert got == [value for _, value in reversed(items)]
    assert cache.hits == 10


def test_clear_empties_and_resets(cache: NeighborCache) -> None:
    cache.put_many([(("m", 3, "v"), _list(0))])
    cache.get_many([("m", 3, "v")])
    cache.clear()
    assert cache.get_many([("m", 3, "v")]) == [None]
    assert (cache.hits, cache.misses) == (0, 1)


def test_empty_list_round_trips(cache: NeighborCache) -> None:
    empty = NeighborList(np.zeros(0, np.int64), np.zeros(0, np.float32))
    cache.put_many([(("m", 1, "v"), empty)])
    assert cache.get_many([("m", 1, "v")]) == [empty]


def test_recommender_shares_cached_lists_between_users(cache: NeighborCache) -> None:
    rng = np.random.default_rng(0)
    catalog = ItemCatalog.from_arrays(np.arange(200), rng.standard_normal((200, 8)))
    index = ExactIndex.build(catalog, IndexParams(kind="exact"))
    rec = Recommender(
        index,
        catalog,
        cache=cache,
        params=RetrievalParams.paper(selection="top", clusters_per_request=2),
    )
    alice = InterestProfile(
        "alice", 0.0, (InterestCluster(3, 2.0, 2, 0.0), InterestCluster(17, 1.0, 1, 0.0))
    )
    bob = InterestProfile(
        "bob", 0.0, (InterestCluster(17, 5.0, 4, 0.0), InterestCluster(3, 1.0, 1, 0.0))
    )
    first = rec.recommend(alice, 10, rng=None)
    assert (cache.hits, cache.misses) == (0, 2)
    second = rec.recommend(bob, 10, rng=None)
    assert (cache.hits, cache.misses) == (2, 2)
    assert {c.item_id for c in first} == {c.item_id for c in second}
    assert rec.stats()["hits"] == 2


# -- store-specific behaviour ---------------------------------------------------------------------


def test_lru_evicts_least_recently_used() -> None:
    cache = LruCache(2)
    cache.put_many([(("a", 1, "v"), _list(1)), (("b", 1, "v"), _list(2))])
    cache.get_many([("a", 1, "v")])  # a is now the most recent
    cache.put_many([(("c", 1, "v"), _list(3))])
    assert cache.get_many([("b", 1, "v")]) == [None]
    assert cache.get_many([("a", 1, "v"), ("c", 1, "v")]) == [_list(1), _list(3)]
    assert len(cache) == 2


def test_lru_of_size_zero_stores_nothing() -> None:
    cache = LruCache(0)
    cache.put_many([(("a", 1, "v"), _list(1))])
    assert cache.get_many([("a", 1, "v")]) == [None]
    with pytest.raises(ConfigError, match="maxsize"):
        LruCache(-1)


@pytest.mark.redis
def test_redis_malformed_value_counts_as_corrupt_miss(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix=f"test:{uuid.uuid4().hex}:", ttl_s=60)
    key = ("m", 4, "v")
    cache.put_many([(key, _list(1, 4))])
    assert 0 < cache.client.ttl(cache.key(key)) <= 60
    cache.client.set(cache.key(key), b"\x05\x00\x00\x00garbage")
    assert cache.get_many([key]) == [None]
    assert cache.stats()["corrupt"] == 1 and cache.misses == 1
    cache.put_many([(key, _list(1, 4))])
    assert cache.get_many([key]) == [_list(1, 4)]
    cache.clear()


@pytest.mark.redis
def test_two_redis_clients_share_entries(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    replica_a = RedisCache(redis_url, prefix=prefix)
    replica_b = RedisCache(redis_url, prefix=prefix)
    replica_a.put_many([(("m", 4, "v"), _list(7, 4))])
    assert replica_b.get_many([("m", 4, "v")]) == [_list(7, 4)]
    assert (replica_a.hits, replica_b.hits) == (0, 1)
    replica_a.clear()
