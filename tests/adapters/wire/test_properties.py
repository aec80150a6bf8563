"""Property tests of the wire translators: round trips, schema validity, fail-closed fuzzing.

Bodies are generated in each API's normal form (the spelling regate re-emits), so
``from_canonical(to_canonical(b), original=b) == b`` must hold exactly; canonical
documents are generated in the shape every chat API can express.
"""

from __future__ import annotations

import base64
import copy
import json
import string
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.wire as wire
from adapters.wire import anthropic_messages, gemini, openai_chat, openai_embeddings
from adapters.wire.base import IMAGE_MEDIA_TYPES, UNKNOWN_MEDIA_TYPE, url_image
from engine.document import complete
from engine.errors import InputError
from engine.resources import schema_path

settings.register_profile(
    "wire", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("wire")

VALIDATOR = jsonschema_rs.Draft202012Validator(
    json.loads(schema_path("request.v1.json").read_text()), validate_formats=True
)

TEXT = st.text(max_size=20)
NAME = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=10,
)
OBJECTS = st.dictionaries(st.text(max_size=6), JSON, max_size=3)
MEDIA = st.sampled_from(sorted(IMAGE_MEDIA_TYPES))
URLS = st.builds(
    "https://{}.example.com/{}.{}".format,
    NAME,
    NAME,
    st.sampled_from(["png", "jpg", "JPEG", "webp", "gif", "bin"]),
)
PAYLOADS = st.binary(max_size=16).map(lambda b: base64.b64encode(b).decode())
METADATA = st.dictionaries(st.text(max_size=64), st.text(max_size=30), max_size=16)
CACHE = st.just({"type": "ephemeral"})


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


# --- OpenAI Chat bodies --------------------------------------------------------

OA_TEXT_PARTS = st.lists(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT), min_size=1, max_size=3
)
OA_IMAGE = merged(
    st.builds(lambda u: {"url": u}, URLS | st.builds("data:{};base64,{}".format, MEDIA, PAYLOADS)),
    optional(detail=st.sampled_from(["auto", "low", "high"])),
).map(lambda image: {"type": "image_url", "image_url": image})
OA_CALL = st.builds(
    lambda i, n, a: {"id": i, "type": "function", "function": {"name": n, "arguments": a}},
    NAME,
    NAME,
    OBJECTS.map(json.dumps) | TEXT,
)


@st.composite
def oa_message(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
    message: dict[str, Any] = {"role": role}
    if role == "user":
        message["content"] = draw(
            TEXT | st.lists(OA_TEXT_PARTS.map(lambda p: p[0]) | OA_IMAGE, min_size=1, max_size=3)
        )
    elif role == "assistant":
        calls = draw(st.lists(OA_CALL, max_size=2))
        message["content"] = draw((st.none() if calls else st.nothing()) | TEXT | OA_TEXT_PARTS)
        if calls:
            message["tool_calls"] = calls
    else:
        message["content"] = draw(TEXT | OA_TEXT_PARTS)
    if role == "tool":
        message["tool_call_id"] = draw(NAME)
    elif draw(st.booleans()):
        message["name"] = draw(NAME)
    return message


OA_TOOL = merged(
    st.fixed_dictionaries({"name": NAME}),
    optional(description=TEXT, parameters=OBJECTS, strict=st.booleans()),
).map(lambda f: {"type": "function", "function": f})
OA_BODIES = merged(
    st.fixed_dictionaries(
        {"model": NAME, "messages": st.lists(oa_message(), min_size=1, max_size=5)}
    ),
    optional(
        tools=st.lists(OA_TOOL, min_size=1, max_size=2),
        temperature=st.floats(0, 2),
        top_p=st.floats(0, 1),
        stream=st.booleans(),
        stop=TEXT | st.lists(TEXT, max_size=3),
        metadata=METADATA,
        seed=st.integers(),
        user=TEXT,
        response_format=st.just({"type": "json_object"}),
    ),
    st.sampled_from(["max_tokens", "max_completion_tokens", None]).flatmap(
        lambda key: st.just({}) if key is None else st.integers(1, 10**6).map(lambda n: {key: n})
    ),
)

# --- Anthropic Messages bodies -------------------------------------------------

AN_TEXT = merged(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT), optional(cache_control=CACHE)
)
AN_IMAGE = st.builds(
    lambda s: {"type": "image", "source": s},
    st.builds(lambda m, d: {"type": "base64", "media_type": m, "data": d}, MEDIA, PAYLOADS)
    | st.builds(lambda u: {"type": "url", "url": u}, URLS),
)
AN_PLAIN = AN_TEXT | AN_IMAGE
AN_RESULT = merged(
    st.builds(lambda i: {"type": "tool_result", "tool_use_id": i}, NAME),
    optional(
        content=TEXT | st.lists(AN_PLAIN, min_size=1, max_size=2),
        is_error=st.booleans(),
        cache_control=CACHE,
    ),
)
AN_USE = st.builds(
    lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a}, NAME, NAME, OBJECTS
)


