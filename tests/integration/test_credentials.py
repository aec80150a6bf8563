"""Credential isolation: each provider gets exactly its own key in its own header, and
no provider ever sees the caller's regate key (the fake accepts only each provider's key)."""

from __future__ import annotations

from tests.integration.conftest import PROVIDERS, Regate, Upstream

CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
EXPECTED_HEADER = {
    "openai": ("authorization", "Bearer {key}"),
    "anthropic": ("x-api-key", "{key}"),
    "gemini": ("x-goog-api-key", "{key}"),
}


def test_each_provider_receives_only_its_own_key_in_its_own_header(
    regate: Regate, upstream: Upstream
) -> None:
    with regate.openai() as oai, regate.anthropic() as claude, regate.openai("eu-bot") as eu:
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "to openai"}]
        )
        oai.embeddings.create(model="text-embedding-3-small", input="to openai embeddings")
        oai.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "to gemini"}]
        )
        list(
            oai.chat.completions.create(
                model="gpt-4.1-mini",
                stream=True,
                messages=[{"role": "user", "content": "to gemini"}],
            )
        )
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            messages=[{"role": "user", "content": "to anthropic"}],
        )
        oai.chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": "to flaky"}]
        )
        eu.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "to azure-eu"}]
        )

    recorded = upstream.fake.recorder.requests
    assert {r.provider for r in recorded} == {"openai", "gemini", "anthropic", "flaky", "azure-eu"}
    for request in recorded:
        kind = PROVIDERS[request.provider][0]
        own_key = upstream.keys[request.provider]
        header, template = EXPECTED_HEADER[kind]
        assert request.headers[header] == template.format(key=own_key), request.provider
        others = [h for h in CREDENTIAL_HEADERS if h != header]
        assert not any(h in request.headers for h in others), request.provider
        assert "key" not in request.query  # Gemini's key travels in a header, never the URL
        wire = request.raw.decode() + repr(request.headers) + repr(request.query)
        for name, key in upstream.keys.items():
            assert (key in wire) == (name == request.provider)
        for caller_key in regate.keys.values():
            assert caller_key not in wire


def test_anthropic_provider_gets_the_version_header_and_no_caller_headers(
    regate: Regate, upstream: Upstream
) -> None:
    with regate.openai() as oai:
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-caller-secret": "do-not-forward"},
        )

    [request] = upstream.received("anthropic")
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "x-caller-secret" not in request.headers
    assert "openai" not in request.headers.get("user-agent", "").lower()
