"""PII recognisers: each entity found where it is real, left alone where it only looks real."""

from __future__ import annotations

import pytest

from aigis.api.aiworkload import Guardrails
from aigis.guardrails import GuardrailPipeline
from aigis.guardrails.patterns import RecognizerSet
from aigis.guardrails.pii import (
    DEFAULT_PHONE_REGIONS,
    credit_card_valid,
    iban_span,
    luhn_valid,
    national_phone_check,
    phone_regions,
    pii_recognizers,
    us_ssn_valid,
)

PII_ONLY = GuardrailPipeline.from_spec(
    Guardrails.model_validate(
        {"promptInjection": {"enabled": False}, "secrets": {"enabled": False}}
    )
)


def found(text: str) -> list[tuple[str, str]]:
    """What the PII guardrail reports (overlapping candidates merged, as the gateway sees it)."""
    findings = PII_ONLY.scan(text, direction="response").findings
    return sorted((f.type, text[f.start : f.end]) for f in findings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "write to jane.doe+news@mail.example.co.uk today",
            [("EMAIL", "jane.doe+news@mail.example.co.uk")],
            id="email-subdomains-and-plus",
        ),
        pytest.param(
            "reach me: +49 30 1234567.",
            [("PHONE", "+49 30 1234567")],
            id="phone-international-spaces",
        ),
        pytest.param(
            "call 0044 20 7946 0958", [("PHONE", "0044 20 7946 0958")], id="phone-00-prefix"
        ),
        pytest.param(
            "office (415) 555-2671", [("PHONE", "(415) 555-2671")], id="phone-us-brackets"
        ),
        pytest.param("mobil 0171-1234567", [("PHONE", "0171-1234567")], id="phone-german-trunk"),
        pytest.param("tél 01.23.45.67.89", [("PHONE", "01.23.45.67.89")], id="phone-french-dotted"),
        pytest.param(
            "phone: 4155552671", [("PHONE", "4155552671")], id="phone-plain-digits-after-label"
        ),
        pytest.param(
            "card 4111 1111 1111 1111 exp 12/27",
            [("CREDIT_CARD", "4111 1111 1111 1111")],
            id="card-visa-grouped",
        ),
        pytest.param(
            "amex 3782-822463-10005", [("CREDIT_CARD", "3782-822463-10005")], id="card-amex-4-6-5"
        ),
        pytest.param(
            "pay with 5555555555554444",
            [("CREDIT_CARD", "5555555555554444")],
            id="card-mastercard-plain",
        ),
        pytest.param(
            "IBAN DE89 3704 0044 0532 0130 00 please",
            [("IBAN", "DE89 3704 0044 0532 0130 00")],
            id="iban-german-grouped",
        ),
        pytest.param(
            "to GB82WEST12345698765432.", [("IBAN", "GB82WEST12345698765432")], id="iban-uk-compact"
        ),
        pytest.param("ssn 078-05-1121 on file", [("US_SSN", "078-05-1121")], id="ssn-dashes"),
        pytest.param("SSN: 123456789", [("US_SSN", "123456789")], id="ssn-plain-after-label"),
        pytest.param("host 192.168.10.254 is down", [("IP_ADDRESS", "192.168.10.254")], id="ipv4"),
        pytest.param(
            "via 2001:db8::8a2e:370:7334 now",
            [("IP_ADDRESS", "2001:db8::8a2e:370:7334")],
            id="ipv6-compressed",
        ),
        pytest.param("loopback ::1 only", [("IP_ADDRESS", "::1")], id="ipv6-loopback"),
    ],
)
def test_real_values_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("the meeting is on 2024-03-15 at 10:30", id="iso-date-and-time"),
        pytest.param("born 01.02.1990 or 12/05/2024", id="european-and-us-dates"),
        pytest.param("order number 1234567890123 shipped", id="plain-long-number"),
        pytest.param("card 4111 1111 1111 1112", id="card-failing-luhn"),
        pytest.param("id 1234 5678 9012 3456", id="digits-grouped-like-card-not-a-brand"),
        pytest.param("IBAN DE89 3704 0044 0532 0130 01", id="iban-failing-mod-97"),
        pytest.param("ssn 000-12-3456 or 666-12-3456 or 912-12-3456", id="ssn-never-issued-areas"),
        pytest.param("ssn 123-00-4567 and 123-45-0000", id="ssn-zero-group-or-serial"),
        pytest.param("version 1.2.3.4.5 and 256.1.1.1 and 01.02.03.04", id="not-ipv4"),
        pytest.param("std::vector<int> a::b; at 12:30:45 MAC 00:1a:2b:3c:4d:5e", id="not-ipv6"),
        pytest.param("it costs 1,299.00 EUR, 3 x 45 = 135", id="prices-and-arithmetic"),
        pytest.param("user@localhost is not routable", id="email-without-domain"),
    ],
)
def test_look_alikes_are_not_found(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        pytest.param("4111111111111111", True, id="visa-test-number"),
        pytest.param("79927398713", True, id="textbook-example"),
        pytest.param("79927398710", False, id="wrong-check-digit"),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        pytest.param("4111-1111-1111-1111", True, id="consistent-dashes"),
        pytest.param("4111 1111-1111 1111", False, id="mixed-separators"),
        pytest.param("41 1111 1111 1111 11", False, id="not-grouped-like-a-card"),
        pytest.param("0000000000000000", False, id="all-zeros"),
    ],
)
def test_card_grouping(candidate: str, valid: bool) -> None:
    assert credit_card_valid(candidate) is valid


