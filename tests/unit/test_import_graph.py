"""What each part of the package may import.

`aigis.devcluster` builds and runs a local Kubernetes for development and tests; the image that
runs the operator, the webhook and the gateway must not need it (nor carry its code paths).
Every other module is imported in a fresh interpreter and the modules loaded are checked.

`aigis.admission` is the pure decision engine that the webhook, `aigis scan` and the operator share:
it must load without the webhook's shell, the Kubernetes client, kopf or an HTTP library.
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


PURE_ENGINE_MUST_NOT_LOAD = (
    "aigis.webhook",
    "aigis.kube",
    "aigis.controller",
    "aiohttp",
    "kopf",
    "kubernetes",
)


def test_the_admission_engine_loads_without_any_shell() -> None:
    engine = [m for m in runtime_modules() if m.startswith("aigis.admission")]
    assert "aigis.admission.engine" in engine
    script = (
        "import importlib, sys\n"
        f"for name in {engine!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({PURE_ENGINE_MUST_NOT_LOAD!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == "[]", result.stdout
