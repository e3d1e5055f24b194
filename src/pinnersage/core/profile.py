"""Algorithm 2: a user's profile, the list of (medoid, importance) of their Ward clusters.

``build_profile`` sorts the actions by time, clusters them (Algorithm 1, or an ablation), and
summarises each cluster by its medoid item id (Eq. 2), its importance (Eq. 3), its size and the
time of its latest action. Repeated actions on one item each count, so frequency reaches the
importance. The result is immutable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from pinnersage.core._validate import as_times, as_vectors
from pinnersage.core.baselines import _normalise, weighted_direction
from pinnersage.core.importance import SECONDS_PER_DAY, _decay_weights, action_weights
from pinnersage.core.medoid import _summarise, _summarise_into
from pinnersage.core.ward import (
    _MAX_ABS,
    _cut_rows,
    _distinct_in_order,
    _gram,
    _rows,
    _ward_cut,
    _ward_tree,
)
from pinnersage.errors import DimensionMismatchError, PinnerSageWarning
from pinnersage.params import ProfileParams

__all__ = ["InterestCluster", "InterestProfile", "ItemId", "build_profile", "cluster_labels"]

ItemId = int | str

_DEFAULT_PARAMS = ProfileParams()
_FINITE = float(np.finfo(np.float64).max)  # the largest finite float64
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


@dataclass(frozen=True, slots=True)
class InterestCluster:
    """One interest of a user: a cluster of their actions."""

    #: The medoid: the member item nearest to all others (Eq. 2), stored as an id.
    medoid_item_id: ItemId
    #: Importance at the profile's ``as_of_s`` (Eq. 3).
    importance: float
    #: Number of actions in the cluster (repeated actions on one item each count).
    size: int
    #: Time of the cluster's latest action (unix seconds).
    last_action_s: float
    #: Mean of the members' vectors, when the profile was built with ``store_centroids``.
    centroid: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InterestProfile:
    """A user's interests, most important first."""

    user_id: Any
    #: The time importances were evaluated at (``now_s`` of :func:`build_profile`).
    as_of_s: float
    clusters: tuple[InterestCluster, ...] = ()
    #: Number of actions the profile was built from (after the cap).
    n_actions: int = 0
    #: Decay-weighted average vector, L2-normalised, when built with ``store_decay_average``.
    decay_average: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.clusters)

    @property
    def medoid_item_ids(self) -> tuple[ItemId, ...]:
        return tuple(c.medoid_item_id for c in self.clusters)

    @property
    def importances(self) -> npt.NDArray[np.float64]:
        return np.array([c.importance for c in self.clusters], dtype=np.float64)

    def at(self, now_s: float, decay_per_day: float) -> InterestProfile:
        """The same clusters with importances re-evaluated at ``now_s``.

        Exact for a cluster's actions only through their sum, so this rescales by
        ``exp(-λ (now_s - as_of_s))``, which is what Eq. 3 gives when every action is older
        than ``as_of_s``.
        """
        factor = float(np.exp(-decay_per_day * (now_s - self.as_of_s) / SECONDS_PER_DAY))
        clusters = tuple(
            InterestCluster(
                c.medoid_item_id, c.importance * factor, c.size, c.last_action_s, c.centroid
            )
            for c in self.clusters
        )
        return InterestProfile(
            self.user_id, float(now_s), clusters, self.n_actions, self.decay_average
        )


_new = object.__new__
_slots = vars(InterestCluster)  # the slots' descriptors
_set_medoid = _slots["medoid_item_id"].__set__
_set_importance = _slots["importance"].__set__
_set_size = _slots["size"].__set__
_set_last = _slots["last_action_s"].__set__
_set_centroid = _slots["centroid"].__set__


def _cluster(
    medoid_item_id: ItemId,
    importance: float,
    size: int,
    last_action_s: float,
    centroid: npt.NDArray[np.float32] | None = None,
) -> InterestCluster:
    """``InterestCluster(...)`` without the frozen dataclass's ``__init__`` (it sets each field
    through ``object.__setattr__``; the slots' own setters take half the time): profiles are
    built by the million, each with up to hundreds of clusters."""
    cluster = _new(InterestCluster)
    _set_medoid(cluster, medoid_item_id)
    _set_importance(cluster, importance)
    _set_size(cluster, size)
    _set_last(cluster, last_action_s)
    _set_centroid(cluster, centroid)
    return cluster


