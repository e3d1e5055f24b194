"""Data shipped with the package: a compact copy of the UCI Online Retail log.

``online-retail/actions.parquet`` holds ``user_id`` (int64), ``item_id`` (string) and
``timestamp`` (unix seconds), ``online-retail/items.parquet`` holds ``item_id`` and ``title``
(Daqing Chen, Sai Liang Sain, Kun Guo, 2012; UCI Machine Learning Repository; CC BY 4.0).
``pinnersage demo`` reads them through :func:`online_retail`, so they are found in an installed
wheel as in a source checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pinnersage.errors import ConfigError

__all__ = ["online_retail"]


def online_retail(name: Literal["actions", "items"]) -> Path:
    """The path of the shipped Online Retail ``actions`` or ``items`` parquet file."""
    if name not in ("actions", "items"):
        raise ConfigError(f"name must be 'actions' or 'items', got {name!r}")
    return Path(str(resources.files(__name__) / "online-retail" / f"{name}.parquet"))
