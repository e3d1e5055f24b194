"""Ward benchmark: one user's whole profile (ours) against SciPy's and fastcluster's Ward.

For each (n, d), in interleaved rounds (each round times a burst of 5 calls, 3 above
n = 1,000, of ours, then of SciPy, then of the floor; see ``round_times``), the median time of
* ours: ``build_profile`` (Ward NN-chain + cut + medoids + importance), the whole profile;
* SciPy: ``linkage(X, "ward")`` + ``fcluster`` (clustering alone: no medoids, no importance);
* fastcluster: ``fastcluster.linkage_vector(X, "ward")`` + ``fcluster``, when installed;
* the floor: one ``X @ X.T`` in float64 (the distance matrix itself), into a preallocated
  matrix (pure arithmetic: ``build_profile`` too reuses its n x n buffer between calls).

The ratios are medians over rounds of the ratio within a round (paired, so a switch of the
machine's speed between rounds cancels out). One BLAS thread (threadpoolctl), numba code
compiled and warmed before timing. Vectors are unit vectors drawn around a few topics, like a
user's actions. Writes benchmarks/results/ward.{json,md}.

Run: python benchmarks/ward.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from threadpoolctl import threadpool_limits

from pinnersage import ProfileParams, build_profile

RESULTS = Path(__file__).resolve().parent / "results"


def user_vectors(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    topics = rng.normal(size=(max(2, n // 25), d))
    x = topics[rng.integers(0, topics.shape[0], n)] + 0.6 * rng.normal(size=(n, d)) / np.sqrt(d) * 4
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def scipy_ward(x: np.ndarray, cut: float) -> np.ndarray:
    return fcluster(linkage(x, "ward"), t=cut, criterion="distance")


def fastcluster_ward(fastcluster: Any, x: np.ndarray, cut: float) -> np.ndarray:
    return fcluster(fastcluster.linkage_vector(x, "ward"), t=cut, criterion="distance")


def round_times(
    fns: list[Any], budget_s: float, burst: int = 5, min_rounds: int = 5, max_rounds: int = 2000
) -> list[list[float]]:
    """Per round, the median time of each function over a burst of ``burst`` calls.

    Rounds interleave the functions (each round runs a burst of each, in turn), so that all of
    them meet the same machine: this shared 2-core VM switches between a fast and a slow mode
    (measured: the same call at 90 and at 150 us), and timing one function after the other
    would put those switches into the ratios. Within a round each function runs back to back,
    as the batch job runs one user after another (the first call after another library's
    round meets its caches cold; the burst's median is the steady state).
    """
    for fn in fns:
        fn()  # warm
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (
        rounds < min_rounds or time.perf_counter() - start < budget_s * len(fns)
    ):
        for fn, into in zip(fns, times, strict=True):
            calls = []
            for _ in range(burst):
                t0 = time.perf_counter()
                fn()
                calls.append(time.perf_counter() - t0)
            into.append(statistics.median(calls))
        rounds += 1
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a / b`` (the two timed in the same round, so in the same mode
    of the machine)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args()
    sizes = [20, 100, 500, 2000] if args.quick else [20, 100, 500, 1000, 2000, 5000]
    dims = [64] if args.quick else [64, 256]
    budget = 0.3 if args.quick else 1.5
    try:
        import fastcluster
    except ImportError:  # pragma: no cover - optional
        fastcluster = None
    params = ProfileParams()
    alpha = params.distance_threshold
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(limits=1):
        for d in dims:
            for n in sizes:
                x = user_vectors(n, d, rng)
                ids = np.arange(n, dtype=np.int64)
                t = np.sort(rng.uniform(0, 90 * 86400, n))
                now = 90 * 86400.0
                x64 = x.astype(np.float64)
                cut = np.sqrt(alpha)
                fns = [
                    partial(build_profile, x, ids, t, now_s=now, params=params),
                    partial(scipy_ward, x64, cut),
                    partial(np.matmul, x64, x64.T, out=np.empty((n, n))),
                ]
                per_round = round_times(fns, budget, burst=5 if n <= 1000 else 3)
                ours, scipy_t, floor = (statistics.median(t) for t in per_round)
                fc = None  # a reference only, timed on its own (its memory churn would slow the
                if fastcluster is not None:  # others in the interleaved rounds)
                    fc = statistics.median(
                        round_times([partial(fastcluster_ward, fastcluster, x64, cut)], budget)[0]
                    )
                rows.append(
                    {
                        "n": n,
                        "d": d,
                        "rounds": len(per_round[0]),
                        "ours_s": ours,
                        "scipy_s": scipy_t,
                        "fastcluster_s": fc,
                        "floor_s": floor,
                        "speedup_vs_scipy": paired_ratio(per_round[1], per_round[0]),
                        "ratio_to_floor": paired_ratio(per_round[0], per_round[2]),
                    }
                )
                r = rows[-1]
                print(
                    f"n={n:5d} d={d:3d}  ours {ours * 1e3:9.3f} ms  scipy {scipy_t * 1e3:9.3f} ms  "
                    f"x{r['speedup_vs_scipy']:5.1f}  floor {floor * 1e3:8.3f} ms  "
                    f"ours/floor {r['ratio_to_floor']:5.2f}",
                    flush=True,
                )
    header = (
        "| n | d | ours: whole profile (ms) | SciPy linkage+fcluster (ms) | fastcluster (ms) "
        "| speed-up vs SciPy | X @ X.T floor (ms) | ours / floor |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        fc = f"{r['fastcluster_s'] * 1e3:.3f}" if r["fastcluster_s"] is not None else "n/a"
        lines.append(
            f"| {r['n']} | {r['d']} | {r['ours_s'] * 1e3:.3f} | {r['scipy_s'] * 1e3:.3f} | {fc} "
            f"| {r['speedup_vs_scipy']:.1f}x | {r['floor_s'] * 1e3:.3f} "
            f"| {r['ratio_to_floor']:.2f} |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": 1,
        "quick": args.quick,
        "distance_threshold": alpha,
    }
    name = "ward-quick" if args.quick else "ward"
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(
        "# Ward benchmark (`python benchmarks/ward.py`)\n\n" + table + "\n"
    )
    print(f"\nwrote {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")


if __name__ == "__main__":
    main()
