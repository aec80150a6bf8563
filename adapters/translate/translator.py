"""Provider response -> client response, whole or streamed, through the canonical hub.

Formats are registered by API name. Same-API pairs pass through (streams are
still decoded, so usage and the stop reason are known for audit and quotas).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from adapters.translate import anthropic_messages, gemini, openai_chat, openai_embeddings
from adapters.translate.canonical import (
    CanonicalResponse,
    ErrorEvent,
    Event,
    StopReason,
    StreamEncoder,
    Usage,
)
from adapters.translate.errors import TranslateError, redact_secrets
from adapters.translate.openai_embeddings import EncodingFormat
from adapters.translate.sse import DEFAULT_MAX_EVENT_CHARS, SSEEvent, SSEParser, serialize_all

CHAT_FORMATS: dict[str, ModuleType] = {
    openai_chat.API: openai_chat,
    anthropic_messages.API: anthropic_messages,
    gemini.API: gemini,
}
EMBEDDING_PROVIDERS = (openai_embeddings.API, "gemini.embed_content")


def translate_response(
    provider_api: str,
    client_api: str,
    body: Mapping[str, Any],
    *,
    created: int | None = None,
    encoding_format: EncodingFormat = "float",
    model: str = "",
    response_id: str = "",
) -> Mapping[str, Any]:
    """A provider's (non-streamed) response body in the client's format.

    ``model`` and ``response_id`` fill in what a provider leaves out (Gemini
    embeddings name no model). A same-API body is returned as is, not copied.

    >>> body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
    ...         "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
    ...         "usage": {"input_tokens": 3, "output_tokens": 1}}
    >>> out = translate_response("anthropic.messages", "openai.chat", body, created=0)
    >>> out["choices"][0]["message"]["content"], out["usage"]["total_tokens"]
    ('hi', 4)
    """
    if client_api == openai_embeddings.API and provider_api in EMBEDDING_PROVIDERS:
        if provider_api == client_api and encoding_format == "float":
            return body
        with _malformed("upstream_malformed_response"):
            if provider_api == openai_embeddings.API:
                embeddings = openai_embeddings.response_to_canonical(body)
            else:
                embeddings = gemini.embeddings_to_canonical(body, model=model)
        embeddings["model"] = embeddings["model"] or model
        return openai_embeddings.response_from_canonical(
            embeddings, encoding_format=encoding_format
        )
    provider, client = _format(provider_api), _format(client_api)
    if provider_api == client_api:
        return body
    with _malformed("upstream_malformed_response"):
        canonical: CanonicalResponse = provider.response_to_canonical(body)
    canonical["id"] = canonical["id"] or response_id
    canonical["model"] = canonical["model"] or model
    if client_api == openai_chat.API:
        return openai_chat.response_from_canonical(canonical, created=created)
    result: dict[str, Any] = client.response_from_canonical(canonical)
    return result


class StreamTranslator:
    """Incremental stream translation: provider SSE bytes in, client SSE bytes out.

    Call :meth:`feed` with each chunk read from the provider and :meth:`finish`
    at its end; nothing is buffered beyond the event being parsed. Decoding or
    parsing failures, upstream errors and streams that end before their stop
    become an error event in the client's format, after which output stops.
    Upstream error messages are stripped of ``secrets`` and of anything key-shaped,
    and name ``provider_name`` when given.

    >>> t = StreamTranslator("openai.chat", "anthropic.messages")
    >>> out = t.feed(b'data: {"id":"c1","model":"m","choices":[{"index":0,'
    ...              b'"delta":{"content":"Hi"},"finish_reason":"stop"}]}\\n\\n')
    >>> b"event: content_block_delta" in out, t.stop_reason
    (True, 'end')
    """

    def __init__(
        self,
        provider_api: str,
        client_api: str,
        include_usage: bool = False,
        *,
        created: int | None = None,
        model: str = "",
        response_id: str = "",
        provider_name: str = "",
        secrets: Iterable[str] = (),
        max_event_chars: int = DEFAULT_MAX_EVENT_CHARS,
    ) -> None:
        self._parser = SSEParser(max_event_chars=max_event_chars)
        self._decoder = _format(provider_api).StreamDecoder()
        self._encoder: StreamEncoder
        if client_api == openai_chat.API:
            self._encoder = openai_chat.StreamEncoder(include_usage=include_usage, created=created)
        else:
            self._encoder = _format(client_api).StreamEncoder()
        self._passthrough = provider_api == client_api
        self._drop_usage_chunks = (
            self._passthrough and client_api == openai_chat.API and not include_usage
        )
        self._model = model
        self._response_id = response_id
        self._provider_name = provider_name
        self._secrets = tuple(secrets)
        self._closed = False
        self.usage: Usage | None = None
        self.stop_reason: StopReason | None = None
        self.error: ErrorEvent | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Translate the next bytes from the provider."""
        if self._closed:
            return b""
        try:
            events = self._parser.feed(chunk)
        except TranslateError as err:
            return serialize_all(self._fail(err))
        return serialize_all([out for event in events for out in self.feed_event(event)])

    def feed_event(self, event: SSEEvent) -> list[SSEEvent]:
        """Translate one already-parsed provider event."""
        if self._closed:
            return []
        try:
            with _malformed("upstream_malformed_event"):
                canonical = self._decoder.feed(event)
        except TranslateError as err:
            return self._fail(err)
        self._observe(canonical)
        if self._passthrough:
            if self.error is not None:  # re-encoded, so that its message is cleaned too
                return self._encode([self.error])
            if self._drop_usage_chunks and openai_chat.is_usage_only_chunk(event):
                return []
            return [event]
        return self._encode(canonical)

    def finish(self) -> bytes:
        """End of the provider stream: flush, and close the client stream properly."""
        if self._closed:
            return b""
        out = [out for event in self._parser.finish() for out in self.feed_event(event)]
        if not self._closed:
            tail = self._decoder.finish()
            self._observe(tail)
            if self.stop_reason is None and self.error is None:
                incomplete = _error("upstream_incomplete", "the stream ended early")
                self._observe([incomplete])  # names the provider, as upstream errors do
                tail.append(incomplete)
            if self._passthrough:  # the provider's own events already went out
                tail = [event for event in tail if event["type"] == "error"]
            out += self._encode(tail)
            if not self._closed and not self._passthrough:
                out += self._encoder.finish()
        self._closed = True
        return serialize_all(out)

    def _observe(self, events: list[Event]) -> None:
        for event in events:
            if event["type"] == "start":
                event["id"] = event["id"] or self._response_id
                event["model"] = event["model"] or self._model
            elif event["type"] == "usage":
                self.usage = {
                    "prompt_tokens": event["prompt_tokens"],
                    "completion_tokens": event["completion_tokens"],
                }
            elif event["type"] == "stop":
                self.stop_reason = event["stop_reason"]
            elif event["type"] == "error":
                message = redact_secrets(event["message"][:4096], self._secrets)[:500]
                if self._provider_name:
                    message = f"provider '{self._provider_name}' failed: {message}"
                event["message"] = message
                self.error = event

    def _encode(self, events: list[Event]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for event in events:
            out += self._encoder.feed(event)
            if event["type"] == "error":
                self._closed = True
                break
        return out

    def _fail(self, err: TranslateError) -> list[SSEEvent]:
        event = _error(err.code, err.message)
        self.error = event
        self._closed = True
        return self._encoder.feed(event)


@contextmanager
def _malformed(code: str) -> Iterator[None]:
    """Provider bodies of an unexpected shape fail with a coded error, not a crash."""
    try:
        yield
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError) as err:
        raise TranslateError(
            code, f"unexpected shape in the provider's body ({type(err).__name__})"
        ) from None


def _error(code: str, message: str) -> ErrorEvent:
    return {"type": "error", "status": 502, "code": code, "message": message}


def _format(api: str) -> Any:
    try:
        return CHAT_FORMATS[api]
    except KeyError:
        raise TranslateError("unsupported_translation", f"no translator for {api!r}") from None
