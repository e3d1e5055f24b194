"""The offline evaluation of paper section 5: every model on every case, per user.

:func:`evaluate` walks the protocol's test days (:mod:`~pinnersage.evaluation.protocol`), builds
each model's queries from the user's history (Algorithm 2 for PinnerSage models, the last item or
the decay-weighted average for the baselines), retrieves each model's candidates for every budget
by exact search, and measures recall, relevance, diversity, the ranking task and the next-action
study (Table 1). Results are kept per user, so lifts carry bootstrap intervals
(:mod:`~pinnersage.evaluation.report`).

Fast path: for one chunk of cases and one model, all queries form one matrix, scored against the
whole catalog with one product (the catalogs here have thousands of items, where exact search is
both exact and fast), then every case's candidates are assembled by the retrieval strategy. Its
slow twin is the product's own :class:`~pinnersage.retrieval.Recommender` over an
:class:`~pinnersage.retrieval.ExactIndex`, one profile at a time; a test checks they agree.

Candidate assembly (the strategy of :class:`~pinnersage.params.RetrievalParams`, the rules of
:mod:`pinnersage.retrieval.recommender`): the selected clusters share ``k_c`` candidates
(:func:`~pinnersage.retrieval.recommender.budget_split`: ``budget - floor(share * budget)``, at
most ``max_cluster_candidates``, or the whole budget without a decay-average share), equally
(``floor(k_c / e)`` each, the paper's rule) or in proportion to importance (largest remainder);
then each cluster in turn, and the decay-average query last with the rest of the budget, takes its
best items that are neither already engaged with by the user nor taken by an earlier query. A
profile without clusters falls back to the most popular items.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from pinnersage.core.baselines import weighted_direction
from pinnersage.core.importance import action_weights
from pinnersage.core.medoid import _summarise
from pinnersage.core.profile import cluster_labels
from pinnersage.core.sampling import sample_indices
from pinnersage.core.ward import _cut_rows, _gram, _ward_tree
from pinnersage.errors import ConfigError, DataFormatError, PinnerSageWarning
from pinnersage.evaluation import metrics as M
from pinnersage.evaluation.models import ModelSpec
from pinnersage.evaluation.protocol import (
    EncodedLog,
    EvalCase,
    Protocol,
    encode_log,
    per_user_cases,
    per_user_training_mask,
    resolve_split,
)
from pinnersage.params import ProfileParams
from pinnersage.retrieval.recommender import budget_split

__all__ = [
    "CaseProfile",
    "Embedder",
    "EvalResult",
    "VectorSet",
    "case_profiles",
    "default_embedder",
    "evaluate",
    "first_depth",
    "quotas",
    "select_clusters",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class VectorSet(TypingProtocol):
    """What the evaluation needs of an item catalog (``ItemCatalog`` has it)."""

    item_ids: np.ndarray
    vectors: np.ndarray


#: Fits item vectors on a ``user_id, item_id, timestamp`` frame: ``(frame, kind, dim, seed)``.
Embedder = Callable[[pd.DataFrame, str, int, int], VectorSet]


# ---------------------------------------------------------------------------------------------
# Profiles from one merge tree


@dataclass(frozen=True, slots=True)
class CaseProfile:
    """A profile as arrays, clusters sorted by importance (as ``build_profile`` orders them)."""

    medoid_rows: IntArray  # rows of the history matrix
    importance: FloatArray
    centroid: FloatArray  # (c, d), not normalised
    size: IntArray

    def __len__(self) -> int:
        return int(self.medoid_rows.shape[0])


def _profile_key(p: ProfileParams) -> tuple[Any, ...]:
    return (
        p.method,
        float(p.distance_threshold),
        bool(p.keep_singletons),
        float(p.decay_per_day),
        int(p.kmeans_clusters),
    )


def case_profiles(
    x: FloatArray,
    t: IntArray,
    now_s: float,
    params: Sequence[ProfileParams],
    rng: np.random.Generator,
) -> dict[tuple[Any, ...], CaseProfile]:
    """Algorithm 2 for several parameter sets over one history, sharing one Ward tree.

    ``x`` and ``t`` are the history in time order, already capped. Equal to ``build_profile``
    cluster for cluster (a test checks it).
    """
    out: dict[tuple[Any, ...], CaseProfile] = {}
    n = x.shape[0]
    tree = None
    # one tree serves every threshold up to the largest (its merges above it are never made)
    alpha_max = max(
        (float(p.distance_threshold) for p in params if p.method == "ward"), default=np.inf
    )
    labels_cache: dict[tuple[Any, ...], tuple[IntArray, int]] = {}
    for p in params:
        key = _profile_key(p)
        if key in out:
            continue
        lkey = (
            p.method,
            float(p.distance_threshold),
            bool(p.keep_singletons),
            int(p.kmeans_clusters),
        )
        if lkey not in labels_cache:
            if p.method == "ward" and n > 1:
                if tree is None:
                    tree = _ward_tree(x, _gram(x), np.ones(n), alpha_max)
                labels, c = _cut_rows(*tree, float(p.distance_threshold), bool(p.keep_singletons))
                labels_cache[lkey] = (labels, int(c))
            else:
                labels_cache[lkey] = cluster_labels(x, p, rng)
        labels, c = labels_cache[lkey]
        if c == 0:
            out[key] = CaseProfile(
                np.zeros(0, np.int64), np.zeros(0), np.zeros((0, x.shape[1])), np.zeros(0, np.int64)
            )
            continue
        w = action_weights(t, now_s, p.decay_per_day)
        rows, sizes, imps, _, centroids = _summarise(x, labels, c, t.astype(np.float64), w)
        rank = np.argsort(-imps, kind="stable")
        out[key] = CaseProfile(rows[rank], imps[rank], centroids[rank], sizes[rank])
    return out


def select_clusters(
    importance: FloatArray, k: int, selection: str, rng: np.random.Generator | None
) -> IntArray:
    """Indices of the clusters that query the index, drawn as the ``Recommender`` draws them.

    ``top``: the ``k`` most important. ``sample``: successive draws without replacement, each in
    proportion to the importance of the clusters not drawn yet, from ``rng.random(k)`` and a scan
    over the weights (the ``Recommender``'s request-path form of ``sample_medoids``; clusters of
    zero importance only after every positive one). All clusters when there are ``k`` or fewer.
    """
    c = importance.shape[0]
    if c <= k or selection == "top":
        return np.arange(min(c, k))
    assert rng is not None
    return np.asarray(sample_indices(importance.tolist(), k, rng), np.int64)


def quotas(budget: int, weights: FloatArray, rule: str) -> IntArray:
    """Split ``budget`` between the chosen clusters, as the ``Recommender`` does.

    ``equal``: ``floor(budget / e)`` each, the remainder one each to the first chosen;
    ``importance``: in proportion to ``weights``, largest remainder (ties: earlier first).
    """
    e = weights.shape[0]
    if e == 0:
        return np.zeros(0, np.int64)
    if rule == "equal" or not weights.sum() > 0:
        base, extra = divmod(budget, e)
        return np.array([base + (1 if i < extra else 0) for i in range(e)], np.int64)
    raw = budget * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    left = budget - int(out.sum())
    if left:
        order = np.lexsort((np.arange(e), -(raw - out)))
        out[order[:left]] += 1
    return out


def first_depth(quota: int) -> int:
    """Neighbours first fetched for a quota (the ``Recommender``'s rule: 25% more, at least 1)."""
    return quota + max(1, -(-quota // 4))


# ---------------------------------------------------------------------------------------------
# Per-chunk retrieval


@dataclass
class _Space:
    """One embedding as the evaluation uses it, mapped onto the log's item codes."""

    vectors: npt.NDArray[np.float32]  # (n, d) unit rows
    row_of: IntArray  # (n_global,) catalog row of each item code, -1
    code_of: IntArray  # (n,) item code of each row, -1 if not in the log

    @classmethod
    def build(cls, vs: VectorSet, log: EncodedLog) -> _Space:
        vectors = np.ascontiguousarray(vs.vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            vectors = (vectors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
        rows = _rows_of(vs, log.item_ids)
        code_of = np.full(vectors.shape[0], -1, np.int64)
        ok = rows >= 0
        code_of[rows[ok]] = np.flatnonzero(ok)
        return cls(vectors, rows, code_of)


def _rows_of(vs: VectorSet, ids: np.ndarray) -> IntArray:
    rows_fn = getattr(vs, "rows", None)
    if callable(rows_fn):
        return np.asarray(rows_fn(ids, missing="mask"), np.int64)
    index = pd.Index(np.asarray(vs.item_ids))
    got = index.get_indexer(pd.Index(ids))
    if (got < 0).all():
        got = pd.Index(np.asarray(vs.item_ids).astype(str)).get_indexer(
            pd.Index(np.asarray(ids).astype(str))
        )
    return np.asarray(got, np.int64)


@dataclass
class _CaseData:
    x: FloatArray  # history vectors (model space), time order, capped
    t: IntArray
    seen_rows: IntArray  # model rows the user engaged with before the day
    profiles: dict[tuple[Any, ...], CaseProfile]
    n_actions: int


@dataclass
class _Plan:
    """One model's queries for a chunk of cases."""

    vectors: list[FloatArray] = field(default_factory=list)  # per query
    case: list[int] = field(default_factory=list)  # local case index per query
    weight: list[float] = field(default_factory=list)  # importance (quota by importance)
    is_da: list[bool] = field(default_factory=list)  # decay-average query
    popular: list[bool] = field(default_factory=list)  # per case: popular fallback
    n_clusters: list[int] = field(default_factory=list)  # per case


def _decay_avg(x: FloatArray, t: IntArray, now_s: float, lam: float) -> FloatArray:
    return weighted_direction(action_weights(t, now_s, lam), x)


def _plan(
    model: ModelSpec,
    cases: list[EvalCase],
    data: list[_CaseData],
    rng_of: Callable[[int], np.random.Generator],
) -> _Plan:
    plan = _Plan()
    for j, (case, cd) in enumerate(zip(cases, data, strict=True)):
        if model.kind == "last_item":
            qs = [(cd.x[-1], 1.0, False)]
            n_c = 1
        elif model.kind == "decay_average":
            qs = [(_decay_avg(cd.x, cd.t, case.day_s, model.decay_per_day), 1.0, True)]
            n_c = 1
        else:
            r = model.retrieval
            prof = cd.profiles[_profile_key(model.profile)]
            n_c = len(prof)
            qs = []
            if n_c:
                need_rng = r.selection == "sample" and n_c > r.clusters_per_request
                sel = select_clusters(
                    prof.importance,
                    r.clusters_per_request,
                    r.selection,
                    rng_of(j) if need_rng else None,
                )
                for k in sel:
                    if r.query == "centroid":
                        v = prof.centroid[k]
                        v = v / max(float(np.linalg.norm(v)), 1e-12)
                    else:
                        v = cd.x[prof.medoid_rows[k]]
                    qs.append((v, float(prof.importance[k]), False))
                if r.decay_average_share > 0:
                    qs.append(
                        (_decay_avg(cd.x, cd.t, case.day_s, model.profile.decay_per_day), 0.0, True)
                    )
        plan.popular.append(not qs)
        plan.n_clusters.append(n_c)
        for v, w, da in qs:
            plan.vectors.append(np.asarray(v, np.float64))
            plan.case.append(j)
            plan.weight.append(w)
            plan.is_da.append(da)
    return plan


class _Ranked:
    """Each query's items best first (catalog rows and cosines), sorted lazily deeper."""

    def __init__(self, s: npt.NDArray[np.float32], depth: int) -> None:
        n = s.shape[1]
        self.s = s
        self.depth = min(depth, n)
        if self.depth < n:
            part = np.argpartition(-s, self.depth - 1, axis=1)[:, : self.depth]
        else:
            part = np.tile(np.arange(n), (s.shape[0], 1))
        part = np.sort(part, axis=1)  # ties below then keep the lower row first
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        self.rows = np.take_along_axis(part, order, axis=1)
        self.scores = np.take_along_axis(ps, order, axis=1)
        self.full: dict[int, tuple[IntArray, npt.NDArray[np.float32]]] = {}

    def head(self, q: int, depth: int) -> tuple[IntArray, npt.NDArray[np.float32]]:
        if depth <= self.depth:
            return self.rows[q, :depth], self.scores[q, :depth]
        if q not in self.full:
            row = self.s[q]
            order = np.lexsort((np.arange(row.shape[0]), -row))
            self.full[q] = (order.astype(np.int64), row[order])
        rows, scores = self.full[q]
        return rows[:depth], scores[:depth]


def _assemble(
    ranked: _Ranked, src_q: list[int], quota: list[int], seen: npt.NDArray[np.bool_]
) -> IntArray:
    """One case's candidates (catalog rows), merged as ``Recommender._merge_in_turn`` merges
    them: each source in turn takes its best ``quota`` items that are neither already engaged
    with by the user nor taken by an earlier source (its list read deeper while it is short).
    """
    n = ranked.s.shape[1]
    taken = seen.copy()
    out = []
    for q, need in zip(src_q, quota, strict=True):
        depth = min(ranked.depth, n)
        while True:
            rows = ranked.head(q, depth)[0]
            got = rows[~taken[rows]][:need]
            if got.shape[0] == need or depth >= n:
                break
            depth = min(n, 2 * depth)
        taken[got] = True
        out.append(got)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _retrieve(
    model: ModelSpec,
    plan: _Plan,
    data: list[_CaseData],
    space: _Space,
    budgets: Sequence[int],
    popular: IntArray,
    rank_items: list[IntArray],
) -> tuple[dict[int, IntArray], FloatArray]:
    """Candidates per budget ((cases, budget) catalog rows) and ranking scores.

    ``rank_items[j]`` holds the catalog rows case j must score (-1: not in the catalog); the
    scores, concatenated over cases, are the best cosine over the case's queries (-inf when it
    has none, or for rows of -1).
    """
    n_cases = len(data)
    n_items = space.vectors.shape[0]
    b_max = max(budgets)
    out = {b: np.full((n_cases, b), -1, np.int64) for b in budgets}
    qcase = np.asarray(plan.case, np.int64)
    starts = np.searchsorted(qcase, np.arange(n_cases + 1))
    rank_scores = [np.full(r.shape[0], -np.inf) for r in rank_items]
    ranked = None
    if plan.vectors:
        q = np.vstack(plan.vectors).astype(np.float32)
        s = q @ space.vectors.T
        for j, items in enumerate(rank_items):
            if items.shape[0] and starts[j + 1] > starts[j]:
                ok = items >= 0
                block = s[starts[j] : starts[j + 1]][:, items[ok]]
                rank_scores[j][ok] = block.max(axis=0)
        ranked = _Ranked(s, 2 * first_depth(b_max))
    weight = np.asarray(plan.weight)
    is_da = np.asarray(plan.is_da, bool)
    r = model.retrieval
    seen = np.zeros(n_items, bool)
    for j in range(n_cases):
        seen[data[j].seen_rows] = True
        rows = np.arange(starts[j], starts[j + 1])
        cl_rows = rows[~is_da[rows]].tolist()
        da_rows = rows[is_da[rows]].tolist()
        for b in budgets:
            if plan.popular[j] or ranked is None or (model.kind == "pinnersage" and not cl_rows):
                pop = popular[~seen[popular]][:b]
                out[b][j, : pop.shape[0]] = pop
                continue
            if model.kind != "pinnersage":
                src_q, qu = rows.tolist(), [b]
            else:
                k_c, k_avg = budget_split(b, r) if da_rows else (b, 0)
                qc = quotas(k_c, weight[cl_rows], r.quota).tolist()
                src_q = [x for x, y in zip(cl_rows, qc, strict=True) if y]
                qu = [y for y in qc if y]
                if k_avg:
                    src_q.append(da_rows[0])
                    qu.append(k_avg)
            got = _assemble(ranked, src_q, qu, seen)
            out[b][j, : got.shape[0]] = got
        seen[data[j].seen_rows] = False
    flat = np.concatenate(rank_scores) if rank_scores else np.zeros(0)
    return out, flat


# ---------------------------------------------------------------------------------------------
# The evaluation


@dataclass
class EvalResult:
    """Everything measured, per user, ready for :mod:`~pinnersage.evaluation.report`.

    Attributes
    ----------
    protocol : Protocol
    models : list of ModelSpec
    per_user : pandas.DataFrame
        One row per (user, model, budget): recall, recall_all, relevance, diversity, and the
        budget-independent r_precision, reciprocal_rank (uniform negatives) and
        r_precision_popular, reciprocal_rank_popular (popularity-sampled negatives).
    users : pandas.DataFrame
        One row per evaluated user: cases, mean history length, mean clusters of ``pinnersage``,
        the diversity of the user's own actions.
    next_action : pandas.DataFrame
        One row per user: next-action accuracy of each Table 1 model.
    info : dict
        Counts and fingerprints for the protocol record.
    """

    protocol: Protocol
    models: list[ModelSpec]
    per_user: pd.DataFrame
    users: pd.DataFrame
    next_action: pd.DataFrame
    info: dict[str, Any]


def default_embedder(frame: pd.DataFrame, kind: str, dim: int, seed: int) -> VectorSet:
    """Fit item vectors of ``kind`` (a :mod:`pinnersage.embed` builder) on ``frame``."""
    import importlib

    if kind == "cooccurrence":
        from pinnersage.embed.cooccurrence import cooccurrence_embeddings

        return cooccurrence_embeddings(frame, dim=dim, seed=seed).catalog
    try:
        module = importlib.import_module(f"pinnersage.embed.{kind}")
        build = getattr(module, f"{kind}_embeddings")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"embedding kind {kind!r} cannot be fit from the action log here; "
            "use cooccurrence, als, or give --embeddings"
        ) from exc
    return build(frame, dim=dim, seed=seed).catalog


def _relevance_matrix(vectors: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.bool_]:
    n = vectors.shape[0]
    out = np.empty((n, n), bool)
    for s in range(0, n, 2048):
        out[s : s + 2048] = (vectors[s : s + 2048] @ vectors.T) >= threshold - 1e-6
    return out


def _negatives(
    case: EvalCase,
    n_pos: int,
    k: int,
    pool: IntArray,
    p: FloatArray | None,
    rng: np.random.Generator,
) -> IntArray:
    """``n_pos * k`` item codes from ``pool``, never the user's targets or seen items."""
    banned = np.concatenate([case.targets, case.seen])
    ok = ~np.isin(pool, banned)
    cand = pool[ok]
    if cand.shape[0] == 0:
        return np.full(n_pos * k, -1, np.int64)
    if p is None:
        return np.asarray(rng.choice(cand, size=n_pos * k, replace=True), np.int64)
    pp = p[ok]
    pp = pp / pp.sum()
    return np.asarray(rng.choice(cand, size=n_pos * k, replace=True, p=pp), np.int64)


def evaluate(
    actions: pd.DataFrame | EncodedLog,
    models: Sequence[ModelSpec],
    protocol: Protocol | None = None,
    *,
    embeddings: VectorSet | None = None,
    reference: VectorSet | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run the offline evaluation.

    Parameters
    ----------
    actions : pandas.DataFrame or EncodedLog
        ``user_id, item_id, timestamp`` (an ``ActionLog.frame``).
    models : sequence of ModelSpec
        Must include ``last_item`` (the reference of every lift).
    protocol : Protocol, optional
    embeddings : VectorSet, optional
        Fixed item vectors the models retrieve with; without them the protocol's embedding kind
        is fit on the data before the first test day (and refit every N days if asked).
    reference : VectorSet, optional
        The fixed embedding relevance is measured in; by default the protocol's reference kind,
        fit on the data before the first test day.
    embedder : callable, optional
        ``(frame, kind, dim, seed) -> VectorSet``; defaults to :mod:`pinnersage.embed`.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    EvalResult
    """
    from tqdm.auto import tqdm

    proto = protocol if protocol is not None else Protocol()
    log = actions if isinstance(actions, EncodedLog) else encode_log(actions)
    names = [m.name for m in models]
    if "last_item" not in names:
        raise DataFormatError("the models must include 'last_item', the reference of every lift")
    fit = embedder if embedder is not None else default_embedder
    rng_root = np.random.default_rng(proto.seed)
    users = None
    if proto.max_users is not None and proto.max_users < log.user_ids.shape[0]:
        users = np.sort(rng_root.choice(log.user_ids.shape[0], proto.max_users, replace=False))

    # --- cases and the data each embedding may be fit on
    split, split_reason, days = resolve_split(log, proto, users)
    if proto.split == "auto" and split != "day":
        warnings.warn(split_reason, PinnerSageWarning, stacklevel=2)
    if days is not None:
        first_day = days[0][0]
        fit_mask = log.time < first_day
        epochs: list[tuple[np.ndarray, list[EvalCase]]] = []
        every = proto.refit_every or len(days)
        for s in range(0, len(days), every):
            block = days[s : s + every]
            epochs.append((log.time < block[0][0], [c for _, cs in block for c in cs]))
    else:
        fit_mask = per_user_training_mask(log)
        epochs = [(fit_mask, per_user_cases(log, proto, users))]
    n_cases_total = sum(len(cs) for _, cs in epochs)
    if n_cases_total == 0:
        raise DataFormatError("no user has both a history and actions on a test day")
    fit_frame = log.frame(fit_mask)
    if reference is None:
        reference = fit(fit_frame, proto.reference_kind, proto.reference_dim, proto.seed)
    ref = _Space.build(reference, log)
    relevant = _relevance_matrix(ref.vectors, proto.relevance_cosine)
    ref_padded = np.vstack([ref.vectors, np.zeros((1, ref.vectors.shape[1]), np.float32)])
    train_counts = np.bincount(log.item[fit_mask], minlength=log.item_ids.shape[0])

    # --- negatives of the ranking task: per case, shared by every model (paired)
    pool = np.flatnonzero(ref.row_of >= 0)
    pop_p = train_counts[pool].astype(np.float64) + 1.0  # add-one: items unseen in training

    profile_params = [m.profile for m in models if m.kind == "pinnersage"]
    max_actions = max([p.max_actions_per_user for p in profile_params] or [5000])
    budgets = proto.budgets
    records: list[dict[str, Any]] = []
    user_rows: list[dict[str, Any]] = []
    na_rows: list[dict[str, Any]] = []
    model_index = {m.name: i for i, m in enumerate(models)}
    default_ps = next((m for m in models if m.name == "pinnersage"), None)
    bar = tqdm(total=n_cases_total, desc="evaluate", unit="case", disable=not progress, leave=False)
    case_counter = 0
    chunk = 128
    for epoch_mask, cases in epochs:
        if embeddings is not None:
            space = _Space.build(embeddings, log)
        elif (
            proto.embedding_kind == proto.reference_kind
            and proto.embedding_dim == proto.reference_dim
            and epoch_mask is fit_mask
        ):
            space = ref
        else:
            space = _Space.build(
                fit(log.frame(epoch_mask), proto.embedding_kind, proto.embedding_dim, proto.seed),
                log,
            )
        counts_model = np.zeros(space.vectors.shape[0])
        known = space.code_of >= 0
        counts_model[known] = np.bincount(log.item[epoch_mask], minlength=log.item_ids.shape[0])[
            space.code_of[known]
        ]
        popular = np.argsort(-counts_model, kind="stable").astype(np.int64)
        for c0 in range(0, len(cases), chunk):
            part = cases[c0 : c0 + chunk]
            base_idx = case_counter
            case_counter += len(part)
            data: list[_CaseData] = []
            keep_cases: list[EvalCase] = []
            for ci, case in enumerate(part):
                rows = space.row_of[case.hist_items]
                ok = rows >= 0
                if not ok.any():
                    continue
                x = space.vectors[rows[ok]].astype(np.float64)
                t = case.hist_time[ok]
                if x.shape[0] > max_actions:
                    x, t = x[-max_actions:], t[-max_actions:]
                crng = np.random.default_rng([proto.seed, base_idx + ci, 10**6])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # k-means ablation: empty clusters
                    profs = case_profiles(x, t, float(case.day_s), profile_params, crng)
                seen = space.row_of[case.seen]
                data.append(_CaseData(x, t, seen[seen >= 0], profs, int(x.shape[0])))
                keep_cases.append(case)
            if not keep_cases:
                bar.update(len(part))
                continue
            nloc = len(keep_cases)
            # --- targets (reference vocabulary) and ranking items: per case, its positives
            # (new test items in the model catalog), then k uniform and k popular negatives each
            k_neg = proto.negatives
            tgt_case, tgt_code, tgt_new = [], [], []
            pos_case, rank_items, pos_idx, negu_idx, negp_idx = [], [], [], [], []
            offset = 0
            for j, case in enumerate(keep_cases):
                tg = case.targets[ref.row_of[case.targets] >= 0]
                new = ~np.isin(tg, case.seen)
                tgt_case.append(np.full(tg.shape[0], j))
                tgt_code.append(tg)
                tgt_new.append(new)
                pos = tg[new & (space.row_of[tg] >= 0)]
                npos = pos.shape[0]
                if npos:
                    nrng = np.random.default_rng([proto.seed, base_idx + j, 7])
                    neg_u = _negatives(case, npos, k_neg, pool, None, nrng)
                    neg_p = _negatives(case, npos, k_neg, pool, pop_p, nrng)
                    codes = np.concatenate([pos, neg_u, neg_p])
                    rank_items.append(np.where(codes >= 0, space.row_of[np.maximum(codes, 0)], -1))
                    pos_case.append(np.full(npos, j))
                    pos_idx.append(offset + np.arange(npos))
                    negu_idx.append(offset + npos + np.arange(npos * k_neg).reshape(npos, k_neg))
                    negp_idx.append(
                        offset + npos * (1 + k_neg) + np.arange(npos * k_neg).reshape(npos, k_neg)
                    )
                    offset += codes.shape[0]
                else:
                    rank_items.append(np.zeros(0, np.int64))
            t_case = np.concatenate(tgt_case).astype(np.int64)
            t_code = np.concatenate(tgt_code).astype(np.int64)
            t_new = np.concatenate(tgt_new).astype(bool)
            t_ref = ref.row_of[t_code]
            p_case = np.concatenate(pos_case).astype(np.int64) if pos_case else np.zeros(0, int)
            i_pos = np.concatenate(pos_idx) if pos_idx else np.zeros(0, int)
            i_negu = np.vstack(negu_idx) if negu_idx else np.zeros((0, k_neg), int)
            i_negp = np.vstack(negp_idx) if negp_idx else np.zeros((0, k_neg), int)
            hist_ref = [
                np.unique(ref.row_of[c.hist_items][ref.row_of[c.hist_items] >= 0])
                for c in keep_cases
            ]
            own_div = M.mean_pairwise_diversity(
                ref.vectors[np.concatenate(hist_ref)].astype(np.float64),
                np.repeat(np.arange(nloc), [h.shape[0] for h in hist_ref]),
                nloc,
            )

            def rng_of_factory(
                model_i: int, base: int = base_idx
            ) -> Callable[[int], np.random.Generator]:
                def rng_of(case_j: int) -> np.random.Generator:
                    return np.random.default_rng([proto.seed, base + case_j, model_i])

                return rng_of

            default_clusters = np.zeros(nloc)
            done: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for model in models:
                mi = model_index[model.name]
                same = done.get(_model_key(model))
                if same is not None:  # an identical configuration (a sweep point): reuse it
                    copies = [{**rec, "model": model.name} for rec in same]
                    records.extend(copies)
                    continue
                mine: list[dict[str, Any]] = []
                done[_model_key(model)] = mine
                plan = _plan(model, keep_cases, data, rng_of_factory(mi))
                if model is default_ps:
                    default_clusters = np.asarray(plan.n_clusters, np.float64)
                cands, rscores = _retrieve(model, plan, data, space, budgets, popular, rank_items)
                # ranking metrics (budget independent)
                rk = {}
                if p_case.size:
                    pos_s = rscores[i_pos]
                    top_u, rr_u, r_u = M.ranking_metrics(pos_s, rscores[i_negu], p_case, nloc)
                    top_p, rr_p, _ = M.ranking_metrics(pos_s, rscores[i_negp], p_case, nloc)
                    rk = {
                        "rank_top": top_u,
                        "rank_rr": rr_u,
                        "rank_r": r_u,
                        "rankp_top": top_p,
                        "rankp_rr": rr_p,
                    }
                for b in budgets:
                    cr = cands[b]
                    codes = np.where(cr >= 0, space.code_of[np.maximum(cr, 0)], -1)
                    hits = M.candidate_hits(codes, t_case, t_code, log.item_ids.shape[0])
                    cref = np.where(codes >= 0, ref.row_of[np.maximum(codes, 0)], -1)
                    rel = M.candidate_relevance(cref, t_case, t_ref, relevant)
                    div = M.padded_diversity(ref_padded, cref)
                    sums = {
                        "hits_new": np.bincount(t_case, weights=hits & t_new, minlength=nloc),
                        "n_new": np.bincount(t_case, weights=t_new, minlength=nloc),
                        "hits_all": np.bincount(t_case, weights=hits, minlength=nloc),
                        "n_all": np.bincount(t_case, minlength=nloc),
                        "rel": np.bincount(t_case, weights=rel, minlength=nloc),
                        "n_cand": (cr >= 0).sum(axis=1),
                    }
                    for j, case in enumerate(keep_cases):
                        rec = {
                            "user": case.user,
                            "model": model.name,
                            "budget": b,
                            "diversity": div[j],
                        }
                        for key, arr in sums.items():
                            rec[key] = float(arr[j])
                        for key, arr in rk.items():
                            rec[key] = float(arr[j])
                        mine.append(rec)
                records.extend(mine)
            # --- next-action study (Table 1), in the model space
            for j, (case, cd) in enumerate(zip(keep_cases, data, strict=True)):
                nxt = space.row_of[case.first_target]
                user_rows.append(
                    {
                        "user": case.user,
                        "n_actions": cd.n_actions,
                        "n_clusters": default_clusters[j],
                        "own_diversity": own_div[j],
                    }
                )
                if nxt < 0 or ref.row_of[case.first_target] < 0:
                    continue
                y = space.vectors[nxt].astype(np.float64)
                thr = proto.relevance_cosine - 1e-9
                cos_hist = cd.x @ y
                krng = np.random.default_rng([proto.seed, base_idx + j, 3])
                k3 = _kmeans_oracle(cd.x, 3, krng) @ y
                row = {
                    "user": case.user,
                    "last_item": float(cos_hist[-1] >= thr),
                    "decay_average": float(_decay_avg(cd.x, cd.t, case.day_s, 0.01) @ y >= thr),
                    "kmeans3_oracle": float(k3.max() >= thr),
                    "best_past_item_oracle": float(cos_hist.max() >= thr),
                }
                if default_ps is not None:
                    prof = cd.profiles[_profile_key(default_ps.profile)]
                    if len(prof):
                        med = cd.x[prof.medoid_rows[: default_ps.retrieval.clusters_per_request]]
                        row["pinnersage_top_medoids"] = float((med @ y).max() >= thr)
                        row["pinnersage_all_medoids_oracle"] = float(
                            (cd.x[prof.medoid_rows] @ y).max() >= thr
                        )
                    else:
                        row["pinnersage_top_medoids"] = 0.0
                        row["pinnersage_all_medoids_oracle"] = 0.0
                na_rows.append(row)
            bar.update(len(part))
    bar.close()
    per_case = pd.DataFrame.from_records(records)
    sum_cols = [c for c in per_case.columns if c not in ("user", "model", "budget", "diversity")]
    grouped = per_case.groupby(["user", "model", "budget"], sort=True)
    per_user = grouped[sum_cols].sum()
    per_user["diversity"] = grouped["diversity"].mean()
    per_user["n_cases"] = grouped.size()
    per_user = per_user.reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        pu = pd.DataFrame(
            {
                "user": log.user_ids[per_user["user"].to_numpy()],
                "model": per_user["model"],
                "budget": per_user["budget"],
                "recall": np.where(
                    per_user["n_new"] > 0, per_user["hits_new"] / per_user["n_new"], np.nan
                ),
                "recall_all": np.where(
                    per_user["n_all"] > 0, per_user["hits_all"] / per_user["n_all"], np.nan
                ),
                "relevance": np.where(
                    per_user["n_all"] > 0, per_user["rel"] / per_user["n_all"], np.nan
                ),
                "diversity": per_user["diversity"],
                "n_targets": per_user["n_all"],
                "n_new_targets": per_user["n_new"],
                "n_cases": per_user["n_cases"],
                "n_candidates": per_user["n_cand"] / per_user["n_cases"],
            }
        )
        if "rank_r" in per_user:
            r = per_user["rank_r"].fillna(0)
            pu["r_precision"] = np.where(r > 0, per_user["rank_top"] / r, np.nan)
            pu["reciprocal_rank"] = np.where(r > 0, per_user["rank_rr"] / r, np.nan)
            pu["r_precision_popular"] = np.where(r > 0, per_user["rankp_top"] / r, np.nan)
            pu["reciprocal_rank_popular"] = np.where(r > 0, per_user["rankp_rr"] / r, np.nan)
    users_df = (
        pd.DataFrame.from_records(user_rows)
        .groupby("user")
        .agg(
            n_cases=("n_actions", "size"),
            n_actions=("n_actions", "mean"),
            n_clusters=("n_clusters", "mean"),
            own_diversity=("own_diversity", "mean"),
        )
        .reset_index()
    )
    users_df["user"] = log.user_ids[users_df["user"].to_numpy()]
    na = pd.DataFrame.from_records(na_rows)
    if len(na):
        na = na.groupby("user").mean().reset_index()
        na["user"] = log.user_ids[na["user"].to_numpy()]
    info = {
        "split": split,
        "split_requested": proto.split,
        "split_reason": split_reason,
        "n_actions": len(log),
        "n_users": int(log.user_ids.shape[0]),
        "n_items": int(log.item_ids.shape[0]),
        "n_cases": int(n_cases_total),
        "n_cases_evaluated": int(
            per_case.loc[per_case["model"] == "last_item"].shape[0] // max(len(budgets), 1)
        ),
        "n_users_evaluated": int(users_df.shape[0]),
        "fit_actions": int(fit_mask.sum()),
        "fit_last_timestamp": int(log.time[fit_mask].max()) if fit_mask.any() else None,
        "first_test_day": int(min(c.day_s for _, cs in epochs for c in cs))
        if n_cases_total
        else None,
        "test_days": sorted({int(c.day_s) for _, cs in epochs for c in cs}),
        "reference_items": int((ref.code_of >= 0).sum()),
        "model_items": int(space.vectors.shape[0]),
        "embedding_version": getattr(embeddings, "embedding_version", None),
        "reference_version": getattr(reference, "embedding_version", None),
    }
    return EvalResult(proto, list(models), pu, users_df, na, info)


def _model_key(model: ModelSpec) -> tuple[Any, ...]:
    """Models with equal keys retrieve identically (same draws): computed once."""
    if model.kind == "last_item":
        return ("last_item",)
    if model.kind == "decay_average":
        return ("decay_average", float(model.decay_per_day))
    return ("pinnersage", model.profile, model.retrieval)


def _kmeans_oracle(x: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """Unit-normalised k-means centroids of the history (the Table 1 k-means oracle)."""
    from scipy.cluster.vq import kmeans2

    uniq = np.unique(x, axis=0)
    if uniq.shape[0] <= k:
        c = uniq
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty clusters on repeated rows are expected
            c, _ = kmeans2(x, k, minit="++", seed=rng)
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    return np.asarray(c / np.where(norms > 0, norms, 1.0))
