"""Validators that confirm detector matches: Luhn, IBAN mod-97, JWT structure."""

from __future__ import annotations

import base64
import json

import pytest

from engine.validators import IBAN_LENGTHS, VALIDATORS, iban, jwt, luhn, none


def _b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_registry_names_match_the_bundle_contract() -> None:
    assert set(VALIDATORS) == {"luhn", "iban", "jwt", "none"}


def test_none_accepts_the_whole_match() -> None:
    assert none("anything") == 8


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4012-8888-8888-1881",
        "378282246310005",
        "30569309025904",
        "6011111111111117",
        "4111111111111111003",
    ],
)
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn(number) == len(number)


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # checksum
        "411111111111",  # 12 digits: too short for a card
        "41111111111111111111",  # 20 digits: too long
        "4111x111111111111",  # not a digit
        "\uff14" + "\uff11" * 15,  # full-width digits are not card digits
    ],
)
def test_luhn_rejects(number: str) -> None:
    assert luhn(number) is None


@pytest.mark.parametrize(
    "value",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NO9386011117947",
        "de89370400440532013000",
    ],
)
def test_iban_accepts_valid_ibans(value: str) -> None:
    assert iban(value) == len(value)


@pytest.mark.parametrize(
    "value",
    [
        "DE89370400440532013001",  # checksum
        "XX89370400440532013000",  # unknown country
        "DE8937040044053201300",  # one character short for DE
        "DEAB370400440532013000",  # check digits must be digits
        "DE89-3704-0044-0532-0130-00",  # only spaces may separate groups
    ],
)
def test_iban_rejects(value: str) -> None:
    assert iban(value) is None


def test_iban_trims_characters_after_the_country_length() -> None:
    # The pattern may run on into a following short upper-case word.
    assert iban("BE68 5390 0754 7034 EUR") == len("BE68 5390 0754 7034")


def test_iban_length_table_is_sane() -> None:
    assert len(IBAN_LENGTHS) > 80
    for country, length in IBAN_LENGTHS.items():
        assert len(country) == 2 and country.isascii() and country.isupper()
        assert 15 <= length <= 34
    spot_checks = {"DE": 22, "GB": 22, "NO": 15, "MT": 31, "FR": 27}
    assert {country: IBAN_LENGTHS[country] for country in spot_checks} == spot_checks


_HEADER = _b64({"alg": "HS256", "typ": "JWT"})
_PAYLOAD = _b64({"sub": "1234567890"})
_NOT_UTF8 = _b64(b"\xff\xfe{")


def test_jwt_accepts_signed_and_unsigned_tokens() -> None:
    signed = f"{_HEADER}.{_PAYLOAD}.c2lnbmF0dXJl"
    unsigned = f"{_b64({'alg': 'none'})}.{_PAYLOAD}."
    assert jwt(signed) == len(signed)
    assert jwt(unsigned) == len(unsigned)


@pytest.mark.parametrize(
    "token",
    [
        f"{_b64({'typ': 'JWT'})}.{_PAYLOAD}.sig",  # header without alg
        f"{_b64({'alg': 256})}.{_PAYLOAD}.sig",  # alg not a string
        f"{_HEADER}.{_b64([1, 2, 3])}.sig",  # payload not an object
        f"{_HEADER}.{_b64(b'{not json')}.sig",  # payload not JSON
        f"{_HEADER}.{_NOT_UTF8}.sig",  # payload not UTF-8
        f"{_HEADER}.eyJhb.sig",  # payload not base64 (length 5 mod 4 == 1)
        f"{_HEADER}.{_PAYLOAD}",  # two segments
        f"{_HEADER}.{_PAYLOAD}.sig.extra",  # four segments
    ],
)
def test_jwt_rejects(token: str) -> None:
    assert jwt(token) is None


def test_jwt_with_deeply_nested_payload_is_rejected_not_crashing() -> None:
    deep = _b64(b"[" * 100_000)
    assert jwt(f"{_HEADER}.{deep}.sig") is None
