"""Lazy imports of optional extras, with an error that names the install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from pinnersage.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install`` line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is needed for this feature but is not installed; "
            f"install it with: pip install 'pinnersage[{extra}]'"
        ) from exc
