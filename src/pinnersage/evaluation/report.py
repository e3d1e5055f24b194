"""The evaluation report: ``report.json`` and ``report.md`` in the layout of the paper's tables.

Lifts are fractions over ``last_item`` (0.88 means +88%), as in Tables 1, 3 and 4, each with a
95% bootstrap interval over users (users are resampled; every model is measured on the same
resample, so intervals of differences are paired). ``recall_diff_decay_average`` is the mean
paired per-user difference of recall to ``decay_average``, the quantity of the issue's bar.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pinnersage.evaluation.metrics import bootstrap_stats
from pinnersage.evaluation.runner import EvalResult

__all__ = ["PAPER_LIFTS", "PAPER_TABLE1", "build_report", "check_bar", "write_report"]

#: Table 3 (relevance, recall) and Table 4 (R-precision, reciprocal rank) lifts of the paper.
PAPER_LIFTS: dict[str, dict[str, float]] = {
    "decay_average": {
        "relevance": 0.28,
        "recall": 0.14,
        "r_precision": 0.08,
        "reciprocal_rank": 0.07,
    },
    "pinnersage_sample1": {
        "relevance": 0.33,
        "recall": 0.18,
        "r_precision": 0.24,
        "reciprocal_rank": 0.18,
    },
    "pinnersage_kmeans5": {
        "relevance": 0.91,
        "recall": 0.68,
        "r_precision": 0.32,
        "reciprocal_rank": 0.24,
    },
    "pinnersage_complete": {
        "relevance": 0.88,
        "recall": 0.65,
        "r_precision": 0.29,
        "reciprocal_rank": 0.22,
    },
    "pinnersage_centroid": {
        "relevance": 1.05,
        "recall": 0.81,
        "r_precision": 0.37,
        "reciprocal_rank": 0.28,
    },
    "pinnersage_lambda0": {
        "relevance": 0.97,
        "recall": 0.72,
        "r_precision": 0.31,
        "reciprocal_rank": 0.24,
    },
    "pinnersage_lambda0.1": {
        "relevance": 0.94,
        "recall": 0.69,
        "r_precision": 0.30,
        "reciprocal_rank": 0.24,
    },
    "pinnersage_paper": {
        "relevance": 1.10,
        "recall": 0.88,
        "r_precision": 0.37,
        "reciprocal_rank": 0.28,
    },
}
#: Table 1 of the paper: next-action accuracy lift over the last item.
PAPER_TABLE1: dict[str, float] = {
    "last_item": 0.0,
    "decay_average": 0.25,
    "kmeans3_oracle": 0.98,
    "best_past_item_oracle": 1.40,
}

METRICS = (
    "recall",
    "recall_all",
    "relevance",
    "diversity",
    "r_precision",
    "reciprocal_rank",
    "r_precision_popular",
    "reciprocal_rank_popular",
)

DEFINITIONS = {
    "recall": "share of the user's test-day items new to them (not acted on before the day) "
    "that are among the candidates; per user pooled over their test days, then "
    "averaged over users",
    "recall_all": "the same over all test-day items (candidates never include items already "
    "acted on, so repeats count as misses)",
    "relevance": "share of test-day items with cosine >= relevance_cosine to some candidate, "
    "in the fixed reference embedding",
    "diversity": "1 - mean pairwise cosine of the candidates in the reference embedding; "
    "user_diversity is the same statistic over the distinct items of the user's "
    "history",
    "r_precision": "each new test item mixed with `negatives` items sampled uniformly from the "
    "catalog (never the user's targets or seen items); all scored by the best "
    "cosine to any query vector of the model; share of positives in the top R "
    "(R = positives of the case); ties rank negatives first",
    "reciprocal_rank": "mean over positives of 1 / (1 + own negatives scoring >= the positive)",
    "r_precision_popular": "as r_precision, negatives sampled in proportion to (training count "
    "+ 1)",
    "lift": "mean(model) / mean(last_item) - 1 over the users where the metric is defined",
    "next_action": "Table 1: the first test-day item is predicted correctly when the model's "
    "embedding (oracles: the best of theirs) has cosine >= relevance_cosine to "
    "it, in the model embedding",
}


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _model_stats(
    pu: pd.DataFrame, models: list[str], n_boot: int, seed: int
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {m: {} for m in models}
    base = models.index("last_item")
    da = models.index("decay_average") if "decay_average" in models else None
    for metric in METRICS:
        if metric not in pu.columns:
            continue
        wide = pu.pivot(index="user", columns="model", values=metric).reindex(columns=models)
        wide = wide.dropna(axis=0, how="any")
        values = wide.to_numpy(dtype=np.float64).T
        rng = np.random.default_rng([seed, METRICS.index(metric)])
        st = bootstrap_stats(values, base, n_boot, rng)
        st_da = (
            bootstrap_stats(
                values, da, n_boot, np.random.default_rng([seed, METRICS.index(metric)])
            )
            if da is not None
            else None
        )
        for i, m in enumerate(models):
            o = out[m]
            o[metric] = st["mean"][i]
            if metric == "diversity":
                continue
            o[f"{metric}_lift"] = st["lift"][i]
            o[f"{metric}_lift_ci"] = [st["lift_low"][i], st["lift_high"][i]]
            if st_da is not None and metric in ("recall", "relevance", "recall_all"):
                o[f"{metric}_diff_decay_average"] = st_da["diff"][i]
                o[f"{metric}_diff_decay_average_ci"] = [st_da["diff_low"][i], st_da["diff_high"][i]]
            o[f"n_users_{metric}"] = int(values.shape[1])
    return out


def _sweep(
    models_stats: Mapping[str, Mapping[str, Any]], result: EvalResult, group: str
) -> list[dict[str, Any]]:
    rows = []
    for spec in result.models:
        if spec.group != group:
            continue
        s = models_stats[spec.name]
        rows.append(
            {
                "name": spec.name,
                "value": spec.sweep_value,
                **{
                    k: s.get(k)
                    for k in (
                        "recall",
                        "relevance",
                        "diversity",
                        "recall_lift",
                        "relevance_lift",
                        "r_precision",
                        "reciprocal_rank",
                    )
                },
            }
        )
    return rows


def _buckets(pu: pd.DataFrame, users: pd.DataFrame, budget: int) -> list[dict[str, Any]]:
    edges = [(1, 1), (2, 3), (4, 7), (8, 15), (16, 10**9)]
    names = ["last_item", "decay_average", "pinnersage", "pinnersage_paper"]
    sub = pu[(pu["budget"] == budget) & pu["model"].isin(names)]
    clusters = users.set_index("user")["n_clusters"]
    rows = []
    for lo, hi in edges:
        ids = clusters[(clusters.round() >= lo) & (clusters.round() <= hi)].index
        part = sub[sub["user"].isin(ids)]
        row: dict[str, Any] = {
            "clusters": f"{lo}-{hi}" if hi < 10**9 else f">={lo}",
            "n_users": len(ids),
        }
        for m in names:
            pm = part[part["model"] == m]
            row[f"{m}_recall"] = float(pm["recall"].mean()) if len(pm) else None
            row[f"{m}_relevance"] = float(pm["relevance"].mean()) if len(pm) else None
        rows.append(row)
    return rows


def check_bar(
    report: Mapping[str, Any], *, relevance_margin: float | None = 0.15
) -> dict[str, Any]:
    """The issue's bar for ``pinnersage`` and ``pinnersage_paper``, budget by budget."""
    checks: dict[str, Any] = {}
    ok_all = True
    for b, block in report["budgets"].items():
        ms = block["models"]
        if not {"pinnersage", "decay_average", "last_item"} <= set(ms):
            continue
        ps, da, li = ms["pinnersage"], ms["decay_average"], ms["last_item"]

        def val(d: Mapping[str, Any], key: str) -> float:
            v = d.get(key)
            return float("nan") if v is None else float(v)

        c = {
            "recall_diff_ge_-0.005": val(ps, "recall_diff_decay_average") >= -0.005,
            "relevance_above_decay_average": val(ps, "relevance") > val(da, "relevance"),
            "recall_above_last_item": val(ps, "recall") > val(li, "recall"),
            "relevance_above_last_item": val(ps, "relevance") > val(li, "relevance"),
        }
        if relevance_margin is not None and int(b) == min(int(k) for k in report["budgets"]):
            c["relevance_lift_margin_ge_0.15"] = (
                val(ps, "relevance_lift") - val(da, "relevance_lift") >= relevance_margin
            )
        if int(b) == max(int(k) for k in report["budgets"]) and "pinnersage_paper" in ms:
            c["paper_recall_above_last_item"] = val(ms["pinnersage_paper"], "recall") > val(
                li, "recall"
            )
        ok_all = ok_all and all(c.values())
        checks[b] = c
    checks["all"] = ok_all
    return checks


