"""Name resolution for upstream connections, injectable so tests never touch real DNS.

In a pod the gateway uses aiohttp's default resolver (the system's, i.e. the cluster DNS). Tests
and benchmarks pass a `StaticResolver` that maps provider host names to loopback addresses, so
`api.openai.com` can be exercised end to end without a single packet leaving the machine. A
static resolver refuses names it does not know instead of falling back to DNS.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    """Resolves host names from a fixed table; unknown names fail like an NXDOMAIN."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = {host.lower().rstrip("."): address for host, address in table.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The table's address for `host` (an IP literal resolves to itself)."""
        address = self._table.get(host.lower().rstrip("."))
        if address is None:
            if _is_ip(host):
                address = host
            else:
                raise OSError(socket.EAI_NONAME, f"{host} is not in the static resolver's table")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


def _is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return True
    return False
