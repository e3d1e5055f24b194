"""Single-embedding baselines of the paper's evaluation (section 5.3).

* last item: the embedding of the user's most recent action (the reference of every lift);
* decay average: ``sum_i exp(-λ age_i) x_i``, L2-normalised (λ = 0.01 reported; 0, 0.1 and 0.25
  tried).

The paper's ablations (k-means with k = 5, complete linkage, centroid in place of medoid, other
λ) are options of :class:`~pinnersage.params.ProfileParams` and of the retrieval strategy.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pinnersage.core._validate import as_times, as_vectors
from pinnersage.core.importance import action_weights

__all__ = ["decay_average", "last_item", "weighted_direction"]


def last_item(
    vectors: npt.ArrayLike, timestamps_s: npt.ArrayLike
) -> npt.NDArray[np.float64] | None:
    """The vector of the most recent action (the last one on ties); None for no actions."""
    x = as_vectors(vectors)
    t = as_times(timestamps_s, x.shape[0])
    if x.shape[0] == 0:
        return None
    latest = x.shape[0] - 1 - int(np.argmax(t[::-1]))
    return x[latest].copy()


def decay_average(
    vectors: npt.ArrayLike,
    timestamps_s: npt.ArrayLike,
    *,
    now_s: float,
    decay_per_day: float = 0.01,
) -> npt.NDArray[np.float64] | None:
    """The decay-weighted average vector, L2-normalised; None for no actions."""
    x = as_vectors(vectors)
    t = as_times(timestamps_s, x.shape[0])
    if x.shape[0] == 0:
        return None
    return weighted_direction(action_weights(t, now_s, decay_per_day), x)


def weighted_direction(
    weights: npt.NDArray[np.float64], x: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``weights @ x``, L2-normalised (a zero sum is returned as is).

    The one place the decay average's arithmetic is written: the profile, the batch job, the
    baseline and the evaluation all call it, so they agree to the bit.
    """
    return _direction(
        np.ascontiguousarray(weights, dtype=np.float64), np.ascontiguousarray(x, dtype=np.float64)
    )


@numba.njit(cache=True, nogil=True)
def _direction(w: np.ndarray, x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``w @ x`` L2-normalised, summed row after row (a fixed order: the same bits wherever it
    is called, compiled into the profile's kernel or not)."""
    n, d = x.shape
    avg = np.zeros(d)
    for i in range(n):
        wi = w[i]
        for k in range(d):
            avg[k] += wi * x[i, k]
    _normalise(avg)
    return avg


@numba.njit(cache=True, nogil=True)
def _normalise(avg: np.ndarray) -> None:  # pragma: no cover - compiled
    """Divide ``avg`` by its L2 norm, in place (a zero vector stays zero)."""
    sq = 0.0
    for k in range(avg.shape[0]):
        sq += avg[k] * avg[k]
    if sq > 0.0:
        norm = np.sqrt(sq)
        for k in range(avg.shape[0]):
            avg[k] /= norm
