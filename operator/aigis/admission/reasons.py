"""Why an admission check refused a workload: a value with the rule, the field and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    """One refusal by one admission rule, for one field of the admitted object.

    `rule` is a stable identifier (`pod-security/privileged`) that exemptions, metrics and reports
    key on, so it never changes once released. `path` points into the object as the user wrote it
    (`spec.template.spec.containers[0].securityContext.privileged`), not into the pod the API
    server will later create, so the user can find the field in their own manifest. `message` says
    what is wrong and `fix` what to change, both in words a user can act on without reading aigis.
    """

    rule: str
    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}; {self.fix}"
