"""The action-log reader: formats, folders, renamed columns, timestamps, drop report, errors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinnersage.actions import ActionLog, action_files, iter_actions, read_actions
from pinnersage.data import online_retail
from pinnersage.errors import DataFormatError, PinnerSageWarning
from pinnersage.params import LogParams

ROOT = Path(__file__).resolve().parents[1]
#: The public logs beside the clone (``../shared/data``, or ``$PINNERSAGE_SHARED_DATA``): only the
#: check of the shipped copy against the raw days reads them (marker ``shared_data``).
SHARED = Path(os.environ.get("PINNERSAGE_SHARED_DATA") or ROOT.parent / "shared" / "data")

FRAME = pd.DataFrame(
    {
        "user_id": [2, 1, 1, 2, 3],
        "item_id": ["b", "a", "c", "a", "d"],
        "timestamp": [200, 100, 100, 50, 300],
        "action": ["click", "save", "click", "save", "click"],
    }
)
EXPECTED = [
    (2, "a", 50, "save"),
    (1, "a", 100, "save"),
    (1, "c", 100, "click"),
    (2, "b", 200, "click"),
    (3, "d", 300, "click"),
]


def _rows(log: ActionLog) -> list[tuple]:
    f = log.frame
    cols = [c for c in ("user_id", "item_id", "timestamp", "action") if c in f.columns]
    return [tuple(r) for r in f[cols].itertuples(index=False)]


@pytest.mark.parametrize("suffix", ["parquet", "csv", "csv.gz"])
def test_formats_round_trip_in_canonical_order(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"log.{suffix}"
    if suffix == "parquet":
        FRAME.to_parquet(path)
    else:
        FRAME.to_csv(path, index=False)
    log = read_actions(path)
    assert _rows(log) == EXPECTED
    assert list(log.frame.columns) == ["user_id", "item_id", "timestamp", "action"]
    assert log.frame["user_id"].dtype == np.int64
    assert log.frame["timestamp"].dtype == np.int64
    assert log.report.rows_read == 5 and log.report.rows_kept == 5 and log.report.dropped == {}


def test_folder_of_daily_files_and_file_by_file(tmp_path: Path) -> None:
    folder = tmp_path / "by-day"
    folder.mkdir()
    FRAME.iloc[:2].to_csv(folder / "2024-01-02.csv.gz", index=False)
    FRAME.iloc[2:].to_parquet(folder / "2024-01-01.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / "README.md").write_text("not data")
    files = action_files(folder)
    assert [f.name for f in files] == ["2024-01-01.parquet", "2024-01-02.csv.gz"]
    log = read_actions(folder)
    assert _rows(log) == EXPECTED
    assert log.report.files == 2 and log.report.rows_read == 5
    parts = list(iter_actions(folder))
    assert [p.name for p, _ in parts] == ["2024-01-01.parquet", "2024-01-02.csv.gz"]
    assert sum(len(part) for _, part in parts) == 5


def test_renamed_columns_and_action_filter(tmp_path: Path) -> None:
    frame = FRAME.rename(
        columns={"user_id": "uid", "item_id": "sku", "timestamp": "ts", "action": "kind"}
    )
    frame.to_parquet(tmp_path / "log.parquet")
    params = LogParams(
        user_col="uid", item_col="sku", time_col="ts", action_col="kind", action_types=("save",)
    )
    log = read_actions(tmp_path / "log.parquet", params)
    assert _rows(log) == [(2, "a", 50, "save"), (1, "a", 100, "save")]
    assert log.report.dropped == {"action_type": 3}


def test_time_window_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "log.parquet")
    log = read_actions(tmp_path / "log.parquet", start_s=100, end_s=300)
    assert [r[2] for r in _rows(log)] == [100, 100, 200]
    assert log.report.dropped == {"before_start": 1, "after_end": 1}
    assert log.report.rows_kept == 3


def test_iso_and_numeric_timestamps(tmp_path: Path) -> None:
    text = (
        "user_id,item_id,timestamp\n"
        "1,10,2010-12-01 08:26:00\n"  # no zone: UTC
        "1,11,2010-12-01T08:26:00+01:00\n"  # zone honoured
        "1,12,2010-12-01T08:26:00Z\n"
        "1,13,2010-12-01\n"
        "1,14,1291191960\n"  # numeric: unix seconds
        "1,15,1291191960.9\n"  # fractions floored
        "1,16,yesterday\n"
        "1,17,2010-13-45 99:00:00\n"
        "1,18,\n"
    )
    (tmp_path / "t.csv").write_text(text)
    log = read_actions(tmp_path / "t.csv")
    got = dict(zip(log.frame["item_id"], log.frame["timestamp"], strict=True))
    base = 1291191960  # 2010-12-01 08:26:00 UTC
    assert got == {
        10: base,
        11: base - 3600,
        12: base,
        13: base - (8 * 3600 + 26 * 60),
        14: base,
        15: base,
    }
    assert log.report.dropped == {"bad_timestamp": 3}
    assert log.frame["item_id"].dtype == np.int64


def test_parquet_timestamp_columns(tmp_path: Path) -> None:
    naive = pa.array([1291191960 * 1000], type=pa.int64()).cast(pa.timestamp("ms"))
    zoned = pa.array([1291191960 * 10**6], type=pa.int64()).cast(
        pa.timestamp("us", tz="Europe/Paris")
    )
    for i, col in enumerate([naive, zoned]):
        pq.write_table(
            pa.table({"user_id": [1], "item_id": [5], "timestamp": col}), tmp_path / f"{i}.parquet"
        )
        assert read_actions(tmp_path / f"{i}.parquet").frame["timestamp"].tolist() == [1291191960]


def test_milliseconds_warn(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": [1291191960000]}).to_parquet(
        tmp_path / "ms.parquet"
    )
    with pytest.warns(PinnerSageWarning, match="milliseconds"):
        read_actions(tmp_path / "ms.parquet")


def test_report_counts_each_reason_once(tmp_path: Path) -> None:
    text = (
        "user_id,item_id,timestamp\n"
        "1,a,100\n"
        ",a,100\n"  # missing user
        ",,100\n"  # missing user (first reason wins)
        "2,,100\n"  # missing item
        "2,b,never\n"  # bad timestamp
        "3,c,300\n"
    )
    (tmp_path / "r.csv").write_text(text)
    log = read_actions(tmp_path / "r.csv", start_s=200)
    assert log.report.dropped == {
        "missing_user": 2,
        "missing_item": 1,
        "bad_timestamp": 1,
        "before_start": 1,
    }
    assert log.report.rows_read == 6 and log.report.rows_kept == 1
    assert log.report.rows_dropped == 5
    assert "missing_user 2" in log.report.summary()


def test_id_kinds(tmp_path: Path) -> None:
    # CSV: float-looking integer ids (columns with gaps) become int64; mixed ids stay str
    (tmp_path / "a.csv").write_text(
        "user_id,item_id,timestamp\n17850.0,85123A,1\n13047.0,71053,2\n"
    )
    log = read_actions(tmp_path / "a.csv")
    assert log.frame["user_id"].dtype == np.int64
    assert log.frame["user_id"].tolist() == [17850, 13047]
    assert log.frame["item_id"].tolist() == ["85123A", "71053"]
    # parquet: string column stays str even when every value looks like an integer
    pd.DataFrame({"user_id": ["7"], "item_id": ["42"], "timestamp": [1]}).to_parquet(
        tmp_path / "s.parquet"
    )
    assert read_actions(tmp_path / "s.parquet").frame["item_id"].tolist() == ["42"]
    # parquet float ids: NaN is a missing id, whole numbers are int64
    pd.DataFrame(
        {"user_id": [1.0, np.nan, 3.0], "item_id": [5, 6, 7], "timestamp": [1, 2, 3]}
    ).to_parquet(tmp_path / "f.parquet")
    floats = read_actions(tmp_path / "f.parquet")
    assert floats.frame["user_id"].tolist() == [1, 3]
    assert floats.frame["user_id"].dtype == np.int64
    assert floats.report.dropped == {"missing_user": 1}


def test_folder_with_disagreeing_id_kinds_becomes_str(tmp_path: Path) -> None:
    (tmp_path / "d1.csv").write_text("user_id,item_id,timestamp\n1,21730,1\n")
    (tmp_path / "d2.csv").write_text("user_id,item_id,timestamp\n1,85123A,2\n")
    log = read_actions(tmp_path)
    assert log.frame["item_id"].tolist() == ["21730", "85123A"]
    assert log.frame["user_id"].dtype == np.int64


@pytest.mark.parametrize("suffix", ["parquet", "csv", "csv.gz"])
def test_missing_column_names_file_column_and_present(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"bad.{suffix}"
    frame = pd.DataFrame({"user": [1], "item_id": [2], "timestamp": [3]})
    if suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    with pytest.raises(
        DataFormatError,
        match=r"bad\..*has no column 'user_id' \(rename with --user-col\); "
        r"columns present: user, item_id, timestamp",
    ):
        read_actions(path)


def test_action_filter_needs_the_action_column(tmp_path: Path) -> None:
    FRAME.drop(columns="action").to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataFormatError, match="no column 'action'"):
        read_actions(tmp_path / "log.parquet", LogParams(action_types=("click",)))


def test_unreadable_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"nope")
    with pytest.raises(DataFormatError, match="not a readable parquet"):
        read_actions(tmp_path / "x.parquet")
    with pytest.raises(DataFormatError, match="does not exist"):
        read_actions(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="holds no data file"):
        read_actions(tmp_path / "empty")
    with gzip.open(tmp_path / "g.csv.gz", "wb") as fh:
        fh.write(b"")
    with pytest.raises(DataFormatError, match="no column 'user_id'"):
        read_actions(tmp_path / "g.csv.gz")


@pytest.mark.shared_data
@pytest.mark.skipif(
    not (SHARED / "online-retail" / "by-day").exists(),
    reason=f"no raw Online Retail days under {SHARED} (scripts/test.sh deselects shared_data then)",
)
def test_online_retail_raw_days_match_the_shipped_copy() -> None:
    files = action_files(SHARED / "online-retail" / "by-day")[:3]
    params = LogParams(user_col="CustomerID", item_col="StockCode", time_col="InvoiceDate")
    read = read_actions(files, params)
    assert read.report.files == 3 and read.report.dropped["missing_user"] > 0
    log = read.frame
    shipped = pd.read_parquet(online_retail("actions"))
    first_day = shipped[shipped["timestamp"] < log["timestamp"].min() + 86400]
    assert first_day["timestamp"].min() == log["timestamp"].min() == 1291191960
    joined = first_day.merge(
        log, on=["user_id", "item_id", "timestamp"], how="left", indicator=True
    )
    assert (joined["_merge"] == "both").all()  # every shipped action of day 1 is read
