"""Eq. 2: the medoid of a cluster, the member with the least sum of squared distances.

``medoid(C) = argmin_{m in C} sum_{j in C} ||x_m - x_j||²``. Because
``sum_j ||x_m - x_j||² = |C| ||x_m - c||² + sum_j ||x_j - c||²`` (c the centroid), the medoid is
the member nearest to the centroid: O(|C| d) instead of O(|C|² d). Ties go to the earliest row
(the earliest action, when rows are in time order).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pinnersage.core._validate import as_vectors

__all__ = ["medoid_index", "medoid_index_naive"]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _squared_distance(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - compiled
    """``||a - b||²``, summed in SIMD lanes (reassociated: a strict left-to-right sum is a chain
    of dependent additions, 3x slower at d = 256). The same row always gets the same bits, so
    identical members tie exactly and the earliest wins."""
    v = 0.0
    for k in range(a.shape[0]):
        diff = a[k] - b[k]
        v += diff * diff
    return v


@numba.njit(cache=True, nogil=True)
def _summarise(
    x: np.ndarray, labels: np.ndarray, n_clusters: int, t: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Per cluster: medoid row (ties to the earliest row), size, importance, last time, centroid."""
    return _summarise_into(x, labels, n_clusters, t, w, np.empty(0))


@numba.njit(cache=True, nogil=True)
def _summarise_into(
    x: np.ndarray,
    labels: np.ndarray,
    n_clusters: int,
    t: np.ndarray,
    w: np.ndarray,
    weighted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """:func:`_summarise`, adding ``w @ x`` into ``weighted`` on the same pass over the rows
    when it is not empty (row after row: the order of
    :func:`~pinnersage.core.baselines.weighted_direction`, so the same bits)."""
    n, d = x.shape
    centroid = np.zeros((n_clusters, d))
    size = np.zeros(n_clusters, np.int64)
    imp = np.zeros(n_clusters)
    last = np.full(n_clusters, -np.inf)
    weigh = weighted.shape[0] > 0
    for i in range(n):
        if weigh:
            wi = w[i]
            for k in range(d):
                weighted[k] += wi * x[i, k]
        c = labels[i]
        if c >= 0:
            size[c] += 1
            imp[c] += w[i]
            if t[i] > last[c]:
                last[c] = t[i]
            for k in range(d):
                centroid[c, k] += x[i, k]
    for c in range(n_clusters):
        for k in range(d):
            centroid[c, k] /= size[c]
    best = np.full(n_clusters, np.inf)
    row = np.full(n_clusters, -1, np.int64)
    for i in range(n):
        c = labels[i]
        if c >= 0:
            v = _squared_distance(x[i], centroid[c])
            if v < best[c]:
                best[c] = v
                row[c] = i
    return row, size, imp, last, centroid


def medoid_index(vectors: npt.ArrayLike) -> int:
    """Row of the medoid of the rows of ``vectors`` (one cluster), Eq. 2; ties to the lowest row."""
    x = as_vectors(vectors)
    if x.shape[0] == 0:
        raise ValueError("the medoid of an empty cluster is undefined")
    n = x.shape[0]
    return int(_summarise(x, np.zeros(n, np.int64), 1, np.zeros(n), np.ones(n))[0][0])


def medoid_index_naive(vectors: npt.ArrayLike) -> int:
    """Eq. 2 computed literally (all pairwise squared distances): the slow twin for tests."""
    x = as_vectors(vectors)
    if x.shape[0] == 0:
        raise ValueError("the medoid of an empty cluster is undefined")
    diff = x[:, None, :] - x[None, :, :]
    cost = (diff * diff).sum(axis=(1, 2))
    return int(np.argmin(cost))
