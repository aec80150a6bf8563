"""Route execution: the route's targets in order, with retries, fallbacks, a budget and breakers.

:meth:`RouteExecutor.execute` gets the targets the decision (or the config)
allowed, and only ever calls those, and a ``plan`` that writes one target's
call from the intact forward document, so every attempt carries its own
provider's body, credential and headers and nothing of the one before::

    attempt fails: connect, time-out, reset, protocol, 408/409/429/5xx,
                   or a stream whose first event is such an error
        -> the same target again, after back-off (full jitter) or the provider's
           retry-after, while max_retries_per_target, max_attempts and
           budget_seconds allow
        -> else the next target
    any other 4xx  -> returned at once, translated for the client
    breaker open   -> the target is skipped, as if it failed, without a call

A stream is committed once its first chunk arrives and nothing of it has
reached the client yet: up to there it may still fall back; after that the
stream (``adapters.http.streaming``) ends a failure with an error event.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.http.health import CircuitBreakers, Permit
from adapters.http.metrics import Metrics
from adapters.providers import Provider, ProviderCall
from adapters.providers.upstream import UpstreamError, UpstreamResponse
from adapters.translate.errors import (
    ClientError,
    TranslateError,
    describe_upstream_error,
    error_body,
    upstream_error_to_client,
)
from adapters.translate.sse import SSEParser
from engine.config import RoutingConfig
from engine.enforce import Target

log = logging.getLogger("regate.routing")

Plan = Callable[[Target, Provider], ProviderCall]


def retryable(status: int) -> bool:
    """Statuses worth another attempt, as the OpenAI and Anthropic SDKs judge them."""
    return status in (408, 409, 429) or status >= 500


@dataclass
class Served:
    """A provider answered: the whole body, or a stream whose ``first`` chunk has arrived."""

    target: Target
    api: str  # the provider's wire API
    response: UpstreamResponse
    first: bytes
    upstream_ms: float = 0.0


@dataclass
class Failed:
    """No provider served the request: an error ready for the client, in its format."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    code: str
    message: str
    target: Target | None = None  # the target whose own answer this is (a 4xx), else None
    upstream_ms: float | None = None


@dataclass
class _Miss:
    """One failed attempt: the error it would give the client, and how long to wait."""

    error: Failed
    reason: str  # metric label: the failure kind or status
    retry_after: float | None = None  # seconds the provider asked for


