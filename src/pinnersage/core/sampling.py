"""Medoid sampling (paper section 3.5): e clusters per request, in proportion to importance.

Without replacement, so a request never queries one interest twice; all clusters when the
profile has e or fewer. ``numpy.random.Generator.choice`` does the draw, so a seed reproduces it.
"""

from __future__ import annotations

import numpy as np

from pinnersage.core.profile import InterestCluster, InterestProfile
from pinnersage.errors import ConfigError

__all__ = ["sample_indices", "sample_medoids", "top_medoids"]


def sample_medoids(
    profile: InterestProfile, k: int = 3, *, rng: np.random.Generator
) -> tuple[InterestCluster, ...]:
    """Draw ``k`` distinct clusters with probability proportional to importance.

    Returns the clusters in draw order. When the profile has ``k`` or fewer clusters, all of
    them are returned, most important first. Clusters of zero importance are drawn only after
    every cluster of positive importance.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    clusters = profile.clusters
    if len(clusters) <= k:
        return clusters
    weights = profile.importances
    positive = int(np.count_nonzero(weights > 0))
    if positive == 0:
        return clusters[:k]
    draws = min(k, positive)
    chosen = rng.choice(len(clusters), size=draws, replace=False, p=weights / weights.sum())
    picked = [clusters[int(i)] for i in chosen]
    if draws < k:  # fill with zero-importance clusters, in profile order
        picked.extend([c for c, w in zip(clusters, weights, strict=True) if w <= 0][: k - draws])
    return tuple(picked)


def top_medoids(profile: InterestProfile, k: int = 3) -> tuple[InterestCluster, ...]:
    """The ``k`` most important clusters (deterministic selection)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    return profile.clusters[:k]


def sample_indices(weights: list[float], k: int, rng: np.random.Generator) -> list[int]:
    """``sample_medoids``'s draw for the request path: indices of ``k`` clusters of ``weights``.

    The same distribution (successive draws without replacement, each in proportion to the
    weight of the clusters not drawn yet; all of them when there are ``k`` or fewer; weights of
    zero only after every positive one, in order), drawn from ``k`` uniform numbers and a scan over
    the weights instead of ``Generator.choice``, whose argument checks cost more than the ANN
    lookups of a warm request. A seed reproduces it (its draws differ from ``sample_medoids``').
    The recommender and the offline evaluation both draw with it.
    """
    c = len(weights)
    if c <= k:
        return list(range(c))
    eligible = [w > 0 for w in weights]
    positive = sum(eligible)
    if positive == 0:
        return list(range(k))
    draws = min(k, positive)
    total = sum(w for w, ok in zip(weights, eligible, strict=True) if ok)
    picked: list[int] = []
    for u in rng.random(draws).tolist():
        target = u * total
        acc = 0.0
        chosen = -1
        for i in range(c):
            if eligible[i]:
                chosen = i
                acc += weights[i]
                if acc > target:
                    break
        eligible[chosen] = False
        total -= weights[chosen]
        picked.append(chosen)
    if draws < k:
        picked.extend([i for i, w in enumerate(weights) if w <= 0][: k - draws])
    return picked
