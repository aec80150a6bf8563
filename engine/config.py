"""Configuration (Contract 6): one YAML file, parsed once into frozen dataclasses.

YAML text -> JSON-Schema validation (``schemas/config.v1.json``) -> defaults ->
cross-checks -> :class:`Config`. Every problem is a :class:`ConfigError` naming
the file and the line of the offending key, and never quoting a value (a value
in the wrong place may be a secret). Nothing here reads the process
environment: callers pass ``env``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema_rs

from engine.config_source import Located, Pointer, load_yaml, schema_problem
from engine.errors import ConfigError
from engine.resources import default_bundle_path, schema_path
from engine.secrets import Secret, SecretRef, resolve_secret

# Re-exported: minting a caller key is part of writing a config (``regate keys new``).
from engine.secrets import hash_caller_key as hash_caller_key
from engine.secrets import new_caller_key as new_caller_key

DEFAULTS_SOURCE = "<embedded defaults>"
# Credentials go through ``api_key`` (a secret reference), never through plain headers.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)

PrincipalKind = Literal["app", "agent", "user"]
ProviderType = Literal["openai", "anthropic", "gemini", "echo"]
QuotaScope = Literal["principal", "team", "model", "principal_model"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _no_entries() -> Mapping[str, str]:
    return _EMPTY


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request's content (``server.request_limits``), checked before policy."""

    max_messages: int = 2048  # OpenAI's own cap on embeddings inputs
    max_parts_per_message: int = 512
    max_tools: int = 256
    max_json_depth: int = 64  # at most 100, the wire readers' own ceiling
    max_metadata_entries: int = 16  # Contract 1 allows no more than 16 / 512
    max_metadata_value_chars: int = 512
    max_text_chars: int = 1_000_000  # size.text_chars: message texts and tool descriptions


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    request_limits: RequestLimits = field(default_factory=RequestLimits)


@dataclass(frozen=True)
class VerificationKeyConfig:
    file: Path
    scope: str | None = None


@dataclass(frozen=True)
class PollingConfig:
    """How a bundle service is polled, as OPA's ``bundles.<name>.polling`` (same defaults)."""

    min_delay_seconds: float = 60.0
    max_delay_seconds: float = 120.0
    long_polling_timeout_seconds: int | None = None  # None: periodic polling only


@dataclass(frozen=True)
class PolicyConfig:
    bundle: str  # absolute path of a directory or .tar.gz, or an http(s) URL
    engine: Literal["embedded", "opa"] = "embedded"
    opa_url: str = "http://127.0.0.1:8181"
    verification_key: VerificationKeyConfig | None = None
    on_error: Literal["deny", "allow"] = "deny"
    timeout_ms: int = 250
    polling: PollingConfig = field(default_factory=PollingConfig)
    bundle_cache: Path = Path("bundle-cache")  # last good bundle of a bundle service

    @property
    def bundle_is_url(self) -> bool:
        return self.bundle.startswith(("http://", "https://"))


@dataclass(frozen=True)
class PrincipalConfig:
    id: str
    kind: PrincipalKind
    keys: tuple[str, ...] = ()
    team: str | None = None
    labels: Mapping[str, str] = field(default_factory=_no_entries)

    def principal(self) -> dict[str, Any]:
        """A fresh Contract 1 ``principal`` object: ``{id, kind, team?, labels}``."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.team is not None:
            out["team"] = self.team
        out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class TimeoutConfig:
    connect: float = 5.0
    read: float = 120.0
    total: float = 600.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: ProviderType
    base_url: str | None = None
    api_key: SecretRef | None = None  # the reference; resolve at start-up
    region: str | None = None
    timeout: TimeoutConfig = field(default_factory=TimeoutConfig)
    headers: Mapping[str, str] = field(default_factory=_no_entries)


@dataclass(frozen=True)
class RouteTarget:
    provider: str
    model: str | None = None  # None: forward the client's model


@dataclass(frozen=True)
class AuditConfig:
    path: Path = Path("audit/regate.jsonl")
    prompt: Literal["none", "redacted", "full"] = "none"
    fsync: Literal["always", "never"] = "always"


@dataclass(frozen=True)
class QuotaConfig:
    scope: QuotaScope
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None


@dataclass(frozen=True)
class LimitsConfig:
    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    redis_password: SecretRef | None = None
    quotas: tuple[QuotaConfig, ...] = (QuotaConfig("principal", requests_per_minute=600),)


@dataclass(frozen=True)
class DecisionLogsConfig:
    """Upload of OPA-format decision logs (``decision_logs``); defaults are OPA's."""

    url: str  # service base URL; chunks are POSTed to url + "/logs"
    headers: Mapping[str, str] = field(default_factory=_no_entries)
    labels: Mapping[str, str] = field(default_factory=_no_entries)
    upload_size_limit_bytes: int = 32768
    buffer_size_limit_events: int = 10000
    min_delay_seconds: float = 300.0
    max_delay_seconds: float = 600.0


