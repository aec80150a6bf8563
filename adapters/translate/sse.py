"""Server-sent events: an incremental parser (bytes in, events out) and a serializer.

The parser follows the WHATWG event-stream rules: lines end in ``\\r\\n``, ``\\n``
or ``\\r``; ``:`` starts a comment; ``data`` lines join with ``\\n``; a blank line
dispatches the event; an unterminated event at end of stream is discarded.
Chunks may split anywhere, even inside a line ending or a UTF-8 character.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.translate.errors import TranslateError

DEFAULT_MAX_EVENT_CHARS = 16 * 1024 * 1024
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event; ``event`` is ``None`` for the default ``message`` type."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The ``data`` field parsed as JSON (raises ``TranslateError`` if it is not)."""
        try:
            return json.loads(self.data)
        except json.JSONDecodeError as err:
            raise TranslateError(
                "upstream_malformed_event", f"stream event is not JSON: {err.msg}"
            ) from None


def dumps(payload: Any) -> str:
    """Compact JSON, as the providers send it (UTF-8 kept, no spaces)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def json_event(payload: Any, event: str | None = None) -> SSEEvent:
    """An event whose data is ``payload`` as compact JSON."""
    return SSEEvent(data=dumps(payload), event=event)


class SSEParser:
    """Incremental event-stream parser.

    >>> parser = SSEParser()
    >>> parser.feed(b"event: ping\\r\\nda")
    []
    >>> parser.feed(b'ta: {}\\r\\n\\r\\n')
    [SSEEvent(data='{}', event='ping', id=None, retry=None)]
    """

    def __init__(self, *, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max = max_event_chars
        self._buffer = ""
        self._skip_lf = False  # the previous chunk ended in "\r": a leading "\n" belongs to it
        self._at_start = True
        self._event: str | None = None
        self._data: list[str] = []
        self._data_chars = 0
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next bytes of the stream; return the events they complete."""
        text = self._decoder.decode(chunk)
        if self._at_start and text:
            self._at_start = False
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text:
            self._skip_lf = False
            text = text.removeprefix("\n")
        self._buffer += text
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_BREAK.finditer(self._buffer):
            if match.group() == "\r" and match.end() == len(self._buffer):
                self._skip_lf = True
            event = self._line(self._buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = self._buffer[start:]
        if len(self._buffer) + self._data_chars > self._max:
            raise TranslateError(
                "sse_event_too_large", f"stream event exceeds {self._max} characters"
            )
        return events

    def finish(self) -> list[SSEEvent]:
        """End of stream: flush the decoder; an event without its blank line is dropped."""
        tail = self._decoder.decode(b"", final=True)
        events = self.feed(tail.encode()) if tail else []
        self._buffer = ""
        self._reset()
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._reset()
            return None
        event = SSEEvent(
            data="\n".join(self._data), event=self._event or None, id=self._id, retry=self._retry
        )
        self._reset()
        return event

    def _reset(self) -> None:
        # The last event id persists across events (as in browsers); the rest does not.
        self._event = None
        self._data = []
        self._data_chars = 0
        self._retry = None


def serialize(event: SSEEvent) -> bytes:
    """One event in wire form, ending with its blank line.

    >>> serialize(SSEEvent(data="a\\nb", event="x"))
    b'event: x\\ndata: a\\ndata: b\\n\\n'
    """
    lines = []
    if event.event is not None:
        lines.append(f"event: {_single_line('event', event.event)}")
    if event.id is not None:
        lines.append(f"id: {_single_line('id', event.id)}")
    if event.retry is not None:
        lines.append(f"retry: {event.retry}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(event.data))
    return ("\n".join(lines) + "\n\n").encode()


def serialize_all(events: list[SSEEvent]) -> bytes:
    """Several events back to back."""
    return b"".join(serialize(event) for event in events)


def _single_line(field: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise ValueError(f"SSE {field} must be a single line")
    return value
