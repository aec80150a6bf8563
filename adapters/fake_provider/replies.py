"""What the fake provider answers, independent of any wire format.

Every wire module reduces its request to a :class:`Prompt` and turns the
:class:`Answer` computed here back into its own JSON, so all three providers
echo, count tokens and call tools by the same rules:

- the assistant text is ``Settings.reply`` or, when that is ``None``,
  ``"echo: <text of the last user message>"``;
- tokens are ``ceil(chars / 4)``, prompt over every text sent, completion over
  the answer;
- when the request declares tools and the last message is a user message that
  contains ``!tool`` (first declared tool) or ``!tool:NAME``, the answer is a
  call of that tool; its arguments fill each property of the tool's JSON
  schema by type (strings get the user text without the trigger);
- a ``max_tokens``-style limit truncates the text and ends with reason
  ``"length"`` (each wire renames it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TOOL_TRIGGER = "!tool"
_TRIGGER_RE = re.compile(r"!tool(?::([A-Za-z0-9_.\-]+))?")

DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "claude-haiku",
    "gemini-2.0-flash",
)


@dataclass
class Settings:
    """Mutable knobs of one fake provider; tests may change them between requests."""

    reply: str | None = None
    chunk_size: int = 8
    models: tuple[str, ...] = DEFAULT_MODELS
    embedding_dim: int = 8
    hang_s: float = 300.0
    api_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake model makes; ``arguments`` is already JSON-compatible."""

    id: str
    name: str
    arguments: dict[str, Any]

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Prompt:
    """The wire-independent view of a chat request."""

    last_user_text: str
    last_is_user: bool
    all_text: str
    tools: Mapping[str, Mapping[str, Any]]
    max_tokens: int | None = None


@dataclass(frozen=True)
class Answer:
    """The fake model's output: either ``text`` or ``tool_call``."""

    text: str
    tool_call: ToolCall | None
    prompt_tokens: int
    completion_tokens: int
    truncated: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def count_tokens(text: str) -> int:
    """Deterministic token estimate: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def answer(prompt: Prompt, settings: Settings, ident: str) -> Answer:
    """Decide what the fake model says to ``prompt``; ``ident`` names a tool call."""
    prompt_tokens = count_tokens(prompt.all_text)
    tool = _pick_tool(prompt) if prompt.last_is_user else None
    if tool is not None:
        name, schema = tool
        args = synth_arguments(schema, strip_trigger(prompt.last_user_text))
        call = ToolCall(id=ident, name=name, arguments=args)
        used = count_tokens(name + call.arguments_json())
        return Answer("", call, prompt_tokens, used, truncated=False)
    text = settings.reply if settings.reply is not None else f"echo: {prompt.last_user_text}"
    truncated = False
    if prompt.max_tokens is not None and count_tokens(text) > prompt.max_tokens:
        text, truncated = text[: max(prompt.max_tokens, 0) * 4], True
    return Answer(text, None, prompt_tokens, count_tokens(text), truncated)


def strip_trigger(text: str) -> str:
    """``text`` without the ``!tool`` trigger, trimmed."""
    return _TRIGGER_RE.sub("", text).strip()


def _pick_tool(prompt: Prompt) -> tuple[str, Mapping[str, Any]] | None:
    if not prompt.tools:
        return None
    match = _TRIGGER_RE.search(prompt.last_user_text)
    if match is None:
        return None
    wanted = match.group(1)
    name = wanted if wanted in prompt.tools else next(iter(prompt.tools))
    return name, prompt.tools[name]


def synth_arguments(schema: Mapping[str, Any], text: str) -> dict[str, Any]:
    """Arguments that fit ``schema``'s top-level properties, filled by type.

    >>> synth_arguments({"properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}, "hi")
    {'q': 'hi', 'n': 1}
    """
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return {}
    return {str(name): _value_for(spec, text) for name, spec in props.items()}


def _value_for(spec: Any, text: str) -> Any:
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(spec, Mapping) and isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    defaults: dict[str, Any] = {
        "integer": 1,
        "number": 1,
        "boolean": True,
        "array": [],
        "object": {},
        "null": None,
    }
    return defaults.get(str(kind).lower(), text)


def pieces(text: str, size: int) -> list[str]:
    """``text`` cut into consecutive pieces of ``size`` characters (at least one piece)."""
    step = max(size, 1)
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]


def sse(data: Mapping[str, Any] | str, event: str | None = None, *, sep: str = "\n\n") -> bytes:
    """One server-sent event frame."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}{sep}".encode()


def texts_of(parts: Any, keys: Sequence[str] = ("text",)) -> Iterator[str]:
    """Every string under ``keys`` in a string or a list of content parts."""
    if isinstance(parts, str):
        yield parts
        return
    if not isinstance(parts, list):
        return
    for part in parts:
        if isinstance(part, str):
            yield part
        elif isinstance(part, Mapping):
            for key in keys:
                value = part.get(key)
                if isinstance(value, str):
                    yield value
                elif isinstance(value, list):
                    yield from texts_of(value, keys)
                elif isinstance(value, Mapping):
                    yield json.dumps(value, sort_keys=True)
