"""Bad input to every command: a clean error, and nothing published or damaged.

Each case runs one command on a workspace of good inputs and outputs (an action log, embeddings,
a published snapshot, an index) with one thing wrong, and asserts: a non-zero exit status; exactly
one line on stderr, ``pinnersage COMMAND: error: ...``, holding the case's words (the file, row or
value, and the rule); no traceback; and the workspace unchanged, byte for byte (nothing written,
nothing published, nothing damaged; the batch job's hidden work folder ``.work`` aside, which only
an interrupted run resumes from).

A new command adds its cases to ``CASES``: ``Case(id, argv, words)``, where ``argv`` may name the
workspace's files as ``{log}``, ``{emb}``, ``{snap}``, ``{index}``, ``{ws}`` (the workspace) and
the bad inputs prepared in :func:`workspace` (``{empty_log}``, ``{emb0}``, ``{nan_emb}``, ...).
Cases marked ``subprocess=True`` run as ``python -m pinnersage`` in a process of their own.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pinnersage
from pinnersage.cli import main

DAY = 86_400
T0 = 1_700_000_000  # 2023-11-14
RUN_DATE = "2023-12-13"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    #: Words the one line of stderr must hold (the file, row or value, and the rule).
    words: tuple[str, ...]
    subprocess: bool = False


def _case(id: str, argv: str, *words: str, subprocess: bool = False) -> Case:
    return Case(id, tuple(argv.split()), words, subprocess)


BATCH = "batch --actions {log} --embeddings {emb} --date " + RUN_DATE + " --out {snap} --workers 1"
INDEX = "index --embeddings {emb} --out {index} --threads 1"
EMBED = "embed cooccurrence --actions {log} --dim 4"
INSPECT = "inspect 1 --snapshot {snap}"
DEMO = "demo --actions {log} --items {items} --out {ws}/demo --users 1"
EVALUATE = "evaluate --actions {log} --out {ws}/eval --no-plots"

CASES: list[Case] = [
    # -- usage errors (argparse), one line each
    _case("unknown-command", "frobnicate", "invalid choice: 'frobnicate'"),
    _case("batch-no-date", BATCH.replace(" --date " + RUN_DATE, ""), "required: --date"),
    _case("embed-dim-not-int", EMBED.replace("4", "four") + " --out {ws}/e.parquet", "--dim"),
    _case("index-bad-kind", INDEX + " --kind annoy", "invalid choice: 'annoy'"),
    _case("evaluate-bad-split", EVALUATE + " --split week", "invalid choice: 'week'"),
    # -- config files: one reader, every command
    _case("batch-config-missing", BATCH + " --config {ws}/nope.toml", "nope.toml", "not exist"),
    _case("batch-config-not-toml", BATCH + " --config {not_toml}", "not valid TOML"),
    _case("inspect-config-unknown-key", INSPECT + " --config {typo_toml}", "profile.alpah"),
    _case("index-config-unknown-key", INDEX + " --config {typo_toml}", "profile.alpah"),
    _case(
        "embed-config-unknown-key", EMBED + " --out {ws}/e.parquet --config {typo_toml}", "alpah"
    ),
    _case("demo-config-unknown-table", DEMO + " --config {table_toml}", "unknown table [indx]"),
    _case("evaluate-config-unknown-key", EVALUATE + " --config {typo_toml}", "profile.alpah"),
    _case("batch-config-bad-value", BATCH + " --config {bad_value_toml}", "decay_per_day", ">= 0"),
    # -- batch
    _case("batch-out-is-a-file", BATCH.replace("{snap}", "{log}"), "--out", "is a file"),
    _case("batch-bad-date", BATCH.replace(RUN_DATE, "2023-13-45"), "--date", "2023-13-45"),
    _case("batch-negative-alpha", BATCH + " --alpha -1", "distance_threshold must be >= 0"),
    _case("batch-huge-window", BATCH + " --window-days 100000000", "--window-days 100000000"),
    _case("batch-zero-window", BATCH + " --window-days 0", "history_window_days must be >= 1"),
    _case("batch-no-items", BATCH.replace("{emb}", "{emb0}"), "emb0.parquet", "no item"),
    _case("batch-embeddings-missing", BATCH.replace("{emb}", "{ws}/nope.parquet"), "not exist"),
    _case("batch-actions-missing", BATCH.replace("{log}", "{ws}/nope.parquet"), "not exist"),
    _case("batch-no-such-column", BATCH + " --user-col customer", "no column 'customer'"),
    _case(
        "batch-window-before-the-log",
        BATCH.replace(RUN_DATE, "2020-01-01"),
        "no usable action",
        "covers 2023-11-14 .. 2023-12-14",
        "--allow-empty",
        subprocess=True,
    ),
    _case("batch-zero-workers", BATCH + " --workers 0", "workers must be >= 1"),
    _case("batch-zero-partitions", BATCH + " --partitions 0", "partitions must be >= 1"),
    _case("batch-embeddings-not-parquet", BATCH.replace("{emb}", "{garbage}"), "not a readable"),
    _case("batch-nan-vector", BATCH.replace("{emb}", "{nan_emb}"), "row 3", "not finite"),
    # -- index
    _case("index-out-is-a-file", INDEX.replace("{index}", "{log}"), "--out", "is a file"),
    _case("index-m-1", INDEX + " --m 1", "index.m must be >= 2"),
    _case("index-no-items", INDEX.replace("{emb}", "{emb0}"), "emb0.parquet", "no item"),
    _case("index-check-k-0", INDEX + " --check-k 0", "--check-k must be >= 1"),
    _case("index-exclude-missing", INDEX + " --exclude {ws}/drop.txt", "drop.txt", "not exist"),
    _case("index-dedupe-2", INDEX + " --dedupe-cosine 2", "dedupe_cosine must be <= 1"),
    _case("index-nan-vector", INDEX.replace("{emb}", "{nan_emb}"), "row 3", "not finite"),
    _case("index-out-under-a-file", INDEX.replace("{index}", "{log}/ix"), "is a file"),
    # -- embed
    _case("embed-out-is-a-folder", EMBED + " --out {ws}/", "is a folder", subprocess=True),
    _case("embed-out-new-folder", EMBED + " --out {ws}/new/", "is a folder"),
    _case("embed-out-under-a-file", EMBED + " --out {log}/e.parquet", "is a file"),
    _case("embed-dim-0", EMBED.replace("4", "0") + " --out {ws}/e.parquet", "--dim must be >= 1"),
    _case(
        "embed-actions-missing",
        EMBED.replace("{log}", "{ws}/n.csv") + " --out {ws}/e.parquet",
        "not exist",
    ),
    _case(
        "embed-no-such-column", EMBED + " --out {ws}/e.parquet --time-col when", "no column 'when'"
    ),
    _case("embed-als-out-folder", "embed als --actions {log} --dim 4 --out {ws}/", "is a folder"),
    # -- inspect
    _case("inspect-unknown-user", "inspect 424242 --snapshot {snap}", "424242", "no profile"),
    _case("inspect-not-a-snapshot", "inspect 1 --snapshot {ws}", "is not a snapshot"),
    _case("inspect-negative-top", INSPECT + " --top -1", "--top must be >= 0"),
    _case("inspect-items-missing", INSPECT + " --items {ws}/items.csv", "items.csv", "not exist"),
    _case(
        "inspect-no-title-column", INSPECT + " --items {items} --title-col name", "no column 'name'"
    ),
    _case(
        "inspect-no-item-column",
        INSPECT + " --items {items} --item-col sku --title-col title",
        "no column 'sku'",
    ),
    # -- demo
    _case(
        "demo-actions-missing", DEMO.replace("{log}", "{ws}/n.parquet"), "n.parquet", "not exist"
    ),
    _case(
        "demo-empty-log", DEMO.replace("{log}", "{empty_log}"), "empty.parquet", "no usable action"
    ),
    _case("demo-out-is-a-file", DEMO.replace("{ws}/demo", "{log}"), "--out", "is a file"),
    _case("demo-zero-users", DEMO.replace("--users 1", "--users 0"), "--users must be >= 1"),
    _case("demo-no-such-column", DEMO + " --user-col customer", "no column 'customer'"),
    _case(
        "demo-date-before-the-log", DEMO + " --date 2020-01-01", "covers 2023-11-14 .. 2023-12-14"
    ),
    _case("demo-bad-date", DEMO + " --date 01/02/2023", "--date", "01/02/2023"),
    _case(
        "demo-items-missing",
        DEMO.replace("{items}", "{ws}/titles.csv"),
        "titles.csv",
        "not exist",
        subprocess=True,
    ),
    # -- evaluate
    _case("evaluate-zero-test-days", EVALUATE + " --test-days 0", "test_days", ">= 1"),
    _case("evaluate-budgets-not-numbers", EVALUATE + " --budgets a,b", "--budgets", "'a,b'"),
    _case("evaluate-unknown-kind", EVALUATE + " --embedding-kind foo", "invalid choice: 'foo'"),
    _case("evaluate-empty-log", EVALUATE.replace("{log}", "{empty_log}"), "no usable action"),
    _case("evaluate-no-such-column", EVALUATE + " --item-col sku", "no column 'sku'"),
    _case("evaluate-out-is-a-file", EVALUATE.replace("{ws}/eval", "{log}"), "--out", "is a file"),
    _case(
        "evaluate-embeddings-missing",
        EVALUATE + " --embeddings {ws}/e.parquet",
        "e.parquet",
        "not exist",
    ),
    _case("evaluate-other-catalog", EVALUATE + " --embeddings {nan_emb}", "not finite"),
    _case(
        "evaluate-no-shared-item",
        EVALUATE + " --reference {other_emb}",
        "--reference",
        "other.parquet",
        "shares no item id with the log",
    ),
    _case("evaluate-no-items", EVALUATE + " --embeddings {emb0}", "emb0.parquet", "no item"),
    _case(
        "evaluate-actions-missing",
        EVALUATE.replace("{log}", "{ws}/n.parquet"),
        "not exist",
        subprocess=True,
    ),
]


def _write_log(path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 600
    users = rng.integers(1, 21, n)
    topics = users % 3
    pd.DataFrame(
        {
            "user_id": users,
            "item_id": [
                f"i{t * 10 + k}" for t, k in zip(topics, rng.integers(0, 10, n), strict=True)
            ],
            "timestamp": T0 + np.sort(rng.integers(0, 30 * DAY, n)),
        }
    ).to_parquet(path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Good inputs and published outputs, and the bad inputs the cases name."""
    ws = tmp_path_factory.mktemp("ws")
    bad = tmp_path_factory.mktemp("bad")
    paths = {
        "ws": str(ws),
        "log": str(ws / "actions.parquet"),
        "emb": str(ws / "items.parquet"),
        "items": str(ws / "titles.parquet"),
        "snap": str(ws / "snapshots"),
        "index": str(ws / "index"),
    }
    _write_log(ws / "actions.parquet")
    assert (
        main(
            [
                "embed",
                "cooccurrence",
                "--actions",
                paths["log"],
                "--dim",
                "4",
                "--out",
                paths["emb"],
            ]
        )
        == 0
    )
    ids = pd.read_parquet(paths["emb"])["item_id"]
    pd.DataFrame({"item_id": ids, "title": [f"thing {i}" for i in ids]}).to_parquet(paths["items"])
    batch = ["batch", "--actions", paths["log"], "--embeddings", paths["emb"], "--date", RUN_DATE]
    assert main([*batch, "--out", paths["snap"], "--workers", "1", "--no-progress"]) == 0
    assert (
        main(["index", "--embeddings", paths["emb"], "--out", paths["index"], "--threads", "1"])
        == 0
    )

    pd.read_parquet(paths["log"]).iloc[:0].to_parquet(bad / "empty.parquet")
    empty = pa.table(
        {"item_id": pa.array([], pa.string()), "vector": pa.array([], pa.list_(pa.float32()))}
    )
    pq.write_table(empty, bad / "emb0.parquet")
    vectors = np.ones((6, 4), dtype=np.float32)
    vectors[3, 2] = np.nan
    pq.write_table(
        pa.table({"item_id": [f"i{k}" for k in range(6)], "vector": list(vectors)}),
        bad / "nan.parquet",
    )
    others = np.eye(4, dtype=np.float32)
    pq.write_table(
        pa.table({"item_id": [f"z{k}" for k in range(4)], "vector": list(others)}),
        bad / "other.parquet",
    )
    (bad / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    (bad / "not.toml").write_text("[profile\ndistance_threshold = 1\n")
    (bad / "typo.toml").write_text("[profile]\nalpah = 1.0\n")
    (bad / "table.toml").write_text("[indx]\nm = 8\n")
    (bad / "bad_value.toml").write_text("[profile]\ndecay_per_day = -0.5\n")
    paths.update(
        empty_log=str(bad / "empty.parquet"),
        emb0=str(bad / "emb0.parquet"),
        nan_emb=str(bad / "nan.parquet"),
        other_emb=str(bad / "other.parquet"),
        garbage=str(bad / "garbage.parquet"),
        not_toml=str(bad / "not.toml"),
        typo_toml=str(bad / "typo.toml"),
        table_toml=str(bad / "table.toml"),
        bad_value_toml=str(bad / "bad_value.toml"),
    )
    return paths


def _tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (the batch job's ``.work`` aside) and its digest."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0:2] == ("snapshots", ".work") or rel.parts[:1] == (".work",):
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def test_the_suite_covers_every_command() -> None:
    from pinnersage.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    covered = {c.argv[0] for c in CASES}
    assert len(CASES) >= 40
    assert {"demo", "embed", "index", "batch", "inspect", "evaluate"} <= covered
    missing = commands - covered
    assert not missing, f"commands without a bad-input case: {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clean_line(
    case: Case, workspace: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(**workspace) for a in case.argv]
    before = _tree(Path(workspace["ws"]))
    if case.subprocess:
        src = str(Path(pinnersage.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(
            [sys.executable, "-m", "pinnersage", *argv], capture_output=True, text=True, env=env
        )
        status, err = done.returncode, done.stderr
    else:
        status = main(argv)
        err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert re.match(r"pinnersage( [a-z]+)*: error: ", lines[0]), lines[0]
    for word in case.words:
        assert word in lines[0], (word, lines[0])
    assert _tree(Path(workspace["ws"])) == before, "the workspace changed"