_profile_slots = vars(InterestProfile)
_set_user = _profile_slots["user_id"].__set__
_set_as_of = _profile_slots["as_of_s"].__set__
_set_clusters = _profile_slots["clusters"].__set__
_set_n_actions = _profile_slots["n_actions"].__set__
_set_decay_average = _profile_slots["decay_average"].__set__


def _profile(
    user_id: Any,
    as_of_s: float,
    clusters: tuple[InterestCluster, ...],
    n_actions: int,
    decay_average: npt.NDArray[np.float32] | None,
) -> InterestProfile:
    """``InterestProfile(...)`` through the slots' setters (see :func:`_cluster`)."""
    profile = _new(InterestProfile)
    _set_user(profile, user_id)
    _set_as_of(profile, as_of_s)
    _set_clusters(profile, clusters)
    _set_n_actions(profile, n_actions)
    _set_decay_average(profile, decay_average)
    return profile


def _canonical_labels(
    raw: npt.NDArray[np.int64], keep_singletons: bool
) -> tuple[npt.NDArray[np.int64], int]:
    """Relabel arbitrary cluster labels 0..c-1 by smallest row; singletons -1 unless kept."""
    _, first, inverse, counts = np.unique(
        raw, return_index=True, return_inverse=True, return_counts=True
    )
    rank = np.empty(first.shape[0], np.int64)
    keep = counts > 1 if not keep_singletons else np.ones(counts.shape[0], bool)
    order = np.argsort(first, kind="stable")
    new = np.full(first.shape[0], -1, np.int64)
    kept = order[keep[order]]
    new[kept] = np.arange(kept.shape[0])
    rank[:] = new
    return rank[inverse.reshape(-1)], int(kept.shape[0])


def cluster_labels(
    x: npt.NDArray[np.float64], params: ProfileParams, rng: np.random.Generator | None = None
) -> tuple[npt.NDArray[np.int64], int]:
    """Flat cluster labels of the rows of ``x`` under ``params.method`` (-1: dropped)."""
    n = x.shape[0]
    if n <= 1:
        labels = np.zeros(n, np.int64) if params.keep_singletons else np.full(n, -1, np.int64)
        return labels, int(n if params.keep_singletons else 0)
    if params.method == "ward":
        return _ward_cut(x, np.ones(n), float(params.distance_threshold), params.keep_singletons)
    if params.method == "complete":
        from scipy.cluster.hierarchy import fcluster, linkage

        z = linkage(x, method="complete", metric="sqeuclidean")
        raw = fcluster(z, t=params.distance_threshold, criterion="distance").astype(np.int64)
        return _canonical_labels(raw, params.keep_singletons)
    from scipy.cluster.vq import kmeans2

    k = min(params.kmeans_clusters, n)
    generator = rng if rng is not None else np.random.default_rng(0)
    _, raw = kmeans2(x, k, minit="++", seed=generator)
    return _canonical_labels(raw.astype(np.int64), params.keep_singletons)


def ward_labels_of_items(
    x: npt.NDArray[np.float64], rows: npt.NDArray[np.int64], params: ProfileParams
) -> tuple[npt.NDArray[np.int64], int]:
    """``cluster_labels(x, params)`` for Ward, when the actions' vectors ``x`` are the item
    vectors of catalog ``rows`` (the batch job): each distinct item is clustered once, with the
    number of its actions as its size, so a user's repeated actions cost nothing in the n² work.
    """
    alpha = float(params.distance_threshold)
    codes, firsts, counts = _distinct_in_order(rows)
    if firsts.shape[0] == rows.shape[0]:
        return _ward_cut(x, np.ones(x.shape[0]), alpha, params.keep_singletons)
    labels, c = _ward_cut(x[firsts], counts.astype(np.float64), alpha, params.keep_singletons)
    return labels[codes], c


