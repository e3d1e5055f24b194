"""Parameters: validated once, with errors that name the value and the rule; TOML + overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinnersage import Config, ConfigError, ProfileParams, RetrievalParams, load_config
from pinnersage.params import IndexParams, LogParams


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ProfileParams(distance_threshold=-1.0),
            "profile.distance_threshold must be >= 0, got -1.0",
        ),
        (
            lambda: ProfileParams(decay_per_day=float("nan")),
            "profile.decay_per_day must be a finite",
        ),
        (
            lambda: ProfileParams(max_actions_per_user=0),
            "profile.max_actions_per_user must be >= 1",
        ),
        (lambda: ProfileParams(max_actions_per_user=2.5), "must be an integer"),
        (lambda: ProfileParams(keep_singletons="yes"), "keep_singletons must be true or false"),
        (lambda: ProfileParams(method="single"), "profile.method must be one of 'ward'"),
        (lambda: ProfileParams(distance_threshold=True), "must be a number"),
        (
            lambda: RetrievalParams(clusters_per_request=0),
            "retrieval.clusters_per_request must be >= 1",
        ),
        (
            lambda: RetrievalParams(decay_average_share=1.0),
            "retrieval.decay_average_share must be < 1",
        ),
        (lambda: RetrievalParams(quota="fair"), "retrieval.quota must be one of"),
        (lambda: IndexParams(dedupe_cosine=1.5), "index.dedupe_cosine must be <= 1"),
        (lambda: LogParams(user_col=""), "log.user_col must be a non-empty column name"),
        (lambda: LogParams(action_types="click"), "log.action_types must be a list"),
    ],
)
def test_bad_values_name_the_value_and_the_rule(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_defaults_are_documented_and_frozen() -> None:
    p = ProfileParams()
    assert p.decay_per_day == 0.01 and p.history_window_days == 90
    assert p.max_actions_per_user == 5000
    with pytest.raises(AttributeError):
        p.decay_per_day = 0.1  # type: ignore[misc]
    assert ProfileParams.paper().keep_singletons is False
    paper = RetrievalParams.paper()
    assert (
        paper.selection,
        paper.clusters_per_request,
        paper.quota,
        paper.query,
        paper.decay_average_share,
    ) == ("sample", 3, "equal", "medoid", 0.0)


def test_toml_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "pinnersage.toml"
    path.write_text(
        "[profile]\ndistance_threshold = 0.8\ndecay_per_day = 0.05\n"
        "[log]\nuser_col = 'CustomerID'\naction_types = ['save', 'click']\n"
        "[retrieval]\nclusters_per_request = 5\n"
    )
    config = load_config(path, {"profile": {"decay_per_day": 0.02, "keep_singletons": None}})
    assert config.profile.distance_threshold == 0.8
    assert config.profile.decay_per_day == 0.02  # the flag wins over the file
    assert config.profile.keep_singletons == ProfileParams().keep_singletons  # None: not given
    assert config.log.user_col == "CustomerID" and config.log.action_types == ("save", "click")
    assert config.retrieval.clusters_per_request == 5
    assert config.to_dict()["profile"]["distance_threshold"] == 0.8
    assert config.replace("profile", distance_threshold=1.5).profile.distance_threshold == 1.5
    assert load_config() == Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profile]\nalpha = 0.5\n", "unknown setting profile.alpha"),
        ("[profiles]\n", r"unknown table \[profiles\]"),
        ("[profile]\ndistance_threshold = -2\n", "profile.distance_threshold must be >= 0"),
        ("[profile\n", "not valid TOML"),
        ("profile = 3\n", r"\[profile\] in the config file must be a table"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_example_config_loads() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "pinnersage.toml"
    config = load_config(path)
    assert config == Config(), "configs/pinnersage.toml lists the defaults"
