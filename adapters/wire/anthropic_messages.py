"""Anthropic Messages request body <-> canonical request document (Contract 1).

``system`` becomes a leading system message; ``tool_result`` blocks leave their
user message as canonical ``tool`` messages, in order. Blocks policy cannot
inspect (documents, thinking, server tools, file references) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.wire import base
from adapters.wire.base import EMPTY, Canonicalised, MessageBuilder, Part, fail

API = "anthropic.messages"
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the canonical document has none."""

PASSTHROUGH = frozenset(
    {
        "top_k",
        "tool_choice",
        "thinking",
        "service_tier",
        "cache_control",
        "inference_geo",
        "output_config",
        "speed",
    }
)
"""Top-level parameters without prompt content, kept when re-emitting to anthropic.messages."""

_MODELLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "tools",
    }
)
_NESTED_KEEP = frozenset({"cache_control", "is_error", "strict"})
_TEXT_KEYS = frozenset({"type", "text", "cache_control", "citations"})
_PLAIN = frozenset({"text", "image"})


@base.guarded
def to_canonical(body: Mapping[str, Any]) -> Canonicalised:
    """Read a ``POST /v1/messages`` body; the input is left untouched."""
    body = base.json_body(body)
    base.check_keys(body, _MODELLED | PASSTHROUGH, "", "request")
    model = base.string(body.get("model"), "model", non_empty=True)
    raw_messages = base.array(body.get("messages"), "messages")
    if not raw_messages:
        fail("messages must not be empty", "messages")
    builder = MessageBuilder()
    if body.get("system") is not None:
        builder.add("system", _read_content(body["system"], "system", frozenset({"text"})))
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
        metadata=_read_metadata(body.get("metadata")),
    )


