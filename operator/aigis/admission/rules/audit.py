"""Rules only the background audit can apply: they need the pods that run now, not a manifest.

The operator's background audit (`aigis.oversight.audit`) produces these findings; admission
never does (a pod being created has no running history). They are registered here with every
other rule so that the rule reference, SARIF, PolicyReports, dashboards and alerts know them by
the same ids.
"""

from __future__ import annotations

from typing import Final

from aigis.admission.rules.rule import Family, Rule

_FAMILY: Final = "audit"

RULE_GATEWAY_MISSING: Final = "audit/gateway-missing"

FAMILY: Final = Family(
    name=_FAMILY,
    title="Background audit of running pods",
    summary="Found by the operator's background audit (PolicyReports, AIWorkload status.audit, "
    "Events), never at admission: they are about pods that already run.",
    rules=(
        Rule(
            id=RULE_GATEWAY_MISSING,
            title="Running pods without the gateway",
            checks="A running pod that one valid AIWorkload covers and that the injection would "
            "give the gateway sidecar runs without it (it was created before aigis, before the "
            "workload, or before gateway.inject was turned on).",
            fix="Restart the pods (kubectl rollout restart) so that the webhook injects the "
            "gateway.",
            family=_FAMILY,
        ),
    ),
)
