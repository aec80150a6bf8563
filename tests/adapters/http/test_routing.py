"""Route execution over ``httpx.MockTransport`` upstreams: retries with back-off and
retry-after, the budget, fallbacks that stay on the route and carry nothing of the
provider before, breakers that skip a failing provider, streams before their first byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from adapters.http.health import CircuitBreakers
from adapters.http.metrics import Metrics
from adapters.http.routing import Failed, RouteExecutor, Served, retry_after_seconds, stream_error
from adapters.providers import Provider, ProviderCall, build_providers
from adapters.providers.upstream import HttpxUpstream
from engine.config import Config, parse_config, provider_credentials
from engine.enforce import Target
from engine.errors import ConfigError

KEYS = {"KEY_A": "sk-test-aaaaaaaaaaaaaaaa", "KEY_B": "sk-test-bbbbbbbbbbbbbbbb"}
A, B = Target("a", "model-a"), Target("b", "model-b")
OK = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}
Reply = httpx.Response | Exception | Callable[[], httpx.Response]


def make_config(routing: str = "") -> Config:
    text = f"""
providers:
  a: {{type: openai, base_url: "http://a.test/v1", api_key: {{env: KEY_A}}, headers: {{OpenAI-Organization: org-a}}}}
  b: {{type: openai, base_url: "http://b.test/v1", api_key: {{env: KEY_B}}}}
routes: {{"*": [{{provider: a}}, {{provider: b}}]}}
{routing}
"""
    return parse_config(text, source="t.yaml", env=KEYS, base_dir=Path("."))


class Clock:
    """Monotonic time that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Upstreams:
    """Scripted replies per host (the last one repeats); every request is kept."""

    script: dict[str, list[Reply]]
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.script[request.url.host.removesuffix(".test")]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply() if callable(reply) else reply

    def to(self, provider: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == f"{provider}.test"]


@dataclass
class Rig:
    executor: RouteExecutor
    health: CircuitBreakers
    clock: Clock
    upstreams: Upstreams
    metrics: Metrics

    async def run(
        self, targets: tuple[Target, ...] = (A, B), *, stream: bool = False
    ) -> Served | Failed:
        def plan(target: Target, provider: Provider) -> ProviderCall:
            body = {
                "model": target.model,
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
            }
            return ProviderCall("chat", "openai.chat", target.model, body, stream)

        return await self.executor.execute(targets, plan, client_api="openai.chat")


@pytest.fixture
def rig() -> Iterator[Callable[..., Rig]]:
    clients: list[HttpxUpstream] = []

    def build(script: dict[str, list[Reply]], routing: str = "", rng: float = 0.5) -> Rig:
        config = make_config(routing)
        upstreams = Upstreams(script)
        client = HttpxUpstream(transport=httpx.MockTransport(upstreams.handler))
        clients.append(client)
        providers = build_providers(config, provider_credentials(config, env=KEYS), client)
        clock = Clock()
        health = CircuitBreakers(providers, config.routing.breaker, clock=clock)
        metrics = Metrics()
        executor = RouteExecutor(
            providers,
            health,
            config.routing,
            metrics,
            secrets=tuple(KEYS.values()),
            sleep=clock.sleep,
            clock=clock,
            rng=lambda: rng,
        )
        return Rig(executor, health, clock, upstreams, metrics)

    yield build
    # The clients hold no connections (mock transport); closing needs a loop we no longer have.
    clients.clear()


def ok() -> httpx.Response:
    return httpx.Response(200, json=OK)


def status(code: int, **headers: str) -> httpx.Response:
    return httpx.Response(
        code, headers=headers, json={"error": {"message": "nope", "type": "server_error"}}
    )


async def test_retry_waits_what_retry_after_ms_asks_then_succeeds_on_the_same_target(
    rig: Callable[..., Rig],
) -> None:
    r = rig(
        {"a": [status(429, **{"retry-after-ms": "700", "retry-after": "1"}), ok()], "b": [ok()]},
        "routing: {max_retries_per_target: 1}",
    )

    result = await r.run()

    assert isinstance(result, Served) and result.target == A
    assert len(r.clock.sleeps) == 1 and r.clock.sleeps[0] >= 0.7
    assert r.clock.sleeps[0] == pytest.approx(
        0.7 + 0.5 * 0.25
    )  # plus the jitter (rng 0.5, base 250 ms)
    assert len(r.upstreams.to("a")) == 2 and r.upstreams.to("b") == []
    assert 'regate_upstream_retries_total{provider="a",reason="429"} 1' in r.metrics.render()


async def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # long past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after-ms": "-5"}) is None
    assert retry_after_seconds({}) is None


