"""A small stand-in for the guardrails engine, with the same interface as `aigis.guardrails`.

The gateway tests run against the real engine when it is importable; this fake exists so the
gateway can be tested on its own (and so a test can make a detector fail on demand: the text
`EXPLODE-GUARDRAIL` raises). It knows e-mail addresses (PII), `sk-` keys (secrets), one
injection phrase, and the workload's deny patterns; redactions look like `<EMAIL_1>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import re2

from aigis.api.aiworkload import Guardrails
from aigis.gateway.config import GatewayConfig

FAILURE_TRIGGER = "EXPLODE-GUARDRAIL"
_HOLD_BACK = 48


class FakeGuardrailError(Exception):
    """A detector failed."""


@dataclass(frozen=True, slots=True)
class FakeFinding:
    guardrail: str
    type: str
    start: int
    end: int
    action: str


@dataclass(frozen=True, slots=True)
class FakeScanResult:
    findings: tuple[FakeFinding, ...]
    blocked: bool
    redacted: str
    injection_score: float


@dataclass(frozen=True, slots=True)
class FakeStreamStep:
    release: str
    blocked: bool
    findings: tuple[FakeFinding, ...]


class FakePipeline:
    """Compiled once per spec, like the real `GuardrailPipeline`."""

    def __init__(self, spec: Guardrails) -> None:
        self.spec = spec
        self._email = re2.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
        self._secret = re2.compile(r"sk-[A-Za-z0-9_-]{20,}")
        self._injection = re2.compile(r"(?i)ignore (all )?(previous|prior) instructions")
        self._deny = [(d, re2.compile(d.pattern)) for d in spec.deny_patterns]

    @classmethod
    def from_spec(cls, spec: Guardrails) -> FakePipeline:
        return cls(spec)

    def _findings(self, text: str, direction: str) -> tuple[list[FakeFinding], float]:
        if FAILURE_TRIGGER in text:
            raise FakeGuardrailError("detector crashed on purpose")
        spec = self.spec
        found: list[FakeFinding] = []
        score = 0.0
        if spec.pii.enabled and "EMAIL" in spec.pii.entities:
            found += [
                FakeFinding("pii", "EMAIL", m.start(), m.end(), spec.pii.action)
                for m in self._email.finditer(text)
            ]
        if spec.secrets.enabled:
            found += [
                FakeFinding("secrets", "API_KEY", m.start(), m.end(), spec.secrets.action)
                for m in self._secret.finditer(text)
            ]
        injection_on = direction == "request" and spec.prompt_injection.enabled
        if injection_on and self._injection.search(text):
            score = 0.95
            if score >= spec.prompt_injection.threshold:
                action = spec.prompt_injection.action
                found.append(FakeFinding("prompt_injection", "INJECTION", 0, len(text), action))
        for deny, pattern in self._deny:
            wanted = {"request": ("Request", "Both"), "response": ("Response", "Both")}[direction]
            if deny.applies_to in wanted:
                found += [
                    FakeFinding("deny_pattern", deny.name, m.start(), m.end(), deny.action)
                    for m in pattern.finditer(text)
                ]
        return found, score

    def scan(self, text: str, *, direction: str) -> FakeScanResult:
        findings, score = self._findings(text, direction)
        blocked = any(f.action == "Block" for f in findings)
        return FakeScanResult(tuple(findings), blocked, _redact(text, findings), score)

    def stream(self, *, direction: str) -> FakeStreamScanner:
        return FakeStreamScanner(self, direction)


def _redact(text: str, findings: list[FakeFinding]) -> str:
    spans = sorted(
        (
            f
            for f in findings
            if f.action in ("Redact", "Block") and f.guardrail != "prompt_injection"
        ),
        key=lambda f: f.start,
    )
    out, cursor, counts = [], 0, {}
    for finding in spans:
        if finding.start < cursor:
            continue
        counts[finding.type] = counts.get(finding.type, 0) + 1
        out.append(text[cursor : finding.start])
        out.append(f"<{finding.type}_{counts[finding.type]}>")
        cursor = finding.end
    out.append(text[cursor:])
    return "".join(out)


class FakeStreamScanner:
    """Holds back the last few characters so a match split across chunks is still caught."""

    def __init__(self, pipeline: FakePipeline, direction: str) -> None:
        self._pipeline = pipeline
        self._direction = direction
        self._pending = ""
        self._blocked = False

    def feed(self, chunk: str) -> FakeStreamStep:
        if self._blocked:
            return FakeStreamStep("", True, ())
        self._pending += chunk
        findings, _ = self._pipeline._findings(self._pending, self._direction)
        if any(f.action == "Block" for f in findings):
            self._blocked = True
            return FakeStreamStep("", True, tuple(findings))
        cut = max(0, len(self._pending) - _HOLD_BACK)
        for finding in findings:
            if finding.start < cut < finding.end or finding.end >= cut:
                cut = min(cut, finding.start)
        done = [f for f in findings if f.end <= cut]
        release = _redact(self._pending[:cut], done)
        self._pending = self._pending[cut:]
        return FakeStreamStep(release, False, tuple(done))

    def finish(self) -> FakeStreamStep:
        if self._blocked:
            return FakeStreamStep("", True, ())
        findings, _ = self._pipeline._findings(self._pending, self._direction)
        if any(f.action == "Block" for f in findings):
            self._blocked = True
            return FakeStreamStep("", True, tuple(findings))
        release = _redact(self._pending, findings)
        self._pending = ""
        return FakeStreamStep(release, False, tuple(findings))


class RecordingPipeline:
    """A `FakePipeline` that remembers every request text it was asked to scan (for fuzzing)."""

    def __init__(self, inner: FakePipeline, scanned: list[str]) -> None:
        self._inner = inner
        self.scanned = scanned

    def scan(self, text: str, *, direction: str) -> FakeScanResult:
        if direction == "request":
            self.scanned.append(text)
        return self._inner.scan(text, direction=direction)

    def stream(self, *, direction: str) -> FakeStreamScanner:
        return self._inner.stream(direction=direction)


def recording_factory(scanned: list[str]) -> Callable[[GatewayConfig], RecordingPipeline]:
    """A pipeline factory whose pipelines append each scanned request text to `scanned`."""

    def factory(config: GatewayConfig) -> RecordingPipeline:
        return RecordingPipeline(FakePipeline(config.guardrails), scanned)

    return factory
