"""The item catalog: the fixed item embeddings PinnerSage clusters and retrieves (paper section 2).

PinnerSage treats item embeddings as given (the paper uses PinSage vectors unchanged). The catalog
is the one place where item ids meet rows: it maps ids (integers or strings) to rows of an
L2-normalised float32 matrix, validates the vectors once (finite, one dimension, non-zero norm,
unique ids), and fingerprints them as an ``embedding_version`` that every artefact built from them
(index, profiles, cache entries) records.

File formats read by :meth:`ItemCatalog.load`:

* **parquet** (``.parquet``/``.pq``): an id column (``item_id``) and a vector column (``vector``,
  a list or fixed-size list of floats), both renameable; or, without a vector column, one numeric
  column per dimension.
* **npy** (``.npy``): an ``(n, d)`` array, with the ids one per line in a text file given by
  ``ids=`` or found beside it: ``vectors.npy`` -> ``vectors.ids.txt`` (or ``vectors.ids``).
* **CSV** (``.csv``, ``.csv.gz``, ``.tsv``): the id column and either one numeric column per
  dimension or a vector column holding ``[0.1, 0.2, ...]`` (commas, semicolons or spaces).

Columns ``title``, ``image_url`` and ``category`` found in the embeddings file, or in an optional
items file (``items=``, parquet or CSV with the id column and any of those), become display
metadata.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pinnersage._hash import row_table, table_rows
from pinnersage.errors import (
    DataFormatError,
    DimensionMismatchError,
    InvalidVectorsError,
    UnknownItemError,
)

__all__ = ["METADATA_COLUMNS", "ItemCatalog", "normalize_ids"]

#: Columns of an items file that the catalog keeps for display.
METADATA_COLUMNS: tuple[str, ...] = ("title", "image_url", "category")

#: Rows whose norm is within this of 1 are already unit vectors and are kept bit for bit, so that
#: saving and loading a catalog keeps its ``embedding_version``.
_UNIT_TOLERANCE = 1e-6

_BLOCK = 65536

_INT_RE = re.compile(r"^[+-]?\d+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _display(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def normalize_ids(
    values: npt.ArrayLike | pd.Series, *, what: str = "item id", source: str = ""
) -> np.ndarray:
    """Ids as int64 when every one is an integer, else as an object array of str.

    Integer columns (and float columns holding only whole numbers, as CSV readers produce when a
    column has gaps) become int64; strings stay strings, even when they look like numbers.
    Booleans, missing values and other types raise :class:`DataFormatError` naming the row.

    Parameters
    ----------
    values : array-like of shape (n,)
        The raw ids.
    what : str
        Name used in error messages.
    source : str
        File name used in error messages (may be empty).

    Returns
    -------
    numpy.ndarray of shape (n,)
        int64, or object holding ``str``.
    """
    where = f" in {source}" if source else ""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object if values.dtype.kind not in "iuf" else None)
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise DataFormatError(f"{what}s{where} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise DataFormatError(f"{what}s{where} do not fit in int64")
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr)) if arr.size else np.zeros(0, bool)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(
                f"{what}{where} at row {row} is {arr[row]!r}: ids must be integers or strings"
            )
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise DataFormatError(f"{what}s{where} must be integers or strings, got booleans")
    if arr.dtype.kind in "US":
        out = np.empty(arr.shape[0], dtype=object)
        out[:] = [str(v) for v in arr.tolist()]
        return out
    # object (or pandas string) arrays: check element by element
    items = arr.tolist()
    all_int = True
    for row, v in enumerate(items):
        if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
            raise DataFormatError(f"{what}{where} at row {row} is missing")
        if isinstance(v, bool | np.bool_):
            raise DataFormatError(
                f"{what}{where} at row {row} is {v!r}: ids must be integers or strings"
            )
        if not isinstance(v, int | np.integer):
            all_int = False
            if not isinstance(v, str):
                raise DataFormatError(
                    f"{what}{where} at row {row} is {v!r} "
                    f"({type(v).__name__}): ids must be integers or strings"
                )
    if all_int:
        return np.asarray(items, dtype=np.int64).reshape(-1)
    out = np.empty(len(items), dtype=object)
    out[:] = [v if isinstance(v, str) else str(v) for v in items]
    return out


def _fingerprint(item_ids: np.ndarray, vectors: npt.NDArray[np.float32]) -> str:
    h = hashlib.sha256()
    if item_ids.dtype == np.int64:
        h.update(b"int64\0")
        h.update(np.ascontiguousarray(item_ids, dtype="<i8").data.cast("B"))
    else:
        h.update(b"str\0")
        for s in item_ids:
            b = s.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    h.update(np.array(vectors.shape, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(vectors, dtype="<f4").data.cast("B"))
    return h.hexdigest()[:16]


def _check_vectors(
    vectors: npt.ArrayLike, item_ids: np.ndarray, source: str
) -> npt.NDArray[np.float32]:
    where = f" in {source}" if source else ""
    try:
        x = np.asarray(vectors)
        if x.dtype.kind not in "fiu":
            x = x.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorsError(
            f"vectors{where} must be a numeric (n, d) array (ragged rows?): {exc}"
        ) from exc
    if x.ndim != 2:
        raise InvalidVectorsError(f"vectors{where} must be a 2-D (n, d) array, got shape {x.shape}")
    if x.shape[0] != item_ids.shape[0]:
        raise DimensionMismatchError(
            f"{x.shape[0]} vectors but {item_ids.shape[0]} item ids{where}"
        )
    if x.shape[0] and x.shape[1] == 0:
        raise InvalidVectorsError(
            f"vectors{where} must have at least one dimension, got shape {x.shape}"
        )
    out = np.empty(x.shape, dtype=np.float32)
    # in blocks of rows: bounded extra memory and cache-friendly for millions of items
    for lo in range(0, x.shape[0], _BLOCK):
        block = np.asarray(x[lo : lo + _BLOCK], dtype=np.float64)
        finite = np.isfinite(block)
        if not finite.all():
            r, col = (int(v) for v in np.argwhere(~finite)[0])
            row = lo + r
            raise InvalidVectorsError(
                f"vector of item {_display(item_ids[row])} at row {row}{where} is not finite: "
                f"dimension {col} is {block[r, col]}"
            )
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        zero = norms == 0
        if zero.any():
            row = lo + int(np.argmax(zero))
            raise InvalidVectorsError(
                f"vector of item {_display(item_ids[row])} at row {row}{where} has zero norm "
                "and cannot be L2-normalised"
            )
        scale = np.where(np.abs(norms - 1.0) > _UNIT_TOLERANCE, norms, 1.0)
        np.divide(block, scale[:, None], out=out[lo : lo + _BLOCK], casting="same_kind")
    out.flags.writeable = False
    return out


class ItemCatalog:
    """Item ids mapped to rows of validated, L2-normalised float32 vectors.

    Build one with :meth:`from_arrays` or :meth:`load`; it is immutable afterwards.

    Attributes
    ----------
    item_ids : numpy.ndarray of shape (n,)
        int64 if every id is an integer, else object holding ``str``.
    vectors : numpy.ndarray of shape (n, d)
        float32, L2-normalised, C-contiguous, read-only.
    embedding_version : str
        16 hex characters of sha256 over the ids and the vector bytes.
    metadata : pandas.DataFrame or None
        One row per catalog row (same order), columns among ``title``, ``image_url``,
        ``category``.
    """

    __slots__ = ("_index", "_row_table", "embedding_version", "item_ids", "metadata", "vectors")

    item_ids: np.ndarray
    vectors: npt.NDArray[np.float32]
    embedding_version: str
    metadata: pd.DataFrame | None

    def __init__(
        self,
        item_ids: np.ndarray,
        vectors: npt.NDArray[np.float32],
        metadata: pd.DataFrame | None,
        index: pd.Index,
    ) -> None:
        # Private: use from_arrays or load, which validate.
        self.item_ids = item_ids
        self.vectors = vectors
        self.metadata = metadata
        self._index = index
        self._row_table: npt.NDArray[np.int64] | None = None
        self.embedding_version = _fingerprint(item_ids, vectors)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled for worker processes (batch job): restore without re-validating, read-only
        return (_restore, (self.item_ids, self.vectors, self.metadata, self.embedding_version))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        item_ids: npt.ArrayLike | Sequence[Any],
        vectors: npt.ArrayLike,
        metadata: pd.DataFrame | None = None,
        *,
        source: str = "",
    ) -> ItemCatalog:
        """Validate, L2-normalise and index item vectors.

        Parameters
        ----------
        item_ids : array-like of shape (n,)
            Unique ids, integers or strings (mixed ids become strings).
        vectors : array-like of shape (n, d)
            Finite, non-zero rows; stored L2-normalised as float32.
        metadata : pandas.DataFrame, optional
            Display metadata: with an ``item_id`` column it is joined by id (extra rows ignored,
            missing items get missing values); without one it must have one row per item, in order.
            Only ``title``, ``image_url`` and ``category`` are kept.
        source : str, optional
            File name quoted in error messages.

        Raises
        ------
        DataFormatError
            Missing or duplicate ids (the message names both rows).
        InvalidVectorsError
            Non-finite values, zero norm, or not a 2-D array (the message names row and item).
        DimensionMismatchError
            Different numbers of ids and vectors.
        """
        ids = normalize_ids(
            np.asarray(item_ids, dtype=object)
            if not isinstance(item_ids, np.ndarray)
            else item_ids,
            source=source,
        )
        x = _check_vectors(vectors, ids, source)
        index = pd.Index(ids, dtype=np.int64 if ids.dtype == np.int64 else object)
        if not index.is_unique:
            dup = index.duplicated(keep="first")
            second = int(np.argmax(dup))
            first = int(np.argmax(index == ids[second]))
            where = f" in {source}" if source else ""
            raise DataFormatError(
                f"duplicate item id {_display(ids[second])}{where}: rows {first} "
                f"and {second}; ids must be unique"
            )
        ids.flags.writeable = False
        meta = cls._align_metadata(metadata, ids, index) if metadata is not None else None
        return cls(ids, x, meta, index)

    @staticmethod
    def _align_metadata(
        metadata: pd.DataFrame, ids: np.ndarray, index: pd.Index, id_col: str = "item_id"
    ) -> pd.DataFrame | None:
        keep = [c for c in METADATA_COLUMNS if c in metadata.columns]
        if not keep:
            return None
        if id_col in metadata.columns:
            meta_ids = _coerce_keys(
                normalize_ids(metadata[id_col], what="items-file id"), ids.dtype == np.int64
            )
            rows = index.get_indexer(pd.Index(meta_ids))
            ok = rows >= 0
            out = pd.DataFrame(index=pd.RangeIndex(len(ids)), columns=keep, dtype=object)
            src = metadata[keep].to_numpy(dtype=object)[ok]
            # first occurrence wins when the items file repeats an id
            target = rows[ok]
            _, first = np.unique(target, return_index=True)
            out.iloc[target[first], :] = src[first]
        else:
            if len(metadata) != len(ids):
                raise DimensionMismatchError(
                    f"metadata has {len(metadata)} rows but the catalog has {len(ids)} items; "
                    "give an item_id column to join by id"
                )
            out = metadata[keep].reset_index(drop=True).astype(object)
        return out.where(pd.notna(out), None)

    # -- lookups ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.item_ids.shape[0])

    def __contains__(self, item_id: object) -> bool:
        return bool(self.rows([item_id], missing="mask")[0] >= 0)

    def __repr__(self) -> str:
        return (
            f"ItemCatalog(n={len(self)}, dim={self.dim}, "
            f"embedding_version={self.embedding_version!r})"
        )

    @property
    def dim(self) -> int:
        """Number of dimensions d of the vectors."""
        return int(self.vectors.shape[1])

    @property
    def int_ids(self) -> bool:
        """True when the ids are int64, False when they are strings."""
        return bool(self.item_ids.dtype == np.int64)

    def rows(
        self, item_ids: Iterable[Any] | np.ndarray, *, missing: Literal["raise", "mask"] = "raise"
    ) -> npt.NDArray[np.int64]:
        """Rows of ``item_ids`` in :attr:`vectors`.

        Keys are matched after conversion to the catalog's id kind: ``"42"`` finds item 42 in a
        catalog of integer ids, and ``42`` finds ``"42"`` in a catalog of string ids.

        Parameters
        ----------
        item_ids : iterable of ids
        missing : {"raise", "mask"}
            Unknown ids raise :class:`UnknownItemError` (default) or give row -1.

        Returns
        -------
        numpy.ndarray of shape (q,), int64
        """
        if isinstance(item_ids, np.ndarray):
            keys = item_ids
        else:
            listed = list(item_ids)
            keys = np.empty(len(listed), dtype=object)
            keys[:] = listed
        keys = keys.reshape(-1)
        coerced = _coerce_keys(keys, self.int_ids)
        out = self._index.get_indexer(pd.Index(coerced)).astype(np.int64, copy=False)
        if missing == "raise" and (out < 0).any():
            pos = int(np.argmax(out < 0))
            n_bad = int((out < 0).sum())
            more = f" (and {n_bad - 1} more)" if n_bad > 1 else ""
            raise UnknownItemError(
                f"item {_display(keys[pos])} is not in the item catalog"
                f"{more} (embedding_version {self.embedding_version})"
            )
        return out

    def row(self, item_id: Any) -> int:
        """Row of one item; :class:`UnknownItemError` if it is not in the catalog."""
        key = _coerce_one(item_id, self.int_ids)
        try:
            # the index's hash table itself when pandas has one: Index.get_loc's Python layers
            # cost more than the lookup (a request looks up its medoids' rows on every miss)
            loc = getattr(self._index, "_engine", self._index).get_loc(key)
            if not isinstance(loc, int | np.integer):
                raise KeyError(key)
        except (KeyError, TypeError):
            raise UnknownItemError(
                f"item {_display(item_id)} is not in the item catalog "
                f"(embedding_version {self.embedding_version})"
            ) from None
        return int(loc)

    def rows_of_ints(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Rows of integer ids, -1 where unknown: :meth:`rows` for a catalog of integer ids,
        without its conversions, from a compiled hash table of the ids.

        The table is built on first use (about 1 s and 16 to 32 MB per million items: 8 bytes per
        slot, at least two slots per item, a power of two) and shared by
        every later call: the request path looks up its medoids' rows with it, a few at a time.
        Returns all -1 in a catalog of string ids.
        """
        if not self.int_ids:
            return np.full(keys.shape[0], -1, np.int64)
        table = self._row_table
        if table is None:
            table = self._row_table = row_table(self.item_ids)
        return table_rows(table, self.item_ids, keys)

    def vector(self, item_id: Any) -> npt.NDArray[np.float32]:
        """The L2-normalised vector of one item (a read-only view), shape (d,)."""
        return self.vectors[self.row(item_id)]

    def title(self, item_id: Any) -> str | None:
        """The item's title from the metadata, or None when there is none."""
        if self.metadata is None or "title" not in self.metadata.columns:
            return None
        value = self.metadata["title"].iat[self.row(item_id)]
        return None if value is None else str(value)

    # -- files --------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        id_col: str = "item_id",
        vector_col: str = "vector",
        items: str | Path | None = None,
        ids: str | Path | None = None,
    ) -> ItemCatalog:
        """Read item embeddings from parquet, ``.npy`` (+ ids file) or CSV.

        Parameters
        ----------
        path : str or Path
            ``.parquet``/``.pq``, ``.npy``, or ``.csv``/``.csv.gz``/``.tsv`` (see the module
            docstring for the layouts).
        id_col, vector_col : str
            Column names of the ids and of the vectors (parquet and CSV).
        items : str or Path, optional
            Items file (parquet or CSV) with ``id_col`` (or ``item_id``) and any of ``title``,
            ``image_url``, ``category``, joined for display.
        ids : str or Path, optional
            For ``.npy``: the ids file, one id per line (default: ``<stem>.ids.txt`` beside it).

        Raises
        ------
        DataFormatError
            Unreadable file, missing columns, ragged or missing vectors, duplicate ids.
        InvalidVectorsError
            Non-finite values or zero-norm vectors (the message names the row and the item id).
        """
        p = Path(path)
        if not p.exists():
            raise DataFormatError(f"embeddings file {p} does not exist")
        name = p.name.lower()
        if name.endswith(".npy"):
            cat = cls._load_npy(p, ids)
        elif name.endswith((".parquet", ".pq")):
            cat = cls._load_table(_read_parquet(p), p, id_col, vector_col)
        elif name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
            cat = cls._load_table(_read_csv_table(p, id_col), p, id_col, vector_col, csv=True)
        else:
            raise DataFormatError(
                f"embeddings file {p}: unknown format (expected .parquet, "
                ".npy with an ids file, or .csv)"
            )
        if items is not None:
            cat = cat.with_metadata(read_items(items, id_col=id_col))
        return cat

    def with_metadata(self, metadata: pd.DataFrame, *, id_col: str = "item_id") -> ItemCatalog:
        """A catalog with the same vectors and ``metadata`` joined by ``id_col``."""
        if id_col != "item_id" and id_col in metadata.columns:
            metadata = metadata.rename(columns={id_col: "item_id"})
        meta = self._align_metadata(metadata, self.item_ids, self._index)
        if meta is not None and self.metadata is not None:
            # metadata from the embeddings file fills what the items file leaves empty
            meta = meta.combine_first(self.metadata)
        new = object.__new__(ItemCatalog)
        new.item_ids, new.vectors, new._index = self.item_ids, self.vectors, self._index
        new._row_table = self._row_table
        new.metadata = meta if meta is not None else self.metadata
        new.embedding_version = self.embedding_version
        return new

    @classmethod
    def _load_npy(cls, p: Path, ids: str | Path | None) -> ItemCatalog:
        try:
            x = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataFormatError(
                f"embeddings file {p} is not a readable .npy array: {exc}"
            ) from exc
        if ids is None:
            stem = p.name[: -len(".npy")]
            candidates = [p.with_name(stem + ".ids.txt"), p.with_name(stem + ".ids")]
            found = [c for c in candidates if c.exists()]
            if not found:
                raise DataFormatError(
                    f"embeddings file {p} needs its item ids: one per line in "
                    f"{candidates[0]} (or pass the ids file explicitly)"
                )
            ids_path = found[0]
        else:
            ids_path = Path(ids)
            if not ids_path.exists():
                raise DataFormatError(f"ids file {ids_path} does not exist")
        lines = ids_path.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        raw = [s.strip() for s in lines]
        for i, s in enumerate(raw):
            if not s:
                raise DataFormatError(f"ids file {ids_path}: line {i + 1} is empty")
        parsed: np.ndarray
        if raw and all(_INT_RE.match(s) for s in raw):
            parsed = np.array([int(s) for s in raw], dtype=np.int64)
        else:
            parsed = np.empty(len(raw), dtype=object)
            parsed[:] = raw
        if x.ndim == 2 and x.shape[0] != len(raw):
            raise DimensionMismatchError(
                f"{p} holds {x.shape[0]} vectors but {ids_path} holds {len(raw)} ids"
            )
        return cls.from_arrays(parsed, x, source=str(p))

    @classmethod
    def _load_table(
        cls, table: pa.Table, p: Path, id_col: str, vector_col: str, *, csv: bool = False
    ) -> ItemCatalog:
        names = table.column_names
        if id_col not in names:
            raise DataFormatError(
                f"embeddings file {p} has no id column {id_col!r}; "
                f"columns present: {', '.join(names)}"
            )
        ids = _table_ids(table.column(id_col), p, csv=csv)
        if vector_col in names:
            x = _vectors_from_column(table.column(vector_col), ids, p, vector_col)
        else:
            dims = [
                c
                for c in names
                if c not in (id_col, *METADATA_COLUMNS)
                and (
                    pa.types.is_floating(table.schema.field(c).type)
                    or pa.types.is_integer(table.schema.field(c).type)
                )
            ]
            if not dims:
                raise DataFormatError(
                    f"embeddings file {p} has no vector column {vector_col!r} and no numeric "
                    f"dimension columns; columns present: {', '.join(names)}"
                )
            x = np.column_stack(
                [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in dims]
            )
        meta_cols = [c for c in METADATA_COLUMNS if c in names]
        meta = None
        if meta_cols:
            meta = table.select(meta_cols).to_pandas()
        return cls.from_arrays(ids, x, meta, source=str(p))

    def save(self, path: str | Path) -> None:
        """Write a parquet file with ``item_id``, ``vector`` (fixed-size list of float32) and the
        metadata columns; the ``embedding_version`` is kept in the file's schema metadata."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        flat = pa.array(self.vectors.reshape(-1), type=pa.float32())
        vec = pa.FixedSizeListArray.from_arrays(flat, self.dim)
        id_arr = (
            pa.array(self.item_ids, type=pa.int64())
            if self.int_ids
            else pa.array(self.item_ids.tolist(), type=pa.string())
        )
        columns: dict[str, pa.Array] = {"item_id": id_arr, "vector": vec}
        if self.metadata is not None:
            for c in self.metadata.columns:
                columns[c] = pa.array(self.metadata[c].tolist(), type=pa.string(), from_pandas=True)
        table = pa.table(columns).replace_schema_metadata(
            {"pinnersage.embedding_version": self.embedding_version}
        )
        tmp = p.with_name(p.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(p)


# -- helpers ----------------------------------------------------------------------------------


def _restore(
    item_ids: np.ndarray,
    vectors: npt.NDArray[np.float32],
    metadata: pd.DataFrame | None,
    embedding_version: str,
) -> ItemCatalog:
    cat = object.__new__(ItemCatalog)
    item_ids.flags.writeable = False
    vectors.flags.writeable = False
    cat.item_ids, cat.vectors, cat.metadata = item_ids, vectors, metadata
    cat._index = pd.Index(item_ids, dtype=np.int64 if item_ids.dtype == np.int64 else object)
    cat._row_table = None
    cat.embedding_version = embedding_version
    return cat


def _coerce_one(key: Any, int_ids: bool) -> Any:
    if int_ids:
        if isinstance(key, bool | np.bool_):
            return key  # never equal to an id
        if isinstance(key, int | np.integer):
            return int(key)
        if isinstance(key, str) and _INT_RE.match(key.strip()):
            return int(key)
        if isinstance(key, float | np.floating) and float(key).is_integer():
            return int(key)
        return key
    if isinstance(key, np.generic):
        key = key.item()
    return key if isinstance(key, str) else str(key)


def _coerce_keys(keys: np.ndarray, int_ids: bool) -> np.ndarray:
    if int_ids and keys.dtype.kind in "iu":
        return keys.astype(np.int64, copy=False)
    if not int_ids and keys.dtype == object and all(isinstance(k, str) for k in keys.tolist()):
        return keys
    out = np.empty(keys.shape[0], dtype=object)
    out[:] = [_coerce_one(k, int_ids) for k in keys.tolist()]
    if int_ids and all(isinstance(k, int) and _INT64_MIN <= k <= _INT64_MAX for k in out.tolist()):
        return out.astype(np.int64)
    return out  # an integer outside int64 stays an object: it matches no id


def _column_values(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_integer(col.type) and col.null_count == 0:
        return col.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    values = np.empty(len(col), dtype=object)
    values[:] = col.to_pylist()
    return values


def _vectors_from_column(
    col: pa.ChunkedArray, ids: np.ndarray, p: Path, vector_col: str
) -> npt.NDArray[np.float64]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _vectors_from_strings(arr.to_pylist(), ids, p, vector_col)
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        raise DataFormatError(
            f"embeddings file {p}: column {vector_col!r} must be a list of floats, got {t}"
        )
    if arr.null_count:
        row = int(np.argmax(np.asarray(arr.is_null())))
        raise DataFormatError(
            f"embeddings file {p}: row {row} (item {_display(ids[row])}) has "
            f"no vector (null {vector_col!r})"
        )
    n = len(arr)
    if pa.types.is_fixed_size_list(t):
        d = t.list_size
        lengths = None
    else:
        offsets = np.asarray(arr.offsets)
        lengths = np.diff(offsets)
        d = int(lengths[0]) if n else 0
        ragged = lengths != d
        if ragged.any():
            row = int(np.argmax(ragged))
            raise DataFormatError(
                f"embeddings file {p}: ragged vectors, row {row} (item {_display(ids[row])}) has "
                f"{int(lengths[row])} values but row 0 has {d}; every vector needs the same length"
            )
    values = arr.flatten()  # respects slicing/offsets
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise DataFormatError(
            f"embeddings file {p}: column {vector_col!r} must hold numbers, got {values.type}"
        )
    flat = values.to_numpy(zero_copy_only=False)  # float32 stays float32 (no 2x copy)
    if flat.dtype.kind != "f" or values.null_count:
        flat = flat.astype(np.float64)
        if values.null_count:
            flat[np.asarray(values.is_null())] = np.nan
    if d == 0 and n:
        raise InvalidVectorsError(f"embeddings file {p}: vectors have zero dimensions")
    del lengths
    return flat.reshape(n, d)


_SPLIT_RE = re.compile(r"[\s,;]+")


def _vectors_from_strings(
    values: list[Any], ids: np.ndarray, p: Path, vector_col: str
) -> npt.NDArray[np.float64]:
    rows: list[list[float]] = []
    d = -1
    for row, s in enumerate(values):
        if s is None or not str(s).strip():
            raise DataFormatError(
                f"embeddings file {p}: row {row} (item {_display(ids[row])}) "
                f"has no vector (empty {vector_col!r})"
            )
        parts = [t for t in _SPLIT_RE.split(str(s).strip().strip("[]()")) if t]
        try:
            v = [float(t) for t in parts]
        except ValueError:
            raise DataFormatError(
                f"embeddings file {p}: row {row} (item {_display(ids[row])}): "
                f"{vector_col!r} is not a list of numbers: {s!r}"
            ) from None
        if d < 0:
            d = len(v)
        elif len(v) != d:
            raise DataFormatError(
                f"embeddings file {p}: ragged vectors, row {row} (item {_display(ids[row])}) has "
                f"{len(v)} values but row 0 has {d}; every vector needs the same length"
            )
        rows.append(v)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), max(d, 0))


def _read_parquet(p: Path) -> pa.Table:
    try:
        return pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(f"{p} is not a readable parquet file: {exc}") from exc


def _read_csv_table(p: Path, id_col: str) -> pa.Table:
    import pyarrow.csv as pacsv

    delimiter = "\t" if p.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    try:
        return pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={id_col: pa.string()},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(f"{p} is not a readable CSV file: {exc}") from exc


def read_items(path: str | Path, *, id_col: str = "item_id") -> pd.DataFrame:
    """Read an items file (parquet or CSV): an id column plus any of title, image_url, category.

    The id column is ``id_col``, or ``item_id`` when the file has no ``id_col`` (so the log's
    item column name, e.g. ``movieId``, works for both). Returns a frame with an ``item_id``
    column (ids normalised like the catalog's) and the metadata columns found.
    """
    p = Path(path)
    col = id_col
    if p.exists() and id_col != "item_id":
        names = (
            pq.read_schema(p).names
            if p.name.lower().endswith((".parquet", ".pq"))
            else _read_csv_table(p, id_col).column_names
        )
        if id_col not in names and "item_id" in names:
            col = "item_id"
    frame = read_items_table(p, id_col=col)
    if len(frame.columns) == 1:
        raise DataFormatError(
            f"items file {path} has none of the columns {', '.join(METADATA_COLUMNS)}"
        )
    return frame.rename(columns={col: "item_id"})


def read_items_table(
    path: str | Path, *, id_col: str = "item_id", columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Read an items file (parquet or CSV) with ``id_col``, the required ``columns`` and any
    metadata columns found; ids are normalised (int64 or str).

    Raises
    ------
    DataFormatError
        The file is missing, unreadable, lacks ``id_col`` or one of ``columns``, or has a row
        without an id.
    """
    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"items file {p} does not exist")
    parquet = p.name.lower().endswith((".parquet", ".pq"))
    table = _read_parquet(p) if parquet else _read_csv_table(p, id_col)
    names = table.column_names
    for col in (id_col, *columns):
        if col not in names:
            raise DataFormatError(
                f"items file {p} has no column {col!r}; columns present: {', '.join(names)}"
            )
    keep = list(dict.fromkeys([*columns, *(c for c in METADATA_COLUMNS if c in names)]))
    keep = [c for c in keep if c != id_col]
    ids = _table_ids(table.column(id_col), p, csv=not parquet)
    frame = (
        table.select(keep).to_pandas().astype(object)
        if keep
        else pd.DataFrame(index=pd.RangeIndex(len(ids)))
    )
    frame.insert(0, id_col, ids)
    return frame


def _table_ids(col: pa.ChunkedArray, p: Path, *, csv: bool) -> np.ndarray:
    """Ids of a file column: int64 when the column is integer (or, in a CSV, every value is an
    integer), else str; a missing id raises :class:`DataFormatError` naming the row."""
    if not csv:
        return normalize_ids(_column_values(col), source=str(p))
    values = col.to_pylist()
    for row, v in enumerate(values):
        if v is None or not v.strip():
            raise DataFormatError(f"item id in {p} at row {row} is missing")
    if values and all(_INT_RE.match(v.strip()) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = [v.strip() for v in values]
    return out
