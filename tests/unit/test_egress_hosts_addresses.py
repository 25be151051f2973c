"""Host matching and the address set kept for each declared host."""

from __future__ import annotations

import pytest

from aigis.egress.addresses import HostAddresses, merge_answer, record_failure
from aigis.egress.hosts import host_matches, pattern_covers


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        pytest.param("api.openai.com", "api.openai.com", True, id="exact"),
        pytest.param("api.openai.com", "API.OpenAI.com.", True, id="case-and-trailing-dot"),
        pytest.param("api.openai.com", "eu.api.openai.com", False, id="exact-is-not-a-suffix"),
        pytest.param("*.example.com", "api.example.com", True, id="wildcard-one-label"),
        pytest.param("*.example.com", "example.com", False, id="wildcard-not-the-apex"),
        pytest.param("*.example.com", "a.b.example.com", False, id="wildcard-one-level-only"),
        pytest.param("*.example.com", "evilexample.com", False, id="wildcard-label-boundary"),
        pytest.param("*.example.com", "api.example.com.evil.net", False, id="wildcard-suffix"),
    ],
)
def test_host_matches(pattern: str, host: str, expected: bool) -> None:
    assert host_matches(pattern, host) is expected


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        pytest.param("*.example.com", "api.example.com", True, id="wildcard-covers-host"),
        pytest.param("*.example.com", "*.example.com", True, id="same-wildcard"),
        pytest.param("api.example.com", "*.example.com", False, id="host-does-not-cover-wildcard"),
        pytest.param("*.example.com", "*.a.example.com", False, id="deeper-wildcard-not-covered"),
    ],
)
def test_pattern_covers(outer: str, inner: str, expected: bool) -> None:
    assert pattern_covers(outer, inner) is expected


def test_answer_keeps_addresses_for_ttl_plus_grace() -> None:
    first = merge_answer(None, ["192.0.2.1"], ttl=60, now=0, grace=300)
    assert first.addresses == ("192.0.2.1",)
    assert first.refresh_at == 60
    # The answer changes: the old address stays through the grace period, then goes.
    second = merge_answer(first, ["192.0.2.2"], ttl=60, now=100, grace=300)
    assert second.addresses == ("192.0.2.1", "192.0.2.2")
    third = merge_answer(second, ["192.0.2.2"], ttl=60, now=361, grace=300)
    assert third.addresses == ("192.0.2.2",)


def test_short_ttls_are_raised_to_the_minimum() -> None:
    result = merge_answer(None, ["192.0.2.1"], ttl=1, now=0, min_ttl=30, grace=0)
    assert result.refresh_at == 30
    assert result.keep_until["192.0.2.1"] == 30


def test_non_addresses_in_an_answer_are_ignored() -> None:
    result = merge_answer(
        None, ["192.0.2.1", "0.0.0.0/0", "evil.example", "2001:db8::1"], ttl=60, now=0
    )
    assert result.addresses == ("192.0.2.1", "2001:db8::1")


def test_failure_keeps_the_last_good_set_even_when_expired() -> None:
    good = merge_answer(None, ["192.0.2.1"], ttl=60, now=0, grace=0)
    failed = record_failure(good, "SERVFAIL", now=1000, retry_after=10)
    assert failed.addresses == ("192.0.2.1",)
    assert failed.last_error == "SERVFAIL"
    assert failed.refresh_at == 1010
    assert record_failure(None, "timeout", now=0, retry_after=5).addresses == ()


def test_success_after_failure_clears_the_error() -> None:
    failed = record_failure(HostAddresses(), "timeout", now=0, retry_after=5)
    assert merge_answer(failed, ["192.0.2.9"], ttl=60, now=5).last_error is None
