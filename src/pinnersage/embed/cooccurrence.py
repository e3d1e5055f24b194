"""Co-occurrence item embeddings: PPMI over items engaged with near each other, then truncated SVD.

Items a user engaged with close together in time tend to belong to one interest, which is what
PinnerSage's Ward clustering needs the embedding to reflect (paper section 2: fixed item
embeddings). The method is the count-based word embedding of Levy, Goldberg and Dagan (2015)
applied to action histories:

1. Each user's actions are sorted by time; an item counts once per user, at its latest action
   (repeat engagements do not inflate pairs).
2. Two items co-occur when they are at most ``window`` positions apart in one user's sequence.
   The window bounds the work of a heavy user to ``2 · window`` pairs per action, so counting is
   linear in the log, never quadratic in one history, and it keeps pairs local in time (one
   interest) rather than spanning a user's whole history (many interests).
3. PPMI with context-distribution smoothing: ``max(0, log(C_ij · T / (C_i · P_α(j) · T)))`` with
   ``P_α(j) ∝ C_j^α`` (α = ``smoothing``, 0.75).
4. Truncated SVD (randomized, seeded; the algorithm of scikit-learn's ``randomized_svd`` with
   parallel sparse products), vectors ``U · sqrt(S)`` (eigenvalue weighting 0.5, the best of
   0, 0.5 and 1 on held-out Online Retail baskets), then L2-normalised by the catalog.

Items with too few interactions: items seen by fewer than ``min_users`` users are left out before
counting; items that never co-occur positively with another item (their PPMI row is empty) get no
vector either, since any vector would be noise. Both counts are in the build statistics; the
batch job treats actions on items missing from the catalog as unknown (they are skipped and
counted there). Everything is deterministic for a fixed ``seed``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from pinnersage.actions import ActionLog
from pinnersage.catalog import ItemCatalog
from pinnersage.embed import BuildResult
from pinnersage.errors import ConfigError, DataFormatError

__all__ = ["cooccurrence_counts", "cooccurrence_embeddings", "ppmi", "randomized_svd"]

#: Pairs buffered before they are folded into the sparse count matrix (bounds memory).
_FLUSH_PAIRS = 4_000_000
#: Up to this many items, a PPMI matrix denser than 2% is factorised as a dense array.
_DENSE_ITEMS = 6000


def _frame(actions: ActionLog | pd.DataFrame) -> pd.DataFrame:
    frame = actions.frame if isinstance(actions, ActionLog) else actions
    missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
    if missing:
        present = ", ".join(map(str, frame.columns))
        raise DataFormatError(
            f"actions need columns user_id, item_id (and timestamp); missing "
            f"{missing[0]!r}; columns present: {present}"
        )
    return frame


def _sequences(
    frame: pd.DataFrame, min_users: int
) -> tuple[np.ndarray, npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, Any]]:
    """Item ids (sorted) and the deduplicated, time-ordered (user code, item code) sequence."""
    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    user_codes, _ = pd.factorize(frame["user_id"], sort=False)
    n_items = len(item_ids)
    ts = (
        frame["timestamp"].to_numpy(dtype=np.int64)
        if "timestamp" in frame.columns
        else np.arange(len(frame), dtype=np.int64)
    )
    order = np.lexsort((ts, user_codes))  # stable: ties keep file order
    users = user_codes[order].astype(np.int64)
    items = item_codes[order].astype(np.int64)
    # an item counts once per user, at its latest action
    key = users * n_items + items
    _, last_rev = np.unique(key[::-1], return_index=True)
    keep = np.sort(len(key) - 1 - last_rev)
    users, items = users[keep], items[keep]
    stats: dict[str, Any] = {
        "actions": len(frame),
        "user_item_pairs": len(users),
        "items_in_log": n_items,
    }
    if min_users > 1:
        per_item = np.bincount(items, minlength=n_items)
        ok = per_item[items] >= min_users
        stats["items_below_min_users"] = int((per_item[(per_item > 0)] < min_users).sum())
        users, items = users[ok], items[ok]
    return np.asarray(item_ids, dtype=object), users, items, stats


def cooccurrence_counts(
    users: npt.NDArray[np.int64], items: npt.NDArray[np.int64], n_items: int, window: int
) -> sp.csr_matrix:
    """Symmetric item-item counts of items at most ``window`` positions apart in one user's
    sequence.

    Parameters
    ----------
    users, items : numpy.ndarray of shape (n,), int64
        The sequence, grouped by user (contiguous) and in time order within a user.
    n_items : int
        Number of item codes.
    window : int
        Largest position gap that counts as co-occurrence.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), float64
    """
    n = len(users)
    if n == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    # position i pairs with positions i+1 .. i+L_i of the same user (L_i <= window)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    run_end = np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))
    lengths = np.minimum(window, run_end - np.arange(n) - 1).astype(np.int64)
    cum = np.cumsum(lengths)
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    lo = 0
    # Chunks of positions holding about _FLUSH_PAIRS pairs each bound the memory. Within a chunk
    # the counts are a sparse product P^T (A P): rows of A P hold the items following a position,
    # P^T sums them per item; scipy's product accumulates without sorting, in O(pairs).
    while lo < n:
        base = int(cum[lo - 1]) if lo else 0
        hi = min(n, max(lo + 1, int(np.searchsorted(cum, base + _FLUSH_PAIRS, side="right"))))
        lens = lengths[lo:hi]
        m = int(lens.sum())
        if m:
            indptr = np.r_[0, np.cumsum(lens)]
            row_of = np.repeat(np.arange(hi - lo), lens)
            offset = np.arange(m) - indptr[row_of] + 1
            following = sp.csr_matrix(
                (np.ones(m, dtype=np.float32), items[lo + row_of + offset], indptr),
                shape=(hi - lo, n_items),
            )
            owner = sp.csr_matrix(
                (np.ones(hi - lo, dtype=np.float32), (items[lo:hi], np.arange(hi - lo))),
                shape=(n_items, hi - lo),
            )
            counts = counts + owner @ following
        lo = hi
    counts = sp.csr_matrix(counts, dtype=np.float64)
    counts = counts + counts.T
    return sp.csr_matrix(counts)


def ppmi(counts: sp.csr_matrix, smoothing: float = 0.75) -> sp.csr_matrix:
    """Positive pointwise mutual information of a symmetric count matrix.

    ``max(0, log(C_ij · T / (C_i · T · P_α(j))))`` with ``P_α(j) = C_j^α / Σ C^α``, T the total.
    Zero entries stay zero (the matrix stays sparse).
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    row = np.asarray(counts.sum(axis=1)).ravel()
    col = np.asarray(counts.sum(axis=0)).ravel()
    total = row.sum()
    if total == 0:
        return counts.copy()
    ctx = np.power(col, smoothing)
    ctx /= ctx.sum()
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    pmi = np.log(counts.data) - np.log(row[rows]) - np.log(ctx[counts.indices])
    out = sp.csr_matrix(
        (np.maximum(pmi, 0.0), counts.indices.copy(), counts.indptr.copy()), shape=counts.shape
    )
    out.eliminate_zeros()
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _csr_times_dense(
    indptr: npt.NDArray[np.int32],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.float32],
    x: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32],
) -> None:  # pragma: no cover
    # scipy's sparse @ dense is single-threaded; rows in parallel here (2x on 2 cores)
    n = indptr.shape[0] - 1
    k = x.shape[1]
    for i in numba.prange(n):
        acc = np.zeros(k, np.float32)
        for j in range(indptr[i], indptr[i + 1]):
            v = data[j]
            r = indices[j]
            for c in range(k):
                acc[c] += v * x[r, c]
        out[i] = acc


