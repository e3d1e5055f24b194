"""The pinnersage error hierarchy.

Every error a user can cause derives from :class:`PinnerSageError` and from the matching
builtin, so that generic ``except ValueError`` code keeps working. Messages name the value
that was wrong and the rule it broke.
"""

from __future__ import annotations


class PinnerSageError(Exception):
    """Base class of every error raised by pinnersage on bad input or state."""


class ConfigError(PinnerSageError, ValueError):
    """A parameter or setting is out of range, of the wrong type, or unknown."""


class InvalidVectorsError(PinnerSageError, ValueError):
    """Vectors are not a finite 2-D array (NaN, inf, wrong number of dimensions, zero norm)."""


class DimensionMismatchError(PinnerSageError, ValueError):
    """Arrays that must line up (vectors and ids, queries and an index) have different shapes."""


class UnknownItemError(PinnerSageError, KeyError):
    """An item id is not in the item catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DataFormatError(PinnerSageError, ValueError):
    """A file (action log, embeddings, items) is missing columns or holds unusable rows."""


class EmptyWindowError(DataFormatError):
    """The batch window holds no usable action (a wrong date or log, most likely).

    ``start`` and ``end`` are the window's bounds (ISO 8601, UTC) when known, so that a caller
    (the command line) can say which dates the log covers instead.
    """

    def __init__(self, message: str, *, start: str | None = None, end: str | None = None) -> None:
        super().__init__(message)
        self.start = start
        self.end = end


class EmbeddingVersionMismatchError(PinnerSageError):
    """An artefact (index, snapshot, cache entry) was built from other item embeddings."""


class CorruptArtifactError(PinnerSageError):
    """A saved artefact fails its checksum or cannot be parsed."""


class ProfileNotFoundError(PinnerSageError, LookupError):
    """No profile is stored for a user."""


class MissingDependencyError(PinnerSageError, ImportError):
    """An optional dependency is not installed; the message names the install command."""


class PinnerSageWarning(UserWarning):
    """Non-fatal oddities, such as a history truncated to ``max_actions_per_user``."""
