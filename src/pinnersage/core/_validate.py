"""Input checks shared by the core functions (raised at the boundary, trusted inside)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pinnersage.errors import DimensionMismatchError, InvalidVectorsError

#: Entries above this could overflow squared distances (and their Lance-Williams updates).
MAX_ABS = 1e100


def as_vectors(
    vectors: npt.ArrayLike, name: str = "vectors", max_abs: float | None = None
) -> npt.NDArray[np.float64]:
    """``vectors`` as a C-contiguous float64 (n, d) array, or a typed error.

    ``max_abs`` bounds the entries' magnitude (distances are squared and must not overflow).
    """
    try:
        x = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorsError(f"{name} must be a numeric (n, d) array: {exc}") from exc
    if x.ndim != 2:
        raise InvalidVectorsError(f"{name} must be a 2-D (n, d) array, got shape {x.shape}")
    if x.shape[0] and not x.shape[1]:
        raise InvalidVectorsError(f"{name} must have at least one dimension, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise InvalidVectorsError(f"{name} must be finite; row {bad} holds NaN or inf")
    if max_abs is not None and x.size and float(np.abs(x).max()) > max_abs:
        bad = int(np.argwhere(np.abs(x) > max_abs)[0, 0])
        raise InvalidVectorsError(
            f"{name} must have entries of magnitude <= {max_abs:g} (their squared distances "
            f"would overflow); row {bad} holds {float(np.abs(x[bad]).max()):g}"
        )
    return np.ascontiguousarray(x)


def as_times(
    timestamps_s: npt.ArrayLike, n: int, name: str = "timestamps_s"
) -> npt.NDArray[np.float64]:
    """Unix-second timestamps as float64, one per row, finite."""
    try:
        t = np.asarray(timestamps_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidVectorsError(f"{name} must be numbers (unix seconds): {exc}") from exc
    if t.ndim != 1 or t.shape[0] != n:
        raise DimensionMismatchError(
            f"{name} must hold one time per row ({n}), got shape {t.shape}"
        )
    if not np.isfinite(t).all():
        bad = int(np.argwhere(~np.isfinite(t))[0, 0])
        raise InvalidVectorsError(f"{name} must be finite; entry {bad} is {t[bad]}")
    return t
