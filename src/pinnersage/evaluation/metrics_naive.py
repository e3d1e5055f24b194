"""Loop-by-loop twins of :mod:`pinnersage.evaluation.metrics`, the oracles of its parity tests.

Each function follows the written definition one case or one pair at a time, with no
vectorisation tricks; they are slow and only used by tests.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "candidate_hits_naive",
    "candidate_relevance_naive",
    "mean_pairwise_diversity_naive",
    "ranking_metrics_naive",
]


def candidate_hits_naive(
    candidates: npt.NDArray[np.int64],
    target_case: npt.NDArray[np.int64],
    target_item: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Is each target in its case's candidate list (ignoring -1 padding)?"""
    out = []
    for c, item in zip(target_case.tolist(), target_item.tolist(), strict=True):
        out.append(item in {x for x in candidates[c].tolist() if x >= 0})
    return np.array(out, dtype=bool)


def candidate_relevance_naive(
    candidates_ref: npt.NDArray[np.int64],
    target_case: npt.NDArray[np.int64],
    target_ref: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float64],
    threshold: float,
) -> npt.NDArray[np.bool_]:
    """Does some candidate have cosine >= threshold with the target (vectors are unit)?"""
    out = []
    for c, t in zip(target_case.tolist(), target_ref.tolist(), strict=True):
        found = False
        for x in candidates_ref[c].tolist():
            if x >= 0 and float(np.dot(vectors[t], vectors[x])) >= threshold:
                found = True
                break
        out.append(found)
    return np.array(out, dtype=bool)


def ranking_metrics_naive(
    pos_scores: npt.NDArray[np.float64],
    neg_scores: npt.NDArray[np.float64],
    pos_case: npt.NDArray[np.int64],
    n_cases: int,
) -> tuple[list[float], list[float], list[int]]:
    """Per case: positives in the top R (negatives win ties), sum of 1/rank, R."""
    top, rr_sum, r = [0.0] * n_cases, [0.0] * n_cases, [0] * n_cases
    for c in range(n_cases):
        pool: list[tuple[float, int]] = []  # (score, is_positive)
        for p in range(pos_scores.shape[0]):
            if pos_case[p] != c:
                continue
            r[c] += 1
            pool.append((float(pos_scores[p]), 1))
            beaten_by = 0
            for s in neg_scores[p].tolist():
                pool.append((float(s), 0))
                if s >= pos_scores[p]:
                    beaten_by += 1
            rr_sum[c] += 1.0 / (1 + beaten_by)
        pool.sort(key=lambda e: (-e[0], e[1]))
        top[c] = float(sum(is_pos for _, is_pos in pool[: r[c]]))
    return top, rr_sum, r


def mean_pairwise_diversity_naive(vectors: npt.NDArray[np.float64]) -> float:
    """``1 -`` the average cosine over ordered pairs of distinct rows (NaN below 2 rows)."""
    n = vectors.shape[0]
    if n < 2:
        return float("nan")
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += float(np.dot(vectors[i], vectors[j]))
    return 1.0 - total / (n * (n - 1))
