"""OpenAI Chat Completions request body <-> canonical request document (Contract 1).

Fields regate models become canonical; a documented list of harmless
parameters (``PASSTHROUGH``) travels only back into the same API; anything
else, and any content policy cannot inspect (audio, files, refusals, the
deprecated ``functions``), is refused with :class:`engine.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.wire import base
from adapters.wire.base import EMPTY, Canonicalised, MessageBuilder, Part, fail

API = "openai.chat"

PASSTHROUGH = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "n",
        "seed",
        "user",
        "response_format",
        "tool_choice",
        "parallel_tool_calls",
        "stream_options",
        "service_tier",
        "store",
        "reasoning_effort",
        "modalities",
        "audio",
        "verbosity",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
    }
)
"""Top-level parameters that carry no prompt content: kept when re-emitting to openai.chat."""

_MODELLED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stream",
        "stop",
        "metadata",
    }
)
# Nested fields that travel back into openai.chat; the SDK-echoed response fields
# (refusal, annotations, function_call) are only ever null here (see require_none).
_NESTED_KEEP = frozenset({"name", "detail", "strict", "refusal", "annotations", "function_call"})
_ROLES = ("system", "developer", "user", "assistant", "tool")
_MESSAGE_KEYS = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {
            "role",
            "content",
            "name",
            "tool_calls",
            "refusal",
            "audio",
            "function_call",
            "annotations",
        }
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}
_UNINSPECTABLE_PARTS = {"input_audio": "audio input", "file": "file input", "refusal": "refusals"}


@base.guarded
def to_canonical(body: Mapping[str, Any]) -> Canonicalised:
    """Read a ``POST /v1/chat/completions`` body; the input is left untouched."""
    body = base.json_body(body)
    if "functions" in body or "function_call" in body:
        fail("the deprecated 'functions' API is not supported; use 'tools'", "functions")
    base.check_keys(body, _MODELLED | PASSTHROUGH, "", "request")
    model = base.string(body.get("model"), "model", non_empty=True)
    raw_messages = base.array(body.get("messages"), "messages")
    if not raw_messages:
        fail("messages must not be empty", "messages")
    builder = MessageBuilder()
    for index, message in enumerate(raw_messages):
        _read_message(builder, message, f"messages[{index}]")
    tools = [
        _read_tool(t, f"tools[{i}]")
        for i, t in enumerate(base.optional_array(body.get("tools"), "tools"))
    ]
    return builder.result(
        api=API,
        operation="chat",
        model=model,
        tools=tools,
        params=_read_params(body),
        metadata=base.metadata(body.get("metadata"), "metadata"),
    )


def _read_message(builder: MessageBuilder, raw: Any, param: str) -> None:
    message = base.mapping(raw, param)
    role = message.get("role")
    if role not in _ROLES:
        fail(f"{param}.role must be one of {', '.join(_ROLES)}", f"{param}.role")
    base.check_keys(message, _MESSAGE_KEYS[role], param, f"{role} message")
    if message.get("name") is not None:
        base.string(message["name"], f"{param}.name")
    fields: dict[str, Any] = {}
    if role == "assistant":
        base.require_none(message, ("refusal", "audio", "function_call", "annotations"), param)
        calls = base.optional_array(message.get("tool_calls"), f"{param}.tool_calls")
        if calls:
            fields["tool_calls"] = [
                _read_call(c, f"{param}.tool_calls[{i}]") for i, c in enumerate(calls)
            ]
    if role == "tool":
        fields["tool_call_id"] = base.string(message.get("tool_call_id"), f"{param}.tool_call_id")
    content = message.get("content")
    if content is None and role == "assistant":
        parts: list[Part] = []
    elif isinstance(content, str):
        parts = [({"type": "text", "text": content}, None)]
    else:
        items = base.array(content, f"{param}.content")
        parts = [_read_part(p, f"{param}.content[{j}]") for j, p in enumerate(items)]
    builder.add(role, parts, **fields)


def _read_part(raw: Any, param: str) -> Part:
    part = base.mapping(raw, param)
    kind = part.get("type")
    if kind == "text":
        base.check_keys(part, frozenset({"type", "text"}), param, "text part")
        return {"type": "text", "text": base.string(part.get("text"), f"{param}.text")}, None
    if kind == "image_url":
        base.check_keys(part, frozenset({"type", "image_url"}), param, "image part")
        image = base.mapping(part.get("image_url"), f"{param}.image_url")
        base.check_keys(image, frozenset({"url", "detail"}), f"{param}.image_url", "image_url")
        return base.data_url_image(image.get("url"), f"{param}.image_url.url")
    if isinstance(kind, str) and kind in _UNINSPECTABLE_PARTS:
        fail(f"{_UNINSPECTABLE_PARTS[kind]} cannot be inspected by policy", param)
    fail(f"content part type {kind!r} is not supported", f"{param}.type")


def _read_call(raw: Any, param: str) -> dict[str, Any]:
    call = base.mapping(raw, param)
    if call.get("type", "function") != "function":
        fail(f"tool call type {call.get('type')!r} is not supported", f"{param}.type")
    base.check_keys(call, frozenset({"id", "type", "function"}), param, "tool call")
    function = base.mapping(call.get("function"), f"{param}.function")
    base.check_keys(function, frozenset({"name", "arguments"}), f"{param}.function", "function")
    return {
        "id": base.string(call.get("id"), f"{param}.id"),
        "name": base.string(function.get("name"), f"{param}.function.name", non_empty=True),
        "arguments": base.tool_arguments(
            base.string(function.get("arguments"), f"{param}.function.arguments")
        ),
    }


def _read_tool(raw: Any, param: str) -> dict[str, Any]:
    tool = base.mapping(raw, param)
    if tool.get("type") != "function":
        fail(f"tool type {tool.get('type')!r} is not supported", f"{param}.type")
    base.check_keys(tool, frozenset({"type", "function"}), param, "tool")
    function = base.mapping(tool.get("function"), f"{param}.function")
    base.check_keys(
        function,
        frozenset({"name", "description", "parameters", "strict"}),
        f"{param}.function",
        "function",
    )
    out: dict[str, Any] = {
        "name": base.string(function.get("name"), f"{param}.function.name", non_empty=True)
    }
    if function.get("description") is not None:
        out["description"] = base.string(function["description"], f"{param}.function.description")
    if function.get("parameters") is not None:
        out["parameters"] = base.json_object(function["parameters"], f"{param}.function.parameters")
    return out


def _read_params(body: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    limits = [k for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None]
    if len(limits) == 2:
        fail("set max_tokens or max_completion_tokens, not both", "max_completion_tokens")
    if limits:
        params["max_tokens"] = base.integer(body[limits[0]], limits[0], minimum=1)
    if body.get("temperature") is not None:
        params["temperature"] = base.number(body["temperature"], "temperature", 0, 2)
    if body.get("top_p") is not None:
        params["top_p"] = base.number(body["top_p"], "top_p", 0, 1)
    if body.get("stream") is not None:
        params["stream"] = base.boolean(body["stream"], "stream")
    stop = body.get("stop")
    if stop is not None:
        params["stop"] = [stop] if isinstance(stop, str) else base.strings(stop, "stop")
    return params


# --- canonical -> wire ---------------------------------------------------------


@base.guarded
def from_canonical(
    doc: Mapping[str, Any],
    attachments: Mapping[str, str] = EMPTY,
    *,
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Emit a Chat Completions body from a canonical document.

    With ``original`` (the client's body, when the client spoke openai.chat) the
    unmodelled fields come back; modelled ones always come from ``doc``.
    """
    doc = base.mapping(doc, "doc")
    base.expect_operation(doc, "chat", API)
    same_api = doc.get("api") == API
    messages = base.canonical_messages(doc)
    body: dict[str, Any] = {
        "model": base.string(doc.get("model"), "model", non_empty=True),
        "messages": [_emit_message(m, i, attachments) for i, m in enumerate(messages)],
    }
    tools = [_emit_tool(t) for t in base.canonical_tools(doc)]
    if tools:
        body["tools"] = tools
    params = base.mapping(doc.get("params", {}), "params")
    if "max_tokens" in params:
        modern = (
            same_api and original is not None and original.get("max_completion_tokens") is not None
        )
        body["max_completion_tokens" if modern else "max_tokens"] = params["max_tokens"]
    for name in ("temperature", "top_p", "stream", "stop"):
        if name in params:
            body[name] = base.copy_json(params[name], name)
    tags = base.mapping(doc.get("metadata", {}), "metadata")
    if same_api and (tags or (original is not None and original.get("metadata") is not None)):
        body["metadata"] = base.metadata(tags, "metadata")
    if same_api and original is not None:
        body = base.carry_over(body, original, PASSTHROUGH | _NESTED_KEEP)
    return body


