"""The Spark engine publishes the same profiles as the local engine (issue 4 parity)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnersage.batch import run_batch
from pinnersage.params import Config

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

from test_batch import RUN_DATE, _actions, _catalog, _write_log  # noqa: E402


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from pinnersage.batch.spark import get_session

    session = get_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_and_local_publish_the_same_content(spark: object, tmp_path: Path) -> None:
    cat = _catalog()
    cat.save(tmp_path / "emb.parquet")
    log = _write_log(_actions(), tmp_path / "log", shuffle_seed=2)
    config = Config().replace("profile", max_actions_per_user=200).replace("batch", partitions=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_batch(
            log, tmp_path / "emb.parquet", RUN_DATE, tmp_path / "local", config, workers=1
        )
        remote = run_batch(
            log,
            tmp_path / "emb.parquet",
            RUN_DATE,
            tmp_path / "spark",
            config,
            engine="spark",
            spark=spark,
        )
    assert remote.manifest["engine"] == "spark"
    assert remote.manifest["content_sha256"] == local.manifest["content_sha256"]
    assert remote.manifest["counts"] == local.manifest["counts"]
    assert remote.manifest["actions"] == local.manifest["actions"]
    assert (tmp_path / "spark" / "CURRENT").read_text().strip() == RUN_DATE
