"""Recognisers for personal data: email addresses, phone numbers, payment cards, IBANs, US social
security numbers, IP addresses, and the workload's own patterns.

Each pattern finds candidates cheaply; a check then rejects what only looks like the real thing
(a card number whose Luhn digit is wrong, an IBAN whose mod-97 checksum fails, an SSN in a range
the SSA never issues, `999.1.1.1`), so plain numbers, dates and version strings pass untouched.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence

import phonenumbers

from aigis.guardrails.patterns import Recognizer, whole

# Registered IBAN lengths by country (ISO 13616 registry), so a candidate is cut at the right
# place even when words follow it, and a wrong-length number is refused before the checksum.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


# --- checks --------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_brand_length_ok(digits: str) -> bool:
    """Whether the number starts like an issued card and has a length that brand uses."""
    length = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return length == 16
    if two in (34, 37):  # American Express
        return length == 15
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= length <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= length <= 19
    if digits[:4] == "6011" or two == 65 or 644 <= int(digits[:3]) <= 649:  # Discover
        return 16 <= length <= 19
    if two == 62:  # UnionPay
        return 16 <= length <= 19
    if two == 50 or 56 <= two <= 69:  # Maestro
        return 12 <= length <= 19
    return False


_CARD_GROUPINGS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2)}


def credit_card_valid(candidate: str) -> bool:
    """A Luhn-valid number of a real brand, written without separators or grouped like a card."""
    digits = "".join(c for c in candidate if c.isdigit())
    if not 12 <= len(digits) <= 19 or not _card_brand_length_ok(digits):
        return False
    if not luhn_valid(digits) or len(set(digits)) == 1:
        return False
    separators = {c for c in candidate if not c.isdigit()}
    if not separators:
        return True
    if len(separators) > 1:
        return False
    groups = tuple(len(g) for g in candidate.split(separators.pop()))
    return groups in _CARD_GROUPINGS


def credit_card_span(candidate: str) -> tuple[int, int] | None:
    """The longest run of whole digit groups in `candidate` that is a valid card number.

    The pattern takes every digit group it can reach, so a card followed by a year or preceded
    by an order number arrives as one candidate; trying the runs of groups finds the card in it.
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    for index, char in enumerate(candidate):
        if not char.isdigit():
            bounds.append((start, index))
            start = index + 1
    bounds.append((start, len(candidate)))
    best: tuple[int, int] | None = None
    for first in range(len(bounds)):
        for last in range(len(bounds) - 1, first - 1, -1):
            span = (bounds[first][0], bounds[last][1])
            if best is not None and span[1] - span[0] <= best[1] - best[0]:
                break
            if credit_card_valid(candidate[span[0] : span[1]]):
                best = span
                break
    return best


