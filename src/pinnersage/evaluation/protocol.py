"""The offline protocol of the paper (section 5.1): walk forward by day, as in production.

For each test day D, a user's *history* is the batch window (default 90 days) before D, the
profile is evaluated at ``now = D 00:00 UTC``, and the *targets* are the items the user acted on
during D. By default the last 14 days that have actions are the test days. Embeddings are fit once
on the actions before the first test day (or refit every N test days), so nothing of a test day
leaks into the item vectors, the reference embedding or the popularity counts.

A per-user temporal split is the alternative for logs whose last days are sparse (MovieLens):
each user's last active day is their test day, the history is the window before it, and
embeddings are fit on every action that precedes its user's test day.

The default split, ``auto``, walks forward by day unless the test days hold fewer than
``min_test_users`` users (default 100; MovieLens latest-small's last 14 days hold 8): then it
warns and uses the per-user split (:func:`resolve_split`). The choice and its reason are recorded.

Everything here is pure bookkeeping over integer codes: users and items are coded once
(:class:`EncodedLog`) and every case (:class:`EvalCase`) holds arrays of item codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from pinnersage.errors import ConfigError, DataFormatError

__all__ = [
    "SECONDS_PER_DAY",
    "EncodedLog",
    "EvalCase",
    "Protocol",
    "encode_log",
    "last_day_starts",
    "per_user_cases",
    "resolve_split",
    "walk_forward_cases",
]

SECONDS_PER_DAY = 86_400

Split = Literal["auto", "day", "user"]

#: Fewest users the walk-forward test days must hold for ``split="auto"`` to keep them.
MIN_TEST_USERS = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Protocol:
    """Every choice of the protocol, recorded in the report.

    Attributes
    ----------
    split : {"auto", "day", "user"}
        ``day``: walk forward over the last ``test_days`` days with actions (the paper's).
        ``user``: each user's last active day is their test day (per-user temporal split).
        ``auto`` (default): ``day``, unless its test days hold fewer than ``min_test_users``
        users; then ``user``, with a warning (see :func:`resolve_split`).
    min_test_users : int
        The ``auto`` split's threshold (default 100): below it, a mean over users is noise.
    test_days : int
        Number of test days (``split="day"``).
    window_days : int
        History window before the test day (the batch job's 90 days).
    refit_every : int or None
        Refit the model embeddings every N test days on the data before that day (None: once,
        before the first test day). The reference embedding is never refit.
    budgets : tuple of int
        Candidate budgets; the largest is the report's top-level ``models``.
    relevance_cosine : float
        A test action is relevant to a candidate at cosine >= this (paper: 0.8).
    negatives : int
        Sampled negatives per test action in the ranking task (paper: 20 impressions).
    embedding_kind, embedding_dim : str, int
        The embedding the models retrieve with, when ``--embeddings`` is not given.
    reference_kind, reference_dim : str, int
        The fixed embedding relevance, diversity and the next-action study are measured in.
    bootstrap : int
        Bootstrap resamples of users for confidence intervals (95%, percentile).
    seed : int
        Seeds every random draw (medoid sampling, negatives, k-means, bootstrap, subsampling).
    max_users : int or None
        Evaluate a seeded random subset of users (None: all).
    """

    split: Split = "auto"
    min_test_users: int = MIN_TEST_USERS
    test_days: int = 14
    window_days: int = 90
    refit_every: int | None = None
    budgets: tuple[int, ...] = (50, 100, 400)
    relevance_cosine: float = 0.8
    negatives: int = 20
    embedding_kind: str = "cooccurrence"
    embedding_dim: int = 64
    reference_kind: str = "cooccurrence"
    reference_dim: int = 64
    bootstrap: int = 1000
    seed: int = 0
    max_users: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in ("auto", "day", "user"):
            raise ConfigError(f"split must be 'auto', 'day' or 'user', got {self.split!r}")
        for name in (
            "test_days",
            "window_days",
            "negatives",
            "embedding_dim",
            "reference_dim",
            "min_test_users",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.refit_every is not None and (
            not isinstance(self.refit_every, int) or self.refit_every < 1
        ):
            raise ConfigError(
                f"refit_every must be an integer >= 1 or None, got {self.refit_every!r}"
            )
        budgets = tuple(self.budgets)
        if not budgets or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets
        ):
            raise ConfigError(f"budgets must be integers >= 1, got {self.budgets!r}")
        object.__setattr__(self, "budgets", tuple(sorted(set(budgets))))
        if not 0.0 < float(self.relevance_cosine) <= 1.0:
            raise ConfigError(f"relevance_cosine must be in (0, 1], got {self.relevance_cosine!r}")
        if (
            isinstance(self.bootstrap, bool)
            or not isinstance(self.bootstrap, int)
            or self.bootstrap < 0
        ):
            raise ConfigError(f"bootstrap must be an integer >= 0, got {self.bootstrap!r}")
        if self.max_users is not None and (
            not isinstance(self.max_users, int) or self.max_users < 1
        ):
            raise ConfigError(f"max_users must be an integer >= 1 or None, got {self.max_users!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["budgets"] = list(self.budgets)
        return out


@dataclass(frozen=True, slots=True)
class EncodedLog:
    """An action log with users and items coded 0..n-1, in canonical (time, user, item) order."""

    user_ids: npt.NDArray[Any]  # (n_users,) original ids, sorted
    item_ids: npt.NDArray[Any]  # (n_items,) original ids, sorted
    user: npt.NDArray[np.int64]  # (n_actions,)
    item: npt.NDArray[np.int64]  # (n_actions,)
    time: npt.NDArray[np.int64]  # (n_actions,) unix seconds, ascending

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def frame(self, mask: npt.NDArray[np.bool_] | slice | None = None) -> pd.DataFrame:
        """The selected actions as a ``user_id, item_id, timestamp`` frame (original ids)."""
        sel = slice(None) if mask is None else mask
        return pd.DataFrame(
            {
                "user_id": self.user_ids[self.user[sel]],
                "item_id": self.item_ids[self.item[sel]],
                "timestamp": self.time[sel],
            }
        )


def encode_log(frame: pd.DataFrame) -> EncodedLog:
    """Code a ``user_id, item_id, timestamp`` frame (an ``ActionLog.frame``)."""
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"the action log lacks column(s) {', '.join(missing)}; "
            "expected user_id, item_id, timestamp"
        )
    if len(frame) == 0:
        raise DataFormatError("the action log has no rows to evaluate on")
    t = frame["timestamp"].to_numpy()
    if not np.issubdtype(t.dtype, np.integer):
        raise DataFormatError(f"timestamp must be integer unix seconds, got dtype {t.dtype}")
    user_ids, user = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    items = frame["item_id"].to_numpy()
    if items.dtype == object:
        items = items.astype(str).astype(object)
    item_ids, item = np.unique(items, return_inverse=True)
    t = t.astype(np.int64)
    order = np.lexsort((item, user, t))
    return EncodedLog(
        user_ids, item_ids, user[order].astype(np.int64), item[order].astype(np.int64), t[order]
    )


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One user on one test day: what the models see and what they must retrieve."""

    user: int  # user code
    day_s: int  # start of the test day (the profile's now), unix s
    hist_items: npt.NDArray[np.int64]  # item codes of the window's actions, time order
    hist_time: npt.NDArray[np.int64]  # their times (all < day_s, >= day_s - window)
    targets: npt.NDArray[np.int64]  # unique item codes acted on during the test day
    first_target: int  # item code of the day's earliest action
    seen: npt.NDArray[np.int64]  # unique item codes the user acted on before day_s


def last_day_starts(log: EncodedLog, n_days: int) -> npt.NDArray[np.int64]:
    """Starts (UTC midnight, unix s) of the last ``n_days`` days that have actions."""
    days = np.unique(log.time // SECONDS_PER_DAY)
    if days.shape[0] < 2:
        raise DataFormatError(
            f"the action log spans {days.shape[0]} day(s); the walk-forward protocol needs at "
            "least one day of history before the test days"
        )
    n = min(n_days, days.shape[0] - 1)
    return (days[-n:] * SECONDS_PER_DAY).astype(np.int64)


def _group(
    users: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Stable order by user, the distinct users and their start offsets in that order."""
    order = np.argsort(users, kind="stable")
    u_sorted = users[order]
    uniq, start = np.unique(u_sorted, return_index=True)
    return order, uniq, np.append(start, u_sorted.shape[0])


def _cases_for_day(
    log: EncodedLog, day_s: int, window_s: int, users: npt.NDArray[np.int64] | None = None
) -> list[EvalCase]:
    t = log.time
    lo = int(np.searchsorted(t, day_s - window_s, "left"))
    d0 = int(np.searchsorted(t, day_s, "left"))
    d1 = int(np.searchsorted(t, day_s + SECONDS_PER_DAY, "left"))
    tu, ti = log.user[d0:d1], log.item[d0:d1]
    if users is not None:
        keep = np.isin(tu, users)
        tu, ti = tu[keep], ti[keep]
    if tu.shape[0] == 0:
        return []
    h_order, h_users, h_start = _group(log.user[lo:d0])
    p_order, p_users, p_start = _group(log.user[:d0])
    t_order, t_users, t_start = _group(tu)
    cases = []
    for k, u in enumerate(t_users):
        hk = int(np.searchsorted(h_users, u))
        if hk >= h_users.shape[0] or h_users[hk] != u:
            continue  # no history in the window: no profile, nothing to evaluate
        rows = lo + h_order[h_start[hk] : h_start[hk + 1]]
        pk = int(np.searchsorted(p_users, u))
        seen = np.unique(log.item[p_order[p_start[pk] : p_start[pk + 1]]])
        day_items = ti[t_order[t_start[k] : t_start[k + 1]]]
        _, first_idx = np.unique(day_items, return_index=True)
        targets = day_items[np.sort(first_idx)]
        cases.append(
            EvalCase(int(u), int(day_s), log.item[rows], t[rows], targets, int(day_items[0]), seen)
        )
    return cases


def walk_forward_cases(
    log: EncodedLog, protocol: Protocol, users: npt.NDArray[np.int64] | None = None
) -> list[tuple[int, list[EvalCase]]]:
    """For each test day (ascending): its start and the cases of the users active that day.

    Users with no action in the window before the day are skipped (they have no profile).
    """
    window_s = protocol.window_days * SECONDS_PER_DAY
    return [
        (int(d), _cases_for_day(log, int(d), window_s, users))
        for d in last_day_starts(log, protocol.test_days)
    ]


def per_user_cases(
    log: EncodedLog, protocol: Protocol, users: npt.NDArray[np.int64] | None = None
) -> list[EvalCase]:
    """Per-user temporal split: each user's last active day, with the window before it."""
    day = log.time // SECONDS_PER_DAY
    last_day = np.full(log.user_ids.shape[0], -1, np.int64)
    np.maximum.at(last_day, log.user, day)
    window_s = protocol.window_days * SECONDS_PER_DAY
    cases: list[EvalCase] = []
    candidates = np.arange(log.user_ids.shape[0]) if users is None else np.asarray(users)
    by_day: dict[int, list[int]] = {}
    for u in candidates:
        by_day.setdefault(int(last_day[u]), []).append(int(u))
    for d in sorted(by_day):
        cases.extend(
            _cases_for_day(log, d * SECONDS_PER_DAY, window_s, np.asarray(by_day[d], np.int64))
        )
    return cases


def per_user_training_mask(log: EncodedLog) -> npt.NDArray[np.bool_]:
    """Actions before their own user's last active day (the fit data of the per-user split)."""
    day = log.time // SECONDS_PER_DAY
    last_day = np.full(log.user_ids.shape[0], -1, np.int64)
    np.maximum.at(last_day, log.user, day)
    return np.asarray(day < last_day[log.user])


def resolve_split(
    log: EncodedLog, protocol: Protocol, users: npt.NDArray[np.int64] | None = None
) -> tuple[Literal["day", "user"], str, list[tuple[int, list[EvalCase]]] | None]:
    """The split to run, why, and (for ``day``) its walk-forward cases.

    ``day`` and ``user`` are taken as asked. ``auto`` builds the walk-forward cases and keeps
    them when they hold at least ``protocol.min_test_users`` distinct users (users with a
    history in the window and an action on a test day, among ``users`` when given); otherwise it
    falls back to the per-user temporal split, whose cases are every user's last active day.

    Returns
    -------
    split : {"day", "user"}
    reason : str
        One sentence for the report (``protocol.split_reason``).
    day_cases : list or None
        :func:`walk_forward_cases` when the split is ``day`` (built once), else None.
    """
    if protocol.split == "user":
        return "user", "per-user temporal split, as asked (--split user)", None
    days = walk_forward_cases(log, protocol, users)
    if protocol.split == "day":
        return "day", "walk forward by day, as asked (--split day)", days
    n_users = len({c.user for _, cases in days for c in cases})
    n_days = len(days)
    if n_users >= protocol.min_test_users:
        return (
            "day",
            (
                f"auto: the last {n_days} test days hold {n_users} users "
                f"(>= min_test_users = {protocol.min_test_users}), so walk forward by "
                "day"
            ),
            days,
        )
    return (
        "user",
        (
            f"auto: the last {n_days} test days hold only {n_users} users "
            f"(< min_test_users = {protocol.min_test_users}), too few for a mean over "
            "users; per-user temporal split used instead (each user's last active day; "
            "--split day forces the walk-forward split)"
        ),
        None,
    )
