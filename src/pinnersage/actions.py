"""The action log: the user-item engagements PinnerSage clusters (paper section 3, "actions").

One reader, shared by every command (embed, batch, evaluate). A log is parquet, CSV or gzip CSV,
one file or a folder of files (for example one per day). Its columns ``user_id``, ``item_id``,
``timestamp`` and optional ``action`` are renamed through :class:`~pinnersage.params.LogParams`.

Rules:

* A numeric timestamp is unix seconds (fractions are floored); a string is ISO 8601
  (``2010-12-01 08:26:00``, ``2010-12-01T08:26:00+01:00``, ``2010-12-01``), read as UTC when it
  carries no zone; a parquet timestamp column without a zone is UTC too.
* Ids keep the kind they have in the file: an integer column gives int64 ids, a string column
  str ids. CSV has no column types, so there a column whose every value is an integer (``42`` or
  ``42.0``, as spreadsheets write ids of columns with gaps) gives int64, anything else str. When
  files of one folder disagree, the ids of all of them become str.
* Every action type counts unless ``LogParams.action_types`` lists the ones to keep.
* Rows that cannot be used are dropped and counted by reason in :class:`ReadReport`, never
  silently: ``missing_user``, ``missing_item``, ``bad_timestamp``, ``action_type`` (not kept or
  missing while types are filtered), and ``before_start``/``after_end`` for the time window. A row
  is counted once, under the first reason in that order.

Frames come out in canonical order: sorted by (timestamp, user_id, item_id), stable, so equal
inputs give equal frames whatever the file order. :func:`action_files` lists the files of a folder
so that large logs can be read one file at a time (:func:`iter_actions`) in bounded memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pinnersage.errors import DataFormatError, PinnerSageWarning
from pinnersage.params import LogParams

__all__ = [
    "DROP_REASONS",
    "ActionLog",
    "ReadReport",
    "action_files",
    "iter_actions",
    "read_actions",
]

#: Reasons a row is dropped, in the order they are checked.
DROP_REASONS: tuple[str, ...] = (
    "missing_user",
    "missing_item",
    "bad_timestamp",
    "action_type",
    "before_start",
    "after_end",
)

_DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
_NULLS = ["", "NaN", "nan", "NULL", "null", "None", "NA", "N/A"]
_INT_PATTERN = r"^[+-]?\d+(\.0*)?$"
_NUM_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
#: Numeric timestamps above this (year 5138) are almost surely milliseconds.
_MAX_PLAUSIBLE_S = 1e11


@dataclass(frozen=True)
class ReadReport:
    """What happened to the rows of an action log."""

    rows_read: int = 0
    rows_kept: int = 0
    #: Reason -> number of rows dropped for it (only reasons that occurred).
    dropped: Mapping[str, int] = field(default_factory=dict)
    #: Number of files read.
    files: int = 0

    @property
    def rows_dropped(self) -> int:
        """Total number of rows dropped."""
        return int(sum(self.dropped.values()))

    def __add__(self, other: ReadReport) -> ReadReport:
        dropped = dict(self.dropped)
        for k, v in other.dropped.items():
            dropped[k] = dropped.get(k, 0) + v
        return ReadReport(
            self.rows_read + other.rows_read,
            self.rows_kept + other.rows_kept,
            {k: dropped[k] for k in DROP_REASONS if k in dropped},
            self.files + other.files,
        )

    def summary(self) -> str:
        """One line for people, e.g. ``read 10 rows from 1 file; kept 9; dropped 1
        (missing_user 1)``."""
        files = f" from {self.files:,} file{'s' if self.files != 1 else ''}" if self.files else ""
        text = f"read {self.rows_read:,} rows{files}; kept {self.rows_kept:,}"
        if self.dropped:
            parts = ", ".join(f"{k} {v:,}" for k, v in self.dropped.items())
            text += f"; dropped {self.rows_dropped:,} ({parts})"
        return text

    def to_dict(self) -> dict[str, object]:
        """Plain data (for manifests and JSON reports)."""
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "dropped": dict(self.dropped),
            "files": self.files,
        }


@dataclass(frozen=True)
class ActionLog:
    """Actions in canonical order, with the report of how they were read.

    ``frame`` has columns ``user_id``, ``item_id``, ``timestamp`` (int64 unix seconds) and
    ``action`` when the log has an action column, sorted by (timestamp, user_id, item_id).
    """

    frame: pd.DataFrame
    report: ReadReport

    def __len__(self) -> int:
        return len(self.frame)


def action_files(path: str | Path) -> list[Path]:
    """The data files of an action log: ``path`` itself, or the sorted data files of a folder.

    Files ending in ``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``, ``.tsv`` or ``.tsv.gz`` are data
    files, searched recursively (so ``day=2024-01-01/part-0.parquet`` layouts work); names starting
    with ``.`` or ``_`` are skipped. Sorted by path, so daily files named by date come in time
    order.

    Raises
    ------
    DataFormatError
        The path does not exist, or a folder holds no data file.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.exists():
        raise DataFormatError(f"action log {p} does not exist")
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file()
        and f.name.lower().endswith(_DATA_SUFFIXES)
        and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts)
    )
    if not files:
        raise DataFormatError(
            f"action log folder {p} holds no data file (expected " + ", ".join(_DATA_SUFFIXES) + ")"
        )
    return files


