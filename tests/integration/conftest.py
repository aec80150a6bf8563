"""Fixtures for the integration suite: the fake upstream, a running regate, SDK clients.

Everything runs on real loopback sockets. One fake provider plays every
upstream through its ``/p/{provider}`` prefix and checks each provider's test
key; one gateway (``regate``) serves most tests for the whole session. Every
byte regate sends back to a client passes through :func:`recording_transport`
into the session's :class:`Suite`, which ``test_zz_secret_scan.py`` scans for
keys after everything else ran, and which counts the API requests each
gateway received, so the audit files can be checked against it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import httpx2
import openai
import pytest
import yaml
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from adapters.fake_provider import (
    FakeProvider,
    FaultRule,
    Settings,
    create_fake_provider,
    parse_fault,
    run_in_thread,
)
from adapters.http.app import create_app
from adapters.http.gateway import Gateway
from engine.config import parse_config
from engine.secrets import hash_caller_key, new_caller_key

API_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/decide")

# Provider name -> (type, path under the fake, region, environment variable of its key).
PROVIDERS: Mapping[str, tuple[str, str, str, str]] = {
    "openai": ("openai", "/p/openai/v1", "us", "REGATE_IT_OPENAI_KEY"),
    "anthropic": ("anthropic", "/p/anthropic", "us", "REGATE_IT_ANTHROPIC_KEY"),
    "gemini": ("gemini", "/p/gemini", "us", "REGATE_IT_GEMINI_KEY"),
    "azure-eu": ("openai", "/p/azure-eu/v1", "eu", "REGATE_IT_AZURE_EU_KEY"),
    "flaky": ("openai", "/p/flaky/v1", "us", "REGATE_IT_FLAKY_KEY"),
    "backup": ("openai", "/p/backup/v1", "us", "REGATE_IT_BACKUP_KEY"),
}

# Client model -> [(provider, upstream model)]; every client model is on the default bundle's allowlist.
ROUTES: Mapping[str, list[tuple[str, str]]] = {
    "gpt-4o-mini": [("openai", "gpt-4o-mini")],
    "text-embedding-3-small": [("openai", "text-embedding-3-small")],
    "claude-haiku-4-5": [("anthropic", "claude-haiku-4-5")],
    "gpt-4o": [("anthropic", "claude-haiku-4-5")],  # OpenAI client -> Anthropic provider
    "gpt-4.1-mini": [("gemini", "gemini-2.0-flash")],  # OpenAI client -> Gemini provider
    "claude-sonnet-4-6": [("openai", "gpt-4o-mini")],  # Anthropic client -> OpenAI provider
    "o3-mini": [("flaky", "gpt-4o-mini")],  # one target, for fault tests
    "o4-mini": [("flaky", "gpt-4o-mini"), ("backup", "gpt-4o-mini")],  # fallback
}

PRINCIPALS: Mapping[str, Mapping[str, Any]] = {
    "billing-bot": {"kind": "app", "team": "finance", "labels": {"env": "test"}},
    "eu-bot": {"kind": "app", "team": "support", "labels": {"region": "eu"}},
}

# Loggers whose records are regate's own output (client libraries are left out:
# they log what the test sends, not what regate wrote).
REGATE_LOGGERS = ("regate", "adapters", "engine", "uvicorn", "aiohttp")


def chat(text: str) -> list[ChatCompletionMessageParam]:
    """One user message, typed for the ``openai`` SDK."""
    return [{"role": "user", "content": text}]


def messages(text: str) -> list[MessageParam]:
    """One user message, typed for the ``anthropic`` SDK."""
    return [{"role": "user", "content": text}]


@dataclass
class Suite:
    """What the whole session saw: secrets to look for and everything regate wrote."""

    secrets: set[str] = field(default_factory=set)
    received: list[bytes] = field(default_factory=list)  # response heads and bodies
    logs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # stdout/stderr of regate subprocesses
    audit_files: dict[str, Path] = field(default_factory=dict)  # gateway origin -> audit file
    gateways: list[Regate] = field(default_factory=list)  # every in-process gateway started
    api_requests: dict[str, int] = field(
        default_factory=dict
    )  # gateway origin -> API requests sent
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_request(self, path: str, method: str, origin: str) -> None:
        if method == "POST" and path in API_PATHS:
            with self._lock:
                self.api_requests[origin] = self.api_requests.get(origin, 0) + 1

    def add_received(self, data: bytes) -> None:
        with self._lock:
            self.received.append(data)


def recording_transport(http: Any, suite: Suite) -> Any:
    """A real HTTP transport of ``http`` (``httpx``, or ``httpx2`` for the anthropic SDK)
    that copies every response head and body byte into ``suite``."""

    class Tee(http.SyncByteStream):  # type: ignore[misc]  # the module is a parameter
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._stream:
                suite.add_received(chunk)
                yield chunk

        def close(self) -> None:
            self._stream.close()

    class RecordingTransport(http.HTTPTransport):  # type: ignore[misc]
        def handle_request(self, request: Any) -> Any:
            suite.count_request(
                request.url.path,
                request.method,
                f"{request.url.scheme}://{request.url.host}:{request.url.port}",
            )
            response = super().handle_request(request)
            lines = "".join(f"{k}: {v}\r\n" for k, v in response.headers.multi_items())
            suite.add_received(f"HTTP {response.status_code}\r\n{lines}".encode("latin-1"))
            return http.Response(
                response.status_code,
                headers=response.headers,
                stream=Tee(response.stream),
                extensions=response.extensions,
                request=request,
            )

    return RecordingTransport()


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self._sink = sink
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in REGATE_LOGGERS:
            self._sink.append(self.format(record))


@pytest.fixture(scope="session")
def suite() -> Iterator[Suite]:
    """The session record; captures regate's log records (at DEBUG) while the suite runs."""
    record = Suite()
    handler = _ListHandler(record.logs)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("regate", "adapters", "engine")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield record
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