def build_profile(
    vectors: npt.ArrayLike,
    item_ids: Sequence[ItemId] | npt.NDArray[Any],
    timestamps_s: npt.ArrayLike,
    *,
    now_s: float,
    params: ProfileParams | None = None,
    user_id: Any = None,
    rng: np.random.Generator | None = None,
) -> InterestProfile:
    """Algorithm 2: the profile of one user from their actions.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        The embedding of the item of each action (finite; L2-normalised for the paper's units).
    item_ids : sequence of length n
        The item id of each action (int or str). Repeats each count.
    timestamps_s : array-like of shape (n,)
        Action times, unix seconds. Need not be sorted; ties keep the input order.
    now_s : float
        The time importances are evaluated at (never read from the clock).
    params : ProfileParams, optional
        α, λ, singleton rule, cap, method. Defaults to ``ProfileParams()``.
    user_id : any, optional
        Carried into the profile.
    rng : numpy.random.Generator, optional
        Only the k-means ablation is random; it defaults to a fixed seed.

    Returns
    -------
    InterestProfile
        Clusters ordered by importance (highest first; ties: earliest cluster first). An empty
        history gives an empty profile, not an error.
    """
    p = params if params is not None else _DEFAULT_PARAMS
    try:
        given = np.asarray(vectors)
        dt = given.dtype  # identity first: comparing dtypes costs more than the rest here
        if dt is not _F64 and dt is not _F32 and dt != _F64 and dt != _F32:
            given = np.asarray(given, dtype=_F64)
    except (TypeError, ValueError):  # ragged rows, strings
        as_vectors(vectors)  # raises the typed error
        raise
    if given.ndim != 2 or (given.shape[0] and not given.shape[1]):
        as_vectors(given)  # raises the typed error
    n = given.shape[0]
    try:
        t: npt.NDArray[np.float64] = np.asarray(timestamps_s, dtype=_F64)
    except (TypeError, ValueError):
        as_times(timestamps_s, n)  # raises the typed error
        raise
    if t.ndim != 1 or t.shape[0] != n:
        t = as_times(timestamps_s, n)  # raises the typed error
    ids = item_ids if isinstance(item_ids, np.ndarray) else np.asarray(item_ids, dtype=object)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise DimensionMismatchError(f"item_ids must hold one id per row ({n}), got {ids.shape[0]}")
    # float64 rows in this thread's reusable buffer (Ward's path keeps no reference to them),
    # converted and checked in one compiled pass
    ward = p.method == "ward"
    x = _rows(n, given.shape[1]) if ward else np.empty(given.shape)
    x_ok, t_ok, in_order = _load(given, x, t, _MAX_ABS if ward else _FINITE)
    if not (x_ok and t_ok):
        as_vectors(given, max_abs=_MAX_ABS if ward else None)
        as_times(t, n)  # one of them raises, naming the row
    now = float(now_s)
    if n == 0:
        return InterestProfile(user_id, now)
    if not in_order:
        order = np.argsort(t, kind="stable")
        x, t, ids = x[order], t[order], ids[order]
    if n > p.max_actions_per_user:
        warnings.warn(
            f"user {user_id!r} has {n} actions; only the {p.max_actions_per_user} most recent "
            "are clustered (raise profile.max_actions_per_user to keep more; Ward's memory is "
            "O(n²))",
            PinnerSageWarning,
            stacklevel=2,
        )
        cut = n - p.max_actions_per_user
        x, t, ids = x[cut:], t[cut:], ids[cut:]
        n = x.shape[0]
    decay_average = None
    if ward:
        c, counts, times, vecs = _ward_profile(
            x,
            _gram(x),
            t,
            now,
            float(p.decay_per_day),
            float(p.distance_threshold),
            bool(p.keep_singletons),
            bool(p.store_centroids),
            bool(p.store_decay_average),
        )
        if p.store_decay_average:
            decay_average = vecs[-1].astype(np.float32)
        if c == 0:
            return _profile(user_id, now, (), n, decay_average)
        # three conversions to Python lists (each array's boxing and tolist cost about as
        # much as building a cluster)
        medoids = ids.take(counts[0]).tolist()
        size_list = counts[1].tolist()
        imp_list, last_list = times.tolist()
        centroids = vecs[:c]
    else:
        labels, c = cluster_labels(x, p, rng)
        w = action_weights(t, now, p.decay_per_day)
        rows, sizes, imps, lasts, centroids = _summarise(x, labels, c, t, w)
        rank = np.argsort(-imps[:c], kind="stable")
        rows, sizes, imps, lasts = rows[rank], sizes[rank], imps[rank], lasts[rank]
        centroids = centroids[rank]
        if p.store_decay_average:
            decay_average = weighted_direction(w, x).astype(np.float32)
        if c == 0:
            return _profile(user_id, now, (), n, decay_average)
        medoids = ids.take(rows).tolist()
        imp_list = imps.tolist()
        size_list = sizes.tolist()
        last_list = lasts.tolist()
    if p.store_centroids:
        cents = centroids.astype(np.float32)
        clusters = tuple(map(_cluster, medoids, imp_list, size_list, last_list, cents))
    else:
        clusters = tuple(map(_cluster, medoids, imp_list, size_list, last_list))
    return _profile(user_id, now, clusters, n, decay_average)