async def test_a_retry_after_beyond_the_cap_falls_back_at_once(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [status(429, **{"retry-after": "30"})], "b": [ok()]},
        "routing: {max_retries_per_target: 3, backoff_max_ms: 2000}",
    )

    result = await r.run()

    assert isinstance(result, Served) and result.target == B
    assert r.clock.sleeps == [] and len(r.upstreams.to("a")) == 1
    assert (
        'regate_upstream_fallbacks_total{from_provider="a",to_provider="b"} 1' in r.metrics.render()
    )


async def test_backoff_doubles_with_full_jitter_up_to_the_cap(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [status(503)], "b": [ok()]},
        "routing: {max_retries_per_target: 4, max_attempts: 6, backoff_base_ms: 100, backoff_max_ms: 500}",
        rng=1.0,
    )

    result = await r.run()

    assert isinstance(result, Served) and result.target == B
    assert r.clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5])
    assert len(r.upstreams.to("a")) == 5


async def test_the_time_budget_stops_retries_and_fallbacks(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [status(503, **{"retry-after": "0.4"})], "b": [ok()]},
        "routing: {max_retries_per_target: 50, budget_seconds: 1, backoff_base_ms: 0}",
    )

    result = await r.run()

    # Waits of 0.4 s: attempts at 0, 0.4 and 0.8 s; a third wait would end past 1 s, and at
    # that point the budget is not spent yet, so b is still tried.
    assert len(r.upstreams.to("a")) == 3 and r.clock.sleeps == pytest.approx([0.4, 0.4])
    assert isinstance(result, Served) and result.target == B

    slow = rig(
        {"a": [ok()], "b": [ok()]},
        "routing: {max_retries_per_target: 50, budget_seconds: 1, backoff_base_ms: 0}",
    )

    def after_700_ms() -> httpx.Response:
        slow.clock.now += 0.7
        return status(503, **{"retry-after": "0.2"})

    slow.upstreams.script["a"] = [after_700_ms]
    failed = await slow.run()
    # Attempts at 0 and 0.9 s; the second ends at 1.6 s, past the budget: b is not tried.
    assert isinstance(failed, Failed) and failed.status == 502 and slow.upstreams.to("b") == []
    assert len(slow.upstreams.to("a")) == 2 and failed.upstream_ms == pytest.approx(1600)


async def test_max_attempts_counts_retries_and_fallbacks_together(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [httpx.ConnectError("refused")], "b": [status(500)]},
        "routing: {max_retries_per_target: 2, max_attempts: 4, backoff_base_ms: 0}",
    )

    result = await r.run()

    assert isinstance(result, Failed) and result.status == 502 and result.code == "upstream_error"
    assert len(r.upstreams.to("a")) == 3 and len(r.upstreams.to("b")) == 1
    assert result.target is None and result.upstream_ms is not None


async def test_connect_timeout_and_reset_fall_back(rig: Callable[..., Rig]) -> None:
    for error in (
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("cut"),
    ):
        r = rig({"a": [error], "b": [ok()]})
        result = await r.run()
        assert isinstance(result, Served) and result.target == B, error


async def test_a_non_retryable_4xx_is_returned_at_once_translated(rig: Callable[..., Rig]) -> None:
    answer = httpx.Response(
        400,
        json={
            "error": {
                "message": "bad param",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
                "param": "messages",
            }
        },
    )
    r = rig({"a": [answer], "b": [ok()]}, "routing: {max_retries_per_target: 3}")

    result = await r.run()

    assert isinstance(result, Failed) and result.status == 400 and result.target == A
    assert result.code == "context_length_exceeded" and result.body["error"]["param"] == "messages"
    assert r.upstreams.to("b") == [] and r.clock.sleeps == []


async def test_fallback_stays_on_the_route(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [status(500)], "b": [ok()]},
        "routing: {max_retries_per_target: 1, backoff_base_ms: 0}",
    )

    result = await r.run((A,))

    assert isinstance(result, Failed) and result.status == 502 and "'a'" in result.message
    assert r.upstreams.to("b") == [] and len(r.upstreams.to("a")) == 2


async def test_a_fallback_carries_nothing_of_the_provider_before(rig: Callable[..., Rig]) -> None:
    r = rig({"a": [status(503)], "b": [ok()]})

    await r.run()

    [to_a], [to_b] = r.upstreams.to("a"), r.upstreams.to("b")
    assert (
        to_a.headers["authorization"] == f"Bearer {KEYS['KEY_A']}"
        and to_a.headers["openai-organization"] == "org-a"
    )
    assert (
        to_b.headers["authorization"] == f"Bearer {KEYS['KEY_B']}"
        and "openai-organization" not in to_b.headers
    )
    sent_to_b = (str(to_b.headers.raw) + to_b.content.decode()).lower()
    assert KEYS["KEY_A"] not in sent_to_b and "org-a" not in sent_to_b
    assert (
        json.loads(to_b.content)["model"] == "model-b"
        and json.loads(to_a.content)["model"] == "model-a"
    )


