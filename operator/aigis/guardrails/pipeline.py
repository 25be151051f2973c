"""The guardrail pipeline: one workload's guardrails compiled once, applied to any text.

`GuardrailPipeline.from_spec` turns the `guardrails` section of an AIWorkload into compiled
detectors; `scan` applies them to one prompt, tool result or answer and says what was found,
whether to block, and what the text looks like redacted. The gateway sidecar calls it on every
request and response, `aigis guard` calls it offline, so both always agree.

Pure: no I/O, no clock, no environment; a pipeline is immutable and safe to share between
threads and requests. A disabled guardrail is not compiled and costs nothing per scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from aigis.api.aiworkload import Guardrails
from aigis.api.validation import pattern_problem
from aigis.guardrails.credentials import RECOGNIZERS as CREDENTIAL_RECOGNIZERS
from aigis.guardrails.findings import (
    DENY_PATTERN,
    INJECTION_TYPE,
    PII,
    PROMPT_INJECTION,
    SECRETS,
    Direction,
    Finding,
    GuardrailError,
    ScanResult,
)
from aigis.guardrails.injection import InjectionClassifier, InjectionDetector, default_detector
from aigis.guardrails.patterns import Recognizer, RecognizerSet, valid_unicode
from aigis.guardrails.pii import phone_regions, pii_recognizers
from aigis.guardrails.redaction import Region, TokenBook, redact
from aigis.guardrails.streaming import (
    DEFAULT_STREAM_HOLDBACK,
    DEFAULT_STREAM_MAX_HOLD,
    StreamScanner,
)

DIRECTIONS: tuple[Direction, ...] = ("request", "response")

# Which guardrail names a region when findings of several overlap: a credential inside an email
# address is still a credential. Added to each recogniser's own priority.
_GUARDRAIL_PRIORITY = {SECRETS: 3000, DENY_PATTERN: 2000, PII: 1000}
_REPLACED_ACTIONS = frozenset({"Redact", "Block"})


@dataclass(frozen=True, slots=True)
class _Hit:
    """A finding with the priority that decides overlaps in redaction."""

    finding: Finding
    priority: int


class _SpanGuard:
    """One span-finding guardrail (PII, secrets, or deny patterns) compiled for one direction."""

    __slots__ = ("_actions", "_guardrail", "_merge", "_recognizers")

    def __init__(
        self,
        guardrail: str,
        recognizers: Sequence[Recognizer],
        actions: Sequence[str],
        *,
        merge_overlaps: bool,
    ) -> None:
        self._guardrail = guardrail
        self._recognizers = RecognizerSet(recognizers)
        self._actions = dict(zip(recognizers, actions, strict=True))
        self._merge = merge_overlaps

    def hits(self, text: str) -> list[_Hit]:
        base = _GUARDRAIL_PRIORITY[self._guardrail]
        spans = sorted(self._recognizers.find(text), key=lambda s: (s.start, -s.end))
        hits: list[_Hit] = []
        for span in spans:
            finding = Finding(
                self._guardrail,
                span.recognizer.type,
                span.start,
                span.end,
                self._actions[span.recognizer],
            )
            hit = _Hit(finding, base + span.recognizer.priority)
            if hits and self._merge and span.start < hits[-1].finding.end:
                hits[-1] = _merge_hits(hits[-1], hit)
            elif not hits or hits[-1].finding != finding:
                hits.append(hit)
        return hits


def _merge_hits(first: _Hit, second: _Hit) -> _Hit:
    """Two overlapping values of one guardrail as one finding, named after the stronger."""
    winner = max(
        first,
        second,
        key=lambda h: (h.priority, h.finding.end - h.finding.start),
    )
    start = min(first.finding.start, second.finding.start)
    end = max(first.finding.end, second.finding.end)
    merged = Finding(
        winner.finding.guardrail, winner.finding.type, start, end, winner.finding.action
    )
    return _Hit(merged, winner.priority)


@dataclass(frozen=True, slots=True)
class _InjectionGuard:
    detector: InjectionDetector
    action: str
    threshold: float
    classifier: InjectionClassifier | None


class GuardrailPipeline:
    """A workload's guardrails, compiled. Build with `from_spec`; share freely."""

    __slots__ = ("_injection", "_span_guards", "holdback", "max_hold")

    def __init__(
        self,
        *,
        injection: _InjectionGuard | None,
        span_guards: dict[Direction, tuple[_SpanGuard, ...]],
        holdback: int = DEFAULT_STREAM_HOLDBACK,
        max_hold: int = DEFAULT_STREAM_MAX_HOLD,
    ) -> None:
        self._injection = injection
        self._span_guards = span_guards
        self.holdback = holdback
        self.max_hold = max_hold

    @classmethod
    def from_spec(
        cls,
        guardrails: Guardrails,
        *,
        classifier: InjectionClassifier | None = None,
        detector: InjectionDetector | None = None,
        data_regions: Sequence[str] = (),
        stream_holdback: int = DEFAULT_STREAM_HOLDBACK,
        stream_max_hold: int = DEFAULT_STREAM_MAX_HOLD,
    ) -> GuardrailPipeline:
        """Compile `guardrails` (validated by `aigis.api.validation`) into a pipeline.

        `classifier` adds an optional heavier prompt-injection model whose score is taken when
        it is higher than the signals' score. `data_regions` (the workload's `spec.dataRegions`)
        choose whose national phone formats are recognised. Raises `ValueError` naming the
        field when a pattern does not compile (a spec that passed validation never does).
        """
        if stream_holdback < 1 or stream_max_hold < stream_holdback:
            raise ValueError("stream_holdback must be >= 1 and stream_max_hold >= stream_holdback")
        injection = None
        guard = guardrails.prompt_injection
        if guard.enabled:
            injection = _InjectionGuard(
                detector or default_detector(), guard.action, guard.threshold, classifier
            )
        shared: list[_SpanGuard] = []
        if guardrails.pii.enabled:
            custom = [(p.name, p.pattern) for p in guardrails.pii.custom_patterns or []]
            _check_patterns(
                (f"pii.customPatterns[{i}].pattern", p) for i, (_, p) in enumerate(custom)
            )
            recognizers = pii_recognizers(
                guardrails.pii.entities, custom, phone_regions(data_regions)
            )
            shared.append(
                _SpanGuard(
                    PII,
                    recognizers,
                    [guardrails.pii.action] * len(recognizers),
                    merge_overlaps=True,
                )
            )
        if guardrails.secrets.enabled:
            shared.append(
                _SpanGuard(
                    SECRETS,
                    CREDENTIAL_RECOGNIZERS,
                    [guardrails.secrets.action] * len(CREDENTIAL_RECOGNIZERS),
                    merge_overlaps=True,
                )
            )
        _check_patterns(
            (f"denyPatterns[{i}].pattern", d.pattern)
            for i, d in enumerate(guardrails.deny_patterns)
        )
        span_guards: dict[Direction, tuple[_SpanGuard, ...]] = {}
        for direction in DIRECTIONS:
            wanted = "Request" if direction == "request" else "Response"
            denies = [d for d in guardrails.deny_patterns if d.applies_to in (wanted, "Both")]
            guards = list(shared)
            if denies:
                guards.append(
                    _SpanGuard(
                        DENY_PATTERN,
                        [Recognizer(d.name, d.pattern) for d in denies],
                        [d.action for d in denies],
                        merge_overlaps=False,
                    )
                )
            span_guards[direction] = tuple(guards)
        return cls(
            injection=injection,
            span_guards=span_guards,
            holdback=stream_holdback,
            max_hold=stream_max_hold,
        )

    @property
    def injection_applies(self) -> bool:
        """Whether prompt-injection detection is on (it applies to requests only)."""
        return self._injection is not None

    def scan(self, text: str, *, direction: Direction) -> ScanResult:
        """Everything the guardrails find in `text` travelling in `direction`, and the verdict.

        Raises `GuardrailError` when a detector fails (the gateway then applies failureMode),
        and `ValueError` for a direction that is neither "request" nor "response".
        """
        _check_direction(direction)
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        text = valid_unicode(text)
        try:
            hits = self.span_hits(text, direction)
            score, signals = self.injection_score(text, direction)
        except GuardrailError:
            raise
        except Exception as exc:  # a detector bug must reach the gateway as a guardrail failure
            raise GuardrailError(f"guardrail scan failed: {type(exc).__name__}: {exc}") from exc
        findings = [h.finding for h in hits]
        injection = self.injection_finding(score, 0, len(text))
        if injection is not None:
            findings.insert(0, injection)
        replaced = [h for h in hits if h.finding.action in _REPLACED_ACTIONS]
        book = TokenBook()
        redacted = redact(text, _regions(replaced), book)
        log_safe = redacted if len(replaced) == len(hits) else redact(text, _regions(hits), book)
        return ScanResult(
            findings=tuple(findings),
            blocked=any(f.action == "Block" for f in findings),
            redacted=redacted,
            injection_score=score,
            injection_signals=signals,
            log_safe=log_safe,
        )

    def stream(self, *, direction: Direction = "response") -> StreamScanner:
        """A scanner for text that arrives in chunks (streamed answers, streamed requests)."""
        _check_direction(direction)
        return StreamScanner(self, direction)

    # --- used by the stream scanner --------------------------------------------------------

    def span_hits(self, text: str, direction: Direction) -> list[_Hit]:
        """PII, secret and deny-pattern findings in `text`, sorted by position."""
        hits: list[_Hit] = []
        for guard in self._span_guards[direction]:
            hits.extend(guard.hits(text))
        hits.sort(key=lambda h: (h.finding.start, h.finding.end))
        return hits

    def injection_score(self, text: str, direction: Direction) -> tuple[float, tuple[str, ...]]:
        """The prompt-injection score of `text` and its signals; (0.0, ()) where it is off."""
        guard = self._injection
        if guard is None or direction != "request" or not text:
            return 0.0, ()
        assessment = guard.detector.assess(text)
        score = assessment.score
        signals = assessment.signals
        if guard.classifier is not None:
            try:
                model_score = float(guard.classifier.score(text))
            except Exception as exc:  # the classifier is third-party code
                raise GuardrailError(
                    f"prompt-injection classifier {guard.classifier.name!r} failed: {exc}"
                ) from exc
            if math.isnan(model_score) or not 0.0 <= model_score <= 1.0:
                raise GuardrailError(
                    f"prompt-injection classifier {guard.classifier.name!r} returned "
                    f"{model_score!r}, not a probability between 0 and 1"
                )
            if model_score > score:
                score = model_score
                signals = (*signals, f"classifier:{guard.classifier.name}")
        return score, signals

    def injection_finding(self, score: float, start: int, end: int) -> Finding | None:
        """The INJECTION finding for `score`, or None below the workload's threshold.

        A text without any evidence (score 0) is never flagged, even with threshold 0.
        """
        guard = self._injection
        if guard is None or score <= 0.0 or score < guard.threshold:
            return None
        return Finding(PROMPT_INJECTION, INJECTION_TYPE, start, end, guard.action)


def _regions(hits: Iterable[_Hit]) -> list[Region]:
    return [Region(h.finding.start, h.finding.end, h.finding.type, h.priority) for h in hits]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f'direction must be "request" or "response", not {direction!r}')


def _check_patterns(patterns: Iterable[tuple[str, str]]) -> None:
    for path, pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            raise ValueError(f"guardrails.{path}: {problem}")
        try:
            RecognizerSet([Recognizer("check", pattern)])
        except re2.error as exc:
            raise ValueError(f"guardrails.{path}: RE2 cannot compile it: {exc}") from exc
