"""The gateway: authenticate -> canonicalise -> decide -> charge quotas -> forward
along the route (falling back on failure) -> answer in the client's wire format
-> audit. One ``Gateway`` per process holds the active pipeline and every
shared resource; ``handle`` serves one LLM API request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters import wire
from adapters.bundle_service import BundleFailure
from adapters.decision_logs import decision_log_uploader
from adapters.http.bundles import (
    FIRST_ACTIVATION_TIMEOUT_S,
    RetiredEvaluators,
    build_pipeline,
    bundle_service_for,
    pending_pipeline,
)
from adapters.http.errors import error_response
from adapters.http.exchange import Exchange
from adapters.http.health import CircuitBreakers
from adapters.http.metrics import Metrics
from adapters.http.routing import RouteExecutor, Served
from adapters.http.streaming import StreamResult, TranslatedStream
from adapters.policy_input import PolicyInput, build_policy_input, parse_body
from adapters.providers import Provider, ProviderCall, build_providers
from adapters.providers.upstream import UPSTREAM_CLIENTS, UpstreamClient, UpstreamResponse
from adapters.translate.translator import StreamTranslator, translate_response
from engine.audit_writer import AuditWriter
from engine.bundle.loader import Bundle, load_bundle
from engine.config import Config, provider_credentials
from engine.enforce import Target
from engine.errors import InputError, RegateError
from engine.limits import ChargeResult, LimitStoreUnavailable, counters_for, make_limit_store
from engine.pipeline import DecisionPipeline, Outcome
from engine.runtime import make_pipeline, provider_context
from engine.secrets import PrincipalDirectory

log = logging.getLogger("regate.gateway")

ANONYMOUS = {"id": "anonymous", "kind": "user", "labels": {}}
OPERATIONS = {
    "openai.chat": "chat",
    "openai.embeddings": "embeddings",
    "anthropic.messages": "chat",
}


class Gateway:
    """Shared state of one gateway process."""

    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str],
        upstream: UpstreamClient | None = None,
        pipeline: DecisionPipeline | None = None,
    ) -> None:
        self.config = config
        credentials = provider_credentials(config, env=env)
        self._secrets = tuple(s.reveal() for s in credentials.values())
        self.directory = PrincipalDirectory.from_config(config)
        self.upstream = upstream or UPSTREAM_CLIENTS["aiohttp"]()
        self.providers: dict[str, Provider] = build_providers(config, credentials, self.upstream)
        url = pipeline is None and config.policy.bundle_is_url
        self.bundle_service = (
            bundle_service_for(config, activate=self._activate, on_failure=self._bundle_failed)
            if url
            else None
        )
        self.pipeline = pipeline or (
            pending_pipeline(config) if url else make_pipeline(self._load_bundle(), config)
        )
        self._retired = RetiredEvaluators(grace=1.0 + 4 * config.policy.timeout_ms / 1000)
        self.health = CircuitBreakers(self.providers, config.routing.breaker)
        self.limits = make_limit_store(config.limits, env)
        self.metrics = Metrics()
        self.router = RouteExecutor(
            self.providers, self.health, config.routing, self.metrics, secrets=self._secrets
        )
        self.metrics.gauge_family(
            "regate_circuit_breaker_state",
            "Circuit breaker of each provider: 0 closed, 1 half-open, 2 open.",
            ("provider",),
            self.health.gauge,
        )
        self.audit = AuditWriter.for_file(str(config.audit.path), fsync=config.audit.fsync)
        self.metrics.gauge(
            "regate_audit_queue_depth",
            "Audit events waiting to be written.",
            lambda: self.audit.depth,
        )
        self.metrics.gauge(
            "regate_audit_events_written_total", "Audit events written.", lambda: self.audit.written
        )
        self.decision_logs = decision_log_uploader(config, self.metrics)
        self.metrics.gauge(
            "regate_bundle_info",
            "The active bundle (1; 0 while none is).",
            lambda: 1.0 if self.pipeline.bundle.digest else 0.0,
            labels=lambda: {
                "revision": self.pipeline.bundle.revision,
                "digest": self.pipeline.bundle.digest,
            },
        )

    def _load_bundle(self) -> Any:
        policy = self.config.policy
        key = policy.verification_key
        return load_bundle(
            policy.bundle,
            verification_key=key.file.read_bytes() if key is not None else None,
            scope=key.scope if key is not None else None,
        )

    async def _activate(self, bundle: Bundle) -> None:
        """Swap in a bundle from the bundle service; its pipeline is ready before the swap."""
        pipeline = await build_pipeline(bundle, self.config)
        old, self.pipeline = self.pipeline, pipeline
        self.metrics.bundle_activations.inc()
        self._retired.add(old.evaluator)

    def _bundle_failed(self, failure: BundleFailure) -> None:
        self.metrics.bundle_failures.inc(failure.reason)

    async def start(self) -> None:
        self.audit.start()
        if self.decision_logs is not None:
            self.decision_logs.start()
        if self.bundle_service is not None:
            await self.bundle_service.start(first_wait=FIRST_ACTIVATION_TIMEOUT_S)
        else:
            await (
                self.pipeline.evaluator.prepare()
            )  # the opa engine pushes the bundle now, not on a request
        for warning in self.config.warnings():
            log.warning("%s", warning)

    async def stop(self) -> None:
        if self.bundle_service is not None:
            await self.bundle_service.stop()
        await self._retired.close_all()
        await self.audit.close()
        if self.decision_logs is not None:
            await self.decision_logs.close()
        await self.upstream.close()
        await self.pipeline.evaluator.close()
        await self.limits.close()

    @property
    def ready(self) -> bool:
        active = self.bundle_service is None or self.bundle_service.status.active
        return bool(self.providers) and self.pipeline is not None and active

    # -- one request -----------------------------------------------------------------

    def authenticate(self, request: Request) -> dict[str, Any] | None:
        """The caller's principal, or ``None`` when the presented key is not known."""
        if len(self.directory) == 0:
            return dict(ANONYMOUS)
        header = request.headers.get("authorization", "")
        key = (
            header[7:].strip()
            if header[:7].lower() == "bearer "
            else request.headers.get("x-api-key")
        )
        return self.directory.authenticate(key)

    async def refused(
        self, request_id: str, api: str | None, status: int, code: str, message: str
    ) -> None:
        """Audit a request the transport refused before ``handle`` (a body over the size limit)."""
        exchange = Exchange(request_id, api)
        exchange.fail(status, code, message)
        await self._audit(exchange)

    async def handle(self, request: Request, api: str) -> Response:
        """Serve one LLM API request written in ``api``; every outcome is audited."""
        exchange = Exchange(request.state.request_id, api)
        return await self._guarded(exchange, self._handle(request, exchange))

    async def decide(self, request: Request) -> Response:
        """Serve ``POST /v1/decide``: the decision only, nothing forwarded; audited too.
        Errors are in OpenAI's format, whatever the body's."""
        exchange = Exchange(request.state.request_id, None)
        return await self._guarded(exchange, self._decide(request, exchange))

    async def _guarded(self, exchange: Exchange, work: Coroutine[Any, Any, Response]) -> Response:
        try:
            return await work
        except InputError as exc:
            exchange.fail(exc.status, exc.code, exc.message)
            return self._error(exchange, exc.status, exc.code, exc.message)
        except LimitStoreUnavailable as exc:
            # Quotas cannot be checked: fail closed rather than serve unmetered.
            log.error("request %s refused: %s", exchange.request_id, exc)
            exchange.fail(503, exc.code, exc.message)
            return self._error(exchange, 503, exc.code, exc.message)
        except Exception:
            # A bug, not a client error: answer in the client's format, keep the audit event.
            log.exception("unexpected error while handling request %s", exchange.request_id)
            exchange.streaming = False
            exchange.fail(500, "internal_error", "regate failed to handle the request")
            return self._error(
                exchange, 500, "internal_error", "regate failed to handle the request"
            )
        finally:
            if not exchange.streaming:
                await self._audit(exchange)

    async def _read_and_decide(
        self, request: Request, exchange: Exchange, api: str | None
    ) -> Response | tuple[Outcome, PolicyInput, bytes, dict[str, Any]]:
        """Authenticate, read the body, decide: the common start of the LLM routes
        and ``/v1/decide``. A ``Response`` means the caller was refused."""
        principal = self.authenticate(request)
        if principal is None:
            exchange.fail(401, "invalid_api_key", "the regate API key is missing or not valid")
            return self._error(
                exchange, 401, "invalid_api_key", "the regate API key is missing or not valid"
            )
        exchange.principal = principal
        raw = await request.body()
        body = parse_body(raw, content_type=request.headers.get("content-type"))
        if isinstance(body.get("model"), str):
            exchange.model = body["model"]
        context = {
            "providers": provider_context(self.config, self.health.snapshot()),
            "usage": await self.limits.usage(principal["id"]),
        }
        policy_input = build_policy_input(
            body,
            api=api,
            principal=principal,
            context=context,
            body_bytes=len(raw),
            request_id=exchange.request_id,
            limits=self.config.server.request_limits,
        )
        exchange.model = policy_input.document.get("model")
        exchange.pipeline = pipeline = self.pipeline
        outcome = exchange.outcome = await pipeline.decide(policy_input.document)
        self.metrics.decision_seconds.observe(outcome.policy_ms / 1000)
        return outcome, policy_input, raw, body

    async def _handle(self, request: Request, exchange: Exchange) -> Response:
        decided = await self._read_and_decide(request, exchange, str(exchange.api))
        if isinstance(decided, Response):
            return decided
        outcome, policy_input, raw, body = decided
        principal = policy_input.document["principal"]
        if not outcome.allowed:
            reasons = outcome.decision.get("reasons", [])
            if reasons and reasons[0]["code"] == "policy.error":
                self.metrics.policy_errors.inc()
            exchange.status = outcome.status
            return self._denial(exchange, outcome)
        charged = await self._charge(exchange, outcome, principal, policy_input.document)
        exchange.reservation = charged.reservation
        if not charged.allowed:
            message = f"quota exceeded: {charged.field} for this caller; retry after {int(charged.retry_after) + 1} s"
            exchange.fail(429, charged.reason_code, message)
            return self._error(
                exchange,
                429,
                charged.reason_code,
                message,
                headers={"retry-after": str(int(charged.retry_after) + 1)},
            )
        try:
            return await self._forward(exchange, outcome, body, raw, policy_input.attachments)
        finally:
            if not exchange.streaming:  # a stream settles when it ends
                await self._settle(exchange)

    async def _settle(self, exchange: Exchange) -> None:
        """Correct the token reservation with what the provider reported: refund it
        all when no provider answered, keep it when usage is unknown."""
        if not exchange.reservation:
            return
        if exchange.provider is None:
            used = 0
        elif exchange.prompt_tokens is None and exchange.completion_tokens is None:
            return
        else:
            used = (exchange.prompt_tokens or 0) + (exchange.completion_tokens or 0)
        try:
            await self.limits.settle(exchange.reservation, used - exchange.reserved_tokens)
        except LimitStoreUnavailable as exc:
            # The answer is already on its way; losing the correction only skews the budget.
            log.warning("request %s: token usage not settled: %s", exchange.request_id, exc)

    async def _decide(self, request: Request, exchange: Exchange) -> Response:
        decided = await self._read_and_decide(request, exchange, request.query_params.get("api"))
        if isinstance(decided, Response):
            return decided
        outcome, policy_input, _raw, _body = decided
        exchange.api = policy_input.api if policy_input.api in wire.CLIENT_APIS else None
        answer = {
            "decision_id": exchange.request_id,
            "decision": outcome.decision,
            "forward": outcome.forward,
        }
        return JSONResponse({**answer, "route": [t.as_dict() for t in outcome.targets]})

    async def _charge(
        self,
        exchange: Exchange,
        outcome: Outcome,
        principal: Mapping[str, Any],
        doc: Mapping[str, Any],
    ) -> ChargeResult:
        """Charge every quota at once. Tokens are reserved for the worst case — the
        prompt estimate plus the (policy-capped) ``max_tokens`` — and settled with the
        provider's usage afterwards, so concurrent requests cannot overspend a budget."""
        quotas = [q.__dict__ for q in self.config.limits.quotas] + [dict(q) for q in outcome.quotas]
        counters = counters_for(quotas, principal, str(doc.get("model", "")))
        if not counters:
            return ChargeResult(True)
        max_tokens = ((outcome.forward or {}).get("params") or {}).get("max_tokens")
        completion = (
            max_tokens if doc.get("operation") == "chat" and isinstance(max_tokens, int) else 0
        )
        exchange.reserved_tokens = int(doc["size"]["estimated_tokens"]) + completion
        return await self.limits.charge(counters, requests=1, tokens=exchange.reserved_tokens)

    async def _forward(
        self,
        exchange: Exchange,
        outcome: Outcome,
        body: Mapping[str, Any],
        raw: bytes,
        attachments: Mapping[str, str],
    ) -> Response:
        client_api = str(exchange.api)
        operation = OPERATIONS[client_api]
        forward = outcome.forward or {}
        stream = bool(forward.get("params", {}).get("stream"))
        include_usage = bool(_stream_options(body).get("include_usage"))
        # Redactions copy what they change, so identical messages and params mean the
        # policy changed nothing the provider would see.
        request = outcome.request
        same_messages = forward.get("messages") is request.get("messages")
        unchanged = same_messages and forward.get("params") == request.get("params")

        def plan(target: Target, provider: Provider) -> ProviderCall:
            """One target's call, written afresh from the intact forward document."""
            provider_api = provider.wire_api(operation, client_api)
            if (
                unchanged
                and provider_api == client_api
                and target.model == request.get("model")
                and not (stream and provider_api == "openai.chat")
            ):
                # Same format, same model, nothing redacted or clamped: the client's own
                # bytes are exactly what re-emission would produce, so send them as they are.
                return ProviderCall(operation, provider_api, target.model, body, stream, raw=raw)
            original = body if provider_api == client_api else None
            upstream_body = wire.from_canonical(
                provider_api, dict(forward, model=target.model), attachments, original=original
            )
            if stream and provider_api == "openai.chat":
                # Ask for the usage chunk so quotas settle on real counts; the stream
                # translator drops it again when the client did not ask for it.
                upstream_body["stream_options"] = {
                    **_stream_options(upstream_body),
                    "include_usage": True,
                }
            return ProviderCall(operation, provider_api, target.model, upstream_body, stream)

        result = await self.router.execute(
            outcome.targets, plan, client_api=client_api, request_id=exchange.request_id
        )
        exchange.upstream_ms = result.upstream_ms
        if isinstance(result, Served):
            exchange.provider, exchange.upstream_model = result.target.provider, result.target.model
            if stream:
                return self._stream(
                    exchange,
                    result.response,
                    result.first,
                    result.api,
                    result.target,
                    include_usage,
                )
            return self._complete(exchange, result.response, result.api, result.target)
        if result.target is not None:  # the provider's own answer (a 4xx), translated
            exchange.provider, exchange.upstream_model = result.target.provider, result.target.model
        exchange.fail(result.status, result.code, result.message)
        headers = {**result.headers, "x-regate-decision-id": exchange.request_id}
        return Response(
            json.dumps(result.body), result.status, headers, media_type="application/json"
        )

    def _complete(
        self, exchange: Exchange, response: UpstreamResponse, provider_api: str, target: Target
    ) -> Response:
        client_api = str(exchange.api)
        try:
            parsed = json.loads(response.body)
            out = translate_response(
                provider_api,
                client_api,
                parsed,
                model=target.model,
                response_id=exchange.request_id,
            )
        except (ValueError, RegateError):
            exchange.fail(
                502,
                "upstream_malformed_response",
                f"provider {target.provider!r} sent a response regate cannot read",
            )
            return self._error(
                exchange,
                502,
                "upstream_malformed_response",
                f"provider {target.provider!r} sent a response regate cannot read",
            )
        usage = _usage(out)
        exchange.prompt_tokens, exchange.completion_tokens = usage
        content = response.body if out is parsed else json.dumps(out).encode("utf-8")
        return Response(content, 200, media_type="application/json")

    def _stream(
        self,
        exchange: Exchange,
        response: UpstreamResponse,
        first: bytes,
        provider_api: str,
        target: Target,
        include_usage: bool,
    ) -> Response:
        client_api = str(exchange.api)
        translator = StreamTranslator(
            provider_api,
            client_api,
            include_usage,
            model=target.model,
            response_id=exchange.request_id,
            provider_name=target.provider,
            secrets=self._secrets,
        )
        exchange.streaming = True

        async def done(result: StreamResult) -> None:
            if translator.usage:
                exchange.prompt_tokens = translator.usage["prompt_tokens"]
                exchange.completion_tokens = translator.usage["completion_tokens"]
            if result.error_code:
                exchange.error_code, exchange.error_message = (
                    result.error_code,
                    result.error_message,
                )
                # A provider that cut the stream mid-way counts as a failed call.
                if result.error_code.startswith("upstream_"):
                    self.health.failure(target.provider)
            await self._settle(exchange)
            await self._audit(exchange)

        headers = {"x-regate-decision-id": exchange.request_id}
        return TranslatedStream(response, first, translator, headers, done)  # type: ignore[return-value]

    # -- answers ------------------------------------------------------------------------

    def _error(
        self,
        exchange: Exchange,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Response:
        return error_response(
            exchange.api or "openai.chat",
            status,
            code,
            message,
            request_id=exchange.request_id,
            headers=headers,
            extra=extra,
        )

    def _denial(self, exchange: Exchange, outcome: Outcome) -> Response:
        reasons = outcome.decision.get("reasons", [])
        summary = (
            "; ".join(f"{r['code']}: {r.get('message', '')}".rstrip(": ") for r in reasons)
            or "no reason given"
        )
        code = reasons[0]["code"] if reasons else "policy.denied"
        message = f"regate policy denied the request: {summary} (decision {exchange.request_id})"
        exchange.error_code = None
        return self._error(
            exchange,
            outcome.status,
            code,
            message,
            extra={"reasons": reasons, "decision_id": exchange.request_id},
        )

    async def _audit(self, exchange: Exchange) -> None:
        pipeline = exchange.pipeline or self.pipeline
        bundle = pipeline.bundle
        event = exchange.audit_event(
            bundle_revision=bundle.revision,
            bundle_digest=bundle.digest,
            engine=pipeline.evaluator.name,
            prompt_level=self.config.audit.prompt,
        )
        action = event["action"] or "none"
        self.metrics.requests.inc(
            str(exchange.api), action, exchange.provider or "none", str(exchange.status)
        )
        await self.audit.submit(event)
        if self.decision_logs is not None and exchange.outcome is not None:
            self.decision_logs.record(
                exchange.outcome,
                decision_id=exchange.request_id,
                timestamp=exchange.time,
                bundle=bundle,
                handler_ms=event["latency_ms"]["total"],
            )


def _stream_options(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """``stream_options`` of an OpenAI body: a passthrough field the wire layer leaves unchecked."""
    options = body.get("stream_options")
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InputError("stream_options must be a JSON object")
    return options


def _usage(out: Mapping[str, Any]) -> tuple[int | None, int | None]:
    usage = out.get("usage") or {}
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return prompt, completion