@st.composite
def an_messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages = []
    for index in range(draw(st.integers(1, 5))):
        if index % 2 == 0:
            blocks = draw(st.lists(AN_RESULT, max_size=2)) + draw(st.lists(AN_PLAIN, max_size=2))
            content = blocks if blocks else draw(TEXT)
            messages.append({"role": "user", "content": content})
        else:
            blocks = draw(st.lists(AN_PLAIN, max_size=2)) + draw(st.lists(AN_USE, max_size=2))
            messages.append({"role": "assistant", "content": draw(st.just(blocks) | TEXT)})
    return messages


AN_TOOL = merged(
    st.fixed_dictionaries({"name": NAME, "input_schema": OBJECTS}),
    optional(description=TEXT, cache_control=CACHE),
)
AN_BODIES = merged(
    st.fixed_dictionaries(
        {"model": NAME, "max_tokens": st.integers(1, 10**6), "messages": an_messages()}
    ),
    optional(
        system=TEXT | st.lists(AN_TEXT, max_size=2),
        tools=st.lists(AN_TOOL, min_size=1, max_size=2),
        temperature=st.floats(0, 1),
        top_p=st.floats(0, 1),
        stream=st.booleans(),
        stop_sequences=st.lists(TEXT, max_size=2),
        top_k=st.integers(1, 500),
        metadata=st.builds(lambda u: {"user_id": u}, TEXT),
        tool_choice=st.just({"type": "any"}),
    ),
)

# --- Embeddings and Gemini bodies -----------------------------------------------

EMB_BODIES = merged(
    st.fixed_dictionaries({"model": NAME, "input": TEXT | st.lists(TEXT, min_size=1, max_size=4)}),
    optional(
        dimensions=st.integers(1, 4096),
        encoding_format=st.sampled_from(["float", "base64"]),
        user=TEXT,
    ),
)

GM_PLAIN = (
    st.builds(lambda t: {"text": t}, TEXT)
    | st.builds(lambda m, d: {"inlineData": {"mimeType": m, "data": d}}, MEDIA, PAYLOADS)
    | st.builds(
        lambda m, u: {"fileData": {"mimeType": m, "fileUri": u}},
        MEDIA | st.just(UNKNOWN_MEDIA_TYPE),
        URLS,
    )
)


@st.composite
def gm_contents(draw: st.DrawFn) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    calls: list[tuple[str, str]] = []
    for index in range(draw(st.integers(1, 5))):
        if index % 2 == 0:
            answered = draw(st.lists(st.sampled_from(calls), max_size=2)) if calls else []
            parts = [
                {
                    "functionResponse": {
                        "id": i,
                        "name": n,
                        "response": {"result": draw(TEXT | st.lists(TEXT, max_size=2))},
                    }
                }
                for i, n in answered
            ]
            parts += draw(st.lists(GM_PLAIN, min_size=0 if parts else 1, max_size=2))
            contents.append({"role": "user", "parts": parts})
        else:
            parts = draw(st.lists(GM_PLAIN, max_size=2))
            for k, name in enumerate(draw(st.lists(NAME, max_size=2))):
                calls.append((f"fc_{index}_{k}", name))
                parts.append(
                    {"functionCall": {"id": f"fc_{index}_{k}", "name": name, "args": draw(OBJECTS)}}
                )
            contents.append({"role": "model", "parts": parts})
    return contents


