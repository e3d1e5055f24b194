"""``pinnersage index``: build, recall check, save, and the catalog's errors on bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.cli import main
from pinnersage.retrieval import ExactIndex, HnswIndex, open_index


@pytest.fixture
def embeddings(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 12))
    x[400] = x[3] + 1e-4  # a near-duplicate of item 3
    path = tmp_path / "items.parquet"
    ItemCatalog.from_arrays(np.arange(500) + 1000, x).save(path)
    return path


def test_builds_checks_and_saves(
    embeddings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "index"
    (tmp_path / "drop.txt").write_text("1005\n1006\n")
    status = main(
        [
            "index",
            "--embeddings",
            str(embeddings),
            "--out",
            str(out),
            "--m",
            "8",
            "--ef-search",
            "50",
            "--dedupe-cosine",
            "0.999",
            "--exclude",
            str(tmp_path / "drop.txt"),
            "--threads",
            "1",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "recall@10 against exact search" in printed and str(out) in printed
    assert "1 near-duplicates removed" in printed and "2 filtered out" in printed
    index = open_index(out, ItemCatalog.load(embeddings))
    assert isinstance(index, HnswIndex) and len(index) == 497
    assert index.params.m == 8 and index.params.ef_search == 50
    assert not {1005, 1006, 1400} & set(index.item_ids.tolist())


def test_exact_kind_from_a_config_file(embeddings: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[index]\nkind = "exact"\n')
    assert (
        main(
            [
                "index",
                "--embeddings",
                str(embeddings),
                "--out",
                str(tmp_path / "ix"),
                "--config",
                str(config),
            ]
        )
        == 0
    )
    assert isinstance(open_index(tmp_path / "ix"), ExactIndex)


def test_bad_embeddings_fail_with_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table({"item_id": [1, 2, 3], "vector": [[0.1, 0.2], [0.3, float("nan")], [0.5, 0.6]]}),
        path,
    )
    assert main(["index", "--embeddings", str(path), "--out", str(tmp_path / "ix")]) == 2
    err = capsys.readouterr().err
    assert "pinnersage index: error:" in err and "row 1" in err
    assert not (tmp_path / "ix").exists()


def test_bad_parameters_are_config_errors(
    embeddings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["index", "--embeddings", str(embeddings), "--out", str(tmp_path / "ix"), "--m", "1"])
        == 2
    )
    assert "index.m must be >= 2" in capsys.readouterr().err