async def test_breaker_opens_skips_the_provider_then_probes_and_closes(
    rig: Callable[..., Rig],
) -> None:
    routing = "routing: {breaker: {failure_threshold: 3, cooldown_seconds: 30}}"
    r = rig({"a": [httpx.ConnectError("down")] * 3 + [ok()], "b": [ok()]}, routing)
    for _ in range(3):
        assert (await r.run()).target == B
    assert r.health.snapshot()["a"] == {"healthy": False, "state": "open"}

    skipped = await r.run()
    assert isinstance(skipped, Served) and skipped.target == B and len(r.upstreams.to("a")) == 3
    only_a = await r.run((A,))
    assert (
        isinstance(only_a, Failed)
        and only_a.status == 503
        and only_a.code == "upstream_circuit_open"
    )
    assert only_a.headers["retry-after"] == "30" and only_a.upstream_ms is None
    assert len(r.upstreams.to("a")) == 3  # no network call while open

    r.clock.now += 30
    probed = await r.run()
    assert isinstance(probed, Served) and probed.target == A and r.health["a"].state == "closed"


async def test_a_failed_probe_reopens_and_falls_back(rig: Callable[..., Rig]) -> None:
    r = rig(
        {"a": [status(500)], "b": [ok()]},
        "routing: {breaker: {failure_threshold: 1, cooldown_seconds: 5}}",
    )
    await r.run()
    r.clock.now += 5

    result = await r.run()

    assert isinstance(result, Served) and result.target == B
    assert len(r.upstreams.to("a")) == 2 and r.health["a"].state == "open"


class Chunks(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes, then: Exception | None = None) -> None:
        self._chunks, self._then = chunks, then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._then is not None:
            raise self._then


def sse(*chunks: bytes, then: Exception | None = None) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Chunks(*chunks, then=then)
    )


FIRST = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[]}\n\n'
)


@pytest.mark.parametrize(
    "broken",
    [
        sse(then=httpx.ReadError("cut")),  # cut before the first byte
        sse(),  # a 200 stream with no body at all
        sse(
            b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
        ),  # error event first
    ],
    ids=["cut", "empty", "error-event"],
)
async def test_a_stream_falls_back_before_its_first_byte(
    rig: Callable[..., Rig], broken: Reply
) -> None:
    r = rig({"a": [broken], "b": [sse(FIRST, b"data: [DONE]\n\n")]})

    result = await r.run(stream=True)

    assert isinstance(result, Served) and result.target == B and result.first == FIRST
    await result.response.aclose()


async def test_a_stream_is_committed_at_its_first_chunk(rig: Callable[..., Rig]) -> None:
    r = rig({"a": [sse(FIRST, then=httpx.ReadError("cut"))], "b": [ok()]})

    result = await r.run(stream=True)

    assert isinstance(result, Served) and result.target == A and result.first == FIRST
    assert r.upstreams.to("b") == []
    await result.response.aclose()


def test_stream_error_reads_each_providers_error_event() -> None:
    anthropic = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    status, body = stream_error("anthropic.messages", anthropic) or (0, b"")
    assert status == 529 and json.loads(body)["error"]["message"] == "busy"
    gemini = b'data: [{"error":{"code":503,"message":"busy","status":"UNAVAILABLE"}}]\n\n'
    assert stream_error("gemini.generate_content", gemini)[0] == 503  # type: ignore[index]
    assert stream_error("openai.chat", FIRST) is None
    assert (
        stream_error("openai.chat", b'data: {"choices":[{"delta":{"content":"error"}}]}\n\n')
        is None
    )


def test_routing_config_defaults_and_checks() -> None:
    routing = make_config().routing
    assert (routing.max_attempts, routing.max_retries_per_target, routing.budget_seconds) == (
        5,
        0,
        60.0,
    )
    breaker = routing.breaker
    assert (breaker.failure_threshold, breaker.cooldown_seconds, breaker.half_open_probes) == (
        5,
        30.0,
        1,
    )
    with pytest.raises(ConfigError) as caught:
        make_config("routing: {backoff_base_ms: 500, backoff_max_ms: 100}")
    assert caught.value.line == 6 and "backoff_max_ms" in str(caught.value)
    with pytest.raises(ConfigError):
        make_config("routing: {breaker: {probes: 2}}")
