"""Checksum and structure validators that confirm a detector's regex match.

A validator receives the matched text and returns how many code points of it
form the valid value (usually all of them), or ``None`` to drop the match. The
length lets a validator trim a match that the pattern over-extended, e.g. an
IBAN followed by a short upper-case word (``"BE68 5390 0754 7034 EUR"``).
Bundles name validators in ``data.regate.detectors[].validator``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

Validator = Callable[[str], "int | None"]

# IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip

_CARD_SEPARATORS = " -"
_DIGITS = "0123456789"


def none(text: str) -> int | None:
    """Accept every match as it is."""
    return len(text)


def luhn(text: str) -> int | None:
    """Payment card numbers: 13-19 digits (spaces or dashes between) passing Luhn.

    >>> luhn("4111 1111 1111 1111"), luhn("4111 1111 1111 1112")
    (19, None)
    """
    digits: list[int] = []
    for ch in text:
        if ch in _DIGITS:
            digits.append(ord(ch) - 48)
        elif ch not in _CARD_SEPARATORS:
            return None
    if not 13 <= len(digits) <= 19:
        return None
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return len(text) if total % 10 == 0 else None


def _iban_checksum_ok(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def iban(text: str) -> int | None:
    """IBANs: known country, that country's length, ISO 13616 mod-97 check.

    Spaces may separate groups. Characters after the country's length are left
    out of the match (the length returned stops at the IBAN's last character).

    >>> iban("DE89 3704 0044 0532 0130 00"), iban("DE89 3704 0044 0532 0130 01")
    (27, None)
    """
    upper = text.upper()
    expected = IBAN_LENGTHS.get(upper[:2])
    if expected is None:
        return None
    taken = 0
    for index, ch in enumerate(upper):
        if ch == " ":
            continue
        if not ch.isascii() or not ch.isalnum():
            return None
        taken += 1
        if taken == expected:
            compact = upper[: index + 1].replace(" ", "")
            if not compact[2:4].isdigit():
                return None
            return index + 1 if _iban_checksum_ok(compact) else None
    return None


def _json_object(segment: str) -> dict[str, object] | None:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def jwt(text: str) -> int | None:
    """JSON Web Tokens: three base64url segments; header and payload are JSON
    objects and the header names an ``alg``."""
    segments = text.split(".")
    if len(segments) != 3:
        return None
    header = _json_object(segments[0])
    if header is None or not isinstance(header.get("alg"), str):
        return None
    if _json_object(segments[1]) is None:
        return None
    return len(text)


VALIDATORS: dict[str, Validator] = {"none": none, "luhn": luhn, "iban": iban, "jwt": jwt}
