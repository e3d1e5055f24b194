"""The ANN index of the serving path (paper sections 3.5 and 6): k nearest items to a query vector.

PinnerSage queries an HNSW index over the item embeddings with each sampled medoid's vector. This
module holds what every index shares: the :class:`Neighbors` result (item ids and cosine scores,
higher is better), the :class:`AnnIndex` protocol that :class:`~pinnersage.retrieval.ExactIndex`
(brute force, the oracle) and :class:`~pinnersage.retrieval.HnswIndex` (hnswlib, the default)
implement, and the on-disk format.

On disk an index is a folder::

    manifest.json    format, kind, embedding_version, index_version, params, counts, and the
                     sha256 and size of every other file (written last)
    ids.npy          the item ids of the catalog the index was built from (int64 or unicode)
    rows.npy         the catalog rows that are in the index (after the refined-index filters)
    vectors.npy      (exact) the vectors of those rows
    hnsw.bin         (hnsw) the hnswlib graph; its labels are catalog rows

Every file is checked against its checksum before it is parsed (binary ANN formats have crashed
their loaders on malformed input), so a damaged file raises
:class:`~pinnersage.errors.CorruptArtifactError` and never reaches hnswlib.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pinnersage.errors import (
    ConfigError,
    CorruptArtifactError,
    DimensionMismatchError,
    EmbeddingVersionMismatchError,
    InvalidVectorsError,
)
from pinnersage.params import IndexParams

if TYPE_CHECKING:
    from pinnersage.catalog import ItemCatalog
    from pinnersage.retrieval.refine import RefineReport

__all__ = [
    "FORMAT_VERSION",
    "AnnIndex",
    "Neighbors",
    "open_index",
    "read_manifest",
    "recall_at_k",
]

#: Version of the on-disk layout; bumped on incompatible changes.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_FORMAT = "pinnersage-index"


@dataclass(frozen=True, slots=True)
class Neighbors:
    """The result of :meth:`AnnIndex.search`.

    Attributes
    ----------
    ids : numpy.ndarray of shape (q, k)
        Item ids (int64, or object holding ``str``), best first in each row.
    scores : numpy.ndarray of shape (q, k), float32
        Cosine similarity of each item to its query; higher is better.
    """

    ids: np.ndarray
    scores: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@runtime_checkable
class AnnIndex(Protocol):
    """What every index offers: build from a catalog, search, save, load.

    Scores are cosine similarities (higher is better); ``k`` larger than the number of indexed
    items returns every item (``min(k, len(index))`` columns).
    """

    #: ``"exact"`` or ``"hnsw"``.
    kind: str
    params: IndexParams
    #: The catalog's fingerprint the index was built from.
    embedding_version: str
    #: Fingerprint of the index (embeddings, kind, params and refined rows); keys the cache.
    index_version: str

    @classmethod
    def build(cls, catalog: ItemCatalog, params: IndexParams | None = None) -> AnnIndex: ...

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbors: ...

    def search_rows(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...

    def save(self, path: str | Path) -> Path: ...

    @classmethod
    def load(cls, path: str | Path, catalog: ItemCatalog | None = None) -> AnnIndex: ...

    def __len__(self) -> int: ...


# -- shared implementation ------------------------------------------------------------------------


class BaseIndex:
    """State and behaviour common to the exact and the HNSW index (not public API)."""

    kind: str = ""
    _payload: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        params: IndexParams,
        embedding_version: str,
        item_ids: np.ndarray,
        rows: npt.NDArray[np.int64],
        dim: int,
        refine: RefineReport,
        index_version: str | None = None,
    ) -> None:
        self.params = params
        self.embedding_version = embedding_version
        #: Item ids of the whole catalog (row -> id); the index holds the subset ``rows``.
        self.catalog_item_ids = item_ids
        #: Catalog rows held by the index, ascending.
        self.rows = rows
        self.dim = int(dim)
        self.refine = refine
        self.index_version = index_version or _index_version(
            self.kind, embedding_version, params, rows
        )

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, dim={self.dim}, "
            f"embedding_version={self.embedding_version!r}, "
            f"index_version={self.index_version!r})"
        )

    @property
    def item_ids(self) -> np.ndarray:
        """Ids of the indexed items (after the refined-index filters), in row order."""
        return self.catalog_item_ids[self.rows]

    # -- search ---------------------------------------------------------------------------------

    def search(self, queries: npt.ArrayLike, k: int) -> Neighbors:
        """The ``k`` nearest indexed items to each query, by cosine similarity.

        Parameters
        ----------
        queries : array-like of shape (q, d) or (d,)
            Finite, non-zero query vectors; they are L2-normalised here, so the scores are
            cosines whatever their norm. A 1-D array is one query.
        k : int
            Neighbours per query (>= 1); at most ``len(self)`` are returned.

        Returns
        -------
        Neighbors
            ``ids`` and ``scores`` of shape (q, min(k, len(self))), best first.

        Raises
        ------
        DimensionMismatchError
            The queries do not have the index's dimension.
        InvalidVectorsError
            Non-finite or zero-norm queries.
        """
        q = check_queries(queries, self.dim)
        rows, scores = self.search_rows(q, k)
        return Neighbors(self.catalog_item_ids[rows], scores)

    def search_rows(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """:meth:`search` returning catalog rows instead of ids, without checking the queries.

        For callers that hold unit-norm float32 C-contiguous queries of the right dimension
        (the recommender's hot path); ``search`` is the checked entry point.
        """
        k = check_k(k)
        k = min(k, len(self))
        if k == 0:
            return (
                np.zeros((queries.shape[0], 0), np.int64),
                np.zeros((queries.shape[0], 0), np.float32),
            )
        return self._search(queries, k)

    def _search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        raise NotImplementedError

    # -- files ----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the index to the folder ``path`` (created if needed); returns the manifest path.

        Each file is written to a temporary name and renamed into place; the manifest, which
        holds every file's checksum, is written last, so a folder without a valid manifest is
        never mistaken for an index.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, Any]] = {}
        ids = self.catalog_item_ids
        ids_out = ids if ids.dtype == np.int64 else np.array(ids.tolist(), dtype=str)
        if ids_out.dtype != np.int64 and ids_out.size == 0:
            ids_out = np.zeros(0, dtype="<U1")
        for name, writer in (
            ("ids.npy", lambda f: np.save(f, ids_out, allow_pickle=False)),
            ("rows.npy", lambda f: np.save(f, self.rows, allow_pickle=False)),
            *self._writers(),
        ):
            files[name] = _write_atomic(folder / name, writer)
        manifest = {
            "format": _FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "embedding_version": self.embedding_version,
            "index_version": self.index_version,
            "params": _params_dict(self.params),
            "dim": self.dim,
            "count": len(self),
            "catalog_count": int(ids.shape[0]),
            "id_kind": "int64" if ids.dtype == np.int64 else "str",
            "refine": self.refine.to_dict(),
            "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        _write_atomic(folder / MANIFEST, lambda tmp: tmp.write_bytes(text))
        return folder / MANIFEST

    def _writers(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    @classmethod
    def _from_files(
        cls, folder: Path, manifest: dict[str, Any], common: dict[str, Any]
    ) -> BaseIndex:
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path, catalog: ItemCatalog | None = None) -> Any:
        """Load an index saved by :meth:`save`, checking every file's checksum first.

        Parameters
        ----------
        path : str or Path
            The folder given to :meth:`save`.
        catalog : ItemCatalog, optional
            When given, its ``embedding_version`` must be the one the index was built from.

        Raises
        ------
        CorruptArtifactError
            Missing or unparsable manifest, missing file, size or checksum mismatch, or an index of
            another kind.
        EmbeddingVersionMismatchError
            ``catalog`` holds other embeddings than the index was built from.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        if cls.kind and manifest["kind"] != cls.kind:
            raise CorruptArtifactError(
                f"index in {folder} is of kind {manifest['kind']!r}, not {cls.kind!r}; "
                "use pinnersage.retrieval.open_index to load any kind"
            )
        impl = _kinds()[manifest["kind"]]
        if catalog is not None and catalog.embedding_version != manifest["embedding_version"]:
            raise EmbeddingVersionMismatchError(
                f"index in {folder} was built from embedding_version "
                f"{manifest['embedding_version']}, but the catalog has "
                f"{catalog.embedding_version}; rebuild the index (pinnersage index) for these "
                "embeddings"
            )
        for name, entry in manifest["files"].items():
            verify_file(folder / name, entry)
        from pinnersage.retrieval.refine import RefineReport

        try:
            ids = np.load(folder / "ids.npy", allow_pickle=False)
            rows = np.load(folder / "rows.npy", allow_pickle=False).astype(np.int64, copy=False)
            params = IndexParams(**manifest["params"])
            refine = RefineReport(**manifest["refine"])
        except (ValueError, TypeError, OSError) as exc:
            raise CorruptArtifactError(f"index in {folder} cannot be read: {exc}") from exc
        if ids.dtype != np.int64:
            ids = ids.astype(object)
        if (
            rows.ndim != 1
            or rows.shape[0] != manifest["count"]
            or ids.shape[0] != manifest["catalog_count"]
            or (rows.size and (rows.min() < 0 or rows.max() >= ids.shape[0]))
        ):
            raise CorruptArtifactError(
                f"index in {folder}: ids.npy/rows.npy disagree with the manifest's counts"
            )
        common = {
            "params": params,
            "embedding_version": manifest["embedding_version"],
            "item_ids": ids,
            "rows": rows,
            "dim": int(manifest["dim"]),
            "refine": refine,
            "index_version": manifest["index_version"],
        }
        return impl._from_files(folder, manifest, common)


def _kinds() -> dict[str, type[BaseIndex]]:
    from pinnersage.retrieval.exact import ExactIndex
    from pinnersage.retrieval.hnsw import HnswIndex

    return {"exact": ExactIndex, "hnsw": HnswIndex}


def open_index(path: str | Path, catalog: ItemCatalog | None = None) -> AnnIndex:
    """Load a saved index of any kind (the manifest says which).

    See :meth:`BaseIndex.load` for the checks and errors.
    """
    index: AnnIndex = BaseIndex.load(path, catalog)
    return index


# -- helpers --------------------------------------------------------------------------------------


def check_k(k: object) -> int:
    """``k`` as an int >= 1, else :class:`~pinnersage.errors.ConfigError`."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def check_queries(queries: npt.ArrayLike, dim: int) -> npt.NDArray[np.float32]:
    """Queries as an L2-normalised float32 (q, d) C-contiguous array, or a typed error."""
    try:
        x = np.asarray(queries, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorsError(f"queries must be a numeric (q, d) array: {exc}") from exc
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise InvalidVectorsError(f"queries must be a (q, d) array, got shape {x.shape}")
    if x.shape[1] != dim:
        raise DimensionMismatchError(
            f"queries have {x.shape[1]} dimensions but the index has {dim}"
        )
    finite = np.isfinite(x)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise InvalidVectorsError(f"query at row {row} is not finite")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        row = int(np.argmax(norms == 0))
        raise InvalidVectorsError(f"query at row {row} has zero norm (cosine is undefined)")
    return np.ascontiguousarray(x / norms[:, None], dtype=np.float32)


def recall_at_k(found: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Mean share of each row of ``truth`` (exact neighbours) that ``found`` also holds.

    Parameters
    ----------
    found, truth : array-like of shape (q, k)
        Ids (or rows) per query, from the index under test and from exact search.
    """
    a, b = np.asarray(found), np.asarray(truth)
    if a.shape[0] != b.shape[0]:
        raise DimensionMismatchError(f"{a.shape[0]} result rows but {b.shape[0]} truth rows")
    if b.size == 0:
        return 1.0
    hits = sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(a, b, strict=True))
    return hits / b.size


