"""Fixtures of the fuzz suites: one live gateway on loopback, and the tally of inputs tried.

Every request a fuzz test sends goes through :meth:`LiveGateway.post`, which counts
it by suite and status; ``pytest_terminal_summary`` prints the counts at the end of
the run, so the number of inputs tried (and of server errors: there must be none)
shows in normal pytest output.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.fake_provider import run_in_thread
from adapters.http.app import create_app
from adapters.http.gateway import Gateway
from engine.config import parse_config
from engine.secrets import hash_caller_key, new_caller_key

TALLY: dict[str, Counter[int]] = {}
"""Suite name -> HTTP status -> how many inputs got it."""


def record(suite: str, status: int) -> None:
    TALLY.setdefault(suite, Counter())[status] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    terminalreporter.section("fuzzing: inputs tried")
    for suite, statuses in sorted(TALLY.items()):
        tried = sum(statuses.values())
        server_errors = sum(n for status, n in statuses.items() if status >= 500)
        spread = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
        terminalreporter.write_line(
            f"{suite}: {tried} inputs tried, {server_errors} server errors (5xx) [{spread}]"
        )


@dataclass
class LiveGateway:
    """A gateway served over loopback with one caller key; counts what it was sent."""

    url: str
    key: str
    audit_path: Path
    client: httpx.Client
    sent: int = 0  # requests to audited routes

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}

    def post(
        self, suite: str, path: str, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        self.sent += 1
        response = self.client.post(path, content=content, headers={**self.auth, **headers})
        record(suite, response.status_code)
        return response

    def counted(self, suite: str, status: int, *, audited: bool) -> None:
        """Count a request sent by another client (schemathesis's own session); ``audited``
        says whether the route audits it (the LLM API routes and ``/v1/decide`` do)."""
        self.sent += int(audited)
        record(suite, status)

    def audit_events(self) -> int:
        """Audit events written, once the writer has caught up with every request sent."""
        deadline = time.monotonic() + 10
        lines = 0
        while time.monotonic() < deadline:
            # Count newlines, not str.splitlines(): texts in events may hold U+2028 and kin.
            lines = self.audit_path.read_bytes().count(b"\n") if self.audit_path.exists() else 0
            if lines >= self.sent:
                break
            time.sleep(0.02)
        return lines


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """The embedded defaults (default bundle, echo providers) plus one principal."""
    root = tmp_path_factory.mktemp("fuzz")
    key = new_caller_key("fuzzer")
    config = {
        "principals": [{"id": "fuzzer", "kind": "app", "keys": [hash_caller_key(key)]}],
        "audit": {"path": "audit.jsonl", "fsync": "never"},
        "limits": {"quotas": []},
    }
    parsed = parse_config(
        json.dumps(config), source=str(root / "regate.yaml"), env={}, base_dir=root
    )
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(run_in_thread(create_app(Gateway(parsed, env={}))))
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30.0))
        yield LiveGateway(url, key, root / "audit.jsonl", client)