GM_DECL = merged(
    st.fixed_dictionaries({"name": NAME}), optional(description=TEXT, parameters=OBJECTS)
)
GM_BODIES = merged(
    st.fixed_dictionaries({"contents": gm_contents()}),
    optional(
        systemInstruction=st.builds(
            lambda ts: {"parts": [{"text": t} for t in ts]}, st.lists(TEXT, max_size=2)
        ),
        tools=st.builds(
            lambda ds: [{"functionDeclarations": ds}], st.lists(GM_DECL, min_size=1, max_size=2)
        ),
        generationConfig=optional(
            maxOutputTokens=st.integers(1, 10**5),
            temperature=st.floats(0, 2),
            topP=st.floats(0, 1),
            stopSequences=st.lists(TEXT, max_size=2),
            topK=st.integers(1, 64),
        ).filter(bool),
        safetySettings=st.just(
            [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
        ),
    ),
)


def gm_read(body: dict[str, Any]) -> wire.Canonicalised:
    return gemini.to_canonical(body, model="gemini-2.5-flash")


FORMATS: list[
    tuple[str, st.SearchStrategy[dict[str, Any]], Callable[[Any], wire.Canonicalised], Any]
] = [
    ("openai.chat", OA_BODIES, openai_chat.to_canonical, openai_chat.from_canonical),
    (
        "anthropic.messages",
        AN_BODIES,
        anthropic_messages.to_canonical,
        anthropic_messages.from_canonical,
    ),
    (
        "openai.embeddings",
        EMB_BODIES,
        openai_embeddings.to_canonical,
        openai_embeddings.from_canonical,
    ),
    ("gemini.generate_content", GM_BODIES, gm_read, gemini.from_canonical),
]
FORMAT_IDS = [f[0] for f in FORMATS]


@pytest.mark.parametrize(("api", "bodies", "read", "write"), FORMATS, ids=FORMAT_IDS)
def test_wire_to_canonical_to_wire_keeps_every_field(
    api: str, bodies: Any, read: Any, write: Any
) -> None:
    @given(bodies)
    def check(body: dict[str, Any]) -> None:
        pristine = copy.deepcopy(body)
        canon = read(body)
        doc_before = copy.deepcopy(canon.partial)
        assert canon.partial["api"] == api
        plain = write(canon.partial, canon.attachments)
        again = read(plain)
        assert again.partial == canon.partial
        assert dict(again.attachments) == dict(canon.attachments)
        emitted = write(canon.partial, canon.attachments, original=body)
        assert emitted == body
        assert body == pristine and canon.partial == doc_before
        scramble(emitted)  # outputs share no containers with inputs
        scramble(read(body).partial)
        assert body == pristine and canon.partial == doc_before

    check()


def scramble(node: Any) -> None:
    """Empty every container reachable from ``node``, as a careless caller might."""
    children = (
        list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
    )
    for child in children:
        scramble(child)
    if isinstance(node, dict | list):
        node.clear()


CLIENT_FORMATS = [f for f in FORMATS if f[0] in wire.CLIENT_APIS]


@pytest.mark.parametrize(("api", "bodies", "read", "write"), CLIENT_FORMATS, ids=FORMAT_IDS[:3])
def test_every_readable_body_completes_to_a_schema_valid_document(
    api: str, bodies: Any, read: Any, write: Any
) -> None:
    @given(bodies)
    def check(body: dict[str, Any]) -> None:
        VALIDATOR.validate(complete(read(body).partial))

    check()


# --- canonical documents every chat API can express ---------------------------------


@st.composite
def portable_docs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    messages: list[dict[str, Any]] = []
    attachments: dict[str, str] = {}

    def texts(low: int) -> list[dict[str, Any]]:
        return [{"type": "text", "text": t} for t in draw(st.lists(TEXT, min_size=low, max_size=2))]

    if draw(st.booleans()):
        messages.append({"role": "system", "content": texts(1)})
    for turn in range(draw(st.integers(1, 3))):
        parts: list[dict[str, Any]] = []
        for j, kind in enumerate(
            draw(st.lists(st.sampled_from(["text", "url", "base64"]), min_size=1, max_size=3))
        ):
            if kind == "text":
                parts.append({"type": "text", "text": draw(TEXT)})
            elif kind == "url":
                parts.append(url_image(draw(URLS), "url"))
            else:
                data = draw(st.binary(max_size=12))
                attachments[f"/messages/{len(messages)}/content/{j}"] = base64.b64encode(
                    data
                ).decode()
                parts.append(
                    {
                        "type": "image",
                        "media_type": draw(MEDIA),
                        "source": "base64",
                        "bytes": len(data),
                    }
                )
        messages.append({"role": "user", "content": parts})
        names = draw(st.lists(NAME, max_size=2))
        calls = [
            {"id": f"call_{turn}_{k}", "name": n, "arguments": draw(OBJECTS)}
            for k, n in enumerate(names)
        ]
        assistant: dict[str, Any] = {"role": "assistant", "content": texts(0 if calls else 1)}
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        for call in calls:
            messages.append({"role": "tool", "content": texts(1), "tool_call_id": call["id"]})
    doc = {
        "api": "",
        "operation": "chat",
        "model": draw(NAME),
        "messages": messages,
        "tools": draw(
            st.lists(
                merged(
                    st.fixed_dictionaries({"name": NAME, "parameters": OBJECTS}),
                    optional(description=TEXT),
                ),
                max_size=2,
            )
        ),
        "params": draw(
            merged(
                st.fixed_dictionaries({"max_tokens": st.integers(1, 10**5)}),
                optional(
                    temperature=st.floats(0, 1),
                    top_p=st.floats(0, 1),
                    stream=st.booleans(),
                    stop=st.lists(TEXT, max_size=2),
                ),
            )
        ),
        "metadata": {},
    }
    return doc, attachments


CHAT_READERS = {
    "openai.chat": (openai_chat.to_canonical, openai_chat.from_canonical, METADATA),
    "anthropic.messages": (
        anthropic_messages.to_canonical,
        anthropic_messages.from_canonical,
        st.just({}) | st.builds(lambda u: {"user_id": u}, TEXT),
    ),
    "gemini.generate_content": (gm_read, gemini.from_canonical, st.just({})),
}


@pytest.mark.parametrize("api", sorted(CHAT_READERS))
def test_canonical_to_wire_to_canonical_is_identity(api: str) -> None:
    read, write, metadata = CHAT_READERS[api]

    @given(portable_docs(), metadata)
    def check(generated: tuple[dict[str, Any], dict[str, str]], tags: dict[str, str]) -> None:
        doc, attachments = generated
        doc = {**doc, "api": api, "metadata": tags}
        if api == gemini.API:  # Gemini names the model and streaming in the URL
            doc["model"] = "gemini-2.5-flash"
            doc["params"] = {k: v for k, v in doc["params"].items() if k != "stream"}
        pristine = copy.deepcopy(doc)
        back = read(write(doc, attachments))
        assert back.partial == doc
        assert dict(back.attachments) == attachments
        assert doc == pristine

    check()


@given(
    st.lists(TEXT, min_size=1, max_size=4),
    optional(dimensions=st.integers(1, 4096), encoding_format=st.sampled_from(["float", "base64"])),
)
def test_embeddings_canonical_to_wire_to_canonical_is_identity(
    inputs: list[str], params: dict[str, Any]
) -> None:
    doc = {
        "api": "openai.embeddings",
        "operation": "embeddings",
        "model": "text-embedding-3-small",
        "messages": [{"role": "user", "content": [{"type": "text", "text": t}]} for t in inputs],
        "tools": [],
        "params": params,
        "metadata": {},
    }
    assert openai_embeddings.to_canonical(openai_embeddings.from_canonical(doc)).partial == doc


# --- fail closed: malformed input raises InputError and nothing else ----------------

KEYS = st.sampled_from(
    [
        "model",
        "messages",
        "input",
        "max_tokens",
        "system",
        "tools",
        "content",
        "role",
        "type",
        "contents",
        "parts",
        "stop",
        "metadata",
    ]
) | st.text(max_size=4)
ANY_JSON = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(KEYS, c, max_size=4), max_leaves=25
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        yield from paths(child, (*prefix, key))


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]]) -> Any:
    body = copy.deepcopy(draw(bodies))  # st.just() values are shared between examples
    path = draw(st.sampled_from(list(paths(body))))
    replacement = draw(ANY_JSON | st.just(KeyError))
    if not path:
        return replacement
    node = body
    for key in path[:-1]:
        node = node[key]
    if replacement is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = replacement
    return body


