"""The evaluation's vectorised retrieval against its slow twin, the product's Recommender."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.core.profile import build_profile
from pinnersage.core.sampling import sample_medoids
from pinnersage.evaluation.models import ModelSpec
from pinnersage.evaluation.protocol import EvalCase
from pinnersage.evaluation.runner import (
    _CaseData,
    _plan,
    _profile_key,
    _retrieve,
    _Space,
    case_profiles,
    select_clusters,
)
from pinnersage.params import ProfileParams, RetrievalParams
from pinnersage.retrieval import ExactIndex, Recommender


def _world(seed: int = 0, n_items: int = 300, d: int = 16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, d))
    v = centers[rng.integers(0, 6, n_items)] + 0.5 * rng.normal(size=(n_items, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = np.arange(1000, 1000 + n_items)
    return ItemCatalog.from_arrays(ids, v.astype(np.float32)), rng


STRATEGIES = [
    RetrievalParams.paper(),
    RetrievalParams(selection="top", clusters_per_request=5, quota="importance"),
    RetrievalParams(
        selection="sample", clusters_per_request=10, quota="importance", decay_average_share=0.5
    ),
    RetrievalParams(
        selection="top", clusters_per_request=3, quota="equal", decay_average_share=0.25
    ),
    RetrievalParams(selection="sample", clusters_per_request=2, query="centroid"),
    RetrievalParams(),  # the shipped default
    RetrievalParams(max_cluster_candidates=9),  # the cap binds at every budget but the first
    RetrievalParams(
        selection="sample",
        clusters_per_request=4,
        quota="equal",
        decay_average_share=0.3,
        max_cluster_candidates=12,
        query="centroid",
    ),
]


@pytest.mark.parametrize(
    "strategy",
    STRATEGIES,
    ids=lambda r: (
        f"{r.selection}-{r.quota}-"
        f"{r.clusters_per_request}-{r.decay_average_share}-"
        f"{r.max_cluster_candidates}-{r.query}"
    ),
)
def test_fast_retrieval_equals_recommender(strategy: RetrievalParams) -> None:
    catalog, rng = _world()
    prof_params = ProfileParams(
        distance_threshold=0.8, keep_singletons=True, store_decay_average=True, store_centroids=True
    )
    model = ModelSpec(name="m", kind="pinnersage", profile=prof_params, retrieval=strategy)
    space = _Space(catalog.vectors, np.arange(len(catalog)), np.arange(len(catalog)))
    cases, data = [], []
    for u in range(12):
        n = int(rng.integers(1, 60))
        hist = rng.integers(0, len(catalog), n)
        t = np.sort(rng.integers(0, 80 * 86400, n)).astype(np.int64)
        day = 90 * 86400
        x = catalog.vectors[hist].astype(np.float64)
        profs = case_profiles(x, t, float(day), [prof_params], np.random.default_rng(0))
        seen = np.unique(hist)
        cases.append(EvalCase(u, day, hist, t, np.array([0]), 0, seen))
        data.append(_CaseData(x, t, seen, profs, n))
    budgets = (7, 40, 100)
    plan = _plan(model, cases, data, lambda j: np.random.default_rng([5, j]))
    probe = [np.array([0, 5, -1]) for _ in cases]
    cands, scores = _retrieve(model, plan, data, space, budgets, np.arange(len(catalog)), probe)
    assert scores.shape == (3 * len(cases),) and np.isneginf(scores[2::3]).all()
    rec = Recommender(ExactIndex.build(catalog), catalog, params=strategy)
    for j, case in enumerate(cases):
        profile = build_profile(
            catalog.vectors[case.hist_items],
            catalog.item_ids[case.hist_items],
            case.hist_time,
            now_s=case.day_s,
            params=prof_params,
        )
        for b in budgets:
            got = rec.recommend(
                profile,
                b,
                rng=np.random.default_rng([5, j]),
                exclude_item_ids=set(catalog.item_ids[case.seen].tolist()),
            )
            expect = sorted(c.item_id for c in got)
            mine = sorted(catalog.item_ids[cands[b][j][cands[b][j] >= 0]].tolist())
            assert mine == expect, (j, b)
        # ranking score: the best cosine over the case's queries
        queries = np.vstack([plan.vectors[i] for i, c in enumerate(plan.case) if c == j])
        best = (queries @ catalog.vectors[[0, 5]].T.astype(np.float64)).max(axis=0)
        np.testing.assert_allclose(scores[3 * j : 3 * j + 2], best, rtol=1e-5)


def test_case_profiles_equal_build_profile() -> None:
    catalog, rng = _world(1)
    params = [
        ProfileParams(distance_threshold=a, keep_singletons=k, decay_per_day=lam)
        for a in (0.3, 0.9)
        for k in (True, False)
        for lam in (0.0, 0.1)
    ]
    params.append(ProfileParams(method="complete", distance_threshold=1.0))
    for _ in range(10):
        n = int(rng.integers(1, 80))
        hist = rng.integers(0, len(catalog), n)
        t = np.sort(rng.integers(0, 80 * 86400, n)).astype(np.int64)
        x = catalog.vectors[hist].astype(np.float64)
        profs = case_profiles(x, t, 90 * 86400.0, params, np.random.default_rng(0))
        for p in params:
            ref = build_profile(x, hist, t, now_s=90 * 86400.0, params=p)
            mine = profs[_profile_key(p)]
            assert [hist[r] for r in mine.medoid_rows] == list(ref.medoid_item_ids)
            np.testing.assert_allclose(mine.importance, ref.importances, rtol=1e-12)


def test_select_clusters_equals_the_recommenders_draw() -> None:
    from pinnersage.retrieval.recommender import _sample_clusters

    catalog, rng = _world(2)
    p = ProfileParams(distance_threshold=0.5)
    for s in range(20):
        n = int(rng.integers(2, 60))
        hist = rng.integers(0, len(catalog), n)
        t = np.sort(rng.integers(0, 80 * 86400, n)).astype(np.int64)
        prof = build_profile(catalog.vectors[hist], hist, t, now_s=90 * 86400.0, params=p)
        for k in (1, 3, 5):
            want = [
                c.medoid_item_id
                for c in _sample_clusters(prof.clusters, k, np.random.default_rng(s))
            ]
            idx = select_clusters(prof.importances, k, "sample", np.random.default_rng(s))
            assert [prof.clusters[i].medoid_item_id for i in idx] == want
            if len(prof) <= k:  # all of them, as sample_medoids returns them
                assert want == [
                    c.medoid_item_id for c in sample_medoids(prof, k, rng=np.random.default_rng(s))
                ]


def test_strategies_are_distinct() -> None:
    assert len({dataclasses.astuple(s) for s in STRATEGIES}) == len(STRATEGIES)
