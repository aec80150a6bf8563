"""The fake provider's Gemini ``generateContent`` surface, checked against the documented shapes."""

from __future__ import annotations

import json
import math

import httpx

from adapters.fake_provider import FakeProvider

BODY = {
    "systemInstruction": {"parts": [{"text": "sys"}]},
    "contents": [
        {"role": "user", "parts": [{"text": "first"}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"role": "user", "parts": [{"text": "hello gemini"}]},
    ],
}
PATH = "/v1beta/models/gemini-2.0-flash"


def test_generate_content_shape(http: httpx.Client, fake: FakeProvider) -> None:
    response = http.post(f"{PATH}:generateContent", json=BODY, headers={"x-goog-api-key": "g-1"})
    data = response.json()

    assert response.status_code == 200
    assert set(data) == {"candidates", "usageMetadata", "modelVersion", "responseId"}
    candidate = data["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "echo: hello gemini"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert candidate["index"] == 0
    prompt = math.ceil(len("sysfirstokhello gemini") / 4)
    answer = math.ceil(len("echo: hello gemini") / 4)
    assert data["usageMetadata"] == {
        "promptTokenCount": prompt,
        "candidatesTokenCount": answer,
        "totalTokenCount": prompt + answer,
    }
    assert data["modelVersion"] == "gemini-2.0-flash"
    assert fake.recorder.last().model == "gemini-2.0-flash"
    assert fake.recorder.last().headers["x-goog-api-key"] == "g-1"


def test_stream_generate_content_sse(http: httpx.Client, fake: FakeProvider) -> None:
    fake.settings.chunk_size = 5
    url = f"{PATH}:streamGenerateContent"
    with http.stream("POST", url, params={"alt": "sse"}, json=BODY) as response:
        raw = response.read().decode()

    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in raw.split("\r\n\r\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    chunks = [json.loads(f[6:]) for f in frames]
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert "".join(texts) == "echo: hello gemini"
    assert len(chunks) == math.ceil(len("echo: hello gemini") / 5)
    assert ["finishReason" in c["candidates"][0] for c in chunks] == [False] * (len(chunks) - 1) + [
        True
    ]
    assert len({c["responseId"] for c in chunks}) == 1
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert counts == sorted(counts)
    assert counts[-1] == math.ceil(len("echo: hello gemini") / 4)


def test_stream_without_alt_sse_is_a_json_array(http: httpx.Client) -> None:
    response = http.post(f"{PATH}:streamGenerateContent", json=BODY)

    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) > 1
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "echo: hello gemini"


def test_function_call(http: httpx.Client) -> None:
    body = {
        "contents": [{"parts": [{"text": "!tool:lookup Bern"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "other", "parameters": {"type": "object"}},
                    {
                        "name": "lookup",
                        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                    },
                ]
            }
        ],
    }

    data = http.post(f"{PATH}:generateContent", json=body).json()

    part = data["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "lookup", "args": {"q": "Bern"}}}


def test_max_output_tokens_truncates(http: httpx.Client) -> None:
    body = {**BODY, "generationConfig": {"maxOutputTokens": 2}}

    data = http.post(f"{PATH}:generateContent", json=body).json()

    assert data["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert data["candidates"][0]["content"]["parts"][0]["text"] == "echo: he"


def test_errors_in_google_format(http: httpx.Client) -> None:
    missing = http.post(f"{PATH}:generateContent", json={"contents": []})
    limited = http.post(
        f"{PATH}:generateContent", json=BODY, headers={"x-fake-fault": "status=429"}
    )

    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == 400
    assert missing.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert limited.status_code == 429
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert isinstance(limited.json()["error"]["message"], str)