@dataclass(frozen=True)
class BreakerConfig:
    """Circuit breaker of each provider (``routing.breaker``)."""

    failure_threshold: int = 5  # failures in a row that open it (Envoy's consecutive_5xx default)
    cooldown_seconds: float = 30.0  # open this long, then half-open
    half_open_probes: int = 1  # attempts let through at a time while half-open


@dataclass(frozen=True)
class RoutingConfig:
    """How a route is executed (``routing``): retries, fallbacks, their budget, breakers."""

    max_attempts: int = 5  # upstream calls per request, retries and fallbacks included
    # Off by default: the SDKs retry on their own (twice), and retries multiply during an
    # incident; falling back along the route needs no retry.
    max_retries_per_target: int = 0
    budget_seconds: float = 60.0  # no retry or fallback starts later than this after the first
    backoff_base_ms: int = 250
    backoff_max_ms: int = 4000  # also the longest retry-after honoured; longer ones move on
    breaker: BreakerConfig = field(default_factory=BreakerConfig)


DEFAULT_PROVIDERS: Mapping[str, ProviderConfig] = MappingProxyType(
    {
        "echo": ProviderConfig("echo", "echo", region="us"),
        "echo-eu": ProviderConfig("echo-eu", "echo", region="eu"),
    }
)
DEFAULT_ROUTES: Mapping[str, tuple[RouteTarget, ...]] = MappingProxyType(
    {"*": (RouteTarget("echo", "echo"),)}
)


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    policy: PolicyConfig
    principals: tuple[PrincipalConfig, ...]
    providers: Mapping[str, ProviderConfig]
    routes: Mapping[str, tuple[RouteTarget, ...]]
    audit: AuditConfig
    limits: LimitsConfig
    source: str = DEFAULTS_SOURCE
    decision_logs: DecisionLogsConfig | None = None
    routing: RoutingConfig = field(default_factory=RoutingConfig)

    def route_for(self, model: str) -> tuple[RouteTarget, ...]:
        """Default route for a client model: its own entry, else ``*``, else none."""
        return self.routes.get(model) or self.routes.get("*") or ()

    def warnings(self) -> tuple[str, ...]:
        """What the operator must be told loudly at start-up."""
        out = []
        if self.policy.on_error == "allow":
            out.append(
                "policy.on_error is 'allow' (FAIL OPEN): when policy evaluation fails, "
                "requests are forwarded without a decision"
            )
        if self.audit.prompt == "full":
            out.append("audit.prompt is 'full': prompts are written to the audit log verbatim")
        return tuple(out)


def load_config(path: str | Path | None, *, env: Mapping[str, str]) -> Config:
    """Read and check a configuration file; ``None`` gives the embedded defaults."""
    if path is None:
        return default_config(env)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read configuration: {why}", file=str(path)) from None
    return parse_config(text, source=str(path), env=env, base_dir=path.parent)


def default_config(env: Mapping[str, str]) -> Config:
    """The embedded defaults: default bundle, embedded engine, echo providers, loopback."""
    return parse_config("", source=DEFAULTS_SOURCE, env=env, base_dir=Path("."))


