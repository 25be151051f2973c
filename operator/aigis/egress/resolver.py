"""Resolving declared hosts to addresses, for the NetworkPolicies that cannot name hosts.

The resolver is injectable: `SystemResolver` asks the operating system (the cluster DNS when
aigis runs in a pod); `StaticResolver` reads a hosts file, for air-gapped clusters and for tests,
which must never look up real names. `AddressBook` shares one answer among all workloads that
declare the same host and applies the keep/grace rules of `aigis.egress.addresses`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from aigis.egress.addresses import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MIN_TTL_SECONDS,
    HostAddresses,
    merge_answer,
    record_failure,
)

RETRY_AFTER_FAILURE_SECONDS = 10.0


class ResolveError(Exception):
    """A host could not be resolved; the message says why."""


@dataclass(frozen=True, slots=True)
class Answer:
    addresses: tuple[str, ...]
    ttl: float


class Resolver(Protocol):
    async def resolve(self, host: str) -> Answer: ...


class SystemResolver:
    """The operating system's resolver. It reports no TTL, so a fixed one is assumed."""

    def __init__(self, assumed_ttl: float = DEFAULT_MIN_TTL_SECONDS) -> None:
        self._ttl = assumed_ttl

    async def resolve(self, host: str) -> Answer:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ResolveError(f"{host}: {exc}") from exc
        return Answer(tuple(sorted({str(info[4][0]) for info in infos})), self._ttl)


class StaticResolver:
    """Answers from a YAML file: `host: [address, ...]` or `host: {addresses: [...], ttl: N}`.

    The file is read again whenever it changes, so the answers can be edited while aigis runs.
    """

    def __init__(self, path: Path, default_ttl: float = DEFAULT_MIN_TTL_SECONDS) -> None:
        self._path = path
        self._default_ttl = default_ttl
        self._stamp: tuple[int, int] | None = None
        self._table: dict[str, Answer] = {}

    def _load(self) -> Mapping[str, Answer]:
        try:
            stat = os.stat(self._path)
        except OSError as exc:
            raise ResolveError(f"static hosts file {self._path}: {exc.strerror}") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._table = parse_static_hosts(self._path.read_text(), self._default_ttl)
            self._stamp = stamp
        return self._table

    async def resolve(self, host: str) -> Answer:
        answer = self._load().get(host.lower().rstrip("."))
        if answer is None:
            raise ResolveError(f"{host} is not in the static hosts file {self._path}")
        return answer


def parse_static_hosts(text: str, default_ttl: float) -> dict[str, Answer]:
    """The static hosts file's table; a malformed file is an error naming the entry."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ResolveError("static hosts file: expected a mapping of host to addresses")
    table: dict[str, Answer] = {}
    for host, value in data.items():
        ttl = default_ttl
        if isinstance(value, dict):
            raw_ttl = value.get("ttl", default_ttl)
            if not isinstance(raw_ttl, int | float) or raw_ttl < 0:
                raise ResolveError(f"static hosts file: {host}: ttl must be a number of seconds")
            ttl = float(raw_ttl)
            value = value.get("addresses")
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise ResolveError(f"static hosts file: {host}: expected a list of addresses")
        table[str(host).lower().rstrip(".")] = Answer(tuple(value), ttl)
    return table


class AddressBook:
    """The addresses currently allowed for every declared host, refreshed as they expire."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        clock: Callable[[], float],
        min_ttl: float = DEFAULT_MIN_TTL_SECONDS,
        grace: float = DEFAULT_GRACE_SECONDS,
        concurrency: int = 16,
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._min_ttl = min_ttl
        self._grace = grace
        self._entries: dict[str, HostAddresses] = {}
        self._inflight: dict[str, asyncio.Task[HostAddresses]] = {}
        self._limit = asyncio.Semaphore(concurrency)

    async def lookup(self, hosts: Iterable[str]) -> dict[str, HostAddresses]:
        """Current entries for `hosts`, resolving those due; concurrent callers share a look-up."""
        wanted = sorted({h for h in hosts if not h.startswith("*.")})
        now = self._clock()
        due = [h for h in wanted if h not in self._entries or self._entries[h].refresh_at <= now]
        if due:
            await asyncio.gather(*(self._refresh(h) for h in due))
        return {h: self._entries[h] for h in wanted}

    def _refresh(self, host: str) -> asyncio.Task[HostAddresses]:
        task = self._inflight.get(host)
        if task is None:
            task = asyncio.ensure_future(self._resolve(host))
            self._inflight[host] = task
            task.add_done_callback(lambda _: self._inflight.pop(host, None))
        return task

    async def _resolve(self, host: str) -> HostAddresses:
        async with self._limit:
            previous = self._entries.get(host)
            try:
                answer = await self._resolver.resolve(host)
            except ResolveError as exc:
                entry = record_failure(
                    previous, str(exc), now=self._clock(), retry_after=RETRY_AFTER_FAILURE_SECONDS
                )
            else:
                entry = merge_answer(
                    previous,
                    answer.addresses,
                    ttl=answer.ttl,
                    now=self._clock(),
                    min_ttl=self._min_ttl,
                    grace=self._grace,
                )
            self._entries[host] = entry
            return entry
