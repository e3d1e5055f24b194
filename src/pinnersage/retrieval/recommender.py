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
of the source that took them; ties: source order, then list order), as a :class:`Recommendations`:
arrays, and a sequence of :class:`Candidate` records built on first use. The merge itself is
compiled (:mod:`pinnersage.retrieval.merge`).

An empty profile (no clusters: a new user, or every action a dropped singleton) falls back to
``popular_item_ids`` given to the recommender (see :func:`popular_items`), in their order, minus
the excluded items, with ``source = "popular"``; without them the answer is empty.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple, cast, overload

import numpy as np
import numpy.typing as npt

from pinnersage.core.profile import InterestCluster, InterestProfile, ItemId
from pinnersage.core.sampling import sample_indices, top_medoids
from pinnersage.errors import ConfigError, EmbeddingVersionMismatchError
from pinnersage.params import RetrievalParams
from pinnersage.retrieval.cache import LruCache, NeighborCache, NeighborList
from pinnersage.retrieval.index import AnnIndex, check_k, check_queries
from pinnersage.retrieval.merge import merge_in_turn

if TYPE_CHECKING:
    import pandas as pd

    from pinnersage.catalog import ItemCatalog

__all__ = ["Candidate", "Recommendations", "Recommender", "budget_split", "popular_items"]


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


