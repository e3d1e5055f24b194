"""The ANN index: one behavioural suite over ExactIndex (the oracle) and HnswIndex."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.errors import (
    ConfigError,
    CorruptArtifactError,
    DimensionMismatchError,
    EmbeddingVersionMismatchError,
    InvalidVectorsError,
)
from pinnersage.params import IndexParams
from pinnersage.retrieval import (
    AnnIndex,
    ExactIndex,
    HnswIndex,
    near_duplicates,
    open_index,
    read_item_id_file,
    recall_at_k,
)

KINDS = [ExactIndex, HnswIndex]
PARAMS = IndexParams(build_threads=1)


@pytest.fixture(scope="module")
def catalog() -> ItemCatalog:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((20, 16))
    x = centres[rng.integers(0, 20, 800)] + 0.4 * rng.standard_normal((800, 16))
    return ItemCatalog.from_arrays([f"item-{i}" for i in range(800)], x)


@pytest.fixture(scope="module")
def int_catalog() -> ItemCatalog:
    rng = np.random.default_rng(4)
    return ItemCatalog.from_arrays(np.arange(300) * 7 + 1, rng.standard_normal((300, 8)))


@pytest.mark.parametrize("cls", KINDS)
def test_satisfies_protocol_and_shapes(cls: type, catalog: ItemCatalog) -> None:
    index = cls.build(catalog, PARAMS)
    assert isinstance(index, AnnIndex)
    assert len(index) == len(catalog)
    queries = np.random.default_rng(0).standard_normal((5, 16))
    found = index.search(queries, 7)
    assert found.ids.shape == (5, 7) and found.scores.shape == (5, 7)
    assert found.scores.dtype == np.float32
    assert all(isinstance(i, str) for i in found.ids.ravel())
    assert np.all(np.diff(found.scores, axis=1) <= 1e-6)  # best first
    assert np.all(found.scores <= 1.0 + 1e-5) and np.all(found.scores >= -1.0 - 1e-5)


@pytest.mark.parametrize("cls", KINDS)
def test_each_item_finds_itself_with_cosine_one(cls: type, int_catalog: ItemCatalog) -> None:
    index = cls.build(int_catalog, PARAMS)
    found = index.search(int_catalog.vectors[:50], 3)
    assert found.ids.dtype == np.int64
    np.testing.assert_array_equal(found.ids[:, 0], int_catalog.item_ids[:50])
    np.testing.assert_allclose(found.scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("cls", KINDS)
def test_scores_are_cosines_of_unnormalised_queries(cls: type, int_catalog: ItemCatalog) -> None:
    index = cls.build(int_catalog, PARAMS)
    q = 5.0 * int_catalog.vectors[10]  # a 1-D query, not unit length
    found = index.search(q, 4)
    assert found.ids.shape == (1, 4)
    rows = int_catalog.rows(found.ids[0])
    np.testing.assert_allclose(
        found.scores[0], int_catalog.vectors[rows] @ int_catalog.vectors[10], atol=1e-5
    )


@pytest.mark.parametrize("cls", KINDS)
def test_k_larger_than_index_returns_every_item(cls: type) -> None:
    cat = ItemCatalog.from_arrays(["a", "b", "c"], np.eye(3))
    found = cls.build(cat, PARAMS).search(np.array([1.0, 0.2, 0.0]), 10)
    assert found.ids.shape == (1, 3)
    assert found.ids[0].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("cls", KINDS)
def test_bad_queries_raise_typed_errors(cls: type, int_catalog: ItemCatalog) -> None:
    index = cls.build(int_catalog, PARAMS)
    with pytest.raises(DimensionMismatchError, match="3 dimensions but the index has 8"):
        index.search(np.ones((2, 3)), 5)
    bad = np.ones((2, 8))
    bad[1, 4] = np.nan
    with pytest.raises(InvalidVectorsError, match="row 1"):
        index.search(bad, 5)
    with pytest.raises(InvalidVectorsError, match="zero norm"):
        index.search(np.zeros(8), 5)
    with pytest.raises(ConfigError, match="k must be"):
        index.search(np.ones(8), 0)


@pytest.mark.parametrize("cls", KINDS)
def test_save_load_round_trip(cls: type, catalog: ItemCatalog, tmp_path: Path) -> None:
    index = cls.build(catalog, PARAMS)
    manifest = index.save(tmp_path / "ix")
    assert manifest.name == "manifest.json"
    queries = catalog.vectors[::37]
    before = index.search(queries, 10)
    for loaded in (cls.load(tmp_path / "ix", catalog), open_index(tmp_path / "ix")):
        assert type(loaded) is cls
        assert loaded.index_version == index.index_version
        assert loaded.embedding_version == catalog.embedding_version
        assert loaded.params == index.params
        after = loaded.search(queries, 10)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)
    meta = json.loads(manifest.read_text())
    assert meta["params"]["m"] == PARAMS.m
    assert meta["embedding_version"] == catalog.embedding_version


@pytest.mark.parametrize("cls", KINDS)
def test_load_with_other_embeddings_is_refused(
    cls: type, catalog: ItemCatalog, int_catalog: ItemCatalog, tmp_path: Path
) -> None:
    cls.build(catalog, PARAMS).save(tmp_path / "ix")
    with pytest.raises(EmbeddingVersionMismatchError, match=catalog.embedding_version):
        open_index(tmp_path / "ix", int_catalog)


@pytest.mark.parametrize("cls", KINDS)
@pytest.mark.parametrize("damage", ["flip", "truncate", "no_manifest", "bad_json", "drop_ids"])
def test_damaged_files_are_refused_before_parsing(
    cls: type, damage: str, int_catalog: ItemCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "ix"
    cls.build(int_catalog, PARAMS).save(folder)
    payload = folder / ("hnsw.bin" if cls is HnswIndex else "vectors.npy")
    if damage == "flip":
        data = bytearray(payload.read_bytes())
        data[len(data) // 2] ^= 0xFF
        payload.write_bytes(bytes(data))
    elif damage == "truncate":
        payload.write_bytes(payload.read_bytes()[:100])
    elif damage == "no_manifest":
        (folder / "manifest.json").unlink()
    elif damage == "bad_json":
        (folder / "manifest.json").write_text("{not json")
    else:
        (folder / "ids.npy").unlink()
    with pytest.raises(CorruptArtifactError):
        open_index(folder)


def test_loading_as_the_wrong_kind_is_refused(int_catalog: ItemCatalog, tmp_path: Path) -> None:
    ExactIndex.build(int_catalog).save(tmp_path / "ix")
    with pytest.raises(CorruptArtifactError, match="not 'hnsw'"):
        HnswIndex.load(tmp_path / "ix")


def test_hnsw_recall_at_default_params(clustered_vectors: Callable[..., np.ndarray]) -> None:
    rng = np.random.default_rng(11)
    x = clustered_vectors(6000, 32, 60, 0.5, rng)
    cat = ItemCatalog.from_arrays(np.arange(6000), x)
    queries = clustered_vectors(200, 32, 60, 0.5, np.random.default_rng(12))
    exact = ExactIndex.build(cat).search(queries, 50).ids
    hnsw = HnswIndex.build(cat, IndexParams(build_threads=1)).search(queries, 50).ids
    assert recall_at_k(hnsw, exact) >= 0.95


def test_hnsw_answers_k_above_ef_search(clustered_vectors: Callable[..., np.ndarray]) -> None:
    x = clustered_vectors(3000, 16, 30, 0.5, np.random.default_rng(5))
    cat = ItemCatalog.from_arrays(np.arange(3000), x)
    index = HnswIndex.build(cat, IndexParams(ef_search=10, build_threads=1))
    queries = x[:40]
    found = index.search(queries, 120)
    assert found.ids.shape == (40, 120)
    assert recall_at_k(found.ids, ExactIndex.build(cat).search(queries, 120).ids) >= 0.95


def test_exact_breaks_ties_by_catalog_row() -> None:
    cat = ItemCatalog.from_arrays([5, 3, 9, 1], np.array([[1.0, 0], [1, 0], [0, 1], [1, 0]]))
    found = ExactIndex.build(cat).search(np.array([1.0, 0.0]), 3)
    assert found.ids[0].tolist() == [5, 3, 1]


# -- the refined index ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def duplicated() -> ItemCatalog:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((400, 24))
    x[100] = x[7] + 1e-3 * rng.standard_normal(24)  # 100 duplicates 7
    x[250] = x[100] + 1e-3 * rng.standard_normal(24)  # 250 duplicates 100 (and 7)
    x[300] = x[42] + 1e-3 * rng.standard_normal(24)
    return ItemCatalog.from_arrays([f"i{i}" for i in range(400)], x)


@pytest.mark.parametrize("cls", KINDS)
def test_dedupe_keeps_the_first_row_of_each_group(cls: type, duplicated: ItemCatalog) -> None:
    index = cls.build(duplicated, IndexParams(dedupe_cosine=0.99, build_threads=1))
    kept = set(index.item_ids.tolist())
    assert {"i7", "i42"} <= kept and not {"i100", "i250", "i300"} & kept
    assert index.refine.removed_duplicates == 3 and index.refine.n_indexed == 397
    # a removed item's query still finds its representative
    assert index.search(duplicated.vector("i100"), 1).ids[0, 0] == "i7"


@pytest.mark.parametrize("cls", KINDS)
def test_filter_drops_items_and_counts_unknown_ids(
    cls: type, duplicated: ItemCatalog, tmp_path: Path
) -> None:
    path = tmp_path / "low-quality.txt"
    path.write_text("# low quality\ni3\n\ni5  # blurry\nnot-an-item\n")
    ids = read_item_id_file(path)
    assert ids == ["i3", "i5", "not-an-item"]
    index = cls.build(duplicated, PARAMS, exclude_item_ids=ids)
    assert index.refine.removed_filtered == 2 and index.refine.unknown_filter_ids == 1
    assert not {"i3", "i5"} & set(index.search(duplicated.vectors[:10], 20).ids.ravel().tolist())
    index.save(tmp_path / "ix")
    assert open_index(tmp_path / "ix").refine == index.refine


def test_near_duplicates_approximate_matches_exact_twin(
    clustered_vectors: Callable[..., np.ndarray],
) -> None:
    rng = np.random.default_rng(9)
    x = clustered_vectors(1500, 16, 10, 0.6, rng)
    dup_of = rng.choice(1500, size=120, replace=False)
    extra = x[dup_of] + 0.002 * rng.standard_normal((120, 16)).astype(np.float32)
    x = np.vstack([x, extra / np.linalg.norm(extra, axis=1, keepdims=True)]).astype(np.float32)
    exact = near_duplicates(x, 0.995)
    approx = near_duplicates(x, 0.995, exact_below=0)
    assert exact[1500:].sum() >= 110  # the planted copies go
    np.testing.assert_array_equal(approx, exact)


def test_near_duplicates_greedy_slow_twin() -> None:
    rng = np.random.default_rng(10)
    x = rng.standard_normal((60, 3)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    kept: list[int] = []
    for i in range(60):  # the rule, spelled out
        if all(float(x[i] @ x[j]) <= 0.9 for j in kept):
            kept.append(i)
    expected = np.ones(60, bool)
    expected[kept] = False
    np.testing.assert_array_equal(near_duplicates(x, 0.9), expected)
