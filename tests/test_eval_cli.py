"""End to end: ``pinnersage evaluate`` on a small synthetic log; report schema; plots."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from test_eval_protocol import synthetic_log

from pinnersage.cli import main
from pinnersage.errors import PinnerSageWarning
from pinnersage.evaluation.report import check_bar

NAMED = [
    "last_item",
    "decay_average",
    "decay_average_lambda0",
    "decay_average_lambda0.1",
    "decay_average_lambda0.25",
    "pinnersage",
    "pinnersage_paper",
    "pinnersage_sample1",
    "pinnersage_kmeans5",
    "pinnersage_complete",
    "pinnersage_centroid",
    "pinnersage_lambda0",
    "pinnersage_lambda0.1",
]
METRIC_KEYS = [
    "recall",
    "recall_all",
    "relevance",
    "recall_lift",
    "relevance_lift",
    "r_precision",
    "reciprocal_rank",
    "r_precision_lift",
    "reciprocal_rank_lift",
    "recall_lift_ci",
    "relevance_lift_ci",
    "recall_diff_decay_average",
    "diversity",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("eval")
    log = tmp / "actions.parquet"
    synthetic_log(0, n_users=60, n_days=50, n_items=90).to_parquet(log)
    out = tmp / "out"
    status = main(
        [
            "evaluate",
            "--actions",
            str(log),
            "--out",
            str(out),
            "--split",
            "day",
            "--test-days",
            "5",
            "--budgets",
            "5,10,20",
            "--bootstrap",
            "50",
            "--embedding-dim",
            "8",
            "--reference-dim",
            "8",
            "--alphas",
            "0.5,1",
            "--lambdas",
            "0,0.1",
            "--embeddings-sweep",
            "1,3",
        ]
    )
    assert status == 0
    return out


def test_report_schema(run_dir: Path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    assert set(report) >= {"protocol", "models", "budgets", "next_action", "bar"}
    assert list(report["budgets"]) == ["5", "10", "20"]
    assert report["models"] == report["budgets"]["20"]["models"]
    for b in ("5", "10", "20"):
        ms = report["budgets"][b]["models"]
        assert set(NAMED) <= set(ms)
        for name in NAMED:
            assert set(METRIC_KEYS) <= set(ms[name]), name
        assert ms["last_item"]["recall_lift"] == 0.0
        assert 0.0 <= ms["pinnersage"]["recall"] <= 1.0
        assert [r["value"] for r in report["budgets"][b]["sweeps"]["alpha"]] == [0.5, 1.0]
        assert [r["value"] for r in report["budgets"][b]["sweeps"]["embeddings"]] == [1.0, 3.0]
    p = report["protocol"]
    assert p["split"] == p["split_requested"] == "day" and "as asked" in p["split_reason"]
    for key in (
        "split",
        "split_requested",
        "split_reason",
        "min_test_users",
        "test_days",
        "window_days",
        "budgets",
        "embedding_kind",
        "embedding_dim",
        "reference_kind",
        "reference_dim",
        "seed",
        "negatives",
        "fit_last_timestamp",
        "first_test_day",
        "definitions",
        "models",
    ):
        assert key in p, key
    assert p["fit_last_timestamp"] < p["first_test_day"]
    assert len(p["test_days"]) == 5
    assert {"last_item", "decay_average", "kmeans3_oracle", "best_past_item_oracle"} <= set(
        report["next_action"]
    )
    # the oracle that may pick the best past item is never worse than the last item
    na = report["next_action"]
    assert na["best_past_item_oracle"]["accuracy"] >= na["last_item"]["accuracy"]
    # recall at a larger budget is never lower for the deterministic decay average
    assert (
        report["budgets"]["20"]["models"]["decay_average"]["recall"]
        >= report["budgets"]["5"]["models"]["decay_average"]["recall"]
    )


def test_markdown_plots_and_per_user(run_dir: Path) -> None:
    import pandas as pd

    md = (run_dir / "report.md").read_text()
    assert "Tables 3 and 4 at 20 candidates" in md and "Table 1" in md
    for name in ("lifts.png", "embeddings.png", "alpha.png", "lambda.png"):
        data = (run_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    pu = pd.read_parquet(run_dir / "per_user.parquet")
    assert {"user", "model", "budget", "recall", "relevance", "r_precision"} <= set(pu.columns)
    assert set(pu["budget"]) == {5, 10, 20}


def test_bar_checker_flags_failures() -> None:
    def block(ps_rel: float, diff: float) -> dict:
        return {
            "models": {
                "pinnersage": {
                    "recall": 0.3,
                    "relevance": ps_rel,
                    "recall_diff_decay_average": diff,
                    "relevance_lift": 1.0,
                },
                "pinnersage_paper": {"recall": 0.2},
                "decay_average": {"recall": 0.3, "relevance": 0.4, "relevance_lift": 0.5},
                "last_item": {"recall": 0.1, "relevance": 0.2},
            }
        }

    good = check_bar({"budgets": {"50": block(0.5, 0.0), "400": block(0.5, -0.001)}})
    assert good["all"]
    bad = check_bar({"budgets": {"50": block(0.5, 0.0), "400": block(0.5, -0.01)}})
    assert not bad["all"] and not bad["400"]["recall_diff_ge_-0.005"]


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id\n1,2\n")
    assert main(["evaluate", "--actions", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "evaluate: error" in capsys.readouterr().err


def test_default_split_falls_back_to_per_user_when_test_days_hold_few_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "actions.parquet"
    synthetic_log(3, n_users=40, n_days=30, n_items=60).to_parquet(log)
    small = [
        "--budgets",
        "5,10",
        "--bootstrap",
        "10",
        "--embedding-dim",
        "8",
        "--reference-dim",
        "8",
        "--alphas",
        "1",
        "--lambdas",
        "0.01",
        "--embeddings-sweep",
        "3",
        "--no-ablations",
        "--no-plots",
    ]
    with pytest.warns(PinnerSageWarning, match="per-user temporal split"):
        assert (
            main(
                [
                    "evaluate",
                    "--actions",
                    str(log),
                    "--out",
                    str(tmp_path / "auto"),
                    "--test-days",
                    "3",
                    *small,
                ]
            )
            == 0
        )
    assert "split: user (auto: the last 3 test days hold only" in capsys.readouterr().err
    p = json.loads((tmp_path / "auto" / "report.json").read_text())["protocol"]
    assert p["split_requested"] == "auto" and p["split"] == "user"
    assert p["min_test_users"] == 100 and "< min_test_users = 100" in p["split_reason"]
    # every user with a history is evaluated on their own last active day
    assert len(p["test_days"]) > 3
    # a threshold the test days meet keeps the walk-forward split, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", PinnerSageWarning)
        assert (
            main(
                [
                    "evaluate",
                    "--actions",
                    str(log),
                    "--out",
                    str(tmp_path / "day"),
                    "--test-days",
                    "3",
                    "--min-test-users",
                    "2",
                    *small,
                ]
            )
            == 0
        )
    p = json.loads((tmp_path / "day" / "report.json").read_text())["protocol"]
    assert p["split_requested"] == "auto" and p["split"] == "day"
    assert len(p["test_days"]) == 3 and ">= min_test_users = 2" in p["split_reason"]


def test_without_matplotlib_the_reports_are_written_and_the_plots_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plots extra were absent
    log = tmp_path / "actions.parquet"
    synthetic_log(4, n_users=30, n_days=20, n_items=42).to_parquet(log)
    argv = ["evaluate", "--actions", str(log), "--out", str(tmp_path / "o"), "--split", "user"]
    argv += ["--budgets", "5", "--bootstrap", "5", "--embedding-dim", "4", "--reference-dim", "4"]
    argv += ["--alphas", "1", "--lambdas", "0.01", "--embeddings-sweep", "1", "--no-ablations"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    # said before the work starts, not after it
    assert err.splitlines()[0].startswith("warning: matplotlib is not installed")
    assert "pinnersage[plots]" in err
    assert (tmp_path / "o" / "report.json").exists() and (tmp_path / "o" / "report.md").exists()
    assert not list((tmp_path / "o").glob("*.png"))