def iban_span(candidate: str) -> tuple[int, int] | None:
    """The IBAN at the start of `candidate` (its registered length) if its mod-97 check holds."""
    country = candidate[:2].upper()
    length = IBAN_LENGTHS.get(country)
    if length is None:
        return None
    compact: list[str] = []
    end = 0
    for index, char in enumerate(candidate):
        if char == " ":
            continue
        compact.append(char.upper())
        if len(compact) == length:
            end = index + 1
            break
    if len(compact) != length:
        return None
    if end < len(candidate) and candidate[end] != " ":
        return None  # a longer run of letters and digits: not an IBAN
    code = "".join(compact)
    if not code[2:4].isdigit():
        return None
    rearranged = code[4:] + code[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return (0, end) if int(number) % 97 == 1 else None


def us_ssn_valid(candidate: str) -> bool:
    """An SSN the SSA could have issued: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    digits = "".join(c for c in candidate if c.isdigit())
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


def ipv4_valid(candidate: str) -> bool:
    """Four decimal octets 0-255 without leading zeros, and not part of a longer dotted number."""
    parts = candidate.split(".")
    if len(parts) != 4:
        return False
    return all(p.isdigit() and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts)


def ipv6_valid(candidate: str) -> bool:
    """A valid IPv6 address that contains a digit (so `a::b` in C++ code is not one)."""
    if not any(c.isdigit() for c in candidate):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_EXTENSION_SUFFIX = re.compile(
    r"[ ,]*(?:ext\.?|extension|x|#|durchwahl|poste)[ .:]*[0-9]{1,6}$", re.IGNORECASE
)


def without_extension(candidate: str) -> str:
    """The number without a trailing extension (`ext. 12`, `x 12`, `#12`)."""
    return _EXTENSION_SUFFIX.sub("", candidate)


def phone_valid(candidate: str, low: int = 8, high: int = 15) -> bool:
    """A plausible phone number: E.164 allows at most 15 digits; fewer than 7 is not a number
    anyone dials. Separators must not repeat (`1--2`) and brackets must pair. A trailing
    extension is not counted."""
    candidate = without_extension(candidate)
    digits = sum(c.isdigit() for c in candidate)
    if candidate.startswith("00"):
        digits -= 2
    if not low <= digits <= high:
        return False
    if candidate.count("(") != candidate.count(")"):
        return False
    previous = ""
    for char in candidate:
        if char in " -./" and previous in " -./" and previous:
            return False
        previous = char if not char.isdigit() else ""
    return True


DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR")
"""Regions whose national formats are recognised when the workload declares no data regions."""

# Data regions as workloads declare them (`spec.dataRegions`) to the phone regions they imply.
_DATA_REGION_PHONES: dict[str, tuple[str, ...]] = {
    "eu": ("DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL", "SE", "IE", "PT", "DK", "FI"),
    "us": ("US",),
    "uk": ("GB",),
    "gb": ("GB",),
    "ca": ("CA",),
    "ch": ("CH",),
    "in": ("IN",),
    "jp": ("JP",),
    "au": ("AU",),
    "br": ("BR",),
}


def phone_regions(data_regions: Iterable[str]) -> tuple[str, ...]:
    """Phone regions (ISO 3166 codes) for a workload's declared data regions, e.g. `eu`."""
    found: list[str] = []
    for region in data_regions:
        key = region.strip().lower()
        codes = _DATA_REGION_PHONES.get(key)
        if codes is None and len(key) == 2 and key.isalpha():
            codes = (key.upper(),)
        found.extend(codes or ())
    return tuple(dict.fromkeys(found)) or DEFAULT_PHONE_REGIONS


_DATE_LIKE = re.compile(
    r"^(?:[0-9]{4}[-./ ][0-9]{1,2}[-./ ][0-9]{1,2}|[0-9]{1,2}[-./ ][0-9]{1,2}[-./ ][0-9]{2,4})$"
)


def national_phone_check(regions: Sequence[str]) -> Callable[[str], tuple[int, int] | None]:
    """A check keeping a candidate that `phonenumbers` finds a valid number of one of `regions`
    (numbering plans, not just digit counts), written with separators as people write them."""

    def check(candidate: str) -> tuple[int, int] | None:
        number = without_extension(candidate)
        if _DATE_LIKE.match(number) or sum(not c.isdigit() for c in number) < 2:
            return None
        for region in regions:
            try:
                parsed = phonenumbers.parse(number, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(parsed):
                return (0, len(candidate))
        return None

    return check


def _nanp_valid(candidate: str) -> bool:
    candidate = without_extension(candidate)
    separators = {c for c in candidate if c in "-. "}
    return len(separators) <= 1 or separators <= {" ", "-"}


# --- recognisers ---------------------------------------------------------------------------

_EMAIL = (
    r"(?i)[a-z0-9][a-z0-9._%+\-]{0,63}@"
    r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*"
    r"\.[a-z]{2,24}\b"
)
# Phone numbers do not start right after another group of digits: "3704 0044 0532" inside an
# account number is no dialling prefix.
_NOT_AFTER_DIGITS = r"(?:^|[^0-9 +]|[^0-9] )"
_EXT = r"(?:[ ,]*(?i:ext\.?|extension|x|#|durchwahl|poste)[ .:]*[0-9]{1,6})?"
_PHONE_INTERNATIONAL = _NOT_AFTER_DIGITS + r"((?:\+|00)[1-9][0-9 \-./()]{5,22}[0-9]" + _EXT + r")\b"
_PHONE_NANP = (
    r"(?:\b1[ .\-]?)?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}"
    + _EXT
    + r"\b"
)
_PHONE_NATIONAL = _NOT_AFTER_DIGITS + r"(\(?0[1-9][0-9 \-.()]{6,16}[0-9]" + _EXT + r")\b"
_PHONE_TRUNK = (
    _NOT_AFTER_DIGITS
    + r"((?:\(0[1-9][0-9]{0,3}\) ?|\b0[1-9][0-9]{0,3}[ /\-])[0-9]{2,8}(?:[ \-][0-9]{2,8}){0,3}"
    + _EXT
    + r")\b"
)
_PHONE_DOTTED = r"\b0[1-9](?:\.[0-9]{2}){4}\b"
_PHONE_LABELLED = (
    r"(?i)\b(?:tel|tel\.|phone|mobile|cell|fax|telefon|handy|mobil|t[ée]l[ée]phone|"
    r"tel[ée]fono|call me at|text me at)"
    r"(?:\s*(?:no\.?|number|nr\.?|nummer|num[ée]ro))?\s*[:#]?\s*(\+?[0-9][0-9 \-./()]{5,20}[0-9]"
    + _EXT
    + r")\b"
)
_CREDIT_CARD = r"\b[0-9](?:[0-9]|[ \-](?:[0-9])){11,22}\b"
_IBAN = r"(?i)\b[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){10,30}\b"
_US_SSN = r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b"
_US_SSN_LABELLED = r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\D{0,12}\b([0-9]{9})\b"
_IPV4 = r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:\.[0-9]+)*\b"
_IPV6 = (
    r"(?:^|[^0-9A-Za-z:.])((?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4}))(?:[^0-9A-Za-z:]|$)"
)

BUILTIN_RECOGNIZERS: dict[str, tuple[Recognizer, ...]] = {
    "EMAIL": (Recognizer("EMAIL", _EMAIL, priority=30),),
    "PHONE": (
        Recognizer("PHONE", _PHONE_INTERNATIONAL, group=1, check=whole(phone_valid), priority=10),
        Recognizer("PHONE", _PHONE_NANP, check=whole(_nanp_valid), priority=10),
        Recognizer(
            "PHONE",
            _PHONE_TRUNK,
            group=1,
            check=whole(lambda c: phone_valid(c, 9, 13)),
            priority=10,
        ),
        Recognizer("PHONE", _PHONE_DOTTED, priority=10),
        Recognizer(
            "PHONE", _PHONE_LABELLED, group=1, check=whole(lambda c: phone_valid(c, 7)), priority=5
        ),
    ),
    "CREDIT_CARD": (Recognizer("CREDIT_CARD", _CREDIT_CARD, check=credit_card_span, priority=40),),
    "IBAN": (Recognizer("IBAN", _IBAN, check=iban_span, priority=40),),
    "US_SSN": (
        Recognizer("US_SSN", _US_SSN, check=whole(us_ssn_valid), priority=35),
        Recognizer("US_SSN", _US_SSN_LABELLED, group=1, check=whole(us_ssn_valid), priority=35),
    ),
    "IP_ADDRESS": (
        Recognizer("IP_ADDRESS", _IPV4, check=whole(ipv4_valid), priority=20),
        Recognizer("IP_ADDRESS", _IPV6, group=1, check=whole(ipv6_valid), priority=20),
    ),
}
"""The recognisers of each built-in entity the API offers (`PiiEntity`)."""


@functools.lru_cache(maxsize=64)
def national_phone_recognizer(regions: tuple[str, ...]) -> Recognizer:
    """Phone numbers in the national formats of `regions`, vouched for by `phonenumbers`."""
    return Recognizer(
        "PHONE", _PHONE_NATIONAL, group=1, check=national_phone_check(regions), priority=9
    )


def pii_recognizers(
    entities: Iterable[str],
    custom: Sequence[tuple[str, str]] = (),
    regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
) -> tuple[Recognizer, ...]:
    """The recognisers for the listed entities plus the workload's own `(name, pattern)` pairs.

    `regions` (see `phone_regions`) say whose national phone formats to recognise; numbers
    written with a `+` or `00` country code are recognised whatever the regions. Custom
    patterns rank below the built-in ones, so a value both match is reported as the built-in
    entity (whose check vouches for it).
    """
    chosen: list[Recognizer] = []
    for entity in dict.fromkeys(entities):
        chosen.extend(BUILTIN_RECOGNIZERS[entity])
        if entity == "PHONE":
            chosen.append(national_phone_recognizer(tuple(regions)))
    chosen.extend(Recognizer(name, pattern, priority=0) for name, pattern in custom)
    return tuple(chosen)
