"""``regate serve`` as a real subprocess: serves both SDKs from a config file, audits every
request and flushes on shutdown; refuses a non-loopback address without principals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anthropic.types import TextBlock

from engine.secrets import hash_caller_key, new_caller_key
from tests.conftest import free_port
from tests.integration.conftest import (
    PRINCIPALS,
    Regate,
    Suite,
    Upstream,
    config_yaml,
    recording_transport,
)

REGATE = Path(sys.executable).with_name("regate")
PUBLIC_HOST = "0.0.0.0"  # noqa: S104 - the address regate must refuse


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REGATE), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


def _base_env(**extra: str) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")
    }
    return {**keep, **extra}


@pytest.fixture(scope="module")
def served(
    _upstream: Upstream, suite: Suite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Regate]:
    """``regate serve --config`` in a subprocess, shared by this module (each start costs
    a second); ``stop()`` sends SIGINT and waits, and the process's stdout and stderr
    join the suite's record."""
    tmp_path = tmp_path_factory.mktemp("serve")
    upstream = _upstream
    keys = {pid: new_caller_key(pid) for pid in PRINCIPALS}
    suite.secrets.update(keys.values())
    audit_path = tmp_path / "audit" / "regate.jsonl"
    config_path = tmp_path / "regate.yaml"
    config_path.write_text(
        config_yaml(upstream.url, {p: hash_caller_key(k) for p, k in keys.items()}, audit_path),
        encoding="utf-8",
    )
    port = free_port()
    env = _base_env(REGATE_LOG_LEVEL="DEBUG", **upstream.env)
    process = subprocess.Popen(
        [str(REGATE), "serve", "--config", str(config_path), "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        suite.outputs.extend([out, err])

    stack = contextlib.ExitStack()
    stack.callback(stop)
    url = f"http://127.0.0.1:{port}"
    suite.audit_files[url] = audit_path
    with stack:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, "regate serve exited at start-up"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "regate serve did not start"
            time.sleep(0.05)
        yield Regate(url, keys, audit_path, config_path, suite, stack)


def test_regate_serve_subprocess_serves_both_sdks(served: Regate, upstream: Upstream) -> None:
    with served.openai() as oai, served.anthropic() as claude:
        reply = oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "mail x@example.org"}]
        )
        chunks = list(
            oai.chat.completions.create(
                model="gpt-4o", stream=True, messages=[{"role": "user", "content": "stream"}]
            )
        )
        message = claude.messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    with httpx.Client(
        base_url=served.url, transport=recording_transport(httpx, served.suite)
    ) as http:
        metrics = http.get("/metrics").text

    assert reply.choices[0].message.content == "echo: mail [EMAIL]"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream"
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "echo: hi"
    assert [r.provider for r in upstream.fake.recorder.requests] == [
        "openai",
        "anthropic",
        "anthropic",
    ]
    assert (
        'regate_requests_total{api="anthropic.messages",action="allow",provider="anthropic",status="200"} 1'
        in metrics
    )


def test_regate_serve_flushes_a_verifiable_audit_log_on_shutdown(
    served: Regate, upstream: Upstream
) -> None:
    with served.openai("eu-bot") as oai:
        for n in range(3):
            oai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"request {n}"}]
            )

    served.stop()

    events = [
        json.loads(line) for line in served.audit_path.read_text(encoding="utf-8").splitlines()
    ]
    sent = served.suite.api_requests[served.url]  # this module's earlier requests included
    assert len(events) == sent >= 3
    assert [(e["status"], e["provider"], e["principal"]["id"]) for e in events[-3:]] == [
        (200, "azure-eu", "eu-bot")
    ] * 3
    result = _run(
        ["audit", "verify", str(served.audit_path)], _base_env(), served.audit_path.parent
    )
    assert result.returncode == 0 and f"{sent} events" in result.stdout, (
        result.stdout + result.stderr
    )
    # The start-up log line went to the suite's record.
    assert "policy bundle" in "".join(served.suite.outputs)


@pytest.mark.parametrize("how", ["--host", "config"])
def test_regate_serve_refuses_a_public_address_without_principals(tmp_path: Path, how: str) -> None:
    if how == "--host":
        args = ["serve", "--host", PUBLIC_HOST, "--port", str(free_port())]
    else:
        config = f"server: {{host: {PUBLIC_HOST}}}\n"
        (tmp_path / "regate.yaml").write_text(config, encoding="utf-8")
        args = ["serve", "--config", str(tmp_path / "regate.yaml")]

    result = _run(args, _base_env(), tmp_path)

    assert result.returncode == 2  # and it returned at all: it never started serving
    assert "principals" in result.stderr and PUBLIC_HOST in result.stderr