def parse_config(text: str, *, source: str, env: Mapping[str, str], base_dir: Path) -> Config:
    """Parse configuration ``text``; ``source`` names it in errors and relative paths
    resolve against ``base_dir``. ``env`` is consulted only to expand ``~/`` paths.

    >>> cfg = parse_config("server: {port: 9000}", source="x.yaml", env={}, base_dir=Path("."))
    >>> cfg.server.port, cfg.server.host, sorted(cfg.providers)
    (9000, '127.0.0.1', ['echo', 'echo-eu'])
    """
    data, located = load_yaml(text, source)
    if data is None:
        data = {}
    problems = sorted(
        (schema_problem(error, _schema(), located) for error in _validator().iter_errors(data)),
        key=lambda problem: problem.line or 0,
    )
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0].message + more, file=source, line=problems[0].line)
    builder = _Builder(located, env=env, base_dir=base_dir)
    config = builder.build(data)
    _cross_check(config, data, located)
    return config


def provider_credentials(config: Config, *, env: Mapping[str, str]) -> dict[str, Secret]:
    """Resolve every provider's ``api_key`` reference (call once, at start-up)."""
    return {
        name: resolve_secret(provider.api_key, env=env)
        for name, provider in config.providers.items()
        if provider.api_key is not None
    }


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path("config.v1.json").read_text("utf-8"))
    return schema


@cache
def _validator() -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(_schema())


