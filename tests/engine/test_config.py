"""engine.config: YAML -> schema -> defaults -> frozen dataclasses, errors with file and line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from engine.config import (
    DEFAULT_PROVIDERS,
    Config,
    PrincipalConfig,
    RouteTarget,
    default_config,
    load_config,
    parse_config,
    provider_credentials,
)
from engine.errors import ConfigError
from engine.resources import default_bundle_path
from engine.secrets import SecretRef

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples" / "config"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: line (\d+) at (.+)$", re.M)
KEY_A = "sha256:" + "a" * 64
KEY_B = "sha256:" + "b" * 64


def parse(text: str, *, env: dict[str, str] | None = None, base: str = "/etc/regate") -> Config:
    return parse_config(text, source="regate.yaml", env=env or {}, base_dir=Path(base))


def error_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, env=env)
    assert info.value.code == "config_error"
    assert info.value.file == "regate.yaml"
    return info.value


def test_embedded_defaults() -> None:
    config = default_config({})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.server.max_body_bytes == 4 * 1024 * 1024
    assert config.policy.bundle == str(default_bundle_path())
    assert (config.policy.engine, config.policy.on_error) == ("embedded", "deny")
    assert config.policy.verification_key is None
    assert config.principals == ()
    assert {n: (p.type, p.region) for n, p in config.providers.items()} == {
        "echo": ("echo", "us"),
        "echo-eu": ("echo", "eu"),
    }
    assert dict(config.routes) == {"*": (RouteTarget("echo", "echo"),)}
    assert (config.audit.path, config.audit.prompt) == (Path("audit/regate.jsonl"), "none")
    assert config.limits.store == "memory"
    assert [(q.scope, q.requests_per_minute) for q in config.limits.quotas] == [("principal", 600)]
    assert config.warnings() == ()


def test_no_path_means_embedded_defaults() -> None:
    assert load_config(None, env={}) == default_config({})


def test_the_contract_example_loads(tmp_path: Path) -> None:
    source = (EXAMPLES / "valid" / "contract_example.yaml").read_text("utf-8")
    path = tmp_path / "regate.yaml"
    path.write_text(source, encoding="utf-8")
    config = load_config(path, env={})
    assert config.source == str(path)
    assert config.policy.bundle == str(tmp_path / "policy-bundles" / "default")
    assert config.policy.verification_key is not None
    assert config.policy.verification_key.file == tmp_path / "keys" / "bundle.pub"
    assert config.principals[0].principal() == {
        "id": "billing-bot",
        "kind": "app",
        "team": "finance",
        "labels": {"region": "eu"},
    }
    openai = config.providers["openai"]
    assert openai.api_key == SecretRef("env", "OPENAI_API_KEY")
    assert (openai.api_key.file, openai.api_key.line) == (str(path), 19)
    assert config.route_for("gpt-4o-mini") == (RouteTarget("openai", "gpt-4o-mini"),)
    assert config.route_for("anything-else") == (RouteTarget("echo", "echo"),)
    assert "echo" in config.providers  # built in, so the example's "*" route is valid


def test_production_example_loads_with_every_optional_field() -> None:
    config = load_config(EXAMPLES / "valid" / "production.yaml", env={})
    assert config.policy.bundle_is_url and config.policy.engine == "opa"
    assert config.policy.verification_key is not None
    assert config.policy.verification_key.scope == "write"
    azure = config.providers["azure-eu"]
    assert (azure.timeout.connect, azure.timeout.read, azure.timeout.total) == (2.0, 30.5, 120.0)
    assert dict(azure.headers) == {"OpenAI-Organization": "org-123"}
    assert azure.api_key == SecretRef("file", "/run/secrets/azure-eu")
    assert config.route_for("claude-3.5-haiku") == (RouteTarget("anthropic-eu", None),)
    assert config.route_for("unlisted") == ()
    assert config.limits.redis_password == SecretRef("env", "REDIS_PASSWORD")
    assert [q.scope for q in config.limits.quotas] == ["principal", "team", "principal_model"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_names_file_line_and_key(path: Path) -> None:
    match = EXPECT.search(path.read_text("utf-8"))
    assert match is not None
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert (info.value.file, info.value.line) == (str(path), int(match.group(1)))
    last_key = match.group(2).rsplit("/", 1)[-1]
    assert last_key in info.value.message


def test_a_partial_section_keeps_the_other_defaults() -> None:
    config = parse("server: {port: 9000}\npolicy: {timeout_ms: 40}\naudit: {prompt: full}\n")
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9000)
    assert (config.policy.timeout_ms, config.policy.on_error) == (40, "deny")
    assert config.audit.path == Path("audit/regate.jsonl") and config.audit.prompt == "full"
    assert any("verbatim" in w for w in config.warnings())


def test_own_providers_without_routes_get_no_default_route() -> None:
    config = parse("providers:\n  openai: {type: openai}\n")
    assert dict(config.routes) == {}
    assert set(config.providers) == {"openai", *DEFAULT_PROVIDERS}


def test_a_provider_may_replace_a_built_in_one() -> None:
    config = parse("providers:\n  echo: {type: echo, region: ap}\n")
    assert config.providers["echo"].region == "ap"


def test_relative_paths_follow_the_config_file_and_home_comes_from_env() -> None:
    text = "audit: {path: logs/a.jsonl}\npolicy: {bundle: ~/bundles/b.tar.gz}\n"
    config = parse(text, env={"HOME": "/home/ops"})
    assert config.audit.path == Path("/etc/regate/logs/a.jsonl")
    assert config.policy.bundle == "/home/ops/bundles/b.tar.gz"
    assert error_of(text).line == 2


def test_fail_open_is_announced() -> None:
    config = parse("policy: {on_error: allow}\n")
    assert config.policy.on_error == "allow"
    assert any("FAIL OPEN" in w for w in config.warnings())


def test_config_is_frozen() -> None:
    config = default_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.providers["x"] = config.providers["echo"]  # type: ignore[index]


PRINCIPAL = '  - id: {id}\n    kind: app\n    keys: ["{key}"]\n'


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("routes:\n  gpt-4o:\n    - provider: echo\n    - provider: nowhere\n", 4, "'nowhere'"),
        (
            "principals:\n"
            + PRINCIPAL.format(id="a", key=KEY_A)
            + PRINCIPAL.format(id="a", key=KEY_B),
            5,
            "already used",
        ),
        (
            "principals:\n"
            + PRINCIPAL.format(id="a", key=KEY_A)
            + PRINCIPAL.format(id="b", key=KEY_A),
            7,
            "already listed for 'a'",
        ),
        ("server:\n  port: 1\n  host: 0.0.0.0\n", 3, "principals are required"),
        ("server: {host: gateway.internal}\n", 1, "principals are required"),
        ("limits:\n  quotas: []\n  store: redis\n", 3, "redis_url"),
        ("providers:\n  o:\n    type: openai\n    headers: {X-Api-Key: abc}\n", 4, "api_key"),
        ("server:\n  port: 1\n  port: 2\n", 3, "duplicate key (first at line 2)"),
        ("routes:\n  3.5: [{provider: echo}]\n", 2, "quote it"),
        ("audit:\n  path: 2024-01-01\n", 2, "read as timestamp"),
        ("server: [\n", 2, "invalid YAML"),
        ("- server\n", 1, "must be object"),
    ],
    ids=[
        "route-provider",
        "dup-id",
        "dup-key",
        "open-host",
        "open-hostname",
        "redis-url",
        "credential-header",
        "dup-yaml-key",
        "float-key",
        "timestamp",
        "bad-yaml",
        "not-a-mapping",
    ],
)
def test_checks_beyond_the_schema_name_the_line(text: str, line: int, words: str) -> None:
    error = error_of(text)
    assert error.line == line
    assert words in error.message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_principals(host: str) -> None:
    assert parse(f"server: {{host: '{host}'}}\n").server.host == host


def test_a_public_host_is_fine_with_principals() -> None:
    config = parse("server: {host: 0.0.0.0}\nprincipals:\n" + PRINCIPAL.format(id="a", key=KEY_A))
    assert config.principals == (PrincipalConfig("a", "app", keys=(KEY_A,)),)


@pytest.mark.parametrize(
    "text",
    [
        "providers:\n  o: {type: openai, api_key: sk-live-TOPSECRET}\n",
        "providers:\n  o: {type: openai, base_url: 'https://u:TOPSECRET@x.example/v1'}\n",
        "limits: {redis_url: 'redis://:TOPSECRET@127.0.0.1:6379/0'}\n",
        "providers:\n  o: {type: openai, headers: {Authorization: Bearer TOPSECRET}}\n",
        "server: {port: TOPSECRET}\n",
    ],
    ids=["inline-key", "url-password", "redis-password", "auth-header", "wrong-type"],
)
def test_errors_never_quote_a_value(text: str) -> None:
    error = error_of(text)
    assert "TOPSECRET" not in str(error)
    assert error.line is not None


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert info.value.file == str(missing)


def test_provider_credentials_resolve_references_at_startup(tmp_path: Path) -> None:
    secret_file = tmp_path / "anthropic"
    secret_file.write_text("sk-ant-1\n", encoding="utf-8")
    text = (
        "providers:\n"
        "  openai: {type: openai, api_key: {env: OPENAI_API_KEY}}\n"
        "  anthropic: {type: anthropic, api_key: {file: anthropic}}\n"
    )
    config = parse_config(text, source="r.yaml", env={}, base_dir=tmp_path)
    keys = provider_credentials(config, env={"OPENAI_API_KEY": "sk-1"})
    assert {name: key.reveal() for name, key in keys.items()} == {
        "openai": "sk-1",
        "anthropic": "sk-ant-1",
    }
    with pytest.raises(ConfigError) as info:
        provider_credentials(config, env={})
    assert (info.value.file, info.value.line) == ("r.yaml", 2)
    assert "OPENAI_API_KEY" in info.value.message