def read_actions(
    path: str | Path | list[Path],
    params: LogParams | None = None,
    *,
    start_s: int | None = None,
    end_s: int | None = None,
    progress: bool = False,
) -> ActionLog:
    """Read an action log (one file or a folder) into one frame in canonical order.

    Parameters
    ----------
    path : str, Path or list of Path
        A parquet/CSV/gzip CSV file, a folder of them (see :func:`action_files`), or a list of
        files.
    params : LogParams, optional
        Column names and the action types to keep (default: ``LogParams()``).
    start_s, end_s : int, optional
        Keep actions with ``start_s <= timestamp < end_s`` (unix seconds).
    progress : bool
        Show a progress bar over the files (stderr).

    Returns
    -------
    ActionLog

    Raises
    ------
    DataFormatError
        A file is unreadable or misses a column (the message names the file, the column and the
        columns present).
    """
    params = params or LogParams()
    files = [Path(f) for f in path] if isinstance(path, list) else action_files(path)
    logs = [log for _, log in _iter(files, params, start_s, end_s, progress, sort=False)]
    report = ReadReport()
    for log in logs:
        report = report + log.report
    frames = [log.frame for log in logs]
    frame = _unify_and_concat(frames)
    return ActionLog(_canonical(frame), report)


def iter_actions(
    path: str | Path | list[Path],
    params: LogParams | None = None,
    *,
    start_s: int | None = None,
    end_s: int | None = None,
    progress: bool = False,
) -> Iterator[tuple[Path, ActionLog]]:
    """Read an action log one file at a time: yields ``(file, ActionLog)`` in file order.

    Each frame is in canonical order within its file. Memory is bounded by the largest file.
    Parameters are those of :func:`read_actions`; ``path`` may also be a list of files.
    """
    files = path if isinstance(path, list) else action_files(path)
    yield from _iter(files, params or LogParams(), start_s, end_s, progress, sort=True)


def _iter(
    files: list[Path],
    params: LogParams,
    start_s: int | None,
    end_s: int | None,
    progress: bool,
    *,
    sort: bool,
) -> Iterator[tuple[Path, ActionLog]]:
    iterable: Iterable[Path] = files
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        iterable = tqdm(files, desc="reading actions", unit="file")
    for f in iterable:
        yield f, _read_file(f, params, start_s, end_s, sort=sort)


# -- one file -------------------------------------------------------------------------------------


def _read_file(
    p: Path, params: LogParams, start_s: int | None, end_s: int | None, *, sort: bool = True
) -> ActionLog:
    name = p.name.lower()
    wanted = [params.user_col, params.item_col, params.time_col]
    if name.endswith((".parquet", ".pq")):
        table = _read_parquet(p, wanted, params)
        csv = False
    elif name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        table = _read_csv(p, wanted, params)
        csv = True
    else:
        raise DataFormatError(f"action log {p}: unknown format (expected parquet, CSV or gzip CSV)")
    n = table.num_rows
    users, user_ok = _ids(table.column(params.user_col), csv)
    items, item_ok = _ids(table.column(params.item_col), csv)
    times, time_ok = _seconds(table.column(params.time_col), p, params.time_col)
    has_action = params.action_col in table.column_names
    action_ok = np.ones(n, dtype=bool)
    actions: np.ndarray | None = None
    if has_action:
        col = table.column(params.action_col)
        if not pa.types.is_string(col.type):
            col = col.cast(pa.string())
        actions = _to_object(col)
        if params.action_types is not None:
            kept = pa.array(list(params.action_types), type=pa.string())
            action_ok = np.asarray(pc.fill_null(pc.is_in(col, value_set=kept), False))
    checks = [
        ("missing_user", user_ok),
        ("missing_item", item_ok),
        ("bad_timestamp", time_ok),
        ("action_type", action_ok),
    ]
    if start_s is not None:
        checks.append(("before_start", ~time_ok | (times >= start_s)))
    if end_s is not None:
        checks.append(("after_end", ~time_ok | (times < end_s)))
    keep = np.ones(n, dtype=bool)
    dropped: dict[str, int] = {}
    for reason, ok in checks:
        bad = keep & ~ok
        count = int(bad.sum())
        if count:
            dropped[reason] = count
        keep &= ok
    frame = pd.DataFrame(
        {
            "user_id": _column(users[keep]),
            "item_id": _column(items[keep]),
            "timestamp": times[keep],
        }
    )
    if actions is not None:
        frame["action"] = _column(actions[keep])
    report = ReadReport(n, int(keep.sum()), dropped, 1)
    return ActionLog(_canonical(frame) if sort else frame, report)


