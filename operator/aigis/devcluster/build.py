"""Making sure the control-plane binaries exist at their pinned versions before ``up``.

The binaries are built from source by ``hack/build-control-plane.sh`` (there are no downloads).
``up`` calls it for whatever is missing or outdated, so ``make cluster-up`` works on a fresh
machine; the script prints its own progress, which matters: a cold build of everything takes
about 7 min on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from aigis.devcluster.kwok import missing_stage_files
from aigis.devcluster.layout import Layout

# Build-script target -> (version variable in hack/versions.env, binaries it produces).
BUILD_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "etcd": ("ETCD_VERSION", ("etcd",)),
    "kwok": ("KWOK_VERSION", ("kwok",)),
    "kubernetes": (
        "KUBE_VERSION",
        ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
    ),
}


class BuildError(RuntimeError):
    """The binaries are missing and could not be built."""


def repository_root() -> Path | None:
    """The source checkout this package runs from, if any (the build script lives there)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "hack" / "build-control-plane.sh").is_file() else None


def pinned_versions(root: Path | None) -> dict[str, str]:
    """``KEY=VALUE`` pairs of ``hack/versions.env``; empty when running outside the checkout."""
    if root is None:
        return {}
    versions: dict[str, str] = {}
    for line in (root / "hack" / "versions.env").read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            versions[key] = value.strip().strip("\"'")
    return versions


def missing_targets(layout: Layout, versions: dict[str, str]) -> list[str]:
    """Build targets whose binaries are absent or marked with another version than pinned."""
    missing = []
    for target, (variable, binaries) in BUILD_TARGETS.items():
        wanted = versions.get(variable)
        if any(not _is_current(layout.binary(name), wanted) for name in binaries):
            missing.append(target)
    if "kwok" not in missing and _stages_outdated(layout, versions.get("KWOK_VERSION")):
        missing.append("kwok")
    return missing


def ensure_binaries(layout: Layout, progress: Callable[[str], None]) -> None:
    """Build whatever is missing, or explain how to when the build script is not available."""
    root = repository_root()
    targets = missing_targets(layout, pinned_versions(root))
    if not targets:
        return
    if root is None:
        raise BuildError(
            f"control-plane binaries missing in {layout.bin} ({', '.join(targets)}); "
            "run hack/build-control-plane.sh from the aigis checkout"
        )
    script = root / "hack" / "build-control-plane.sh"
    slow = " (a cold build takes about 7 min on 2 cores)" if "kubernetes" in targets else ""
    progress(f"preparing {', '.join(targets)} with {script.relative_to(root)}{slow}")
    env = {**os.environ, "AIGIS_CACHE": str(layout.cache)}
    result = subprocess.run([str(script), *targets], cwd=root, check=False, env=env)
    if result.returncode != 0:
        raise BuildError(
            f"{script} {' '.join(targets)} failed with exit code {result.returncode} "
            f"(AIGIS_CACHE={layout.cache}); see its output above"
        )
    still_missing = missing_targets(layout, pinned_versions(root))
    if still_missing:
        raise BuildError(
            f"build finished but {', '.join(still_missing)} still missing in {layout.bin}"
        )


def _is_current(binary: Path, wanted_version: str | None) -> bool:
    if not binary.is_file():
        return False
    if wanted_version is None:
        return True
    marker = binary.parent / f".{binary.name}.version"
    return _read_marker(marker) == wanted_version


def _stages_outdated(layout: Layout, wanted_version: str | None) -> bool:
    if missing_stage_files(layout.kwok_stages):
        return True
    return (
        wanted_version is not None
        and _read_marker(layout.kwok_stages / ".version") != wanted_version
    )


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
