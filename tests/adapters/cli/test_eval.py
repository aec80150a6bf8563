"""``regate eval``: the eight example requests, code-point offsets, and failing closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.document import iter_texts

from .support import DEFAULT_BUNDLE, EXAMPLES, Regate, write_files

REQUESTS = EXAMPLES / "requests"
EU = EXAMPLES / "principals" / "eu-analyst.json"
US = EXAMPLES / "principals" / "us-support.json"
PLACEHOLDERS = {
    "pii.email": "[EMAIL]",
    "pii.phone": "[PHONE]",
    "pii.ssn": "[SSN]",
    "pii.card": "[CARD]",
    "pii.iban": "[IBAN]",
}

# (request file, principal, wire API, action, reason codes, sensitive values, route provider)
EXAMPLE_TABLE = [
    ("allow-openai.json", US, "openai.chat", "allow", [], [], None),
    ("allow-anthropic.json", US, "anthropic.messages", "allow", [], [], None),
    (
        "redact-openai.json",
        US,
        "openai.chat",
        "redact",
        ["pii.card", "pii.email"],
        ["jane.doe@example.com", "4111 1111 1111 1111"],
        None,
    ),
    (
        "redact-anthropic.json",
        US,
        "anthropic.messages",
        "redact",
        ["pii.iban", "pii.phone"],
        ["DE89 3704 0044 0532 0130 00", "+44 20 7946 0958"],
        None,
    ),
    ("route-openai.json", EU, "openai.chat", "route", ["route.eu"], [], "echo-eu"),
    ("route-anthropic.json", EU, "anthropic.messages", "route", ["route.eu"], [], "echo-eu"),
    (
        "deny-openai.json",
        US,
        "openai.chat",
        "deny",
        ["secret.aws_access_key"],
        ["AKIAIOSFODNN7EXAMPLE"],
        None,
    ),
    ("deny-anthropic.json", US, "anthropic.messages", "deny", ["secret.private_key"], [], None),
]


def evaluate(
    regate: Regate, request: Path, *extra: str | Path, bundle: Path = DEFAULT_BUNDLE
) -> dict[str, Any]:
    result = regate("eval", bundle, "--request", request, "--format", "json", *extra)
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    assert set(document) == {"request", "decision", "forward"}
    return document


def codes(decision: dict[str, Any]) -> list[str]:
    return sorted(r["code"] for r in decision.get("reasons", []))


def redacted_by_offsets(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, replacement)`` applied, offsets in code points."""
    for start, end, replacement in sorted(spans, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


@pytest.mark.parametrize(
    ("name", "principal", "api", "action", "reasons", "sensitive", "provider"),
    EXAMPLE_TABLE,
    ids=[row[0] for row in EXAMPLE_TABLE],
)
def test_example_request(
    regate: Regate,
    name: str,
    principal: Path,
    api: str,
    action: str,
    reasons: list[str],
    sensitive: list[str],
    provider: str | None,
) -> None:
    doc = evaluate(regate, REQUESTS / name, "--principal", principal)
    request, decision, forward = doc["request"], doc["decision"], doc["forward"]
    assert request["api"] == api
    assert request["principal"] == json.loads(principal.read_text())
    assert decision["action"] == action
    assert codes(decision) == reasons
    sent = dict(iter_texts(request))
    for value in sensitive:
        assert any(value in text for text in sent.values()), f"the example lost {value!r}"
    if action == "deny":
        assert forward is None
        assert decision.get("status", 403) == 403
        return
    assert forward is not None
    forwarded = dict(iter_texts(forward))
    assert forwarded.keys() == sent.keys()
    if action == "redact":
        for value in sensitive:
            assert all(value not in text for text in forwarded.values())
        for pointer, text in sent.items():
            spans = [
                (f["start"], f["end"], PLACEHOLDERS[f["detector"]])
                for f in request["findings"]
                if f["path"] == pointer
            ]
            assert forwarded[pointer] == redacted_by_offsets(text, spans)
        found = sorted(sent[f["path"]][f["start"] : f["end"]] for f in request["findings"])
        assert found == sorted(sensitive)
    else:
        assert forwarded == sent
    if action == "route":
        assert decision["route"]["targets"] == [{"provider": provider, "model": request["model"]}]
    else:
        assert "route" not in decision


@pytest.mark.parametrize("name", ["route-openai.json", "route-anthropic.json"])
def test_route_examples_depend_on_the_principal(regate: Regate, name: str) -> None:
    assert evaluate(regate, REQUESTS / name, "--principal", US)["decision"]["action"] == "allow"
    assert evaluate(regate, REQUESTS / name)["decision"]["action"] == "allow"


def test_readme_command_as_a_process(regate_process: Regate) -> None:
    result = regate_process(
        "eval", "policy-bundles/default", "--request", "examples/requests/redact-openai.json"
    )
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["action:", "redact"]
    assert "[EMAIL]" in result.out and "[CARD]" in result.out
    assert "jane.doe@example.com" not in result.out.split("forward:", 1)[1]


# Text before the match whose code points, UTF-16 units, UTF-8 bytes and
# grapheme clusters all count differently.
PREFIXES = {
    "zwj_family": "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "zwj_and_skin_tone": "\U0001f9d1\U0001f3fd\u200d\U0001f4bb and \U0001f44d\U0001f3ff",
    "flag": "\U0001f1eb\U0001f1f7 Paris",
    "combining_acute": "Ze\u0301lie and Rene\u0301e",
    "stacked_combining": "Z\u0308\u0301\u0323algo",
    "astral_letters": "\U0001d518\U0001d52b\U0001d526",
    "mixed": "\u00e9\u0301 \U0001f3f3\ufe0f\u200d\U0001f308 \u0915\u094d\u0937",
}
EMAIL = "jane.doe@example.com"
SSN = "078-05-1120"


def wire_request(api: str, text: str) -> dict[str, Any]:
    if api == "openai.chat":
        return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


@pytest.mark.parametrize("api", ["openai.chat", "anthropic.messages"])
@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
def test_replacements_land_at_code_point_offsets(
    regate: Regate, tmp_path: Path, api: str, prefix: str
) -> None:
    text = f"{prefix} mail {EMAIL}, ssn {SSN} \U0001f600\u200d x\u0301"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(wire_request(api, text), ensure_ascii=False), encoding="utf-8")

    doc = evaluate(regate, path)
    request, decision, forward = doc["request"], doc["decision"], doc["forward"]
    assert request["api"] == api
    assert decision["action"] == "redact"
    [pointer] = [p for p, t in iter_texts(request) if t == text]
    spans = {
        f["detector"]: (f["start"], f["end"]) for f in request["findings"] if f["path"] == pointer
    }
    assert spans == {
        "pii.email": (text.index(EMAIL), text.index(EMAIL) + len(EMAIL)),
        "pii.ssn": (text.index(SSN), text.index(SSN) + len(SSN)),
    }
    # The prefix makes byte and UTF-16 offsets differ from code points, so a
    # wrong unit would put the replacement elsewhere.
    start = spans["pii.email"][0]
    assert len(text[:start].encode("utf-8")) != start
    assert forward is not None
    assert (
        dict(iter_texts(forward))[pointer]
        == f"{prefix} mail [EMAIL], ssn [SSN] \U0001f600\u200d x\u0301"
    )
    assert {(r["path"], r["start"], r["end"]) for r in decision["redactions"] if "start" in r} == {
        (pointer, *spans["pii.email"]),
        (pointer, *spans["pii.ssn"]),
    }


