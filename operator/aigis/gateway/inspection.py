"""Running the guardrails over the texts of a request or response, and what comes of it.

The guardrail engine (`aigis.guardrails`) scans one text at a time; this module applies it to the
`TextSlot`s a wire format yields, writes redactions back, turns a detector failure into a block
or a recorded pass according to `failureMode`, and in Audit mode records what it would have done
without changing anything. It sees the engine only through the small protocols below, so tests
can hand it any pipeline that behaves like the real one.

Pure apart from calling the pipeline it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from aigis.api.aiworkload import FailureMode, Guardrails
from aigis.gateway.audit import Span, mask_spans
from aigis.gateway.providers import TextKind, TextSlot

if TYPE_CHECKING:
    from aigis.gateway.config import GatewayConfig

Direction = Literal["request", "response"]
GUARDRAIL_NAMES = ("prompt_injection", "pii", "secrets", "deny_pattern")
UNSCANNED = "[unscanned]"
"""What the audit log shows of a text a failed guardrail could not scan."""


class FindingLike(Protocol):
    """What the gateway reads of one guardrail finding (never the matched text)."""

    @property
    def guardrail(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class ScanResultLike(Protocol):
    """What the gateway reads of a scan of one whole text."""

    @property
    def findings(self) -> Sequence[FindingLike]: ...
    @property
    def blocked(self) -> bool: ...
    @property
    def redacted(self) -> str: ...
    @property
    def injection_score(self) -> float: ...


class StreamStepLike(Protocol):
    """What the gateway reads of one step of a streaming scan."""

    @property
    def release(self) -> str: ...
    @property
    def blocked(self) -> bool: ...
    @property
    def findings(self) -> Sequence[FindingLike]: ...


class StreamScannerLike(Protocol):
    """A scan over text that arrives in pieces; holds back what might still become a match."""

    def feed(self, chunk: str) -> StreamStepLike: ...
    def finish(self) -> StreamStepLike: ...


class PipelineLike(Protocol):
    """A compiled set of guardrails (`aigis.guardrails.GuardrailPipeline`)."""

    def scan(self, text: str, *, direction: Direction) -> ScanResultLike: ...
    def stream(self, *, direction: Direction) -> StreamScannerLike: ...


PipelineFactory = Callable[["GatewayConfig"], PipelineLike]
"""Compiles a workload's guardrails for its configuration (the guardrails, the data regions whose
phone formats count, the classifier it mounts); the real one is
`aigis.gateway.state.default_pipeline_factory`."""


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One finding as the audit log and metrics keep it: where and what kind, never the text."""

    guardrail: str
    type: str
    action: str
    direction: Direction
    kind: TextKind


@dataclass(slots=True)
class Inspection:
    """The outcome of scanning the texts of one request or response (or one stream)."""

    direction: Direction
    findings: list[FindingRecord] = field(default_factory=list)
    blocked_by: str | None = None
    """The guardrail that blocked (or would have, in Audit mode); None when nothing did."""
    blocked_kind: TextKind | None = None
    """Which kind of text it was found in (message, tool_result, ...)."""
    redacted: bool = False
    """Whether any text was rewritten."""
    guardrail_error: str | None = None
    """Why a guardrail failed, when one did (the failure mode decides what followed)."""
    injection_score: float = 0.0
    """The highest prompt-injection score seen."""
    scanned_texts: int = 0
    masked_texts: list[str] = field(default_factory=list)
    """With `mask`: each text with every finding masked (for `promptLogging: Redacted`)."""

    def record(self, findings: Iterable[FindingLike], kind: TextKind) -> None:
        """Keep the findings of one scan step."""
        for finding in findings:
            self.findings.append(
                FindingRecord(finding.guardrail, finding.type, finding.action, self.direction, kind)
            )

    def note_block(self, findings: Sequence[FindingLike], kind: TextKind) -> None:
        """Remember the first block and which guardrail caused it."""
        if self.blocked_by is not None:
            return
        blocking = [f for f in findings if f.action == "Block"]
        self.blocked_by = (blocking or list(findings) or [_UNKNOWN])[0].guardrail
        self.blocked_kind = kind


