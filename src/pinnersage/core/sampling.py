"""Medoid sampling (paper section 3.5): e clusters per request, in proportion to importance.

Without replacement, so a request never queries one interest twice; all clusters when the
profile has e or fewer. ``numpy.random.Generator.choice`` does the draw, so a seed reproduces it.
"""

from __future__ import annotations

import numpy as np

from pinnersage.core.profile import InterestCluster, InterestProfile
from pinnersage.errors import ConfigError

__all__ = ["sample_medoids", "top_medoids"]


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
