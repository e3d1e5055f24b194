"""The refined index (paper section 6, Table 2: -50% cost): fewer, better items to search.

Pinterest removes near-duplicate and low-quality pins before building the HNSW index. Here the
refinement is two optional steps over the catalog rows, applied in this order:

1. a user-supplied **filter**: item ids to drop (for example low-quality items), given as a
   collection or a file of ids, one per line;
2. **near-duplicate removal**: walking the remaining rows in catalog order, a row is dropped when
   an earlier *kept* row has cosine similarity above ``IndexParams.dedupe_cosine`` with it, so
   every group of near-duplicates keeps one representative, deterministically its first row.

Near-duplicate pairs are found exactly (blockwise matrix products) for catalogs up to
``exact_below`` rows; above that, each row's ``neighbors`` nearest items from an hnswlib index are
the candidates (so a group larger than ``neighbors`` may keep a few extra members). The exact
search is the twin of the approximate one and the tests check they agree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pinnersage.errors import DataFormatError

if TYPE_CHECKING:
    from pinnersage.catalog import ItemCatalog
    from pinnersage.params import IndexParams

__all__ = ["RefineReport", "near_duplicates", "read_item_id_file", "refine_rows"]


@dataclass(frozen=True, slots=True)
class RefineReport:
    """How many catalog items the refined index left out, and why."""

    #: Items in the catalog.
    n_catalog: int
    #: Items in the index.
    n_indexed: int
    #: Dropped as near-duplicates of an earlier kept item.
    removed_duplicates: int = 0
    #: Dropped by the user-supplied filter.
    removed_filtered: int = 0
    #: Filter ids that are not in the catalog (ignored).
    unknown_filter_ids: int = 0
    #: The cosine threshold used (None: no near-duplicate removal).
    dedupe_cosine: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{self.n_indexed} of {self.n_catalog} items indexed"
        if self.dedupe_cosine is not None:
            text += (
                f"; {self.removed_duplicates} near-duplicates removed "
                f"(cosine > {self.dedupe_cosine:g})"
            )
        if self.removed_filtered or self.unknown_filter_ids:
            text += f"; {self.removed_filtered} filtered out"
            if self.unknown_filter_ids:
                text += f" ({self.unknown_filter_ids} filter ids not in the catalog, ignored)"
        return text


def read_item_id_file(path: str | Path) -> list[str]:
    """Item ids from a text file, one per line; blank lines and ``#`` comments are skipped.

    The ids are returned as strings; :meth:`ItemCatalog.rows` matches ``"42"`` to item 42 in a
    catalog of integer ids.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(f"item filter file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"item filter file {p} is not UTF-8 text: {exc}") from exc
    out = []
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip()
        if s:
            out.append(s)
    return out


def refine_rows(
    catalog: ItemCatalog, params: IndexParams, exclude_item_ids: Collection[Any] | None = None
) -> tuple[npt.NDArray[np.int64], RefineReport]:
    """The catalog rows a refined index holds, and the report of what was removed.

    Parameters
    ----------
    catalog : ItemCatalog
    params : IndexParams
        ``dedupe_cosine`` (None: keep near-duplicates), ``seed`` and ``build_threads`` for the
        approximate duplicate search.
    exclude_item_ids : collection of item ids, optional
        Items to leave out of the index; ids not in the catalog are counted and ignored.

    Returns
    -------
    rows : numpy.ndarray of shape (m,), int64
        Kept catalog rows, ascending.
    report : RefineReport
    """
    n = len(catalog)
    keep = np.ones(n, dtype=bool)
    filtered = unknown = 0
    if exclude_item_ids is not None and len(exclude_item_ids):
        found = catalog.rows(list(exclude_item_ids), missing="mask")
        unknown = int(np.count_nonzero(found < 0))
        hit = np.unique(found[found >= 0])
        keep[hit] = False
        filtered = int(hit.shape[0])
    rows = np.flatnonzero(keep).astype(np.int64)
    duplicates = 0
    if params.dedupe_cosine is not None and rows.shape[0] > 1:
        removed = near_duplicates(
            catalog.vectors[rows],
            params.dedupe_cosine,
            seed=params.seed,
            threads=params.build_threads,
        )
        duplicates = int(np.count_nonzero(removed))
        rows = rows[~removed]
    report = RefineReport(
        n_catalog=n,
        n_indexed=int(rows.shape[0]),
        removed_duplicates=duplicates,
        removed_filtered=filtered,
        unknown_filter_ids=unknown,
        dedupe_cosine=params.dedupe_cosine,
    )
    return rows, report


def near_duplicates(
    vectors: npt.NDArray[np.float32],
    threshold: float,
    *,
    neighbors: int = 32,
    exact_below: int = 20_000,
    seed: int = 0,
    threads: int | None = None,
) -> npt.NDArray[np.bool_]:
    """Rows to drop so that no two kept rows have cosine above ``threshold``.

    Greedy in row order: a row is dropped when an earlier kept row is above the threshold.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d)
        L2-normalised rows.
    threshold : float
        Cosine similarity above which two rows are near-duplicates.
    neighbors : int
        Candidates per row in the approximate search.
    exact_below : int
        Use the exact pair search when ``n`` is below this.
    seed, threads : int
        Of the hnswlib index of the approximate search.

    Returns
    -------
    numpy.ndarray of shape (n,), bool
        True for rows to drop.
    """
    n = vectors.shape[0]
    if n < exact_below:
        first, second = _pairs_exact(vectors, threshold)
    else:
        first, second = _pairs_hnsw(vectors, threshold, neighbors, seed, threads)
    return _greedy(n, first, second)


def _greedy(
    n: int, earlier: npt.NDArray[np.int64], later: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Walk rows in order; drop ``later`` when any of its ``earlier`` partners is kept."""
    removed = np.zeros(n, dtype=bool)
    if earlier.shape[0] == 0:
        return removed
    order = np.lexsort((earlier, later))
    earlier, later = earlier[order], later[order]
    starts = np.flatnonzero(np.r_[True, later[1:] != later[:-1]])
    ends = np.r_[starts[1:], later.shape[0]]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if not removed[earlier[s:e]].all():
            removed[later[s]] = True
    return removed


def _pairs_exact(
    vectors: npt.NDArray[np.float32], threshold: float, block: int = 512
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All pairs (j, i), j < i, with cosine above ``threshold`` (blockwise products)."""
    firsts, seconds = [], []
    n = vectors.shape[0]
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = vectors[s:e] @ vectors[:e].T
        i, j = np.nonzero(sims > threshold)
        i = i + s
        mask = j < i
        firsts.append(j[mask].astype(np.int64))
        seconds.append(i[mask].astype(np.int64))
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _pairs_hnsw(
    vectors: npt.NDArray[np.float32],
    threshold: float,
    neighbors: int,
    seed: int,
    threads: int | None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs (j, i), j < i, above ``threshold`` among each row's ``neighbors`` nearest rows."""
    import hnswlib

    n, d = vectors.shape
    k = min(neighbors + 1, n)
    index = hnswlib.Index(space="ip", dim=d)
    index.init_index(max_elements=n, ef_construction=100, M=16, random_seed=seed)
    nthreads = -1 if threads is None else threads
    index.add_items(vectors, np.arange(n), num_threads=nthreads)
    index.set_ef(max(64, k))
    labels, distances = index.knn_query(vectors, k=k, num_threads=nthreads)
    sims = 1.0 - distances
    rows = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)
    labels = labels.astype(np.int64)
    mask = (sims > threshold) & (labels < rows)
    return labels[mask], rows[mask]
