"""Eq. 2 (medoid), Eq. 3 (importance), Algorithm 2 (profile), sampling and baselines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnersage import (
    ConfigError,
    DimensionMismatchError,
    InterestProfile,
    InvalidVectorsError,
    PinnerSageWarning,
    ProfileParams,
    build_profile,
    decay_average,
    importance,
    last_item,
    medoid_index,
    sample_medoids,
    top_medoids,
    ward_clusters,
)
from pinnersage.core.importance import SECONDS_PER_DAY
from pinnersage.core.medoid import medoid_index_naive

DAY = SECONDS_PER_DAY


def test_medoid_by_hand() -> None:
    """paper.md section 7.5: points 0, 1, 2, 10 -> medoid 2 (sums 105, 83, 69, 245)."""
    x = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert medoid_index(x) == 2
    assert medoid_index_naive(x) == 2


def test_medoid_ties_go_to_the_earliest_row() -> None:
    assert medoid_index(np.array([[0.0], [2.0]])) == 0
    assert medoid_index(np.array([[0.0], [4.0], [2.0], [2.0]])) == 2
    assert medoid_index(np.array([[5.0], [1.0], [5.0], [1.0]])) == 0


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), d=st.integers(1, 8))
def test_medoid_matches_eq2_computed_literally(seed: int, n: int, d: int) -> None:
    x = np.random.default_rng(seed).normal(size=(n, d))
    fast = medoid_index(x)
    naive = medoid_index_naive(x)
    diff = x[:, None, :] - x[None, :, :]
    cost = (diff * diff).sum(axis=(1, 2))
    assert fast == naive or np.isclose(cost[fast], cost[naive], rtol=1e-12)


def test_importance_by_hand() -> None:
    """paper.md section 7.6: ages 0, 10 and 69.3147 days at λ = 0.01 -> 2.404837; λ = 0 -> 3."""
    now = 100 * DAY
    t = now - np.array([0.0, 10.0, 69.3147]) * DAY
    assert importance(t, now, 0.01) == pytest.approx(2.404837, abs=1e-6)
    assert importance(t, now, 0.0) == 3.0


def test_future_actions_count_as_age_zero() -> None:
    assert importance([10 * DAY], 0.0, 0.5) == 1.0


def test_importance_rejects_negative_decay() -> None:
    with pytest.raises(ConfigError, match="decay_per_day"):
        importance([0.0], 0.0, -0.1)


def three_topics(rng: np.random.Generator, per_topic: int = 6, d: int = 16) -> np.ndarray:
    centers = np.eye(d)[:3]
    x = np.repeat(centers, per_topic, axis=0) + 0.03 * rng.normal(size=(3 * per_topic, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_build_profile_three_interests() -> None:
    rng = np.random.default_rng(0)
    x = three_topics(rng)
    ids = np.arange(100, 100 + len(x))
    t = np.arange(len(x), dtype=float) * DAY  # topic 2 is the most recent
    now = float(len(x)) * DAY
    profile = build_profile(
        x, ids, t, now_s=now, params=ProfileParams(distance_threshold=0.5), user_id="u1"
    )
    assert isinstance(profile, InterestProfile)
    assert profile.user_id == "u1" and profile.as_of_s == now and profile.n_actions == 18
    assert len(profile) == 3
    assert [c.size for c in profile.clusters] == [6, 6, 6]
    imps = profile.importances
    assert np.all(np.diff(imps) < 0), "clusters are ordered by importance"
    groups = [set(range(100 + 6 * g, 106 + 6 * g)) for g in range(3)]
    assert [
        next(i for i, g in enumerate(groups) if c.medoid_item_id in g) for c in profile.clusters
    ] == [2, 1, 0]
    for cluster, g in zip(profile.clusters, (2, 1, 0), strict=True):
        members = t[6 * g : 6 * g + 6]
        assert cluster.importance == pytest.approx(importance(members, now, 0.01))
        assert cluster.last_action_s == members.max()
        rows = np.arange(6 * g, 6 * g + 6)
        assert cluster.medoid_item_id == ids[rows[medoid_index_naive(x[rows])]]
        assert cluster.centroid is None
    assert isinstance(profile.clusters[0].medoid_item_id, int)


def test_profile_is_immutable_and_input_order_free() -> None:
    rng = np.random.default_rng(1)
    x = three_topics(rng)
    ids = [f"item-{i}" for i in range(len(x))]
    t = rng.permutation(len(x)).astype(float) * DAY
    p = ProfileParams(distance_threshold=0.5, store_centroids=True, store_decay_average=True)
    a = build_profile(x, ids, t, now_s=30 * DAY, params=p)
    perm = rng.permutation(len(x))
    b = build_profile(x[perm], [ids[i] for i in perm], t[perm], now_s=30 * DAY, params=p)
    assert a == b
    with pytest.raises(AttributeError):
        a.clusters = ()  # type: ignore[misc]
    assert a.clusters[0].centroid is not None and a.clusters[0].centroid.dtype == np.float32
    assert a.decay_average is not None
    assert np.linalg.norm(a.decay_average) == pytest.approx(1.0, rel=1e-6)


def test_repeated_actions_each_count() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    profile = build_profile(
        x,
        ["a", "a", "a", "b"],
        [0.0, 1.0, 2.0, 3.0],
        now_s=3.0,
        params=ProfileParams(distance_threshold=0.1, decay_per_day=0.0),
    )
    assert [(c.medoid_item_id, c.size, c.importance) for c in profile.clusters] == [
        ("a", 3, 3.0),
        ("b", 1, 1.0),
    ]


def test_singletons_dropped_in_the_papers_reading() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    profile = build_profile(
        x, [1, 1, 2], [0.0, 1.0, 2.0], now_s=2.0, params=ProfileParams.paper(distance_threshold=0.1)
    )
    assert profile.medoid_item_ids == (1,)
    assert profile.n_actions == 3


def test_empty_history_gives_an_empty_profile() -> None:
    profile = build_profile(np.empty((0, 8)), [], [], now_s=0.0, user_id=7)
    assert profile.clusters == () and profile.n_actions == 0 and profile.user_id == 7
    assert sample_medoids(profile, rng=np.random.default_rng(0)) == ()


def test_heavy_user_is_capped_with_a_warning() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4))
    t = np.arange(50.0)
    with pytest.warns(PinnerSageWarning, match="max_actions_per_user"):
        profile = build_profile(
            x, np.arange(50), t, now_s=50.0, params=ProfileParams(max_actions_per_user=20)
        )
    assert profile.n_actions == 20
    assert min(c.last_action_s for c in profile.clusters) >= 30.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_profile(
            x[:20], np.arange(20), t[:20], now_s=50.0, params=ProfileParams(max_actions_per_user=20)
        )


@pytest.mark.parametrize(
    ("vectors", "ids", "times", "error"),
    [
        (np.array([[np.nan, 0.0]]), [1], [0.0], InvalidVectorsError),
        (np.ones((2, 2)), [1], [0.0, 1.0], DimensionMismatchError),
        (np.ones((2, 2)), [1, 2], [0.0], DimensionMismatchError),
        (np.ones((2, 2)), [1, 2], [0.0, np.inf], InvalidVectorsError),
        (np.ones(3), [1, 2, 3], [0.0, 1.0, 2.0], InvalidVectorsError),
        (np.array([[1e200, 0.0], [0.0, 1.0]]), [1, 2], [0.0, 1.0], InvalidVectorsError),
        ([["a", "b"]], [1], [0.0], InvalidVectorsError),
        ([[1.0, 2.0], [1.0]], [1, 2], [0.0, 1.0], InvalidVectorsError),
        (np.ones((2, 2), dtype=">f4"), [1, 2], ["x", 1.0], InvalidVectorsError),
    ],
)
def test_bad_input_raises_typed_errors(
    vectors: np.ndarray, ids: list[int], times: list[float], error: type[Exception]
) -> None:
    with pytest.raises(error):
        build_profile(vectors, ids, times, now_s=10.0)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 50),
    alpha=st.floats(0.01, 4.0),
    keep=st.booleans(),
)
def test_profile_invariants(seed: int, n: int, alpha: float, keep: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.integers(0, 10 * n, n)
    t = rng.uniform(0, 90 * DAY, n)
    now = 90 * DAY
    params = ProfileParams(distance_threshold=alpha, keep_singletons=keep, decay_per_day=0.0)
    profile = build_profile(x, ids, t, now_s=now, params=params)
    order = np.argsort(t, kind="stable")
    clusters = ward_clusters(x[order], alpha, keep_singletons=keep)
    assert sorted(c.size for c in profile.clusters) == sorted(len(c) for c in clusters)
    member_ids = [set(ids[order][c].tolist()) for c in clusters]
    for cluster in profile.clusters:
        assert any(cluster.medoid_item_id in m for m in member_ids), "medoid is a member"
        assert cluster.importance == pytest.approx(cluster.size), "λ = 0 counts actions"
    assert sum(c.size for c in profile.clusters) == (n if keep else sum(len(c) for c in clusters))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), age=st.floats(0.0, 50.0))
def test_older_actions_never_raise_importance(seed: int, n: int, age: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = rng.uniform(0, 10 * DAY, n)
    params = ProfileParams(distance_threshold=1e9, keep_singletons=True)
    base = build_profile(x, np.arange(n), t, now_s=10 * DAY, params=params)
    older = t.copy()
    older[int(rng.integers(0, n))] -= age * DAY
    aged = build_profile(x, np.arange(n), older, now_s=10 * DAY, params=params)
    assert aged.clusters[0].importance <= base.clusters[0].importance + 1e-12


def profile_with(importances: list[float]) -> InterestProfile:
    from pinnersage import InterestCluster

    return InterestProfile(
        "u", 0.0, tuple(InterestCluster(i, w, 1, 0.0) for i, w in enumerate(importances))
    )


def test_sampling_frequencies_follow_importance() -> None:
    """paper.md section 7.8: importances (6, 3, 1, ...) -> first draw ~ importance / total."""
    profile = profile_with([6.0, 3.0, 1.0, 0.5, 0.5])
    rng = np.random.default_rng(0)
    draws = 20_000
    first = np.zeros(5)
    for _ in range(draws):
        picked = sample_medoids(profile, 3, rng=rng)
        assert len({c.medoid_item_id for c in picked}) == 3, "no repeats within a request"
        first[picked[0].medoid_item_id] += 1
    expected = np.array([6.0, 3.0, 1.0, 0.5, 0.5]) / 11.0
    np.testing.assert_allclose(first / draws, expected, atol=0.015)


def test_sampling_is_reproducible_and_bounded() -> None:
    profile = profile_with([5.0, 4.0, 3.0, 2.0, 1.0])
    a = sample_medoids(profile, 3, rng=np.random.default_rng(42))
    b = sample_medoids(profile, 3, rng=np.random.default_rng(42))
    assert a == b
    small = profile_with([1.0, 2.0])
    assert sample_medoids(small, 3, rng=np.random.default_rng(0)) == small.clusters
    zero = profile_with([0.0, 0.0, 1.0, 0.0])
    picked = sample_medoids(zero, 2, rng=np.random.default_rng(0))
    assert picked[0].medoid_item_id == 2 and len(picked) == 2
    assert top_medoids(profile, 2) == profile.clusters[:2]
    with pytest.raises(ConfigError):
        sample_medoids(profile, 0, rng=np.random.default_rng(0))


def test_baselines() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    t = np.array([5.0, 1.0, 5.0])
    np.testing.assert_array_equal(last_item(x, t), [0.0, 2.0])  # last of the latest ties
    avg = decay_average(x, t, now_s=5.0, decay_per_day=0.0)
    assert avg is not None
    np.testing.assert_allclose(avg, np.array([1.0, 3.0]) / np.sqrt(10.0))
    assert last_item(np.empty((0, 2)), []) is None
    assert decay_average(np.empty((0, 2)), [], now_s=0.0) is None


def test_fig2_averaging_failure() -> None:
    """paper.md section 7.1: the mean of three far-apart interests is near none of them."""
    rng = np.random.default_rng(7)
    d = 32
    x = three_topics(rng, per_topic=8, d=d)
    t = np.arange(len(x), dtype=float)
    mean = decay_average(x, t, now_s=float(len(x)), decay_per_day=0.0)
    assert mean is not None
    assert np.max(x @ mean) < 0.8
    profile = build_profile(
        x, np.arange(len(x)), t, now_s=float(len(x)), params=ProfileParams(distance_threshold=0.5)
    )
    assert len(profile) == 3
    # a catalog: items near each interest, and items near the mean ("energy boosting breakfast")
    topics = np.eye(d)[:3]
    near_topic = np.repeat(topics, 20, axis=0) + 0.05 * rng.normal(size=(60, d))
    near_mean = mean + 0.02 * rng.normal(size=(20, d))
    catalog = np.vstack([near_topic, near_mean])
    catalog /= np.linalg.norm(catalog, axis=1, keepdims=True)
    topic_of = np.array([0] * 20 + [1] * 20 + [2] * 20 + [-1] * 20)

    def top(query: np.ndarray, k: int = 10) -> np.ndarray:
        return np.argsort(-(catalog @ query), kind="stable")[:k]

    hit = {int(topic_of[i]) for c in profile.clusters for i in top(x[c.medoid_item_id])}
    assert {0, 1, 2} <= hit
    assert {int(topic_of[i]) for i in top(mean)} == {-1}


def test_fig3_interest_switching() -> None:
    """paper.md section 7.2: interleaved topics; the last item covers one, the profile all."""
    rng = np.random.default_rng(11)
    d = 16
    topics = np.eye(d)[:4]
    order = np.tile(np.arange(4), 6)
    x = topics[order] + 0.05 * rng.normal(size=(len(order), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = np.arange(len(order), dtype=float) * DAY
    future = topics  # the next actions come from every topic
    last = last_item(x, t)
    assert last is not None
    assert int(np.sum(future @ last >= 0.8)) == 1
    profile = build_profile(
        x, np.arange(len(x)), t, now_s=t[-1], params=ProfileParams(distance_threshold=0.5)
    )
    medoids = x[list(profile.medoid_item_ids)]
    assert bool(np.all((future @ medoids.T).max(axis=1) >= 0.8))


@pytest.mark.parametrize("method", ["complete", "kmeans"])
def test_ablation_methods(method: str) -> None:
    rng = np.random.default_rng(5)
    x = three_topics(rng)
    params = ProfileParams(method=method, distance_threshold=0.5, kmeans_clusters=3)  # type: ignore[arg-type]
    a = build_profile(
        x,
        np.arange(len(x)),
        np.arange(len(x), dtype=float),
        now_s=20.0,
        params=params,
        rng=np.random.default_rng(0),
    )
    b = build_profile(
        x,
        np.arange(len(x)),
        np.arange(len(x), dtype=float),
        now_s=20.0,
        params=params,
        rng=np.random.default_rng(0),
    )
    assert a == b
    assert sorted(c.size for c in a.clusters) == [6, 6, 6]


def test_profile_at_rescales_importance() -> None:
    profile = profile_with([2.0, 1.0])
    later = profile.at(10 * DAY, 0.1)
    np.testing.assert_allclose(later.importances, np.array([2.0, 1.0]) * np.exp(-1.0))
    assert later.as_of_s == 10 * DAY


def test_request_path_sampling_has_the_same_distribution() -> None:
    """sample_indices (recommender, evaluation) draws as sample_medoids does."""
    from pinnersage.core.sampling import sample_indices

    weights = [6.0, 3.0, 1.0, 0.5, 0.5]
    rng = np.random.default_rng(1)
    draws = 20_000
    pairs: dict[tuple[int, int], int] = {}
    first = np.zeros(5)
    for _ in range(draws):
        picked = sample_indices(weights, 3, rng)
        assert len(set(picked)) == 3
        first[picked[0]] += 1
        pairs[(picked[0], picked[1])] = pairs.get((picked[0], picked[1]), 0) + 1
    np.testing.assert_allclose(first / draws, np.array(weights) / 11.0, atol=0.015)
    # second draw in proportion to what is left: P(0 then 1) = 6/11 * 3/5
    assert pairs[(0, 1)] / draws == pytest.approx(6 / 11 * 3 / 5, abs=0.015)
    assert sample_indices([0.0, 0.0, 2.0], 2, rng) == [2, 0]
    assert sample_indices([1.0, 2.0], 3, rng) == [0, 1]


@pytest.mark.parametrize("seed", range(30))
def test_items_clustered_once_with_their_multiplicity(seed: int) -> None:
    """The batch job's Ward on distinct items with multiplicities labels every action as Ward on
    all the actions does (label order included)."""
    from pinnersage.core.profile import cluster_labels, ward_labels_of_items

    rng = np.random.default_rng(500 + seed)
    items = rng.normal(size=(60, 8))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    rows = rng.integers(0, int(rng.integers(1, 60)), int(rng.integers(1, 150)))
    for keep in (True, False):
        params = ProfileParams(
            distance_threshold=float(rng.uniform(0.2, 2.0)), keep_singletons=keep
        )
        fast, c_fast = ward_labels_of_items(items[rows], rows, params)
        slow, c_slow = cluster_labels(items[rows], params)
        assert c_fast == c_slow
        assert np.array_equal(fast, slow)


def test_clusters_built_without_init_equal_the_dataclass() -> None:
    """build_profile builds InterestCluster through the slots' setters: the same objects."""
    import dataclasses
    import pickle

    from pinnersage.core.profile import InterestCluster, _cluster

    fast, slow = _cluster("a", 1.5, 3, 10.0), InterestCluster("a", 1.5, 3, 10.0)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert fast.centroid is None and pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.size = 4  # type: ignore[misc]
    cent = np.ones(2, np.float32)
    assert _cluster("a", 1.5, 3, 10.0, cent).centroid is cent