def _missing(p: Path, names: list[str], needed: list[str], params: LogParams) -> None:
    absent = [c for c in needed if c not in names]
    if absent:
        flags = {
            params.user_col: "--user-col",
            params.item_col: "--item-col",
            params.time_col: "--time-col",
            params.action_col: "--action-col",
        }
        raise DataFormatError(
            f"action log {p} has no column {absent[0]!r} (rename with {flags[absent[0]]}); "
            f"columns present: {', '.join(names)}"
        )


def _read_parquet(p: Path, wanted: list[str], params: LogParams) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(p).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(f"action log {p} is not a readable parquet file: {exc}") from exc
    needed = wanted + ([params.action_col] if params.action_types is not None else [])
    _missing(p, names, needed, params)
    columns = wanted + ([params.action_col] if params.action_col in names else [])
    try:
        return pq.read_table(p, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(f"action log {p} is not a readable parquet file: {exc}") from exc


def _read_csv(p: Path, wanted: list[str], params: LogParams) -> pa.Table:
    import pyarrow.csv as pacsv

    delimiter = "\t" if p.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    names = _csv_header(p, delimiter)
    needed = wanted + ([params.action_col] if params.action_types is not None else [])
    _missing(p, names, needed, params)
    columns = wanted + ([params.action_col] if params.action_col in names else [])
    # every column as text: types are decided here, not by the reader's guess from the first block
    convert = pacsv.ConvertOptions(
        include_columns=columns,
        column_types=dict.fromkeys(columns, pa.string()),
        null_values=_NULLS,
        strings_can_be_null=True,
    )
    try:
        # threads only pay off on large files (daily files are small and many)
        read = pacsv.ReadOptions(use_threads=p.stat().st_size > 16 * 2**20)
        return pacsv.read_csv(p, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFormatError(f"action log {p} is not a readable CSV file: {exc}") from exc


def _csv_header(p: Path, delimiter: str) -> list[str]:
    import csv
    import gzip
    import io

    try:
        raw = gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")  # noqa: SIM115
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            return next(csv.reader(text, delimiter=delimiter), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"action log {p} is not a readable CSV file: {exc}") from exc


def _to_object(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out = np.empty(len(col), dtype=object)
    out[:] = col.to_pylist()
    return out


def _column(values: np.ndarray) -> pd.Series:
    if values.dtype == object:
        return pd.Series(values, dtype=object)
    return pd.Series(values)


def _ids(col: pa.ChunkedArray, csv: bool) -> tuple[np.ndarray, npt.NDArray[np.bool_]]:
    """Ids of one column and a mask of rows that have one."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t):
        ok = np.asarray(col.is_valid())
        return np.asarray(col.fill_null(0).to_numpy(), dtype=np.int64), ok
    if pa.types.is_floating(t):
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(values)
        if (values[ok] == np.floor(values[ok])).all():
            return np.where(ok, values, 0).astype(np.int64), ok
        ids, str_ok = _str_ids(col.cast(pa.string()))
        return ids, str_ok & ok
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if csv:
            trimmed = pc.utf8_trim_whitespace(col)
            trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
            ok = np.asarray(trimmed.is_valid())
            if ok.any() and pc.all(pc.match_substring_regex(trimmed, _INT_PATTERN)).as_py():
                whole = pc.match_substring_regex(trimmed, r"^[+-]?\d+$")
                if pc.all(whole).as_py():
                    ints = pc.cast(trimmed, pa.int64())
                else:
                    ints = pc.cast(pc.cast(trimmed, pa.float64()), pa.int64())
                return np.asarray(ints.fill_null(0).to_numpy(), dtype=np.int64), ok
            return _str_ids(trimmed)
        return _str_ids(col)
    return _str_ids(col.cast(pa.string()))


def _str_ids(col: pa.ChunkedArray) -> tuple[np.ndarray, npt.NDArray[np.bool_]]:
    ok = np.asarray(pc.and_(col.is_valid(), pc.fill_null(pc.not_equal(col, ""), False)))
    return _to_object(col), ok


def _seconds(
    col: pa.ChunkedArray, p: Path, name: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Unix seconds of a time column and a mask of rows where it is usable."""
    t = col.type
    n = len(col)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return _from_numbers(values, p, name)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        arr = col.cast(pa.timestamp("s", tz=getattr(t, "tz", None))) if pa.types.is_date(t) else col
        secs = pc.cast(
            pc.cast(arr, pa.timestamp("s", tz=getattr(arr.type, "tz", None)), safe=False),
            pa.int64(),
        )
        ok = np.asarray(secs.is_valid())
        return np.asarray(secs.fill_null(0).to_numpy(), dtype=np.int64), ok
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        col = col.cast(pa.string())
    text = pc.utf8_trim_whitespace(col)
    secs = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    is_num = np.asarray(pc.fill_null(pc.match_substring_regex(text, _NUM_PATTERN), False))
    if is_num.any():
        nums = pc.cast(pc.filter(text, pa.array(is_num)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        s, o = _from_numbers(np.asarray(nums, dtype=np.float64), p, name)
        secs[is_num], ok[is_num] = s, o
    rest = ~is_num & np.asarray(text.is_valid())
    # fast path for the common zone-less layouts; everything else goes through pandas' ISO parser
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        if not rest.any():
            break
        quick = pc.strptime(
            pc.filter(text, pa.array(rest)), format=fmt, unit="s", error_is_null=True
        )
        hit = np.asarray(quick.is_valid())
        if hit.any():
            idx = np.flatnonzero(rest)[hit]
            secs[idx] = np.asarray(pc.cast(pc.drop_null(quick), pa.int64()), dtype=np.int64)
            ok[idx] = True
            rest[idx] = False
    if rest.any():
        strings = pd.Series(_to_object(pc.filter(text, pa.array(rest))), dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(strings, format="ISO8601", utc=True, errors="coerce")
        good = parsed.notna().to_numpy()
        values = np.zeros(len(parsed), dtype=np.int64)
        if good.any():
            epoch = pd.Timestamp(0, tz="UTC")
            values[good] = ((parsed[good] - epoch) // pd.Timedelta(seconds=1)).to_numpy(
                dtype=np.int64
            )
        secs[rest], ok[rest] = values, good
    return secs, ok


def _from_numbers(
    values: npt.NDArray[np.float64], p: Path, name: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    ok = np.isfinite(values) & (np.abs(values) < 2**62)
    if ok.any() and float(np.median(np.abs(values[ok]))) > _MAX_PLAUSIBLE_S:
        warnings.warn(
            f"action log {p}: numeric column {name!r} looks like milliseconds (median "
            f"{np.median(values[ok]):.0f}); numeric timestamps are read as unix seconds: divide "
            "by 1000 before reading, or store ISO 8601 strings",
            PinnerSageWarning,
            stacklevel=4,
        )
    secs = np.zeros(values.shape[0], dtype=np.int64)
    secs[ok] = np.floor(values[ok]).astype(np.int64)
    return secs, ok


# -- several files --------------------------------------------------------------------------------


def _unify_and_concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(
            {
                "user_id": pd.Series([], dtype=np.int64),
                "item_id": pd.Series([], dtype=np.int64),
                "timestamp": pd.Series([], dtype=np.int64),
            }
        )
    if len(frames) == 1:
        return frames[0]
    nonempty = [f for f in frames if len(f)] or frames[:1]
    for col in ("user_id", "item_id"):
        kinds = {f[col].dtype.kind == "i" for f in nonempty}
        if len(kinds) > 1:  # some files gave int ids, others str: str for all
            for i, f in enumerate(nonempty):
                if f[col].dtype.kind == "i":
                    f = f.copy()
                    f[col] = pd.Series(f[col].astype(str).to_numpy(dtype=object), dtype=object)
                    nonempty[i] = f
    if any("action" in f.columns for f in nonempty):
        nonempty = [f if "action" in f.columns else f.assign(action=None) for f in nonempty]
    return pd.concat(nonempty, ignore_index=True)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) > 1:
        frame = frame.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame
