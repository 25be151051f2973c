"""Matching host names against declared hosts (exact or one-level `*.` wildcard).

The one definition of what `*.example.com` means in aigis, shared by the compliance check, the
gateway's allowlist and the Cilium policy: exactly one more label in front of the suffix, as in
Cilium's `matchPattern`, so `*.example.com` covers `api.example.com` but neither `example.com`
nor `a.b.example.com`.
"""

from __future__ import annotations


def normalise_host(host: str) -> str:
    """Lowercase, without a trailing dot: the form every comparison uses."""
    return host.strip().rstrip(".").lower()


def host_matches(pattern: str, host: str) -> bool:
    """Whether `host` is the declared `pattern` or one label below its wildcard."""
    pattern, host = normalise_host(pattern), normalise_host(host)
    if not pattern.startswith("*."):
        return host == pattern
    suffix = pattern[1:]  # ".example.com"
    head = host[: -len(suffix)] if host.endswith(suffix) else ""
    return bool(head) and "." not in head and head != "*"


def pattern_covers(outer: str, inner: str) -> bool:
    """Whether every host matched by `inner` is matched by `outer` (for allowlists of patterns)."""
    outer, inner = normalise_host(outer), normalise_host(inner)
    if inner.startswith("*."):
        return outer == inner
    return host_matches(outer, inner)
