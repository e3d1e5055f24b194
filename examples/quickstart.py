"""Quickstart: one user's interests from synthetic actions, and candidates from an index.

Run: python examples/quickstart.py  (tests/test_docs.py runs it too)
"""

from __future__ import annotations

import numpy as np

from pinnersage import ProfileParams, RetrievalParams, build_profile, sample_medoids
from pinnersage.catalog import ItemCatalog
from pinnersage.retrieval import ExactIndex
from pinnersage.retrieval.recommender import Recommender

rng = np.random.default_rng(0)
DAY = 86_400

# A catalog of 300 items around three topics (painting, shoes, sci-fi), fixed embeddings.
topics = np.eye(32)[:3]
vectors = np.repeat(topics, 100, axis=0) + 0.08 * rng.normal(size=(300, 32))
catalog = ItemCatalog.from_arrays([f"item-{i}" for i in range(300)], vectors)

# A user who engaged with all three topics over 60 days (most recently with sci-fi).
rows = np.concatenate(
    [rng.integers(0, 100, 8), rng.integers(100, 200, 5), rng.integers(200, 300, 12)]
)
times = np.sort(rng.uniform(0, 60 * DAY, rows.size))
now = 60 * DAY
profile = build_profile(
    catalog.vectors[rows],
    catalog.item_ids[rows],
    times,
    now_s=now,
    params=ProfileParams(distance_threshold=1.0),
    user_id="alice",
)
for cluster in profile.clusters:
    print(f"{cluster.medoid_item_id:>9}  importance {cluster.importance:6.3f}  size {cluster.size}")

# The paper's retrieval: 3 medoids sampled in proportion to importance, their nearest items.
picked = sample_medoids(profile, 3, rng=rng)
recommender = Recommender(ExactIndex.build(catalog), catalog, params=RetrievalParams.paper())
candidates = recommender.recommend(
    profile, 12, rng=rng, exclude_item_ids=set(catalog.item_ids[rows])
)
print(f"sampled medoids: {[c.medoid_item_id for c in picked]}")
print(
    f"{len(candidates)} candidates, from interests {sorted({c.source_item_id for c in candidates})}"
)
