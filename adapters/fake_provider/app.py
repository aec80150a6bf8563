"""The fake upstream LLM provider: an ASGI app speaking OpenAI, Anthropic and Gemini wire formats.

:func:`create_fake_provider` returns a :class:`FakeProvider`; its ``.app`` is
plain ASGI. Every request is recorded, then answered by a Starlette router,
unless a fault (``x-fake-fault`` header, else the schedule set through
``POST /_fake/faults``) says otherwise. A ``/p/{provider}`` path prefix lets
one server play several providers; the name lands in the record and in
schedule matching. Control API (never recorded, never faulted)::

    POST /_fake/faults    {"seed": 1, "rules": [{"match": {...}, "fault": {...}, ...}]}
    GET|DELETE /_fake/faults
    GET|DELETE /_fake/requests
    GET|PUT /_fake/settings   {"reply": "...", "chunk_size": 4, ...}
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.fake_provider import anthropic, gemini, openai
from adapters.fake_provider.faults import (
    HEADER,
    Fault,
    FaultRule,
    FaultSchedule,
    FaultSpecError,
    parse_fault,
)
from adapters.fake_provider.inject import Wire, inject, send_json
from adapters.fake_provider.recorder import RecordedRequest, Recorder
from adapters.fake_provider.replies import Settings

_PREFIX = re.compile(r"^/p/([^/]+)(/.*)$")
_GEMINI_MODEL = re.compile(r"^/v1beta/models/([^/:]+):")

WIRES = {
    "openai": Wire("openai", openai.error_body, openai.stream_error, 500),
    "anthropic": Wire("anthropic", anthropic.error_body, anthropic.stream_error, 529),
    "gemini": Wire("gemini", gemini.error_body, gemini.stream_error, 503),
}


def wire_for_path(path: str) -> Wire:
    """Which provider's format answers ``path`` (errors and 404s included)."""
    if path.startswith("/v1beta/"):
        return WIRES["gemini"]
    if path.startswith("/v1/messages"):
        return WIRES["anthropic"]
    return WIRES["openai"]


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def _sse(frames: list[bytes]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for frame in frames:
            yield frame

    headers = {"cache-control": "no-cache"}
    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=headers)


