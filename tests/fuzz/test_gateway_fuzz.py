"""Property-based fuzzing of every wire reader and the canonicaliser, end to end through a
live gateway: generated bodies, valid-ish and garbage, for each route; the gateway must
answer every one below 500, errors in the client's own format, one audit event each.

Bodies come in three kinds: shapes close to each API (so the readers get deep, with
wrong types, unknown fields, odd numbers and texts mixed in), arbitrary JSON, and raw
bytes (mutations of the valid-ish bodies, and noise).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.bodies import CANONICAL, CHAT, EMBEDDINGS, MESSAGES, request
from tests.fuzz.conftest import LiveGateway

EXAMPLES = 250
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --- the properties ----------------------------------------------------------------------


def fuzz(
    gateway: LiveGateway,
    suite: str,
    path: str,
    raw: bytes,
    content_type: str | None,
    *,
    anthropic: bool = False,
) -> None:
    response = gateway.post(
        suite, path, raw, {"content-type": content_type} if content_type else {}
    )
    assert response.status_code < 500, (
        f"{response.status_code} for {raw[:300]!r}: {response.text[:500]}"
    )
    assert response.headers["x-regate-decision-id"].startswith("req_")
    if response.status_code >= 400:
        answer = response.json()
        if anthropic:
            assert (
                answer["type"] == "error" and answer["error"]["type"] and answer["error"]["message"]
            )
        else:
            assert (
                set(answer) == {"error"} and answer["error"]["message"] and answer["error"]["code"]
            )
    elif response.headers["content-type"].startswith("application/json"):
        assert isinstance(response.json(), dict)


def assert_every_request_audited(gateway: LiveGateway) -> None:
    assert gateway.audit_events() == gateway.sent


def test_chat_completions_fuzz(live_gateway: LiveGateway) -> None:
    @SETTINGS
    @given(request(CHAT))
    def run(sent: tuple[bytes, str | None]) -> None:
        fuzz(live_gateway, "hypothesis /v1/chat/completions", "/v1/chat/completions", *sent)

    run()
    assert_every_request_audited(live_gateway)


def test_embeddings_fuzz(live_gateway: LiveGateway) -> None:
    @SETTINGS
    @given(request(EMBEDDINGS))
    def run(sent: tuple[bytes, str | None]) -> None:
        fuzz(live_gateway, "hypothesis /v1/embeddings", "/v1/embeddings", *sent)

    run()
    assert_every_request_audited(live_gateway)


def test_messages_fuzz(live_gateway: LiveGateway) -> None:
    @SETTINGS
    @given(request(MESSAGES))
    def run(sent: tuple[bytes, str | None]) -> None:
        fuzz(live_gateway, "hypothesis /v1/messages", "/v1/messages", *sent, anthropic=True)

    run()
    assert_every_request_audited(live_gateway)


API_PARAMS = st.sampled_from(
    [
        "",
        "?api=canonical",
        "?api=openai.chat",
        "?api=anthropic.messages",
        "?api=openai.embeddings",
        "?api=x",
    ]
)


def test_decide_fuzz(live_gateway: LiveGateway) -> None:
    @SETTINGS
    @given(request(CANONICAL | CHAT | MESSAGES | EMBEDDINGS), API_PARAMS)
    def run(sent: tuple[bytes, str | None], query: str) -> None:
        fuzz(live_gateway, "hypothesis /v1/decide", "/v1/decide" + query, *sent)

    run()
    assert_every_request_audited(live_gateway)
