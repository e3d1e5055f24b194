"""Combined item embeddings: weighted concatenation of several L2-normalised embeddings.

PinSage, the paper's item embedding, fuses several signals (section 2); here signals built
separately (co-occurrence, text, ALS, or a user's own) are fused by concatenation. Each input is
L2-normalised and scaled by ``sqrt(w / Σw)``, so for an item present in every input the cosine of
two combined vectors is the weighted mean of the inputs' cosines. The result is re-normalised by
the catalog.

``how="inner"`` (default) keeps the items present in every input; ``how="outer"`` keeps every
item, with zeros for the inputs that lack it (its cosines then lean on the inputs it has).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from pinnersage.catalog import ItemCatalog
from pinnersage.embed import BuildResult
from pinnersage.errors import ConfigError, DataFormatError

__all__ = ["combine_embeddings"]


def combine_embeddings(
    catalogs: Sequence[ItemCatalog],
    weights: Sequence[float] | None = None,
    *,
    how: Literal["inner", "outer"] = "inner",
) -> BuildResult:
    """Concatenate weighted, normalised embeddings of the same items.

    Parameters
    ----------
    catalogs : sequence of ItemCatalog
        Two or more embeddings; their ids must be of one kind (all int or all str), or are
        compared as strings.
    weights : sequence of float, optional
        Non-negative weights, one per catalog, not all zero (default: equal).
    how : {"inner", "outer"}
        Keep the items present in every input, or in any input.

    Returns
    -------
    BuildResult
        The combined catalog (items in the order of the first input, then new ones in input
        order) and statistics (items per input, items_embedded, dim, weights).
    """
    if len(catalogs) < 1:
        raise ConfigError("combine needs at least one embeddings input")
    w = np.ones(len(catalogs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(catalogs),):
        raise ConfigError(
            f"combine needs one weight per input: {len(catalogs)} inputs, {w.size} weights"
        )
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() == 0:
        raise ConfigError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    if how not in ("inner", "outer"):
        raise ConfigError(f"how must be 'inner' or 'outer', got {how!r}")
    t0 = time.perf_counter()
    kinds = {c.int_ids for c in catalogs}
    as_str = len(kinds) > 1

    def keys(c: ItemCatalog) -> pd.Index:
        return (
            pd.Index([str(i) for i in c.item_ids], dtype=object) if as_str else pd.Index(c.item_ids)
        )

    index = keys(catalogs[0])
    for c in catalogs[1:]:
        index = (
            index.intersection(keys(c), sort=False)
            if how == "inner"
            else index.union(keys(c), sort=False)
        )
    if len(index) == 0:
        raise DataFormatError(
            "the embeddings share no item id; nothing to combine "
            "(use how='outer' to keep every item)"
        )
    scale = np.sqrt(w / w.sum())
    out = np.zeros((len(index), sum(c.dim for c in catalogs)), dtype=np.float32)
    col = 0
    for c, s in zip(catalogs, scale, strict=True):
        rows = keys(c).get_indexer(index)
        ok = rows >= 0
        out[ok, col : col + c.dim] = c.vectors[rows[ok]] * np.float32(s)
        col += c.dim
    ids = index.to_numpy()
    zero = ~out.any(axis=1)  # an outer item only in zero-weight inputs
    metadata = next((c.metadata for c in catalogs if c.metadata is not None), None)
    meta_frame = None
    if metadata is not None:
        source = next(c for c in catalogs if c.metadata is not None)
        meta_frame = metadata.assign(
            item_id=source.item_ids if not as_str else [str(i) for i in source.item_ids]
        )
    catalog = ItemCatalog.from_arrays(ids[~zero], out[~zero], meta_frame)
    stats: dict[str, Any] = {
        "inputs": [
            {"items": len(c), "dim": c.dim, "embedding_version": c.embedding_version}
            for c in catalogs
        ],
        "weights": w.tolist(),
        "how": how,
        "items_embedded": len(catalog),
        "dim": catalog.dim,
        "items_without_weight": int(zero.sum()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return BuildResult(catalog, stats)


def run_cli(args: argparse.Namespace, config: Any) -> BuildResult:
    """Build from the parsed flags of ``pinnersage embed combine``."""
    from pinnersage.catalog import read_items

    catalogs = [ItemCatalog.load(p) for p in args.inputs]
    result = combine_embeddings(catalogs, args.weights, how=args.how)
    if args.items:
        result = BuildResult(result.catalog.with_metadata(read_items(args.items)), result.stats)
    return result