def _params_dict(params: IndexParams) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(params, f.name) for f in fields(params)}


def _index_version(
    kind: str, embedding_version: str, params: IndexParams, rows: npt.NDArray[np.int64]
) -> str:
    """16 hex characters identifying what the index returns (not how many threads built it)."""
    h = hashlib.sha256()
    relevant: dict[str, Any] = {"kind": kind, "embedding_version": embedding_version}
    if kind == "hnsw":
        relevant.update(
            m=params.m,
            ef_construction=params.ef_construction,
            ef_search=params.ef_search,
            seed=params.seed,
        )
    h.update(json.dumps(relevant, sort_keys=True).encode())
    h.update(np.ascontiguousarray(rows, dtype="<i8").tobytes())
    return h.hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, writer: Any) -> dict[str, Any]:
    """``writer(tmp_path)`` writes a temporary file beside ``path``; fsync, then rename."""
    tmp = path.with_name(".tmp-" + path.name)  # keeps the suffix (np.save appends .npy)
    writer(tmp)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def verify_file(path: Path, entry: dict[str, Any]) -> None:
    """Raise :class:`CorruptArtifactError` unless ``path`` has the recorded size and sha256."""
    if not path.exists():
        raise CorruptArtifactError(f"index file {path} is missing")
    size = path.stat().st_size
    if size != entry.get("bytes"):
        raise CorruptArtifactError(
            f"index file {path} has {size} bytes but the manifest records {entry.get('bytes')} "
            "(truncated or replaced); rebuild or restore the index"
        )
    if _sha256(path) != entry.get("sha256"):
        raise CorruptArtifactError(
            f"index file {path} fails its sha256 checksum (damaged); rebuild or restore the index"
        )


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a saved index, checked for the fields loading needs."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise CorruptArtifactError(f"{folder} holds no index: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{path} is not valid JSON: {exc}") from exc
    required = (
        "format",
        "format_version",
        "kind",
        "embedding_version",
        "index_version",
        "params",
        "dim",
        "count",
        "catalog_count",
        "refine",
        "files",
    )
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise CorruptArtifactError(f"{path} lacks the fields of an index manifest")
    if manifest["format"] != _FORMAT:
        raise CorruptArtifactError(f"{path} is not a pinnersage index manifest")
    if manifest["format_version"] != FORMAT_VERSION:
        raise CorruptArtifactError(
            f"{path} has format_version {manifest['format_version']!r}; this pinnersage reads "
            f"{FORMAT_VERSION}"
        )
    if manifest["kind"] not in ("exact", "hnsw"):
        raise CorruptArtifactError(f"{path}: unknown index kind {manifest['kind']!r}")
    if not isinstance(manifest["files"], dict) or "ids.npy" not in manifest["files"]:
        raise CorruptArtifactError(f"{path} lists no index files")
    return manifest
