"""Build the compact, canonical copy of UCI Online Retail shipped in data/online-retail/.

Source: ../shared/data/online-retail/by-day/*.csv.gz (Chen, Sain, Guo 2012; UCI ML Repository;
CC BY 4.0). Anonymous rows (no CustomerID) and cancellations (InvoiceNo starting with "C") are
removed, as are rows with a non-positive quantity. Output:

* data/online-retail/actions.parquet: user_id (int64), item_id (string), timestamp (int64 unix
  seconds; InvoiceDate read as UTC), sorted by (timestamp, user_id, item_id);
* data/online-retail/items.parquet: item_id, title (the most frequent Description).

Run: python scripts/make_retail_data.py [SOURCE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(source: Path) -> None:
    frames = [
        pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str, "Description": str})
        for f in sorted(source.glob("*.csv.gz"))
    ]
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
    out = ROOT / "data" / "online-retail"
    out.mkdir(parents=True, exist_ok=True)
    actions.to_parquet(out / "actions.parquet", index=False, compression="zstd")
    items.to_parquet(out / "items.parquet", index=False, compression="zstd")
    print(
        f"{len(actions)} actions by {actions.user_id.nunique()} users on "
        f"{actions.item_id.nunique()} items; {len(items)} titles -> {out}"
    )


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/online-retail/by-day"
    )
