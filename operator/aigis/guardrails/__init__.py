"""The guardrails engine: prompt-injection, personal-data, credential and deny-pattern checks on
the text an AI workload sends and receives.

Owns the pure scanning pipeline that the gateway sidecar runs on every prompt, tool result and
answer (streamed or not), and that `aigis guard` runs offline, so both reach the same verdict.
It must not do I/O, read the clock or the environment, or import the gateway, the operator or
the webhook: those call it.

    pipeline = GuardrailPipeline.from_spec(workload.spec.guardrails)   # compile once
    result = pipeline.scan(prompt, direction="request")                # per message
    if result.blocked: ...                                             # else send result.redacted
"""

from aigis.guardrails.findings import (
    Direction,
    Finding,
    GuardrailError,
    ScanResult,
    StreamStep,
)
from aigis.guardrails.injection import (
    InjectionAssessment,
    InjectionClassifier,
    InjectionDetector,
)
from aigis.guardrails.pipeline import GuardrailPipeline
from aigis.guardrails.streaming import StreamScanner

__all__ = [
    "Direction",
    "Finding",
    "GuardrailError",
    "GuardrailPipeline",
    "InjectionAssessment",
    "InjectionClassifier",
    "InjectionDetector",
    "ScanResult",
    "StreamScanner",
    "StreamStep",
]
