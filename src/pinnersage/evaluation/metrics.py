"""The paper's offline metrics (section 5.2), vectorised over all cases of a model at once.

* recall: the share of a case's target items that are among its candidates (exact hit);
* relevance: the share of target items with cosine >= 0.8 (``relevance_cosine``) to some
  candidate, in the fixed reference embedding;
* R-precision and reciprocal rank of the ranking task: each positive is mixed with sampled
  negatives and everything is scored by the best cosine to any of the model's query vectors;
* diversity: ``1 -`` the mean pairwise cosine of a set of unit vectors (Figure 7);
* lifts over a reference model, with bootstrap confidence intervals over users.

Every function here has a loop-by-loop twin in :mod:`pinnersage.evaluation.metrics_naive`; the
tests check that both agree. Ties in ranking are broken pessimistically: a negative scoring
exactly as a positive ranks above it.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

__all__ = [
    "bootstrap_stats",
    "candidate_hits",
    "candidate_relevance",
    "mean_pairwise_diversity",
    "padded_diversity",
    "ranking_metrics",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def candidate_hits(
    candidates: IntArray, target_case: IntArray, target_item: IntArray, n_items: int
) -> npt.NDArray[np.bool_]:
    """Whether each target item is among its case's candidates.

    Parameters
    ----------
    candidates : int array of shape (n_cases, budget)
        Item codes, padded with -1.
    target_case, target_item : int arrays of shape (n_targets,)
        The case (row of ``candidates``) and item code of each target.
    n_items : int
        Number of item codes.

    Returns
    -------
    numpy.ndarray of bool, shape (n_targets,)
    """
    n_cases = candidates.shape[0]
    marked = np.zeros((n_cases, n_items + 1), dtype=bool)  # last column absorbs the -1 padding
    rows = np.repeat(np.arange(n_cases), candidates.shape[1])
    marked[rows, candidates.reshape(-1)] = True
    return marked[target_case, target_item]


def candidate_relevance(
    candidates_ref: IntArray,
    target_case: IntArray,
    target_ref: IntArray,
    relevant: npt.NDArray[np.bool_],
    *,
    chunk: int = 4096,
) -> npt.NDArray[np.bool_]:
    """Whether each target has some candidate it is relevant to.

    ``relevant[a, b]`` says whether reference items a and b have cosine >= the threshold.
    ``candidates_ref`` holds reference rows padded with -1; ``target_ref`` must be valid rows.
    """
    out = np.zeros(target_case.shape[0], dtype=bool)
    pad = candidates_ref < 0
    safe = np.where(pad, 0, candidates_ref)
    for s in range(0, target_case.shape[0], chunk):
        tc = target_case[s : s + chunk]
        block = relevant[target_ref[s : s + chunk, None], safe[tc]]
        block &= ~pad[tc]
        out[s : s + chunk] = block.any(axis=1)
    return out


def ranking_metrics(
    pos_scores: FloatArray, neg_scores: FloatArray, pos_case: IntArray, n_cases: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per case: positives in the top R of the pool, the sum of reciprocal ranks, and R.

    Each positive p (score ``pos_scores[p]``) comes with its own negatives ``neg_scores[p]``.
    A case's pool is its R positives and all their negatives. R-precision of a case is
    ``top[c] / r[c]``; its mean reciprocal rank is ``rr_sum[c] / r[c]``, where a positive's rank
    is ``1 +`` the number of its own negatives scoring at least as high.
    """
    k = neg_scores.shape[1]
    rank = 1 + (neg_scores >= pos_scores[:, None]).sum(axis=1)
    rr_sum = np.bincount(pos_case, weights=1.0 / rank, minlength=n_cases)
    r = np.bincount(pos_case, minlength=n_cases).astype(np.int64)
    scores = np.concatenate([pos_scores, neg_scores.reshape(-1)])
    is_pos = np.concatenate([np.ones(pos_scores.shape[0], bool), np.zeros(neg_scores.size, bool)])
    case = np.concatenate([pos_case, np.repeat(pos_case, k)])
    order = np.lexsort((is_pos, -scores, case))  # by case, score desc, negatives first on ties
    case_sorted = case[order]
    start = np.searchsorted(case_sorted, np.arange(n_cases), "left")
    position = np.arange(order.shape[0]) - start[case_sorted]
    in_top = position < r[case_sorted]
    top = np.bincount(
        case_sorted, weights=(in_top & is_pos[order]).astype(np.float64), minlength=n_cases
    )
    return top.astype(np.float64), rr_sum.astype(np.float64), r


def mean_pairwise_diversity(vectors: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """``1 -`` mean pairwise cosine within each group of unit vectors (NaN for fewer than 2).

    Uses ``sum_{i != j} x_i . x_j = ||sum x||^2 - n`` for unit vectors, so it is O(n d).
    """
    d = vectors.shape[1] if vectors.ndim == 2 else 0
    sums = np.zeros((n_groups, d))
    order = np.argsort(group, kind="stable")
    present, first = np.unique(group[order], return_index=True)
    if present.shape[0]:
        sums[present] = np.add.reduceat(vectors[order], first, axis=0)
    n = np.bincount(group, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cos = ((sums * sums).sum(axis=1) - n) / (n * (n - 1))
    out = 1.0 - mean_cos
    out[n < 2] = np.nan
    return out


def padded_diversity(vectors_padded: npt.NDArray[np.float32], rows: IntArray) -> FloatArray:
    """Diversity of each row of ``rows`` (indices into ``vectors_padded``, -1 for padding).

    ``vectors_padded`` ends with a row of zeros, which -1 selects, so padding adds nothing.
    """
    x = vectors_padded[rows]  # (groups, width, d)
    sums = x.sum(axis=1, dtype=np.float64)
    n = (rows >= 0).sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - ((sums * sums).sum(axis=1) - n) / (n * (n - 1))
    out[n < 2] = np.nan
    return np.asarray(out, np.float64)


def bootstrap_stats(
    values: FloatArray, base: int, n_boot: int, rng: np.random.Generator, *, level: float = 0.95
) -> dict[str, FloatArray]:
    """Means, lifts over model ``base`` and paired differences, with bootstrap intervals.

    Parameters
    ----------
    values : float array of shape (n_models, n_users)
        One value per model and user (users where the metric is undefined removed beforehand).
    base : int
        Row of the reference model.
    n_boot : int
        Resamples of users (with replacement); 0 gives NaN intervals.
    rng : numpy.random.Generator

    Returns
    -------
    dict of arrays of shape (n_models,)
        ``mean``, ``lift`` (``mean / mean[base] - 1``), ``lift_low``, ``lift_high``, ``diff``
        (mean paired difference to base), ``diff_low``, ``diff_high``.
    """
    n_models, n_users = values.shape
    mean = values.mean(axis=1) if n_users else np.full(n_models, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = mean / mean[base] - 1.0
    diff = mean - mean[base]
    out = {"mean": mean, "lift": lift, "diff": diff}
    nan = np.full(n_models, np.nan)
    if n_boot <= 0 or n_users == 0:
        out.update(lift_low=nan, lift_high=nan, diff_low=nan, diff_high=nan)
        return out
    weights = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=n_boot)
    boot = (weights @ values.T) / n_users  # (n_boot, n_models)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a reference mean of 0: no lift
        boot_lift = boot / boot[:, [base]] - 1.0
        lo, hi = np.nanpercentile(boot_lift, q, axis=0)
    boot_diff = boot - boot[:, [base]]
    dlo, dhi = np.percentile(boot_diff, q, axis=0)
    out.update(lift_low=lo, lift_high=hi, diff_low=dlo, diff_high=dhi)
    return out
