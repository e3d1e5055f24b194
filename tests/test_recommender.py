"""The recommender: cluster choice, quotas, merge, exclusion, fallback, query variants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import pinnersage.retrieval.recommender as recommender_module
from pinnersage.catalog import ItemCatalog
from pinnersage.core.profile import InterestCluster, InterestProfile, build_profile
from pinnersage.errors import ConfigError, EmbeddingVersionMismatchError, UnknownItemError
from pinnersage.params import IndexParams, ProfileParams, RetrievalParams
from pinnersage.retrieval import (
    Candidate,
    ExactIndex,
    HnswIndex,
    LruCache,
    Recommendations,
    Recommender,
    popular_items,
)
from pinnersage.retrieval.merge import merge_in_turn_reference
from pinnersage.retrieval.recommender import _quotas

DIM = 16
GROUP = 40  # items per topic
TOPICS = 6


@pytest.fixture(scope="module")
def topics() -> ItemCatalog:
    """TOPICS tight groups of GROUP items around orthogonal directions; ids "t{topic}-{i}"."""
    rng = np.random.default_rng(21)
    x = np.repeat(np.eye(DIM)[:TOPICS], GROUP, axis=0) + 0.05 * rng.standard_normal(
        (TOPICS * GROUP, DIM)
    )
    ids = [f"t{t}-{i}" for t in range(TOPICS) for i in range(GROUP)]
    return ItemCatalog.from_arrays(ids, x)


@pytest.fixture(scope="module")
def exact(topics: ItemCatalog) -> ExactIndex:
    return ExactIndex.build(topics, IndexParams(kind="exact"))


def _topic(item_id: object) -> int:
    return int(str(item_id)[1:].split("-")[0])


def _profile(*clusters: tuple[str, float], **kw: object) -> InterestProfile:
    return InterestProfile(
        "u",
        0.0,
        tuple(
            InterestCluster(m, w, 1, 0.0, kw.get("centroid"))  # type: ignore[arg-type]
            for m, w in clusters
        ),
    )


def _rec(index: object, catalog: ItemCatalog, **params: object) -> Recommender:
    return Recommender(
        index,
        catalog,  # the paper's preset, then the test's changes
        params=RetrievalParams.paper(**params),
    )  # type: ignore[arg-type]


# -- quotas ---------------------------------------------------------------------------------------


def test_equal_quotas_give_the_remainder_to_the_first_chosen() -> None:
    clusters = [InterestCluster(i, 1.0, 1, 0.0) for i in range(3)]
    assert _quotas(400, clusters, "equal") == [134, 133, 133]
    assert _quotas(399, clusters, "equal") == [133, 133, 133]
    assert _quotas(2, clusters, "equal") == [1, 1, 0]


def test_importance_quotas_use_largest_remainder() -> None:
    clusters = [InterestCluster(i, w, 1, 0.0) for i, w in enumerate([6.0, 3.0, 1.0])]
    assert _quotas(10, clusters, "importance") == [6, 3, 1]
    assert _quotas(11, clusters, "importance") == [7, 3, 1]  # 6.6, 3.3, 1.1
    zero = [InterestCluster(i, 0.0, 1, 0.0) for i in range(3)]
    assert _quotas(7, zero, "importance") == [3, 2, 2]


def test_each_cluster_fills_its_equal_quota(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = _rec(exact, topics, selection="top", clusters_per_request=3)
    out = rec.recommend(_profile(("t0-0", 3.0), ("t1-0", 2.0), ("t2-0", 1.0)), 31, rng=None)
    assert len(out) == 31 and all(isinstance(c, Candidate) for c in out)
    per_source = Counter(c.source_item_id for c in out)
    assert per_source == {"t0-0": 11, "t1-0": 10, "t2-0": 10}
    assert all(_topic(c.item_id) == _topic(c.source_item_id) for c in out)
    assert all(c.source == "medoid" for c in out)
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True)


def test_importance_quota(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = _rec(exact, topics, selection="top", quota="importance")
    out = rec.recommend(_profile(("t0-0", 6.0), ("t1-0", 3.0), ("t2-0", 1.0)), 20, rng=None)
    assert Counter(_topic(c.item_id) for c in out) == {0: 12, 1: 6, 2: 2}


def test_fewer_clusters_than_e_use_all_of_the_budget(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    rec = _rec(exact, topics, clusters_per_request=3)
    out = rec.recommend(_profile(("t3-0", 1.0), ("t4-0", 1.0)), 30, rng=np.random.default_rng(0))
    assert Counter(_topic(c.item_id) for c in out) == {3: 15, 4: 15}


# -- merging --------------------------------------------------------------------------------------


def test_duplicates_are_kept_once_by_the_first_source(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    rec = _rec(exact, topics, selection="top", exclude_seen=False)
    profile = _profile(("t0-1", 1.0), ("t0-2", 1.0))  # two medoids of one topic
    out = rec.recommend(profile, 30, rng=None)
    ids = [c.item_id for c in out]
    assert len(ids) == len(set(ids)) == 30
    # the first medoid takes its best 15; the second its best 15 among the rest
    ranked = {
        m: [str(i) for i in exact.search(topics.vector(m), len(topics)).ids[0].tolist()]
        for m in ("t0-1", "t0-2")
    }
    first = ranked["t0-1"][:15]
    second = [i for i in ranked["t0-2"] if i not in first][:15]
    assert [c.item_id for c in out if c.source_item_id == "t0-1"] == first
    assert sorted(c.item_id for c in out if c.source_item_id == "t0-2") == sorted(second)
    for c in out:  # each with the score of the query that took it
        assert c.score == pytest.approx(
            float(topics.vector(c.source_item_id) @ topics.vector(c.item_id)), abs=1e-5
        )
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)


def test_seen_items_are_dropped_and_quotas_still_met(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    rec = _rec(exact, topics, selection="top")
    seen = {f"t0-{i}" for i in range(30)} | {"t1-0"}  # most of topic 0: forces a deeper fetch
    profile = _profile(("t0-0", 2.0), ("t1-0", 1.0))
    out = rec.recommend(profile, 20, rng=None, exclude_item_ids=seen)
    assert len(out) == 20 and not seen & {c.item_id for c in out}
    assert Counter(c.source_item_id for c in out) == {"t0-0": 10, "t1-0": 10}
    as_array = rec.recommend(profile, 20, rng=None, exclude_item_ids=np.array(sorted(seen)))
    assert as_array == out
    # exclude_seen off: the same ids are allowed
    off = _rec(exact, topics, selection="top", exclude_seen=False)
    assert seen & {c.item_id for c in off.recommend(profile, 20, rng=None, exclude_item_ids=seen)}


def test_a_short_cluster_is_made_up_by_the_others(topics: ItemCatalog, exact: ExactIndex) -> None:
    small = ItemCatalog.from_arrays(list(topics.item_ids[: 2 * GROUP]), topics.vectors[: 2 * GROUP])
    rec = _rec(ExactIndex.build(small), small, selection="top")
    seen = {f"t0-{i}" for i in range(GROUP)}  # topic 0 has nothing left, the whole index is read
    out = rec.recommend(_profile(("t0-0", 1.0), ("t1-0", 1.0)), 30, rng=None, exclude_item_ids=seen)
    assert len(out) == 30 and {_topic(c.item_id) for c in out} == {1}
    everything = rec.recommend(_profile(("t0-0", 1.0)), 500, rng=None)
    assert len(everything) == 2 * GROUP  # as many as the index holds


def test_matches_a_naive_reference(topics: ItemCatalog, exact: ExactIndex) -> None:
    """Slow twin: full sorted lists, exclusion, each source in turn takes its quota, by hand."""
    medoids = ["t0-3", "t1-5", "t0-0"]
    seen = {"t0-3", "t1-5", "t2-0", "t0-7", "t2-9", "t1-0"}
    avg = topics.vector("t0-4") + 0.8 * topics.vector("t1-2")
    avg = (avg / np.linalg.norm(avg)).astype(np.float32)
    profile = InterestProfile(
        "u",
        0.0,
        tuple(InterestCluster(m, 3.0 - i, 1, 0.0) for i, m in enumerate(medoids)),
        decay_average=avg,
    )
    items = topics.item_ids.tolist()
    for k, share, cap in ((25, 0.0, None), (60, 0.5, None), (90, 0.5, 12), (200, 0.3, 40)):
        rec = _rec(
            exact,
            topics,
            selection="top",
            clusters_per_request=3,
            decay_average_share=share,
            max_cluster_candidates=cap,
        )
        out = rec.recommend(profile, k, rng=None, exclude_item_ids=seen)
        k_avg = 0 if share == 0 else k - min(k - int(np.floor(k * share)), cap or k)
        k_c = k - k_avg
        quotas = [k_c // 3 + (1 if i < k_c % 3 else 0) for i in range(3)]
        queries = [topics.vector(m) for m in medoids] + [avg]
        taken: list[str] = []
        for q, quota in zip(queries, [*quotas, k_avg], strict=True):
            order = sorted(items, key=lambda it, q=q: -float(q @ topics.vector(it)))
            taken += [it for it in order if it not in seen and it not in taken][:quota]
        assert len(out) == k
        assert {c.item_id for c in out} == set(taken), (k, share, cap)
        assert Counter(c.source for c in out)["decay_average"] == k_avg


def test_budget_split_caps_the_clusters() -> None:
    from pinnersage.retrieval.recommender import budget_split

    default = RetrievalParams()
    assert (default.decay_average_share, default.max_cluster_candidates) == (0.5, 64)
    assert [budget_split(k, default) for k in (1, 2, 50, 100, 128, 129, 400)] == [
        (1, 0),
        (1, 1),
        (25, 25),
        (50, 50),
        (64, 64),
        (64, 65),
        (64, 336),
    ]
    uncapped = RetrievalParams(max_cluster_candidates=None)
    assert budget_split(400, uncapped) == (200, 200)
    assert budget_split(
        401, RetrievalParams(decay_average_share=0.25, max_cluster_candidates=None)
    ) == (301, 100)
    assert budget_split(400, RetrievalParams.paper()) == (400, 0)  # no share: no cap
    assert budget_split(400, RetrievalParams(decay_average_share=0.0)) == (400, 0)
    with pytest.raises(ConfigError, match="max_cluster_candidates must be >= 1"):
        RetrievalParams(max_cluster_candidates=0)


def test_decay_average_takes_its_best_items_the_clusters_did_not_take(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    avg = topics.vector("t0-5")  # the average points into the cluster's own topic
    profile = InterestProfile("u", 0.0, (InterestCluster("t0-0", 1.0, 1, 0.0),), decay_average=avg)
    rec = _rec(exact, topics, selection="top", decay_average_share=0.5, max_cluster_candidates=10)
    out = rec.recommend(profile, 50, rng=None, exclude_item_ids={"t0-0"})
    assert len({c.item_id for c in out}) == 50
    mine = [c.item_id for c in out if c.source == "medoid"]
    ranked = [str(i) for i in exact.search(topics.vector("t0-0"), 60).ids[0].tolist()]
    assert mine == [i for i in ranked if i != "t0-0"][:10]
    by_avg = [str(i) for i in exact.search(avg, 100).ids[0].tolist()]
    expect = [i for i in by_avg if i != "t0-0" and i not in mine][:40]
    assert sorted(c.item_id for c in out if c.source == "decay_average") == sorted(expect)


def test_the_merge_does_not_depend_on_the_first_fetch_depth(
    topics: ItemCatalog, exact: ExactIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pinnersage.retrieval.recommender as recommender

    rng = np.random.default_rng(8)
    requests = []
    for _ in range(30):
        medoids = rng.choice(topics.item_ids, size=int(rng.integers(1, 6)), replace=False)
        seen = set(rng.choice(topics.item_ids, size=int(rng.integers(0, 80))).tolist())
        avg = topics.vectors[rng.integers(len(topics))]
        profile = InterestProfile(
            "u",
            0.0,
            tuple(InterestCluster(str(m), float(rng.random()) + 0.1, 1, 0.0) for m in medoids),
            decay_average=avg,
        )
        requests.append((profile, int(rng.integers(1, 150)), seen))
    params = RetrievalParams(max_cluster_candidates=20)
    want = [
        Recommender(exact, topics, params=params).recommend(p, k, rng=None, exclude_item_ids=seen)
        for p, k, seen in requests
    ]
    monkeypatch.setattr(recommender, "_first_depth", lambda quota: 1)  # deepen all the time
    shallow = Recommender(exact, topics, params=params)
    for (p, k, seen), expected in zip(requests, want, strict=True):
        got = shallow.recommend(p, k, rng=None, exclude_item_ids=seen)
        # the same items from the same sources (scores of other search batches may differ in
        # the last bit, which can swap near-ties in the order)
        assert sorted(c[:1] + c[2:] for c in got) == sorted(c[:1] + c[2:] for c in expected)


# -- selection, determinism -----------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_seed(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = _rec(exact, topics)
    profile = _profile(*[(f"t{t}-0", float(t + 1)) for t in range(TOPICS)])
    runs = [rec.recommend(profile, 12, rng=np.random.default_rng(5)) for _ in range(2)]
    assert runs[0] == runs[1]
    drawn = {
        frozenset(
            c.source_item_id for c in rec.recommend(profile, 12, rng=np.random.default_rng(seed))
        )
        for seed in range(20)
    }
    assert len(drawn) > 1  # different seeds draw different clusters
    with pytest.raises(ConfigError, match="rng"):
        rec.recommend(profile, 12, rng=None)


def test_paper_preset_and_cache_reuse(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = Recommender(exact, topics, params=RetrievalParams.paper(), cache=LruCache(10))
    profile = _profile(("t0-0", 1.0), ("t1-0", 1.0), ("t2-0", 1.0), ("t3-0", 1.0))
    first = rec.recommend(profile, 30, rng=np.random.default_rng(1))
    again = rec.recommend(profile, 30, rng=np.random.default_rng(1))
    assert first == again and len(first) == 30
    assert rec.stats()["hits"] == 3 and rec.stats()["misses"] == 3


def test_hnsw_and_exact_agree(topics: ItemCatalog, exact: ExactIndex) -> None:
    hnsw = HnswIndex.build(topics, IndexParams(build_threads=1))
    profile = _profile(("t0-0", 2.0), ("t4-4", 1.0))
    a = _rec(exact, topics, selection="top").recommend(profile, 16, rng=None)
    b = _rec(hnsw, topics, selection="top").recommend(profile, 16, rng=None)
    assert {c.item_id for c in a} == {c.item_id for c in b}


# -- query variants -------------------------------------------------------------------------------


def test_centroid_queries_are_not_cached(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = _rec(exact, topics, selection="top", query="centroid")
    centroid = topics.vectors[GROUP * 2 : GROUP * 2 + 5].mean(axis=0)
    profile = _profile(("t2-0", 1.0), centroid=centroid)
    out = rec.recommend(profile, 10, rng=None)
    assert len(out) == 10 and all(c.source == "centroid" for c in out)
    assert all(c.source_item_id == "t2-0" and _topic(c.item_id) == 2 for c in out)
    assert rec.stats()["hits"] + rec.stats()["misses"] == 0
    with pytest.raises(ConfigError, match="store_centroids"):
        rec.recommend(_profile(("t2-0", 1.0)), 10, rng=None)


def test_decay_average_share(topics: ItemCatalog, exact: ExactIndex) -> None:
    rec = _rec(exact, topics, selection="top", decay_average_share=0.25)
    avg = topics.vector("t5-0")
    profile = InterestProfile("u", 0.0, (InterestCluster("t0-0", 1.0, 1, 0.0),), decay_average=avg)
    out = rec.recommend(profile, 40, rng=None)
    sources = Counter(c.source for c in out)
    assert sources == {"medoid": 30, "decay_average": 10}
    assert all(
        c.source_item_id is None and _topic(c.item_id) == 5
        for c in out
        if c.source == "decay_average"
    )
    with pytest.raises(ConfigError, match="store_decay_average"):
        rec.recommend(_profile(("t0-0", 1.0)), 40, rng=None)


# -- empty profiles, bad input --------------------------------------------------------------------


def test_empty_profile_falls_back_to_popular_items(topics: ItemCatalog, exact: ExactIndex) -> None:
    popular = ["t3-1", "t0-0", "t5-2", "t1-1"]
    rec = Recommender(exact, topics, popular_item_ids=popular)
    out = rec.recommend(
        InterestProfile("new", 0.0), 3, rng=np.random.default_rng(0), exclude_item_ids={"t0-0"}
    )
    assert [c.item_id for c in out] == ["t3-1", "t5-2", "t1-1"]
    assert all(c.source == "popular" and c.source_item_id is None for c in out)
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
    assert Recommender(exact, topics).recommend(InterestProfile("new", 0.0), 3, rng=None) == []


def test_popular_items_counts_actions() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 2, 3, 1, 2, 4], "item_id": [5, 7, 7, 9, 5, 7], "timestamp": range(6)}
    )
    assert popular_items(frame, 2).tolist() == [7, 5]
    assert popular_items(frame, 10).tolist() == [7, 5, 9]


def test_other_embeddings_and_unknown_medoids_are_refused(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    other = ItemCatalog.from_arrays([1, 2], np.eye(2))
    with pytest.raises(EmbeddingVersionMismatchError):
        Recommender(exact, other)
    with pytest.raises(UnknownItemError, match="nope"):
        _rec(exact, topics, selection="top").recommend(_profile(("nope", 1.0)), 5, rng=None)
    with pytest.raises(ConfigError, match="k must be"):
        _rec(exact, topics).recommend(_profile(("t0-0", 1.0)), 0, rng=None)


# -- the paper's Fig. 2 ---------------------------------------------------------------------------


def test_fig2_medoids_hit_every_interest_and_the_mean_hits_none(
    clustered_vectors: Callable[..., np.ndarray],
) -> None:
    """paper.md section 7, example 1: painting, shoes, sci-fi; the average lands on breakfast."""
    rng = np.random.default_rng(2)
    d = 32
    axes = np.eye(d)[:3]
    groups = [axes[g] + 0.05 * rng.standard_normal((40, d)) for g in range(3)]
    mean_dir = axes.sum(axis=0) / np.sqrt(3)
    breakfast = mean_dir + 0.05 * rng.standard_normal((40, d))
    background = clustered_vectors(400, d, 20, 0.5, rng)
    x = np.vstack([*groups, breakfast, background])
    names = ["painting", "shoes", "scifi", "breakfast"]
    ids = [f"{names[i // 40]}-{i % 40}" for i in range(160)] + [f"bg-{i}" for i in range(400)]
    catalog = ItemCatalog.from_arrays(ids, x)
    index = HnswIndex.build(catalog, IndexParams(build_threads=1))
    # the user's actions: ten items of each interest
    acted = [f"{n}-{i}" for n in names[:3] for i in range(10)]
    vectors = catalog.vectors[catalog.rows(acted)]
    profile = build_profile(
        vectors,
        acted,
        np.arange(30) * 3600.0,
        now_s=30 * 3600.0,
        params=ProfileParams(store_decay_average=True),
    )
    mean = profile.decay_average
    assert mean is not None
    # (a) the mean is far from all three groups, (b) Ward finds three clusters
    for g in range(3):
        assert float(mean @ axes[g]) < 0.8
    assert len(profile.clusters) == 3
    # (c) medoids hit all three interests; the mean hits none of them
    rec = Recommender(index, catalog, params=RetrievalParams.paper())
    out = rec.recommend(profile, 30, rng=np.random.default_rng(0), exclude_item_ids=set(acted))
    assert {c.item_id.split("-")[0] for c in out} == {"painting", "shoes", "scifi"}
    from_mean = index.search(mean, 30).ids[0]
    assert {i.split("-")[0] for i in from_mean.tolist()} == {"breakfast"}


# -- the request-path sampler against core.sampling.sample_medoids (its slow twin) ----------------


def test_sampler_matches_sample_medoids_in_distribution() -> None:
    from pinnersage.core.sampling import sample_medoids
    from pinnersage.retrieval.recommender import _sample_clusters

    profile = _profile(("a", 6.0), ("b", 3.0), ("c", 1.0), ("d", 0.5), ("e", 0.0))
    draws = 2500
    ours: Counter[tuple[str, ...]] = Counter()
    core: Counter[tuple[str, ...]] = Counter()
    for seed in range(draws):
        ours[
            tuple(
                str(c.medoid_item_id)
                for c in _sample_clusters(profile.clusters, 2, np.random.default_rng(seed))
            )
        ] += 1
        core[
            tuple(
                str(c.medoid_item_id)
                for c in sample_medoids(profile, 2, rng=np.random.default_rng(seed))
            )
        ] += 1
    assert all(len(set(k)) == 2 and "e" not in k for k in ours)  # distinct, zero weight last
    weights = {"a": 6.0, "b": 3.0, "c": 1.0, "d": 0.5}
    total = sum(weights.values())
    for (x, y), count in ours.items():  # ordered pair probability of successive sampling
        expected = weights[x] / total * weights[y] / (total - weights[x])
        assert abs(count / draws - expected) < 0.03
        assert abs(count / draws - core[(x, y)] / draws) < 0.04


def test_sampler_edge_cases_match_sample_medoids() -> None:
    from pinnersage.core.sampling import sample_medoids
    from pinnersage.retrieval.recommender import _sample_clusters

    rng = np.random.default_rng(0)
    few = _profile(("a", 1.0), ("b", 2.0))
    assert _sample_clusters(few.clusters, 3, rng) == sample_medoids(few, 3, rng=rng)
    zeros = _profile(("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0))
    assert _sample_clusters(zeros.clusters, 2, rng) == sample_medoids(zeros, 2, rng=rng)
    one = _profile(("a", 0.0), ("b", 5.0), ("c", 0.0), ("d", 0.0))
    picked = _sample_clusters(one.clusters, 3, rng)
    assert [c.medoid_item_id for c in picked] == ["b", "a", "c"]
    assert [c.medoid_item_id for c in sample_medoids(one, 3, rng=rng)] == ["b", "a", "c"]


def test_candidate_is_an_immutable_record() -> None:
    c = Candidate("x", 0.5, "m", "medoid")
    assert c._asdict() == {"item_id": "x", "score": 0.5, "source_item_id": "m", "source": "medoid"}
    with pytest.raises(AttributeError):
        c.score = 1.0  # type: ignore[misc]


def test_recommendations_read_as_candidates_and_as_arrays(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    rec = _rec(exact, topics, selection="top")
    out = rec.recommend(
        _profile(("t0-0", 3.0), ("t1-0", 2.0)), 12, rng=None, exclude_item_ids={"t0-0", "t1-0"}
    )
    listed = out.to_list()
    assert isinstance(out, Recommendations) and len(out) == len(listed) == 12
    assert all(isinstance(c, Candidate) for c in listed) and list(out) == listed
    assert out[0] == listed[0] and out[-1] == listed[-1] and out[5] == listed[5]
    with pytest.raises(IndexError):
        out[12]
    fresh = rec.recommend(
        _profile(("t0-0", 3.0), ("t1-0", 2.0)), 12, rng=None, exclude_item_ids={"t0-0", "t1-0"}
    )
    assert fresh[-2] == listed[-2]  # one candidate, before any list is built
    assert out == fresh and out == listed and out != listed[:-1] and out != "x"
    assert out[2:5] == listed[2:5] and isinstance(out[2:5], Recommendations)
    assert out.item_ids.tolist() == [c.item_id for c in listed]
    assert out.scores.tolist() == [c.score for c in listed]
    assert out.source_item_ids.tolist() == [c.source_item_id for c in listed]
    assert out.sources.tolist() == [c.source for c in listed]
    frame = out.to_frame()
    assert list(frame.columns) == ["item_id", "score", "source_item_id", "source"]
    assert frame.to_dict("records") == [c._asdict() for c in listed]
    with pytest.raises(ValueError):
        out.scores[0] = 1.0  # read-only
    assert "Recommendations([Candidate(" in repr(out) and "(12 in all)" in repr(out)
    int_cat = ItemCatalog.from_arrays(np.arange(len(topics)), topics.vectors)
    int_out = _rec(
        ExactIndex.build(int_cat, IndexParams(kind="exact")), int_cat, selection="top"
    ).recommend(_profile((0, 1.0)), 5, rng=None)
    assert int_out.item_ids.dtype == np.int64
    odd = {None, 2.5, "7", 2**70, 3}  # ids of no catalog item, or of another kind: no error
    assert (
        3
        not in _rec(ExactIndex.build(int_cat, IndexParams(kind="exact")), int_cat, selection="top")
        .recommend(_profile((0, 1.0)), 5, rng=None, exclude_item_ids=odd)
        .item_ids.tolist()
    )
    assert all(type(c.item_id) is int and type(c.score) is float for c in int_out)


def _reference_merge(
    rows: list[np.ndarray],
    scores: list[np.ndarray],
    ids: np.ndarray,
    plan: np.ndarray,
    excluded: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``merge_in_turn``'s signature over its plain-Python twin."""
    picks, short = merge_in_turn_reference(
        [r.tolist() for r in rows],
        [s.tolist() for s in scores],
        ids.tolist() if ids.shape[0] else None,
        plan[0].tolist(),
        plan[1].astype(bool).tolist(),
        set(excluded.tolist()),
    )
    picked = np.array([rows[s][pos] for s, pos in picks], dtype=np.int64)
    return (
        ids[picked] if ids.shape[0] else picked,
        np.array([scores[s][pos] for s, pos in picks], dtype=np.float32),
        np.array([s for s, _ in picks], dtype=np.int64),
        short,
    )


