"""The item catalog: ids <-> rows, validation, normalisation, fingerprint, file formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pinnersage.catalog import ItemCatalog
from pinnersage.errors import (
    DataFormatError,
    DimensionMismatchError,
    InvalidVectorsError,
    UnknownItemError,
)


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(5, 4))


# -- from_arrays ----------------------------------------------------------------------------------


def test_vectors_are_unit_float32_readonly(vectors: np.ndarray) -> None:
    cat = ItemCatalog.from_arrays([10, 20, 30, 40, 50], vectors)
    assert cat.vectors.dtype == np.float32
    assert cat.vectors.flags.c_contiguous
    assert not cat.vectors.flags.writeable
    np.testing.assert_allclose(np.linalg.norm(cat.vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(cat.vectors[2], vectors[2] / np.linalg.norm(vectors[2]), rtol=1e-6)
    assert cat.dim == 4 and len(cat) == 5


def test_int_ids_are_int64_and_str_ids_stay_str(vectors: np.ndarray) -> None:
    ints = ItemCatalog.from_arrays(np.array([10, 20, 30, 40, 50], dtype=np.int32), vectors)
    assert ints.item_ids.dtype == np.int64
    strs = ItemCatalog.from_arrays(["10", "20", "a", "b", "c"], vectors)
    assert strs.item_ids.dtype == object
    assert strs.item_ids.tolist() == ["10", "20", "a", "b", "c"]
    mixed = ItemCatalog.from_arrays([1, "x", 3, 4, 5], vectors)
    assert mixed.item_ids.tolist() == ["1", "x", "3", "4", "5"]


def test_lookups_coerce_key_kind(vectors: np.ndarray) -> None:
    cat = ItemCatalog.from_arrays([10, 20, 30, 40, 50], vectors)
    assert cat.row(30) == 2
    assert cat.row("30") == 2
    assert cat.row(np.int64(50)) == 4
    np.testing.assert_array_equal(cat.rows([50, "10", np.int32(20)]), [4, 0, 1])
    np.testing.assert_array_equal(cat.rows(np.array([20, 99]), missing="mask"), [1, -1])
    np.testing.assert_array_equal(cat.rows([2**70, 30], missing="mask"), [-1, 2])  # not int64
    assert 2**70 not in cat
    np.testing.assert_array_equal(cat.vector(20), cat.vectors[1])
    scat = ItemCatalog.from_arrays(["10", "20", "a", "b", "c"], vectors)
    assert scat.row(20) == 1
    assert 10 in scat and "zz" not in scat


def test_rows_of_ints_match_rows() -> None:
    """The compiled id table against pandas, on ids that collide in the table (multiples of a
    large power of two) and on unknown ids, after a pickle round trip too."""
    import pickle

    rng = np.random.default_rng(3)
    ids = np.unique(
        np.concatenate(
            [rng.integers(-(2**62), 2**62, 500), np.arange(300) << 40, [0, -1, 2**63 - 1, -(2**63)]]
        )
    )
    cat = ItemCatalog.from_arrays(rng.permutation(ids), rng.standard_normal((ids.size, 4)))
    keys = np.concatenate([cat.item_ids, rng.integers(-(2**62), 2**62, 200), [5 << 40 | 1]])
    want = cat.rows(keys, missing="mask")
    assert (want == -1).sum() >= 200
    np.testing.assert_array_equal(cat.rows_of_ints(keys), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(cat)).rows_of_ints(keys), want)
    scat = ItemCatalog.from_arrays(["1", "2"], np.eye(2))
    np.testing.assert_array_equal(scat.rows_of_ints(np.array([1, 2])), [-1, -1])


def test_unknown_items_raise_with_the_id(vectors: np.ndarray) -> None:
    cat = ItemCatalog.from_arrays(["a", "b", "c", "d", "e"], vectors)
    with pytest.raises(UnknownItemError, match="'zz'"):
        cat.row("zz")
    with pytest.raises(UnknownItemError, match=r"'q'.*\(and 1 more\)"):
        cat.rows(["a", "q", "r"])
    with pytest.raises(KeyError):  # also a KeyError for generic callers
        cat.vector("nope")


def test_embedding_version_is_a_stable_fingerprint(vectors: np.ndarray) -> None:
    a = ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors)
    b = ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors * 3.0)  # same after normalisation
    c = ItemCatalog.from_arrays([1, 2, 3, 4, 6], vectors)
    d = ItemCatalog.from_arrays(["1", "2", "3", "4", "5"], vectors)
    e = ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors + 0.01)
    assert len(a.embedding_version) == 16
    int(a.embedding_version, 16)
    assert a.embedding_version == b.embedding_version
    assert (
        len({a.embedding_version, c.embedding_version, d.embedding_version, e.embedding_version})
        == 4
    )
    # already-normalised vectors are kept bit for bit
    again = ItemCatalog.from_arrays(a.item_ids, a.vectors)
    assert again.embedding_version == a.embedding_version


@pytest.mark.parametrize(
    ("ids", "vecs", "error", "pattern"),
    [
        ([1, 2, 1], np.eye(3), DataFormatError, r"duplicate item id 1.*rows 0 and 2"),
        ([1, 2, 3], [[1, 0], [0, 0], [1, 1]], InvalidVectorsError, r"item 2 at row 1.*zero norm"),
        (
            [1, 2, 3],
            [[1, 0], [0, 1], [np.nan, 1]],
            InvalidVectorsError,
            r"item 3 at row 2 is not finite: dimension 0 is nan",
        ),
        ([1, 2, 3], [[1, 0], [np.inf, 1], [1, 1]], InvalidVectorsError, r"item 2 at row 1"),
        ([1, None, 3], np.eye(3), DataFormatError, r"row 1 is missing"),
        ([1, 2.5, 3], np.eye(3), DataFormatError, r"row 1"),
        ([1, 2], np.eye(3), DimensionMismatchError, r"3 vectors but 2 item ids"),
        ([1, 2, 3], np.ones(3), InvalidVectorsError, r"2-D"),
        ([1, 2, 3], np.ones((3, 0)), InvalidVectorsError, r"at least one dimension"),
        ([1, 2], [[1.0, 2.0], [3.0]], InvalidVectorsError, r"ragged"),
    ],
)
def test_bad_arrays_name_row_and_rule(ids: list, vecs: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        ItemCatalog.from_arrays(ids, vecs)  # type: ignore[arg-type]


def test_metadata_joined_by_id(vectors: np.ndarray) -> None:
    meta = pd.DataFrame(
        {"item_id": ["20", "99", "10"], "title": ["two", "ghost", "one"], "price": [1, 2, 3]}
    )
    cat = ItemCatalog.from_arrays([10, 20, 30, 40, 50], vectors, meta)
    assert cat.metadata is not None
    assert list(cat.metadata.columns) == ["title"]
    assert len(cat.metadata) == 5
    assert cat.title(10) == "one" and cat.title(20) == "two" and cat.title(30) is None


def test_no_metadata_title_is_none(vectors: np.ndarray) -> None:
    cat = ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors)
    assert cat.metadata is None and cat.title(1) is None


def test_pickles_for_worker_processes(vectors: np.ndarray) -> None:
    import pickle

    cat = ItemCatalog.from_arrays(
        ["a", "b", "c", "d", "e"], vectors, pd.DataFrame({"item_id": ["c"], "title": ["see"]})
    )
    back = pickle.loads(pickle.dumps(cat))
    assert back.embedding_version == cat.embedding_version
    assert back.row("d") == 3 and back.title("c") == "see"
    assert not back.vectors.flags.writeable
    np.testing.assert_array_equal(back.vectors, cat.vectors)


# -- files ----------------------------------------------------------------------------------------


def _same(a: ItemCatalog, b: ItemCatalog) -> None:
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.item_ids.dtype == b.item_ids.dtype
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-6)


@pytest.mark.parametrize("ids", [[10, 20, 30, 40, 50], ["85123A", "71053", "x", "y", "z"]])
def test_parquet_save_load_round_trip(tmp_path: Path, vectors: np.ndarray, ids: list) -> None:
    meta = pd.DataFrame(
        {"item_id": ids[:2], "title": ["first", "second"], "category": ["c1", None]}
    )
    cat = ItemCatalog.from_arrays(ids, vectors, meta)
    path = tmp_path / "sub" / "items.parquet"
    cat.save(path)
    schema = pq.read_schema(path)
    assert pa.types.is_fixed_size_list(schema.field("vector").type)
    back = ItemCatalog.load(path)
    _same(cat, back)
    assert back.embedding_version == cat.embedding_version
    assert back.title(ids[1]) == "second" and back.title(ids[4]) is None


def test_parquet_list_column_and_renamed_columns(tmp_path: Path, vectors: np.ndarray) -> None:
    table = pa.table(
        {
            "sku": ["a", "b", "c", "d", "e"],
            "emb": pa.array(vectors.tolist(), type=pa.list_(pa.float64())),
        }
    )
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    cat = ItemCatalog.load(path, id_col="sku", vector_col="emb")
    _same(cat, ItemCatalog.from_arrays(["a", "b", "c", "d", "e"], vectors))


def test_parquet_dimension_columns(tmp_path: Path, vectors: np.ndarray) -> None:
    frame = pd.DataFrame(vectors, columns=[f"d{i}" for i in range(4)])
    frame.insert(0, "item_id", [1, 2, 3, 4, 5])
    frame.to_parquet(tmp_path / "e.parquet")
    _same(
        ItemCatalog.load(tmp_path / "e.parquet"), ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors)
    )


def test_npy_with_ids_file_beside_it(tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "vectors.ids.txt").write_text("7\n8\n9\n10\n11\n")
    cat = ItemCatalog.load(tmp_path / "vectors.npy")
    assert cat.item_ids.dtype == np.int64 and cat.item_ids.tolist() == [7, 8, 9, 10, 11]
    (tmp_path / "other.txt").write_text("a\nb\nc\nd\n12\n")
    cat2 = ItemCatalog.load(tmp_path / "vectors.npy", ids=tmp_path / "other.txt")
    assert cat2.item_ids.tolist() == ["a", "b", "c", "d", "12"]
    _same(cat2, ItemCatalog.from_arrays(["a", "b", "c", "d", "12"], vectors))


def test_npy_without_ids_or_with_wrong_count(tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(tmp_path / "v.npy", vectors)
    with pytest.raises(DataFormatError, match=r"v\.ids\.txt"):
        ItemCatalog.load(tmp_path / "v.npy")
    (tmp_path / "v.ids.txt").write_text("1\n2\n")
    with pytest.raises(DimensionMismatchError, match=r"5 vectors but .* 2 ids"):
        ItemCatalog.load(tmp_path / "v.npy")


def test_csv_dimension_columns_and_vector_column(tmp_path: Path, vectors: np.ndarray) -> None:
    frame = pd.DataFrame(vectors, columns=["a", "b", "c", "d"])
    frame.insert(0, "item_id", [101, 102, 103, 104, 105])
    frame.to_csv(tmp_path / "dims.csv", index=False)
    _same(
        ItemCatalog.load(tmp_path / "dims.csv"),
        ItemCatalog.from_arrays([101, 102, 103, 104, 105], vectors),
    )
    vec = pd.DataFrame(
        {
            "item_id": ["p", "q", "r", "s", "t"],
            "vector": ["[" + ", ".join(map(repr, v.tolist())) + "]" for v in vectors],
            "title": list("PQRST"),
        }
    )
    vec.to_csv(tmp_path / "vec.csv.gz", index=False)
    cat = ItemCatalog.load(tmp_path / "vec.csv.gz")
    _same(cat, ItemCatalog.from_arrays(list("pqrst"), vectors))
    assert cat.title("r") == "R"


def test_items_file_joins_metadata(tmp_path: Path, vectors: np.ndarray) -> None:
    ItemCatalog.from_arrays([1, 2, 3, 4, 5], vectors).save(tmp_path / "e.parquet")
    pd.DataFrame(
        {"item_id": [3, 1], "title": ["three", "one"], "image_url": ["http://x/3.jpg", None]}
    ).to_csv(tmp_path / "items.csv", index=False)
    cat = ItemCatalog.load(tmp_path / "e.parquet", items=tmp_path / "items.csv")
    assert cat.title(3) == "three" and cat.title(2) is None
    assert cat.metadata is not None and cat.metadata["image_url"].iat[2] == "http://x/3.jpg"


def test_shipped_online_retail_items_join() -> None:
    from pinnersage.data import online_retail

    items = online_retail("items")
    frame = pd.read_parquet(items)
    ids = frame["item_id"].tolist()[:50]
    vecs = np.random.default_rng(0).normal(size=(50, 8))
    cat = ItemCatalog.from_arrays(ids, vecs).with_metadata(pd.read_parquet(items))
    assert cat.title(ids[0]) == frame["title"].iat[0]


@pytest.mark.parametrize(
    ("write", "pattern"),
    [
        (
            lambda p: pq.write_table(pa.table({"id": [1, 2], "vector": [[1.0], [2.0]]}), p),
            r"no id column 'item_id'; columns present: id, vector",
        ),
        (
            lambda p: pq.write_table(pa.table({"item_id": [1, 2], "name": ["a", "b"]}), p),
            r"no vector column 'vector'",
        ),
        (
            lambda p: pq.write_table(
                pa.table(
                    {"item_id": [1, 2, 3], "vector": [[1.0, 0.0], [1.0, 2.0, 3.0], [0.0, 1.0]]}
                ),
                p,
            ),
            r"ragged vectors, row 1 \(item 2\) has 3 values but row 0 has 2",
        ),
        (
            lambda p: pq.write_table(
                pa.table({"item_id": ["a", "b"], "vector": [[1.0, 0.0], None]}), p
            ),
            r"row 1 \(item 'b'\) has no vector",
        ),
        (
            lambda p: pq.write_table(
                pa.table({"item_id": ["a", "b"], "vector": [[1.0, 0.0], [None, 1.0]]}), p
            ),
            r"item 'b' at row 1 .*not finite",
        ),
        (
            lambda p: pq.write_table(
                pa.table(
                    {"item_id": ["a", "b", "a"], "vector": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}
                ),
                p,
            ),
            r"duplicate item id 'a' in .*: rows 0 and 2",
        ),
        (lambda p: p.write_bytes(b"not parquet at all"), r"not a readable parquet file"),
    ],
)
def test_bad_parquet_files(tmp_path: Path, write: object, pattern: str) -> None:
    path = tmp_path / "bad.parquet"
    write(path)  # type: ignore[operator]
    with pytest.raises((DataFormatError, InvalidVectorsError), match=pattern):
        ItemCatalog.load(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("item_id,vector\n1,[1 0]\n2,[1 2 3]\n", r"ragged vectors, row 1 \(item 2\)"),
        ("item_id,vector\n1,[1 0]\n2,[1 oops]\n", r"row 1 \(item 2\).*not a list of numbers"),
        ("item_id,a,b\n1,1,0\n2,nan,1\n", r"item 2 at row 1 .*not finite"),
        ("item_id,a,b\n1,1,0\n,0,1\n", r"row 1 is missing"),
        ("item_id,a,b\nx,1,0\ny,0,0\n", r"item 'y' at row 1 .*zero norm"),
    ],
)
def test_bad_csv_files(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises((DataFormatError, InvalidVectorsError), match=pattern):
        ItemCatalog.load(path)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        ItemCatalog.load(tmp_path / "nope.parquet")
    (tmp_path / "e.h5").write_bytes(b"")
    with pytest.raises(DataFormatError, match="unknown format"):
        ItemCatalog.load(tmp_path / "e.h5")