class _Builder:
    """Turns schema-valid data into dataclasses, applying defaults and resolving paths."""

    def __init__(self, located: Located, *, env: Mapping[str, str], base_dir: Path) -> None:
        self.located = located
        self.env = env
        self.base_dir = base_dir

    def build(self, data: Mapping[str, Any]) -> Config:
        server = data.get("server", {})
        audit = data.get("audit", {})
        # The built-in echo providers stay available (the contract's own example
        # routes "*" to echo while listing only openai); an entry of the same name
        # replaces one.
        providers = dict(DEFAULT_PROVIDERS)
        for name, raw in data.get("providers", {}).items():
            providers[name] = self._provider(name, raw)
        if "routes" in data:
            routes = {
                model: tuple(RouteTarget(t["provider"], t.get("model")) for t in targets)
                for model, targets in data["routes"].items()
            }
        else:
            routes = dict(DEFAULT_ROUTES) if "providers" not in data else {}
        return Config(
            server=ServerConfig(
                **{**server, "request_limits": RequestLimits(**server.get("request_limits", {}))}
            ),
            policy=self._policy(data.get("policy", {})),
            principals=tuple(
                PrincipalConfig(
                    id=p["id"],
                    kind=p["kind"],
                    keys=tuple(p["keys"]),
                    team=p.get("team"),
                    labels=MappingProxyType(dict(p.get("labels", {}))),
                )
                for p in data.get("principals", [])
            ),
            providers=MappingProxyType(providers),
            routes=MappingProxyType(routes),
            audit=AuditConfig(
                path=self._path(audit["path"], ("audit", "path"))
                if "path" in audit
                else AuditConfig.path,
                prompt=audit.get("prompt", "none"),
                fsync=audit.get("fsync", "always"),
            ),
            limits=self._limits(data.get("limits", {})),
            decision_logs=self._decision_logs(data["decision_logs"])
            if "decision_logs" in data
            else None,
            routing=self._routing(data.get("routing", {})),
            source=self.located.source,
        )

    def _policy(self, raw: Mapping[str, Any]) -> PolicyConfig:
        bundle = raw.get("bundle")
        if bundle is None:
            bundle = str(default_bundle_path())
        elif not bundle.startswith(("http://", "https://")):
            bundle = str(self._path(bundle, ("policy", "bundle")))
        key = raw.get("verification_key")
        return PolicyConfig(
            bundle=bundle,
            engine=raw.get("engine", "embedded"),
            opa_url=raw.get("opa_url", PolicyConfig.opa_url),
            verification_key=VerificationKeyConfig(
                file=self._path(key["file"], ("policy", "verification_key", "file")),
                scope=key.get("scope"),
            )
            if key is not None
            else None,
            on_error=raw.get("on_error", "deny"),
            timeout_ms=raw.get("timeout_ms", PolicyConfig.timeout_ms),
            polling=self._polling(raw.get("polling", {})),
            bundle_cache=self._path(
                raw.get("bundle_cache", "bundle-cache"), ("policy", "bundle_cache")
            ),
        )

    def _polling(self, raw: Mapping[str, Any]) -> PollingConfig:
        pointer: Pointer = ("policy", "polling")
        if ("min_delay_seconds" in raw) != ("max_delay_seconds" in raw):
            raise self.located.error(
                pointer, "set both min_delay_seconds and max_delay_seconds, or neither (OPA)"
            )
        polling = PollingConfig(
            min_delay_seconds=float(raw.get("min_delay_seconds", PollingConfig.min_delay_seconds)),
            max_delay_seconds=float(raw.get("max_delay_seconds", PollingConfig.max_delay_seconds)),
            long_polling_timeout_seconds=raw.get("long_polling_timeout_seconds"),
        )
        if polling.min_delay_seconds > polling.max_delay_seconds:
            raise self.located.error(
                (*pointer, "min_delay_seconds"), "must not be greater than max_delay_seconds"
            )
        return polling

    def _provider(self, name: str, raw: Mapping[str, Any]) -> ProviderConfig:
        pointer: Pointer = ("providers", name)
        return ProviderConfig(
            name=name,
            type=raw["type"],
            base_url=raw.get("base_url"),
            api_key=self._secret(raw.get("api_key"), (*pointer, "api_key")),
            region=raw.get("region"),
            timeout=TimeoutConfig(**{k: float(v) for k, v in raw.get("timeout", {}).items()}),
            headers=MappingProxyType(dict(raw.get("headers", {}))),
        )

    def _limits(self, raw: Mapping[str, Any]) -> LimitsConfig:
        quotas = (
            tuple(QuotaConfig(**q) for q in raw["quotas"])
            if "quotas" in raw
            else LimitsConfig.quotas
        )
        return LimitsConfig(
            store=raw.get("store", "memory"),
            redis_url=raw.get("redis_url"),
            redis_password=self._secret(raw.get("redis_password"), ("limits", "redis_password")),
            quotas=quotas,
        )

    def _routing(self, raw: Mapping[str, Any]) -> RoutingConfig:
        default, breaker = RoutingConfig(), raw.get("breaker", {})
        routing = RoutingConfig(
            max_attempts=raw.get("max_attempts", default.max_attempts),
            max_retries_per_target=raw.get(
                "max_retries_per_target", default.max_retries_per_target
            ),
            budget_seconds=float(raw.get("budget_seconds", default.budget_seconds)),
            backoff_base_ms=raw.get("backoff_base_ms", default.backoff_base_ms),
            backoff_max_ms=raw.get("backoff_max_ms", default.backoff_max_ms),
            breaker=BreakerConfig(
                failure_threshold=breaker.get(
                    "failure_threshold", default.breaker.failure_threshold
                ),
                cooldown_seconds=float(
                    breaker.get("cooldown_seconds", default.breaker.cooldown_seconds)
                ),
                half_open_probes=breaker.get("half_open_probes", default.breaker.half_open_probes),
            ),
        )
        if routing.backoff_base_ms > routing.backoff_max_ms:
            raise self.located.error(
                ("routing", "backoff_base_ms"), "must not be greater than backoff_max_ms"
            )
        return routing

    def _decision_logs(self, raw: Mapping[str, Any]) -> DecisionLogsConfig:
        pointer: Pointer = ("decision_logs",)
        _check_url(raw["url"], (*pointer, "url"), None, self.located)
        for header in raw.get("headers", {}):
            if header.lower() in CREDENTIAL_HEADERS:
                raise self.located.error(
                    (*pointer, "headers", header), f"{header} carries a credential: not here"
                )
        if ("min_delay_seconds" in raw) != ("max_delay_seconds" in raw):
            raise self.located.error(
                pointer, "set both min_delay_seconds and max_delay_seconds, or neither"
            )
        defaults = DecisionLogsConfig(url=raw["url"])
        config = DecisionLogsConfig(
            url=raw["url"],
            headers=MappingProxyType(dict(raw.get("headers", {}))),
            labels=MappingProxyType(dict(raw.get("labels", {}))),
            upload_size_limit_bytes=raw.get(
                "upload_size_limit_bytes", defaults.upload_size_limit_bytes
            ),
            buffer_size_limit_events=raw.get(
                "buffer_size_limit_events", defaults.buffer_size_limit_events
            ),
            min_delay_seconds=float(raw.get("min_delay_seconds", defaults.min_delay_seconds)),
            max_delay_seconds=float(raw.get("max_delay_seconds", defaults.max_delay_seconds)),
        )
        if config.min_delay_seconds > config.max_delay_seconds:
            raise self.located.error(
                (*pointer, "min_delay_seconds"), "must not be greater than max_delay_seconds"
            )
        return config

    def _secret(self, raw: Mapping[str, str] | None, pointer: Pointer) -> SecretRef | None:
        if raw is None:
            return None
        file, line = self.located.source, self.located.line(pointer)
        if "file" in raw:
            path = self._path(raw["file"], (*pointer, "file"))
            return SecretRef("file", str(path), file=file, line=line)
        return SecretRef.from_mapping(raw, file=file, line=line)

    def _path(self, value: str, pointer: Pointer) -> Path:
        """``value`` as a path: ``~/`` from ``env["HOME"]``, relative to the config's directory."""
        if value == "~" or value.startswith("~/"):
            home = self.env.get("HOME")
            if not home:
                raise self.located.error(pointer, "starts with '~' but HOME is not set")
            value = home + value[1:]
        return self.base_dir / value