class RouteExecutor:
    """Executes routes for one gateway; ``sleep``, ``clock`` and ``rng`` are for tests."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        breakers: CircuitBreakers,
        config: RoutingConfig,
        metrics: Metrics,
        *,
        secrets: Sequence[str] = (),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._providers = providers
        self._breakers = breakers
        self._config = config
        self._metrics = metrics
        self._secrets = tuple(secrets)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    async def execute(
        self, targets: Sequence[Target], plan: Plan, *, client_api: str, request_id: str = ""
    ) -> Served | Failed:
        """Try ``targets`` in order until one serves; never any other provider."""
        config = self._config
        started = self._clock()
        deadline = started + config.budget_seconds
        attempts = 0
        last: Failed | None = None  # the last real failure: what the client is told
        skipped: Failed | None = None  # an open breaker, told only when nothing was tried
        previous: str | None = None
        for target in targets:
            provider = self._providers[target.provider]
            call = plan(target, provider)
            retries = 0
            while True:
                if attempts >= config.max_attempts or (attempts and self._clock() >= deadline):
                    return self._give_up(last or skipped, started, attempts, client_api)
                permit = self._breakers.acquire(target.provider)
                if permit is None:
                    self._metrics.upstream_errors.inc(target.provider, "circuit_open")
                    skipped = skipped or self._circuit_open(target, client_api)
                    previous = target.provider
                    break
                if previous is not None and previous != target.provider:
                    self._metrics.fallbacks.inc(previous, target.provider)
                attempts += 1
                outcome = await self._attempt(permit, provider, target, call, client_api)
                if not isinstance(outcome, _Miss):
                    outcome.upstream_ms = (self._clock() - started) * 1000
                    return outcome
                last, previous = outcome.error, target.provider
                self._metrics.upstream_errors.inc(target.provider, outcome.reason)
                delay = self._delay(retries, outcome.retry_after)
                if (
                    retries >= config.max_retries_per_target
                    or delay is None
                    or self._clock() + delay >= deadline
                ):
                    log.debug(
                        "request %s: %s failed (%s); next target",
                        request_id,
                        target.provider,
                        outcome.reason,
                    )
                    break
                log.debug(
                    "request %s: %s failed (%s); retry in %.3f s",
                    request_id,
                    target.provider,
                    outcome.reason,
                    delay,
                )
                self._metrics.retries.inc(target.provider, outcome.reason)
                await self._sleep(delay)
                retries += 1
        return self._give_up(last or skipped, started, attempts, client_api)

    async def _attempt(
        self,
        permit: Permit,
        provider: Provider,
        target: Target,
        call: ProviderCall,
        client_api: str,
    ) -> Served | Failed | _Miss:
        """One call; the breaker hears its verdict, and a response not handed on is closed."""
        started = time.perf_counter()
        response: UpstreamResponse | None = None
        handed_on = False
        try:
            response = await provider.send(call)
            if response.status >= 400:
                data = await response.read()
                answer = self._translate(
                    call.api, response.status, data, client_api, target, response.headers
                )
                _verdict(permit, answer)
                return answer
            first = await first_chunk(response) if call.stream else b""
            opening_error = stream_error(call.api, first) if call.stream else None
            if opening_error is not None:
                answer = self._translate(
                    call.api, opening_error[0], opening_error[1], client_api, target, {}
                )
                _verdict(permit, answer)
                return answer
            permit.succeeded()
            handed_on = True
            self._metrics.upstream_seconds.observe(time.perf_counter() - started, target.provider)
            return Served(target, call.api, response, first)
        except UpstreamError as exc:
            permit.failed()
            message = f"provider {target.provider!r}: {exc}"
            code = f"upstream_{exc.kind}"
            body = error_body(client_api, 502, code, message, extra={"provider": target.provider})
            return _Miss(Failed(502, body, {}, code, message), exc.kind)
        except BaseException:
            permit.abandoned()
            raise
        finally:
            if response is not None and not handed_on:
                await response.aclose()

    def _translate(
        self,
        api: str,
        status: int,
        data: bytes,
        client_api: str,
        target: Target,
        headers: Mapping[str, str],
    ) -> Failed | _Miss:
        client: ClientError = upstream_error_to_client(
            api, status, data, client_api, target.provider, headers=headers, secrets=self._secrets
        )
        out_headers = {"retry-after": str(client.retry_after)} if client.retry_after else {}
        failed = Failed(
            client.status, client.body, out_headers, _code(client.body), _message(client.body)
        )
        if not retryable(status):
            failed.target = target
            return failed
        wait = retry_after_seconds(headers)
        if wait is None and client.retry_after is not None:
            wait = float(client.retry_after)  # Gemini's RetryInfo, in its body
        return _Miss(failed, str(status), wait)

    def _delay(self, retries: int, retry_after: float | None) -> float | None:
        """Seconds before the next retry, or ``None``: the provider asked for longer than we wait."""
        cap = self._config.backoff_max_ms / 1000
        jitter = self._rng() * min(cap, self._config.backoff_base_ms / 1000 * (1 << retries))
        if retry_after is None:
            return jitter
        if retry_after > cap:
            return None
        return min(
            cap, retry_after + jitter
        )  # the jitter keeps a crowd told "1 s" from returning at once

    def _circuit_open(self, target: Target, client_api: str) -> Failed:
        wait = self._breakers[target.provider].retry_in()
        code = "upstream_circuit_open"
        message = f"provider {target.provider!r} is failing and is not being called for now (circuit breaker open)"
        body = error_body(client_api, 503, code, message, extra={"provider": target.provider})
        return Failed(503, body, {"retry-after": str(max(1, math.ceil(wait)))}, code, message)

    def _give_up(
        self, failed: Failed | None, started: float, attempts: int, client_api: str
    ) -> Failed:
        if failed is None:  # an empty route: the pipeline never lets one through
            code, message = "upstream_unavailable", "no provider could serve the request"
            failed = Failed(502, error_body(client_api, 502, code, message), {}, code, message)
        failed.upstream_ms = (self._clock() - started) * 1000 if attempts else None
        return failed


async def first_chunk(response: UpstreamResponse) -> bytes:
    """Read a stream until its first bytes arrive; a stream that ends first is a failure."""
    if response.chunks is None:
        return response.body
    try:
        while True:
            chunk = await anext(response.chunks)
            if chunk:
                return chunk
    except StopAsyncIteration:
        raise UpstreamError(
            "protocol", "the provider ended the stream before its first byte"
        ) from None


def stream_error(api: str, first: bytes) -> tuple[int, bytes] | None:
    """``(status, error body)`` when the first chunk of a stream holds a provider error
    event (an Anthropic ``overloaded_error`` right after a 200, say): nothing has reached
    the client yet, so it can still fall back."""
    if b"error" not in first:
        return None
    try:
        events = SSEParser().feed(first)
    except TranslateError:
        return None
    for event in events:
        try:
            data = json.loads(event.data)
        except ValueError:
            continue
        error = data[0] if isinstance(data, list) and data else data  # Gemini wraps it in a list
        if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
            return describe_upstream_error(api, error, None).status, json.dumps(error).encode(
                "utf-8"
            )
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a provider asked for: ``retry-after-ms``, else ``retry-after`` (seconds or
    an HTTP date), else ``None``. Unlike the client's ``retry-after``, not rounded up.

    >>> retry_after_seconds({"retry-after-ms": "250", "retry-after": "1"})
    0.25
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _verdict(permit: Permit, answer: Failed | _Miss) -> None:
    """A failure worth a retry counts against the provider; any other answer shows it alive."""
    if isinstance(answer, _Miss):
        permit.failed()
    else:
        permit.succeeded()


def _code(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    return str(code) if code else "upstream_error"


def _message(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    return str(error.get("message", "")) if isinstance(error, Mapping) else "upstream error"
