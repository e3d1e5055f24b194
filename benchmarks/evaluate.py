"""The offline evaluation on the shared datasets, timed: the numbers behind ``docs/results.md``.

Runs ``pinnersage evaluate`` with its defaults on Online Retail (``--split auto``: walk-forward
by day, its last 14 days hold 743 users) and on MovieLens latest-small (``--split auto``: the
per-user temporal split, since its last 14 days hold 8 users; and, for reference, the forced
walk-forward split ``--split day``), writes each report under
``docs/results/<name>/``, and prints a table of wall-clock time, users and the headline numbers
(``pinnersage`` and ``pinnersage_paper`` beside ``decay_average`` and ``last_item``). The issue's
goal: under ten minutes per dataset on a 2-core machine.

Writes ``benchmarks/results/evaluate.json`` and ``evaluate.md``.
Run: ``.venv/bin/python benchmarks/evaluate.py [--only NAME] [--max-users N]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "results"
ML = "../shared/data/ml-latest-small/ratings.csv"
ML_COLS = ["--user-col", "userId", "--item-col", "movieId", "--time-col", "timestamp"]
RUNS = {
    "online-retail": ["--actions", "src/pinnersage/data/online-retail/actions.parquet"],
    "movielens": ["--actions", ML, *ML_COLS],
    "movielens-day-split": ["--actions", ML, *ML_COLS, "--split", "day"],
}
HEADLINE = ("last_item", "decay_average", "pinnersage", "pinnersage_paper")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(RUNS), action="append")
    parser.add_argument("--max-users", type=int, default=None)
    args = parser.parse_args()
    rows = []
    for name, flags in RUNS.items():
        if args.only and name not in args.only:
            continue
        out = DOCS / name
        cmd = [
            str(Path(sys.executable).with_name("pinnersage")),
            "evaluate",
            *flags,
            "--out",
            str(out),
            "--title",
            f"Offline evaluation: {name}",
        ]
        if args.max_users:
            cmd += ["--max-users", str(args.max_users)]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        seconds = time.perf_counter() - t0
        report = json.loads((out / "report.json").read_text())
        row = {
            "dataset": name,
            "seconds": round(seconds, 1),
            "split": report["protocol"]["split"],
            "users": report["protocol"]["n_users_evaluated"],
            "user_days": report["protocol"]["n_cases_evaluated"],
            "bar_met": report["bar"]["all"],
            "command": "pinnersage evaluate " + " ".join([*flags, "--out", f"docs/results/{name}"]),
        }
        for b, block in report["budgets"].items():
            for m in HEADLINE:
                s = block["models"][m]
                row[f"{m}@{b}"] = {
                    "recall": s["recall"],
                    "relevance": s["relevance"],
                    "recall_lift": s["recall_lift"],
                    "relevance_lift": s["relevance_lift"],
                }
        rows.append(row)
        print(
            f"{name}: {seconds:.0f} s, {row['users']} users, bar met: {row['bar_met']}", flush=True
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evaluate.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "# Offline evaluation, timed (`python benchmarks/evaluate.py`)",
        "",
        "2-core machine, defaults of `pinnersage evaluate` (goal: under 600 s per dataset).",
        "",
        "| dataset | split | seconds | users | user-days | recall@400 last / decay / "
        "pinnersage / paper | relevance@50 last / decay / pinnersage / paper | bar met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rec = " / ".join(f"{r[f'{m}@400']['recall']:.3f}" for m in HEADLINE)
        rel = " / ".join(f"{r[f'{m}@50']['relevance']:.3f}" for m in HEADLINE)
        lines.append(
            f"| {r['dataset']} | {r['split']} | {r['seconds']} | {r['users']} | "
            f"{r['user_days']} | "
            f"{rec} | {rel} | {'yes' if r['bar_met'] else 'no'} |"
        )
    (RESULTS / "evaluate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {RESULTS / 'evaluate.json'} and {RESULTS / 'evaluate.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
