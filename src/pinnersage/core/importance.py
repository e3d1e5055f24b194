"""Eq. 3: the importance of a cluster, ``sum_i exp(-λ (T_now - T[i]))``.

Times are unix seconds, ages are counted in days (λ = ``decay_per_day``, 0.01 by default: a
half-life of about 69 days). ``now_s`` is always passed in. An action later than ``now_s``
(clock skew) counts as age 0. With λ = 0 importance is the number of actions.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

SECONDS_PER_DAY = 86_400.0

__all__ = ["SECONDS_PER_DAY", "action_weights", "importance"]


def action_weights(
    timestamps_s: npt.ArrayLike, now_s: float, decay_per_day: float
) -> npt.NDArray[np.float64]:
    """Per-action weights ``exp(-λ · age_days)``, ages clipped at 0."""
    t = np.ascontiguousarray(timestamps_s, dtype=np.float64)
    return _decay_weights(t, float(now_s), float(decay_per_day))


@numba.njit(cache=True, nogil=True)
def _decay_weights(
    t: np.ndarray, now_s: float, decay_per_day: float
) -> np.ndarray:  # pragma: no cover - compiled
    """``exp(-λ max(now - t, 0) / 86400)``: the one place Eq. 3's weights are computed (the
    profile's compiled path calls it too, so every caller gets the same bits)."""
    w = np.empty(t.shape[0])
    for i in range(t.shape[0]):
        age = now_s - t[i]
        w[i] = np.exp(-decay_per_day * ((age if age > 0.0 else 0.0) / SECONDS_PER_DAY))
    return w


def importance(timestamps_s: npt.ArrayLike, now_s: float, decay_per_day: float = 0.01) -> float:
    """Importance of one cluster whose actions happened at ``timestamps_s`` (Eq. 3)."""
    if decay_per_day < 0:
        from pinnersage.errors import ConfigError

        raise ConfigError(f"decay_per_day must be >= 0, got {decay_per_day!r}")
    return float(action_weights(timestamps_s, now_s, decay_per_day).sum())
