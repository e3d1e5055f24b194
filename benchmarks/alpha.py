"""How α (``distance_threshold``) shapes profiles on real logs: the numbers behind its default.

For each α on a grid, profiles are built for every user of a log from their last 90 days of
actions (co-occurrence item embeddings, dim 64, fit on the same log), and the script reports:
clusters per user (median, p90, max; users split into light and heavy by action count), the share of
actions that sit in a cluster of two or more (what the paper's literal algorithm keeps), and the
cohesion of clusters (mean cosine of a member to its cluster's medoid).

The paper reports 3-5 clusters for light users and 75-100 for heavy ones. Writes
benchmarks/results/alpha.{json,md}. Run: python benchmarks/alpha.py [--users N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pinnersage import ProfileParams, build_profile
from pinnersage.actions import read_actions
from pinnersage.data import online_retail
from pinnersage.embed.cooccurrence import cooccurrence_embeddings
from pinnersage.params import LogParams

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DAY = 86_400
ALPHAS = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0]
DATASETS = {
    "online-retail": (online_retail("actions"), LogParams()),
    "movielens": (
        ROOT.parent / "shared" / "data" / "ml-latest-small" / "ratings.csv",
        LogParams(user_col="userId", item_col="movieId", time_col="timestamp"),
    ),
}


def sweep(name: str, path: Path, log_params: LogParams, max_users: int) -> list[dict[str, float]]:
    frame = read_actions(path, log_params).frame
    catalog = cooccurrence_embeddings(frame, dim=64, seed=0).catalog
    rows = catalog.rows(frame["item_id"].to_numpy(), missing="mask")
    frame = frame[rows >= 0].assign(row=rows[rows >= 0])
    users = []
    for _, g in frame.groupby("user_id", sort=True):
        end = int(g["timestamp"].max())
        g = g[g["timestamp"] > end - 90 * DAY]
        users.append((g["row"].to_numpy(), g["timestamp"].to_numpy(), end))
    rng = np.random.default_rng(0)
    if len(users) > max_users:
        users = [users[i] for i in np.sort(rng.choice(len(users), max_users, replace=False))]
    sizes = np.array([len(u[0]) for u in users])
    heavy_cut = np.quantile(sizes, 0.9)
    out = []
    for alpha in ALPHAS:
        params = ProfileParams(distance_threshold=alpha, keep_singletons=True)
        counts, kept, cohesion = [], 0, []
        for item_rows, t, end in users:
            x = catalog.vectors[item_rows]
            p = build_profile(x, item_rows, t, now_s=end, params=params)
            counts.append(len(p))
            kept += sum(c.size for c in p.clusters if c.size > 1)
            for c in p.clusters:
                if c.size > 1:
                    cohesion.append(float(catalog.vectors[c.medoid_item_id] @ x.mean(axis=0)))
        counts_arr = np.array(counts)
        light = counts_arr[sizes < heavy_cut]
        heavy = counts_arr[sizes >= heavy_cut]
        out.append(
            {
                "dataset": name,
                "alpha": alpha,
                "clusters_median": float(np.median(counts_arr)),
                "clusters_p90": float(np.quantile(counts_arr, 0.9)),
                "clusters_max": int(counts_arr.max()),
                "light_median": float(np.median(light)),
                "heavy_median": float(np.median(heavy)),
                "actions_in_multi_clusters": kept / int(sizes.sum()),
                "medoid_cosine_to_user_mean": float(np.mean(cohesion))
                if cohesion
                else float("nan"),
            }
        )
        r = out[-1]
        print(
            f"{name:14s} α={alpha:4.1f}  clusters/user median {r['clusters_median']:5.1f} "
            f"p90 {r['clusters_p90']:6.1f} max {r['clusters_max']:4d}  "
            f"light {r['light_median']:5.1f} "
            f"heavy {r['heavy_median']:6.1f}  in clusters≥2 {r['actions_in_multi_clusters']:.2f}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1500, help="users sampled per dataset")
    args = parser.parse_args()
    rows = []
    for name, (path, log_params) in DATASETS.items():
        rows += sweep(name, path, log_params, args.users)
    lines = [
        "| dataset | α | clusters/user median | p90 | max | light users (median) "
        "| heavy users, top 10% (median) | actions in clusters of ≥ 2 |",
        "|" + "---|" * 8,
    ]
    lines += [
        f"| {r['dataset']} | {r['alpha']} | {r['clusters_median']:.0f} | {r['clusters_p90']:.0f} "
        f"| {r['clusters_max']} | {r['light_median']:.0f} | {r['heavy_median']:.0f} "
        f"| {r['actions_in_multi_clusters']:.2f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print("\n" + table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alpha.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "alpha.md").write_text("# α sweep (`python benchmarks/alpha.py`)\n\n" + table + "\n")
    print(f"wrote {RESULTS / 'alpha.json'} and {RESULTS / 'alpha.md'}")


if __name__ == "__main__":
    main()
