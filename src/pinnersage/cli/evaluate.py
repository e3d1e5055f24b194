"""``pinnersage evaluate``: the paper's offline evaluation (section 5) on an action log.

Walks forward by day over the last test days (by default, ``--split auto``, each user's last active
day instead when those test days hold fewer than 100 users), measures every named model
(baselines, the shipped ``pinnersage``, ``pinnersage_paper``, ablations and sweeps) at each
candidate budget, and writes ``report.json``, ``report.md``, ``per_user.parquet`` and PNG plots
into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pinnersage.cli._common import (
    add_log_flags,
    check_input,
    check_out_dir,
    config_from,
    load_embeddings,
    log,
    log_overrides,
    read_log,
    show_progress,
)
from pinnersage.errors import DataFormatError

#: Embedding kinds the evaluation fits on the log itself.
FIT_KINDS = ("cooccurrence", "als")


def _comma_list(text: str, convert: type, what: str) -> tuple[Any, ...]:
    try:
        return tuple(convert(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    return _comma_list(text, float, "numbers")


def _ints(text: str) -> tuple[int, ...]:
    return _comma_list(text, int, "integers")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="offline evaluation: recall, relevance, ranking, lifts over last item",
        description="Reproduce the paper's offline evaluation (walk-forward by day) on an action "
        "log and write report.json, report.md, per-user results and plots.",
    )
    parser.add_argument(
        "--actions",
        required=True,
        metavar="PATH",
        help="action log: parquet/CSV/gzip CSV file or a folder of daily files",
    )
    parser.add_argument(
        "--embeddings",
        metavar="PATH",
        help="fixed item embeddings the models retrieve with (default: fit "
        "--embedding-kind on the data before the first test day)",
    )
    parser.add_argument(
        "--reference",
        metavar="PATH",
        help="fixed embedding relevance is measured in (default: fit "
        "--reference-kind on the data before the first test day)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_log_flags(parser)
    pr = parser.add_argument_group("protocol")
    pr.add_argument(
        "--split",
        choices=("auto", "day", "user"),
        default="auto",
        help="walk forward over the last test days (day), each user's last active "
        "day (user), or auto (default): day unless the test days hold fewer "
        "than --min-test-users users, then user, with a warning",
    )
    pr.add_argument(
        "--min-test-users",
        type=int,
        default=100,
        metavar="N",
        help="fewest users the test days must hold for --split auto to walk "
        "forward by day (default 100)",
    )
    pr.add_argument("--test-days", type=int, default=14, help="number of test days (default 14)")
    pr.add_argument(
        "--window-days",
        type=int,
        default=None,
        help="history window before a test day (default: profile.history_window_days, 90)",
    )
    pr.add_argument(
        "--refit-every",
        type=int,
        default=None,
        metavar="N",
        help="refit the model embeddings every N test days (default: once)",
    )
    pr.add_argument(
        "--budgets",
        type=_ints,
        default=(50, 100, 400),
        help="candidate budgets, comma-separated (default 50,100,400)",
    )
    pr.add_argument(
        "--negatives",
        type=int,
        default=20,
        help="sampled negatives per test action in the ranking task (default 20)",
    )
    pr.add_argument(
        "--relevance-cosine",
        type=float,
        default=0.8,
        help="cosine at which a candidate makes a test action relevant (0.8)",
    )
    pr.add_argument(
        "--embedding-kind",
        choices=FIT_KINDS,
        default="cooccurrence",
        help="embedding builder fit when --embeddings is absent (default cooccurrence)",
    )
    pr.add_argument("--embedding-dim", type=int, default=64, help="its dimension (64)")
    pr.add_argument(
        "--reference-kind",
        choices=FIT_KINDS,
        default="cooccurrence",
        help="builder of the reference embedding (default cooccurrence)",
    )
    pr.add_argument("--reference-dim", type=int, default=64, help="its dimension (64)")
    pr.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples of users for intervals (default 1000)",
    )
    pr.add_argument("--seed", type=int, default=0, help="seed of every random draw (0)")
    pr.add_argument(
        "--max-users", type=int, default=None, help="evaluate a seeded random subset of users"
    )
    md = parser.add_argument_group("models and sweeps")
    md.add_argument(
        "--alphas",
        type=_floats,
        default=None,
        help="alpha values of the sweep (default 0.4,0.6,1,1.5)",
    )
    md.add_argument(
        "--lambdas",
        type=_floats,
        default=None,
        help="lambda values of the sweep (default 0,0.01,0.03,0.1)",
    )
    md.add_argument(
        "--embeddings-sweep",
        type=_ints,
        default=None,
        help="numbers of embeddings e of the Figure 7 sweep (default 1,2,3,5,10)",
    )
    md.add_argument("--no-ablations", action="store_true", help="skip the paper's ablations")
    md.add_argument(
        "--no-plots",
        action="store_true",
        help="do not draw PNG plots (without the plots extra, matplotlib, they are skipped "
        "with a warning)",
    )
    md.add_argument("--title", default=None, help="title of report.md")
    parser.set_defaults(func=run)
    return parser


def _can_plot() -> bool:
    """Whether matplotlib (the plots extra) is installed; a warning now when it is not, so that
    a long evaluation does not end without its plots unannounced."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        return True
    log.warning(
        "matplotlib is not installed: the reports will be written without plots "
        "(pip install 'pinnersage[plots]' draws them; --no-plots silences this)"
    )
    return False


