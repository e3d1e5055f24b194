"""The published output of the daily batch job: immutable, checksummed profile snapshots.

Paper section 6: the daily job writes every user's (medoid, importance) list to the store that
serving reads. A snapshot is the file form of that output::

    DIR/<run-date>/profiles.parquet   one row per cluster, sorted by (user_id, rank)
    DIR/<run-date>/manifest.json      format, run date, window, parameters, embedding_version,
                                      counts, file checksums, content_sha256 (written last)
    DIR/CURRENT                       the run date of the snapshot to read, replaced last

Publishing writes the new version beside the old ones (temp directory, fsync, rename), then
replaces ``CURRENT`` atomically (temp file, fsync, ``os.replace``, fsync of the directory), so a
reader that follows ``CURRENT`` sees a whole old or a whole new snapshot, never a torn one.

``content_sha256`` is a checksum of the profiles themselves in canonical order (users ascending,
then rank), over a fixed binary encoding of each column: it does not depend on the engine, the
parquet encoder, the partitioning or the clock, so two engines agree on it exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pinnersage.core.profile import InterestProfile
from pinnersage.errors import CorruptArtifactError, DataFormatError, ProfileNotFoundError

__all__ = [
    "FORMAT_VERSION",
    "Snapshot",
    "canonical_sort",
    "content_sha256",
    "file_sha256",
    "open_snapshot",
    "publish_snapshot",
    "write_atomic",
]

#: Version of the snapshot layout and of the ``content_sha256`` encoding.
FORMAT_VERSION = 1
PROFILES_FILE = "profiles.parquet"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
#: Parquet settings fixed so that the same table always gives the same bytes.
_ROW_GROUP_ROWS = 1 << 17
_COMPRESSION = "zstd"
_COMPRESSION_LEVEL = 3


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical_sort(table: pa.Table) -> pa.Table:
    """Rows sorted by (user_id, rank): the canonical order of a profiles table."""
    if table.num_rows == 0:
        return table
    idx = pc.sort_indices(table, sort_keys=[("user_id", "ascending"), ("rank", "ascending")])
    return table.take(idx)


def _column_bytes(col: pa.ChunkedArray | pa.Array) -> Iterator[bytes]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        values = arr.to_numpy(zero_copy_only=False)
        encoded = [v.encode("utf-8") for v in values]
        yield np.fromiter((len(b) for b in encoded), dtype="<u4", count=len(encoded)).tobytes()
        yield b"".join(encoded)
    elif pa.types.is_fixed_size_list(t):
        yield np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype="<f4").tobytes()
    elif pa.types.is_integer(t):
        yield np.asarray(arr.to_numpy(zero_copy_only=False), dtype="<i8").tobytes()
    elif pa.types.is_floating(t):
        yield np.asarray(arr.to_numpy(zero_copy_only=False), dtype="<f8").tobytes()
    else:  # pragma: no cover - the schema has no other types
        raise DataFormatError(f"cannot checksum a column of type {t}")


def content_sha256(table: pa.Table) -> str:
    """Checksum of a profiles table's content in canonical order.

    sha256 over ``pinnersage.profiles/<FORMAT_VERSION>``, the row count, then for each column in
    schema order its name, a kind tag and its values: integers as little-endian int64, floats as
    float64, vectors as float32, strings as uint32 lengths followed by their UTF-8 bytes. The
    table must already be in canonical order (:func:`canonical_sort`).
    """
    h = hashlib.sha256()
    h.update(f"pinnersage.profiles/{FORMAT_VERSION}\0{table.num_rows}\0".encode())
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        kind = (
            "str"
            if pa.types.is_string(t) or pa.types.is_large_string(t)
            else f"vec{t.list_size}"
            if pa.types.is_fixed_size_list(t)
            else "int"
            if pa.types.is_integer(t)
            else "float"
        )
        h.update(f"{name}\0{kind}\0".encode())
        for chunk in _column_bytes(col):
            h.update(chunk)
    return h.hexdigest()


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic parquet: fixed row groups, compression and no creation-time metadata."""
    table = table.replace_schema_metadata(None)
    with open(path, "wb") as f:
        pq.write_table(
            table,
            f,
            row_group_size=_ROW_GROUP_ROWS,
            compression=_COMPRESSION,
            compression_level=_COMPRESSION_LEVEL,
            write_statistics=True,
            store_schema=True,
        )
        f.flush()
        os.fsync(f.fileno())