def _emit_message(
    message: Mapping[str, Any], index: int, attachments: Mapping[str, str]
) -> dict[str, Any]:
    role = message.get("role")
    if role not in _ROLES:
        fail(f"messages[{index}].role {role!r} cannot be sent to {API}", f"messages[{index}].role")
    parts = base.canonical_parts(message, index)
    out: dict[str, Any] = {"role": role}
    if role != "user":
        base.only_text(parts, f"messages[{index}].content", API)
    wire = [
        _emit_part(p, f"/messages/{index}/content/{j}", attachments) for j, p in enumerate(parts)
    ]
    if len(wire) == 1 and wire[0]["type"] == "text":
        out["content"] = wire[0]["text"]
    elif wire:
        out["content"] = wire
    else:
        out["content"] = None if message.get("tool_calls") else ""
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": base.string(call.get("id"), "tool_calls.id"),
                "type": "function",
                "function": {
                    "name": base.string(call.get("name"), "tool_calls.name"),
                    "arguments": base.dump_arguments(call.get("arguments"), "tool_calls.arguments"),
                },
            }
            for call in (
                base.mapping(c, "tool_calls")
                for c in base.array(message["tool_calls"], "tool_calls")
            )
        ]
    if role == "tool":
        out["tool_call_id"] = base.string(
            message.get("tool_call_id"), f"messages[{index}].tool_call_id"
        )
    return out


def _emit_part(
    part: Mapping[str, Any], pointer: str, attachments: Mapping[str, str]
) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"type": "text", "text": base.string(part.get("text"), pointer)}
    if part.get("type") == "image":
        if part.get("source") == "url":
            return {
                "type": "image_url",
                "image_url": {"url": base.string(part.get("url"), pointer)},
            }
        data = base.image_payload(pointer, attachments)
        return {
            "type": "image_url",
            "image_url": {"url": f"data:{part.get('media_type')};base64,{data}"},
        }
    fail(f"content part type {part.get('type')!r} cannot be sent to {API}", pointer)


def _emit_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": base.string(tool.get("name"), "tools.name")}
    if "description" in tool:
        function["description"] = base.string(tool["description"], "tools.description")
    if "parameters" in tool:
        function["parameters"] = base.json_object(tool["parameters"], "tools.parameters")
    return {"type": "function", "function": function}
