"""Hostile input against a live gateway over loopback: every bad body gets a 4xx in the
client's own wire format (never a 500) and exactly one audit event naming the error.

The gateway here is this module's own (tight ``server.request_limits``, a small body
limit), outside the session's suite, so its requests do not enter the suite's counts.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.fake_provider import run_in_thread
from adapters.http.app import create_app
from adapters.http.gateway import Gateway
from engine.config import parse_config
from engine.secrets import hash_caller_key, new_caller_key

OPENAI, ANTHROPIC = "openai", "anthropic"
PATHS = {
    "/v1/chat/completions": OPENAI,
    "/v1/embeddings": OPENAI,
    "/v1/messages": ANTHROPIC,
    "/v1/decide": OPENAI,
}
API_OF = {
    "/v1/chat/completions": "openai.chat",
    "/v1/embeddings": "openai.embeddings",
    "/v1/messages": "anthropic.messages",
}
MAX_BODY = 256 * 1024
LIMITS = {
    "max_messages": 3,
    "max_parts_per_message": 2,
    "max_tools": 1,
    "max_json_depth": 12,
    "max_metadata_entries": 2,
    "max_metadata_value_chars": 5,
    "max_text_chars": 200,
}


@dataclass
class Hostile:
    """The gateway under attack: sends requests, and reads the audit event of each."""

    url: str
    key: str
    audit_path: Path
    client: httpx.Client
    sent: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def post(
        self, path: str, content: bytes, content_type: str | None = "application/json"
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.key}"}
        if content_type is not None:
            headers["content-type"] = content_type
        self.sent += 1
        return self.client.post(path, content=content, headers=headers)

    def event(self) -> dict[str, Any]:
        """The audit event of the last request, once the writer has caught up; the file
        must then hold exactly one event per request sent."""
        deadline = time.monotonic() + 5
        lines: list[str] = []
        while time.monotonic() < deadline:
            # Split on newlines only: str.splitlines() also splits on U+2028 and kin inside texts.
            lines = (
                self.audit_path.read_text(encoding="utf-8").split("\n")[:-1]
                if self.audit_path.exists()
                else []
            )
            if len(lines) >= self.sent:
                break
            time.sleep(0.01)
        assert len(lines) == self.sent, f"{len(lines)} audit events for {self.sent} requests"
        return dict(json.loads(lines[-1]))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    key = new_caller_key("tester")
    config = {
        "server": {"host": "127.0.0.1", "max_body_bytes": MAX_BODY, "request_limits": LIMITS},
        "principals": [{"id": "tester", "kind": "app", "keys": [hash_caller_key(key)]}],
        "audit": {"path": "audit.jsonl", "fsync": "never"},
    }
    parsed = parse_config(
        json.dumps(config), source=str(root / "regate.yaml"), env={}, base_dir=root
    )
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(run_in_thread(create_app(Gateway(parsed, env={}))))
        client = stack.enter_context(httpx.Client(base_url=url, timeout=10.0))
        yield Hostile(url, key, root / "audit.jsonl", client)


def assert_client_error(response: httpx.Response, path: str, status: int) -> dict[str, Any]:
    """``response`` is a ``status`` error in ``path``'s wire format; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-regate-decision-id"].startswith("req_")
    body = response.json()
    if PATHS[path] == ANTHROPIC:
        assert body["type"] == "error" and set(body) == {"type", "error"}
        expected = "request_too_large" if status == 413 else "invalid_request_error"
        assert body["error"]["type"] == expected
    else:
        assert set(body) == {"error"}
        assert body["error"]["type"] == "invalid_request_error"
    error: dict[str, Any] = body["error"]
    assert error["message"] and error["code"]
    return error


def assert_audited(
    hostile: Hostile, response: httpx.Response, path: str, status: int, code: str
) -> dict[str, Any]:
    event = hostile.event()
    assert event["id"] == response.headers["x-regate-decision-id"]
    assert (event["status"], event["error"]["code"], event["action"]) == (status, code, None)
    assert event["api"] == API_OF.get(path)  # /v1/decide never got far enough to know its API
    assert event["provider"] is None and event["route"] == []
    return event