def _check_overlap(what: str, catalog: Any, item_ids: Any) -> None:
    """An embeddings file the evaluation cannot use at all is an error before any work: one
    that shares no item id with the log (most often: another catalog, or ids of another kind)."""
    unique = item_ids.drop_duplicates()
    if (catalog.rows(unique.to_numpy(), missing="mask") >= 0).any():
        return
    sample = ", ".join(repr(str(i)) for i in unique.head(3))
    raise DataFormatError(
        f"{what} shares no item id with the log "
        f"(the log's items include {sample}); embeddings must cover the log's items"
    )


def run(args: argparse.Namespace) -> int:
    import pandas as pd  # noqa: F401  (heavy imports stay inside run)

    from pinnersage.evaluation.models import (
        DEFAULT_ALPHAS,
        DEFAULT_EMBEDDINGS_SWEEP,
        DEFAULT_LAMBDAS,
        standard_models,
    )
    from pinnersage.evaluation.protocol import Protocol
    from pinnersage.evaluation.report import write_report
    from pinnersage.evaluation.runner import evaluate

    config = config_from(args, {"log": log_overrides(args)})
    check_input(args.actions, "action log")
    out = check_out_dir(args.out)
    plots = not args.no_plots and _can_plot()
    window = args.window_days or config.profile.history_window_days
    protocol = Protocol(
        split=args.split,
        min_test_users=args.min_test_users,
        test_days=args.test_days,
        window_days=window,
        refit_every=args.refit_every,
        budgets=tuple(args.budgets),
        relevance_cosine=args.relevance_cosine,
        negatives=args.negatives,
        embedding_kind="file" if args.embeddings else args.embedding_kind,
        embedding_dim=args.embedding_dim,
        reference_kind=args.reference_kind if not args.reference else "file",
        reference_dim=args.reference_dim,
        bootstrap=args.bootstrap,
        seed=args.seed,
        max_users=args.max_users,
    )
    t0 = time.perf_counter()
    embeddings = load_embeddings(args.embeddings) if args.embeddings else None
    reference = load_embeddings(args.reference) if args.reference else None
    progress = show_progress(args)
    actions = read_log(args.actions, config, progress=progress)
    for flag, path, catalog in (
        ("--embeddings", args.embeddings, embeddings),
        ("--reference", args.reference, reference),
    ):
        if catalog is not None:
            _check_overlap(f"{flag} {path}", catalog, actions.frame["item_id"])
    log.info(
        "read %s actions from %s (%s)",
        f"{len(actions.frame):,}",
        args.actions,
        actions.report.summary(),
    )
    models = standard_models(
        config.profile,
        config.retrieval,
        alphas=args.alphas if args.alphas is not None else DEFAULT_ALPHAS,
        lambdas=args.lambdas if args.lambdas is not None else DEFAULT_LAMBDAS,
        embeddings=args.embeddings_sweep
        if args.embeddings_sweep is not None
        else DEFAULT_EMBEDDINGS_SWEEP,
        ablations=not args.no_ablations,
    )
    result = evaluate(
        actions.frame,
        models,
        protocol,
        embeddings=embeddings,
        reference=reference,
        progress=progress,
    )
    log.info("split: %s (%s)", result.info["split"], result.info["split_reason"])
    command = "pinnersage " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["evaluate"] else None
    paths = write_report(
        result,
        out,
        command=command,
        title=args.title or f"Offline evaluation of {args.actions}",
    )
    written = [paths["json"], paths["md"], paths["per_user"]]
    if plots:
        from pinnersage.evaluation.plots import write_plots

        written += write_plots(out)
    log.info(
        "evaluated %s users on %s user-days in %.0f s",
        f"{result.info['n_users_evaluated']:,}",
        f"{result.info['n_cases_evaluated']:,}",
        time.perf_counter() - t0,
    )
    for p in written:
        print(f"wrote {p}")
    return 0