def test_iban_is_cut_at_its_registered_length() -> None:
    candidate = "DE89 3704 0044 0532 0130 00 12"
    assert iban_span(candidate) == (0, len("DE89 3704 0044 0532 0130 00"))


def test_iban_glued_to_more_characters_is_not_an_iban() -> None:
    assert iban_span("DE89370400440532013000X") is None


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        pytest.param("123-45-6789", True, id="ordinary"),
        pytest.param("899-45-6789", True, id="area-899-issued"),
        pytest.param("900-45-6789", False, id="area-9xx-itin-range"),
    ],
)
def test_ssn_ranges(candidate: str, valid: bool) -> None:
    assert us_ssn_valid(candidate) is valid


def test_only_listed_entities_are_recognised() -> None:
    emails_only = RecognizerSet(pii_recognizers(["EMAIL"]))
    text = "a@example.com 4111 1111 1111 1111 192.168.0.1"
    assert [s.recognizer.type for s in emails_only.find(text)] == ["EMAIL"]


def test_custom_patterns_are_recognised_under_their_name() -> None:
    recognizers = RecognizerSet(pii_recognizers([], [("CUSTOMER_ID", r"\bCUS-[0-9]{6}\b")]))
    spans = list(recognizers.find("ticket for CUS-004211 and CUS-12"))
    assert [(s.recognizer.type, s.start, s.end) for s in spans] == [("CUSTOMER_ID", 11, 21)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "call +44 20 7946 0958 ext. 123 now",
            [("PHONE", "+44 20 7946 0958 ext. 123")],
            id="phone-international-with-extension",
        ),
        pytest.param(
            "office (415) 555-2671 x55", [("PHONE", "(415) 555-2671 x55")], id="phone-nanp-ext"
        ),
        pytest.param("ring +442079460958", [("PHONE", "+442079460958")], id="phone-e164"),
        pytest.param(
            "Büro 030.1234.5678 anrufen", [("PHONE", "030.1234.5678")], id="phone-dotted-national"
        ),
        pytest.param("due 2024-05-02 and 2024.05.02", [], id="dates-are-no-phones"),
        pytest.param("invoice 12 345 678 90", [], id="grouped-invoice-number"),
    ],
)
def test_phone_formats(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("data_regions", "phone"),
    [
        pytest.param(["eu"], ("DE", "FR"), id="eu-means-member-states"),
        pytest.param(["us", "uk"], ("US", "GB"), id="aliases"),
        pytest.param(["jp"], ("JP",), id="two-letter-code"),
        pytest.param([], DEFAULT_PHONE_REGIONS, id="none-declared"),
    ],
)
def test_data_regions_choose_phone_regions(data_regions: list[str], phone: tuple[str, ...]) -> None:
    regions = phone_regions(data_regions)
    assert set(phone) <= set(regions)


def test_national_check_asks_the_numbering_plan() -> None:
    check = national_phone_check(("GB",))
    assert check("020 7946 0958") == (0, len("020 7946 0958"))
    assert check("010 1234 5678") is None  # the right shape, but no such area code
    assert national_phone_check(("DE",))("020 7946 0958") is None  # not a number in DE