# ---- the fake upstream -------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    fake: FakeProvider
    url: str
    keys: Mapping[str, str]  # provider name -> its test key

    @property
    def env(self) -> dict[str, str]:
        return {PROVIDERS[name][3]: key for name, key in self.keys.items()}

    def fail(self, provider: str, fault: str | Mapping[str, Any], *, times: int | None = 1) -> None:
        """Inject ``fault`` (``x-fake-fault`` syntax or its JSON object) into the next
        ``times`` requests ``provider`` gets."""
        self.fake.faults.add(
            FaultRule(parse_fault(fault), match={"provider": provider}, times=times)
        )

    def received(self, provider: str) -> list[Any]:
        return self.fake.recorder.for_provider(provider)


@pytest.fixture(scope="session")
def _upstream(suite: Suite) -> Iterator[Upstream]:
    keys = {name: f"sk-test-{name}-{secrets.token_hex(12)}" for name in PROVIDERS}
    suite.secrets.update(keys.values())
    fake = create_fake_provider(name="unprefixed")
    with run_in_thread(fake.app) as url:
        yield Upstream(fake, url, keys)


@pytest.fixture
def upstream(_upstream: Upstream) -> Upstream:
    """The shared fake, reset: no record, no faults; it accepts only each provider's own key."""
    _upstream.fake.clear()
    _upstream.fake.settings = Settings(api_keys=dict(_upstream.keys))
    return _upstream


# ---- regate ------------------------------------------------------------------------------


