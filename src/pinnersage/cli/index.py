"""``pinnersage index``: build, check and save the ANN index over item embeddings (paper section 6).

Builds the (optionally refined) index, measures its recall@k against exact search on a sample of
catalog items used as queries, saves it, and says what it wrote.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pinnersage.cli._common import (
    at_least,
    check_input,
    check_out_dir,
    config_from,
    load_embeddings,
    log,
    show_progress,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "index",
        help="build the ANN index over item embeddings",
        description="Build the ANN index (HNSW by default, or exact brute force) over item "
        "embeddings, check its recall against exact search on a sample of items, and "
        "save it to a folder (manifest with checksums, params and embedding_version).",
    )
    parser.add_argument(
        "--embeddings",
        required=True,
        metavar="PATH",
        help="item embeddings: parquet (item_id, vector), .npy + ids file, or CSV",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the index to")
    parser.add_argument(
        "--kind",
        choices=("hnsw", "exact"),
        default=None,
        help="index kind (default: hnsw, or [index] kind of the config)",
    )
    parser.add_argument("--m", type=int, default=None, help="HNSW graph degree M (default 16)")
    parser.add_argument(
        "--ef-construction", type=int, default=None, help="HNSW build beam width (default 200)"
    )
    parser.add_argument(
        "--ef-search",
        type=int,
        default=None,
        help="HNSW query beam width (default 200; raised to k when k is larger)",
    )
    parser.add_argument(
        "--dedupe-cosine",
        type=float,
        default=None,
        metavar="X",
        help="refined index: drop items with cosine above X to an earlier kept "
        "item (default: keep all)",
    )
    parser.add_argument(
        "--exclude",
        metavar="FILE",
        default=None,
        help="refined index: file of item ids to leave out, one per line",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="build threads (default: all cores; 1 gives a reproducible graph)",
    )
    parser.add_argument("--id-col", default="item_id", help="id column of the embeddings file")
    parser.add_argument(
        "--vector-col", default="vector", help="vector column of the embeddings file"
    )
    parser.add_argument(
        "--check-queries",
        type=int,
        default=1000,
        metavar="N",
        help="items sampled as queries for the recall check (0 skips it)",
    )
    parser.add_argument(
        "--check-k", type=int, default=10, metavar="K", help="k of the recall@k check (default 10)"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pinnersage.retrieval import ExactIndex, build_index, read_item_id_file
    from pinnersage.retrieval.index import recall_at_k

    config = config_from(
        args,
        {
            "index": {
                "kind": args.kind,
                "m": args.m,
                "ef_construction": args.ef_construction,
                "ef_search": args.ef_search,
                "dedupe_cosine": args.dedupe_cosine,
                "build_threads": args.threads,
            }
        },
    )
    params = config.index
    at_least("--check-queries", args.check_queries, 0)
    at_least("--check-k", args.check_k, 1)
    out = check_out_dir(args.out)
    if args.exclude:
        check_input(args.exclude, "--exclude file")
    started = time.perf_counter()
    catalog = load_embeddings(args.embeddings, id_col=args.id_col, vector_col=args.vector_col)
    print(
        f"read {len(catalog)} items x {catalog.dim} dims from {args.embeddings} "
        f"(embedding_version {catalog.embedding_version})"
    )
    exclude = read_item_id_file(args.exclude) if args.exclude else None
    t0 = time.perf_counter()
    log.debug("building the %s index (%s)", params.kind, params)
    index = build_index(catalog, params, exclude_item_ids=exclude, progress=show_progress(args))
    build_s = time.perf_counter() - t0
    print(f"built {index.kind} index in {build_s:.1f}s: {index.refine}")
    if args.check_queries and len(index) and index.kind != "exact":
        rng = np.random.default_rng(params.seed)
        n_q = min(args.check_queries, len(index))
        rows = np.sort(rng.choice(index.rows, size=n_q, replace=False))
        queries = np.ascontiguousarray(catalog.vectors[rows])
        oracle = ExactIndex(
            catalog.vectors[index.rows],
            params=params,
            embedding_version=index.embedding_version,
            item_ids=catalog.item_ids,
            rows=index.rows,
            dim=catalog.dim,
            refine=index.refine,
        )
        k = min(args.check_k, len(index))
        recall = recall_at_k(index.search_rows(queries, k)[0], oracle.search_rows(queries, k)[0])
        print(
            f"recall@{k} against exact search on {n_q} sampled items: {recall:.4f} "
            f"(ef_search {params.ef_search})"
        )
    manifest = index.save(out)
    print(
        f"wrote {index.kind} index of {len(index)} items to {out} "
        f"(manifest {manifest}, index_version {index.index_version}) "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0
