"""Per-type precision, recall and F2 of the PII recognisers on a generated corpus (`make bench`).

The corpus is built here, deterministically: phone numbers are `phonenumbers`' example numbers
of 40 regions written in its international, national and E.164 formats (some with an
extension), in sentences; e-mails, Luhn-valid cards, IBANs, SSNs and IP addresses likewise; and
numbers that are not personal data (dates, times, versions, order and invoice numbers, ISBNs,
prices). A finding counts when its type and span match exactly. The corpus was written
alongside the recognisers, so the figures are in-sample: a check of known formats, not a
measure on unseen text.

Run: `uv run --frozen python bench/guardrails_pii.py` (seconds).
"""

from __future__ import annotations

import random
from collections import Counter

import phonenumbers

from aigis.api.aiworkload import Guardrails
from aigis.guardrails import GuardrailPipeline
from aigis.guardrails.pii import phone_regions

REGIONS = (
    "US",
    "GB",
    "DE",
    "FR",
    "IT",
    "ES",
    "NL",
    "BE",
    "AT",
    "CH",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "PT",
    "IE",
    "CZ",
    "GR",
    "HU",
    "RO",
    "CA",
    "AU",
    "NZ",
    "JP",
    "KR",
    "IN",
    "SG",
    "BR",
    "MX",
    "AR",
    "ZA",
    "IL",
    "TR",
    "AE",
    "CN",
    "HK",
    "TW",
    "PH",
    "ID",
)
FORMATS = (
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.NATIONAL,
)
TEMPLATES = (
    "Please call me on {} tomorrow.",
    "My number is {}, thanks.",
    "Contact: {}",
    "You can reach the office at {} during the day.",
)
NEGATIVES = (
    "The meeting is on 2024-05-02 at 14:30.",
    "Upgrade to version 3.12.4 before Friday.",
    "Order 48213 shipped, invoice 2024-00017.",
    "ISBN 978-3-16-148410-0 is out of print.",
    "The total was 1,234,567.89 EUR.",
    "Ticket #5512 was closed on 12/03/2023.",
    "Build 20240502.1 passed all 1532 tests.",
    "Coordinates 48.8566, 2.3522 mark the spot.",
    "Serial number SN-4402-8812-1190 is under warranty.",
    "Call the function with 10 20 30 40 50 as arguments.",
)


def luhn_complete(prefix: str, rng: random.Random, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        digits = body + check
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def corpus(seed: int = 7) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, [(type, value)]) pairs."""
    rng = random.Random(seed)
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for style in FORMATS:
                written = phonenumbers.format_number(number, style)
                if style == FORMATS[0] and rng.random() < 0.3:
                    written += f" ext. {rng.randint(10, 999)}"
                rows.append((rng.choice(TEMPLATES).format(written), [("PHONE", written)]))
    for i in range(60):
        email = f"user{i}.{rng.choice(['smith', 'keller', 'rossi'])}@example{i % 7}.org"
        rows.append((f"Send it to {email} please.", [("EMAIL", email)]))
        card = luhn_complete(rng.choice(["4", "51", "37", "6011"]), rng, 16)
        if card.startswith("37"):
            card = luhn_complete("37", rng, 15)
        rows.append((f"Card number {card} expires soon.", [("CREDIT_CARD", card)]))
        ssn = f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        rows.append((f"SSN {ssn} on file.", [("US_SSN", ssn)]))
        ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        rows.append((f"The server at {ip} is down.", [("IP_ADDRESS", ip)]))
    for iban in (
        "DE89 3704 0044 0532 0130 00",
        "GB29NWBK60161331926819",
        "FR1420041010050500013M02606",
    ):
        rows.append((f"Pay to IBAN {iban} by Monday.", [("IBAN", iban)]))
    rows.extend((text, []) for text in NEGATIVES)
    return rows


def main() -> None:
    print("== PII per type (generated corpus; in-sample, see the module docstring) ==")
    pipeline = GuardrailPipeline.from_spec(
        Guardrails.model_validate(
            {"promptInjection": {"enabled": False}, "secrets": {"enabled": False}}
        ),
        data_regions=REGIONS,
    )
    print(f"  phone regions: {len(phone_regions(REGIONS))} (from the workload's data regions)")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, expected in corpus():
        found = {
            (f.type, text[f.start : f.end])
            for f in pipeline.scan(text, direction="response").findings
        }
        wanted = set(expected)
        for kind, _ in found & wanted:
            tp[kind] += 1
        for kind, _ in found - wanted:
            fp[kind] += 1
        for kind, _ in wanted - found:
            fn[kind] += 1
    print(f"  {'type':<12}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F2':>7}")
    for kind in [*sorted(set(tp) | set(fp) | set(fn)), "ALL"]:
        t = sum(tp.values()) if kind == "ALL" else tp[kind]
        f = sum(fp.values()) if kind == "ALL" else fp[kind]
        n = sum(fn.values()) if kind == "ALL" else fn[kind]
        precision = t / (t + f) if t + f else float("nan")
        recall = t / (t + n) if t + n else float("nan")
        f2 = 5 * precision * recall / (4 * precision + recall) if t else 0.0
        print(f"  {kind:<12}{t:>5}{f:>5}{n:>5}{precision:>11.3f}{recall:>8.3f}{f2:>7.3f}")
    print()


if __name__ == "__main__":
    main()
