"""Fault injection: header and schedule parsing, then each fault over real loopback HTTP."""

from __future__ import annotations

import time

import anthropic
import httpx
import httpx2  # the transport under anthropic>=2
import openai
import pytest

from adapters.fake_provider import FakeProvider, Fault, FaultSchedule, FaultSpecError, parse_fault

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello fault world"}]}


# ---- parsing and scheduling (pure) ---------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("status=500", Fault(status=500)),
        ("status=429;retry-after=2", Fault(status=429, retry_after=2.0)),
        (" latency_ms=200 ; first_byte_ms=500 ", Fault(latency_ms=200, first_byte_ms=500)),
        ("disconnect_after_chunks=2", Fault(disconnect_after_chunks=2)),
        ("reset", Fault(reset=True)),
        ("timeout", Fault(timeout=True)),
        ({"status": 529, "message": "busy", "retry_after": 0.5}, Fault(529, 0.5, "busy")),
        ({"error_after_chunks": 3, "reset": False}, Fault(error_after_chunks=3)),
    ],
)
def test_parse_fault(spec: str | dict[str, object], want: Fault) -> None:
    assert parse_fault(spec) == want


@pytest.mark.parametrize(
    "spec", ["status=200", "status=abc", "latency_ms=-1", "explode", {"status": True}]
)
def test_parse_fault_rejects_nonsense(spec: str | dict[str, object]) -> None:
    with pytest.raises(FaultSpecError) as err:
        parse_fault(spec)
    assert err.value.code == "invalid_fault"


def _request(path: str = "/v1/chat/completions", provider: str = "openai") -> dict[str, str | None]:
    return {"path": path, "provider": provider, "method": "POST", "model": "m"}


def test_schedule_matches_skip_and_times() -> None:
    schedule = FaultSchedule()
    schedule.load(
        {
            "rules": [
                {"match": {"provider": "anthropic"}, "fault": "status=529"},
                {"match": {"path": "/v1/chat/*"}, "fault": {"status": 500}, "skip": 1, "times": 2},
            ]
        }
    )

    picks = [schedule.pick(_request()) for _ in range(5)]

    assert [p.status if p else None for p in picks] == [None, 500, 500, None, None]
    assert schedule.pick(_request("/v1/messages", "anthropic")) == Fault(status=529)
    assert schedule.pick(_request("/v1/embeddings")) is None
    assert [r.fired for r in schedule.rules] == [1, 2]


def test_schedule_probability_is_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[bool]:
        schedule = FaultSchedule()
        schedule.load({"seed": seed, "rules": [{"fault": "reset", "probability": 0.5}]})
        return [schedule.pick(_request()) is not None for _ in range(40)]

    first, again, other = run(7), run(7), run(8)

    assert first == again
    assert first != other
    assert 5 < sum(first) < 35


@pytest.mark.parametrize(
    "schedule",
    [
        {"rules": {}},
        {"rules": [{"match": {"host": "x"}, "fault": "reset"}]},
        {"rules": [{"fault": "reset", "probability": 2}]},
        {"rules": [{"fault": "reset", "when": 1}]},
        {"rules": [{"match": {}}]},
    ],
)
def test_schedule_rejects_bad_rules(schedule: dict[str, object]) -> None:
    with pytest.raises(FaultSpecError):
        FaultSchedule().load(schedule)


# ---- faults over HTTP ----------------------------------------------------------------


def test_status_500_reaches_the_sdk_as_server_error(oai: openai.OpenAI, fake: FakeProvider) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(**CHAT, extra_headers={"x-fake-fault": "status=500"})  # type: ignore[call-overload]

    assert err.value.status_code == 500
    assert err.value.body["type"] == "server_error"  # type: ignore[index]
    assert fake.recorder.last().fault == "status=500"