class _UnknownFinding:
    guardrail = "guardrail"
    type = "unknown"
    action = "Block"
    start = 0
    end = 0


_UNKNOWN = _UnknownFinding()


def inspect_slots(
    pipeline: PipelineLike,
    slots: Sequence[TextSlot],
    direction: Direction,
    *,
    failure_mode: FailureMode,
    enforce: bool,
    mask: bool = False,
) -> Inspection:
    """Scan every slot; redact in place (when enforcing) and stop at the first block.

    In Audit mode (`enforce` False) every slot is scanned and nothing is rewritten, so the record
    shows everything the guardrails would have done. A detector failure blocks under FailClosed
    and is recorded under FailOpen, where the text passes unscanned. With `mask`, a copy of each
    text with every finding masked is kept for the audit log (an unscanned text is withheld).
    """
    inspection = Inspection(direction)
    for slot in slots:
        inspection.scanned_texts += 1
        try:
            result = pipeline.scan(slot.text, direction=direction)
        except Exception as exc:  # any detector failure is a guardrail failure
            inspection.guardrail_error = f"{type(exc).__name__}: {exc}"[:200]
            if mask:
                inspection.masked_texts.append(UNSCANNED)
            if failure_mode == "FailClosed":
                inspection.blocked_by = "guardrail_error"
                inspection.blocked_kind = slot.kind
                if enforce:
                    return inspection
            continue
        if result.injection_score > inspection.injection_score:
            inspection.injection_score = result.injection_score
        if result.findings:
            inspection.record(result.findings, slot.kind)
        if mask:
            # The engine's own log-safe copy when it offers one; else mask every finding here.
            log_safe = getattr(result, "log_safe", "")
            spans = [Span(f.start, f.end, f.type.upper()) for f in result.findings]
            inspection.masked_texts.append(log_safe or mask_spans(slot.text, spans))
        if result.blocked:
            inspection.note_block(result.findings, slot.kind)
            if enforce:
                return inspection
            continue
        if result.redacted != slot.text:
            inspection.redacted = True
            if enforce:
                slot.replace(result.redacted)
    return inspection


def guardrails_acting_on_requests(guardrails: Guardrails) -> list[str]:
    """The guardrails that would stop or rewrite a request (action Block or Redact).

    Text the gateway cannot read (token ids, signed provider traffic it cannot speak) escapes
    exactly these, so it is refused under Enforce when any is on; `Log`-only guardrails lose a
    record, not a protection.
    """
    acting = ("Block", "Redact")
    names: list[str] = []
    injection = guardrails.prompt_injection
    if injection.enabled and injection.action == "Block":
        names.append("prompt_injection")
    if guardrails.pii.enabled and guardrails.pii.action in acting:
        names.append("pii")
    if guardrails.secrets.enabled and guardrails.secrets.action in acting:
        names.append("secrets")
    if any(
        deny.applies_to in ("Request", "Both") and deny.action in acting
        for deny in guardrails.deny_patterns
    ):
        names.append("deny_pattern")
    return names


def guardrail_decisions(inspection: Inspection, guardrails: Guardrails) -> dict[str, str]:
    """Per guardrail, what happened: off, pass, log, redact, block, or error."""
    enabled = {
        "prompt_injection": guardrails.prompt_injection.enabled,
        "pii": guardrails.pii.enabled,
        "secrets": guardrails.secrets.enabled,
        "deny_pattern": bool(guardrails.deny_patterns),
    }
    rank = {"pass": 0, "log": 1, "redact": 2, "block": 3}
    decisions = {name: "pass" if on else "off" for name, on in enabled.items()}
    for finding in inspection.findings:
        current = decisions.get(finding.guardrail, "pass")
        action = finding.action.lower()
        if action in rank and rank[action] > rank.get(current, 0):
            decisions[finding.guardrail] = action
    if inspection.blocked_by in decisions:
        decisions[inspection.blocked_by] = "block"
    if inspection.guardrail_error is not None:
        for name, decision in decisions.items():
            if decision == "pass":
                decisions[name] = "error"
    return decisions
