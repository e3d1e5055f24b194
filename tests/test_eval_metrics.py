"""Vectorised evaluation metrics against their loop-by-loop twins (parity)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnersage.evaluation import metrics as M
from pinnersage.evaluation import metrics_naive as N


def _unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
def test_hits_and_relevance_match_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n_cases, budget = 60, 9, 12
    cands = rng.integers(0, n_items, (n_cases, budget))
    cands[rng.random((n_cases, budget)) < 0.2] = -1
    t_case = rng.integers(0, n_cases, 40)
    t_item = rng.integers(0, n_items, 40)
    assert np.array_equal(
        M.candidate_hits(cands, t_case, t_item, n_items),
        N.candidate_hits_naive(cands, t_case, t_item),
    )
    vec = _unit(rng, n_items, 3)
    rel = (vec @ vec.T) >= 0.6
    got = M.candidate_relevance(cands, t_case, t_item, rel, chunk=7)
    want = N.candidate_relevance_naive(cands, t_case, t_item, vec, 0.6)
    assert np.array_equal(got, want)
    assert got.any() and not got.all()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 5))
def test_ranking_matches_naive(seed: int, n_cases: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n_pos = int(rng.integers(1, 12))
    pos_case = np.sort(rng.integers(0, n_cases, n_pos))
    # coarse scores so that ties happen
    pos = rng.integers(0, 5, n_pos).astype(float)
    neg = rng.integers(0, 5, (n_pos, k)).astype(float)
    top, rr, r = M.ranking_metrics(pos, neg, pos_case, n_cases)
    top_n, rr_n, r_n = N.ranking_metrics_naive(pos, neg, pos_case, n_cases)
    np.testing.assert_allclose(top, top_n)
    np.testing.assert_allclose(rr, rr_n)
    assert r.tolist() == r_n


def test_ranking_perfect_and_worst() -> None:
    pos = np.array([1.0, 0.9])
    neg = np.array([[0.1, 0.2], [0.0, 0.3]])
    top, rr, r = M.ranking_metrics(pos, neg, np.array([0, 0]), 1)
    assert top[0] == 2 and rr[0] == 2.0 and r[0] == 2
    top, rr, _ = M.ranking_metrics(-pos, neg, np.array([0, 0]), 1)
    assert top[0] == 0 and rr[0] == pytest.approx(2 / 3)


def test_diversity_matches_naive() -> None:
    rng = np.random.default_rng(3)
    v = _unit(rng, 30)
    group = rng.integers(0, 4, 30)
    group[0] = 5  # a group of one: undefined
    got = M.mean_pairwise_diversity(v, group, 6)
    for g in range(6):
        want = N.mean_pairwise_diversity_naive(v[group == g])
        if np.isnan(want):
            assert np.isnan(got[g])
        else:
            assert got[g] == pytest.approx(want, abs=1e-12)
    same = np.repeat(v[:1], 5, axis=0)
    assert M.mean_pairwise_diversity(same, np.zeros(5, np.int64), 1)[0] == pytest.approx(
        0.0, abs=1e-12
    )


def test_padded_diversity_matches_naive() -> None:
    rng = np.random.default_rng(4)
    v = _unit(rng, 25).astype(np.float32)
    padded = np.vstack([v, np.zeros((1, v.shape[1]), np.float32)])
    rows = rng.integers(0, 25, (6, 7))
    rows[rng.random((6, 7)) < 0.3] = -1
    rows[5, 1:] = -1
    got = M.padded_diversity(padded, rows)
    for g in range(6):
        want = N.mean_pairwise_diversity_naive(v[rows[g][rows[g] >= 0]].astype(np.float64))
        if np.isnan(want):
            assert np.isnan(got[g])
        else:
            assert got[g] == pytest.approx(want, abs=1e-5)


def test_bootstrap_lift_and_paired_difference() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400)
    values = np.vstack([base, base * 1.5, base + 0.01])
    st_ = M.bootstrap_stats(values, 0, 300, np.random.default_rng(1))
    assert st_["lift"][1] == pytest.approx(0.5)
    assert st_["lift_low"][1] == pytest.approx(0.5) and st_["lift_high"][1] == pytest.approx(0.5)
    assert st_["diff"][2] == pytest.approx(0.01)
    assert st_["diff_low"][2] == pytest.approx(0.01) and st_["diff_high"][2] == pytest.approx(0.01)
    noisy = np.vstack([base, rng.random(400)])
    s2 = M.bootstrap_stats(noisy, 0, 300, np.random.default_rng(1))
    assert s2["lift_low"][1] < s2["lift"][1] < s2["lift_high"][1]
