"""Open-addressing hash tables of int64 keys, compiled (internal).

Fibonacci hashing with linear probing, for the two hot lookups of a request: the set of items a
merge may no longer take (:mod:`pinnersage.retrieval.merge`) and the rows of integer item ids
(:meth:`pinnersage.catalog.ItemCatalog.rows_of_ints`; pandas answers with a binary search from a
million ids up).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

#: 2**64 / golden ratio, odd.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, inline="always")
def _slot(key: np.int64, bits: int) -> np.int64:
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


@njit(cache=True, nogil=True)
def table_bits(n: int) -> int:
    """log2 of a table size with room for ``n`` keys at load factor <= 1/2 (at least 16)."""
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    return bits


@njit(cache=True, nogil=True)
def set_add(
    table: npt.NDArray[np.int64], used: npt.NDArray[np.uint8], bits: int, key: np.int64
) -> bool:
    """Insert ``key`` into the set ``(table, used)`` of ``2**bits`` slots; False if it was in."""
    mask = (1 << bits) - 1
    slot = _slot(key, bits)
    while used[slot]:
        if table[slot] == key:
            return False
        slot = (slot + 1) & mask
    used[slot] = 1
    table[slot] = key
    return True


@njit(cache=True, nogil=True)
def row_table(ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A table of the rows of unique ``ids`` (-1: empty slot); 8 bytes x 2 to 4 per id."""
    bits = table_bits(ids.shape[0])
    mask = (1 << bits) - 1
    table = np.full(1 << bits, -1, np.int64)
    for row in range(ids.shape[0]):
        slot = _slot(ids[row], bits)
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = row
    return table


@njit(cache=True, nogil=True)
def table_rows(
    table: npt.NDArray[np.int64], ids: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The rows of ``keys`` in ``row_table(ids)``; -1 for a key not in ``ids``."""
    bits = 0
    while (1 << bits) < table.shape[0]:
        bits += 1
    mask = table.shape[0] - 1
    out = np.full(keys.shape[0], -1, np.int64)
    for i in range(keys.shape[0]):
        key = keys[i]
        slot = _slot(key, bits)
        while table[slot] >= 0:
            if ids[table[slot]] == key:
                out[i] = table[slot]
                break
            slot = (slot + 1) & mask
    return out