def _clusters_per_user(table: pa.Table, users_without_clusters: int) -> dict[str, float]:
    if table.num_rows:
        users = table.column("user_id").combine_chunks()
        counts = np.asarray(pc.value_counts(users).field("counts"), dtype=np.int64)
    else:
        counts = np.zeros(0, np.int64)
    counts = np.concatenate([counts, np.zeros(users_without_clusters, np.int64)])
    if counts.size == 0:
        return {"median": 0.0, "p90": 0.0, "max": 0.0}
    return {
        "median": float(np.median(counts)),
        "p90": float(np.percentile(counts, 90)),
        "max": float(counts.max()),
    }


def publish_snapshot(
    out_dir: str | Path,
    run_date: str,
    table: pa.Table,
    manifest: dict[str, Any],
    *,
    users_without_clusters: int = 0,
) -> Path:
    """Write ``DIR/<run_date>/`` from a profiles table, then point ``DIR/CURRENT`` at it.

    Parameters
    ----------
    out_dir : path
        The snapshot root.
    run_date : str
        ``YYYY-MM-DD``; the name of the snapshot directory.
    table : pyarrow.Table
        The profiles, any row order (sorted here).
    manifest : dict
        Fields recorded as given (run date, window, parameters, embedding_version, engine, ...);
        this function adds format_version, counts, file checksums and ``content_sha256``.
    users_without_clusters : int
        Users with actions but no cluster (they have no rows), for the counts.

    Returns
    -------
    pathlib.Path
        The snapshot directory. If it already holds a snapshot with the same ``content_sha256``
        and manifest, it is kept as is (re-running a finished day changes nothing).
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    table = canonical_sort(table.combine_chunks())
    users = pc.count_distinct(table.column("user_id")).as_py() if table.num_rows else 0
    per_user = _clusters_per_user(table, users_without_clusters)
    doc = {
        "format_version": FORMAT_VERSION,
        **manifest,
        "run_date": run_date,
        "counts": {
            "users": int(users) + int(users_without_clusters),
            "users_with_clusters": int(users),
            "clusters": table.num_rows,
            "clusters_per_user": per_user,
        },
        "content_sha256": content_sha256(table),
    }
    final = root / run_date
    staging = root / f".{run_date}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    _write_parquet(table, staging / PROFILES_FILE)
    doc["files"] = {
        PROFILES_FILE: {
            "sha256": file_sha256(staging / PROFILES_FILE),
            "bytes": (staging / PROFILES_FILE).stat().st_size,
        }
    }
    body = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_atomic(staging / MANIFEST_FILE, body)  # the manifest is written last
    _fsync_dir(staging)
    if (
        final.exists()
        and (final / MANIFEST_FILE).exists()
        and (final / MANIFEST_FILE).read_bytes() == body
        and _files_ok(final, doc["files"])
    ):
        shutil.rmtree(staging)
    else:
        if final.exists():
            # Re-published day with other content: move the old one aside first. CURRENT may
            # name it for an instant; readers retry (see open_snapshot).
            old = root / f".{run_date}.old"
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
        _fsync_dir(root)
    write_atomic(root / CURRENT_FILE, (run_date + "\n").encode("ascii"))
    return final


def _files_ok(directory: Path, files: dict[str, Any]) -> bool:
    for name, info in files.items():
        p = directory / name
        if not p.exists() or p.stat().st_size != info["bytes"] or file_sha256(p) != info["sha256"]:
            return False
    return True


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: its directory and manifest; profiles are read on demand."""

    path: Path
    manifest: dict[str, Any]

    @property
    def run_date(self) -> str:
        return str(self.manifest["run_date"])

    @property
    def as_of_s(self) -> float:
        """The time the importances were evaluated at (end of the run date)."""
        return float(self.manifest["window"]["now_s"])

    @property
    def embedding_version(self) -> str:
        return str(self.manifest["embedding_version"])

    @property
    def profiles_path(self) -> Path:
        return self.path / PROFILES_FILE

    def table(self, columns: list[str] | None = None) -> pa.Table:
        """All profile rows (canonical order)."""
        return pq.read_table(self.profiles_path, columns=columns)

    def user_rows(self, user_id: Any) -> pa.Table:
        """The rows of one user (rank order); empty if the user has no profile."""
        key = self._key(user_id)
        if key is None:
            return self.table().slice(0, 0)
        return pq.read_table(self.profiles_path, filters=[("user_id", "==", key)])

    def profile(self, user_id: Any) -> InterestProfile:
        """One user's profile; :class:`ProfileNotFoundError` when the snapshot has none."""
        from pinnersage.batch.job import table_to_profiles

        rows = self.user_rows(user_id)
        if rows.num_rows == 0:
            raise ProfileNotFoundError(
                f"user {user_id!r} has no profile in snapshot {self.path} "
                f"({self.manifest['counts']['users_with_clusters']} users with clusters)"
            )
        return table_to_profiles(rows, as_of_s=self.as_of_s)[0]

    def profiles(self, batch_rows: int = 1 << 16) -> Iterator[InterestProfile]:
        """Every profile in canonical order, streamed (row groups end on user boundaries or
        are stitched)."""
        from pinnersage.batch.job import table_to_profiles

        pending: pa.Table | None = None
        for batch in pq.ParquetFile(self.profiles_path).iter_batches(batch_size=batch_rows):
            part = pa.Table.from_batches([batch])
            if pending is not None:
                part = pa.concat_tables([pending, part])
            users = part.column("user_id")
            last = users[part.num_rows - 1]
            keep = pc.not_equal(users, last)
            cut = int(pc.sum(keep).as_py() or 0)
            yield from table_to_profiles(part.slice(0, cut), as_of_s=self.as_of_s)
            pending = part.slice(cut)
        if pending is not None and pending.num_rows:
            yield from table_to_profiles(pending, as_of_s=self.as_of_s)

    def _key(self, user_id: Any) -> Any:
        field = pq.read_schema(self.profiles_path).field("user_id")
        if pa.types.is_integer(field.type):
            try:
                return int(user_id)
            except (TypeError, ValueError):
                return None
        return str(user_id)


