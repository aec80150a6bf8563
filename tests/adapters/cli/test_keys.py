"""``regate keys new``: a caller key shown once, and the ``sha256:`` line the config stores."""

from __future__ import annotations

import re

from engine.secrets import hash_caller_key

from .support import Regate


def new_key(regate: Regate, principal: str) -> tuple[str, str, str]:
    """(key, sha256 value, whole output) of one ``regate keys new`` run."""
    result = regate("keys", "new", "--principal", principal)
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if not line.startswith("#")]
    assert len(lines) == 2, result.out
    key, hash_line = lines
    match = re.fullmatch(r'- "(sha256:[0-9a-f]{64})"', hash_line)
    assert match, hash_line
    return key, match.group(1), result.out


def test_prints_a_key_once_and_its_config_hash(regate: Regate) -> None:
    key, hashed, out = new_key(regate, "billing-bot")
    assert hashed == hash_caller_key(key)
    assert out.count(key) == 1
    assert "billing-bot" not in key, "a key reveals nothing about its owner"
    assert len(key) >= 40


def test_every_key_is_new(regate: Regate) -> None:
    first, first_hash, _ = new_key(regate, "x")
    second, second_hash, _ = new_key(regate, "x")
    assert first != second and first_hash != second_hash


def test_invalid_principal_is_a_usage_error_and_prints_no_key(regate: Regate) -> None:
    result = regate("keys", "new", "--principal", "not a valid id")
    assert result.code == 2
    assert result.out == ""
    assert "principal id 'not a valid id' is not valid" in result.err


def test_principal_is_required(regate: Regate) -> None:
    result = regate("keys", "new")
    assert result.code == 2
    assert "--principal" in result.err


def test_keys_new_as_a_process(regate_process: Regate) -> None:
    result = regate_process("keys", "new", "--principal", "ci-bot")
    assert result.code == 0
    key = next(line for line in result.out.splitlines() if line and not line.startswith(("#", "-")))
    assert f'- "{hash_caller_key(key)}"' in result.out
    assert key not in result.err
