"""Hypothesis strategies for request bodies of every route regate serves, valid-ish and garbage.

Each API gets its own shape (so the readers get deep) with wrong types, unknown
fields, odd numbers and texts mixed in now and then; :func:`request` turns values
into the bytes and content type sent, sometimes mangled into invalid JSON.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import strategies as st

# --- building blocks ---------------------------------------------------------------------

TEXT = st.text(max_size=40) | st.sampled_from(
    ["", "a@b.co", "123-45-6789", "\u0000", "😀\u0301", "\ufeff", "x" * 300]
)
EDGE_NUMBERS = [
    0,
    -1,
    2**53,
    2**63 - 1,
    2**63,
    -(2**63),
    2**64,
    10**30,
    1e308,
    -1e300,
    5e-324,
    2.0000001,
]
NUMBER = st.integers(0, 9).flatmap(
    lambda i: (
        st.sampled_from(EDGE_NUMBERS)
        if i == 9
        else st.integers(-1000, 10**6) | st.floats(-1e6, 1e6)
    )
)
SCALAR = st.none() | st.booleans() | NUMBER | TEXT
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
NAME = st.text(string.ascii_letters + string.digits + "_-", min_size=0, max_size=12)


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` about nine times in ten, ``other`` otherwise (``one_of`` would lean on the simpler)."""
    return st.integers(0, 9).flatmap(lambda i: other if i == 9 else usual)


MAX_TOKENS = mostly(st.integers(1, 5000), NUMBER)
UNIT = mostly(st.floats(0, 1), NUMBER)
# Models on the default bundle's allowlist (so some requests are allowed and forwarded), and others.
MODEL = mostly(
    st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5", "text-embedding-3-small", "echo"]),
    st.just("") | TEXT,
)


def junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` nine times in ten, any JSON value otherwise."""
    return mostly(strategy, JSON)


def sometimes(strategy: st.SearchStrategy[Any], empty: Any) -> st.SearchStrategy[Any]:
    """``empty`` nine times in ten, a draw of ``strategy`` otherwise."""
    return mostly(st.just(empty), strategy)


def body(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """An object with (usually) the required fields, some optional ones and now and then an unknown one."""
    base = st.fixed_dictionaries(
        {k: junk(v) for k, v in required.items()},
        optional={k: junk(v) for k, v in optional.items()},
    )
    extra = sometimes(st.dictionaries(NAME, JSON, min_size=1, max_size=1), {})
    dropped = sometimes(
        st.sets(st.sampled_from(sorted(required)), min_size=1, max_size=1), frozenset()
    )
    return st.tuples(base, extra, dropped).map(
        lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if k not in t[2]}
    )


DATA_URL = st.builds(
    "data:{};base64,{}".format,
    st.sampled_from(["image/png", "image/svg+xml", "text/plain"]),
    st.sampled_from(["aGk=", "!!", ""]),
)
URL = (
    st.sampled_from(
        ["https://example.com/a.png", "http://x", "ftp://x/y.png", "javascript:alert(1)", ""]
    )
    | DATA_URL
)
TOOL_SCHEMA = st.fixed_dictionaries({"type": st.just("object")}, optional={"properties": JSON})

# --- OpenAI chat -------------------------------------------------------------------------

OA_TEXT = st.fixed_dictionaries({"type": st.just("text"), "text": junk(TEXT)})
OA_PART = st.one_of(
    OA_TEXT,
    OA_TEXT,
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": junk(st.fixed_dictionaries({"url": URL}))}
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_audio", "file", "refusal", ""])}, optional={"text": TEXT}
    ),
)
OA_CALL = st.fixed_dictionaries(
    {
        "id": NAME,
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAME, "arguments": junk(TEXT | st.just('{"a": 1}'))}
        ),
    }
)
OA_CONTENT = mostly(TEXT | st.lists(OA_PART, max_size=4), st.none())
OA_MESSAGE = mostly(
    body(
        {
            "role": mostly(
                st.just("user"), st.sampled_from(["system", "developer", "function", ""])
            ),
            "content": OA_CONTENT,
        },
        {"name": NAME},
    ),
    st.one_of(
        body(
            {"role": st.just("assistant"), "content": OA_CONTENT},
            {"tool_calls": st.lists(OA_CALL, max_size=2), "refusal": st.none() | TEXT},
        ),
        body({"role": st.just("tool"), "content": OA_CONTENT, "tool_call_id": NAME}, {}),
    ),
)
OA_TOOL = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAME},
            optional={"description": TEXT, "parameters": TOOL_SCHEMA, "strict": st.booleans()},
        ),
    }
)
CHAT = body(
    {"model": MODEL, "messages": st.lists(OA_MESSAGE, min_size=1, max_size=5)},
    {
        "max_tokens": MAX_TOKENS,
        "max_completion_tokens": MAX_TOKENS,
        "temperature": UNIT,
        "top_p": UNIT,
        "stream": st.booleans(),
        "stop": TEXT | st.lists(TEXT, max_size=3),
        "tools": st.lists(OA_TOOL, max_size=3),
        "metadata": st.dictionaries(NAME, TEXT, max_size=18),
        "seed": NUMBER,
        "n": NUMBER,
        "user": TEXT,
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    },
)

# --- OpenAI embeddings -------------------------------------------------------------------

EMBEDDINGS = body(
    {
        "model": MODEL,
        "input": TEXT | st.lists(TEXT, max_size=5) | st.lists(st.integers(0, 50_000), max_size=5),
    },
    {
        "dimensions": MAX_TOKENS,
        "encoding_format": st.sampled_from(["float", "base64", "int8"]),
        "user": TEXT,
    },
)

# --- Anthropic messages ------------------------------------------------------------------

SOURCE = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("base64"),
            "media_type": st.sampled_from(["image/png", "image/tiff", ""]),
            "data": st.sampled_from(["aGk=", "***", ""]),
        }
    ),
    st.fixed_dictionaries({"type": st.just("url"), "url": URL}),
)
BLOCK = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("text"), "text": junk(TEXT)},
        optional={"cache_control": st.just({"type": "ephemeral"})},
    ),
    st.fixed_dictionaries({"type": st.just("image"), "source": junk(SOURCE)}),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_use"),
            "id": NAME,
            "name": NAME,
            "input": junk(st.dictionaries(NAME, JSON, max_size=2)),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("tool_result"), "tool_use_id": NAME},
        optional={
            "content": TEXT
            | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), max_size=2),
            "is_error": junk(st.booleans()),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["document", "thinking", "server_tool_use", "mystery"])}
    ),
)
AN_ROLE = mostly(st.just("user"), st.sampled_from(["assistant", "system"]))
AN_MESSAGE = body({"role": AN_ROLE, "content": TEXT | st.lists(BLOCK, max_size=4)}, {})
MESSAGES = body(
    {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "messages": st.lists(AN_MESSAGE, min_size=1, max_size=5),
    },
    {
        "system": TEXT
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}), max_size=2),
        "temperature": UNIT,
        "top_p": UNIT,
        "top_k": NUMBER,
        "stream": st.booleans(),
        "stop_sequences": st.lists(TEXT, max_size=3),
        "metadata": st.fixed_dictionaries({}, optional={"user_id": st.none() | TEXT}),
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": NAME}, optional={"description": TEXT, "input_schema": TOOL_SCHEMA}
            ),
            max_size=3,
        ),
        "thinking": JSON,
    },
)

# --- canonical documents (for /v1/decide) ------------------------------------------------

CANON_PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": junk(TEXT)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "media_type": st.sampled_from(["image/png", "Image/PNG"]),
            "source": st.sampled_from(["url", "base64", "ftp"]),
            "bytes": NUMBER,
        },
        optional={"url": URL},
    ),
)
CANON_MESSAGE = body(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "x"]),
        "content": st.lists(CANON_PART, max_size=3),
    },
    {
        "tool_call_id": NAME,
        "tool_calls": st.lists(
            st.fixed_dictionaries({"id": NAME, "name": NAME, "arguments": JSON}), max_size=2
        ),
    },
)
CANONICAL = body(
    {
        "version": st.just("regate.request/v1"),
        "api": st.sampled_from(
            ["openai.chat", "openai.embeddings", "anthropic.messages", "gemini.generate_content"]
        ),
        "operation": st.sampled_from(["chat", "embeddings", "images"]),
        "model": MODEL,
        "messages": st.lists(CANON_MESSAGE, max_size=4),
    },
    {
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": NAME}, optional={"description": TEXT, "parameters": JSON}
            ),
            max_size=2,
        ),
        "params": st.fixed_dictionaries(
            {},
            optional={
                "max_tokens": NUMBER,
                "temperature": NUMBER,
                "stream": st.booleans(),
                "stop": JSON,
            },
        ),
        "metadata": st.dictionaries(NAME, TEXT, max_size=3),
        "principal": JSON,
        "context": JSON,
        "findings": JSON,
        "size": JSON,
        "id": TEXT,
        "time": TEXT,
    },
)

# --- from values to bytes ----------------------------------------------------------------


@st.composite
def encoded(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> bytes:
    """A value as JSON bytes, sometimes mangled: cut, spliced, re-keyed, nested, or noise."""
    raw = json.dumps(draw(values), ensure_ascii=draw(st.booleans())).encode(
        "utf-8", "surrogatepass"
    )
    how = draw(
        mostly(
            st.just("as is"),
            st.sampled_from(["cut", "splice", "duplicate key", "nest", "noise", "bom"]),
        )
    )
    if how == "cut":
        return raw[: draw(st.integers(0, len(raw)))]
    if how == "splice":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(max_size=8)) + raw[at:]
    if how == "duplicate key" and raw.startswith(b"{") and len(raw) > 2:
        return b'{"model": "gpt-4o-mini", ' + raw[1:]
    if how == "nest":
        depth = draw(st.integers(1, 3000))
        return b'{"model": "m", "metadata": ' + b"[" * depth + raw + b"]" * depth + b"}"
    if how == "noise":
        return draw(st.binary(max_size=200))
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw


CONTENT_TYPES = mostly(
    st.just("application/json"),
    st.sampled_from(
        [
            None,
            "text/plain",
            "application/json; charset=utf-16",
            "application/x-www-form-urlencoded",
        ]
    ),
)


def request(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[bytes, str | None]]:
    return st.tuples(encoded(mostly(values, JSON)), CONTENT_TYPES)