@numba.njit(cache=True, nogil=True)
def _load(
    x: np.ndarray, out: np.ndarray, t: np.ndarray, max_abs: float
) -> tuple[bool, bool, bool]:  # pragma: no cover - compiled
    """Copy the vectors ``x`` (float32 or float64) into ``out`` (float64) in one pass, checking
    them on the way: are they finite with entries within ``max_abs`` (a finite bound: one
    comparison, ``|v| <= max_abs``, is False for NaN and inf too), the times finite, and the
    times in order?"""
    good = 0
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):  # branch-free, so it vectorises
            v = np.float64(x[i, k])
            out[i, k] = v
            good += int(abs(v) <= max_abs)
    x_ok = good == x.shape[0] * x.shape[1]
    t_ok = True
    in_order = True
    for i in range(t.shape[0]):
        if not abs(t[i]) < np.inf:
            t_ok = False
        if i and t[i] < t[i - 1]:
            in_order = False
    return x_ok, t_ok, in_order


@numba.njit(cache=True, nogil=True)
def _ward_profile(
    x: np.ndarray,
    g: np.ndarray,
    t: np.ndarray,
    now_s: float,
    decay_per_day: float,
    alpha: float,
    keep_singletons: bool,
    centroids: bool,
    decay_average: bool,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Algorithm 2 with Ward, compiled end to end: distances, chain, cut, medoids, importance
    and the decay-weighted average (one call: a user's profile pays the interpreter once).

    ``x`` rows are in time order and checked (finite, entries within ``_MAX_ABS``),
    ``g = x @ x.T`` (numpy's, exactly symmetric; destroyed). Returns the number of clusters c
    and, per cluster, most important first (ties: label order): the medoid row and size (an
    int64 (2, c) array), the importance and latest time (a float64 (2, c) array); then the
    centroids (if ``centroids``) followed by the decay-weighted average (if ``decay_average``,
    with the arithmetic of :func:`~pinnersage.core.baselines.weighted_direction`) as the rows
    of one float64 array. Four results, not seven: each array costs the interpreter a boxing.
    """
    w = _decay_weights(t, now_s, decay_per_day)
    left, right, height, sizes, group = _ward_tree(x, g, np.ones(x.shape[0]), alpha)
    labels, c = _cut_rows(left, right, height, sizes, group, alpha, keep_singletons)
    avg = np.zeros(x.shape[1] if decay_average else 0)
    rows, size, imp, last, centroid = _summarise_into(x, labels, c, t, w, avg)
    rank = np.argsort(-imp, kind="mergesort")
    counts = np.empty((2, c), np.int64)
    times = np.empty((2, c))
    for i in range(c):
        counts[0, i] = rows[rank[i]]
        counts[1, i] = size[rank[i]]
        times[0, i] = imp[rank[i]]
        times[1, i] = last[rank[i]]
    vecs = np.empty(((c if centroids else 0) + (1 if decay_average else 0), x.shape[1]))
    if centroids:
        for i in range(c):
            vecs[i] = centroid[rank[i]]
    if decay_average:  # w @ x, summed on the medoids' pass; the arithmetic of _direction
        _normalise(avg)
        vecs[-1] = avg
    return c, counts, times, vecs