def config_yaml(
    upstream_url: str, principal_hashes: Mapping[str, str], audit_path: Path, **extra: Any
) -> str:
    """A Contract 6 config for the fake upstream; ``extra`` adds top-level sections."""
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1"},
        # The gateway, the fake upstream and the SDK clients share one process (one GIL)
        # here; on a loaded machine that alone can push a decision past the 250 ms default.
        "policy": {"timeout_ms": 2000},
        "principals": [
            {"id": pid, **PRINCIPALS[pid], "keys": [digest]}
            for pid, digest in principal_hashes.items()
        ],
        "providers": {
            name: {
                "type": kind,
                "base_url": upstream_url + path,
                "region": region,
                "api_key": {"env": var},
            }
            for name, (kind, path, region, var) in PROVIDERS.items()
        },
        "routes": {
            model: [{"provider": p, "model": m} for p, m in targets]
            for model, targets in ROUTES.items()
        },
        "audit": {"path": str(audit_path), "prompt": "redacted", "fsync": "never"},
        **extra,
    }
    return yaml.safe_dump(data, sort_keys=False)


@dataclass
class Regate:
    """A gateway served on loopback, with one caller key per principal."""

    url: str
    keys: Mapping[str, str]  # principal id -> caller key
    audit_path: Path
    config_path: Path
    suite: Suite
    _stack: contextlib.ExitStack
    # Held until the session ends: regorus objects may only be dropped on the thread that
    # built them (this one), and a stopped gateway left to the cyclic GC would be freed
    # on whichever thread collects next (often a server thread): an unraisable error.
    gateway: Gateway | None = None
    stopped: bool = False

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, transport=recording_transport(httpx, self.suite), timeout=10.0
        )

    def openai(self, principal: str = "billing-bot", *, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=key if key is not None else self.keys[principal],
            max_retries=0,
            http_client=httpx2.Client(
                transport=recording_transport(httpx2, self.suite), timeout=10.0
            ),
        )

    def anthropic(
        self, principal: str = "billing-bot", *, key: str | None = None
    ) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.url,
            api_key=key if key is not None else self.keys[principal],
            max_retries=0,
            http_client=httpx2.Client(
                transport=recording_transport(httpx2, self.suite), timeout=10.0
            ),
        )

    def stop(self) -> None:
        """Shut the gateway down (its lifespan flushes the audit writer); idempotent."""
        self.stopped = True
        self._stack.close()


StartRegate = Callable[..., Regate]


@pytest.fixture(scope="session")
def start_regate(
    _upstream: Upstream, suite: Suite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartRegate]:
    """Start a gateway in-process over the fake upstream; ``extra`` adds config sections.

    Each gateway gets fresh caller keys, its own directory and audit file, all
    registered with the suite; every one still running stops at session end.
    """

    def start(**extra: Any) -> Regate:
        root = tmp_path_factory.mktemp("regate")
        keys = {pid: new_caller_key(pid) for pid in PRINCIPALS}
        suite.secrets.update(keys.values())
        audit_path = root / "audit" / "regate.jsonl"
        text = config_yaml(
            _upstream.url, {pid: hash_caller_key(k) for pid, k in keys.items()}, audit_path, **extra
        )
        config_path = root / "regate.yaml"
        config_path.write_text(text, encoding="utf-8")
        config = parse_config(text, source=str(config_path), env=_upstream.env, base_dir=root)
        stack = contextlib.ExitStack()
        gateway = Gateway(config, env=_upstream.env)
        url = stack.enter_context(run_in_thread(create_app(gateway)))
        origin = urlsplit(url)
        suite.audit_files[f"http://{origin.hostname}:{origin.port}"] = audit_path
        regate = Regate(url, keys, audit_path, config_path, suite, stack, gateway)
        suite.gateways.append(regate)
        return regate

    yield start
    for regate in suite.gateways:
        regate.stop()


@pytest.fixture(scope="session")
def regate(start_regate: StartRegate) -> Regate:
    """The gateway most tests share, with the default bundle and config quotas."""
    return start_regate()


@pytest.fixture
def oai(regate: Regate, upstream: Upstream) -> Iterator[openai.OpenAI]:
    with regate.openai() as client:
        yield client


@pytest.fixture
def claude(regate: Regate, upstream: Upstream) -> Iterator[anthropic.Anthropic]:
    with regate.anthropic() as client:
        yield client