def _read_message(builder: MessageBuilder, raw: Any, param: str) -> None:
    message = base.mapping(raw, param)
    base.check_keys(message, frozenset({"role", "content"}), param, "message")
    role = message.get("role")
    if role not in ("user", "assistant"):
        fail(f"{param}.role must be 'user' or 'assistant'", f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        builder.add(role, [({"type": "text", "text": content}, None)])
        return
    special = "tool_use" if role == "assistant" else "tool_result"
    parts: list[Part] = []
    calls: list[dict[str, Any]] = []
    emitted = False
    for j, raw_block in enumerate(base.array(content, f"{param}.content")):
        where = f"{param}.content[{j}]"
        block = base.mapping(raw_block, where)
        if block.get("type") != special:
            parts.append(_read_block(block, where, _PLAIN))
        elif role == "assistant":
            calls.append(_read_tool_use(block, where))
        else:
            if parts:
                builder.add("user", parts)
                parts = []
            _read_tool_result(builder, block, where)
            emitted = True
    if role == "assistant":
        builder.add("assistant", parts, **({"tool_calls": calls} if calls else {}))
    elif parts or not emitted:
        builder.add("user", parts)


def _read_content(content: Any, param: str, kinds: frozenset[str]) -> list[Part]:
    """A string or a list of blocks of the given ``kinds``."""
    if isinstance(content, str):
        return [({"type": "text", "text": content}, None)]
    items = base.array(content, param)
    return [
        _read_block(base.mapping(b, f"{param}[{j}]"), f"{param}[{j}]", kinds)
        for j, b in enumerate(items)
    ]


def _read_block(block: Mapping[str, Any], param: str, kinds: frozenset[str]) -> Part:
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in kinds:
        fail(f"content block type {kind!r} cannot be inspected by policy here", f"{param}.type")
    if kind == "image":
        return _read_image(block, param)
    base.check_keys(block, _TEXT_KEYS, param, "text block")
    base.require_none(block, ("citations",), param)
    return {"type": "text", "text": base.string(block.get("text"), f"{param}.text")}, None


def _read_image(block: Mapping[str, Any], param: str) -> Part:
    base.check_keys(block, frozenset({"type", "source", "cache_control"}), param, "image block")
    source = base.mapping(block.get("source"), f"{param}.source")
    if source.get("type") == "base64":
        base.check_keys(
            source, frozenset({"type", "media_type", "data"}), f"{param}.source", "image source"
        )
        return base.base64_image(source.get("data"), source.get("media_type"), param)
    if source.get("type") == "url":
        base.check_keys(source, frozenset({"type", "url"}), f"{param}.source", "image source")
        return base.url_image(source.get("url"), f"{param}.source.url"), None
    fail(
        f"image source {source.get('type')!r} cannot be inspected by policy", f"{param}.source.type"
    )


def _read_tool_use(block: Mapping[str, Any], param: str) -> dict[str, Any]:
    base.check_keys(
        block, frozenset({"type", "id", "name", "input", "cache_control"}), param, "tool_use block"
    )
    return {
        "id": base.string(block.get("id"), f"{param}.id"),
        "name": base.string(block.get("name"), f"{param}.name", non_empty=True),
        "arguments": base.json_object(block.get("input"), f"{param}.input"),
    }


def _read_tool_result(builder: MessageBuilder, block: Mapping[str, Any], param: str) -> None:
    base.check_keys(
        block,
        frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
        param,
        "tool_result block",
    )
    if block.get("is_error") is not None:
        base.boolean(block["is_error"], f"{param}.is_error")
    content = block.get("content")
    parts = [] if content is None else _read_content(content, f"{param}.content", _PLAIN)
    builder.add(
        "tool", parts, tool_call_id=base.string(block.get("tool_use_id"), f"{param}.tool_use_id")
    )


def _read_tool(raw: Any, param: str) -> dict[str, Any]:
    tool = base.mapping(raw, param)
    if tool.get("type") not in (None, "custom"):
        fail(f"server tool {tool.get('type')!r} cannot be inspected by policy", f"{param}.type")
    base.check_keys(
        tool,
        frozenset({"name", "description", "input_schema", "cache_control", "strict", "type"}),
        param,
        "tool",
    )
    out: dict[str, Any] = {"name": base.string(tool.get("name"), f"{param}.name", non_empty=True)}
    if tool.get("description") is not None:
        out["description"] = base.string(tool["description"], f"{param}.description")
    out["parameters"] = base.json_object(tool.get("input_schema"), f"{param}.input_schema")
    return out


def _read_params(body: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "max_tokens": base.integer(body.get("max_tokens"), "max_tokens", minimum=1)
    }
    if body.get("temperature") is not None:
        params["temperature"] = base.number(body["temperature"], "temperature", 0, 1)
    if body.get("top_p") is not None:
        params["top_p"] = base.number(body["top_p"], "top_p", 0, 1)
    if body.get("stream") is not None:
        params["stream"] = base.boolean(body["stream"], "stream")
    if body.get("stop_sequences") is not None:
        params["stop"] = base.strings(body["stop_sequences"], "stop_sequences")
    return params


def _read_metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    tags = base.mapping(raw, "metadata")
    base.check_keys(tags, frozenset({"user_id"}), "metadata", "metadata")
    return base.metadata({k: v for k, v in tags.items() if v is not None}, "metadata")


# --- canonical -> wire ---------------------------------------------------------


@base.guarded
def from_canonical(
    doc: Mapping[str, Any],
    attachments: Mapping[str, str] = EMPTY,
    *,
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Emit a Messages body from a canonical document.

    System and developer messages go to ``system``; consecutive tool messages
    and a following user message merge into one user message, tool results
    first. With a same-API ``original`` the unmodelled fields come back.
    """
    doc = base.mapping(doc, "doc")
    base.expect_operation(doc, "chat", API)
    params = base.mapping(doc.get("params", {}), "params")
    body: dict[str, Any] = {
        "model": base.string(doc.get("model"), "model", non_empty=True),
        "max_tokens": params.get("max_tokens", DEFAULT_MAX_TOKENS),
    }
    system: list[str] | None = None
    messages: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for index, message in enumerate(base.canonical_messages(doc)):
        role = message.get("role")
        parts = base.canonical_parts(message, index)
        if role in ("system", "developer"):
            system = (system or []) + base.only_text(parts, f"messages[{index}].content", API)
            continue
        blocks = [
            _emit_block(p, f"/messages/{index}/content/{j}", attachments)
            for j, p in enumerate(parts)
        ]
        if role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": base.string(
                    message.get("tool_call_id"), f"messages[{index}].tool_call_id"
                ),
            }
            if blocks:
                result["content"] = _compact(blocks)
            results.append(result)
        elif role == "user":
            messages.append({"role": "user", "content": _compact(results + blocks)})
            results = []
        elif role == "assistant":
            if results:
                messages.append({"role": "user", "content": results})
                results = []
            calls = [
                _emit_tool_use(c, index)
                for c in base.optional_array(message.get("tool_calls"), "tool_calls")
            ]
            messages.append({"role": "assistant", "content": _compact(blocks + calls)})
        else:
            fail(
                f"messages[{index}].role {role!r} cannot be sent to {API}",
                f"messages[{index}].role",
            )
    if results:
        messages.append({"role": "user", "content": results})
    if system is not None:
        body["system"] = _compact([{"type": "text", "text": text} for text in system])
    body["messages"] = messages
    tools = [_emit_tool(t) for t in base.canonical_tools(doc)]
    if tools:
        body["tools"] = tools
    for name, wire in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop", "stop_sequences"),
        ("stream", "stream"),
    ):
        if name in params:
            body[wire] = base.copy_json(params[name], name)
    same_api = doc.get("api") == API
    tags = base.mapping(doc.get("metadata", {}), "metadata")
    if same_api and "user_id" in tags:
        body["metadata"] = {"user_id": base.string(tags["user_id"], "metadata.user_id")}
    if same_api and original is not None:
        body = base.carry_over(body, original, PASSTHROUGH | _NESTED_KEEP)
    return body


def _compact(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text block is sent as a plain string, as clients usually write it."""
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return str(blocks[0]["text"])
    return blocks


def _emit_block(
    part: Mapping[str, Any], pointer: str, attachments: Mapping[str, str]
) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"type": "text", "text": base.string(part.get("text"), pointer)}
    if part.get("type") == "image":
        if part.get("source") == "url":
            source = {"type": "url", "url": base.string(part.get("url"), pointer)}
        else:
            source = {
                "type": "base64",
                "media_type": base.string(part.get("media_type"), pointer),
                "data": base.image_payload(pointer, attachments),
            }
        return {"type": "image", "source": source}
    fail(f"content part type {part.get('type')!r} cannot be sent to {API}", pointer)


def _emit_tool_use(raw: Any, index: int) -> dict[str, Any]:
    call = base.mapping(raw, f"messages[{index}].tool_calls")
    arguments = call.get("arguments")
    if not isinstance(arguments, Mapping):
        fail(
            f"tool call arguments that are not a JSON object cannot be sent to {API}",
            f"messages[{index}].tool_calls",
        )
    return {
        "type": "tool_use",
        "id": base.string(call.get("id"), "tool_calls.id"),
        "name": base.string(call.get("name"), "tool_calls.name"),
        "input": base.json_object(arguments, "tool_calls.arguments"),
    }


def _emit_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": base.string(tool.get("name"), "tools.name")}
    if "description" in tool:
        out["description"] = base.string(tool["description"], "tools.description")
    schema = tool.get("parameters", {"type": "object", "properties": {}})
    out["input_schema"] = base.json_object(schema, "tools.parameters")
    return out
