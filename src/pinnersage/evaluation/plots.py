"""Plots of the evaluation report (paper Tables 3-4 as lifts, Figure 7, the α and λ sweeps).

Drawn from ``report.json`` with matplotlib (an optional extra, imported through
:func:`pinnersage._optional.require`) on the non-interactive Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pinnersage._optional import require

__all__ = ["write_plots"]

_MAIN = ("main", "ablation")


def _lifts(plt: Any, report: dict[str, Any], path: Path) -> None:
    budgets = list(report["budgets"])
    groups = report["protocol"]["models"]
    names = [m for m in report["models"] if groups[m]["group"] in _MAIN]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(names) + 1.8), sharey=True)
    for ax, metric in zip(axes, ("relevance", "recall"), strict=True):
        h = 0.8 / len(budgets)
        for bi, b in enumerate(budgets):
            ms = report["budgets"][b]["models"]
            ys = [i + bi * h for i in range(len(names))]
            vals = [(ms[m].get(f"{metric}_lift") or 0.0) * 100 for m in names]
            cis = [ms[m].get(f"{metric}_lift_ci") or [None, None] for m in names]
            lo = [
                v - (c[0] * 100 if c[0] is not None else v) for v, c in zip(vals, cis, strict=True)
            ]
            hi = [
                (c[1] * 100 if c[1] is not None else v) - v for v, c in zip(vals, cis, strict=True)
            ]
            ax.barh(ys, vals, height=h, xerr=[lo, hi], capsize=2, label=f"{b} candidates")
        ax.set_yticks([i + 0.4 - h / 2 for i in range(len(names))], names)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{metric} lift over last_item (%)")
        ax.invert_yaxis()
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Lift over the last item, 95% bootstrap intervals over users")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweep(
    plt: Any, report: dict[str, Any], group: str, xlabel: str, path: Path, with_diversity: bool
) -> bool:
    budgets = list(report["budgets"])
    if not report["budgets"][budgets[0]]["sweeps"].get(group):
        return False
    metrics = ("relevance", "diversity") if with_diversity else ("relevance", "recall")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, metrics, strict=True):
        for b in budgets:
            rows = report["budgets"][b]["sweeps"][group]
            xs = [r["value"] for r in rows]
            ys = [r[metric] for r in rows]
            ax.plot(xs, ys, marker="o", label=f"{b} candidates")
            base = report["budgets"][b]["models"].get("decay_average", {}).get(metric)
            if base is not None and metric != "diversity":
                ax.axhline(base, linestyle=":", linewidth=0.8, color=ax.lines[-1].get_color())
        if metric == "diversity" and report.get("user_diversity") is not None:
            ax.axhline(
                report["user_diversity"], color="black", linestyle="--", label="users' own actions"
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{xlabel} sweep"
        + ("" if with_diversity else " (dotted: decay_average at the same budget)")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_plots(out_dir: str | Path) -> list[Path]:
    """Draw ``lifts.png``, ``embeddings.png``, ``alpha.png``, ``lambda.png`` from the report.

    Parameters
    ----------
    out_dir : str or Path
        The folder holding ``report.json``; the PNG files are written beside it.

    Returns
    -------
    list of Path
        The files written.
    """
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots")
    out = Path(out_dir)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    written = []
    path = out / "lifts.png"
    _lifts(plt, report, path)
    written.append(path)
    for group, label, div in (
        ("embeddings", "number of embeddings e", True),
        ("alpha", "alpha", False),
        ("lambda", "lambda", False),
    ):
        path = out / f"{group}.png"
        if _sweep(plt, report, group, label, path, div):
            written.append(path)
    return written