def test_status_429_carries_retry_after(oai: openai.OpenAI) -> None:
    headers = {"x-fake-fault": "status=429;retry-after=2"}
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(**CHAT, extra_headers=headers)  # type: ignore[call-overload]

    assert err.value.response.headers["retry-after"] == "2"
    assert err.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_anthropic_529_is_overloaded(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as err:
        claude.messages.create(
            model="c",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-fault": "status=529"},
        )

    assert err.value.status_code == 529
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_latency_delays_the_whole_response(http: httpx.Client) -> None:
    started = time.monotonic()
    response = http.post(
        "/v1/chat/completions", json=CHAT, headers={"x-fake-fault": "latency_ms=300"}
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3


def test_first_byte_delay_holds_the_body_not_the_head(http: httpx.Client) -> None:
    body = {**CHAT, "stream": True}
    started = time.monotonic()
    headers = {"x-fake-fault": "first_byte_ms=500"}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        head_at = time.monotonic() - started
        first = next(response.iter_bytes())
        first_at = time.monotonic() - started

    assert head_at < 0.4
    assert first_at >= 0.5
    assert first.startswith(b"data: ")


def test_chunk_delay_paces_the_stream(http: httpx.Client, fake: FakeProvider) -> None:
    fake.settings.chunk_size = 100
    body = {**CHAT, "stream": True}
    started = time.monotonic()
    headers = {"x-fake-fault": "chunk_delay_ms=60"}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        frames = [line for line in response.iter_lines() if line]

    assert len(frames) == 4  # role, text, finish, [DONE]
    assert time.monotonic() - started >= 3 * 0.06


def test_mid_stream_disconnect_fails_the_openai_stream(oai: openai.OpenAI) -> None:
    received = []
    stream = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers={"x-fake-fault": "disconnect_after_chunks=2"}
    )  # type: ignore[call-overload]
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        for chunk in stream:
            received.append(chunk)

    assert len(received) == 2
    assert received[1].choices[0].delta.content == "echo: he"


def test_mid_stream_disconnect_fails_the_anthropic_stream(claude: anthropic.Anthropic) -> None:
    texts: list[str] = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):  # noqa: SIM117
        with claude.messages.stream(
            model="c",
            max_tokens=100,
            messages=[{"role": "user", "content": "a long enough message"}],
            extra_headers={"x-fake-fault": "disconnect_after_chunks=4"},
        ) as stream:
            texts.extend(stream.text_stream)

    assert texts == ["echo: a "]  # message_start, block start, ping, one delta, then cut


def test_in_stream_error_event_raises_in_the_sdks(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    stream = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers={"x-fake-fault": "error_after_chunks=2"}
    )  # type: ignore[call-overload]
    with pytest.raises(openai.APIError) as oai_err:
        list(stream)
    with pytest.raises(anthropic.APIStatusError) as claude_err:  # noqa: SIM117
        with claude.messages.stream(
            model="c",
            max_tokens=100,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-fault": "error_after_chunks=3"},
        ) as events:
            list(events)

    assert oai_err.value.body["type"] == "server_error"  # type: ignore[index]
    assert claude_err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_reset_closes_without_a_response(
    http: httpx.Client, oai: openai.OpenAI, fake: FakeProvider
) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        http.post("/v1/chat/completions", json=CHAT, headers={"x-fake-fault": "reset"})
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(**CHAT, extra_headers={"x-fake-fault": "reset"})  # type: ignore[call-overload]

    assert len(fake.recorder) == 2  # received and recorded, never answered
    assert http.get("/v1/models").status_code == 200


def test_timeout_hangs_until_the_client_gives_up(http: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            "/v1/chat/completions", json=CHAT, headers={"x-fake-fault": "timeout"}, timeout=0.3
        )

    assert 0.3 <= time.monotonic() - started < 2.0
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_bad_fault_header_is_a_400_in_the_provider_format(http: httpx.Client) -> None:
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    response = http.post("/v1/messages", json=body, headers={"x-fake-fault": "status=42"})

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert "x-fake-fault" in response.json()["error"]["message"]


def test_schedule_through_control_api(http: httpx.Client, base_url: str) -> None:
    schedule = {
        "rules": [
            {
                "match": {"provider": "azure-eu", "path": "/v1/chat/completions"},
                "fault": {"status": 503},
                "times": 2,
            }
        ]
    }
    loaded = http.post("/_fake/faults", json=schedule)
    statuses = [
        http.post("/p/azure-eu/v1/chat/completions", json=CHAT).status_code for _ in range(3)
    ]
    other = http.post("/p/openai-us/v1/chat/completions", json=CHAT).status_code
    state = http.get("/_fake/faults").json()
    cleared = http.delete("/_fake/faults").json()

    assert loaded.status_code == 200
    assert statuses == [503, 503, 200]
    assert other == 200
    assert state["rules"][0]["fired"] == 2
    assert state["rules"][0]["fault"] == {"status": 503}
    assert cleared == {"rules": []}


def test_seeded_probability_replays_over_http(http: httpx.Client) -> None:
    schedule = {"seed": 42, "rules": [{"fault": "status=500", "probability": 0.5}]}

    def run() -> list[int]:
        http.post("/_fake/faults", json=schedule)
        return [
            http.post("/v1/embeddings", json={"model": "e", "input": "x"}).status_code
            for _ in range(12)
        ]

    first, second = run(), run()

    assert first == second
    assert set(first) == {200, 500}


def test_invalid_schedule_is_refused(http: httpx.Client) -> None:
    response = http.post("/_fake/faults", json={"rules": [{"fault": "status=99"}]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_fault"


def test_error_after_chunks_on_a_plain_answer_is_an_http_error(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", json=CHAT, headers={"x-fake-fault": "error_after_chunks=1"}
    )

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def test_python_schedule_matches_on_model(http: httpx.Client, fake: FakeProvider) -> None:
    fake.faults.load({"rules": [{"match": {"model": "gpt-4o"}, "fault": "status=503"}]})

    hit = http.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"})
    miss = http.post("/v1/chat/completions", json=CHAT)

    assert (hit.status_code, miss.status_code) == (503, 200)
    assert fake.recorder.requests[0].fault == "status=503"
    assert fake.recorder.requests[1].fault is None
