"""Candidate retrieval from a profile (paper section 3.5): sample medoids, query the ANN, blend.

A request picks ``e`` of the user's clusters (``RetrievalParams.selection``: sampled without
replacement in proportion to importance, as in the paper and with the distribution of
:func:`~pinnersage.core.sampling.sample_medoids`, or the ``e`` most important), splits the
budget of ``k`` candidates between them, queries the index once per cluster (with the medoid's
vector, cached by medoid id across users, paper section 3.7; or with the cluster's centroid, not
cacheable), and merges the lists.

Budget rules (all deterministic given the drawn clusters):

* ``decay_average_share`` s > 0 gives one extra query, with the profile's decay-weighted average
  vector, ``k_avg`` candidates; the clusters share the other ``k_c = k - floor(k * s)``, capped at
  ``max_cluster_candidates`` (64 by default; the decay-average query takes what the cap frees):
  ``k_avg = k - k_c``. The shipped s = 0.5 and cap 64 give 25/25 of 50 candidates, 50/50 of 100
  and 64/336 of 400 (clusters/decay average). Why a cap: a cluster's list is the neighbourhood of
  one item and runs dry after a few tens of items, while the average's list keeps finding the
  user's items deep down. Offline (docs/results.md), half of 400 for the clusters recalled up to
  0.035 less than the decay average alone on MovieLens variants; with the cap at 64 the paired
  recall difference was positive at 50, 100, 200 and 400 candidates on every co-occurrence variant
  of both public logs (at 400: +0.010 Online Retail, +0.002 MovieLens).
* ``quota = "equal"``: each of the e' = min(e, clusters in the profile) chosen clusters gets
  ``floor(k_c / e')``; the remainder ``k_c mod e'`` goes one each to the first chosen clusters
  (draw order for ``sample``, importance order for ``top``). The paper's ``k = 399, e = 3`` gives
  133 each; ``k = 400`` gives 134, 133, 133.
* ``quota = "importance"``: in proportion to the chosen clusters' importances, rounded by largest
  remainder (ties: earlier chosen cluster first); equal when every importance is zero. A cluster
  whose share rounds to zero is not queried.

Merging, in turn: each chosen cluster (in the order above), then the decay-average query, takes
its best ``quota`` items that are neither in ``exclude_item_ids`` (the caller passes the user's own
item ids; when ``exclude_seen`` is on) nor taken by an earlier source. An item found by several
queries is thus kept once, by the first of them, and never costs another source its place: the
decay-average query's ``k_avg`` candidates are its best items that the clusters did not take, so
its list reaches deeper where the clusters found its items too. A list that runs short is fetched
again twice as deep (each list is first fetched ``quota + 25%`` deep, the decay average's
``k + 25%``, since it may have to skip every cluster's items), until the quota is met or the whole
index was read, so the user gets ``k`` candidates whenever the index holds that many unseen items.
The result does not depend on those depths. Candidates are returned best score first (the score
of the source that took them; ties: source order).

An empty profile (no clusters: a new user, or every action a dropped singleton) falls back to
``popular_item_ids`` given to the recommender (see :func:`popular_items`), in their order, minus
the excluded items, with ``source = "popular"``; without them it returns an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from pinnersage.core.profile import InterestCluster, InterestProfile, ItemId
from pinnersage.core.sampling import sample_indices, top_medoids
from pinnersage.errors import ConfigError, EmbeddingVersionMismatchError
from pinnersage.params import RetrievalParams
from pinnersage.retrieval.cache import LruCache, NeighborCache, NeighborList
from pinnersage.retrieval.index import AnnIndex, check_k, check_queries

if TYPE_CHECKING:
    import pandas as pd

    from pinnersage.catalog import ItemCatalog

__all__ = ["Candidate", "Recommender", "budget_split", "popular_items"]


class Candidate(NamedTuple):
    """One retrieved item and the interest it came from ("because you liked X").

    Immutable, compared by value; ``candidate._asdict()`` gives a dict. A named tuple rather than
    a frozen dataclass because the recommender builds hundreds per request and a tuple is built
    in C, about six times faster (``dataclasses.asdict`` does not apply; use ``_asdict``).
    """

    item_id: ItemId
    #: Cosine similarity to the query of its source (higher is better). For ``popular``
    #: candidates a rank score in (0, 1] that keeps their popularity order.
    score: float
    #: The medoid item of the cluster that retrieved it; None for the decay-average query and
    #: the popular fallback.
    source_item_id: ItemId | None
    #: ``"medoid"``, ``"centroid"``, ``"decay_average"`` or ``"popular"``.
    source: str


#: ``_make(Candidate, (item_id, score, source_item_id, source))``: a Candidate built in C.
_make = tuple.__new__


class _Source:
    """One query of a request (internal)."""

    __slots__ = ("cacheable", "depth", "kind", "lst", "medoid", "quota", "vector")

    def __init__(self, kind: str, medoid: ItemId | None, quota: int, depth: int,
                 vector: npt.NDArray[np.float32] | None = None) -> None:
        self.kind = kind
        self.medoid = medoid
        self.quota = quota
        self.depth = depth
        self.vector = vector
        self.cacheable = kind == "medoid"
        self.lst: NeighborList | None = None


class _Memo:
    """Python-side views of one neighbour list, kept with it (internal): its ids, the position
    of each id, and its candidates, built on demand from the top (a request rarely reads past
    its quota, so the tail is usually never built)."""

    __slots__ = ("candidates", "ids", "position", "scores")

    def __init__(self, ids: list[Any], scores: list[float] | None = None) -> None:
        self.ids = ids
        self.scores = scores
        self.position: dict[Any, int] | None = None
        self.candidates: list[Candidate] = []

    def where(self, items: set[Any]) -> list[int]:
        """Positions of the list's items that are in ``items``, ascending."""
        hits = items.intersection(self.ids)
        if not hits:
            return []
        if len(hits) <= 8:  # a few: C-level scans of the list
            return sorted([self.ids.index(h) for h in hits])
        if self.position is None:
            self.position = dict(zip(self.ids, range(len(self.ids)), strict=True))
        position = self.position
        return sorted([position[h] for h in hits])


