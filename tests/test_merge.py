"""The compiled merge of a request's lists against its plain-Python twin."""

from __future__ import annotations

import numpy as np
import pytest

from pinnersage.retrieval.merge import merge_in_turn, merge_in_turn_reference

N_ROWS = 60


def _case(
    rng: np.random.Generator, by_id: bool
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[int], list[bool], set[int]]:
    rows, scores, quotas, complete = [], [], [], []
    for _ in range(int(rng.integers(1, 6))):
        n = int(rng.integers(0, 30))
        rows.append(rng.choice(N_ROWS, size=n, replace=False).astype(np.int64))
        # few distinct scores: ties between and within lists
        drawn = (rng.integers(0, 6, size=n) / 5).astype(np.float32)
        # best first, as an index returns them; sometimes not (the merge then sorts)
        scores.append(drawn if rng.random() < 0.1 else np.sort(drawn)[::-1].copy())
        quotas.append(int(rng.integers(0, 12)))
        complete.append(bool(rng.random() < 0.7))
    ids = (
        rng.choice(np.arange(-50, 50) * 9_999_991, size=N_ROWS, replace=False)  # any int64
        if by_id
        else np.zeros(0, np.int64)
    )
    keys = ids if by_id else np.arange(N_ROWS)
    excluded = set(rng.choice(keys, size=int(rng.integers(0, 20))).tolist())
    return rows, scores, ids, quotas, complete, excluded


@pytest.mark.parametrize("by_id", [True, False])
def test_compiled_merge_matches_the_python_twin(by_id: bool) -> None:
    rng = np.random.default_rng(11)
    shorts = 0
    for _ in range(500):
        rows, scores, ids, quotas, complete, excluded = _case(rng, by_id)
        keys, got, origin, short = merge_in_turn(
            rows,
            scores,
            ids,
            np.array([quotas, complete], np.int64),
            np.array(sorted(excluded), dtype=np.int64),
        )
        want, want_short = merge_in_turn_reference(
            [r.tolist() for r in rows],
            [s.tolist() for s in scores],
            ids.tolist() if by_id else None,
            quotas,
            complete,
            excluded,
        )
        assert short == want_short
        shorts += short >= 0
        assert origin.tolist() == [s for s, _ in want]
        want_rows = [int(rows[s][pos]) for s, pos in want]
        assert keys.tolist() == (ids[want_rows].tolist() if by_id else want_rows)
        assert got.tolist() == [scores[s][pos] for s, pos in want]
        if short < 0:  # what the merge promises, checked directly
            assert len(set(keys.tolist())) == len(keys) and not excluded & set(keys.tolist())
            assert np.all(np.diff(got) <= 0)
    assert 50 < shorts < 450  # both outcomes were exercised


def test_no_source() -> None:
    keys, got, origin, short = merge_in_turn(
        [], [], np.zeros(0, np.int64), np.zeros((2, 0), np.int64), np.zeros(0, np.int64)
    )
    assert keys.shape == got.shape == origin.shape == (0,) and short == -1


@pytest.mark.parametrize("complete", [0, 1])
def test_a_list_that_runs_short(complete: int) -> None:
    keys, _, _, short = merge_in_turn(
        [np.array([5, 6, 7], np.int64)],
        [np.array([0.9, 0.8, 0.7], np.float32)],
        np.zeros(0, np.int64),
        np.array([[3], [complete]], np.int64),
        np.array([6], np.int64),
    )
    assert (short, keys.tolist()) == ((-1, [5, 7]) if complete else (0, []))