# --- bytes that are not a JSON object ------------------------------------------------------

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
BAD_BYTES = [
    ("invalid UTF-8", b'{"model": "gpt-4o-mini\xff"}', "application/json", 400, "not valid UTF-8"),
    ("UTF-16", '{"model": "m"}'.encode("utf-16"), "application/json", 400, "not valid UTF-8"),
    (
        "truncated JSON",
        b'{"model": "gpt-4o-mini", "messages": [',
        "application/json",
        400,
        "not valid JSON",
    ),
    ("trailing garbage", b'{"model": "m"} x', "application/json", 400, "not valid JSON"),
    ("empty body", b"", "application/json", 400, "empty"),
    ("blank body", b" \n ", "application/json", 400, "empty"),
    ("text/plain", b'{"model": "m"}', "text/plain", 415, "not supported"),
    ("form", b"model=m", "application/x-www-form-urlencoded", 415, "not supported"),
    ("latin-1 charset", b'{"model": "m"}', "application/json; charset=iso-8859-1", 415, "charset"),
    (
        "huge integer",
        b'{"model": "m", "max_tokens": ' + b"9" * 4000 + b"}",
        "application/json",
        400,
        "2^63",
    ),
    (
        "integer past Python's limit",
        b'{"n": ' + b"1" * 5000 + b"}",
        "application/json",
        400,
        "too large",
    ),
    (
        "float overflow",
        b'{"model": "m", "temperature": 1e999}',
        "application/json",
        400,
        "not finite",
    ),
    ("NaN", b'{"model": "m", "temperature": NaN}', "application/json", 400, "NaN"),
    ("deep array", DEEP_ARRAY, None, 400, "nested too deeply"),
    (
        "duplicate keys",
        b'{"model": "gpt-4o-mini", "model": "x", "messages": []}',
        None,
        400,
        "repeats the key 'model'",
    ),
    ("array", b'[{"model": "m"}]', "application/json", 400, "JSON object"),
    ("string", b'"hello"', "application/json", 400, "JSON object"),
    ("number", b"42", "application/json", 400, "JSON object"),
    ("null", b"null", "application/json", 400, "JSON object"),
    (
        "lone surrogate",
        b'{"model": "m", "metadata": {"k": "\\udc00"}}',
        "application/json",
        400,
        "lone surrogate",
    ),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("raw", "content_type", "status", "words"),
    [c[1:] for c in BAD_BYTES],
    ids=[c[0] for c in BAD_BYTES],
)
def test_unreadable_bodies_get_a_4xx_in_the_client_format_and_an_audit_event(
    hostile: Hostile, path: str, raw: bytes, content_type: str | None, status: int, words: str
) -> None:
    response = hostile.post(path, raw, content_type)

    error = assert_client_error(response, path, status)
    assert words in error["message"]
    event = assert_audited(hostile, response, path, status, "invalid_request")
    assert words in event["error"]["message"]
    assert event["principal"]["id"] == "tester"


# --- bodies over a size limit -------------------------------------------------------------

HI = {"role": "user", "content": "hi"}
CHAT = {"model": "gpt-4o-mini", "messages": [HI]}
MESSAGES = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [HI]}
EMBED = {"model": "text-embedding-3-small", "input": ["hi"]}
CANONICAL: dict[str, Any] = {
    "version": "regate.request/v1",
    "api": "openai.chat",
    "operation": "chat",
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}
OA_TOOL = {"type": "function", "function": {"name": "f"}}
PART = {"type": "text", "text": "a"}


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 2):
        value = {"k": value}
    return {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": value}}]}


OVER_LIMITS = [
    ("/v1/chat/completions", {**CHAT, "messages": [HI] * 4}, "max_messages"),
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": [PART] * 3}]},
        "max_parts_per_message",
    ),
    ("/v1/chat/completions", {**CHAT, "tools": [OA_TOOL, OA_TOOL]}, "max_tools"),
    ("/v1/chat/completions", {**CHAT, "metadata": {"{x}": "123456"}}, "max_metadata_value_chars"),
    (
        "/v1/chat/completions",
        {**CHAT, "metadata": {"a": "1", "b": "2", "c": "3"}},
        "max_metadata_entries",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": "x" * 201}]},
        "max_text_chars",
    ),
    (
        "/v1/messages",
        {**MESSAGES, "messages": [HI, {"role": "assistant", "content": "a"}, HI, HI]},
        "max_messages",
    ),
    (
        "/v1/messages",
        {**MESSAGES, "messages": [{"role": "user", "content": [PART] * 3}]},
        "max_parts_per_message",
    ),
    ("/v1/messages", {**MESSAGES, "tools": [{"name": "a", "input_schema": {}}] * 2}, "max_tools"),
    ("/v1/messages", {**MESSAGES, "metadata": {"user_id": "123456"}}, "max_metadata_value_chars"),
    ("/v1/messages", {**MESSAGES, "system": "s" * 199}, "max_text_chars"),
    ("/v1/embeddings", {**EMBED, "input": ["a", "b", "c", "d"]}, "max_messages"),
    ("/v1/embeddings", {**EMBED, "input": "x" * 201}, "max_text_chars"),
    ("/v1/decide", {**CANONICAL, "messages": CANONICAL["messages"] * 4}, "max_messages"),
    ("/v1/decide", {**CHAT, "tools": [OA_TOOL, OA_TOOL]}, "max_tools"),
]


@pytest.mark.parametrize(
    ("path", "body", "limit"), OVER_LIMITS, ids=[f"{p} {k}" for p, _, k in OVER_LIMITS]
)
def test_a_request_over_a_limit_gets_413_naming_the_limit(
    hostile: Hostile, path: str, body: dict[str, Any], limit: str
) -> None:
    response = hostile.post(path, json.dumps(body).encode())

    error = assert_client_error(response, path, 413)
    assert f"server.request_limits.{limit}" in error["message"]
    event = assert_audited(hostile, response, path, 413, "request_too_large")
    assert f"server.request_limits.{limit}" in event["error"]["message"]


@pytest.mark.parametrize("path", PATHS)
def test_nesting_beyond_the_configured_depth_is_400(hostile: Hostile, path: str) -> None:
    response = hostile.post(path, json.dumps(_deep(13)).encode())

    error = assert_client_error(response, path, 400)
    assert "server.request_limits.max_json_depth" in error["message"]
    assert_audited(hostile, response, path, 400, "invalid_request")


@pytest.mark.parametrize("path", PATHS)
def test_a_body_over_the_byte_limit_gets_413_and_an_audit_event(
    hostile: Hostile, path: str
) -> None:
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * MAX_BODY}]}).encode()
    response = hostile.post(path, body)

    error = assert_client_error(response, path, 413)
    assert f"{MAX_BODY} bytes (server.max_body_bytes)" in error["message"]
    event = hostile.event()
    assert (event["id"], event["status"], event["error"]["code"]) == (
        response.headers["x-regate-decision-id"],
        413,
        "request_too_large",
    )
    assert event["api"] == API_OF.get(path) and event["principal"] is None  # refused before reading


# --- the same gateway still serves good requests --------------------------------------------

GOOD = [
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [HI] * 3, "tools": [OA_TOOL], "metadata": {"a": "12345", "b": ""}},
    ),
    ("/v1/messages", MESSAGES),
    ("/v1/embeddings", {**EMBED, "input": ["a", "b", "c"]}),
]


@pytest.mark.parametrize(("path", "body"), GOOD, ids=[p for p, _ in GOOD])
def test_requests_at_every_limit_are_served(
    hostile: Hostile, path: str, body: dict[str, Any]
) -> None:
    response = hostile.post(path, json.dumps(body).encode())

    assert response.status_code == 200, response.text
    event = hostile.event()
    assert (event["status"], event["provider"], event.get("error")) == (200, "echo", None)


def test_decide_reads_a_canonical_document_and_audits_the_decision(hostile: Hostile) -> None:
    response = hostile.post("/v1/decide", json.dumps(CANONICAL).encode())

    assert response.status_code == 200, response.text
    answer = response.json()
    event = hostile.event()
    assert event["id"] == answer["decision_id"] == response.headers["x-regate-decision-id"]
    assert (event["api"], event["action"], event["status"]) == (
        "openai.chat",
        answer["decision"]["action"],
        200,
    )
