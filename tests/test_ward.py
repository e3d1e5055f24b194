"""Algorithm 1 against its oracle (SciPy), the paper's hand-computed fixtures, and invariants."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage

from pinnersage import ConfigError, InvalidVectorsError, ward_clusters, ward_labels, ward_merges


def co_membership(labels: np.ndarray) -> np.ndarray:
    """Pairs in the same cluster; label -1 (dropped) is in no cluster."""
    same = labels[:, None] == labels[None, :]
    dropped = labels < 0
    return same & ~dropped[:, None] & ~dropped[None, :]


def partition_labels(n: int, clusters: list[np.ndarray]) -> np.ndarray:
    labels = np.full(n, -1)
    for c, rows in enumerate(clusters):
        assert np.all(labels[rows] == -1), "a row is in two clusters"
        labels[rows] = c
    return labels


def random_case(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(1, 301))
    d = int(rng.integers(1, 33))
    x = rng.normal(size=(n, d))
    if rng.random() < 0.5:  # a few topics, like a user's interests
        topics = rng.normal(size=(int(rng.integers(1, 8)), d))
        x = topics[rng.integers(0, topics.shape[0], n)] + rng.uniform(0.05, 0.5) * x
    if n > 2 and rng.random() < 0.6:  # exact duplicates (repeated actions on one item)
        k = int(rng.integers(1, n // 2 + 1))
        x[rng.integers(0, n, k)] = x[rng.integers(0, n, k)]
    if rng.random() < 0.5:
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def alpha_away_from_heights(heights: np.ndarray, rng: np.random.Generator) -> float:
    """A threshold at least 1e-6 (relative) away from every merge height."""
    top = float(heights.max()) if heights.size else 1.0
    grid = np.concatenate([[0.0], np.sort(heights), [top * 1.5 + 1.0]])
    gaps = np.diff(grid)
    usable = np.nonzero(gaps > 1e-5 * np.maximum(grid[1:], 1e-12))[0]
    i = int(rng.choice(usable))
    lo, hi = grid[i], grid[i + 1]
    return float(lo + (hi - lo) * rng.uniform(0.25, 0.75))


ORACLE_CASES = 240


@pytest.mark.parametrize("seed", range(ORACLE_CASES))
def test_matches_scipy_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = random_case(rng)
    n = x.shape[0]
    z = ward_merges(x)
    assert z.shape == (max(n - 1, 0), 4)
    if n == 1:
        assert ward_clusters(x, 1.0) == []
        assert [c.tolist() for c in ward_clusters(x, 1.0, keep_singletons=True)] == [[0]]
        return
    reference = linkage(x, method="ward")
    expected_heights = reference[:, 2] ** 2
    np.testing.assert_allclose(z[:, 2], expected_heights, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(np.sort(z[:, 3]), np.sort(reference[:, 3]))
    alpha = alpha_away_from_heights(expected_heights, rng)
    expected = fcluster(reference, t=np.sqrt(alpha), criterion="distance")
    for keep in (False, True):
        clusters = ward_clusters(x, alpha, keep_singletons=keep)
        got = partition_labels(n, clusters)
        want = expected.copy()
        if not keep:
            ids, counts = np.unique(want, return_counts=True)
            want[np.isin(want, ids[counts == 1])] = -1
        np.testing.assert_array_equal(co_membership(got), co_membership(want))
        assert np.all(got[np.concatenate(clusters)] >= 0) if clusters else True
        # rows ascending within a cluster, clusters ordered by their smallest row
        assert all(np.all(np.diff(c) > 0) for c in clusters)
        assert [int(c[0]) for c in clusters] == sorted(int(c[0]) for c in clusters)
        assert all(c.dtype == np.int64 for c in clusters)


def test_lance_williams_by_hand() -> None:
    """paper.md section 7.4: points 0, 1, 10 on a line."""
    x = np.array([[0.0], [1.0], [10.0]])
    z = ward_merges(x)
    np.testing.assert_allclose(z[:, 2], [1.0, 361.0 / 3.0], rtol=1e-12)
    assert z[0, :2].tolist() == [0.0, 1.0] and z[1, :2].tolist() == [2.0, 3.0]
    assert pytest.approx(2 * (2 * 1 / 3) * (10 - 0.5) ** 2) == 361.0 / 3.0
    assert [c.tolist() for c in ward_clusters(x, 50.0)] == [[0, 1]]
    assert [c.tolist() for c in ward_clusters(x, 50.0, keep_singletons=True)] == [[0, 1], [2]]
    assert [c.tolist() for c in ward_clusters(x, 121.0)] == [[0, 1, 2]]


def test_threshold_is_inclusive_and_in_squared_units() -> None:
    x = np.array([[0.0], [3.0]])  # squared distance 9, SciPy height 3
    assert [c.tolist() for c in ward_clusters(x, 9.0)] == [[0, 1]]
    assert ward_clusters(x, 8.999) == []
    assert ward_clusters(x, 3.0) == []


def test_zero_and_one_rows_are_not_errors() -> None:
    assert ward_clusters(np.empty((0, 4)), 1.0) == []
    assert ward_clusters(np.empty((0, 4)), 1.0, keep_singletons=True) == []
    assert ward_merges(np.empty((0, 4))).shape == (0, 4)
    labels, count = ward_labels(np.ones((1, 3)), 0.5)
    assert labels.tolist() == [-1] and count == 0


def test_duplicates_merge_at_zero_first() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    z = ward_merges(x)
    assert z[0, 2] == 0.0 and z[1, 2] == 0.0
    assert [c.tolist() for c in ward_clusters(x, 0.0)] == [[0, 2, 3]]


@pytest.mark.parametrize("seed", range(40))
def test_repeated_rows_collapse_to_the_same_partition(seed: int) -> None:
    """Identical rows are clustered once with their multiplicity (the fast path of the profile
    and the batch job): same partition as SciPy on every row, at thresholds between heights."""
    rng = np.random.default_rng(1000 + seed)
    items = rng.normal(size=(int(rng.integers(2, 40)), int(rng.integers(2, 16))))
    x = items[rng.integers(0, items.shape[0], int(rng.integers(2, 200)))]  # many repeats
    z = linkage(x, "ward")
    alpha = alpha_away_from_heights(z[:, 2] ** 2, rng)
    expected = fcluster(z, t=np.sqrt(alpha), criterion="distance")
    for keep in (True, False):
        labels, _ = ward_labels(x, alpha, keep_singletons=keep)
        ref = expected.copy()
        if not keep:
            ref[np.bincount(ref)[ref] == 1] = -1
        assert np.array_equal(co_membership(labels), co_membership(ref))


def test_a_repeated_item_is_never_a_dropped_singleton() -> None:
    far = np.array([[0.0, 0.0], [0.1, 0.0], [50.0, 50.0], [50.0, 50.0]])
    labels, c = ward_labels(far, 1.0, keep_singletons=False)
    assert c == 2 and labels.tolist() == [0, 0, 1, 1]
    labels, c = ward_labels(far[:3], 1.0, keep_singletons=False)
    assert c == 1 and labels.tolist() == [0, 0, -1]


def test_no_cap_on_number_or_size_of_clusters() -> None:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(150, 16)) * 100
    x = np.repeat(centers, 2, axis=0) + rng.normal(size=(300, 16)) * 1e-3
    assert len(ward_clusters(x, 1.0)) == 150
    assert [len(c) for c in ward_clusters(x, 1e12)] == [300]


@pytest.mark.parametrize(
    ("vectors", "error"),
    [
        (np.array([[0.0, np.nan]]), InvalidVectorsError),
        (np.array([[np.inf, 0.0], [0.0, 1.0]]), InvalidVectorsError),
        (np.zeros(3), InvalidVectorsError),
        (np.zeros((2, 2, 2)), InvalidVectorsError),
        (np.array([[1e200, 0.0], [0.0, 1.0]]), InvalidVectorsError),
        ([["a", "b"]], InvalidVectorsError),
    ],
)
def test_bad_vectors_raise_typed_errors(vectors: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ward_clusters(vectors, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "big"])
def test_bad_threshold_raises_config_error(alpha: object) -> None:
    with pytest.raises(ConfigError, match="distance_threshold"):
        ward_clusters(np.eye(3), alpha)  # type: ignore[arg-type]


@st.composite
def user_vectors(draw: st.DrawFn) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 60))
    d = draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if draw(st.booleans()) and n > 2:
        x[rng.integers(0, n, n // 3)] = x[rng.integers(0, n, n // 3)]
    return x


@settings(max_examples=120, deadline=None)
@given(x=user_vectors(), seed=st.integers(0, 2**32 - 1))
def test_partition_does_not_depend_on_row_order(x: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    heights = ward_merges(x)[:, 2]
    alpha = alpha_away_from_heights(heights, rng)
    perm = rng.permutation(x.shape[0])
    for keep in (False, True):
        base = partition_labels(x.shape[0], ward_clusters(x, alpha, keep_singletons=keep))
        permuted = partition_labels(x.shape[0], ward_clusters(x[perm], alpha, keep_singletons=keep))
        unpermuted = np.empty_like(permuted)
        unpermuted[perm] = permuted
        np.testing.assert_array_equal(co_membership(base), co_membership(unpermuted))


@settings(max_examples=120, deadline=None)
@given(x=user_vectors(), alphas=st.lists(st.floats(0, 50), min_size=2, max_size=6))
def test_every_row_once_and_clusters_never_grow_with_alpha(
    x: np.ndarray, alphas: list[float]
) -> None:
    counts = []
    for alpha in sorted(alphas):
        clusters = ward_clusters(x, alpha, keep_singletons=True)
        rows = np.sort(np.concatenate(clusters))
        np.testing.assert_array_equal(rows, np.arange(x.shape[0]))
        counts.append(len(clusters))
        dropped = ward_clusters(x, alpha)
        assert sum(len(c) > 1 for c in clusters) == len(dropped)
    assert all(a >= b for a, b in itertools.pairwise(counts))


@pytest.mark.slow
def test_compiled_kernels_stay_in_bounds(tmp_path: Path) -> None:
    """Re-run the oracle cases with numba's bounds checking on (fresh cache)."""
    script = (
        "import numpy as np, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_ward import random_case\n"
        "from scipy.cluster.hierarchy import linkage\n"
        "from pinnersage import build_profile, ward_merges\n"
        "for seed in range(60):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    x = random_case(rng)\n"
        "    x = np.concatenate([x, x[: len(x) // 2]])\n"
        "    z = ward_merges(x)\n"
        "    if len(x) > 1:\n"
        "        np.testing.assert_allclose(z[:, 2], linkage(x, 'ward')[:, 2] ** 2, rtol=1e-9)\n"
        "    build_profile(x, np.arange(len(x)), np.arange(len(x)), now_s=len(x))\n"
        "print('ok')\n"
    )
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("n", [2, 17, 300])
def test_distance_matrix_is_exactly_symmetric(n: int) -> None:
    """The chain relies on d(i, j) == d(j, i) bit for bit (numpy's x @ x.T is a SYRK)."""
    from pinnersage.core.ward import _distance_matrix

    x = np.random.default_rng(n).normal(size=(n, 33))
    d = _distance_matrix(x)
    np.testing.assert_array_equal(d, d.T)
    assert np.all(np.isinf(np.diag(d)))