@pytest.mark.parametrize("method", ["ward", "complete", "kmeans"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_vectors_raise_for_every_method(method: str, bad: float, dtype: type) -> None:
    x = np.ones((6, 3), dtype=dtype)
    x[4, 1] = bad
    with pytest.raises(InvalidVectorsError, match="row 4"):
        build_profile(
            x, list(range(6)), np.arange(6.0), now_s=10.0, params=ProfileParams(method=method)
        )


@pytest.mark.parametrize("method", ["ward", "kmeans"])
@pytest.mark.parametrize("d", [3, 64, 257])
def test_profile_decay_average_is_the_baselines_bit_for_bit(method: str, d: int) -> None:
    """The Ward kernel sums ``w @ x`` on its medoids' pass; the bits are the baseline's."""
    rng = np.random.default_rng(d)
    x = rng.normal(size=(40, d)).astype(np.float32)
    t = np.sort(rng.uniform(0, 50 * 86400.0, 40))
    now = 60 * 86400.0
    profile = build_profile(x, list(range(40)), t, now_s=now, params=ProfileParams(method=method))
    want = decay_average(x.astype(np.float64), t, now_s=now, decay_per_day=0.01)
    assert profile.decay_average is not None
    np.testing.assert_array_equal(profile.decay_average, want.astype(np.float32))
