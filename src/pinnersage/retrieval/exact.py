"""Exact nearest-neighbour search: the brute-force oracle of the HNSW index (paper section 6).

Cosine similarity is a matrix product on L2-normalised vectors; the ``k`` best of each query come
from ``numpy.argpartition`` and a sort. Ties are broken by catalog row, so results are
deterministic. It is the slow twin every approximate index is tested against, and a fine index for
catalogs of up to a few hundred thousand items.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pinnersage.errors import CorruptArtifactError
from pinnersage.params import IndexParams
from pinnersage.retrieval.index import BaseIndex
from pinnersage.retrieval.refine import refine_rows

if TYPE_CHECKING:
    from pinnersage.catalog import ItemCatalog

__all__ = ["ExactIndex"]

#: Scores held at once per matrix product (queries x items), about 128 MB of float32.
_SCORES_PER_BLOCK = 1 << 25


class ExactIndex(BaseIndex):
    """Brute-force cosine search over the (refined) catalog vectors."""

    kind = "exact"

    def __init__(self, vectors: npt.NDArray[np.float32], **common: Any) -> None:
        super().__init__(**common)
        self._vectors = vectors

    @classmethod
    def build(
        cls,
        catalog: ItemCatalog,
        params: IndexParams | None = None,
        *,
        exclude_item_ids: Collection[Any] | None = None,
    ) -> ExactIndex:
        """Index every catalog item (minus the refined-index filters).

        Parameters
        ----------
        catalog : ItemCatalog
        params : IndexParams, optional
            Only ``dedupe_cosine`` matters here (the refined index).
        exclude_item_ids : collection of item ids, optional
            Items left out of the index (the user-supplied filter).
        """
        p = params if params is not None else IndexParams(kind="exact")
        rows, report = refine_rows(catalog, p, exclude_item_ids)
        vectors = np.ascontiguousarray(catalog.vectors[rows], dtype=np.float32)
        return cls(
            vectors,
            params=p,
            embedding_version=catalog.embedding_version,
            item_ids=catalog.item_ids,
            rows=rows,
            dim=catalog.dim,
            refine=report,
        )

    def _search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        q = queries.shape[0]
        n = len(self)
        out_rows = np.empty((q, k), np.int64)
        out_scores = np.empty((q, k), np.float32)
        block = max(1, min(256, _SCORES_PER_BLOCK // max(n, 1)))
        for s in range(0, q, block):
            e = min(q, s + block)
            sims = queries[s:e] @ self._vectors.T
            if k < n:
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(n), (e - s, n))
            top_scores = np.take_along_axis(sims, top, axis=1)
            # best first; ties by position (= catalog row order)
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            out_rows[s:e] = self.rows[top]
            out_scores[s:e] = np.take_along_axis(top_scores, order, axis=1)
        return out_rows, out_scores

    def _writers(self) -> list[tuple[str, Any]]:
        return [("vectors.npy", lambda tmp: np.save(tmp, self._vectors, allow_pickle=False))]

    @classmethod
    def _from_files(
        cls, folder: Path, manifest: dict[str, Any], common: dict[str, Any]
    ) -> ExactIndex:
        try:
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CorruptArtifactError(f"index in {folder} cannot be read: {exc}") from exc
        if vectors.dtype != np.float32 or vectors.shape != (manifest["count"], manifest["dim"]):
            raise CorruptArtifactError(
                f"{folder / 'vectors.npy'} has shape {vectors.shape} "
                f"and dtype {vectors.dtype}; the manifest says "
                f"({manifest['count']}, {manifest['dim']}) float32"
            )
        return cls(np.ascontiguousarray(vectors), **common)