@pytest.mark.parametrize("seed", range(40))
def test_merges_above_alpha_are_never_made(seed: int) -> None:
    """The chain cut at α (clusters retire once nothing is within α) makes the whole tree's
    merges at heights <= α (in another order, so to rounding), and so the same partition."""
    from pinnersage.core.ward import _cut_rows, _gram, _ward_tree

    rng = np.random.default_rng(1000 + seed)
    x = random_case(rng)
    n = x.shape[0]
    if n < 2:
        return
    full = _ward_tree(x, _gram(x).copy(), np.ones(n), np.inf)
    heights = np.sort(full[2])
    for alpha in (0.0, alpha_away_from_heights(heights, rng), float(heights[-1]) * 2):
        cut = _ward_tree(x, _gram(x).copy(), np.ones(n), alpha)
        np.testing.assert_allclose(np.sort(cut[2]), heights[heights <= alpha], rtol=1e-12)
        for keep in (False, True):
            got, c_got = _cut_rows(*cut, alpha, keep)
            want, c_want = _cut_rows(*full, alpha, keep)
            assert c_got == c_want
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [700, 1500])
def test_chain_cut_at_alpha_on_many_interests(n: int) -> None:
    """Many well-separated groups (the chain finishes each before the next, clusters retire by
    the hundred, rows are compacted): the merges at or below α and the partition are the whole
    tree's, and SciPy's."""
    from pinnersage.core.ward import _cut_rows, _gram, _ward_tree

    rng = np.random.default_rng(n)
    centres = rng.normal(size=(n // 25, 16))
    x = centres[rng.integers(0, centres.shape[0], n)] + 0.08 * rng.normal(size=(n, 16))
    full = _ward_tree(x, _gram(x).copy(), np.ones(n), np.inf)
    heights = np.sort(full[2])
    alpha = alpha_away_from_heights(heights, rng)
    cut = _ward_tree(x, _gram(x).copy(), np.ones(n), alpha)
    np.testing.assert_allclose(np.sort(cut[2]), heights[heights <= alpha], rtol=1e-12)
    got, _ = _cut_rows(*cut, alpha, True)
    want = fcluster(linkage(x, "ward"), t=np.sqrt(alpha), criterion="distance")
    np.testing.assert_array_equal(co_membership(got), co_membership(want))
    assert 0 < (heights <= alpha).sum() < n - 1


@pytest.mark.parametrize("n", [400, 900])
def test_chain_cut_at_alpha_on_one_long_component(n: int) -> None:
    """A random walk: every step is within α, so all rows are one component (the lazy chain
    runs on the whole matrix, beyond the eager chain's size), yet far-apart stretches of the
    walk merge above α: clusters retire inside the component, and rows are compacted."""
    from pinnersage.core.ward import _EAGER_MAX, _cut_rows, _fill_components, _gram, _ward_tree

    rng = np.random.default_rng(n)
    x = np.cumsum(0.05 * rng.normal(size=(n, 16)), axis=0)
    full = _ward_tree(x, _gram(x).copy(), np.ones(n), np.inf)
    heights = np.sort(full[2])
    step = float((np.diff(x, axis=0) ** 2).sum(axis=1).max())  # every step within alpha
    above = heights[heights > step]
    alpha = alpha_away_from_heights(above[: above.shape[0] // 2], rng)
    bounds = _fill_components(x, _gram(x).copy(), alpha)[2]
    assert np.diff(bounds).max() > _EAGER_MAX
    cut = _ward_tree(x, _gram(x).copy(), np.ones(n), alpha)
    np.testing.assert_allclose(np.sort(cut[2]), heights[heights <= alpha], rtol=1e-12)
    got, c = _cut_rows(*cut, alpha, True)
    want = fcluster(linkage(x, "ward"), t=np.sqrt(alpha), criterion="distance")
    np.testing.assert_array_equal(co_membership(got), co_membership(want))
    assert c > 10


@pytest.mark.parametrize("seed", range(60))
def test_components_are_scipys_connected_components(seed: int) -> None:
    """The components of the rows within α of each other (the slow twin: SciPy's connected
    components), or every row as one when a component holds more than half of them; the
    distances are the plain fill's."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from pinnersage.core.ward import _fill_components, _fill_squared_distances, _gram

    rng = np.random.default_rng(3000 + seed)
    x = random_case(rng)
    n = x.shape[0]
    plain = _gram(x).copy()
    _fill_squared_distances(x, plain)
    finite = plain[np.isfinite(plain)]  # empty for one row
    alpha = float(np.quantile(finite, rng.uniform(0, 0.3))) if finite.size and seed % 4 else 0.0
    g = _gram(x).copy()
    zeros, members, bounds = _fill_components(x, g, alpha)
    np.testing.assert_array_equal(g, plain)
    assert zeros == int((plain == 0.0).sum())
    _, want = connected_components(csr_matrix(plain <= alpha), directed=False)
    if 2 * np.bincount(want).max() > n:  # one component of more than half: the whole
        np.testing.assert_array_equal(members, np.arange(n))
        np.testing.assert_array_equal(bounds, [0, n])
        return
    got = np.full(n, -1)
    for k in range(bounds.shape[0] - 1):
        part = members[bounds[k] : bounds[k + 1]]
        assert part.shape[0] >= 2 and np.all(np.diff(part) > 0)
        got[part] = k
    alone = np.bincount(want)[want] == 1
    np.testing.assert_array_equal(got < 0, alone)
    np.testing.assert_array_equal(co_membership(got[~alone]), co_membership(want[~alone]))


@pytest.mark.parametrize("seed", range(80))
def test_eager_chain_makes_the_lazy_chains_merges(seed: int) -> None:
    """The eager chain (small components) against the lazy chain on the same distances and
    multiplicities: the same merges (the lazy chain restarts at the lowest slot after it
    compacts, so the order may differ): the same heights, and the same partition cut anywhere."""
    from pinnersage.core.ward import (
        _EAGER_MAX,
        _cut,
        _fill_squared_distances,
        _gram,
        _nn_chain,
        _nn_chain_eager,
    )

    rng = np.random.default_rng(4000 + seed)
    c = _EAGER_MAX if seed % 5 == 0 else int(rng.integers(2, _EAGER_MAX + 1))
    x = rng.normal(size=(c, int(rng.integers(1, 17))))
    sizes = rng.integers(1, 4, c).astype(np.float64) if seed % 2 else np.ones(c)
    d = _gram(x).copy()
    _fill_squared_distances(x, d)
    d *= 2.0 * np.outer(sizes, sizes) / np.add.outer(sizes, sizes)
    heights = np.sort(_nn_chain(d.copy(), sizes, np.inf)[2])
    alpha = np.inf if seed % 3 == 0 else alpha_away_from_heights(heights, rng)
    want = _nn_chain(d.copy(), sizes.copy(), alpha)
    part = rng.permutation(10 * c)[:c]  # merges come out as part[slot]
    out = [np.empty(c, np.int64), np.empty(c, np.int64), np.empty(c)]
    work = [np.empty(c, t) for t in (np.int64, np.float64, np.bool_, np.bool_, np.int64)]
    step = _nn_chain_eager(
        d.copy(),
        sizes.copy(),
        alpha,
        part,
        *out,
        0,
        *work,
        *(np.empty(c, np.int64) for _ in range(4)),
    )
    slot = np.empty(10 * c, np.int64)
    slot[part] = np.arange(c)
    got = (slot[out[0][:step]], slot[out[1][:step]], out[2][:step])
    np.testing.assert_allclose(np.sort(got[2]), np.sort(want[2]), rtol=1e-12)
    made = want[2]
    for tau in [alpha_away_from_heights(made, rng) for _ in range(3)] if made.size else []:
        tau = min(tau, alpha)
        a, _ = _cut(c, got[0], got[1], got[2], tau, True, sizes)
        b, _ = _cut(c, want[0], want[1], want[2], tau, True, sizes)
        np.testing.assert_array_equal(co_membership(a), co_membership(b))