def build_report(result: EvalResult, *, command: str | None = None) -> dict[str, Any]:
    """The report as plain data (the schema of ``report.json``)."""
    proto = result.protocol
    names = [m.name for m in result.models]
    pu = result.per_user
    budgets: dict[str, Any] = {}
    for b in proto.budgets:
        stats = _model_stats(pu[pu["budget"] == b], names, proto.bootstrap, proto.seed)
        budgets[str(b)] = {
            "models": stats,
            "sweeps": {g: _sweep(stats, result, g) for g in ("alpha", "lambda", "embeddings")},
            "interest_buckets": _buckets(pu, result.users, b),
        }
    top = str(max(proto.budgets))
    na = result.next_action
    table1: dict[str, Any] = {}
    if len(na):
        cols = [c for c in na.columns if c != "user"]
        values = na[cols].to_numpy(dtype=np.float64).T
        st = bootstrap_stats(
            values,
            cols.index("last_item"),
            proto.bootstrap,
            np.random.default_rng([proto.seed, 99]),
        )
        for i, c in enumerate(cols):
            table1[c] = {
                "accuracy": st["mean"][i],
                "lift": st["lift"][i],
                "lift_ci": [st["lift_low"][i], st["lift_high"][i]],
                "paper_lift": PAPER_TABLE1.get(c),
            }
        table1["n_users"] = int(values.shape[1])
    report = {
        "protocol": {
            **proto.to_dict(),
            **result.info,
            "definitions": DEFINITIONS,
            "command": command,
            "models": {m.name: m.describe() for m in result.models},
        },
        "models": budgets[top]["models"],
        "budgets": budgets,
        "next_action": table1,
        "user_diversity": float(result.users["own_diversity"].mean()),
        "paper_lifts": PAPER_LIFTS,
    }
    report["bar"] = check_bar(report)
    return _clean(report)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.0f}%"