ACTION_RULE_BROKEN = (
    "package regate\n\nimport rego.v1\n\n"
    'decision := {"action": "allow", "redactions": [{"path": "/messages/0/content/0/text", '
    '"start": 0, "end": 4, "replacement": "[X]"}]}\n'
)
UNCONFIGURED_ROUTE = (
    "package regate\n\nimport rego.v1\n\n"
    'decision := {"action": "route", "route": {"targets": [{"provider": "nowhere", "model": "m"}]}}\n'
)


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (ACTION_RULE_BROKEN, "does not match"),
        (UNCONFIGURED_ROUTE, "'nowhere', which is not configured"),
    ],
    ids=["breaks_action_rule", "unconfigured_provider"],
)
def test_bad_decisions_fail_closed(regate: Regate, tmp_path: Path, policy: str, words: str) -> None:
    bundle = write_files(tmp_path / "bundle", {"regate/policy.rego": policy})
    doc = evaluate(regate, REQUESTS / "allow-openai.json", bundle=bundle)
    decision = doc["decision"]
    assert decision["action"] == "deny"
    assert [r["code"] for r in decision["reasons"]] == ["policy.error"]
    assert words in decision["reasons"][0]["message"]
    assert decision["status"] == 503
    assert doc["forward"] is None


def test_route_to_a_provider_the_config_names_is_accepted(regate: Regate, tmp_path: Path) -> None:
    bundle = write_files(tmp_path / "bundle", {"regate/policy.rego": UNCONFIGURED_ROUTE})
    config = (
        write_files(tmp_path, {"regate.yaml": "providers:\n  nowhere: {type: echo, region: us}\n"})
        / "regate.yaml"
    )
    doc = evaluate(regate, REQUESTS / "allow-openai.json", "--config", config, bundle=bundle)
    assert doc["decision"]["action"] == "route"
    assert doc["forward"] is not None


def test_fail_closed_as_a_process(regate_process: Regate, tmp_path: Path) -> None:
    bundle = write_files(tmp_path / "bundle", {"regate/policy.rego": ACTION_RULE_BROKEN})
    result = regate_process("eval", bundle, "--request", REQUESTS / "allow-openai.json")
    assert result.code == 0, result.err
    assert result.out.splitlines()[:2] == [
        "action:   deny  (status 503)",
        "reason:   policy.error: action 'allow' does not match the decision's effects (expected 'redact')",
    ]
    assert "forward:  nothing (denied)" in result.out


def test_explicit_api_overrides_the_guess(regate: Regate, tmp_path: Path) -> None:
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(body))
    assert evaluate(regate, path)["request"]["api"] == "openai.chat"
    assert (
        evaluate(regate, path, "--api", "anthropic.messages")["request"]["api"]
        == "anthropic.messages"
    )
