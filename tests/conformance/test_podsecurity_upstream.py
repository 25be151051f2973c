"""aigis's Pod Security checks agree with Kubernetes' own on every upstream fixture.

Pod Security Admission ships, for each policy version and level, pods that must pass and pods
that must fail (`k8s.io/pod-security-admission/test/testdata`). `make control-plane` copies them
out of the Go module (the version pinned in hack/versions.env as POD_SECURITY_VERSION) into
`$AIGIS_CACHE/pod-security-fixtures`; nothing of upstream's is committed here. aigis implements
the newest policy version, so every fixture of that version is checked at both levels: a pass
fixture must get no reason, a fail fixture at least one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from aigis.admission.podsecurity import check_pod_security

POLICY_VERSION = "v1.37"
"""The policy version aigis's checks follow (see aigis.admission.podsecurity)."""
LEVELS = ("baseline", "restricted")

FIXTURES = Path(os.environ.get("AIGIS_CACHE", Path.home() / ".cache" / "aigis")) / (
    "pod-security-fixtures"
)


def fixtures() -> list[tuple[str, str, Path]]:
    found = [
        (level, outcome, path)
        for level in LEVELS
        for outcome in ("pass", "fail")
        for path in sorted((FIXTURES / level / POLICY_VERSION / outcome).glob("*.yaml"))
    ]
    return found


def test_the_upstream_fixtures_are_there() -> None:
    """Without them the parametrised test below would silently check nothing."""
    found = fixtures()
    assert found, (
        f"no Pod Security fixtures under {FIXTURES}/<level>/{POLICY_VERSION}; "
        "run `make control-plane` (it copies them from the Go module)"
    )
    for level in LEVELS:
        for outcome in ("pass", "fail"):
            assert any(f[:2] == (level, outcome) for f in found), (level, outcome)


@pytest.mark.parametrize(
    ("level", "outcome", "path"),
    [pytest.param(*f, id=f"{f[0]}-{f[1]}-{f[2].stem}") for f in fixtures()],
)
def test_aigis_agrees_with_upstream(level: str, outcome: str, path: Path) -> None:
    pod = yaml.safe_load(path.read_text())
    reasons = check_pod_security(pod.get("spec") or {}, pod.get("metadata"), level)
    if outcome == "pass":
        assert reasons == [], [str(r) for r in reasons]
    else:
        assert reasons, f"upstream refuses {path.name} at {level}; aigis allowed it"
