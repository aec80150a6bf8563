"""engine.secrets: secret references, the Secret wrapper, caller keys and their lookup."""

from __future__ import annotations

import copy
import hashlib
import pickle
import re
from pathlib import Path

import pytest

from engine.config import PrincipalConfig, parse_config
from engine.errors import ConfigError
from engine.secrets import (
    PrincipalDirectory,
    Secret,
    SecretRef,
    hash_caller_key,
    new_caller_key,
    resolve_secret,
)


def test_secret_never_shows_its_value() -> None:
    secret = Secret("sk-live-123")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), format(secret)]
    assert all("sk-live-123" not in text for text in shown)
    assert repr(secret) == "Secret('***')"
    assert secret.reveal() == "sk-live-123"


def test_secret_cannot_be_pickled_but_copies_are_itself() -> None:
    secret = Secret("v")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert copy.deepcopy({"k": secret})["k"] is secret


def test_env_reference() -> None:
    assert resolve_secret({"env": "KEY"}, env={"KEY": "value"}).reveal() == "value"
    assert resolve_secret(SecretRef("env", "KEY"), env={"KEY": "v2"}).reveal() == "v2"


@pytest.mark.parametrize(
    ("content", "value"),
    [("abc\n", "abc"), ("abc\r\n", "abc"), ("abc\n\n", "abc\n"), ("abc", "abc"), ("a b\n", "a b")],
)
def test_file_reference_strips_exactly_one_trailing_newline(
    tmp_path: Path, content: str, value: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content.encode("utf-8"))
    assert resolve_secret({"file": str(path)}, env={}).reveal() == value


def test_missing_env_names_the_variable_and_where_it_was_asked_for() -> None:
    ref = SecretRef("env", "OPENAI_API_KEY", file="regate.yaml", line=7)
    with pytest.raises(ConfigError) as info:
        resolve_secret(ref, env={"OTHER": "sk-other-value"})
    assert "OPENAI_API_KEY" in str(info.value)
    assert (info.value.file, info.value.line) == ("regate.yaml", 7)
    assert "sk-other-value" not in str(info.value)


def test_empty_env_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="KEY is empty"):
        resolve_secret({"env": "KEY"}, env={"KEY": ""})


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "openai"
    with pytest.raises(ConfigError) as info:
        resolve_secret({"file": str(missing)}, env={})
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("ref", [{}, {"env": "A", "file": "b"}, {"vault": "x"}, {"env": ""}])
def test_malformed_references_are_refused(ref: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        resolve_secret(ref, env={"A": "1"})


def test_hash_caller_key_is_sha256_over_the_whole_key() -> None:
    assert hash_caller_key("test") == (
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )
    key = new_caller_key("bot")
    assert hash_caller_key(key) == "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def test_new_caller_keys_have_the_documented_format_and_do_not_repeat() -> None:
    keys = {new_caller_key("billing-bot") for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"rgk_[A-Za-z0-9_-]{43}", key) for key in keys)
    assert not any("billing" in key for key in keys)


@pytest.mark.parametrize("principal_id", ["", "has space", "-leading", "x" * 129])
def test_new_caller_key_checks_the_principal_id(principal_id: str) -> None:
    with pytest.raises(ConfigError):
        new_caller_key(principal_id)


def _directory() -> tuple[PrincipalDirectory, str, str, str]:
    first, second, other = (new_caller_key(p) for p in ("billing-bot", "billing-bot", "agent"))
    text = f"""
principals:
  - id: billing-bot
    kind: app
    team: finance
    labels: {{region: eu}}
    keys: ["{hash_caller_key(first)}", "{hash_caller_key(second)}"]
  - id: agent
    kind: agent
    keys: ["{hash_caller_key(other)}"]
"""
    config = parse_config(text, source="r.yaml", env={}, base_dir=Path("."))
    return PrincipalDirectory.from_config(config), first, second, other


def test_directory_finds_the_owner_of_each_key() -> None:
    directory, first, second, other = _directory()
    billing = {"id": "billing-bot", "kind": "app", "team": "finance", "labels": {"region": "eu"}}
    assert directory.authenticate(first) == billing
    assert directory.authenticate(second) == billing
    assert directory.authenticate(other) == {"id": "agent", "kind": "agent", "labels": {}}
    assert len(directory) == 2


@pytest.mark.parametrize("presented", [None, "", "rgk_unknown", "sha256:" + "a" * 64])
def test_directory_refuses_unknown_keys(presented: str | None) -> None:
    directory, *_ = _directory()
    assert directory.authenticate(presented) is None


def test_directory_refuses_a_stored_hash_presented_as_the_key() -> None:
    directory, first, *_ = _directory()
    assert directory.authenticate(hash_caller_key(first)) is None


def test_directory_returns_a_fresh_principal_each_time() -> None:
    directory, first, *_ = _directory()
    found = directory.authenticate(first)
    assert found is not None
    found["labels"]["region"] = "us"
    again = directory.authenticate(first)
    assert again is not None and again["labels"] == {"region": "eu"}


def test_directory_refuses_one_key_for_two_principals() -> None:
    key_hash = hash_caller_key("shared")
    principals = [PrincipalConfig(name, "app", keys=(key_hash,)) for name in ("a", "b")]
    with pytest.raises(ConfigError, match="more than one principal"):
        PrincipalDirectory(principals)
