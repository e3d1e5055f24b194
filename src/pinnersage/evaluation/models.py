"""The named models of the evaluation: single-embedding baselines, PinnerSage and its ablations.

Names (paper section 5.3): ``last_item`` (the reference of every lift), ``decay_average``
(λ = 0.01) and ``decay_average_lambda0``, ``_lambda0.1``, ``_lambda0.25``; ``pinnersage`` (the
shipped defaults of :class:`~pinnersage.params.ProfileParams` and
:class:`~pinnersage.params.RetrievalParams`); ``pinnersage_paper`` (the paper's literal
configuration, ``ProfileParams.paper()`` and ``RetrievalParams.paper()``); the paper's one-change
ablations of it ``pinnersage_sample1``, ``pinnersage_kmeans5``, ``pinnersage_complete``,
``pinnersage_centroid``, ``pinnersage_lambda0``, ``pinnersage_lambda0.1``; and the sweeps:
``sweep_alpha<α>`` and ``sweep_lambda<λ>`` around ``pinnersage``, ``sweep_e<e>`` (the number of
embeddings, Figure 7) around ``pinnersage_paper``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pinnersage.errors import ConfigError
from pinnersage.params import ProfileParams, RetrievalParams

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_EMBEDDINGS_SWEEP",
    "DEFAULT_LAMBDAS",
    "ModelSpec",
    "standard_models",
]

ModelKind = Literal["last_item", "decay_average", "pinnersage"]

#: α values of the sweep (squared Euclidean; two single items merge at ``2 - 2 cos``).
DEFAULT_ALPHAS: tuple[float, ...] = (0.4, 0.6, 1.0, 1.5)
#: λ values (per day) of the sweep.
DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1)
#: Numbers of embeddings e of the Figure 7 sweep.
DEFAULT_EMBEDDINGS_SWEEP: tuple[int, ...] = (1, 2, 3, 5, 10)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One model of the evaluation.

    Attributes
    ----------
    name : str
        The report's name.
    kind : {"last_item", "decay_average", "pinnersage"}
    decay_per_day : float
        λ of the decay average (``kind="decay_average"``).
    profile, retrieval : ProfileParams, RetrievalParams
        Algorithm 2 and the retrieval strategy (``kind="pinnersage"``).
    group : str
        ``main``, ``ablation``, ``alpha``, ``lambda``, ``embeddings`` or ``study``.
    sweep_value : float or None
        The swept value, for the sweep groups.
    """

    name: str
    kind: ModelKind
    decay_per_day: float = 0.01
    profile: ProfileParams = field(default_factory=ProfileParams)
    retrieval: RetrievalParams = field(default_factory=RetrievalParams)
    group: str = "main"
    sweep_value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("last_item", "decay_average", "pinnersage"):
            raise ConfigError(
                f"model {self.name!r}: kind must be last_item, decay_average or "
                f"pinnersage, got {self.kind!r}"
            )
        if self.decay_per_day < 0:
            raise ConfigError(
                f"model {self.name!r}: decay_per_day must be >= 0, got {self.decay_per_day!r}"
            )

    def describe(self) -> dict[str, object]:
        """Plain data for the report."""
        out: dict[str, object] = {"kind": self.kind, "group": self.group}
        if self.kind == "decay_average":
            out["decay_per_day"] = self.decay_per_day
        if self.kind == "pinnersage":
            out["profile"] = {
                f.name: getattr(self.profile, f.name) for f in dataclasses.fields(self.profile)
            }
            out["retrieval"] = {
                f.name: getattr(self.retrieval, f.name) for f in dataclasses.fields(self.retrieval)
            }
        if self.sweep_value is not None:
            out["sweep_value"] = self.sweep_value
        return out


def _ps(
    name: str,
    profile: ProfileParams,
    retrieval: RetrievalParams,
    group: str,
    sweep_value: float | None = None,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        kind="pinnersage",
        profile=profile,
        retrieval=retrieval,
        group=group,
        sweep_value=sweep_value,
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


def standard_models(
    profile: ProfileParams | None = None,
    retrieval: RetrievalParams | None = None,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    embeddings: Sequence[int] = DEFAULT_EMBEDDINGS_SWEEP,
    ablations: bool = True,
) -> list[ModelSpec]:
    """The issue's named models, with ``pinnersage`` built from ``profile`` and ``retrieval``.

    ``pinnersage_paper`` keeps the α of ``profile`` (the paper does not publish its α) and takes
    everything else from ``ProfileParams.paper()`` and ``RetrievalParams.paper()``.
    """
    prof = profile if profile is not None else ProfileParams()
    ret = retrieval if retrieval is not None else RetrievalParams()
    paper_prof = ProfileParams.paper(
        distance_threshold=prof.distance_threshold,
        history_window_days=prof.history_window_days,
        max_actions_per_user=prof.max_actions_per_user,
    )
    paper_ret = RetrievalParams.paper()
    models = [
        ModelSpec(name="last_item", kind="last_item"),
        ModelSpec(name="decay_average", kind="decay_average", decay_per_day=0.01),
        ModelSpec(name="decay_average_lambda0", kind="decay_average", decay_per_day=0.0),
        ModelSpec(name="decay_average_lambda0.1", kind="decay_average", decay_per_day=0.1),
        ModelSpec(name="decay_average_lambda0.25", kind="decay_average", decay_per_day=0.25),
        _ps("pinnersage", prof, ret, "main"),
        _ps("pinnersage_paper", paper_prof, paper_ret, "main"),
    ]
    if ablations:
        rep = dataclasses.replace
        models += [
            _ps(
                "pinnersage_sample1", paper_prof, rep(paper_ret, clusters_per_request=1), "ablation"
            ),
            _ps(
                "pinnersage_kmeans5",
                rep(paper_prof, method="kmeans", kmeans_clusters=5),
                paper_ret,
                "ablation",
            ),
            _ps("pinnersage_complete", rep(paper_prof, method="complete"), paper_ret, "ablation"),
            _ps(
                "pinnersage_centroid",
                rep(paper_prof, store_centroids=True),
                rep(paper_ret, query="centroid"),
                "ablation",
            ),
            _ps("pinnersage_lambda0", rep(paper_prof, decay_per_day=0.0), paper_ret, "ablation"),
            _ps("pinnersage_lambda0.1", rep(paper_prof, decay_per_day=0.1), paper_ret, "ablation"),
        ]
    rep = dataclasses.replace
    for a in alphas:
        models.append(
            _ps(
                f"sweep_alpha{_fmt(a)}",
                rep(prof, distance_threshold=float(a)),
                ret,
                "alpha",
                float(a),
            )
        )
    for lam in lambdas:
        models.append(
            _ps(
                f"sweep_lambda{_fmt(lam)}",
                rep(prof, decay_per_day=float(lam)),
                ret,
                "lambda",
                float(lam),
            )
        )
    for e in embeddings:
        models.append(
            _ps(
                f"sweep_e{e}",
                paper_prof,
                rep(paper_ret, clusters_per_request=int(e)),
                "embeddings",
                float(e),
            )
        )
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique, got {names}")
    return models
