"""OpenAI Chat Completions <-> canonical, from recorded request bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.wire import anthropic_messages, openai_chat
from engine.document import complete
from engine.errors import InputError

PAYLOADS = Path(__file__).parent / "payloads"
RECORDED = ["openai_chat_vision", "openai_chat_tools"]


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(messages), **extra}


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_body_reads_to_the_expected_canonical_document(name: str) -> None:
    body = load(f"{name}.json")
    want = load(f"{name}.canonical.json")
    pristine = copy.deepcopy(body)
    got = openai_chat.to_canonical(body)
    assert got.partial == want["partial"]
    assert dict(got.attachments) == want["attachments"]
    assert body == pristine


@pytest.mark.parametrize("name", RECORDED)
def test_same_api_re_emission_restores_the_original_body(name: str) -> None:
    body = load(f"{name}.json")
    canon = openai_chat.to_canonical(body)
    doc = complete(canon.partial)
    pristine_doc = copy.deepcopy(doc)
    assert openai_chat.from_canonical(doc, canon.attachments, original=body) == body
    assert doc == pristine_doc


def test_redactions_and_model_changes_apply_while_unmodelled_fields_survive() -> None:
    body = load("openai_chat_tools.json")
    canon = openai_chat.to_canonical(body)
    doc = complete(canon.partial)
    doc["model"] = "gpt-4o-mini"
    doc["messages"][1]["content"][0]["text"] = (
        "Email the Q3 numbers to [EMAIL] and look up ticket T-88."
    )
    doc["params"]["max_tokens"] = 256
    out = openai_chat.from_canonical(doc, canon.attachments, original=body)
    assert out["model"] == "gpt-4o-mini"
    assert out["messages"][1] == {
        "role": "user",
        "name": "dana",
        "content": "Email the Q3 numbers to [EMAIL] and look up ticket T-88.",
    }
    assert out["max_completion_tokens"] == 256 and "max_tokens" not in out
    assert (out["seed"], out["user"], out["tool_choice"]) == (7, "user-1234", "auto")
    assert out["tools"][0]["function"]["strict"] is True


def test_max_tokens_is_the_default_spelling() -> None:
    canon = openai_chat.to_canonical(
        chat({"role": "user", "content": "hi"}, max_completion_tokens=9)
    )
    assert canon.partial["params"] == {"max_tokens": 9}
    assert openai_chat.from_canonical(canon.partial)["max_tokens"] == 9
    assert "max_completion_tokens" not in openai_chat.from_canonical(canon.partial)


def test_tool_call_arguments_parse_to_objects_and_keep_invalid_text() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": [1, 2]}'}},
        {"id": "b", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}},
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}},
    ]
    canon = openai_chat.to_canonical(
        chat({"role": "assistant", "content": None, "tool_calls": calls})
    )
    got = canon.partial["messages"][0]["tool_calls"]
    assert [c["arguments"] for c in got] == [{"x": [1, 2]}, "[1, 2]", "{oops"]
    emitted = openai_chat.from_canonical(canon.partial)["messages"][0]
    assert emitted["content"] is None
    assert [c["function"]["arguments"] for c in emitted["tool_calls"]] == [
        '{"x": [1, 2]}',
        "[1, 2]",
        "{oops",
    ]


def test_cross_api_document_drops_what_openai_cannot_express() -> None:
    body = load("anthropic_messages_tools.json")
    canon = anthropic_messages.to_canonical(body)
    out = openai_chat.from_canonical(complete(canon.partial), canon.attachments, original=body)
    assert set(out) == {"model", "messages", "tools", "max_tokens"}
    assert out["messages"][0] == {"role": "system", "content": "You are an operations agent."}
    assert out["messages"][2]["tool_calls"][1] == {
        "id": "toolu_01B19r91rw91mr928946mr0",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"timezone": "America/New_York"}'},
    }
    assert out["messages"][4] == {
        "role": "tool",
        "content": "time service unavailable",
        "tool_call_id": "toolu_01B19r91rw91mr928946mr0",
    }


def test_missing_image_payload_is_an_input_error() -> None:
    canon = openai_chat.to_canonical(load("openai_chat_vision.json"))
    with pytest.raises(InputError) as err:
        openai_chat.from_canonical(canon.partial, {})
    assert err.value.param == "/messages/1/content/2"


def test_images_outside_user_messages_cannot_be_sent() -> None:
    doc = {
        "api": "anthropic.messages",
        "operation": "chat",
        "model": "m",
        "messages": [
            {
                "role": "tool",
                "tool_call_id": "t",
                "content": [
                    {
                        "type": "image",
                        "media_type": "image/png",
                        "source": "url",
                        "bytes": 0,
                        "url": "https://x.example/a.png",
                    }
                ],
            }
        ],
    }
    with pytest.raises(InputError, match="cannot carry image"):
        openai_chat.from_canonical(doc)


def test_embeddings_documents_are_refused() -> None:
    with pytest.raises(InputError) as err:
        openai_chat.from_canonical({"operation": "embeddings", "model": "m", "messages": []})
    assert err.value.param == "operation"


USER = {"role": "user", "content": "hi"}

REFUSED = [
    (
        "audio part",
        chat(
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                ],
            }
        ),
        "messages[0].content[0]",
    ),
    (
        "file part",
        chat({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}),
        "messages[0].content[0]",
    ),
    (
        "refusal part",
        chat({"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}),
        "messages[0].content[0]",
    ),
    (
        "assistant refusal text",
        chat({"role": "assistant", "content": "x", "refusal": "no"}),
        "messages[0].refusal",
    ),
    (
        "unknown part",
        chat({"role": "user", "content": [{"type": "video", "url": "x"}]}),
        "messages[0].content[0].type",
    ),
    (
        "svg data URL",
        chat(
            {
                "role": "user",
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/svg+xml;base64,PHN2Zy8+"},
                    }
                ],
            }
        ),
        "messages[0].content[0].image_url.url",
    ),
    (
        "percent-encoded data URL",
        chat(
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
            }
        ),
        "messages[0].content[0].image_url.url",
    ),
    (
        "bad base64",
        chat(
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
                ],
            }
        ),
        "messages[0].content[0].image_url.url",
    ),
    (
        "file URL",
        chat(
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
            }
        ),
        "messages[0].content[0].image_url.url",
    ),
    ("deprecated functions", chat(USER, functions=[{"name": "f"}]), "functions"),
    (
        "unknown top-level field",
        chat(USER, prediction={"type": "content", "content": "x"}),
        "prediction",
    ),
    (
        "custom tool",
        chat(USER, tools=[{"type": "custom", "custom": {"name": "x"}}]),
        "tools[0].type",
    ),
    ("function role", chat({"role": "function", "name": "f", "content": "x"}), "messages[0].role"),
]


@pytest.mark.parametrize(("note", "body", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_uninspectable_content_is_refused(note: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InputError) as err:
        openai_chat.to_canonical(body)
    assert err.value.param == param
    assert err.value.code == "invalid_request"


MALFORMED = [
    ("not an object", ["model"], None),
    ("no model", {"messages": [USER]}, "model"),
    ("empty model", chat(USER, model=""), "model"),
    ("messages not a list", {"model": "m", "messages": "hi"}, "messages"),
    ("no messages", {"model": "m", "messages": []}, "messages"),
    ("message not an object", chat("hi"), "messages[0]"),
    ("content a number", chat({"role": "user", "content": 3}), "messages[0].content"),
    ("user content null", chat({"role": "user", "content": None}), "messages[0].content"),
    ("tool without id", chat({"role": "tool", "content": "x"}), "messages[0].tool_call_id"),
    (
        "arguments not a string",
        chat(
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": {}}}
                ],
            }
        ),
        "messages[0].tool_calls[0].function.arguments",
    ),
    ("max_tokens a string", chat(USER, max_tokens="10"), "max_tokens"),
    ("max_tokens a bool", chat(USER, max_tokens=True), "max_tokens"),
    (
        "both token limits",
        chat(USER, max_tokens=1, max_completion_tokens=2),
        "max_completion_tokens",
    ),
    ("temperature too high", chat(USER, temperature=2.5), "temperature"),
    ("temperature NaN", chat(USER, temperature=float("nan")), "temperature"),
    ("stream a string", chat(USER, stream="yes"), "stream"),
    ("stop of numbers", chat(USER, stop=[1]), "stop[0]"),
    ("metadata of numbers", chat(USER, metadata={"a": 1}), "metadata.a"),
    ("metadata too big", chat(USER, metadata={str(i): "v" for i in range(17)}), "metadata"),
    ("metadata value too long", chat(USER, metadata={"k": "v" * 513}), "metadata.k"),
    ("tool without function", chat(USER, tools=[{"type": "function"}]), "tools[0].function"),
    (
        "parameters with NaN",
        chat(
            USER,
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"x": float("inf")}}}
            ],
        ),
        "tools[0].function.parameters.x",
    ),
]


@pytest.mark.parametrize(("note", "body", "param"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_raise_input_error(note: str, body: Any, param: str | None) -> None:
    with pytest.raises(InputError) as err:
        openai_chat.to_canonical(body)
    assert err.value.param == param