def read_or_refuse(read: Callable[[Any], wire.Canonicalised], body: Any) -> None:
    try:
        canon = read(body)
    except InputError as err:
        assert err.code == "invalid_request" and str(err)
        return
    VALIDATOR.validate(complete(canon.partial))


@pytest.mark.parametrize(("api", "bodies", "read", "write"), CLIENT_FORMATS, ids=FORMAT_IDS[:3])
def test_malformed_bodies_raise_input_error_only(
    api: str, bodies: Any, read: Any, write: Any
) -> None:
    @given(mutated(bodies) | ANY_JSON)
    def check(body: Any) -> None:
        read_or_refuse(read, body)

    check()


@given(mutated(GM_BODIES))
def test_malformed_gemini_bodies_raise_input_error_only(body: Any) -> None:
    try:
        canon = gm_read(body)
    except InputError as err:
        assert err.code == "invalid_request"
        return
    assert canon.partial["api"] == gemini.API


@pytest.mark.parametrize("api", sorted(CHAT_READERS))
def test_malformed_documents_raise_input_error_only(api: str) -> None:
    _, write, _ = CHAT_READERS[api]

    @given(mutated(portable_docs().map(lambda generated: generated[0])))
    def check(doc: Any) -> None:
        try:
            body = write(doc)
        except InputError as err:
            assert err.code == "invalid_request"
            return
        assert isinstance(body, dict)

    check()