def _product(m: sp.csr_matrix) -> Any:
    indptr = m.indptr.astype(np.int32, copy=False)
    indices = m.indices.astype(np.int32, copy=False)
    data = m.data.astype(np.float32, copy=False)

    def times(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.empty((m.shape[0], x.shape[1]), dtype=np.float32)
        _csr_times_dense(indptr, indices, data, np.ascontiguousarray(x, dtype=np.float32), out)
        return out

    return times


def randomized_svd(
    m: sp.csr_matrix | npt.NDArray[np.float32],
    k: int,
    *,
    n_iter: int = 4,
    seed: int = 0,
    oversamples: int = 10,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Top ``k`` left singular vectors and values of ``m`` (Halko, Martinsson, Tropp 2011).

    The algorithm of scikit-learn's ``randomized_svd`` (LU-normalised power iterations, QR,
    SVD of the small projection), with the sparse products in parallel (numba) and float32.
    Its slow twin is the exact SVD (parity test in ``tests/test_embed.py``).

    Returns
    -------
    u : numpy.ndarray of shape (n, k), float32
    s : numpy.ndarray of shape (k,), float32, descending
    """
    import scipy.linalg as la

    n_rows, n_cols = m.shape
    if sp.issparse(m):
        times, times_t = _product(sp.csr_matrix(m)), _product(sp.csr_matrix(m.T))
    else:
        dense = np.ascontiguousarray(m, dtype=np.float32)
        dense_t = np.ascontiguousarray(dense.T)

        def times(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return dense @ x

        def times_t(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return dense_t @ x

    from threadpoolctl import threadpool_limits

    # The tall-skinny LU/QR/SVD are small; multi-threaded OpenBLAS slows them down 10-25x on a
    # busy 2-core machine (measured), so they run on one thread.
    def lu(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with threadpool_limits(limits=1, user_api="blas"):
            return la.lu(x, permute_l=True)[0]

    width = min(k + oversamples, n_rows, n_cols)
    rng = np.random.default_rng(seed)
    q = times(rng.standard_normal((n_cols, width), dtype=np.float32))
    for _ in range(n_iter):
        q = times(lu(times_t(lu(q))))
    with threadpool_limits(limits=1, user_api="blas"):
        q = np.linalg.qr(q)[0]
    b = times_t(q).T  # (width, n_cols) = Q^T M
    with threadpool_limits(limits=1, user_api="blas"):
        u_small, s, _ = la.svd(b, full_matrices=False)
        u = q @ u_small[:, :k]
    # a fixed sign per column (largest entry positive) makes the output reproducible
    signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    signs[signs == 0] = 1
    return (u * signs).astype(np.float32), s[:k].astype(np.float32)


def _check(name: str, value: Any, low: float, integer: bool = True) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad or value < low:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} >= {low:g}, got {value!r}")


def cooccurrence_embeddings(
    actions: ActionLog | pd.DataFrame,
    *,
    dim: int = 64,
    window: int = 50,
    min_users: int = 1,
    smoothing: float = 0.75,
    seed: int = 0,
    n_iter: int = 4,
    metadata: pd.DataFrame | None = None,
) -> BuildResult:
    """Item embeddings from co-occurrence in action histories (PPMI + truncated SVD).

    Parameters
    ----------
    actions : ActionLog or pandas.DataFrame
        Columns ``user_id``, ``item_id`` and ``timestamp`` (order within a user; without it,
        row order is used).
    dim : int
        Dimensions d (fewer when there are fewer items than ``dim``).
    window : int
        Items at most this many positions apart in a user's time-ordered sequence co-occur;
        bounds the work per action (see the module docstring).
    min_users : int
        Items engaged by fewer distinct users get no vector.
    smoothing : float
        Context-distribution smoothing exponent α of PPMI (1 disables it).
    seed : int
        Seed of the randomized SVD.
    n_iter : int
        Power iterations of the randomized SVD (more: closer to the exact SVD).
    metadata : pandas.DataFrame, optional
        Items metadata (``item_id`` and any of title, image_url, category) for the catalog.

    Returns
    -------
    BuildResult
        The catalog (items sorted by id) and statistics: actions, items_in_log, items_embedded,
        items_isolated, items_below_min_users, nonzero_pairs, dim, seconds.

    Raises
    ------
    ConfigError
        A parameter is out of range.
    DataFormatError
        Missing columns, or fewer than two items co-occur.
    """
    _check("dim", dim, 1)
    _check("window", window, 1)
    _check("min_users", min_users, 1)
    _check("seed", seed, 0)
    _check("n_iter", n_iter, 0)
    _check("smoothing", smoothing, 0, integer=False)
    t0 = time.perf_counter()
    frame = _frame(actions)
    item_ids, users, items, stats = _sequences(frame, min_users)
    counts = cooccurrence_counts(users, items, len(item_ids), window)
    t_counts = time.perf_counter() - t0
    weights = ppmi(counts, smoothing)
    has_row = np.diff(weights.indptr) > 0
    present = np.zeros(len(item_ids), dtype=bool)
    present[items] = True
    stats["items_isolated"] = int((present & ~has_row).sum())
    kept = np.flatnonzero(has_row)
    if len(kept) < 2:
        raise DataFormatError(
            f"co-occurrence embeddings need at least two items that co-occur in some user's "
            f"history; {len(kept)} do ({stats['actions']} actions, window {window})"
        )
    # float32 halves the work of the products; plenty for item vectors
    m: Any = weights[kept][:, kept].astype(np.float32)
    k = min(dim, len(kept))
    if len(kept) <= _DENSE_ITEMS and m.nnz > 0.02 * len(kept) ** 2:
        m = m.toarray()  # dense BLAS beats sparse products on dense counts
    u, s = randomized_svd(m, k, n_iter=n_iter, seed=seed)
    vectors = u.astype(np.float64) * np.sqrt(s.astype(np.float64))[None, :]
    norms = np.linalg.norm(vectors, axis=1)
    inside = norms > 1e-12  # a row outside the top-k subspace has no direction
    stats["items_outside_subspace"] = int((~inside).sum())
    catalog = ItemCatalog.from_arrays(item_ids[kept][inside], vectors[inside], metadata)
    stats.update(
        {
            "items_embedded": len(catalog),
            "nonzero_pairs": int(counts.nnz),
            "dim": k,
            "window": window,
            "min_users": min_users,
            "smoothing": smoothing,
            "seed": seed,
            "seconds_counting": round(t_counts, 3),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    )
    return BuildResult(catalog, stats)


# -- command line ---------------------------------------------------------------------------------


def run_cli(args: argparse.Namespace, config: Any) -> BuildResult:
    """Build from the parsed flags of ``pinnersage embed cooccurrence``."""
    from pinnersage.embed._flags import read_log_and_items

    log, meta = read_log_and_items(args, config)
    return cooccurrence_embeddings(
        log,
        dim=args.dim,
        window=args.window,
        min_users=args.min_users,
        smoothing=args.smoothing,
        seed=args.seed,
        metadata=meta,
    )
