"""Merging a request's neighbour lists into its candidates (paper section 3.5), compiled.

Each source of a request (a chosen cluster, then the decay-average query) takes, in turn, its
best ``quota`` items that are neither excluded (the user's own items) nor taken by an earlier
source. The candidates are then ordered by score, best first; ties keep source order, then list
order. :mod:`pinnersage.retrieval.recommender` documents the rules; this module only runs them.

:func:`merge_in_turn` is the request's hot path: one compiled pass with an open-addressing hash
set of the excluded and taken keys, then a merge of the sources' picks (each a run sorted best
first, as an index returns its lists; a stable sort when a list is not).
:func:`merge_in_turn_reference` is its slow twin in plain Python, the oracle of the parity tests.

The lists hold catalog rows. Items are compared by key: the item id when ``ids`` (the catalog's
integer ids, row -> id) is given, the row otherwise (the recommender then maps the excluded ids
to rows). Source ``s``'s list is ``rows[s]``, ``scores[s]``; ``plan[0, s]`` is its quota and
``plan[1, s]`` is 1 when the list holds the whole index (it cannot be fetched deeper).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from pinnersage._hash import set_add, table_bits

__all__ = ["merge_in_turn", "merge_in_turn_reference"]


@njit(cache=True, nogil=True)
def _merge(
    rows: tuple[npt.NDArray[np.int64], ...],
    scores: tuple[npt.NDArray[np.float32], ...],
    ids: npt.NDArray[np.int64],
    plan: npt.NDArray[np.int64],
    excluded: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64], np.int64]:
    total = 0
    for lst in rows:
        total += lst.shape[0]
    # one hash set of the keys no source may take: the excluded ones, then every pick
    # (keys and rows are one to one, so a key seen twice is an item in two lists)
    bits = table_bits(total + excluded.shape[0])
    blocked = np.empty(1 << bits, np.int64)
    used = np.zeros(1 << bits, np.uint8)
    for j in range(excluded.shape[0]):
        set_add(blocked, used, bits, excluded[j])
    by_id = ids.shape[0] > 0
    # the keys of every listed row first, in a plain loop: the id lookups miss the CPU caches
    # and overlap only without the hash set's branches between them
    all_keys = np.empty(total, np.int64)
    at = 0
    for lst in rows:
        for pos in range(lst.shape[0]):
            all_keys[at + pos] = ids[lst[pos]] if by_id else lst[pos]
        at += lst.shape[0]
    n_sources = plan.shape[1]
    keys = np.empty(total, np.int64)
    got_scores = np.empty(total, np.float32)
    run_end = np.empty(n_sources, np.int64)  # source s's picks end at run_end[s]
    runs_sorted = True
    count = 0
    at = 0
    s = 0
    for lst in rows:
        want = plan[0, s]
        got = 0
        if want > 0:
            lst_scores = scores[s]
            for pos in range(lst.shape[0]):
                key = all_keys[at + pos]
                if not set_add(blocked, used, bits, key):
                    continue
                keys[count] = key
                got_scores[count] = lst_scores[pos]
                if got and got_scores[count] > got_scores[count - 1]:
                    runs_sorted = False
                count += 1
                got += 1
                if got == want:
                    break
        if got < want and plan[1, s] == 0:
            return keys[:0], got_scores[:0], keys[:0], np.int64(s)
        run_end[s] = count
        at += lst.shape[0]
        s += 1
    if not runs_sorted:  # lists not best first: a stable sort (ties keep source order)
        origin = np.empty(count, np.int64)
        start = 0
        for s in range(n_sources):
            origin[start : run_end[s]] = s
            start = run_end[s]
        order = np.argsort(-got_scores[:count], kind="mergesort")
        return keys[order], got_scores[order], origin[order], np.int64(-1)
    # each source's picks are a run sorted best first: merge the runs (ties: earlier source)
    head = np.empty(n_sources, np.int64)
    start = 0
    for s in range(n_sources):
        head[s] = start
        start = run_end[s]
    out_keys = np.empty(count, np.int64)
    out_scores = np.empty(count, np.float32)
    out_origin = np.empty(count, np.int64)
    for i in range(count):
        best = -1
        for s in range(n_sources):
            if head[s] < run_end[s] and (best < 0 or got_scores[head[s]] > got_scores[head[best]]):
                best = s
        j = head[best]
        out_keys[i] = keys[j]
        out_scores[i] = got_scores[j]
        out_origin[i] = best
        head[best] = j + 1
    return out_keys, out_scores, out_origin, np.int64(-1)


def merge_in_turn(
    rows: Sequence[npt.NDArray[np.int64]],
    scores: Sequence[npt.NDArray[np.float32]],
    ids: npt.NDArray[np.int64],
    plan: npt.NDArray[np.int64],
    excluded: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64], int]:
    """Pick each source's candidates in turn; order them by score.

    Parameters
    ----------
    rows, scores : sequences of numpy.ndarray, int64 and float32
        Each source's list (catalog rows, each once) and scores, best first.
    ids : numpy.ndarray, int64
        The catalog's integer item ids (row -> id), or empty (keys are rows).
    plan : numpy.ndarray of shape (2, sources), int64
        Quotas, and 1 where a list holds the whole index (0 where it can be fetched deeper).
    excluded : numpy.ndarray, int64
        Keys no source may take.

    Returns
    -------
    keys, scores, origin, short
        The candidates' keys (ids, or rows), best score first (ties: source, then list order),
        their scores and sources. ``short`` is -1, or the first source whose list ran out before
        its quota while it could be fetched deeper (no candidate is returned then: fetch that
        list deeper and merge again).
    """
    if not rows:
        empty = np.zeros(0, np.int64)
        return empty, np.zeros(0, np.float32), empty, -1
    keys, got, origin, short = _merge(tuple(rows), tuple(scores), ids, plan, excluded)
    return keys, got, origin, int(short)


def merge_in_turn_reference(
    rows: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    ids: Sequence[int] | None,
    quotas: Sequence[int],
    complete: Sequence[bool],
    excluded: set[int],
) -> tuple[list[tuple[int, int]], int]:
    """:func:`merge_in_turn` in plain Python (the tests' oracle).

    Returns the picks as ``(source, position in its list)``, best score first, and ``short``.
    """
    taken: set[int] = set()  # rows
    picks: list[tuple[float, int, int, int]] = []  # (-score, order, source, position)
    for s, (lst, quota) in enumerate(zip(rows, quotas, strict=True)):
        got = 0
        for pos, row in enumerate(lst):
            if got == quota:
                break
            key = row if ids is None else ids[row]
            if key in excluded or row in taken:
                continue
            taken.add(row)
            picks.append((-float(scores[s][pos]), len(picks), s, pos))
            got += 1
        if got < quota and not complete[s]:
            return [], s
    picks.sort()
    return [(s, pos) for _, _, s, pos in picks], -1
