"""Rate limiting: a token bucket per workload.

`spec.guardrails.limits.requestsPerMinute` is a sustained rate with a burst of the same size: a
quiet app may send a minute's worth at once, then one request per 60/rpm seconds. Each gateway
sidecar enforces it for its own pod (sidecars do not coordinate), so a Deployment with N replicas
can reach N times the rate in total.

Pure: the caller passes the time (any monotonic clock, in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """Tokens refill at `per_minute / 60` per second up to `per_minute`; a request takes one."""

    per_minute: int
    tokens: float
    updated: float

    @classmethod
    def full(cls, per_minute: int, now: float) -> TokenBucket:
        """A bucket that starts with a whole burst available."""
        return cls(per_minute, float(per_minute), now)

    def take(self, now: float) -> float:
        """Take a token; 0.0 when granted, else the seconds until one is available."""
        rate = self.per_minute / 60.0
        if now > self.updated:
            self.tokens = min(float(self.per_minute), self.tokens + (now - self.updated) * rate)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate
