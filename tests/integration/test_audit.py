"""Audit over real traffic: one Contract 4 event per request whatever its outcome, and
``regate audit verify`` (the CLI, as a subprocess) on the file regate wrote: intact,
then with an edited, a deleted and a swapped line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.integration.conftest import StartRegate, Upstream, chat, messages

REGATE = Path(sys.executable).with_name("regate")


@pytest.fixture(scope="module")
def audit_log(start_regate: StartRegate, _upstream: Upstream) -> Path:
    """The audit file of a gateway that served one request of each outcome, then stopped."""
    gateway = start_regate()
    hi, hi_messages = chat("hi"), messages("hi")
    with gateway.openai() as oai, gateway.anthropic() as claude, gateway.http() as http:
        oai.chat.completions.create(model="gpt-4o-mini", messages=hi)  # allow
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "to a@example.com"}]
        )  # redact
        with pytest.raises(openai.PermissionDeniedError):
            oai.chat.completions.create(model="gpt-unknown", messages=hi)  # deny
        list(
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=20, messages=hi_messages, stream=True
            )
        )  # streamed
        with gateway.openai("eu-bot") as eu:
            eu.embeddings.create(model="text-embedding-3-small", input="hallo")  # route
        with gateway.openai(key="rgk_wrong") as stranger, pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(model="gpt-4o-mini", messages=hi)  # 401
        http.post(
            "/v1/messages", content=b"{", headers={"x-api-key": gateway.keys["billing-bot"]}
        )  # bad JSON
        http.post("/v1/embeddings", content=b" " * (4 * 1024 * 1024 + 1))  # over the body limit
        _upstream.fake.faults.clear()
        _upstream.fail("flaky", "status=500")
        with pytest.raises(anthropic.InternalServerError):
            claude.messages.create(
                model="o3-mini", max_tokens=20, messages=hi_messages
            )  # upstream failure
        _upstream.fake.faults.clear()
    gateway.stop()
    return gateway.audit_path


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_request_is_one_event_with_its_outcome(audit_log: Path) -> None:
    events = _events(audit_log)

    outcomes = [
        (e["api"], e["action"], e["status"], e["provider"], (e.get("error") or {}).get("code"))
        for e in events
    ]
    assert outcomes == [
        ("openai.chat", "allow", 200, "openai", None),
        ("openai.chat", "redact", 200, "openai", None),
        ("openai.chat", "deny", 403, None, None),
        ("anthropic.messages", "allow", 200, "anthropic", None),
        ("openai.embeddings", "route", 200, "azure-eu", None),
        ("openai.chat", None, 401, None, "invalid_api_key"),
        ("anthropic.messages", None, 400, None, "invalid_request"),
        ("openai.embeddings", None, 413, None, "request_too_large"),
        ("anthropic.messages", "allow", 502, None, "upstream_error"),
    ]
    assert [e["reasons"][0]["code"] for e in events[2:3]] == ["model.not_allowed"]
    assert events[1]["redactions"] == {"count": 1, "detectors": ["pii.email"]}
    assert events[3]["usage"]["completion_tokens"] > 0  # a stream audits its usage too
    assert events[5]["principal"] is None and events[4]["principal"]["id"] == "eu-bot"
    assert all(e["bundle"]["digest"] and e["engine"] == "embedded" for e in events)


def test_redacted_prompts_in_the_audit_never_hold_the_original(audit_log: Path) -> None:
    text = audit_log.read_text(encoding="utf-8")

    assert "a@example.com" not in text
    assert "[EMAIL]" in text  # audit.prompt is "redacted" in this config


def _edit(lines: list[str]) -> list[str]:
    event = json.loads(lines[2])
    event["status"] = 200  # the denial, re-serialised canonically: only its hash can tell
    return [
        *lines[:2],
        json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        *lines[3:],
    ]


TAMPERINGS: dict[str, Callable[[list[str]], list[str]]] = {
    "edited": _edit,
    "deleted": lambda lines: lines[:2] + lines[3:],
    "swapped": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
}


@pytest.fixture(scope="module")
def verified(
    audit_log: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, int, str]]:
    """``regate audit verify`` on the intact file and each tampered copy, run in parallel
    (each CLI start costs about a second): name -> (file, exit code, stdout)."""
    lines = audit_log.read_text(encoding="utf-8").splitlines()
    root = tmp_path_factory.mktemp("tampered")
    files = {"intact": audit_log}
    for name, tamper in TAMPERINGS.items():
        files[name] = root / f"{name}.jsonl"
        files[name].write_text("\n".join(tamper(lines)) + "\n", encoding="utf-8")
    runs = {
        name: subprocess.Popen(
            [str(REGATE), "audit", "verify", str(path)], stdout=subprocess.PIPE, text=True
        )
        for name, path in files.items()
    }
    return {
        name: (files[name], run.wait(timeout=30), run.communicate()[0])
        for name, run in runs.items()
    }


def test_audit_verify_passes_on_the_file_regate_wrote(
    verified: dict[str, tuple[Path, int, str]],
) -> None:
    _, code, out = verified["intact"]

    assert code == 0, out
    assert "9 events, chain intact" in out


@pytest.mark.parametrize(
    ("name", "bad_line", "reason"),
    [("edited", 3, "was edited"), ("deleted", 3, "prev"), ("swapped", 2, "prev")],
)
def test_audit_verify_names_the_first_bad_line(
    verified: dict[str, tuple[Path, int, str]], name: str, bad_line: int, reason: str
) -> None:
    path, code, out = verified[name]

    assert code == 1
    assert out.startswith(f"broken: {path}:{bad_line}:"), out
    assert reason in out
