"""The Starlette application: Contract 5's routes over one ``Gateway``.

Middleware is plain ASGI (never ``BaseHTTPMiddleware``, which breaks streaming):
it assigns the request id (also the decision id), enforces the body size
limit before any parsing, and stamps ``x-regate-decision-id`` on every response.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.bundles import bundle_report
from adapters.http.errors import error_response
from adapters.http.gateway import Gateway
from engine.document import new_request_id
from engine.resources import schema_path

DECISION_HEADER = b"x-regate-decision-id"
# The audited routes and the API each speaks (``/v1/decide``'s is not known before its body
# is read): every request to one is audited, including one refused here.
AUDITED_ROUTES: dict[str, str | None] = {
    "/v1/chat/completions": "openai.chat",
    "/v1/embeddings": "openai.embeddings",
    "/v1/messages": "anthropic.messages",
    "/v1/decide": None,
}

# (request id, api, status, code, message) of a request refused before it reached a route.
OnRefused = Callable[[str, str | None, int, str, str], Awaitable[None]]


def api_for_path(path: str) -> str:
    """Which wire format errors on ``path`` are written in."""
    return "anthropic.messages" if path.startswith("/v1/messages") else "openai.chat"


class GatewayMiddleware:
    """Request id + body limit + decision-id header, as one pure ASGI layer."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, on_refused: OnRefused | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_bytes = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == DECISION_HEADER for name, _ in headers):
                    headers.append((DECISION_HEADER, id_bytes))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, receive)
            if body is None:
                message = (
                    f"the request body is larger than the gateway's limit of {self.max_body_bytes} bytes "
                    "(server.max_body_bytes)"
                )
                api = api_for_path(scope["path"])
                response = error_response(
                    api, 413, "request_too_large", message, request_id=request_id
                )
                await response(scope, receive, send_with_id)
                if scope["path"] in AUDITED_ROUTES and self.on_refused is not None:
                    await self.on_refused(
                        request_id, AUDITED_ROUTES[scope["path"]], 413, "request_too_large", message
                    )
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_id)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` when it is over the limit."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI application serving ``gateway``."""

    async def chat(request: Request) -> Response:
        return await gateway.handle(request, "openai.chat")

    async def embeddings(request: Request) -> Response:
        return await gateway.handle(request, "openai.embeddings")

    async def messages(request: Request) -> Response:
        return await gateway.handle(request, "anthropic.messages")

    async def models(request: Request) -> Response:
        if gateway.authenticate(request) is None:
            return error_response(
                "openai.chat",
                401,
                "invalid_api_key",
                "the regate API key is missing or not valid",
                request_id=request.state.request_id,
            )
        names = sorted(
            {m for m in gateway.config.routes if m != "*"}
            | {t.model for ts in gateway.config.routes.values() for t in ts if t.model}
        )
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "regate"} for name in names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def decide(request: Request) -> Response:
        return await gateway.decide(request)

    openapi_document = schema_path("openapi.v1.json").read_bytes()

    async def openapi(request: Request) -> Response:
        return Response(openapi_document, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        pipeline = gateway.pipeline
        bundle = bundle_report(pipeline, gateway.bundle_service)
        body = {
            "ready": gateway.ready,
            "bundle": bundle,
            "engine": pipeline.evaluator.name,
            "providers": sorted(gateway.providers),
        }
        return JSONResponse(body, status_code=200 if gateway.ready else 503)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(gateway.metrics.render(), media_type="text/plain; version=0.0.4")

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(
            api_for_path(request.url.path),
            404,
            "not_found",
            f"no route for {request.method} {request.url.path}",
            request_id=request.state.request_id,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/decide", decide, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found}
    )
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=gateway.config.server.max_body_bytes,
        on_refused=gateway.refused,
    )
    return app
