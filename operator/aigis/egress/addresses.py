"""Which IP addresses a declared host may be reached at, over time.

Plain NetworkPolicy has no host names, so aigis resolves each declared host and allows the
addresses it gets. DNS answers change (load balancers, CDNs), so each address is kept for its
TTL plus a grace period after it was last seen: a connection opened just before an answer
changed keeps working, and an address that is gone stops being allowed soon after. A failed
lookup never changes the set: egress is neither widened nor cut off by a resolver outage.

Pure: times are passed in (seconds on any monotonic scale); the resolver lives in the shell.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEFAULT_MIN_TTL_SECONDS = 30.0
DEFAULT_GRACE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class HostAddresses:
    """What aigis currently allows for one host."""

    keep_until: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Address -> time after which it is dropped unless a later answer lists it again."""
    refresh_at: float = 0.0
    """When the host should be looked up again."""
    last_error: str | None = None
    """Why the most recent look-up failed; None after a success."""

    @property
    def addresses(self) -> tuple[str, ...]:
        """The allowed addresses, sorted for stable output (IPv4 before IPv6)."""
        return tuple(sorted(self.keep_until, key=_address_sort_key))


def _address_sort_key(address: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(address)
    return (parsed.version, int(parsed))


def merge_answer(
    previous: HostAddresses | None,
    answer: Iterable[str],
    *,
    ttl: float,
    now: float,
    min_ttl: float = DEFAULT_MIN_TTL_SECONDS,
    grace: float = DEFAULT_GRACE_SECONDS,
) -> HostAddresses:
    """Fold a successful DNS answer into the allowed set.

    Addresses in the answer are (re)kept for max(ttl, min_ttl) + grace; earlier addresses stay
    until their own time runs out. Anything that is not an IP address is ignored, so a broken
    resolver cannot inject a CIDR or a name into a NetworkPolicy.
    """
    lifetime = max(ttl, min_ttl)
    kept = {
        address: until
        for address, until in (previous.keep_until if previous else {}).items()
        if until > now
    }
    for raw in answer:
        try:
            address = str(ipaddress.ip_address(raw))
        except ValueError:
            continue
        kept[address] = max(kept.get(address, 0.0), now + lifetime + grace)
    return HostAddresses(MappingProxyType(kept), refresh_at=now + lifetime, last_error=None)


def record_failure(
    previous: HostAddresses | None, error: str, *, now: float, retry_after: float
) -> HostAddresses:
    """Keep the last good set, expired addresses included, and retry soon."""
    kept = previous.keep_until if previous else MappingProxyType({})
    return HostAddresses(kept, refresh_at=now + retry_after, last_error=error)
