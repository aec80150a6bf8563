"""Gemini ``generateContent`` request body <-> canonical request document.

Provider side only: no client speaks Gemini to regate (Contract 5), so the
canonical documents :func:`to_canonical` builds carry ``api`` =
``"gemini.generate_content"`` and are for tests and the fake provider, not for
policy. Tool results become ``functionResponse`` parts whose ``response`` is
``{"result": text}`` (or ``{"result": [texts]}`` for several parts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.wire import base
from adapters.wire.base import EMPTY, Canonicalised, MessageBuilder, Part, fail

API = "gemini.generate_content"

PASSTHROUGH = frozenset({"safetySettings", "toolConfig", "labels"})
"""Top-level fields kept when re-emitting to Gemini."""
GENERATION_PASSTHROUGH = frozenset(
    {
        "topK",
        "candidateCount",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "responseModalities",
    }
)
"""``generationConfig`` fields regate does not model, kept when re-emitting to Gemini."""

_GENERATION = {
    "maxOutputTokens": "max_tokens",
    "temperature": "temperature",
    "topP": "top_p",
    "stopSequences": "stop",
}
_PART_KINDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")


@base.guarded
def to_canonical(body: Mapping[str, Any], *, model: str | None = None) -> Canonicalised:
    """Read a generateContent body; ``model`` comes from the URL (or a ``model`` field)."""
    body = base.json_body(body)
    base.check_keys(
        body,
        frozenset({"model", "contents", "systemInstruction", "tools", "generationConfig"})
        | PASSTHROUGH,
        "",
        "request",
    )
    name = base.string(model if model is not None else body.get("model"), "model", non_empty=True)
    name = name.removeprefix("models/") or name
    contents = base.array(body.get("contents"), "contents")
    if not contents:
        fail("contents must not be empty", "contents")
    builder = MessageBuilder()
    if body.get("systemInstruction") is not None:
        system = base.mapping(body["systemInstruction"], "systemInstruction")
        base.check_keys(
            system, frozenset({"role", "parts"}), "systemInstruction", "systemInstruction"
        )
        items = base.array(system.get("parts"), "systemInstruction.parts")
        builder.add(
            "system",
            [
                _read_part(p, f"systemInstruction.parts[{j}]", ("text",))
                for j, p in enumerate(items)
            ],
        )
    calls: dict[str, str] = {}
    for index, raw in enumerate(contents):
        _read_content(builder, raw, index, calls)
    return builder.result(
        api=API,
        operation="chat",
        model=name,
        tools=_read_tools(body.get("tools")),
        params=_read_generation(body.get("generationConfig")),
        metadata={},
    )


def _read_content(builder: MessageBuilder, raw: Any, index: int, calls: dict[str, str]) -> None:
    param = f"contents[{index}]"
    content = base.mapping(raw, param)
    base.check_keys(content, frozenset({"role", "parts"}), param, "content")
    role = content.get("role", "user")
    if role not in ("user", "model"):
        fail(f"{param}.role must be 'user' or 'model'", f"{param}.role")
    items = base.array(content.get("parts"), f"{param}.parts")
    parts: list[Part] = []
    tool_calls: list[dict[str, Any]] = []
    emitted = False
    special = "functionCall" if role == "model" else "functionResponse"
    for j, raw_part in enumerate(items):
        where = f"{param}.parts[{j}]"
        part = base.mapping(raw_part, where)
        if special not in part:
            parts.append(_read_part(part, where, ("text", "inlineData", "fileData")))
            continue
        base.check_keys(part, frozenset({special}), where, "part")
        data = base.mapping(part[special], f"{where}.{special}")
        if role == "model":
            base.check_keys(
                data, frozenset({"id", "name", "args"}), f"{where}.functionCall", "functionCall"
            )
            name = base.string(data.get("name"), f"{where}.functionCall.name", non_empty=True)
            call_id = base.string(data.get("id", f"call_{index}_{j}"), f"{where}.functionCall.id")
            calls[name] = call_id
            tool_calls.append(
                {
                    "id": call_id,
                    "name": name,
                    "arguments": base.json_object(
                        data.get("args", {}), f"{where}.functionCall.args"
                    ),
                }
            )
        else:
            if parts:
                builder.add("user", parts)
                parts = []
            base.check_keys(
                data,
                frozenset({"id", "name", "response"}),
                f"{where}.functionResponse",
                "functionResponse",
            )
            name = base.string(data.get("name"), f"{where}.functionResponse.name", non_empty=True)
            call_id = base.string(
                data.get("id", calls.get(name, name)), f"{where}.functionResponse.id"
            )
            response = base.json_object(data.get("response"), f"{where}.functionResponse.response")
            builder.add(
                "tool",
                [({"type": "text", "text": t}, None) for t in _result_texts(response)],
                tool_call_id=call_id,
            )
            emitted = True
    if role == "model":
        builder.add("assistant", parts, **({"tool_calls": tool_calls} if tool_calls else {}))
    elif parts or not emitted:
        builder.add("user", parts)


def _result_texts(response: dict[str, Any]) -> list[str]:
    result = response.get("result")
    if response.keys() == {"result"} and isinstance(result, str):
        return [result]
    if (
        response.keys() == {"result"}
        and isinstance(result, list)
        and all(isinstance(t, str) for t in result)
    ):
        return list(result)
    return [json.dumps(response, ensure_ascii=False, sort_keys=True)]


def _read_part(raw: Any, param: str, kinds: tuple[str, ...]) -> Part:
    part = base.mapping(raw, param)
    present = [k for k in _PART_KINDS if k in part]
    if len(present) != 1 or len(part) != 1 or present[0] not in kinds:
        fail(
            f"{param} must be one of {', '.join(kinds)}; other parts cannot be inspected by policy",
            param,
        )
    kind = present[0]
    if kind == "text":
        return {"type": "text", "text": base.string(part["text"], f"{param}.text")}, None
    data = base.mapping(part[kind], f"{param}.{kind}")
    if kind == "inlineData":
        base.check_keys(data, frozenset({"mimeType", "data"}), f"{param}.inlineData", "inlineData")
        return base.base64_image(data.get("data"), data.get("mimeType"), f"{param}.inlineData")
    base.check_keys(data, frozenset({"mimeType", "fileUri"}), f"{param}.fileData", "fileData")
    return base.url_image(
        data.get("fileUri"), f"{param}.fileData.fileUri", data.get("mimeType")
    ), None


def _read_tools(raw: Any) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for i, group in enumerate(base.optional_array(raw, "tools")):
        entry = base.mapping(group, f"tools[{i}]")
        base.check_keys(entry, frozenset({"functionDeclarations"}), f"tools[{i}]", "tool")
        for j, raw_decl in enumerate(
            base.array(entry.get("functionDeclarations"), f"tools[{i}].functionDeclarations")
        ):
            where = f"tools[{i}].functionDeclarations[{j}]"
            decl = base.mapping(raw_decl, where)
            base.check_keys(
                decl,
                frozenset({"name", "description", "parameters", "parametersJsonSchema"}),
                where,
                "functionDeclaration",
            )
            tool: dict[str, Any] = {
                "name": base.string(decl.get("name"), f"{where}.name", non_empty=True)
            }
            if decl.get("description") is not None:
                tool["description"] = base.string(decl["description"], f"{where}.description")
            schema = decl.get("parameters", decl.get("parametersJsonSchema"))
            if schema is not None:
                tool["parameters"] = base.json_object(schema, f"{where}.parameters")
            tools.append(tool)
    return tools


def _read_generation(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    config = base.mapping(raw, "generationConfig")
    base.check_keys(
        config,
        frozenset(_GENERATION) | GENERATION_PASSTHROUGH,
        "generationConfig",
        "generationConfig",
    )
    params: dict[str, Any] = {}
    if config.get("maxOutputTokens") is not None:
        params["max_tokens"] = base.integer(
            config["maxOutputTokens"], "generationConfig.maxOutputTokens", minimum=1
        )
    if config.get("temperature") is not None:
        params["temperature"] = base.number(
            config["temperature"], "generationConfig.temperature", 0, 2
        )
    if config.get("topP") is not None:
        params["top_p"] = base.number(config["topP"], "generationConfig.topP", 0, 1)
    if config.get("stopSequences") is not None:
        params["stop"] = base.strings(config["stopSequences"], "generationConfig.stopSequences")
    return params


# --- canonical -> wire ---------------------------------------------------------


@base.guarded
def from_canonical(
    doc: Mapping[str, Any],
    attachments: Mapping[str, str] = EMPTY,
    *,
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Emit a generateContent body (the model goes in the URL, so it is not in the body).

    ``stream`` is a choice of endpoint in Gemini and ``metadata`` has no home:
    both are dropped.
    """
    doc = base.mapping(doc, "doc")
    base.expect_operation(doc, "chat", API)
    system: list[str] | None = None
    contents: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, message in enumerate(base.canonical_messages(doc)):
        role = message.get("role")
        parts = base.canonical_parts(message, index)
        where = f"messages[{index}]"
        if role in ("system", "developer"):
            system = (system or []) + base.only_text(parts, f"{where}.content", API)
            continue
        if role == "tool":
            texts = base.only_text(parts, f"{where}.content", API)
            call_id = base.string(message.get("tool_call_id"), f"{where}.tool_call_id")
            if call_id not in names:
                fail(f"{where} answers a tool call regate has not seen", f"{where}.tool_call_id")
            result: str | list[str] = texts[0] if len(texts) == 1 else texts
            responses.append(
                {
                    "functionResponse": {
                        "id": call_id,
                        "name": names[call_id],
                        "response": {"result": result},
                    }
                }
            )
            continue
        wire = [
            _emit_part(p, f"/messages/{index}/content/{j}", attachments)
            for j, p in enumerate(parts)
        ]
        if role == "user":
            contents.append({"role": "user", "parts": responses + wire})
            responses = []
        elif role == "assistant":
            if responses:
                contents.append({"role": "user", "parts": responses})
                responses = []
            for raw_call in base.optional_array(message.get("tool_calls"), f"{where}.tool_calls"):
                call = base.mapping(raw_call, f"{where}.tool_calls")
                if not isinstance(call.get("arguments"), Mapping):
                    fail(
                        f"tool call arguments that are not a JSON object cannot be sent to {API}",
                        f"{where}.tool_calls",
                    )
                call_id = base.string(call.get("id"), f"{where}.tool_calls.id")
                names[call_id] = base.string(call.get("name"), f"{where}.tool_calls.name")
                wire.append(
                    {
                        "functionCall": {
                            "id": call_id,
                            "name": names[call_id],
                            "args": base.json_object(call["arguments"], "arguments"),
                        }
                    }
                )
            contents.append({"role": "model", "parts": wire})
        else:
            fail(f"{where}.role {role!r} cannot be sent to {API}", f"{where}.role")
    if responses:
        contents.append({"role": "user", "parts": responses})
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    tools = [_emit_tool(t) for t in base.canonical_tools(doc)]
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
    params = base.mapping(doc.get("params", {}), "params")
    config = {
        wire: base.copy_json(params[name], name)
        for wire, name in _GENERATION.items()
        if name in params
    }
    if config:
        body["generationConfig"] = config
    if original is not None and doc.get("api") == API:
        if isinstance(original.get("generationConfig"), Mapping):
            body.setdefault("generationConfig", {})
        body = base.carry_over(body, original, PASSTHROUGH | GENERATION_PASSTHROUGH)
        if body.get("generationConfig") == {}:
            del body["generationConfig"]
    return body


def _emit_part(
    part: Mapping[str, Any], pointer: str, attachments: Mapping[str, str]
) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"text": base.string(part.get("text"), pointer)}
    if part.get("type") == "image":
        media = base.string(part.get("media_type"), pointer)
        if part.get("source") == "url":
            return {
                "fileData": {"mimeType": media, "fileUri": base.string(part.get("url"), pointer)}
            }
        return {"inlineData": {"mimeType": media, "data": base.image_payload(pointer, attachments)}}
    fail(f"content part type {part.get('type')!r} cannot be sent to {API}", pointer)


def _emit_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": base.string(tool.get("name"), "tools.name")}
    if "description" in tool:
        out["description"] = base.string(tool["description"], "tools.description")
    if "parameters" in tool:
        out["parameters"] = base.json_object(tool["parameters"], "tools.parameters")
    return out