def _cross_check(config: Config, data: Mapping[str, Any], located: Located) -> None:
    """Rules the schema cannot express; each error points at the offending key."""
    seen_ids: dict[str, int] = {}
    seen_keys: dict[str, str] = {}
    for i, principal in enumerate(data.get("principals", [])):
        principal_id = principal["id"]
        if principal_id in seen_ids:
            first = seen_ids[principal_id]
            raise located.error(
                ("principals", i, "id"),
                f"id {principal_id!r} is already used by principals[{first}]",
            )
        seen_ids[principal_id] = i
        for j, key_hash in enumerate(principal["keys"]):
            if key_hash in seen_keys:
                owner = seen_keys[key_hash]
                raise located.error(
                    ("principals", i, "keys", j), f"this key is already listed for {owner!r}"
                )
            seen_keys[key_hash] = principal_id
    for model, targets in data.get("routes", {}).items():
        for j, target in enumerate(targets):
            if target["provider"] not in config.providers:
                raise located.error(
                    ("routes", model, j, "provider"),
                    f"provider {target['provider']!r} is not configured under providers",
                )
    for name, provider in data.get("providers", {}).items():
        for header in provider.get("headers", {}):
            if header.lower() in CREDENTIAL_HEADERS:
                raise located.error(
                    ("providers", name, "headers", header),
                    f"{header} carries a credential: use api_key ({{env: NAME}} or {{file: PATH}})",
                )
        _check_url(provider.get("base_url"), ("providers", name, "base_url"), "api_key", located)
    policy, limits = data.get("policy", {}), data.get("limits", {})
    _check_url(policy.get("opa_url"), ("policy", "opa_url"), None, located)
    _check_url(policy.get("bundle"), ("policy", "bundle"), None, located)
    _check_url(limits.get("redis_url"), ("limits", "redis_url"), "redis_password", located)
    if config.limits.store == "redis" and config.limits.redis_url is None:
        raise located.error(("limits", "store"), "store 'redis' needs limits.redis_url")
    if not config.principals and not _is_loopback(config.server.host):
        raise located.error(
            ("server", "host"),
            f"host {config.server.host!r} is not a loopback address, so principals are "
            "required: an unauthenticated gateway may listen on loopback only",
        )


def _check_url(url: str | None, pointer: Pointer, instead: str | None, located: Located) -> None:
    # The URL itself is never quoted: it may hold the very password we refuse.
    if url is not None and "://" in url and urlsplit(url).password is not None:
        hint = f"; put it in {instead} ({{env: NAME}} or {{file: PATH}})" if instead else ""
        raise located.error(pointer, "must not contain a password" + hint)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