def _ci(ci: list[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f" [{ci[0] * 100:+.0f}, {ci[1] * 100:+.0f}]"


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


TABLE3_ORDER = [
    "last_item",
    "decay_average",
    "decay_average_lambda0",
    "decay_average_lambda0.1",
    "decay_average_lambda0.25",
    "pinnersage_sample1",
    "pinnersage_kmeans5",
    "pinnersage_complete",
    "pinnersage_centroid",
    "pinnersage_lambda0",
    "pinnersage_lambda0.1",
    "pinnersage_paper",
    "pinnersage",
]


def render_markdown(report: Mapping[str, Any], title: str = "Offline evaluation") -> str:
    """``report.md``: Tables 3 + 4 per budget, Table 1, Figure 7 and the sweeps, the bar."""
    p = report["protocol"]
    lines = [f"# {title}", ""]
    lines.append(
        f"Protocol: split `{p['split']}`, {len(p.get('test_days') or [])} test days, "
        f"history window {p['window_days']} days, budgets {p['budgets']}, embeddings "
        f"`{p['embedding_kind']}` d={p['embedding_dim']} (reference `{p['reference_kind']}` "
        f"d={p['reference_dim']}), {p['negatives']} negatives per positive, seed {p['seed']}. "
        f"{p.get('n_users_evaluated')} users, {p.get('n_cases_evaluated')} user-days. Lifts are "
        "over `last_item`, with 95% bootstrap intervals over users in brackets."
    )
    if p.get("split_reason"):
        lines += ["", f"Split: {p['split_reason']}."]
    lines.append("")
    for b, block in report["budgets"].items():
        ms = block["models"]
        lines += [
            f"## Tables 3 and 4 at {b} candidates",
            "",
            "| model | Rel. | Recall | R-Prec. | Rec. Rank | recall diff. to decay avg. | "
            "recall (abs.) | relevance (abs.) | recall_all | diversity | paper Rel. / "
            "Recall / R-Prec. / Rec. Rank |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        order = [m for m in TABLE3_ORDER if m in ms] + [
            m
            for m in ms
            if m not in TABLE3_ORDER
            and report["protocol"]["models"][m]["group"] in ("main", "ablation", "study")
        ]
        for m in order:
            s = ms[m]
            paper = PAPER_LIFTS.get(m)
            paper_s = (
                " / ".join(
                    _pct(paper[k])
                    for k in ("relevance", "recall", "r_precision", "reciprocal_rank")
                )
                if paper
                else ""
            )
            if m == "last_item":
                paper_s = "0 (reference)"
            diff = s.get("recall_diff_decay_average")
            lines.append(
                f"| `{m}` | {_pct(s.get('relevance_lift'))}{_ci(s.get('relevance_lift_ci'))} | "
                f"{_pct(s.get('recall_lift'))}{_ci(s.get('recall_lift_ci'))} | "
                f"{_pct(s.get('r_precision_lift'))} | {_pct(s.get('reciprocal_rank_lift'))} | "
                f"{'—' if diff is None else f'{diff:+.4f}'} | {_num(s.get('recall'))} | "
                f"{_num(s.get('relevance'))} | {_num(s.get('recall_all'))} | "
                f"{_num(s.get('diversity'))} | {paper_s} |"
            )
        lines.append("")
    top = str(max(int(k) for k in report["budgets"]))
    sweeps = report["budgets"][top]["sweeps"]
    for group, label in (
        ("embeddings", "Figure 7: number of embeddings e (`pinnersage_paper`)"),
        ("alpha", "α sweep (`pinnersage`)"),
        ("lambda", "λ sweep (`pinnersage`)"),
    ):
        if not sweeps.get(group):
            continue
        lines += [
            f"## {label}",
            "",
            "| value | "
            + " | ".join(f"Rel.@{b} | Recall@{b} | div.@{b}" for b in report["budgets"])
            + " |",
            "|---|" + "---|---|---|" * len(report["budgets"]),
        ]
        for i, row in enumerate(sweeps[group]):
            cells = []
            for b in report["budgets"]:
                r = report["budgets"][b]["sweeps"][group][i]
                cells.append(
                    f"{_num(r['relevance'])} | {_num(r['recall'])} | {_num(r['diversity'])}"
                )
            lines.append(f"| {row['value']:g} | " + " | ".join(cells) + " |")
        if group == "embeddings":
            lines.append(
                f"\nDiversity of the users' own histories: {_num(report.get('user_diversity'))}."
            )
        lines.append("")
    t1 = report.get("next_action") or {}
    if t1:
        lines += [
            "## Table 1: next-action accuracy (cosine >= threshold)",
            "",
            "| model | accuracy | lift over last item | paper |",
            "|---|---|---|---|",
        ]
        for m, s in t1.items():
            if m == "n_users":
                continue
            lines.append(
                f"| `{m}` | {_num(s['accuracy'])} | {_pct(s['lift'])}"
                f"{_ci(s.get('lift_ci'))} | {_pct(s.get('paper_lift'))} |"
            )
        lines.append("")
    lines += [
        f"## Users by number of interests (clusters of `pinnersage`), {top} candidates",
        "",
        "| clusters | users | recall last / decay / pinnersage / paper | relevance last / "
        "decay / pinnersage / paper |",
        "|---|---|---|---|",
    ]
    for row in report["budgets"][top]["interest_buckets"]:
        names = ("last_item", "decay_average", "pinnersage", "pinnersage_paper")
        lines.append(
            f"| {row['clusters']} | {row['n_users']} | "
            + " / ".join(_num(row.get(f"{m}_recall")) for m in names)
            + " | "
            + " / ".join(_num(row.get(f"{m}_relevance")) for m in names)
            + " |"
        )
    lines += ["", "## The bar (issue 5) for `pinnersage`", ""]
    for b, c in report["bar"].items():
        if b == "all":
            continue
        lines.append(f"- {b}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in c.items()))
    lines.append(f"- all met: {'yes' if report['bar']['all'] else 'NO'}")
    lines.append("")
    return "\n".join(lines)


def write_report(
    result: EvalResult,
    out_dir: str | Path,
    *,
    command: str | None = None,
    title: str = "Offline evaluation",
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``per_user.parquet`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(result, command=command)
    paths = {
        "json": out / "report.json",
        "md": out / "report.md",
        "per_user": out / "per_user.parquet",
    }
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(paths["json"])
    paths["md"].write_text(render_markdown(report, title), encoding="utf-8")
    pu = result.per_user.copy()
    pu["user"] = pu["user"].astype(str)
    pu.to_parquet(paths["per_user"], index=False)
    return paths
