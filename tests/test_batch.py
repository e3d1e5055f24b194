"""The daily batch job (issue 4): window, per-partition parity, determinism, restart, publish."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinnersage import build_profile
from pinnersage.batch import (
    ProfileContext,
    RunWindow,
    open_snapshot,
    partition_of,
    profile_partition,
    profile_partition_reference,
    run_batch,
)
from pinnersage.batch.snapshot import content_sha256
from pinnersage.catalog import ItemCatalog
from pinnersage.cli import main
from pinnersage.errors import (
    ConfigError,
    CorruptArtifactError,
    DataFormatError,
    PinnerSageWarning,
    ProfileNotFoundError,
)
from pinnersage.params import Config, ProfileParams, load_config

RUN_DATE = "2024-03-10"
DAY_S = 86_400


def _catalog(n_items: int = 120, d: int = 8, seed: int = 0) -> ItemCatalog:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, d))
    x = centers[rng.integers(0, 6, n_items)] + 0.25 * rng.normal(size=(n_items, d))
    return ItemCatalog.from_arrays([f"i{k:03d}" for k in range(n_items)], x)


def _actions(seed: int = 1, n_users: int = 40) -> pd.DataFrame:
    """A log around RUN_DATE: ordinary users, one with a single action, one heavy user, unknown
    items, actions outside the window, ties in time."""
    rng = np.random.default_rng(seed)
    end = int(dt.datetime(2024, 3, 11, tzinfo=dt.UTC).timestamp())
    rows = []
    for u in range(n_users):
        n = int(rng.integers(2, 40))
        for _ in range(n):
            t = end - int(rng.integers(1, 95 * DAY_S)) // 600 * 600  # ties at 10-minute marks
            rows.append((u, f"i{int(rng.integers(0, 120)):03d}", t))
    rows.append((1000, "i007", end - 5 * DAY_S))  # one action
    for k in range(260):  # heavy user
        rows.append((1001, f"i{int(rng.integers(0, 120)):03d}", end - k * 3600 - 1))
    rows += [(3, "nope-1", end - DAY_S), (4, "nope-2", end - 2 * DAY_S)]  # unknown items
    rows.append((5, "i001", end + 10))  # after the run date
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def _write_log(frame: pd.DataFrame, folder: Path, *, shuffle_seed: int | None = None) -> Path:
    """One parquet file per day, plus one empty day."""
    folder.mkdir(parents=True, exist_ok=True)
    if shuffle_seed is not None:
        frame = frame.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)
    day = frame["timestamp"] // (10 * DAY_S)
    for k, (_, part) in enumerate(frame.groupby(day, sort=True)):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{k:03d}.parquet"
        )
    empty = frame.iloc[:0]
    pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), folder / "part-999.parquet")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("batch")
    cat = _catalog()
    cat.save(root / "emb.parquet")
    frame = _actions()
    log = _write_log(frame, root / "log")
    config = Config().replace("profile", max_actions_per_user=200).replace("batch", partitions=5)
    with pytest.warns(PinnerSageWarning, match="more than 200 actions"):
        result = run_batch(log, root / "emb.parquet", RUN_DATE, root / "out", config, workers=1)
    return {
        "root": root,
        "catalog": cat,
        "frame": frame,
        "log": log,
        "config": config,
        "result": result,
    }


# -- window and partitioning --------------------------------------------------------------------


def test_window_covers_the_run_date_and_the_days_before() -> None:
    w = RunWindow.for_date("2024-03-10", 90)
    assert w.end_s == int(dt.datetime(2024, 3, 11, tzinfo=dt.UTC).timestamp())
    assert w.start_s == int(dt.datetime(2023, 12, 11, tzinfo=dt.UTC).timestamp())
    assert w.now_s == w.end_s
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        RunWindow.for_date("10/03/2024", 90)


def test_partition_of_is_a_stable_hash_not_pythons() -> None:
    parts = partition_of(np.array([1, 2, 3, 1]), 16)
    assert parts.tolist()[0] == parts.tolist()[3]
    # crc32(b"1") = 0x83dcefb7 = 2212294583; % 16 = 7
    assert parts[0] == 2212294583 % 16
    assert partition_of(np.array(["1"], dtype=object), 16)[0] == parts[0]
    code = (
        "import numpy as np; from pinnersage.batch import partition_of; "
        "print(partition_of(np.array(['a','b','c','d','e'], dtype=object), 7).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


# -- the per-partition function: lean path vs build_profile -------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        ProfileParams(),
        ProfileParams(
            keep_singletons=False,
            store_centroids=True,
            store_decay_average=True,
            max_actions_per_user=50,
            decay_per_day=0.05,
        ),
        ProfileParams(method="complete", distance_threshold=1.0),
    ],
)
def test_profile_partition_matches_build_profile(params: ProfileParams) -> None:
    rng = np.random.default_rng(3)
    cat = _catalog()
    ctx = ProfileContext.from_catalog(cat, params, 1_700_000_000)
    n = 3000
    users = rng.integers(0, 60, n)
    rows = rng.integers(0, len(cat), n)
    ts = 1_700_000_000 - rng.integers(0, 80 * DAY_S, n) // 3600 * 3600
    fast, fast_stats = profile_partition(users, rows, ts, ctx)
    slow, slow_stats = profile_partition_reference(users, rows, ts, ctx)
    assert fast.num_rows > 60
    assert fast.equals(slow)
    assert fast_stats == slow_stats
    if params.max_actions_per_user == 50:
        assert fast_stats.users_capped > 0


def test_profile_partition_ignores_input_order_and_matches_one_user() -> None:
    rng = np.random.default_rng(4)
    cat = _catalog()
    params = ProfileParams()
    ctx = ProfileContext.from_catalog(cat, params, 1_700_000_000)
    n = 800
    users = rng.integers(0, 20, n)
    rows = rng.integers(0, len(cat), n)
    ts = 1_700_000_000 - rng.integers(0, 10, n) * 3600  # many ties in time
    a, _ = profile_partition(users, rows, ts, ctx)
    perm = rng.permutation(n)
    b, _ = profile_partition(users[perm], rows[perm], ts[perm], ctx)
    assert a.equals(b)
    # user 7 by hand: canonical order is (timestamp, item id)
    mine = users == 7
    frame = pd.DataFrame({"row": rows[mine], "t": ts[mine], "id": cat.item_ids[rows[mine]]})
    frame = frame.sort_values(["t", "id"], kind="stable")
    prof = build_profile(
        cat.vectors[frame["row"].to_numpy()],
        frame["id"].to_numpy(),
        frame["t"].to_numpy(),
        now_s=1_700_000_000,
        params=params,
    )
    got = a.filter(pa.compute.equal(a.column("user_id"), 7)).to_pydict()
    assert got["medoid_item_id"] == list(prof.medoid_item_ids)
    assert got["importance"] == [c.importance for c in prof.clusters]


# -- end to end, local engine -------------------------------------------------------------------


def test_snapshot_layout_counts_and_summary(setup: dict) -> None:
    root = setup["root"]
    result = setup["result"]
    out = root / "out"
    assert (out / "CURRENT").read_text().strip() == RUN_DATE
    assert not (out / ".work").exists()
    m = json.loads((out / RUN_DATE / "manifest.json").read_text())
    assert m["format_version"] == 1 and m["run_date"] == RUN_DATE
    assert m["embedding_version"] == setup["catalog"].embedding_version
    assert m["window"]["now_s"] == RunWindow.for_date(RUN_DATE, 90).now_s
    skipped = m["actions"]["skipped"]
    assert skipped["unknown_item"] == 2
    assert skipped["after_end"] == 1
    assert skipped["before_start"] > 0
    assert skipped["over_max_actions_per_user"] == 60
    assert m["users_capped"] == 1
    table = pq.read_table(out / RUN_DATE / "profiles.parquet")
    assert table.column_names[:7] == [
        "user_id",
        "rank",
        "medoid_item_id",
        "importance",
        "size",
        "last_action_ts",
        "n_actions",
    ]
    assert m["counts"]["clusters"] == table.num_rows
    assert content_sha256(table) == m["content_sha256"]
    users = table.column("user_id").to_pylist()
    assert users == sorted(users)
    single = table.filter(pa.compute.equal(table.column("user_id"), 1000)).to_pydict()
    assert single["medoid_item_id"] == ["i007"] and single["size"] == [1]
    per = m["counts"]["clusters_per_user"]
    assert per["median"] <= per["p90"] <= per["max"]
    text = result.summary()
    assert "2 on items without an embedding" in text and "clusters per user: median" in text


def test_published_profiles_equal_build_profile(setup: dict) -> None:
    frame = setup["frame"]
    cat = setup["catalog"]
    w = RunWindow.for_date(RUN_DATE, 90)
    snap = open_snapshot(setup["root"] / "out")
    for user in (0, 5, 17):
        mine = frame[
            (frame.user_id == user)
            & (frame.timestamp >= w.start_s)
            & (frame.timestamp < w.end_s)
            & frame.item_id.isin(cat.item_ids)
        ]
        mine = mine.sort_values(["timestamp", "item_id"], kind="stable")
        expected = build_profile(
            cat.vectors[cat.rows(mine.item_id.to_numpy())],
            mine.item_id.to_numpy(),
            mine.timestamp.to_numpy(),
            now_s=w.now_s,
            params=setup["config"].profile,
            user_id=user,
        )
        got = snap.profile(user)
        assert got.medoid_item_ids == expected.medoid_item_ids
        assert [c.importance for c in got.clusters] == [c.importance for c in expected.clusters]
        assert [c.size for c in got.clusters] == [c.size for c in expected.clusters]
    with pytest.raises(ProfileNotFoundError):
        snap.profile(123456)
    assert sum(1 for _ in snap.profiles(batch_rows=7)) == snap.manifest["counts"]["users"]


def test_reruns_are_byte_identical_and_independent_of_order_and_partitioning(
    setup: dict, tmp_path: Path
) -> None:
    root = setup["root"]
    first = root / "out" / RUN_DATE
    shuffled = _write_log(setup["frame"], tmp_path / "log", shuffle_seed=5)
    variants = [
        (setup["log"], setup["config"], 2, "again"),
        (shuffled, setup["config"].replace("batch", partitions=3), 1, "shuffled"),
    ]
    for log, config, workers, name in variants:
        with pytest.warns(PinnerSageWarning):
            r = run_batch(
                log, root / "emb.parquet", RUN_DATE, tmp_path / name, config, workers=workers
            )
        assert r.manifest["content_sha256"] == setup["result"].manifest["content_sha256"]
        if name == "again":
            for f in ("profiles.parquet", "manifest.json"):
                assert (r.snapshot_dir / f).read_bytes() == (first / f).read_bytes()


def test_crash_then_rerun_resumes_and_publishes_the_same(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    out = tmp_path / "out"
    done: list[int] = []

    def crash(k: int) -> None:
        done.append(k)
        if len(done) == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        run_batch(
            setup["log"],
            root / "emb.parquet",
            RUN_DATE,
            out,
            setup["config"],
            workers=1,
            after_partition=crash,
        )
    assert not (out / "CURRENT").exists()
    assert len(list((out / ".work" / RUN_DATE / "parts").glob("part-*.parquet"))) == 2
    with pytest.warns(PinnerSageWarning):
        r = run_batch(setup["log"], root / "emb.parquet", RUN_DATE, out, setup["config"], workers=1)
    assert r.partitions_reused == 2
    for f in ("profiles.parquet", "manifest.json"):
        assert (out / RUN_DATE / f).read_bytes() == (root / "out" / RUN_DATE / f).read_bytes()


def test_sigkill_mid_run_then_rerun_gives_the_same_output(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal, warnings
        from pinnersage.batch import run_batch
        from pinnersage.params import Config
        warnings.simplefilter("ignore")
        config = Config().replace("profile", max_actions_per_user=200).replace("batch",
                                                                              partitions=5)
        run_batch({str(setup["log"])!r}, {str(root / "emb.parquet")!r}, {RUN_DATE!r},
                  {str(out)!r}, config, workers=1,
                  after_partition=lambda k: os.kill(os.getpid(), signal.SIGKILL))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "CURRENT").exists()
    with pytest.warns(PinnerSageWarning):
        r = run_batch(setup["log"], root / "emb.parquet", RUN_DATE, out, setup["config"], workers=1)
    assert r.partitions_reused == 1
    assert (out / RUN_DATE / "profiles.parquet").read_bytes() == (
        root / "out" / RUN_DATE / "profiles.parquet"
    ).read_bytes()


def test_failed_run_leaves_the_previous_snapshot_current(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    out = tmp_path / "out"
    with pytest.warns(PinnerSageWarning):
        run_batch(setup["log"], root / "emb.parquet", RUN_DATE, out, setup["config"], workers=1)

    def crash(k: int) -> None:
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        run_batch(
            setup["log"],
            root / "emb.parquet",
            "2024-03-11",
            out,
            setup["config"],
            workers=1,
            after_partition=crash,
        )
    assert (out / "CURRENT").read_text().strip() == RUN_DATE
    assert open_snapshot(out).run_date == RUN_DATE


def test_empty_window_is_an_error_unless_allowed(setup: dict, tmp_path: Path) -> None:
    root = setup["root"]
    with pytest.raises(DataFormatError, match="no usable action in the window"):
        run_batch(setup["log"], root / "emb.parquet", "2020-01-01", tmp_path / "a")
    assert not (tmp_path / "a" / "CURRENT").exists()
    config = Config().replace("batch", allow_empty=True)
    r = run_batch(setup["log"], root / "emb.parquet", "2020-01-01", tmp_path / "b", config)
    assert r.manifest["counts"]["users"] == 0
    assert open_snapshot(tmp_path / "b").table().num_rows == 0


def test_corrupt_snapshot_is_rejected(setup: dict, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(setup["root"] / "out", out)
    profiles = out / RUN_DATE / "profiles.parquet"
    data = bytearray(profiles.read_bytes())
    data[len(data) // 2] ^= 0xFF
    profiles.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match="checksum"):
        open_snapshot(out)
    (out / "CURRENT").write_text("1999-01-01\n")
    with pytest.raises(CorruptArtifactError):
        open_snapshot(out)
    with pytest.raises(CorruptArtifactError, match="not a snapshot"):
        open_snapshot(tmp_path)


def test_cli_batch_and_inspect(
    setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = setup["root"]
    items = tmp_path / "items.csv"
    pd.DataFrame({"item_id": ["i007"], "title": ["Blue teapot"]}).to_csv(items, index=False)
    conf = tmp_path / "c.toml"
    conf.write_text("[profile]\nmax_actions_per_user = 200\n[batch]\npartitions = 5\n")
    with pytest.warns(PinnerSageWarning):
        rc = main(
            [
                "batch",
                "--actions",
                str(setup["log"]),
                "--embeddings",
                str(root / "emb.parquet"),
                "--date",
                RUN_DATE,
                "--out",
                str(tmp_path / "o"),
                "--workers",
                "1",
                "--config",
                str(conf),
                "--no-progress",
            ]
        )
    text = capsys.readouterr().out
    assert rc == 0
    assert (
        "profiles.parquet" in text
        and "CURRENT" in text
        and "2 on items without an embedding" in text
    )
    assert (tmp_path / "o" / RUN_DATE / "profiles.parquet").read_bytes() == (
        root / "out" / RUN_DATE / "profiles.parquet"
    ).read_bytes()
    assert main(["inspect", "1000", "--snapshot", str(tmp_path / "o"), "--items", str(items)]) == 0
    text = capsys.readouterr().out
    assert "i007  Blue teapot" in text and "1 interests" in text
    assert main(["inspect", "424242", "--snapshot", str(tmp_path / "o")]) == 2
    assert "no profile" in capsys.readouterr().err
    assert load_config(conf).batch.partitions == 5


def test_cli_flags_override_the_config_file(
    setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--alpha, --decay-per-day, --drop-singletons and the log flags beat the [profile] table."""
    import json

    root = setup["root"]
    conf = tmp_path / "c.toml"
    conf.write_text("[profile]\ndistance_threshold = 3.0\ndecay_per_day = 0.5\n")
    args = [
        "batch",
        "--actions",
        str(setup["log"]),
        "--embeddings",
        str(root / "emb.parquet"),
        "--date",
        RUN_DATE,
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
        "--config",
        str(conf),
        "--no-progress",
        "--alpha",
        "0.25",
        "--drop-singletons",
    ]
    assert main(args) == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "o" / RUN_DATE / "manifest.json").read_text())
    profile = manifest["parameters"]["profile"]
    assert profile["distance_threshold"] == 0.25  # the flag
    assert profile["decay_per_day"] == 0.5  # the file
    assert profile["keep_singletons"] is False
    assert main([*args[:-3], "--alpha", "-1"]) == 2
    assert "distance_threshold must be >= 0" in capsys.readouterr().err
