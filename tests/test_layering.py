"""The core stays light: importing it loads numpy, scipy, numba and the standard library only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "pinnersage" / "core"
ALLOWED = {"numpy", "scipy", "numba", "pinnersage"}
HEAVY = ["pandas", "pyarrow", "hnswlib", "sklearn", "pyspark", "redis", "torch", "matplotlib"]


def test_core_modules_import_only_numpy_scipy_numba_and_stdlib() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED or top in stdlib, f"{path.name} imports {name}"
                if top == "pinnersage":
                    assert name.startswith(
                        ("pinnersage.core", "pinnersage.errors", "pinnersage.params")
                    ), f"{path.name} imports {name}"


def test_importing_pinnersage_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, pinnersage, pinnersage.core.profile\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_missing_extra_names_the_install_command() -> None:
    import pytest

    from pinnersage import MissingDependencyError
    from pinnersage._optional import require

    with pytest.raises(MissingDependencyError, match=r"pip install 'pinnersage\[redis\]'"):
        require("pinnersage_no_such_module", "redis")
    with pytest.raises(ImportError):  # generic except-ImportError code keeps working
        require("pinnersage_no_such_module", "spark")
