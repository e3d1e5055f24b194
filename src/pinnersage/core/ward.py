"""Algorithm 1: Ward agglomerative clustering of a user's action embeddings.

The nearest-neighbour chain with a stack (paper section 3.1.3), updating squared Euclidean
distances with the Lance-Williams formula of Eq. 1::

    d(Ci ∪ Cj, Ck) = ((ni + nk) d(Ci, Ck) + (nj + nk) d(Cj, Ck) - nk d(Ci, Cj)) / (ni + nj + nk)

and the cut that keeps the maximal merges with distance <= α (``distance_threshold``). The chain
runs compiled (numba) on the one n x n distance matrix it updates in place; nothing else of size
n x n is allocated.

Units: ``distance_threshold`` and merge distances are in the units of Eq. 1 (squared Euclidean).
They equal SciPy's Ward heights squared (``linkage(X, "ward")[:, 2] ** 2``), not scikit-learn's
unsquared ``distance_threshold``. On unit vectors two single items merge at ``2 - 2 cos``.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import numpy.typing as npt

from pinnersage.core._validate import MAX_ABS, as_vectors
from pinnersage.errors import ConfigError

__all__ = ["ward_clusters", "ward_labels", "ward_merges"]

# Entries of the Gram-trick distance matrix below this fraction of ||x||² + ||y||² are recomputed
# from the difference of the two rows, so that near-duplicates get exact (relative) distances and
# exact duplicates exactly 0.
_RECOMPUTE_FRACTION = 1e-4
_MAX_ABS = MAX_ABS


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill_squared_distances(x: np.ndarray, g: np.ndarray) -> int:  # pragma: no cover - compiled
    """Turn the Gram matrix ``g = x @ x.T`` into squared Euclidean distances, in place; return
    how many off-diagonal entries are exactly 0 (pairs of identical rows, counted twice).
    (:func:`_fill`, which also counts each row's entries within a threshold.)"""
    return _fill(x, g, -1.0)[0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill(x: np.ndarray, g: np.ndarray, alpha: float) -> tuple[int, int]:  # pragma: no cover
    """:func:`_fill_squared_distances`, also returning the most entries within ``alpha`` in one
    row (its diagonal included, so at least one for ``alpha >= 0``; an estimate: the rare
    near-duplicate entries are counted before they are recomputed).

    Row by row (no transposed writes): each entry depends only on its own Gram value and the two
    norms, and BLAS returns an exactly symmetric ``x @ x.T``, so the result is symmetric. The
    diagonal is set to +inf, which the chain reads as "not a neighbour". The loop over a row is
    branch-free (it vectorises); the rare near-duplicate entries are recomputed in a second pass.
    """
    n, d = x.shape
    sq = np.empty(n)
    for i in range(n):
        sq[i] = g[i, i]
    zeros = 0
    most = 0
    for i in range(n):
        row = g[i]
        si = sq[i]
        small = 0
        close = 0
        for j in range(n):
            v = si + sq[j] - 2.0 * row[j]
            row[j] = v
            small += v < _RECOMPUTE_FRACTION * (si + sq[j])
            close += v <= alpha
        most = max(most, close)
        # the diagonal (exactly 0) was counted unless the row is the zero vector
        if small > (1 if si > 0.0 else 0):
            for j in range(n):
                if j != i and row[j] < _RECOMPUTE_FRACTION * (si + sq[j]):
                    v = 0.0
                    for k in range(d):
                        diff = x[i, k] - x[j, k]
                        v += diff * diff
                    row[j] = v
                    zeros += v == 0.0
        row[i] = np.inf
    return zeros, most


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill_components(
    x: np.ndarray, g: np.ndarray, alpha: float
) -> tuple[int, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """:func:`_fill_squared_distances`, then the connected components of the graph that joins
    the rows within ``alpha`` of each other (squared distance).

    Returns the count of exact zeros, the members of every component of two rows or more,
    grouped by component and ascending within each, and the bounds of the groups (component k
    is ``members[bounds[k]:bounds[k + 1]]``); rows with nothing within ``alpha`` are left out.
    When one component holds more than half of the rows, every row is returned as one
    component instead: splitting would save little chain work for a copy of most of the
    matrix (on Online Retail's heavy users, with 64-d co-occurrence vectors, the largest
    component holds 93% of a user's distinct items at the median). A row with more than half
    of the rows within ``alpha`` (counted while the distances are filled) shows it at once;
    otherwise the search below stops as soon as its component passes half.

    Every merge at a Ward distance <= ``alpha`` joins two clusters of one component: Ward is
    reducible (d(A ∪ B, C) >= min(d(A, C), d(B, C))), so the Ward distance between two
    clusters is at least the smallest distance between their points, and the initial Ward
    distance of two points (of multiplicities a and b, ``2ab / (a + b)`` times their squared
    distance) is at least their squared distance. The merges of different components do not
    touch each other's distances either, so the merges at <= ``alpha`` of the whole chain are
    those of the chains run on each component alone (:func:`_chain_by_component`).

    The search is breadth-first: each row is read once, 32 entries at a time (a branch-free
    count of the entries within ``alpha`` of rows not yet reached, whose entries read as +inf
    through ``blocked``).
    """
    n = x.shape[0]
    zeros, most = _fill(x, g, alpha)
    if 2 * (most - 1) > n:
        return zeros, np.arange(n), np.array([0, n])
    blocked = np.zeros(n)  # +inf once a row is reached
    members = np.empty(n, np.int64)
    bounds = np.empty(n + 1, np.int64)
    bounds[0] = 0
    n_comp = 0
    count = 0  # members written (components of two rows or more)
    for s in range(n):
        if blocked[s] != 0.0:
            continue
        blocked[s] = np.inf
        start = count
        members[count] = s
        count += 1
        head = start
        while head < count:
            if 2 * (count - start) > n:  # more than half of the rows: one component
                return zeros, np.arange(n), np.array([0, n])
            row = g[members[head]]
            head += 1
            for base in range(0, n, _BLOCK):
                hits = 0
                if base + _BLOCK <= n:  # a whole block: a fixed trip count, vectorised
                    for k in range(base, base + _BLOCK):
                        hits += row[k] + blocked[k] <= alpha
                else:
                    for k in range(base, n):
                        hits += row[k] + blocked[k] <= alpha
                if hits:
                    for k in range(base, min(base + _BLOCK, n)):
                        if row[k] + blocked[k] <= alpha:
                            blocked[k] = np.inf
                            members[count] = k
                            count += 1
        if count - start == 1:  # nothing within alpha: a cluster of its own, no merge
            count = start
        else:
            members[start:count].sort()
            n_comp += 1
            bounds[n_comp] = count
    return zeros, members[:count], bounds[: n_comp + 1]


_BLOCK = 32


@numba.njit(cache=True, nogil=True, inline="always", fastmath={"nnan", "nsz"})
def _scan(row: np.ndarray, cur: int) -> tuple[float, int]:  # pragma: no cover - compiled
    """Smallest entry of ``row[:cur]`` and the first slot holding it.

    Block by block: a vectorised minimum of each block of 32, keeping the first block that
    holds the smallest; then the slot is searched in that block only.
    """
    best = np.inf
    first = 0
    blocks = cur // _BLOCK
    for blk in range(blocks):
        base = blk * _BLOCK
        m = np.inf
        for k in range(base, base + _BLOCK):
            v = row[k]
            m = v if v < m else m
        if m < best:
            best = m
            first = base
    m = np.inf
    for k in range(blocks * _BLOCK, cur):
        v = row[k]
        m = v if v < m else m
    if m < best:
        best = m
        first = blocks * _BLOCK
    for k in range(first, cur):
        if row[k] == best:
            return best, k
    return best, 0


@numba.njit(cache=True, nogil=True, inline="always")
def _replay_one(
    row: np.ndarray, slots: np.ndarray, log: np.ndarray, t: int, nk: float, recip: np.ndarray
) -> tuple[int, int, float]:  # pragma: no cover - compiled
    """Merge t (x absorbed y) applied to row k's entries at x and y (Eq. 1); returns x, y and
    the new entry as stored."""
    a = slots[t, 0]
    b = slots[t, 1]
    na = log[t, 0]
    nb = log[t, 1]
    row[a] = ((na + nk) * row[a] + (nb + nk) * row[b] - nk * log[t, 2]) * recip[
        np.uint32(na + nb + nk)
    ]
    row[b] = np.inf
    return a, b, row[a]


@numba.njit(cache=True, nogil=True, inline="always")
def _replay(
    row: np.ndarray,
    k: int,
    synced: np.ndarray,
    slots: np.ndarray,
    log: np.ndarray,
    nk: float,
    upto: int,
    nn: np.ndarray,
    nn_d: np.ndarray,
    nn_ok: np.ndarray,
    cur: int,
    recip: np.ndarray,
    dead: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Bring row k up to date: apply Eq. 1 for every merge made since it was last written.

    ``slots[t]`` and ``log[t]`` hold merge t: slots x and y; their sizes and distance. Keeps row k's
    cached nearest neighbour when it survives: Ward is reducible, so a merged cluster is never
    nearer than the nearer of its parts; the cache dies only when the neighbour itself took
    part in a merge (a new entry equal to the cached distance at a lower slot takes its place,
    as a full scan would choose it). Once it is dead the rest is replayed without tracking.

    A merge whose cluster has since retired (``dead[t]``) is not computed: its two slots are set
    to inf. A retired cluster is beyond α from every cluster, now and after any later merge
    (reducibility), so its entries never decide a merge at or below α, and a row that finds no
    cluster within α retires whatever the values beyond α are.
    """
    ok = nn_ok[k]
    j = nn[k]
    dj = nn_d[k]
    t = synced[k]
    if upto - t > 16:
        # Many pending merges touch many cache lines of the row at random: stream the row in
        # first (one read per line, in order, which the hardware prefetcher follows).
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        top = cur - cur % 32
        for i in range(0, top, 32):  # four independent sums: the loads are not serialised
            a0 += row[i]
            a1 += row[i + 8]
            a2 += row[i + 16]
            a3 += row[i + 24]
        for i in range(top, cur, 8):
            a0 += row[i]
        if a0 + a1 + a2 + a3 == -1.0:  # never true (rows hold no negative entry): keeps reads
            row[0] = a0
    while ok and t < upto:
        if dead[t]:  # its cluster retired: both slots just read as inf from now on
            a = slots[t, 0]
            b = slots[t, 1]
            row[a] = np.inf
            row[b] = np.inf
            if a == j or b == j:
                ok = False
            t += 1
            continue
        a, b, v = _replay_one(row, slots, log, t, nk, recip)
        if a == j or b == j:
            ok = False
        elif v < dj or (v == dj and a < j):
            j = a
            dj = v
        t += 1
    while t < upto:
        if dead[t]:
            row[slots[t, 0]] = np.inf
            row[slots[t, 1]] = np.inf
        else:
            _replay_one(row, slots, log, t, nk, recip)
        t += 1
    nn_ok[k] = ok
    nn[k] = j
    nn_d[k] = dj
    synced[k] = upto


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _update(
    rx: np.ndarray, ry: np.ndarray, size: np.ndarray, nx: float, ny: float, d: float, cur: int
) -> None:  # pragma: no cover - compiled
    """Eq. 1 for a whole row: rx <- d(x ∪ y, k) for every slot k < cur (branch-free, vectorised).

    Clusters that left hold inf in rx and ry, and so do slots x (rx[x]) and y (ry[y]): their
    update is inf. ``1.0 / (s + nk)`` is exactly ``_replay``'s ``recip[s + nk]`` (both one IEEE
    division), so a row and its replayed column hold the same numbers.
    """
    s = nx + ny
    for k in range(cur):
        nk = size[k]
        rx[k] = ((nx + nk) * rx[k] + (ny + nk) * ry[k] - nk * d) * (1.0 / (s + nk))


@numba.njit(cache=True, nogil=True, inline="always")
def _replay_listed(
    row: np.ndarray,
    k: int,
    synced: np.ndarray,
    slots: np.ndarray,
    log: np.ndarray,
    nk: float,
    upto: int,
    nn: np.ndarray,
    nn_d: np.ndarray,
    nn_ok: np.ndarray,
    recip: np.ndarray,
    listed: np.ndarray,
    start: int,
) -> None:  # pragma: no cover - compiled
    """:func:`_replay` of the merges ``listed[start:]`` only (compaction: the live merges; the
    slots the others touch are dropped), keeping row k's cached neighbour the same way."""
    ok = nn_ok[k]
    j = nn[k]
    dj = nn_d[k]
    for i in range(start, listed.shape[0]):
        a, b, v = _replay_one(row, slots, log, listed[i], nk, recip)
        if ok:
            if a == j or b == j:
                ok = False
            elif v < dj or (v == dj and a < j):
                j = a
                dj = v
    nn_ok[k] = ok
    nn[k] = j
    nn_d[k] = dj
    synced[k] = upto


@numba.njit(cache=True, nogil=True, inline="always")
def _start_chain(
    chain: np.ndarray, restart: int, active: np.ndarray, first: int
) -> int:  # pragma: no cover - compiled
    """Put a new chain's first cluster in ``chain[0]``: the cluster the last merge made
    (``restart``) while it is live, else the lowest live slot at or after ``first``; returns
    that lowest-slot cursor."""
    if restart >= 0 and active[restart]:
        chain[0] = restart
    else:
        while not active[first]:
            first += 1
        chain[0] = first
    return first


@numba.njit(cache=True, nogil=True, inline="always")
def _bury(t: int, dead: np.ndarray, children: np.ndarray, stack: np.ndarray) -> None:
    """Mark merge ``t`` (-1: none) and every merge below it as dead (its cluster retired)."""
    if t < 0:
        return
    stack[0] = t
    top = 1
    while top:
        top -= 1
        t = stack[top]
        dead[t] = True
        for side in range(2):
            if children[t, side] >= 0:
                stack[top] = children[t, side]
                top += 1


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nnan", "nsz"})
def _nn_chain(
    dist: np.ndarray, sizes: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Nearest-neighbour chain on ``dist`` (destroyed) between clusters of ``sizes`` actions
    (ones, or the multiplicities of collapsed identical rows). Returns merges in the order made:
    every merge at a distance <= ``alpha`` (all of them when ``alpha`` is inf).

    Merges above ``alpha`` are never made: when the chain's top cluster has no neighbour within
    ``alpha``, neither has any cluster of the chain (their nearest distances decrease along it),
    and by reducibility none ever will (a merged cluster is never nearer than the nearer of its
    parts), so the whole chain retires: each of its clusters is a cluster of the cut. A cluster
    whose nearest neighbour is a retired one retires too (that neighbour is beyond ``alpha``),
    and so does a cluster just made with nothing within ``alpha``. On real histories, where many
    actions are singletons at the default α, a third of the merges are above it, and they would
    be made among the most live clusters.

    A new chain starts at the cluster the last merge made while it is live, else at the lowest
    live slot: the chain finishes one group of nearby actions (one interest) before it moves to
    the next, so that group's rows stay in the CPU caches, and when it retires, every merge of
    it is dead for the replays below (measured: 0.87x the time of starting at the lowest slot,
    SciPy's rule, from n = 500 to 2,000 on the benchmark's vectors). Without ties in the
    distances any start gives the same merges (Ward is reducible); with exact ties the tree may
    differ from SciPy's, as any tie-breaking may (identical rows are collapsed before the chain).

    ``dist`` holds +inf on the diagonal. Only rows are ever written: when x absorbs y, row x is
    recomputed with Eq. 1 and the merge is logged; any other row k is brought up to date lazily,
    by replaying the logged merges, just before the chain reads it. Replaying applies the same
    arithmetic to the same numbers as row x did, so the matrix stays exactly symmetric, and no
    strided column write (a cache miss per entry) is ever made. Each row caches its nearest
    neighbour, so most chain steps need no scan. Clusters that left hold +inf. When two thirds
    of the slots have left, the live rows and columns are compacted into the top-left corner, so
    scans and updates cost about the number of live clusters, not n.

    Returned cluster ids are original rows: a merged cluster keeps the id of the chain's top.
    Ties between neighbours: the chain's previous element wins if it is among the nearest, else
    the lowest slot (slots keep the order of ids).
    """
    n = dist.shape[0]
    m = max(n - 1, 0)
    left = np.empty(m, np.int64)
    right = np.empty(m, np.int64)
    height = np.empty(m, np.float64)
    # per merge, for replays: the slots of x and y (unsigned, so indexing needs no
    # negative-index wrap-around), and the sizes of x and y and their distance
    slots = np.empty((m, 2), np.uint32)
    log = np.empty((m, 3))
    size = sizes.astype(np.float64)  # a copy
    total = int(size.sum())
    # 1/s for every size sum a replay meets (up to 2 * total): a multiplication, not a division,
    # on the replay's chain of dependent updates (the row update divides, vectorised, to the
    # same 1/s).
    recip = np.empty(2 * total + 1)
    recip[0] = 0.0
    for s_ in range(1, 2 * total + 1):
        recip[s_] = 1.0 / s_
    active = np.ones(n, np.bool_)
    # the merges of clusters that retired (replays skip them), found through each slot's last
    # merge and each merge's two children
    dead = np.zeros(m, np.bool_)
    made_by = np.full(n, -1, np.int64)
    children = np.empty((m, 2), np.int64)
    stack = np.empty(m + 1, np.int64)
    synced = np.zeros(n, np.int64)
    nn = np.zeros(n, np.int64)
    nn_d = np.full(n, np.inf)
    nn_ok = np.zeros(n, np.bool_)
    ids = np.arange(n)
    new_slot = np.empty(n, np.int64)
    chain = np.empty(n, np.int64)
    chain_len = 0
    first = 0
    restart = -1  # a new chain starts at the last merged cluster while it is live
    epoch = 0  # merges before this one are in every live row (the last compaction)
    cur = n  # slots in use
    live = n  # clusters neither merged into another nor retired
    step = 0  # merges made
    while live > 1:
        if 3 * live <= cur and live >= 32:
            # compact (when two thirds of the slots have left; measured against a half and a
            # quarter): bring every live row up to date, then move live rows/columns top-left
            # (the merges of retired clusters only touch slots that are about to go: only the
            # live merges since the last compaction are replayed)
            listed = np.empty(step - epoch, np.int64)
            count = 0
            for t in range(epoch, step):
                if not dead[t]:
                    listed[count] = t
                    count += 1
            listed = listed[:count]
            j = 0
            for s in range(cur):
                if active[s]:
                    if synced[s] < step:
                        _replay_listed(
                            dist[s],
                            s,
                            synced,
                            slots,
                            log,
                            size[s],
                            step,
                            nn,
                            nn_d,
                            nn_ok,
                            recip,
                            listed,
                            np.searchsorted(listed, synced[s]),
                        )
                    new_slot[s] = j
                    j += 1
            epoch = step
            live_slots = np.empty(live, np.int64)
            j = 0
            for s in range(cur):
                if active[s]:
                    live_slots[j] = s
                    j += 1
            j = 0
            for s in range(cur):
                if active[s]:
                    src = dist[s]
                    dst = dist[j]
                    for i in range(live):
                        dst[i] = src[live_slots[i]]
                    size[j] = size[s]
                    ids[j] = ids[s]
                    made_by[j] = made_by[s]
                    ok = nn_ok[s] and active[nn[s]]  # a retired neighbour's slot goes away
                    nn_ok[j] = ok
                    nn[j] = new_slot[nn[s]] if ok else 0
                    nn_d[j] = nn_d[s]
                    j += 1
            for c in range(chain_len):
                chain[c] = new_slot[chain[c]]
            cur = live
            for s in range(cur):
                active[s] = True
                synced[s] = step
            first = 0
            restart = -1
        if chain_len == 0:
            first = _start_chain(chain, restart, active, first)
            chain_len = 1
        while True:
            x = chain[chain_len - 1]
            row = dist[x]
            if synced[x] < step:
                _replay(
                    row,
                    x,
                    synced,
                    slots,
                    log,
                    size[x],
                    step,
                    nn,
                    nn_d,
                    nn_ok,
                    cur,
                    recip,
                    dead,
                )
            if not nn_ok[x]:
                nn_d[x], nn[x] = _scan(row, cur)
                nn_ok[x] = True
            best = nn_d[x]
            if best > alpha:
                break
            if chain_len > 1 and row[chain[chain_len - 2]] == best:
                break
            chain[chain_len] = nn[x]
            chain_len += 1
        if best > alpha:  # retire the chain (see above)
            for c in range(chain_len):
                active[chain[c]] = False
                nn_ok[chain[c]] = False
                _bury(made_by[chain[c]], dead, children, stack)
            live -= chain_len
            chain_len = 0
            continue
        y = chain[chain_len - 2]
        chain_len -= 2
        rx = dist[x]
        ry = dist[y]
        if synced[y] < step:
            _replay(
                ry,
                y,
                synced,
                slots,
                log,
                size[y],
                step,
                nn,
                nn_d,
                nn_ok,
                cur,
                recip,
                dead,
            )
        nx = size[x]
        ny = size[y]
        left[step] = ids[x]
        right[step] = ids[y]
        height[step] = best
        slots[step, 0] = x
        slots[step, 1] = y
        children[step, 0] = made_by[x]
        children[step, 1] = made_by[y]
        made_by[x] = step
        log[step, 0] = nx
        log[step, 1] = ny
        log[step, 2] = best
        # Eq. 1 for the whole row, finding its nearest neighbour on the way. Clusters that left
        # hold inf in rx and ry, and so do slots x (rx[x]) and y (ry[y]): their update is inf.
        _update(rx, ry, size, nx, ny, best, cur)
        new_best, new_arg = _scan(rx, cur)
        rx[x] = np.inf
        rx[y] = np.inf
        active[y] = False
        nn_ok[y] = False
        live -= 1
        size[x] = nx + ny
        size[y] = 0.0
        synced[x] = step + 1
        nn[x] = new_arg
        nn_d[x] = new_best
        nn_ok[x] = live > 1
        if new_best > alpha:  # nothing within α now, so never again: retire it at once
            active[x] = False
            nn_ok[x] = False
            _bury(step, dead, children, stack)
            live -= 1
        restart = x
        step += 1
    return left[:step], right[:step], height[:step]


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"nnan", "nsz"})
def _nn_chain_eager(
    dist: np.ndarray,
    size: np.ndarray,
    alpha: float,
    part: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    height: np.ndarray,
    step: int,
    nn: np.ndarray,
    nn_d: np.ndarray,
    nn_ok: np.ndarray,
    active: np.ndarray,
    chain: np.ndarray,
    alive: np.ndarray,
    where: np.ndarray,
    stamp: np.ndarray,
    changed: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """:func:`_nn_chain` for a small matrix (a component of a few dozen points), which stays in
    the CPU's caches: each merge writes its row and, in the live rows, its column at once, so
    no row ever waits for a replay. The same rules (chain start, ties, retirement at ``alpha``)
    make the same merges.

    ``dist`` (c x c, +inf on the diagonal) and ``size`` (the clusters' sizes) are destroyed.
    The merges are written to ``left``, ``right``, ``height`` from index ``step`` on, as the
    points ``part[slot]``; returns the index after the last one. ``nn`` to ``changed`` are
    workspace of at least c entries.

    Only live rows are kept up to date: a row that left (merged or retired) is never read
    again. Retired clusters keep their columns in the live rows, updated by every merge: they
    stay true Ward distances, all beyond ``alpha``, so a cluster whose nearest neighbour is a
    retired one retires too. A row's cached nearest neighbour (found at time ``stamp``) stays
    valid until that neighbour takes part in a merge (``changed``): Ward is reducible, so no
    other merge brings a cluster nearer than it.
    """
    c = dist.shape[0]
    for i in range(c):
        active[i] = True
        nn_ok[i] = False
        alive[i] = i
        where[i] = i
        changed[i] = 0
    live = c
    chain_len = 0
    first = 0
    restart = -1
    clock = 1
    while live > 1:
        if chain_len == 0:
            first = _start_chain(chain, restart, active, first)
            chain_len = 1
        while True:
            x = chain[chain_len - 1]
            row = dist[x]
            if not nn_ok[x] or changed[nn[x]] > stamp[x]:
                nn_d[x], nn[x] = _scan(row, c)
                nn_ok[x] = True
                stamp[x] = clock
            best = nn_d[x]
            if best > alpha:
                break
            if chain_len > 1 and row[chain[chain_len - 2]] == best:
                break
            chain[chain_len] = nn[x]
            chain_len += 1
        if best > alpha:  # retire the chain (see _nn_chain)
            for i in range(chain_len):
                _leave(chain[i], active, nn_ok, alive, where, live)
                live -= 1
            chain_len = 0
            continue
        y = chain[chain_len - 2]
        chain_len -= 2
        rx = dist[x]
        ry = dist[y]
        nx = size[x]
        ny = size[y]
        left[step] = part[x]
        right[step] = part[y]
        height[step] = best
        step += 1
        _update(rx, ry, size, nx, ny, best, c)
        rx[x] = np.inf
        rx[y] = np.inf
        size[x] = nx + ny
        size[y] = 0.0
        _leave(y, active, nn_ok, alive, where, live)
        live -= 1
        for i in range(live):
            k = alive[i]
            dist[k, x] = rx[k]
            dist[k, y] = np.inf
        clock += 1
        changed[x] = clock
        changed[y] = clock
        nn_d[x], nn[x] = _scan(rx, c)
        nn_ok[x] = live > 1
        stamp[x] = clock
        if nn_d[x] > alpha:  # nothing within alpha now, so never again: retire it at once
            _leave(x, active, nn_ok, alive, where, live)
            live -= 1
        restart = x
    return step


@numba.njit(cache=True, nogil=True, inline="always")
def _leave(
    s: int, active: np.ndarray, nn_ok: np.ndarray, alive: np.ndarray, where: np.ndarray, live: int
) -> None:  # pragma: no cover - compiled
    """Slot ``s`` leaves the ``live`` slots listed in ``alive`` (its place goes to the last)."""
    active[s] = False
    nn_ok[s] = False
    last = alive[live - 1]
    alive[where[s]] = last
    where[last] = where[s]


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, i: int) -> int:  # pragma: no cover - compiled
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@numba.njit(cache=True, nogil=True)
def _cut(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    height: np.ndarray,
    alpha: float,
    keep_singletons: bool,
    sizes: np.ndarray,
) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    """Labels 0..c-1 (ordered by smallest row) of the maximal subtrees with height <= alpha.

    Ward is reducible, so heights grow towards the root and the union of every merge with
    height <= alpha is exactly the cut. A cluster of one action (``sizes`` counts the actions
    of each of the n leaves) gets -1 unless ``keep_singletons``.
    """
    parent = np.arange(n)
    for s in range(left.shape[0]):
        if height[s] <= alpha:
            a = _find(parent, left[s])
            b = _find(parent, right[s])
            if a != b:
                parent[max(a, b)] = min(a, b)
    count = np.zeros(n)
    for i in range(n):
        count[_find(parent, i)] += sizes[i]
    label_of_root = np.full(n, -1, np.int64)
    labels = np.full(n, -1, np.int64)
    c = 0
    for i in range(n):  # roots are the smallest row of their cluster: labels follow smallest row
        r = _find(parent, i)
        if count[r] == 1.0 and not keep_singletons:
            continue
        if label_of_root[r] < 0:
            label_of_root[r] = c
            c += 1
        labels[i] = label_of_root[r]
    return labels, c


@numba.njit(cache=True, nogil=True)
def _collapse(
    g: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Collapse identical rows (distance exactly 0) of the distance matrix ``g``, in place.

    ``sizes`` are the rows' multiplicities. Returns the Ward distances between the u distinct
    rows (a u x u view at the start of ``g``'s memory), their multiplicities, and the distinct
    row of each of the n rows. Identical rows merge first, at distance 0, and m identical rows
    are at Ward distance ``2 m k / (m + k) ||a - b||²`` from k identical rows (Eq. 1 applied to
    the zero-height merges), so the chain on the distinct rows with these distances and sizes
    makes the same tree above height 0 with u - 1 merges and u² entries instead of n - 1 and
    n²: repeated actions on one item are common (1.5 actions per user-item pair on Online
    Retail, 2.5 for its users with 500 actions or more).
    """
    n = g.shape[0]
    group = np.full(n, -1, np.int64)
    rep = np.empty(n, np.int64)
    size = np.zeros(n)
    u = 0
    for i in range(n):
        if group[i] < 0:
            group[i] = u
            rep[u] = i
            size[u] = sizes[i]
            row = g[i]
            for j in range(i + 1, n):
                if row[j] == 0.0 and group[j] < 0:
                    group[j] = u
                    size[u] += sizes[j]
            u += 1
    # pack the distinct rows and columns into a C-contiguous u x u block at the start of the
    # memory; in increasing (a, b) order no entry is written before it is read (a <= rep[a])
    flat = g.reshape(n * n)
    for a in range(u):
        ra = rep[a] * n
        sa = size[a]
        for b in range(u):
            sb = size[b]
            flat[a * u + b] = flat[ra + rep[b]] * (2.0 * sa * sb / (sa + sb))
        flat[a * u + a] = np.inf
    return flat[: u * u].reshape((u, u)), size[:u].copy(), group


#: Components up to this many points run :func:`_nn_chain_eager` (measured against the lazy
#: chain on the benchmark's components).
_EAGER_MAX = 96


@numba.njit(cache=True, nogil=True)
def _chain_by_component(
    dist: np.ndarray, sizes: np.ndarray, alpha: float, members: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """:func:`_nn_chain` (its merges at distances <= ``alpha``) run on each component alone
    (``members[bounds[k]:bounds[k + 1]]``, ascending; see :func:`_fill_components`): the same
    merges, for the sum of the components' squared sizes instead of the whole matrix's. On
    histories with several interests (the benchmark's, or a user's few dozen actions on each
    of a few topics) the chain's work falls several times over, a point with nothing within
    ``alpha`` costs nothing at all, and components of up to ``_EAGER_MAX`` points run the
    eager chain, in the CPU's caches.

    Each component's distances are gathered into a matrix of its own (rows and columns in
    ascending order of the points, so ties between neighbours break as on the whole matrix),
    in a scratch matrix of the second largest component's size; the largest component is
    gathered last, in place into the top-left corner of ``dist`` (destroyed), so the memory
    added is at most a quarter of the matrix. A component of every point runs on ``dist``
    itself.
    """
    u = dist.shape[0]
    m = max(u - 1, 0)
    n_comp = bounds.shape[0] - 1
    left = np.empty(m, np.int64)
    right = np.empty(m, np.int64)
    height = np.empty(m)
    largest = 0
    second = 0
    for k in range(n_comp):
        if bounds[k + 1] - bounds[k] > bounds[largest + 1] - bounds[largest]:
            largest = k
    for k in range(n_comp):
        c = bounds[k + 1] - bounds[k]
        if k != largest and c > second:
            second = c
    biggest = bounds[largest + 1] - bounds[largest] if n_comp else 0
    scratch = np.empty(second * second)
    small = min(biggest, _EAGER_MAX)  # workspace of the eager chain
    sub_sizes = np.empty(small)
    nn = np.empty(small, np.int64)
    nn_d = np.empty(small)
    nn_ok = np.empty(small, np.bool_)
    active = np.empty(small, np.bool_)
    chain = np.empty(small, np.int64)
    alive = np.empty(small, np.int64)
    where = np.empty(small, np.int64)
    stamp = np.empty(small, np.int64)
    changed = np.empty(small, np.int64)
    flat = dist.reshape(u * u)
    step = 0
    for turn in range(n_comp):
        # every other component first, then the largest (its in-place gather destroys rows)
        k = turn if turn < largest else (turn + 1 if turn < n_comp - 1 else largest)
        lo = bounds[k]
        c = bounds[k + 1] - lo
        part = members[lo : lo + c]
        if c == u:
            sub = dist
        else:
            # gather in increasing order: for the largest, into the front of dist's own memory
            # (entry (i, j) moves from part[i] * u + part[j] >= i * c + j, never before it is
            # read)
            into = flat if k == largest else scratch
            for i in range(c):
                src = part[i] * u
                dst = i * c
                for j in range(c):
                    into[dst + j] = flat[src + part[j]]
            sub = into[: c * c].reshape((c, c))
        if c <= _EAGER_MAX:
            for i in range(c):
                sub_sizes[i] = sizes[part[i]]
            step = _nn_chain_eager(
                sub,
                sub_sizes[:c],
                alpha,
                part,
                left,
                right,
                height,
                step,
                nn,
                nn_d,
                nn_ok,
                active,
                chain,
                alive,
                where,
                stamp,
                changed,
            )
        else:
            a, b, h = _nn_chain(sub, sizes[part], alpha)
            for t in range(h.shape[0]):
                left[step] = part[a[t]]
                right[step] = part[b[t]]
                height[step] = h[t]
                step += 1
    return left[:step], right[:step], height[:step]


@numba.njit(cache=True, nogil=True)
def _ward_tree(
    x: np.ndarray, g: np.ndarray, sizes: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Algorithm 1's tree for a partition at thresholds up to ``alpha`` (its merges at
    distances <= ``alpha``; inf for the whole tree). ``x`` holds distinct points (or not) with
    multiplicities ``sizes`` (ones for plain rows); ``g = x @ x.T`` (destroyed) becomes the Ward
    distances, identical rows are collapsed (:func:`_collapse`), then the chain runs on each
    component of the points within ``alpha`` of each other (:func:`_chain_by_component`).
    Returns the merges (left, right, height) between the distinct points, their
    multiplicities, and the distinct point of each row of ``x``; cut it with
    :func:`_cut_rows` at any α <= ``alpha``. (``ward_merges``, which reports every merge, does
    not collapse.)"""
    n = x.shape[0]
    if alpha == np.inf:  # the whole tree: one component
        zeros = _fill_squared_distances(x, g)
        members = np.arange(n)
        bounds = np.array([0, n])
    else:
        zeros, members, bounds = _fill_components(x, g, alpha)
    if zeros == 0:
        if sizes.max() > 1.0:  # points with multiplicities: Ward distances between them
            for a in range(n):
                sa = sizes[a]
                row = g[a]
                for b in range(n):
                    sb = sizes[b]
                    row[b] *= 2.0 * sa * sb / (sa + sb)
        left, right, height = _chain_by_component(g, sizes, alpha, members, bounds)
        return left, right, height, sizes, np.arange(n)
    dist, merged, group = _collapse(g, sizes)
    # the components of the distinct points: identical rows are in one component (distance 0)
    emitted = np.zeros(merged.shape[0], np.bool_)
    distinct = np.empty(members.shape[0], np.int64)
    kept = np.empty(bounds.shape[0], np.int64)
    kept[0] = 0
    count = 0
    n_comp = 0
    for k in range(bounds.shape[0] - 1):
        start = count
        for i in range(bounds[k], bounds[k + 1]):  # ascending rows: ascending distinct points
            a = group[members[i]]
            if not emitted[a]:
                emitted[a] = True
                distinct[count] = a
                count += 1
        if count - start > 1:
            n_comp += 1
            kept[n_comp] = count
        else:  # copies of one point: no merge
            count = start
    left, right, height = _chain_by_component(
        dist, merged, alpha, distinct[:count], kept[: n_comp + 1]
    )
    return left, right, height, merged, group


@numba.njit(cache=True, nogil=True)
def _distinct_in_order(
    keys: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Distinct values of ``keys`` (int64) in order of first appearance: the code of each entry,
    the position of each distinct value's first entry, and how many entries each has."""
    n = keys.shape[0]
    order = np.argsort(keys, kind="mergesort")
    code = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    u = 0
    for k in range(n):
        i = order[k]
        if k == 0 or keys[i] != keys[order[k - 1]]:
            first[u] = i  # stable sort: the earliest entry of this value
            u += 1
        code[i] = u - 1
    rank = np.argsort(first[:u], kind="mergesort")
    renumber = np.empty(u, np.int64)
    renumber[rank] = np.arange(u)
    codes = renumber[code]
    return codes, first[:u][rank], np.bincount(codes, minlength=u)


@numba.njit(cache=True, nogil=True)
def _cut_rows(
    left: np.ndarray,
    right: np.ndarray,
    height: np.ndarray,
    sizes: np.ndarray,
    group: np.ndarray,
    alpha: float,
    keep_singletons: bool,
) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    """:func:`_cut` of a :func:`_ward_tree`, as labels of the original rows."""
    labels, c = _cut(sizes.shape[0], left, right, height, alpha, keep_singletons, sizes)
    return labels[group], c


_workspace = threading.local()


def _buffer(name: str, size: int) -> npt.NDArray[np.float64]:
    """This thread's reusable float64 buffer ``name``, grown to at least ``size`` entries."""
    buf: npt.NDArray[np.float64] | None = getattr(_workspace, name, None)
    if buf is None or buf.shape[0] < size:
        buf = np.empty(max(size, 1 << 16))
        setattr(_workspace, name, buf)
    return buf


def _gram(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``x @ x.T`` in this thread's reusable n x n buffer.

    Writing a fresh n² allocation first-touches every page of it, which costs about as much as
    the product itself (measured at n = 5,000: 200 MB, ~100 ms of page faults per user). The
    batch job clusters users one after the other, so the buffer is kept and grown as needed: a
    thread holds one matrix of the largest history it has clustered (200 MB at the default cap
    of 5,000 actions), the memory Ward needs anyway. The result is overwritten by the next call.
    """
    n = x.shape[0]
    g = _buffer("gram", n * n)[: n * n].reshape(n, n)
    np.matmul(x, x.T, out=g)
    return g


def _rows(n: int, d: int) -> npt.NDArray[np.float64]:
    """An (n, d) float64 array in this thread's reusable buffer (a user's vectors, converted
    for the Gram product): overwritten by the next call on this thread."""
    return _buffer("rows", n * d)[: n * d].reshape(n, d)


def _distance_matrix(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Squared Euclidean distances (+inf on the diagonal): one Gram matrix, filled in place (in
    this thread's reusable buffer, see :func:`_gram`)."""
    g = _gram(x)
    _fill_squared_distances(x, g)
    return g


def _check_threshold(distance_threshold: float) -> float:
    try:
        alpha = float(distance_threshold)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"distance_threshold must be a number, got {distance_threshold!r}"
        ) from exc
    if not np.isfinite(alpha) or alpha < 0:
        raise ConfigError(
            f"distance_threshold must be a finite number >= 0, got {distance_threshold!r}"
        )
    return alpha


def _ward_cut(
    x: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64], alpha: float, keep_singletons: bool
) -> tuple[npt.NDArray[np.int64], int]:
    """Flat Ward labels of the rows of ``x`` (checked), each standing for ``sizes`` actions."""
    n = x.shape[0]
    if n <= 1:  # no merge to make
        kept = keep_singletons or (n == 1 and sizes[0] > 1)
        return (np.zeros(n, np.int64) if kept else np.full(n, -1, np.int64)), n if kept else 0
    labels, c = _cut_rows(*_ward_tree(x, _gram(x), sizes, alpha), alpha, keep_singletons)
    return labels, int(c)


def ward_labels(
    vectors: npt.ArrayLike, distance_threshold: float, *, keep_singletons: bool = False
) -> tuple[npt.NDArray[np.int64], int]:
    """Flat Ward labels: ``(labels, n_clusters)``; label -1 marks a dropped singleton.

    Labels are numbered in the order of each cluster's smallest row.
    """
    alpha = _check_threshold(distance_threshold)
    x = as_vectors(vectors, max_abs=_MAX_ABS)
    return _ward_cut(x, np.ones(x.shape[0]), alpha, keep_singletons)


def ward_clusters(
    vectors: npt.ArrayLike, distance_threshold: float, *, keep_singletons: bool = False
) -> list[npt.NDArray[np.int64]]:
    """Algorithm 1: Ward clusters of the rows of ``vectors`` at threshold α.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        One row per action (finite). Zero or one row is not an error.
    distance_threshold : float
        α, in the squared-Euclidean units of Eq. 1 (SciPy's Ward height squared).
    keep_singletons : bool, default False
        False follows the paper literally: a row whose first merge is above α belongs to no
        cluster. True returns such rows as clusters of one.

    Returns
    -------
    list of int64 arrays
        Row indices of each cluster, ascending; clusters ordered by their smallest row. No cap
        on the number or size of clusters.
    """
    labels, c = ward_labels(vectors, distance_threshold, keep_singletons=keep_singletons)
    if c == 0:
        return []
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels[labels >= 0], minlength=c)
    start = int(np.count_nonzero(labels < 0))
    out: list[npt.NDArray[np.int64]] = []
    for size in counts:
        out.append(order[start : start + size].astype(np.int64))
        start += size
    return out


def ward_merges(vectors: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The merge history in SciPy's linkage layout, distances in Eq. 1 units (squared).

    Returns an (n - 1, 4) float64 array: the two merged cluster ids (original rows are
    ``0..n-1``, the cluster made at step s is ``n + s``), the merge distance and the new size;
    rows sorted by distance (stable), as :func:`scipy.cluster.hierarchy.linkage` orders them.
    ``scipy.cluster.hierarchy.dendrogram`` accepts it after ``Z[:, 2] = sqrt(Z[:, 2])``.
    """
    x = as_vectors(vectors, max_abs=_MAX_ABS)
    n = x.shape[0]
    if n <= 1:
        return np.empty((0, 4), np.float64)
    left, right, height = _nn_chain(_distance_matrix(x), np.ones(n), np.inf)
    order = np.argsort(height, kind="mergesort")
    z = np.empty((n - 1, 4), np.float64)
    parent = np.arange(2 * n - 1)
    cluster_id = np.arange(n)  # id of the cluster whose representative row is r
    size = np.ones(2 * n - 1, np.int64)
    for s, k in enumerate(order):
        a = int(_root(parent, int(left[k])))
        b = int(_root(parent, int(right[k])))
        ida, idb = cluster_id[a], cluster_id[b]
        new = n + s
        size[new] = size[ida] + size[idb]
        z[s] = (min(ida, idb), max(ida, idb), height[k], size[new])
        parent[b] = a
        cluster_id[a] = new
    return z


def _root(parent: npt.NDArray[np.int64], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i
