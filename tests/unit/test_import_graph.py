"""The runtime package never imports the development-only control plane.

`aigis.devcluster` builds and runs a local Kubernetes for development and tests; the image that
runs the operator, the webhook and the gateway must not need it (nor carry its code paths).
Every other module is imported in a fresh interpreter and the modules loaded are checked.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import aigis

DEV_ONLY = "aigis.devcluster"


def runtime_modules() -> list[str]:
    root = Path(aigis.__file__).parent
    return sorted(
        info.name
        for info in pkgutil.walk_packages([str(root)], prefix="aigis.")
        # `__main__` modules run the CLI when imported; what they import is in `aigis.cli`.
        if not info.name.startswith(DEV_ONLY) and not info.name.endswith(".__main__")
    )


def test_no_runtime_module_imports_the_dev_control_plane() -> None:
    modules = runtime_modules()
    assert "aigis.cli" in modules
    assert "aigis.gateway.server" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({DEV_ONLY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == "[]", result.stdout
