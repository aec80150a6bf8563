"""The ``echo`` provider: answers with the request exactly as a provider would have
received it, after policy. It speaks the client's own wire format, needs no
network and no key; the demo and policy authors use it to see what leaves the
building.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

from adapters.providers.base import ProviderCall
from adapters.providers.upstream import UpstreamResponse
from adapters.translate import anthropic_messages, openai_chat, openai_embeddings
from adapters.translate.canonical import CanonicalResponse, Event, StopReason
from adapters.translate.sse import serialize_all
from engine.config import ProviderConfig
from engine.document import estimate_tokens, new_request_id

CHUNK_CHARS = 48
EMBEDDING_DIMENSIONS = 8
_SSE_HEADERS = {"content-type": "text/event-stream"}
_JSON_HEADERS = {"content-type": "application/json"}


def echo_text(body: Any) -> str:
    """What the echo provider says: the JSON body it received."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = struct.unpack(f">{EMBEDDING_DIMENSIONS}H", digest[: 2 * EMBEDDING_DIMENSIONS])
    return [round(v / 65535.0, 6) for v in raw]


class EchoProvider:
    def __init__(self, config: ProviderConfig, *_: Any) -> None:
        self.name = config.name
        self.config = config

    def wire_api(self, operation: str, client_api: str) -> str:
        return client_api

    async def send(self, call: ProviderCall) -> UpstreamResponse:
        body = dict(call.body)
        if call.operation == "embeddings":
            return self._embeddings(call, body)
        api = call.api
        text = echo_text(body)
        stop_reason: StopReason = "end"
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if isinstance(limit, int) and estimate_tokens(len(text)) > limit:
            # Like a real provider, never answer with more than max_tokens.
            text, stop_reason = text[: limit * 4], "max_tokens"
        prompt_tokens = estimate_tokens(
            len(json.dumps(body.get("messages", []), ensure_ascii=False))
        )
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": estimate_tokens(len(text))}
        response: CanonicalResponse = {
            "id": ("msg_" if api == anthropic_messages.API else "chatcmpl-") + new_request_id()[4:],
            "model": call.model,
            "content": [{"type": "text", "text": text}],
            "tool_calls": [],
            "stop_reason": stop_reason,
            "usage": usage,  # type: ignore[typeddict-item]
        }
        if not call.stream:
            if api == anthropic_messages.API:
                out = anthropic_messages.response_from_canonical(response)
            else:
                out = openai_chat.response_from_canonical(response)
            return UpstreamResponse(200, _JSON_HEADERS, json.dumps(out).encode("utf-8"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return UpstreamResponse(200, _SSE_HEADERS, chunks=_stream(api, response, include_usage))

    def _embeddings(self, call: ProviderCall, body: dict[str, Any]) -> UpstreamResponse:
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        out = openai_embeddings.response_from_canonical(
            {
                "model": call.model,
                "vectors": [_vector(str(t)) for t in texts],
                "usage": {
                    "prompt_tokens": sum(estimate_tokens(len(str(t))) for t in texts),
                    "completion_tokens": 0,
                },
            },
            encoding_format=body.get("encoding_format", "float"),
        )
        return UpstreamResponse(200, _JSON_HEADERS, json.dumps(out).encode("utf-8"))


async def _stream(
    api: str, response: CanonicalResponse, include_usage: bool
) -> AsyncIterator[bytes]:
    encoder = (
        anthropic_messages.StreamEncoder()
        if api == anthropic_messages.API
        else openai_chat.StreamEncoder(include_usage=include_usage)
    )
    text = response["content"][0]["text"]
    events: list[Event] = [{"type": "start", "id": response["id"], "model": response["model"]}]
    events += [
        {"type": "text_delta", "index": 0, "text": text[i : i + CHUNK_CHARS]}
        for i in range(0, len(text), CHUNK_CHARS)
    ]
    usage = response["usage"] or {"prompt_tokens": 0, "completion_tokens": 0}
    events.append({"type": "stop", "stop_reason": response["stop_reason"]})
    events.append(
        {
            "type": "usage",
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
        }
    )
    for event in events:
        yield serialize_all(encoder.feed(event))
    yield serialize_all(encoder.finish())