class FakeProvider:
    """One fake provider; build it with :func:`create_fake_provider`.

    ``app`` is the ASGI app (the object itself), ``recorder`` the requests
    received, ``faults`` the fault schedule, ``settings`` the reply knobs.
    """

    def __init__(self, *, name: str = "fake", settings: Settings | None = None) -> None:
        self.name = name
        self.settings = settings if settings is not None else Settings()
        self.recorder = Recorder()
        self.faults = FaultSchedule()
        self._ids = itertools.count(1)
        self._router = Router(routes=self._routes())
        # An object with an async __call__: servers take a bound method for ASGI 2.
        self.app: ASGIApp = self

    def clear(self) -> None:
        """Forget recorded requests and fault rules."""
        self.recorder.clear()
        self.faults.clear()

    def _next_id(self) -> str:
        return f"fake{next(self._ids):06d}"

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1beta/models/{model}:generateContent", self._generate, methods=["POST"]),
            Route("/v1beta/models/{model}:streamGenerateContent", self._generate, methods=["POST"]),
            Route("/_fake/faults", self._faults_api, methods=["GET", "POST", "DELETE"]),
            Route("/_fake/requests", self._requests_api, methods=["GET", "DELETE"]),
            Route("/_fake/settings", self._settings_api, methods=["GET", "PUT"]),
            Route("/{rest:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE"]),
        ]

    # ---- the ASGI entry: record, authenticate, fault, answer -------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_fake/"):
            await self._router(scope, receive, send)
            return
        provider, scope = self._unprefix(scope)
        raw = await _read_body(receive)
        seen = _inbound(scope, provider, raw)
        wire = wire_for_path(seen.path)
        spec = seen.headers.get(HEADER)
        try:
            fault = parse_fault(spec) if spec else self.faults.pick(seen.match_keys())
        except FaultSpecError as exc:
            self.recorder.add(dataclasses.replace(seen, fault=spec))
            message = f"invalid {HEADER} header: {exc.message}"
            await send_json(send, 400, wire.error_body(400, message))
            return
        self.recorder.add(dataclasses.replace(seen, fault=spec or _describe(fault)))
        app: ASGIApp = self._router
        if not self._authorized(provider, wire, seen.headers, seen.query):
            app = JSONResponse(wire.error_body(401, None), status_code=401)
        replay = _replay(raw, receive)
        if fault is None:
            await app(scope, replay, send)
        else:
            await inject(fault, wire, app, scope, replay, receive, send, self.settings.hang_s)

    def _unprefix(self, scope: Scope) -> tuple[str, Scope]:
        """``/p/{provider}/rest`` -> (provider, scope for ``/rest``); other paths keep this name."""
        prefixed = _PREFIX.match(scope["path"])
        if prefixed is None:
            return self.name, scope
        path = prefixed.group(2)
        raw_path: bytes = scope.get("raw_path") or b""
        raw_path = raw_path[raw_path.find(b"/", 3) :] if raw_path.startswith(b"/p/") else b""
        return prefixed.group(1), {**scope, "path": path, "raw_path": raw_path or path.encode()}

    def _authorized(
        self, provider: str, wire: Wire, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        key = self.settings.api_keys.get(provider)
        if key is None:
            return True
        bearer = headers.get("authorization") == f"Bearer {key}"
        if wire.name == "anthropic":
            # Anthropic takes x-api-key; its SDK (>= 2) sends the key as a bearer token.
            return headers.get("x-api-key") == key or bearer
        if wire.name == "gemini":
            return key in (headers.get("x-goog-api-key"), query.get("key"))
        return bearer

    # ---- provider endpoints ----------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = _loads(await request.body())
        if (error := openai.validate_chat(body)) is not None:
            return JSONResponse(error, status_code=400)
        ident, created = self._next_id(), int(time.time())
        headers = {"x-request-id": f"req_{ident}"}
        if body.get("stream") is True:
            response = _sse(openai.chat_chunks(body, self.settings, ident, created))
            response.headers.update(headers)
            return response
        return JSONResponse(
            openai.chat_completion(body, self.settings, ident, created), headers=headers
        )

    async def _embeddings(self, request: Request) -> Response:
        body = _loads(await request.body())
        if (error := openai.validate_embeddings(body)) is not None:
            return JSONResponse(error, status_code=400)
        return JSONResponse(openai.embeddings(body, self.settings))

    async def _models(self, request: Request) -> Response:
        if "anthropic-version" in request.headers:
            return JSONResponse(anthropic.models(self.settings))
        return JSONResponse(openai.models(self.settings, self.name, int(time.time())))

    async def _messages(self, request: Request) -> Response:
        body = _loads(await request.body())
        ident = self._next_id()
        headers = {"request-id": f"req_{ident}"}
        if (error := anthropic.validate(body)) is not None:
            error["request_id"] = headers["request-id"]
            return JSONResponse(error, status_code=400, headers=headers)
        if body.get("stream") is True:
            response = _sse(anthropic.events(body, self.settings, ident))
            response.headers.update(headers)
            return response
        return JSONResponse(anthropic.message(body, self.settings, ident), headers=headers)

    async def _generate(self, request: Request) -> Response:
        body = _loads(await request.body())
        if (error := gemini.validate(body)) is not None:
            return JSONResponse(error, status_code=400)
        model, ident = request.path_params["model"], self._next_id()
        if not request.url.path.endswith(":streamGenerateContent"):
            return JSONResponse(gemini.generate(body, model, self.settings, ident))
        if request.query_params.get("alt") == "sse":
            return _sse(gemini.stream(body, model, self.settings, ident))
        return JSONResponse(gemini.stream_responses(body, model, self.settings, ident))

    async def _not_found(self, request: Request) -> Response:
        wire = wire_for_path(request.url.path)
        message = f"Invalid URL ({request.method} {request.url.path})"
        return JSONResponse(wire.error_body(404, message), status_code=404)

    # ---- control API -----------------------------------------------------------------

    async def _faults_api(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "POST":
            try:
                self.faults.load(_loads(await request.body()))
            except FaultSpecError as exc:
                return _control_error(exc)
        rules = [_rule_json(r) for r in self.faults.rules]
        return JSONResponse({"rules": rules})

    async def _requests_api(self, request: Request) -> Response:
        if request.method == "DELETE":
            count = len(self.recorder)
            self.recorder.clear()
            return JSONResponse({"cleared": count})
        return JSONResponse({"requests": self.recorder.to_json()})

    async def _settings_api(self, request: Request) -> Response:
        if request.method == "PUT":
            update = _loads(await request.body())
            names = {f.name for f in dataclasses.fields(Settings)}
            if not isinstance(update, Mapping) or not set(update) <= names:
                exc = FaultSpecError(f"settings take only {sorted(names)}", param="settings")
                return _control_error(exc)
            for key, value in update.items():
                setattr(self.settings, key, tuple(value) if key == "models" else value)
        return JSONResponse(dataclasses.asdict(self.settings))


def create_fake_provider(*, name: str = "fake", settings: Settings | None = None) -> FakeProvider:
    """A fresh fake provider; ``name`` is the provider recorded for unprefixed paths.

    Serve it with :func:`adapters.fake_provider.server.run_in_thread`::

        fake = create_fake_provider()
        with run_in_thread(fake.app) as base_url:
            openai.OpenAI(base_url=base_url + "/v1", api_key="sk-test")
    """
    return FakeProvider(name=name, settings=settings)


def _inbound(scope: Scope, provider: str, raw: bytes) -> RecordedRequest:
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    body = _loads(raw)
    model = body.get("model") if isinstance(body, Mapping) else None
    if (in_path := _GEMINI_MODEL.match(scope["path"])) is not None:
        model = in_path.group(1)
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        provider=provider,
        headers=headers,
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        body=body,
        raw=raw,
        time=time.time(),
        model=model if isinstance(model, str) else None,
    )


def _changed(fault: Fault) -> dict[str, Any]:
    """The fields of ``fault`` that differ from the no-op default."""
    return {
        f.name: getattr(fault, f.name)
        for f in dataclasses.fields(fault)
        if getattr(fault, f.name) != f.default
    }


def _describe(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    return ";".join(f"{k}={v}" for k, v in _changed(fault).items())


def _rule_json(rule: FaultRule) -> dict[str, Any]:
    return {**dataclasses.asdict(rule), "fault": _changed(rule.fault)}


def _control_error(exc: FaultSpecError) -> JSONResponse:
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=400)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out the already-read body once, then defers to the server."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replay() -> Any:
        return pending.pop() if pending else await receive()

    return replay
