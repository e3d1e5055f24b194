"""The command line as a user meets it: one flag set everywhere, what goes to stdout and stderr,
warnings in one line, the demo's words, and the demo's data found from an installed wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pinnersage
from pinnersage.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(pinnersage.__file__).resolve().parents[1]
DAY = 86_400
T0 = 1_700_000_000
RUN_DATE = "2023-12-13"
#: The column flags of the renamed log of :func:`_renamed_log`.
COLS = ["--user-col", "customer", "--item-col", "sku", "--time-col", "when"]

#: One sample command line per command (and embed builder) that parses.
COMMAND_LINES = [
    ["demo"],
    ["embed", "cooccurrence", "--actions", "a", "--out", "e.parquet"],
    ["embed", "als", "--actions", "a", "--out", "e.parquet"],
    ["embed", "combine", "--inputs", "a.parquet", "b.parquet", "--out", "e.parquet"],
    ["index", "--embeddings", "e", "--out", "i"],
    ["batch", "--actions", "a", "--embeddings", "e", "--date", RUN_DATE, "--out", "s"],
    ["inspect", "1", "--snapshot", "s"],
    ["evaluate", "--actions", "a", "--out", "o"],
]
LOG_COMMANDS = [c for c in COMMAND_LINES if c[0] in ("demo", "batch", "evaluate")] + [
    COMMAND_LINES[1],
    COMMAND_LINES[2],
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pinnersage", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: "-".join(a[:2]))
def test_every_command_takes_config_quiet_and_verbose(argv: list[str]) -> None:
    parser = build_parser()
    args = parser.parse_args([*argv, "--config", "c.toml", "--quiet"])
    assert args.config == "c.toml" and args.quiet
    assert parser.parse_args([*argv, "-v"]).verbose


@pytest.mark.parametrize("argv", LOG_COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_every_command_that_reads_a_log_renames_its_columns(argv: list[str]) -> None:
    flags = ["--user-col", "u", "--item-col", "i", "--time-col", "t", "--action-col", "a"]
    args = build_parser().parse_args([*argv, *flags, "--action-types", "buy,view"])
    assert (args.user_col, args.item_col, args.time_col, args.action_col) == ("u", "i", "t", "a")


def test_alpha_and_distance_threshold_are_one_setting() -> None:
    parser = build_parser()
    base = COMMAND_LINES[5]
    assert parser.parse_args([*base, "--alpha", "0.5"]).distance_threshold == 0.5
    assert parser.parse_args([*base, "--distance-threshold", "0.7"]).distance_threshold == 0.7
    text = (ROOT / "configs" / "pinnersage.toml").read_text()
    assert "--alpha" in text  # the config file says which flag sets distance_threshold


def _renamed_log(path: Path) -> None:
    """Three users with three interests each (items of three topics), columns renamed."""
    rng = np.random.default_rng(1)
    rows = []
    for user in (7, 8, 9):
        for k in range(60):
            topic = k % 3
            rows.append((user, f"sku{topic}{rng.integers(0, 8)}", T0 + k * DAY // 3))
    pd.DataFrame(rows, columns=["customer", "sku", "when"]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("published")
    _renamed_log(tmp / "log.csv")
    embed = ["embed", "cooccurrence", "--actions", str(tmp / "log.csv"), "--dim", "6"]
    assert main([*embed, *COLS, "--out", str(tmp / "e.parquet")]) == 0
    batch = ["batch", "--actions", str(tmp / "log.csv"), "--embeddings", str(tmp / "e.parquet")]
    assert (
        main([*batch, *COLS, "--date", "2023-12-04", "--out", str(tmp / "s"), "--alpha", "0.01"])
        == 0
    )
    ids = pd.read_parquet(tmp / "e.parquet")["item_id"]
    pd.DataFrame({"code": ids, "name": [f"thing {i}" for i in ids]}).to_csv(
        tmp / "titles.csv", index=False
    )
    return {"root": tmp, "log": tmp / "log.csv", "snapshot": tmp / "s"}


def test_inspect_top_and_renamed_items_columns(
    published: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    snap, titles = str(published["snapshot"]), str(published["root"] / "titles.csv")
    items = ["--items", titles, "--item-col", "code", "--title-col", "name"]
    assert main(["inspect", "7", "--snapshot", snap, "--top", "2", *items]) == 0
    out = capsys.readouterr().out
    ranks = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(ranks) == 2 and all("thing sku" in line for line in ranks)
    assert "more (--top 0 prints all)" in out
    assert main(["inspect", "7", "--snapshot", snap, "--top", "0"]) == 0
    assert "more (--top" not in capsys.readouterr().out


def test_demo_renames_columns_and_says_where_candidates_come_from(
    published: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    items = published["root"] / "items.parquet"
    ids = pd.read_parquet(published["root"] / "e.parquet")["item_id"]
    pd.DataFrame({"item_id": ids, "title": [f"THING {i}" for i in ids]}).to_parquet(items)
    argv = ["demo", "--actions", str(published["log"]), "--items", str(items)]
    argv += COLS
    argv += ["--out", str(tmp_path / "demo"), "--users", "1", "--alpha", "0.01", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "interests from" in captured.out
    # a candidate of the decay-average query names no item as its source
    lines = [line for line in captured.out.splitlines() if re.match(r"    \d\.\d{3}  ", line)]
    assert lines and "decay_average" not in captured.out
    for line in lines:
        assert "<- THING" in line or line.endswith(
            ("(your recent actions as a whole)", "(popular)")
        )
    assert captured.err == ""  # --quiet: no progress messages


def test_warnings_are_one_line_without_their_source(published: dict[str, Path]) -> None:
    done = _run(
        "batch",
        "--actions",
        str(published["log"]),
        "--embeddings",
        str(published["root"] / "e.parquet"),
        "--date",
        "2023-12-04",
        "--out",
        str(published["root"] / "capped"),
        "--max-actions-per-user",
        "5",
        "--workers",
        "1",
        *COLS,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("warning: ") and "max_actions_per_user" in line for line in lines)
    assert "warnings.warn" not in done.stderr and ".py:" not in done.stderr
    assert "\r" not in done.stderr  # no progress bars when stderr is not a terminal


def test_embed_says_when_it_gives_fewer_dimensions(
    published: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["embed", "cooccurrence", "--actions", str(published["log"]), *COLS]
    assert main([*argv, "--dim", "100000", "--out", str(tmp_path / "e.parquet")]) == 0
    err = capsys.readouterr().err
    assert "warning: --dim 100000 asked, but these embeddings have 24 dimensions" in err


def _batch(published: dict[str, Path], date: str) -> list[str]:
    """``batch`` on the published log and embeddings for ``date`` (no ``--out``)."""
    argv = ["batch", "--actions", str(published["log"]), "--date", date]
    argv += ["--embeddings", str(published["root"] / "e.parquet")]
    return [*argv, *COLS]


def test_empty_window_error_names_the_flag_and_the_logs_dates(
    published: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _batch(published, "2024-06-01")
    assert main([*argv, "--out", str(published["root"] / "late")]) == 2
    err = capsys.readouterr().err
    assert "covers 2023-11-14 .. 2023-12-04" in err and "--allow-empty" in err
    assert "batch.allow_empty = true" not in err
    assert main([*argv, "--out", str(published["root"] / "late"), "--allow-empty"]) == 0


def test_batch_summary_speaks_plainly(
    published: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _batch(published, "2023-11-20")
    assert main([*argv, "--out", str(published["root"] / "early")]) == 0
    out = capsys.readouterr().out
    assert "skipped actions:" in out and "after the run date" in out
    assert "after_end" not in out and "before_start" not in out


def test_shipped_data_is_package_data() -> None:
    from pinnersage.cli.demo import DEFAULT_ACTIONS, DEFAULT_ITEMS
    from pinnersage.data import online_retail

    assert online_retail("actions") == DEFAULT_ACTIONS and online_retail("items") == DEFAULT_ITEMS
    pkg = Path(pinnersage.__file__).resolve().parent
    for path in (DEFAULT_ACTIONS, DEFAULT_ITEMS):
        assert path.is_file() and pkg in path.resolve().parents  # inside the package
    text = (ROOT / "pyproject.toml").read_text()
    assert '"data/online-retail/*.parquet"' in text


@pytest.mark.slow
def test_demo_finds_its_data_in_an_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, unpack it alone on the path (no source tree), and ask the demo."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("pinnersage-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "pinnersage/data/online-retail/actions.parquet" in names
        assert "pinnersage/data/online-retail/items.parquet" in names
        zf.extractall(tmp_path / "site")
    probe = (
        "import pinnersage, pandas as pd\n"
        "from pinnersage.cli.demo import DEFAULT_ACTIONS, DEFAULT_ITEMS\n"
        "print(pinnersage.__file__)\n"
        "print(len(pd.read_parquet(DEFAULT_ACTIONS)), len(pd.read_parquet(DEFAULT_ITEMS)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert done.returncode == 0, done.stderr
    where, counts = done.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site"))
    assert counts == "397924 3665"