@pytest.mark.parametrize("ids", ["str", "int"])
def test_compiled_merge_matches_its_python_twin_on_requests(
    topics: ItemCatalog, exact: ExactIndex, monkeypatch: pytest.MonkeyPatch, ids: str
) -> None:
    """Whole requests (shared items, seen items, short lists fetched deeper) give the same
    candidates with the compiled merge and with the plain-Python one."""
    catalog, index = topics, exact
    if ids == "int":
        catalog = ItemCatalog.from_arrays(np.arange(len(topics)) * 7 + 3, topics.vectors)
        index = ExactIndex.build(catalog, IndexParams(kind="exact"))
    rng = np.random.default_rng(4)
    requests = []
    for _ in range(40):
        medoids = rng.choice(catalog.item_ids, size=int(rng.integers(1, 5)), replace=False)
        seen = set(rng.choice(catalog.item_ids, size=int(rng.integers(0, 60))).tolist())
        seen |= set(medoids[:1].tolist())
        profile = _profile(*[(m, float(rng.random()) + 0.1) for m in medoids.tolist()])
        requests.append((profile, int(rng.integers(1, 60)), seen, int(rng.integers(100))))
    for params in (RetrievalParams.paper(), RetrievalParams.paper(quota="importance")):
        fast = Recommender(index, catalog, params=params)
        results = [
            fast.recommend(p, k, rng=np.random.default_rng(seed), exclude_item_ids=seen)
            for p, k, seen, seed in requests
        ]
        with monkeypatch.context() as m:
            m.setattr(recommender_module, "merge_in_turn", _reference_merge)
            slow = Recommender(index, catalog, params=params)
            for (p, k, seen, seed), expected in zip(requests, results, strict=True):
                got = slow.recommend(p, k, rng=np.random.default_rng(seed), exclude_item_ids=seen)
                assert got == expected
                assert not seen & set(got.item_ids.tolist())


