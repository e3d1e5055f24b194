"""Embedding builders on a generated 1,000,000-row action log (2-core machine).

The log is generated with a fixed seed: 20,000 users, 50,000 items in 200 topics, Zipf item
popularity within a topic; each user has 1-5 interests and switches between them in sessions;
a few heavy users have 20,000 actions each (the co-occurrence window must keep them linear).

Measured, ours beside a reference:

* reading the log (parquet and gzip CSV) with ``read_actions`` beside ``pandas.read_parquet`` /
  ``pandas.read_csv`` (which do no validation, time parsing or drop report);
* co-occurrence counting: ours (sparse product per chunk, no sort) beside the straightforward
  reference (item pairs per window offset, summed as COO -> CSR, which sorts);
* the randomized SVD of the PPMI matrix: ours (parallel sparse products, float32) beside
  scikit-learn's ``randomized_svd``;
* the whole co-occurrence build (counts + PPMI + randomized SVD, dim 64) and the ALS build
  (dim 64, 10 sweeps), with topic purity of the 10 nearest neighbours (share of neighbours in the
  item's topic; random vectors give 1/200).

Writes benchmarks/results/embed.{json,md}. Run: python benchmarks/embed.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from pinnersage.actions import read_actions
from pinnersage.embed.als import als_embeddings
from pinnersage.embed.cooccurrence import (
    _sequences,
    cooccurrence_counts,
    cooccurrence_embeddings,
    ppmi,
    randomized_svd,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def generate(
    rows: int,
    seed: int = 0,
    users: int = 20_000,
    items: int = 50_000,
    topics: int = 200,
    heavy: int = 5,
) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    topic_of = rng.integers(0, topics, items)
    by_topic = [np.flatnonzero(topic_of == t) for t in range(topics)]
    heavy_rows = min(heavy * 20_000, rows // 4)
    light = rows - heavy_rows
    # actions per light user ~ lognormal, scaled to the row budget
    per_user = rng.lognormal(3.0, 1.0, users)
    per_user = np.maximum(1, np.round(per_user / per_user.sum() * light)).astype(int)
    per_user[-1] += light - per_user.sum()
    per_user = np.maximum(per_user, 1)
    counts = np.r_[per_user, np.full(heavy, heavy_rows // max(heavy, 1))]
    user_col = np.repeat(np.arange(len(counts)), counts)
    n = len(user_col)
    item_col = np.empty(n, dtype=np.int64)
    time_col = np.empty(n, dtype=np.int64)
    pos = 0
    zipf_cache: dict[int, np.ndarray] = {}
    for c in counts:
        interests = rng.choice(topics, rng.integers(1, 6), replace=False)
        # sessions of ~8 actions, each in one interest
        n_sessions = max(1, c // 8)
        session_topic = rng.choice(interests, n_sessions)
        topic_seq = np.repeat(session_topic, int(np.ceil(c / n_sessions)))[:c]
        for t in np.unique(topic_seq):
            members = by_topic[t]
            if len(members) not in zipf_cache:
                w = 1.0 / np.arange(1, len(members) + 1) ** 1.1
                zipf_cache[len(members)] = w / w.sum()
            mask = topic_seq == t
            item_col[pos : pos + c][mask] = members[
                rng.choice(len(members), int(mask.sum()), p=zipf_cache[len(members)])
            ]
        start = rng.integers(1_600_000_000, 1_630_000_000)
        time_col[pos : pos + c] = start + np.cumsum(rng.integers(1, 3600, c))
        pos += c
    frame = pd.DataFrame({"user_id": user_col, "item_id": item_col, "timestamp": time_col})
    return frame.iloc[:rows].reset_index(drop=True), topic_of


def reference_counts(
    users: np.ndarray, items: np.ndarray, n_items: int, window: int
) -> sp.csr_matrix:
    """The straightforward twin: pairs per offset, COO -> CSR (sorts), summed."""
    total = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for k in range(1, window + 1):
        same = users[k:] == users[:-k]
        if not same.any():
            break
        part = sp.coo_matrix(
            (np.ones(int(same.sum())), (items[:-k][same], items[k:][same])),
            shape=(n_items, n_items),
        ).tocsr()
        total = total + part
    return total + total.T


def purity(catalog, topic_of: np.ndarray, rng: np.random.Generator, k: int = 10) -> float:
    sample = rng.choice(len(catalog), min(2000, len(catalog)), replace=False)
    sims = catalog.vectors[sample] @ catalog.vectors.T
    sims[np.arange(len(sample)), sample] = -np.inf
    nn = np.argpartition(-sims, k, axis=1)[:, :k]
    ids = catalog.item_ids
    return float((topic_of[ids[nn]] == topic_of[ids[sample]][:, None]).mean())


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--skip-als", action="store_true")
    args = parser.parse_args()

    (frame, topic_of), t_gen = timed(lambda: generate(args.rows))
    rows: list[dict[str, object]] = []
    results: dict[str, object] = {
        "rows": len(frame),
        "users": int(frame["user_id"].nunique()),
        "items": int(frame["item_id"].nunique()),
        "window": args.window,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "generate_s": round(t_gen, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        pq_path, csv_path = Path(tmp) / "log.parquet", Path(tmp) / "log.csv.gz"
        frame.to_parquet(pq_path)
        frame.assign(
            timestamp=pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
        ).to_csv(csv_path, index=False)
        log, t_ours = timed(lambda: read_actions(pq_path))
        _, t_ref = timed(lambda: pd.read_parquet(pq_path))
        rows.append(
            {
                "step": "read parquet (1 file)",
                "ours_s": t_ours,
                "reference_s": t_ref,
                "reference": "pandas.read_parquet",
            }
        )
        _, t_ours = timed(lambda: read_actions(csv_path))
        _, t_ref = timed(lambda: pd.read_csv(csv_path))
        rows.append(
            {
                "step": "read gzip CSV, ISO times",
                "ours_s": t_ours,
                "reference_s": t_ref,
                "reference": "pandas.read_csv (no time parsing)",
            }
        )

    ids, users, items, _ = _sequences(log.frame, 1)
    ours, t_ours = timed(lambda: cooccurrence_counts(users, items, len(ids), args.window))
    ref, t_ref = timed(lambda: reference_counts(users, items, len(ids), args.window))
    assert (ours != ref).nnz == 0, "fast counts differ from the reference"
    rows.append(
        {
            "step": f"co-occurrence counts (window {args.window})",
            "ours_s": t_ours,
            "reference_s": t_ref,
            "reference": "pairs per offset, COO->CSR",
        }
    )
    results["nonzero_pairs"] = int(ours.nnz)

    weights = ppmi(ours).astype(np.float32)
    _, t_ours = timed(lambda: randomized_svd(weights, 64, n_iter=4, seed=0))
    _, t_ref = timed(lambda: sk_randomized_svd(weights, 64, n_iter=4, random_state=0))
    rows.append(
        {
            "step": "randomized SVD of the PPMI matrix, k 64",
            "ours_s": t_ours,
            "reference_s": t_ref,
            "reference": "sklearn randomized_svd",
        }
    )

    rng = np.random.default_rng(0)
    co, t_co = timed(lambda: cooccurrence_embeddings(log, dim=64, window=args.window, seed=0))
    rows.append(
        {
            "step": "co-occurrence build, dim 64 (total)",
            "ours_s": t_co,
            "reference_s": None,
            "reference": "",
        }
    )
    results["cooccurrence"] = {**co.stats, "topic_purity@10": purity(co.catalog, topic_of, rng)}
    if not args.skip_als:
        als, t_als = timed(lambda: als_embeddings(log, dim=64, iterations=10, seed=0))
        rows.append(
            {
                "step": "ALS build, dim 64, 10 sweeps (total)",
                "ours_s": t_als,
                "reference_s": None,
                "reference": "",
            }
        )
        results["als"] = {**als.stats, "topic_purity@10": purity(als.catalog, topic_of, rng)}

    for r in rows:
        ref_s = r["reference_s"]
        r["ratio"] = round(float(r["ours_s"]) / float(ref_s), 2) if ref_s else None
        r["ours_s"] = round(float(r["ours_s"]), 2)
        r["reference_s"] = round(float(ref_s), 2) if ref_s else None
    results["steps"] = rows

    lines = [
        f"# Embedding builders on a generated log ({results['rows']:,} rows, "
        f"{results['users']:,} users, {results['items']:,} items; {results['machine']})",
        "",
        "| step | ours (s) | reference (s) | ours / reference | reference |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['ours_s']} | {r['reference_s'] or ''} | "
            f"{r['ratio'] or ''} | {r['reference']} |"
        )
    lines.append("")
    lines.append("| builder | items embedded | topic purity@10 (random: 0.005) |")
    lines.append("|---|---:|---:|")
    for name in ("cooccurrence", "als"):
        if name in results:
            s = results[name]
            lines.append(f"| {name} | {s['items_embedded']:,} | {s['topic_purity@10']:.3f} |")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "embed.md").write_text(text + "\n")
    print(f"\nwrote {RESULTS / 'embed.json'} and {RESULTS / 'embed.md'}")


if __name__ == "__main__":
    main()
