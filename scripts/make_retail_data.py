"""Build the compact, canonical copy of UCI Online Retail shipped with the package.

Source: the UCI Online Retail data set (Chen, Sain, Guo 2012; UCI Machine Learning Repository,
https://archive.ics.uci.edu/dataset/352/online+retail; CC BY 4.0), its rows saved as CSV files
(gzip or not; one file, or a folder of them, e.g. one per day) with the original columns
InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country.
Anonymous rows (no CustomerID) and cancellations (InvoiceNo starting with "C") are
removed, as are rows with a non-positive quantity. Output, in src/pinnersage/data/online-retail/
(package data, read through pinnersage.data.online_retail):

* actions.parquet: user_id (int64), item_id (string), timestamp (int64 unix seconds; InvoiceDate
  read as UTC), sorted by (timestamp, user_id, item_id);
* items.parquet: item_id, title (the most frequent Description).

Run: python scripts/make_retail_data.py SOURCE (a CSV file or a folder of CSV files)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(source: Path) -> None:
    frames = [
        pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str, "Description": str})
        for f in ([source] if source.is_file() else sorted(source.glob("*.csv*")))
    ]
    if not frames:
        raise SystemExit(f"no CSV file in {source}")
    df = pd.concat(frames, ignore_index=True)
    df = df[df["CustomerID"].notna() & ~df["InvoiceNo"].str.startswith("C") & (df["Quantity"] > 0)]
    df["StockCode"] = df["StockCode"].str.strip().str.upper()
    ts = pd.to_datetime(df["InvoiceDate"], utc=True)
    actions = (
        pd.DataFrame(
            {
                "user_id": df["CustomerID"].astype("int64"),
                "item_id": df["StockCode"].astype(str),
                "timestamp": (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1),
            }
        )
        .sort_values(["timestamp", "user_id", "item_id"], kind="stable")
        .reset_index(drop=True)
    )
    titles = (
        df.dropna(subset=["Description"])
        .groupby(["StockCode", "Description"])
        .size()
        .reset_index(name="n")
        .sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
        .drop_duplicates("StockCode")
    )
    items = pd.DataFrame(
        {"item_id": titles["StockCode"].astype(str), "title": titles["Description"].str.strip()}
    )
    out = ROOT / "src" / "pinnersage" / "data" / "online-retail"
    out.mkdir(parents=True, exist_ok=True)
    actions.to_parquet(out / "actions.parquet", index=False, compression="zstd")
    items.to_parquet(out / "items.parquet", index=False, compression="zstd")
    print(
        f"{len(actions)} actions by {actions.user_id.nunique()} users on "
        f"{actions.item_id.nunique()} items; {len(items)} titles -> {out}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
