"""Offline evaluation (paper section 5): walk-forward protocol, metrics, named models, report.

``evaluate`` runs models over an action log and keeps results per user; ``write_report`` writes
``report.json`` and ``report.md``; ``write_plots`` draws the PNG plots. The command line is
``pinnersage evaluate``; ``docs/evaluation.md`` describes every choice.
"""

from pinnersage.evaluation.models import ModelSpec, standard_models
from pinnersage.evaluation.protocol import EvalCase, Protocol, encode_log
from pinnersage.evaluation.report import build_report, check_bar, render_markdown, write_report
from pinnersage.evaluation.runner import EvalResult, default_embedder, evaluate

__all__ = [
    "EvalCase",
    "EvalResult",
    "ModelSpec",
    "Protocol",
    "build_report",
    "check_bar",
    "default_embedder",
    "encode_log",
    "evaluate",
    "render_markdown",
    "standard_models",
    "write_report",
]
