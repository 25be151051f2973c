"""What the gateway records about one request while it is being served.

Filled in by the shell step by step (route, model, decision, inspections, timings) and turned
into one audit line and a few metric updates when the request ends, whether it was forwarded,
refused or failed. Plain data, shared by the LLM routes and the egress proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aigis.gateway.config import WireFormat
from aigis.gateway.inspection import Inspection
from aigis.gateway.providers import TokenUsage


@dataclass(slots=True)
class Exchange:
    """One request's record, completed as the request goes."""

    route: str
    method: str
    started: float
    wire_format: WireFormat = "openai"
    model: str | None = None
    provider: str | None = None
    stream: bool = False
    status: int = 200
    decision: str = "allowed"
    """allowed, redacted, blocked, refused, invalid, error or audited."""
    reason: str | None = None
    audited: list[str] = field(default_factory=list)
    """Reasons Audit mode let through that Enforce would have refused."""
    request: Inspection | None = None
    response: Inspection | None = None
    upstream_seconds: float = 0.0
    usage: TokenUsage = field(default_factory=TokenUsage)
    prompt_sha256: str | None = None
    prompt_redacted: list[str] | None = None
    destination: str | None = None
    """host:port of plain egress (never a URL path or query)."""
    unscanned: list[str] = field(default_factory=list)
    """Request fields the guardrails could not read (token-id prompts), by path."""
    uninspected_llm: str | None = None
    """The provider of LLM traffic tunnelled past the guardrails (signed APIs the gateway
    cannot speak, such as bedrock), when plain egress carried some."""
