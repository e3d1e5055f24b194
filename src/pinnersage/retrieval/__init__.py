"""Retrieval (paper sections 3.5, 3.7 and 6): ANN index, medoid-keyed cache, and the recommender.

``ExactIndex`` (brute force, the oracle) and ``HnswIndex`` (hnswlib, the default) share one
interface (:class:`AnnIndex`); ``open_index`` loads either from disk. ``Recommender`` turns a
profile into candidates, caching neighbour lists by medoid id in an ``LruCache`` (in-process) or a
``RedisCache`` (shared by replicas).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pinnersage.params import IndexParams
from pinnersage.retrieval.cache import (
    CacheKey,
    LruCache,
    NeighborCache,
    NeighborList,
    RedisCache,
)
from pinnersage.retrieval.exact import ExactIndex
from pinnersage.retrieval.hnsw import HnswIndex
from pinnersage.retrieval.index import (
    AnnIndex,
    Neighbors,
    open_index,
    read_manifest,
    recall_at_k,
)
from pinnersage.retrieval.recommender import (
    Candidate,
    Recommendations,
    Recommender,
    popular_items,
)
from pinnersage.retrieval.refine import (
    RefineReport,
    near_duplicates,
    read_item_id_file,
    refine_rows,
)

if TYPE_CHECKING:
    from pinnersage.catalog import ItemCatalog

__all__ = [
    "AnnIndex",
    "CacheKey",
    "Candidate",
    "ExactIndex",
    "HnswIndex",
    "LruCache",
    "NeighborCache",
    "NeighborList",
    "Neighbors",
    "Recommendations",
    "Recommender",
    "RedisCache",
    "RefineReport",
    "build_index",
    "near_duplicates",
    "open_index",
    "popular_items",
    "read_item_id_file",
    "read_manifest",
    "recall_at_k",
    "refine_rows",
]


def build_index(
    catalog: ItemCatalog,
    params: IndexParams | None = None,
    *,
    exclude_item_ids: Collection[Any] | None = None,
    progress: bool = False,
) -> ExactIndex | HnswIndex:
    """Build the index of ``params.kind`` (default ``hnsw``) over ``catalog``.

    ``exclude_item_ids`` is the refined index's item filter; ``params.dedupe_cosine`` its
    near-duplicate removal; ``progress`` shows a progress bar of the HNSW build on stderr.
    """
    p = params if params is not None else IndexParams()
    if p.kind == "hnsw":
        return HnswIndex.build(catalog, p, exclude_item_ids=exclude_item_ids, progress=progress)
    return ExactIndex.build(catalog, p, exclude_item_ids=exclude_item_ids)