class Recommendations(Sequence[Candidate]):
    """A request's candidates, best score first: a sequence of :class:`Candidate`, held as arrays.

    Iterate, index or compare it like a list of candidates (``list(recs)`` or
    :meth:`to_list` gives one); the :class:`Candidate` records are built on first use, so a
    caller that reads the arrays (``item_ids``, ``scores``, ``source_item_ids``, ``sources``)
    never pays for them. Slicing gives a shorter ``Recommendations``; :meth:`to_frame` a pandas
    frame. Immutable; equal to any sequence of the same candidates.
    """

    __slots__ = ("_list", "_meta", "_origin", "item_ids", "scores")

    def __init__(
        self,
        item_ids: npt.NDArray[Any],
        scores: npt.NDArray[np.floating[Any]],
        origin: npt.NDArray[np.int64],
        meta: Sequence[tuple[ItemId | None, str]],
    ) -> None:
        #: The candidates' item ids (int64 or str objects, as the catalog's).
        self.item_ids = item_ids
        #: Their scores (cosine similarity to the query of their source; see Candidate.score).
        self.scores = scores
        self._origin = origin
        self._meta = tuple(meta)
        self._list: list[Candidate] | None = None
        for a in (item_ids, scores, origin):
            a.flags.writeable = False

    def _source_field(self, field: int) -> list[Any]:
        """Field ``field`` of each candidate's source: 0 its medoid, 1 its kind."""
        meta = self._meta
        return [meta[o][field] for o in self._origin.tolist()]

    @property
    def source_item_ids(self) -> npt.NDArray[Any]:
        """The medoid each candidate came from (None for decay-average and popular ones)."""
        out = np.empty(len(self), dtype=object)
        out[:] = self._source_field(0)
        return out

    @property
    def sources(self) -> npt.NDArray[Any]:
        """Each candidate's source kind (``"medoid"``, ``"centroid"``, ...)."""
        out = np.empty(len(self), dtype=object)
        out[:] = self._source_field(1)
        return out

    def to_list(self) -> list[Candidate]:
        """The candidates as a new list of :class:`Candidate`."""
        if self._list is None:
            self._list = list(
                map(
                    _make,
                    repeat(Candidate),
                    zip(
                        self.item_ids.tolist(),
                        self.scores.tolist(),
                        self._source_field(0),
                        self._source_field(1),
                        strict=True,
                    ),
                )
            )
        return list(self._list)

    def to_frame(self) -> pd.DataFrame:
        """A pandas frame with columns ``item_id``, ``score``, ``source_item_id``, ``source``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "item_id": self.item_ids,
                "score": self.scores,
                "source_item_id": self.source_item_ids,
                "source": self.sources,
            }
        )

    def __len__(self) -> int:
        return int(self.item_ids.shape[0])

    @overload
    def __getitem__(self, i: int) -> Candidate: ...

    @overload
    def __getitem__(self, i: slice) -> Recommendations: ...

    def __getitem__(self, i: int | slice) -> Candidate | Recommendations:
        if isinstance(i, slice):
            return Recommendations(self.item_ids[i], self.scores[i], self._origin[i], self._meta)
        if self._list is not None:
            return self._list[i]
        j = range(len(self))[i]  # IndexError and negative indices as a list's
        medoid, kind = self._meta[int(self._origin[j])]
        return Candidate(
            self.item_ids[j].item()
            if isinstance(self.item_ids[j], np.generic)
            else self.item_ids[j],
            float(self.scores[j]),
            medoid,
            kind,
        )

    def __iter__(self) -> Iterator[Candidate]:
        if self._list is None:
            self.to_list()
        return iter(cast(list[Candidate], self._list))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Recommendations):
            return self.to_list() == other.to_list()
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self.to_list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(c) for c in self[:3])
        more = f", ... ({len(self)} in all)" if len(self) > 3 else ""
        return f"Recommendations([{head}{more}])"


class _Source:
    """One query of a request (internal)."""

    __slots__ = ("cacheable", "depth", "kind", "lst", "medoid", "quota", "vector")

    def __init__(
        self,
        kind: str,
        medoid: ItemId | None,
        quota: int,
        depth: int,
        vector: npt.NDArray[np.float32] | None = None,
    ) -> None:
        self.kind = kind
        self.medoid = medoid
        self.quota = quota
        self.depth = depth
        self.vector = vector
        self.cacheable = kind == "medoid"
        self.lst: NeighborList | None = None


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

    def __init__(
        self,
        index: AnnIndex,
        catalog: ItemCatalog,
        *,
        params: RetrievalParams | None = None,
        cache: NeighborCache | None = None,
        popular_item_ids: Sequence[ItemId] | npt.NDArray[Any] | None = None,
    ) -> None:
        if index.embedding_version != catalog.embedding_version:
            raise EmbeddingVersionMismatchError(
                f"the index was built from embedding_version {index.embedding_version} but the "
                f"catalog has {catalog.embedding_version}; rebuild the index for these embeddings"
            )
        self.index = index
        self.catalog = catalog
        self.params = params if params is not None else RetrievalParams()
        self.cache: NeighborCache = (
            cache if cache is not None else LruCache(index.params.cache_size)
        )
        self.popular_item_ids: tuple[ItemId, ...] = (
            () if popular_item_ids is None else tuple(np.asarray(popular_item_ids).tolist())
        )
        popular = np.empty(len(self.popular_item_ids), dtype=object)
        popular[:] = self.popular_item_ids
        if all(isinstance(i, int) for i in self.popular_item_ids):
            popular = popular.astype(np.int64)
        self._popular_ids = popular
        self._ids = catalog.item_ids
        #: The merge's keys are item ids for an integer catalog, catalog rows otherwise.
        self._int_keys = catalog.int_ids
        self._id_keys = self._ids if self._int_keys else np.zeros(0, np.int64)
        self._n = len(index)
        self._version = index.index_version

    def stats(self) -> dict[str, Any]:
        """Cache hit and miss counts."""
        return self.cache.stats()

    # -- the request ---------------------------------------------------------------------------

    def recommend(
        self,
        profile: InterestProfile,
        k: int | None = None,
        *,
        rng: np.random.Generator | None,
        exclude_item_ids: Collection[ItemId] | None = None,
    ) -> Recommendations:
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
        Recommendations
            A sequence of :class:`Candidate`, best first, also readable as arrays: ``k``
            candidates when the index holds that many unseen items (fewer otherwise), each with
            its score and the medoid it came from. See the module docstring for the budget and
            merge rules.

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
        exclude = (
            exclude_item_ids
            if p.exclude_seen and exclude_item_ids is not None and len(exclude_item_ids)
            else None
        )
        if not profile.clusters:
            return self._popular(k, exclude)
        chosen = self._choose(profile, rng)
        sources = self._sources(profile, chosen, k)
        excluded = _NOTHING if exclude is None else self._excluded_keys(exclude)
        return self._retrieve(sources, excluded)

    def _choose(
        self, profile: InterestProfile, rng: np.random.Generator | None
    ) -> tuple[InterestCluster, ...]:
        e = self.params.clusters_per_request
        if self.params.selection == "top":
            return top_medoids(profile, e)
        if rng is None:
            raise ConfigError(
                "retrieval.selection = 'sample' draws clusters at random: pass "
                "rng=numpy.random.default_rng(seed)"
            )
        return _sample_clusters(profile.clusters, e, rng)

    def _sources(
        self, profile: InterestProfile, chosen: tuple[InterestCluster, ...], k: int
    ) -> list[_Source]:
        p = self.params
        sources: list[_Source] = []
        k_c, k_avg = budget_split(k, p)
        if k_avg and profile.decay_average is None:
            raise ConfigError(
                f"retrieval.decay_average_share = {p.decay_average_share} needs profiles built "
                "with profile.store_decay_average = true"
            )
        quotas = _quotas(k_c, chosen, p.quota)
        depths = source_depths(quotas, p.quota, k_c)
        if p.query == "centroid":
            missing = [c.medoid_item_id for c in chosen if c.centroid is None]
            if missing:
                raise ConfigError(
                    "retrieval.query = 'centroid' needs profiles built with "
                    f"profile.store_centroids = true (cluster of medoid {missing[0]!r} has none)"
                )
            vectors = check_queries(
                np.stack([c.centroid for c in chosen]),  # type: ignore[misc]
                self.index_dim,
            )
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
        queries = self.catalog.vectors.take(self._rows([s.medoid for s in medoid_rows]), axis=0)
        if others:
            extra = np.stack([cast(np.ndarray, s.vector) for s in others])
            queries = np.concatenate([queries, extra])
        order = medoid_rows + others
        deepest = max(s.depth for s in order)
        found_rows, found_scores = self.index.search_rows(queries, deepest)
        store = []
        for i, s in enumerate(order):
            lst = NeighborList(found_rows[i, : s.depth], found_scores[i, : s.depth])
            s.lst = lst
            if s.cacheable:
                store.append(((s.medoid, s.depth, self._version), lst))
        if store:
            self.cache.put_many(store)

    def _rows(self, medoids: list[ItemId | None]) -> npt.NDArray[np.int64] | list[int]:
        """Catalog rows of medoid ids; UnknownItemError for an id not in the catalog."""
        if self._int_keys:
            keys = np.array(medoids)
            if keys.dtype.kind in "iu":
                rows = self.catalog.rows_of_ints(keys.astype(np.int64, copy=False))
                if -1 not in rows.tolist():
                    return rows
        return [self.catalog.row(m) for m in medoids]  # its error names the first unknown id

    # -- merging -----------------------------------------------------------------------------

    def _excluded_keys(self, exclude: Collection[Any]) -> npt.NDArray[np.int64]:
        """The merge's keys of the excluded items; items not in the catalog are dropped."""
        if self._int_keys:
            arr = exclude if isinstance(exclude, np.ndarray) else np.array(list(exclude))
            if arr.dtype.kind in "iu":
                return arr.astype(np.int64, copy=False).reshape(-1)
        rows = self.catalog.rows(
            exclude if isinstance(exclude, np.ndarray) else list(exclude), missing="mask"
        )
        rows = rows[rows >= 0]
        return self._ids[rows] if self._int_keys else rows

    def _retrieve(self, sources: list[_Source], excluded: npt.NDArray[np.int64]) -> Recommendations:
        """Fetch the sources' lists and merge them (:func:`merge_in_turn`): each source in turn
        takes its best ``quota`` items that are neither excluded nor taken by an earlier source;
        a list that runs short is fetched twice as deep (until the index is read to its end) and
        the merge run again, so the result does not depend on how deep lists were first
        fetched."""
        self._fetch(sources)
        n = self._n
        while True:
            lists = [cast(NeighborList, s.lst) for s in sources]
            plan = np.array([[s.quota for s in sources], [s.depth >= n for s in sources]], np.int64)
            keys, scores, origin, short = merge_in_turn(
                [lst.rows for lst in lists],
                [lst.scores for lst in lists],
                self._id_keys,
                plan,
                excluded,
            )
            if short < 0:
                break
            s = sources[short]
            s.depth = min(n, 2 * s.depth)
            s.lst = None
            self._fetch([s])
        return Recommendations(
            keys if self._int_keys else self._ids[keys],
            scores,
            origin,
            [(s.medoid, s.kind) for s in sources],
        )

    def _popular(self, k: int, exclude: Collection[Any] | None) -> Recommendations:
        ids = self._popular_ids
        if exclude is not None and len(ids):
            excluded = (
                exclude
                if isinstance(exclude, set | frozenset)
                else set(
                    np.asarray(exclude).tolist() if isinstance(exclude, np.ndarray) else exclude
                )
            )
            keep = [i not in excluded for i in self.popular_item_ids]
            ids = ids[np.array(keep, dtype=bool)]
        ids = ids[:k]
        total = max(len(self.popular_item_ids), 1)
        scores = 1.0 - np.arange(len(ids), dtype=np.float64) / total
        return Recommendations(ids, scores, np.zeros(len(ids), np.int64), [(None, "popular")])


#: No excluded item.
_NOTHING = np.zeros(0, np.int64)


def _sample_clusters(
    clusters: tuple[InterestCluster, ...], e: int, rng: np.random.Generator
) -> tuple[InterestCluster, ...]:
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


def popular_items(
    actions: pd.DataFrame, n: int = 1000, *, item_col: str = "item_id"
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