#: The score of a candidate, its sort key.
_score = itemgetter(1)


def _first_depth(quota: int) -> int:
    """Neighbours fetched for a quota: 25% more, at least one (the medoid is usually seen)."""
    return quota + max(1, -(-quota // 4))


def budget_split(k: int, params: RetrievalParams) -> tuple[int, int]:
    """Candidates of a budget ``k`` for the clusters and for the decay-average query.

    ``k_c = k - floor(k * decay_average_share)``, at most ``max_cluster_candidates`` when the
    decay-average query has a share; the decay-average query gets ``k - k_c`` (the module
    docstring says why). Without a share, everything goes to the clusters.
    """
    s = params.decay_average_share
    if not s > 0:
        return k, 0
    k_c = k - math.floor(k * s)
    if params.max_cluster_candidates is not None:
        k_c = min(k_c, params.max_cluster_candidates)
    return k_c, k - k_c


def source_depths(quotas: Sequence[int], rule: str, budget: int) -> list[int]:
    """How deep each cluster's neighbour list is fetched first, for its quota.

    Equal quotas share one depth (one cache key per medoid and budget); importance quotas fetch
    25% beyond their own quota. The merge does not depend on the depth (a short list is fetched
    deeper), only the number of index searches and cache entries does.
    """
    if not quotas:
        return []
    if rule == "equal":
        return [_first_depth(-(-budget // len(quotas)))] * len(quotas)
    return [_first_depth(q) for q in quotas]


class Recommender:
    """Candidates for a profile from an ANN index, with a medoid-keyed neighbour cache.

    Parameters
    ----------
    index : AnnIndex
        Built from ``catalog``'s embeddings.
    catalog : ItemCatalog
        Maps medoid ids to query vectors and index rows to ids.
    params : RetrievalParams, optional
        The strategy (defaults: ``RetrievalParams()``; the paper's is ``RetrievalParams.paper()``).
    cache : NeighborCache, optional
        Defaults to an in-process :class:`LruCache` of ``index.params.cache_size`` entries.
        Pass a :class:`RedisCache` to share neighbour lists between replicas.
    popular_item_ids : sequence of item ids, optional
        Most popular first; the fallback for empty profiles.

    Raises
    ------
    EmbeddingVersionMismatchError
        The index was built from other embeddings than the catalog holds.
    """

    def __init__(self, index: AnnIndex, catalog: ItemCatalog, *,
                 params: RetrievalParams | None = None, cache: NeighborCache | None = None,
                 popular_item_ids: Sequence[ItemId] | npt.NDArray[Any] | None = None) -> None:
        if index.embedding_version != catalog.embedding_version:
            raise EmbeddingVersionMismatchError(
                f"the index was built from embedding_version {index.embedding_version} but the "
                f"catalog has {catalog.embedding_version}; rebuild the index for these embeddings")
        self.index = index
        self.catalog = catalog
        self.params = params if params is not None else RetrievalParams()
        self.cache: NeighborCache = (cache if cache is not None
                                     else LruCache(index.params.cache_size))
        self.popular_item_ids: tuple[ItemId, ...] = (
            () if popular_item_ids is None else tuple(np.asarray(popular_item_ids).tolist()))
        self._ids = catalog.item_ids
        self._n = len(index)
        self._version = index.index_version

    def stats(self) -> dict[str, Any]:
        """Cache hit and miss counts."""
        return self.cache.stats()

    # -- the request ---------------------------------------------------------------------------

    def recommend(self, profile: InterestProfile, k: int | None = None, *,
                  rng: np.random.Generator | None,
                  exclude_item_ids: Collection[ItemId] | None = None) -> list[Candidate]:
        """Up to ``k`` candidates for one user, best score first.

        Parameters
        ----------
        profile : InterestProfile
            The user's clusters (medoid ids must be in the catalog).
        k : int, optional
            Number of candidates (default ``params.candidates``).
        rng : numpy.random.Generator or None
            Draws the clusters when ``params.selection == "sample"`` (required then; may be None
            for ``"top"``).
        exclude_item_ids : collection of item ids, optional
            Items not to return, typically every item the user already engaged with; ignored when
            ``params.exclude_seen`` is false. Ids must be of the catalog's kind (int or str).

        Returns
        -------
        list of Candidate
            ``k`` candidates when the index holds that many unseen items (fewer otherwise), each
            with its score and the medoid it came from. See the module docstring for the budget
            and merge rules.

        Raises
        ------
        ConfigError
            ``selection = "sample"`` without ``rng``; ``query = "centroid"`` on a profile built
            without centroids; a decay-average share on a profile built without the average.
        UnknownItemError
            A medoid is not in the catalog (the profile was built from other embeddings).
        """
        p = self.params
        k = p.candidates if k is None else check_k(k)
        excluded: set[Any] | None = None
        if p.exclude_seen and exclude_item_ids is not None and len(exclude_item_ids):
            excluded = (exclude_item_ids if isinstance(exclude_item_ids, set | frozenset)
                        else set(np.asarray(exclude_item_ids).tolist()
                                 if isinstance(exclude_item_ids, np.ndarray)
                                 else exclude_item_ids))  # type: ignore[assignment]
        if not profile.clusters:
            return self._popular(k, excluded)
        chosen = self._choose(profile, rng)
        sources = self._sources(profile, chosen, k)
        return self._retrieve(sources, k, excluded)

    def _choose(self, profile: InterestProfile, rng: np.random.Generator | None
                ) -> tuple[InterestCluster, ...]:
        e = self.params.clusters_per_request
        if self.params.selection == "top":
            return top_medoids(profile, e)
        if rng is None:
            raise ConfigError("retrieval.selection = 'sample' draws clusters at random: pass "
                              "rng=numpy.random.default_rng(seed)")
        return _sample_clusters(profile.clusters, e, rng)

    def _sources(self, profile: InterestProfile, chosen: tuple[InterestCluster, ...],
                 k: int) -> list[_Source]:
        p = self.params
        sources: list[_Source] = []
        k_c, k_avg = budget_split(k, p)
        if k_avg and profile.decay_average is None:
            raise ConfigError(
                f"retrieval.decay_average_share = {p.decay_average_share} needs profiles built "
                "with profile.store_decay_average = true")
        quotas = _quotas(k_c, chosen, p.quota)
        depths = source_depths(quotas, p.quota, k_c)
        if p.query == "centroid":
            missing = [c.medoid_item_id for c in chosen if c.centroid is None]
            if missing:
                raise ConfigError(
                    "retrieval.query = 'centroid' needs profiles built with "
                    f"profile.store_centroids = true (cluster of medoid {missing[0]!r} has none)")
            vectors = check_queries(np.stack([c.centroid for c in chosen]),  # type: ignore[misc]
                                    self.index_dim)
            for c, q, d, v in zip(chosen, quotas, depths, vectors, strict=True):
                if q:
                    sources.append(_Source("centroid", c.medoid_item_id, q, d, v))
        else:
            for c, q, d in zip(chosen, quotas, depths, strict=True):
                if q:
                    sources.append(_Source("medoid", c.medoid_item_id, q, d))
        if k_avg:
            v = check_queries(profile.decay_average, self.index_dim)[0]  # type: ignore[arg-type]
            # it takes its best items that the clusters did not take: fetched deep enough to
            # skip all of them, so that it rarely needs a second search
            sources.append(_Source("decay_average", None, k_avg, _first_depth(k), v))
        return sources

    @property
    def index_dim(self) -> int:
        return int(self.catalog.dim)

    # -- fetching ------------------------------------------------------------------------------

    def _fetch(self, sources: list[_Source]) -> None:
        """Fill ``lst`` of each source: cache hits first, then one batched index search."""
        n = self._n
        for s in sources:
            s.depth = min(s.depth, n)
        cacheable = [s for s in sources if s.cacheable]
        todo = [s for s in sources if not s.cacheable]
        if cacheable:
            version = self._version
            found = self.cache.get_many([(s.medoid, s.depth, version) for s in cacheable])
            for s, lst in zip(cacheable, found, strict=True):
                if lst is None:
                    todo.append(s)
                else:
                    s.lst = lst
        if not todo:
            return
        medoid_rows = [s for s in todo if s.cacheable]
        others = [s for s in todo if not s.cacheable]
        # row() per id: cheaper than one rows() call for a handful of ids
        row = self.catalog.row
        queries = self.catalog.vectors.take([row(s.medoid) for s in medoid_rows], axis=0)
        if others:
            extra = np.stack([cast(np.ndarray, s.vector) for s in others])
            queries = np.concatenate([queries, extra])
        order = medoid_rows + others
        deepest = max(s.depth for s in order)
        found_rows, found_scores = self.index.search_rows(queries, deepest)
        # the Python views of the new lists, converted in one go (one call per array, not per
        # list: a cold request's conversions run with caches the index search just flushed)
        found_ids = self._ids[found_rows].tolist()
        found_floats = found_scores.tolist()
        store = []
        for i, s in enumerate(order):
            lst = NeighborList(found_rows[i, : s.depth], found_scores[i, : s.depth])
            ids = found_ids[i]
            floats = found_floats[i]
            if len(ids) > s.depth:
                del ids[s.depth :], floats[s.depth :]
            lst.memo = _Memo(ids, floats)
            s.lst = lst
            if s.cacheable:
                store.append(((s.medoid, s.depth, self._version), lst))
        if store:
            self.cache.put_many(store)

    # -- merging -------------------------------------------------------------------------------

    def _retrieve(self, sources: list[_Source], k: int, excluded: set[Any] | None
                  ) -> list[Candidate]:
        self._fetch(sources)
        fast = self._merge_simple(sources, excluded)
        if fast is not None:
            return fast
        return self._merge_in_turn(sources, excluded)

    def _merge_in_turn(self, sources: list[_Source], excluded: set[Any] | None
                       ) -> list[Candidate]:
        """The general merge: each source in turn (clusters in the order chosen, then the
        decay-average query) takes its best ``quota`` items that are neither excluded nor taken
        by an earlier source, its list fetched twice as deep while it is short and the index not
        read to the end. The result does not depend on how deep the lists were first fetched.
        """
        n = self._n
        taken: set[Any] = set()
        picks: list[list[int]] = []
        for s in sources:
            got: list[int] = []
            while True:
                ids = self._memo(s).ids
                for pos, item in enumerate(ids):
                    if item in taken or (excluded is not None and item in excluded):
                        continue
                    got.append(pos)
                    taken.add(item)
                    if len(got) == s.quota:
                        break
                if len(got) == s.quota or s.depth >= n:
                    break
                for pos in got:  # rescan the deeper list from its top (an approximate index
                    taken.discard(ids[pos])  # may order it differently)
                got = []
                s.depth = min(n, 2 * s.depth)
                s.lst = None
                self._fetch([s])
            picks.append(got)
        positions: list[int] = []
        offset = 0
        for s, got in zip(sources, picks, strict=True):
            positions += [offset + pos for pos in got]
            offset += len(cast(NeighborList, s.lst))
        chosen = np.array(positions, dtype=np.int64)
        scores = np.concatenate([cast(NeighborList, s.lst).scores for s in sources])
        chosen = chosen[np.argsort(-scores[chosen], kind="stable")]  # ties: source order
        return self._candidates(sources, chosen)

    def _merge_simple(self, sources: list[_Source], excluded: set[Any] | None
                      ) -> list[Candidate] | None:
        """The merge when no item is in two lists and every list fills its quota (the usual
        case): each source's first ``quota`` unexcluded items, by score. None otherwise.

        Same result as the general merge :meth:`_merge_in_turn` (the tests check both paths),
        with no array operation past the duplicate check: this is the request's hot path. The
        lists are each sorted by score, so the final sort merges presorted runs.
        """
        lists = [cast(NeighborList, s.lst) for s in sources]
        if len(lists) > 1:
            every = np.concatenate([lst.rows for lst in lists])
            every.sort()
            if (every[1:] == every[:-1]).any():
                return None
        merged: list[Candidate] = []
        for s, lst in zip(sources, lists, strict=True):
            memo = self._memo(s)
            dropped = memo.where(excluded) if excluded else []
            limit = s.quota
            for pos in dropped:  # a dropped item inside the window widens it
                if pos < limit:
                    limit += 1
            if limit > len(lst):
                return None  # short: the general merge fetches deeper
            window = self._built(s, memo, limit)[:limit]
            for pos in reversed(dropped):
                if pos < limit:
                    del window[pos]
            merged += window
        merged.sort(key=_score, reverse=True)  # stable: ties keep source order
        return merged

    def _candidates(self, sources: list[_Source], chosen: npt.NDArray[np.int64]
                    ) -> list[Candidate]:
        """The candidates at positions ``chosen`` of the concatenated lists."""
        built: list[Candidate] = []
        for s in sources:
            built += self._built(s, self._memo(s), len(cast(NeighborList, s.lst)))
        if chosen.shape[0] <= 1:
            return [built[j] for j in chosen.tolist()]
        return list(itemgetter(*chosen.tolist())(built))

    def _memo(self, s: _Source) -> _Memo:
        """The ids of a source's list, built once and kept with the list (so with the cache
        entry: a warm in-process hit converts nothing)."""
        lst = cast(NeighborList, s.lst)
        memo = lst.memo
        if memo is None:
            memo = lst.memo = _Memo(self._ids[lst.rows].tolist())
        return memo

    @staticmethod
    def _built(s: _Source, memo: _Memo, upto: int) -> list[Candidate]:
        """The memo's candidates, built at least ``upto`` deep."""
        have = memo.candidates
        if len(have) < upto:
            start = len(have)
            if memo.scores is None:
                memo.scores = cast(NeighborList, s.lst).scores.tolist()
            have += map(_make, repeat(Candidate), zip(
                memo.ids[start:upto], memo.scores[start:upto], repeat(s.medoid),
                repeat(s.kind)))
        return have

    def _popular(self, k: int, excluded: set[Any] | None) -> list[Candidate]:
        ids = self.popular_item_ids
        if excluded:
            ids = tuple(i for i in ids if i not in excluded)
        total = len(self.popular_item_ids)
        out = []
        for rank, item in enumerate(ids[:k]):
            out.append(Candidate(item, 1.0 - rank / max(total, 1), None, "popular"))
        return out


def _sample_clusters(clusters: tuple[InterestCluster, ...], e: int,
                     rng: np.random.Generator) -> tuple[InterestCluster, ...]:
    """:func:`~pinnersage.core.sampling.sample_medoids` for the request path.

    The same distribution (successive draws without replacement, each in proportion to the
    importance of the clusters not drawn yet; all clusters when there are ``e`` or fewer; clusters
    of zero importance only after every positive one, in profile order), drawn from ``e`` uniform
    numbers with a scan over the weights instead of ``Generator.choice``, whose argument checks
    cost more than the ANN lookups of a warm request. The tests check it against
    ``sample_medoids``.
    """
    if len(clusters) <= e:
        return clusters
    return tuple(clusters[i] for i in sample_indices([cl.importance for cl in clusters], e, rng))


def _quotas(k: int, chosen: Sequence[InterestCluster], rule: str) -> list[int]:
    """Split ``k`` between the chosen clusters (see the module docstring)."""
    e = len(chosen)
    weights = None if rule == "equal" else np.array([c.importance for c in chosen], np.float64)
    if weights is None or not (weights.sum() > 0):
        base, extra = divmod(k, e)
        return [base + (1 if i < extra else 0) for i in range(e)]
    raw = k * weights / weights.sum()
    quotas = np.floor(raw).astype(np.int64)
    left = k - int(quotas.sum())
    if left:
        frac = raw - quotas
        order = np.lexsort((np.arange(e), -frac))
        quotas[order[:left]] += 1
    return [int(q) for q in quotas]


def popular_items(actions: pd.DataFrame, n: int = 1000, *, item_col: str = "item_id"
                  ) -> npt.NDArray[Any]:
    """The ``n`` items with the most actions, most first (ties: smaller item id first).

    The usual fallback for :class:`Recommender` on empty profiles, for example over the last
    days of the action log.

    Parameters
    ----------
    actions : pandas.DataFrame
        An action log frame (``ActionLog.frame``), one row per action.
    n : int
        How many items to return.
    item_col : str
        The item id column.
    """
    n = check_k(n)
    if item_col not in actions.columns:
        raise ConfigError(f"actions frame has no column {item_col!r}")
    counts = actions.groupby(item_col, sort=True).size()
    order = np.argsort(-counts.to_numpy(), kind="stable")[:n]
    return counts.index.to_numpy()[order]
