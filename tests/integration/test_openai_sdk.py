"""The official ``openai`` SDK against a running regate, only ``base_url`` and key changed."""

from __future__ import annotations

import openai

from tests.integration.conftest import Regate, Upstream, chat

HELLO = chat("Say hello to the integration suite")


def test_chat_completion_round_trips_through_the_openai_provider(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=HELLO)

    assert reply.choices[0].message.content == "echo: Say hello to the integration suite"
    assert reply.choices[0].finish_reason == "stop"
    assert (
        reply.usage is not None
        and reply.usage.prompt_tokens > 0
        and reply.usage.completion_tokens > 0
    )
    [sent] = upstream.received("openai")
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == HELLO and sent.body["model"] == "gpt-4o-mini"


def test_chat_response_carries_the_decision_id_header(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)

    assert raw.headers["x-regate-decision-id"].startswith("req_")
    content = raw.parse().choices[0].message.content
    assert content is not None and content.startswith("echo: ")


def test_streamed_chat_with_include_usage_ends_with_a_usage_chunk(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: Say hello to the integration suite"
    assert (
        len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    )  # really streamed in pieces
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert upstream.received("openai")[0].body["stream"] is True


def test_streamed_chat_without_include_usage_has_no_usage_chunk(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "echo: Say hello"
    )
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_embeddings_return_one_vector_per_input(oai: openai.OpenAI, upstream: Upstream) -> None:
    result = oai.embeddings.create(
        model="text-embedding-3-small", input=["first text", "second text"]
    )

    assert [e.index for e in result.data] == [0, 1]
    assert all(
        len(e.embedding) == 8 and all(isinstance(v, float) for v in e.embedding)
        for e in result.data
    )
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0
    [sent] = upstream.received("openai")
    assert sent.path == "/v1/embeddings" and sent.body["input"] == ["first text", "second text"]


def test_models_lists_the_routed_models(oai: openai.OpenAI, regate: Regate) -> None:
    ids = {m.id for m in oai.models.list()}

    assert {"gpt-4o-mini", "text-embedding-3-small", "claude-haiku-4-5", "gpt-4o"} <= ids
