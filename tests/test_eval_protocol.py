"""Walk-forward protocol: test days, histories before D, and nothing fit on test days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pinnersage.errors import ConfigError, DataFormatError
from pinnersage.evaluation.models import ModelSpec
from pinnersage.evaluation.protocol import (
    SECONDS_PER_DAY,
    Protocol,
    encode_log,
    last_day_starts,
    per_user_cases,
    per_user_training_mask,
    resolve_split,
    walk_forward_cases,
)
from pinnersage.evaluation.runner import evaluate

DAY = SECONDS_PER_DAY


def synthetic_log(
    seed: int = 0, n_users: int = 40, n_days: int = 40, n_items: int = 60
) -> pd.DataFrame:
    """Users with 2-3 interests (item blocks), acting on a few random days."""
    rng = np.random.default_rng(seed)
    rows = []
    blocks = np.arange(n_items).reshape(6, -1)
    for u in range(n_users):
        interests = rng.choice(6, size=int(rng.integers(1, 4)), replace=False)
        for day in np.sort(rng.choice(n_days, size=int(rng.integers(3, 10)), replace=False)):
            for _ in range(int(rng.integers(1, 5))):
                item = int(rng.choice(blocks[rng.choice(interests)]))
                rows.append(
                    (
                        u,
                        f"i{item}",
                        int(1_600_000_000 // DAY * DAY + day * DAY + rng.integers(0, DAY)),
                    )
                )
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_histories_end_before_the_test_day_and_respect_the_window() -> None:
    log = encode_log(synthetic_log())
    proto = Protocol(test_days=5, window_days=10)
    days = walk_forward_cases(log, proto)
    assert len(days) == 5
    assert [d for d, _ in days] == sorted(d for d, _ in days)
    n = 0
    for day_s, cases in days:
        assert day_s % DAY == 0
        for c in cases:
            n += 1
            assert c.day_s == day_s
            assert (c.hist_time < day_s).all()
            assert (c.hist_time >= day_s - 10 * DAY).all()
            assert np.all(np.diff(c.hist_time) >= 0)
            on_day = (log.user == c.user) & (log.time >= day_s) & (log.time < day_s + DAY)
            assert set(c.targets.tolist()) == set(log.item[on_day].tolist())
            before = (log.user == c.user) & (log.time < day_s)
            assert set(c.seen.tolist()) == set(log.item[before].tolist())
    assert n > 0


def test_test_days_are_the_last_days_with_actions() -> None:
    frame = synthetic_log()
    log = encode_log(frame)
    days = last_day_starts(log, 3)
    all_days = np.unique(frame["timestamp"] // DAY)
    assert (days // DAY).tolist() == all_days[-3:].tolist()


def test_per_user_split_uses_each_users_last_day() -> None:
    log = encode_log(synthetic_log())
    cases = per_user_cases(log, Protocol(split="user"))
    mask = per_user_training_mask(log)
    for c in cases:
        last = (log.time[log.user == c.user] // DAY).max()
        assert c.day_s == last * DAY
        assert (c.hist_time < c.day_s).all()
    assert not (
        mask
        & (log.time // DAY == np.array([(log.time[log.user == u] // DAY).max() for u in log.user]))
    ).any()


def test_auto_split_walks_forward_only_when_the_test_days_hold_enough_users() -> None:
    log = encode_log(synthetic_log())
    days = walk_forward_cases(log, Protocol(test_days=5))
    n = len({c.user for _, cases in days for c in cases})
    assert 0 < n < 100
    split, reason, got = resolve_split(log, Protocol(test_days=5))  # auto, 100 by default
    assert Protocol().split == "auto" and Protocol().min_test_users == 100
    assert (split, got) == ("user", None)
    assert f"hold only {n} users (< min_test_users = 100)" in reason
    split, reason, got = resolve_split(log, Protocol(test_days=5, min_test_users=n))
    assert split == "day" and f">= min_test_users = {n}" in reason
    assert got is not None and [d for d, _ in got] == [d for d, _ in days]
    # explicit splits are kept whatever the count
    assert resolve_split(log, Protocol(split="day", test_days=5))[0] == "day"
    assert resolve_split(log, Protocol(split="user", min_test_users=1))[0] == "user"
    with pytest.raises(ConfigError, match="min_test_users"):
        Protocol(min_test_users=0)


def test_auto_split_is_recorded_and_warned_by_evaluate() -> None:
    from pinnersage.errors import PinnerSageWarning

    frame = synthetic_log(2)

    def embedder(f: pd.DataFrame, kind: str, dim: int, seed: int):
        ids = np.unique(frame["item_id"])

        class V:
            item_ids = ids.astype(object)
            vectors = np.random.default_rng(0).normal(size=(ids.shape[0], 4)).astype(np.float32)

        return V()

    models = [ModelSpec(name="last_item", kind="last_item")]
    with pytest.warns(PinnerSageWarning, match="min_test_users"):
        res = evaluate(
            frame, models, Protocol(test_days=4, bootstrap=0), embedder=embedder, progress=False
        )
    assert res.info["split"] == "user" and res.info["split_requested"] == "auto"
    assert res.info["n_cases_evaluated"] == res.info["n_users_evaluated"]  # one day per user
    res = evaluate(
        frame,
        models,
        Protocol(split="day", test_days=4, bootstrap=0),
        embedder=embedder,
        progress=False,
    )
    assert res.info["split"] == "day" and "as asked" in res.info["split_reason"]
    assert len(res.info["test_days"]) == 4


def test_embeddings_are_fit_only_on_data_before_the_first_test_day() -> None:
    frame = synthetic_log(1)
    seen_frames: list[pd.DataFrame] = []

    def embedder(f: pd.DataFrame, kind: str, dim: int, seed: int):
        seen_frames.append(f)
        ids = np.unique(frame["item_id"])
        rng = np.random.default_rng(0)

        class V:
            item_ids = ids.astype(object)
            vectors = rng.normal(size=(ids.shape[0], 4)).astype(np.float32)

        return V()

    proto = Protocol(split="day", test_days=4, bootstrap=0)
    res = evaluate(
        frame,
        [ModelSpec(name="last_item", kind="last_item")],
        proto,
        embedder=embedder,
        progress=False,
    )
    first = res.info["first_test_day"]
    assert seen_frames and all(int(f["timestamp"].max()) < first for f in seen_frames)
    assert res.info["fit_last_timestamp"] < first
    # refit every 2 test days: each fit ends before its block's first day
    seen_frames.clear()
    evaluate(
        frame,
        [ModelSpec(name="last_item", kind="last_item")],
        Protocol(split="day", test_days=4, refit_every=2, bootstrap=0, embedding_kind="other"),
        embedder=embedder,
        progress=False,
    )
    assert len(seen_frames) == 3  # the reference and two refits
    days = last_day_starts(encode_log(frame), 4)
    assert int(seen_frames[1]["timestamp"].max()) < days[0]
    assert days[0] <= int(seen_frames[2]["timestamp"].max()) < days[2]


def test_bad_protocol_and_logs_are_refused() -> None:
    with pytest.raises(ConfigError, match="budgets"):
        Protocol(budgets=(0,))
    with pytest.raises(ConfigError, match="split"):
        Protocol(split="week")  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="timestamp"):
        encode_log(pd.DataFrame({"user_id": [1], "item_id": [2]}))
    one_day = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "timestamp": [10, 20]})
    with pytest.raises(DataFormatError, match="day"):
        last_day_starts(encode_log(one_day), 14)