def test_shipped_default_strategy_on_a_default_profile(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    acted = [f"t{t}-{i}" for t in (0, 1, 2) for i in range(6)]
    profile = build_profile(
        topics.vectors[topics.rows(acted)], acted, np.arange(18) * 60.0, now_s=2000.0
    )
    rec = Recommender(exact, topics)  # RetrievalParams(): the shipped default
    out = rec.recommend(profile, 30, rng=np.random.default_rng(0), exclude_item_ids=set(acted))
    assert len(out) == 30 and not set(acted) & {c.item_id for c in out}
    assert {c.source for c in out} == {"medoid", "decay_average"}
    assert Counter(c.source for c in out)["decay_average"] == 15


def test_lists_shared_by_requests_that_read_them_to_other_depths(
    topics: ItemCatalog, exact: ExactIndex
) -> None:
    """A cached list's candidates are built on demand, from the top: a later request that reads
    deeper (more of its items seen) extends them. Each answer equals a fresh recommender's."""
    profile = _profile(("t0-0", 1.0), ("t1-0", 1.0), ("t2-0", 1.0))
    shared = Recommender(exact, topics, params=RetrievalParams.paper(), cache=LruCache(10))
    rng = np.random.default_rng(5)
    for n_seen in (0, 1, 3, 8, 2, 12, 0):
        seen = set(rng.choice(topics.item_ids[: 3 * GROUP], size=n_seen, replace=False).tolist())
        got = shared.recommend(profile, 30, rng=np.random.default_rng(0), exclude_item_ids=seen)
        fresh = Recommender(exact, topics, params=RetrievalParams.paper(), cache=LruCache(10))
        assert got == fresh.recommend(
            profile, 30, rng=np.random.default_rng(0), exclude_item_ids=seen
        )
        assert len(got) == 30 and not seen & {c.item_id for c in got}
    assert shared.stats()["misses"] == 3  # one fetch per medoid, shared by every request
