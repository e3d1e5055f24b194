"""The HNSW index the paper serves from (section 6: chosen over LSH for cost, latency, recall).

A thin adapter over hnswlib, measured faster than faiss's HNSW at 1M x 64 on two cores (see
``benchmarks/retrieval.py``). The graph uses the inner-product space on L2-normalised vectors,
so ``score = 1 - distance`` is the cosine similarity. hnswlib labels are catalog rows, mapped back
to item ids (integers or strings) in one place.

Parameters (``IndexParams``): ``m`` (graph degree), ``ef_construction`` (build beam),
``ef_search`` (query beam). A query for more neighbours than ``ef_search`` searches with a beam of
``k`` (hnswlib needs ``ef >= k``; it widens the beam to ``max(ef, k)`` per query, without mutating
the shared index, so concurrent queries with different ``k`` are safe).
"""

from __future__ import annotations

import sys
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

__all__ = ["HnswIndex"]

#: Queries below this count are answered on the calling thread (no thread start-up cost).
_SERIAL_QUERIES = 16
#: Items added per hnswlib call during a build (progress granularity).
_CHUNK = 20_000


class HnswIndex(BaseIndex):
    """Approximate cosine search with an hnswlib HNSW graph."""

    kind = "hnsw"

    def __init__(self, graph: Any, **common: Any) -> None:
        super().__init__(**common)
        self._graph = graph
        self._graph.set_ef(self.params.ef_search)

    @classmethod
    def build(
        cls,
        catalog: ItemCatalog,
        params: IndexParams | None = None,
        *,
        exclude_item_ids: Collection[Any] | None = None,
        progress: bool = False,
    ) -> HnswIndex:
        """Build the graph over every catalog item (minus the refined-index filters).

        Parameters
        ----------
        catalog : ItemCatalog
        params : IndexParams, optional
            ``m``, ``ef_construction``, ``ef_search``, ``seed``, ``build_threads`` and
            ``dedupe_cosine``.
        exclude_item_ids : collection of item ids, optional
            Items left out of the index (the user-supplied filter).
        progress : bool
            Show a progress bar on stderr.
        """
        import hnswlib
        from tqdm import tqdm

        p = params if params is not None else IndexParams()
        rows, report = refine_rows(catalog, p, exclude_item_ids)
        graph = hnswlib.Index(space="ip", dim=catalog.dim)
        graph.init_index(
            max_elements=max(1, rows.shape[0]),
            ef_construction=p.ef_construction,
            M=p.m,
            random_seed=p.seed,
        )
        threads = -1 if p.build_threads is None else p.build_threads
        n = int(rows.shape[0])
        step = max(_CHUNK, -(-n // 100))
        with tqdm(
            total=n, desc="hnsw build", unit="item", disable=not progress, file=sys.stderr
        ) as bar:
            for start in range(0, n, step):
                part = rows[start : start + step]
                graph.add_items(
                    np.ascontiguousarray(catalog.vectors[part]), part, num_threads=threads
                )
                bar.update(part.shape[0])
        return cls(
            graph,
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
        threads = 1 if queries.shape[0] < _SERIAL_QUERIES else -1
        labels, distances = self._graph.knn_query(queries, k=k, num_threads=threads)
        scores = np.subtract(np.float32(1.0), distances, out=distances)  # float32, in place
        return labels.view(np.int64), scores  # labels are catalog rows (< 2**63)

    def _writers(self) -> list[tuple[str, Any]]:
        return [("hnsw.bin", lambda tmp: self._graph.save_index(str(tmp)))]

    @classmethod
    def _from_files(
        cls, folder: Path, manifest: dict[str, Any], common: dict[str, Any]
    ) -> HnswIndex:
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=int(manifest["dim"]))
        try:
            graph.load_index(str(folder / "hnsw.bin"), max_elements=0)
        except (RuntimeError, ValueError, OSError) as exc:
            raise CorruptArtifactError(f"{folder / 'hnsw.bin'} cannot be read: {exc}") from exc
        if graph.get_current_count() != manifest["count"]:
            raise CorruptArtifactError(
                f"{folder / 'hnsw.bin'} holds {graph.get_current_count()} "
                f"items; the manifest says {manifest['count']}"
            )
        return cls(graph, **common)
