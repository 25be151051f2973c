"""The values the guardrails engine hands back: findings, scan results, stream steps, errors.

Plain frozen dataclasses so the gateway, the audit log and `aigis guard` can pass them around,
compare them and serialise them without knowing how a detector works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Direction = Literal["request", "response"]
"""Which way the text travels: to the model (prompts, tool results) or back (answers)."""

PROMPT_INJECTION: Final = "prompt_injection"
PII: Final = "pii"
SECRETS: Final = "secrets"
DENY_PATTERN: Final = "deny_pattern"

INJECTION_TYPE: Final = "INJECTION"
"""The finding type of a prompt-injection verdict (it covers the whole scanned text)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a guardrail found, where it is, and what the workload asked to do about it."""

    guardrail: str
    """"prompt_injection", "pii", "secrets" or "deny_pattern"."""
    type: str
    """What was found: "EMAIL", "AWS_ACCESS_KEY", a deny pattern's name, "INJECTION", ..."""
    start: int
    """Character offset of the first character in the scanned text."""
    end: int
    """Character offset just past the last character."""
    action: str
    """"Block", "Redact" or "Log": the action the workload configured for this guardrail."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdict on one text."""

    findings: tuple[Finding, ...]
    blocked: bool
    """True when any finding's action is Block: block wins over redact."""
    redacted: str
    """The text with every Redact (and Block) finding replaced by a token such as `<EMAIL_1>`;
    identical to the input when nothing was replaced. Log findings stay as they are."""
    injection_score: float
    """0..1; 0.0 when the detector is off or does not apply to this direction."""
    injection_signals: tuple[str, ...] = ()
    """Names of the prompt-injection signals that fired (no text: safe for logs and metrics)."""
    log_safe: str = ""
    """The text with every PII, secret and deny-pattern finding replaced, whatever its action:
    what an audit log may keep. Identical to `redacted` when there are no Log findings."""


@dataclass(frozen=True, slots=True)
class StreamStep:
    """What a stream scanner lets through after one chunk (or at the end)."""

    release: str
    """Text now safe to pass on, already redacted."""
    blocked: bool
    """True once any Block finding was seen; nothing more is released after that."""
    findings: tuple[Finding, ...]
    """Findings in the text released (or refused) by this step, offsets in the whole stream."""
    injection_score: float = 0.0
    """Highest prompt-injection score seen so far (request streams only)."""


class GuardrailError(Exception):
    """A detector failed. The gateway applies the workload's failureMode (FailClosed/FailOpen)."""
