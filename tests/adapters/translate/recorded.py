"""Recorded provider payloads and SDK harnesses shared by the translate tests.

The files under ``recorded/`` have the exact shape the providers send (ids,
field order, ``\\r\\n`` framing of Gemini's SSE); tests derive expectations from
them rather than from the translators' own output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

from adapters.translate.canonical import CanonicalResponse, Event
from adapters.translate.sse import SSEEvent, SSEParser
from adapters.translate.translator import CHAT_FORMATS

RECORDED = Path(__file__).parent / "recorded"
PROVIDER_APIS = ("openai.chat", "anthropic.messages", "gemini.generate_content")
CLIENT_APIS = ("openai.chat", "anthropic.messages")
PREFIX = {
    "openai.chat": "openai_chat",
    "anthropic.messages": "anthropic",
    "gemini.generate_content": "gemini",
}


def load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


def load_bytes(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def parse_sse(data: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(data) + parser.finish()


def decode_stream(api: str, data: bytes) -> list[Event]:
    """Canonical events of a whole recorded (or translated) stream."""
    decoder = CHAT_FORMATS[api].StreamDecoder()
    events: list[Event] = [out for event in parse_sse(data) for out in decoder.feed(event)]
    tail: list[Event] = decoder.finish()
    return events + tail


def essentials(response: CanonicalResponse) -> dict[str, Any]:
    """What every format can carry: joined text, tool calls, usage, a coarse stop reason."""
    stop = response["stop_reason"]
    return {
        "text": "".join(part["text"] for part in response["content"]),
        "tools": [(call["id"], call["name"], call["arguments"]) for call in response["tool_calls"]],
        "stop": "end" if stop == "stop_sequence" else stop,
        "usage": response["usage"],
    }


def _mock(handler: Callable[[httpx2.Request], httpx2.Response]) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def openai_client(
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> openai.OpenAI:
    """A real OpenAI SDK client whose every request gets this response."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    return openai.OpenAI(
        api_key="test", base_url="http://regate.test/v1", http_client=_mock(handler), max_retries=0
    )


def anthropic_client(
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> anthropic.Anthropic:
    """A real Anthropic SDK client whose every request gets this response."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": content_type}, content=body)

    return anthropic.Anthropic(
        api_key="test", base_url="http://regate.test", http_client=_mock(handler), max_retries=0
    )


CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES: dict[str, Any] = {
    "model": "m",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