def _resolve(path: Path) -> Path:
    if (path / MANIFEST_FILE).exists():
        return path
    current = path / CURRENT_FILE
    if not current.exists():
        raise CorruptArtifactError(
            f"{path} is not a snapshot: it has neither {MANIFEST_FILE} nor a {CURRENT_FILE} file "
            "naming one (run `pinnersage batch` first)"
        )
    name = current.read_text(encoding="ascii").strip()
    if not name or "/" in name or name.startswith("."):
        raise CorruptArtifactError(f"{current} holds {name!r}, not a run date")
    return path / name


def open_snapshot(path: str | Path, *, verify: bool = True) -> Snapshot:
    """Open a snapshot: a snapshot root (follows ``CURRENT``) or one ``<run-date>`` directory.

    With ``verify`` the manifest is parsed and every file's size and sha256 are checked before
    anything is read from it (:class:`CorruptArtifactError` on any mismatch).
    """
    root = Path(path)
    directory = _resolve(root)
    manifest_path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorruptArtifactError(f"snapshot {directory} has no {MANIFEST_FILE}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptArtifactError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise CorruptArtifactError(
            f"{manifest_path}: format_version {version!r} is not "
            f"{FORMAT_VERSION} (written by another pinnersage version?)"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or PROFILES_FILE not in files:
        raise CorruptArtifactError(f"{manifest_path} lists no {PROFILES_FILE}")
    if verify:
        for name, info in files.items():
            p = directory / name
            if not p.exists():
                raise CorruptArtifactError(f"snapshot {directory} is missing {name}")
            size = p.stat().st_size
            if size != info.get("bytes"):
                raise CorruptArtifactError(
                    f"{p} has {size} bytes, the manifest says {info.get('bytes')}"
                )
            digest = file_sha256(p)
            if digest != info.get("sha256"):
                raise CorruptArtifactError(
                    f"{p} fails its checksum (sha256 {digest[:12]}..., "
                    f"manifest {str(info.get('sha256'))[:12]}...)"
                )
    return Snapshot(directory, manifest)


def iter_tables(paths: Iterable[Path]) -> Iterator[pa.Table]:
    """Read parquet files one by one (partition outputs)."""
    for p in paths:
        yield pq.read_table(p)
