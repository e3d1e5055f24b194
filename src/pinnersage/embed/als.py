"""ALS item embeddings: implicit-feedback matrix factorisation of the user-item matrix.

A fixed item embedding for PinnerSage (paper section 2) from who engaged with what: the
weighted-regularised ALS of Hu, Koren and Volinsky (2008), as in the ``implicit`` library, solved
with a few conjugate-gradient steps per row (Takács et al. 2011), in numba over all cores. The
confidence of an observed (user, item) pair is ``1 + alpha · log1p(count)``; unobserved pairs have
confidence 1 and preference 0. The item factors are the item vectors (L2-normalised by the
catalog). Items engaged by fewer than ``min_users`` users get no vector. Deterministic for a fixed
``seed``.
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

__all__ = ["als_embeddings"]


@numba.njit(cache=True, inline="always", fastmath=True)
def _matvec(
    a: npt.NDArray[np.float64], v: npt.NDArray[np.float64], out: npt.NDArray[np.float64]
) -> None:  # pragma: no cover
    # explicit loops: numba's ``@`` calls BLAS, whose own threads oversubscribe the prange ones
    k = v.shape[0]
    for i in range(k):
        acc = 0.0
        for j in range(k):
            acc += a[i, j] * v[j]
        out[i] = acc


@numba.njit(parallel=True, cache=True, fastmath=True)
def _cg_sweep(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int64],
    conf: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    yty: npt.NDArray[np.float64],
    steps: int,
) -> None:  # pragma: no cover
    n, k = x.shape
    for u in numba.prange(n):
        lo, hi = indptr[u], indptr[u + 1]
        xu = x[u].copy()
        r = np.empty(k)
        ap = np.empty(k)
        _matvec(yty, xu, r)
        for c in range(k):
            r[c] = -r[c]
        for j in range(lo, hi):
            yi = y[indices[j]]
            cf = conf[j]
            d = 0.0
            for c in range(k):
                d += yi[c] * xu[c]
            w = cf - (cf - 1.0) * d
            for c in range(k):
                r[c] += w * yi[c]
        p = r.copy()
        rs_old = 0.0
        for c in range(k):
            rs_old += r[c] * r[c]
        if rs_old < 1e-20:
            continue
        for _ in range(steps):
            _matvec(yty, p, ap)
            for j in range(lo, hi):
                yi = y[indices[j]]
                d = 0.0
                for c in range(k):
                    d += yi[c] * p[c]
                w = (conf[j] - 1.0) * d
                for c in range(k):
                    ap[c] += w * yi[c]
            denom = 0.0
            for c in range(k):
                denom += p[c] * ap[c]
            if denom <= 0.0:
                break
            a = rs_old / denom
            rs_new = 0.0
            for c in range(k):
                xu[c] += a * p[c]
                r[c] -= a * ap[c]
                rs_new += r[c] * r[c]
            if rs_new < 1e-20:
                break
            beta = rs_new / rs_old
            for c in range(k):
                p[c] = r[c] + beta * p[c]
            rs_old = rs_new
        x[u] = xu


def _check(name: str, value: Any, low: float, integer: bool = True) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad or value < low:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} >= {low:g}, got {value!r}")


def als_embeddings(
    actions: ActionLog | pd.DataFrame,
    *,
    dim: int = 64,
    iterations: int = 15,
    regularization: float = 0.05,
    alpha: float = 10.0,
    min_users: int = 1,
    cg_steps: int = 3,
    seed: int = 0,
    metadata: pd.DataFrame | None = None,
) -> BuildResult:
    """Item factors of implicit-feedback ALS over the user-item matrix.

    Parameters
    ----------
    actions : ActionLog or pandas.DataFrame
        Columns ``user_id`` and ``item_id``; repeated pairs raise the confidence.
    dim : int
        Number of factors d.
    iterations : int
        Alternating sweeps (users, then items).
    regularization : float
        L2 regularisation λ.
    alpha : float
        Confidence slope: ``1 + alpha · log1p(count)``.
    min_users : int
        Items engaged by fewer distinct users get no vector.
    cg_steps : int
        Conjugate-gradient steps per row and sweep.
    seed : int
        Seed of the initial factors.
    metadata : pandas.DataFrame, optional
        Items metadata joined into the catalog.

    Returns
    -------
    BuildResult
        Catalog (items sorted by id) and statistics.
    """
    _check("dim", dim, 1)
    _check("iterations", iterations, 1)
    _check("min_users", min_users, 1)
    _check("cg_steps", cg_steps, 1)
    _check("seed", seed, 0)
    _check("regularization", regularization, 0, integer=False)
    _check("alpha", alpha, 0, integer=False)
    frame = actions.frame if isinstance(actions, ActionLog) else actions
    for col in ("user_id", "item_id"):
        if col not in frame.columns:
            raise DataFormatError(
                f"actions need column {col!r}; columns present: "
                f"{', '.join(map(str, frame.columns))}"
            )
    t0 = time.perf_counter()
    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    user_codes, _ = pd.factorize(frame["user_id"], sort=True)
    n_users, n_items = int(user_codes.max()) + 1 if len(frame) else 0, len(item_ids)
    counts = sp.csr_matrix(
        (np.ones(len(frame)), (user_codes, item_codes)), shape=(n_users, n_items)
    )
    counts.sum_duplicates()
    per_item = np.diff(counts.tocsc().indptr)
    kept = np.flatnonzero(per_item >= min_users)
    if len(kept) < 2:
        raise DataFormatError(
            f"ALS needs at least two items with >= {min_users} users; {len(kept)} have"
        )
    counts = counts[:, kept]
    counts = counts[np.diff(counts.indptr) > 0]
    conf_ui = counts.copy()
    conf_ui.data = 1.0 + alpha * np.log1p(conf_ui.data)
    conf_iu = sp.csr_matrix(conf_ui.T)
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.01, size=(conf_ui.shape[0], dim))
    y = rng.normal(scale=0.01, size=(conf_ui.shape[1], dim))
    eye = regularization * np.eye(dim)
    ui = (
        conf_ui.indptr.astype(np.int64),
        conf_ui.indices.astype(np.int64),
        conf_ui.data.astype(np.float64),
    )
    iu = (
        conf_iu.indptr.astype(np.int64),
        conf_iu.indices.astype(np.int64),
        conf_iu.data.astype(np.float64),
    )
    for _ in range(iterations):
        _cg_sweep(*ui, x, y, y.T @ y + eye, cg_steps)
        _cg_sweep(*iu, y, x, x.T @ x + eye, cg_steps)
    norms = np.linalg.norm(y, axis=1)
    inside = norms > 1e-12
    catalog = ItemCatalog.from_arrays(
        np.asarray(item_ids, dtype=object)[kept][inside], y[inside], metadata
    )
    stats = {
        "actions": len(frame),
        "users": int(conf_ui.shape[0]),
        "items_in_log": n_items,
        "items_below_min_users": int(n_items - len(kept)),
        "items_embedded": len(catalog),
        "dim": dim,
        "iterations": iterations,
        "regularization": regularization,
        "alpha": alpha,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return BuildResult(catalog, stats)


def run_cli(args: argparse.Namespace, config: Any) -> BuildResult:
    """Build from the parsed flags of ``pinnersage embed als``."""
    from pinnersage.embed._flags import read_log_and_items

    log, meta = read_log_and_items(args, config)
    return als_embeddings(
        log,
        dim=args.dim,
        iterations=args.iterations,
        regularization=args.regularization,
        alpha=args.alpha,
        min_users=args.min_users,
        seed=args.seed,
        metadata=meta,
    )
