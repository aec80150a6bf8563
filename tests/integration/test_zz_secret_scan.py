"""Runs last (file order): after the whole suite, stop every gateway and check what they
left behind. Every API request produced exactly one audit event, every audit file
verifies, and no provider key or caller key appears anywhere regate wrote: audit
files, its directories, log records, ``regate serve`` output, every response head
and body the tests received, and ``/metrics``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.audit import verify_chain
from tests.integration.conftest import Regate, Suite, Upstream, chat

REGATE = Path(sys.executable).with_name("regate")


def _leaks(haystacks: dict[str, bytes], secrets: set[str]) -> list[str]:
    """``"<where>: <which secret, shortened>"`` for every secret found in a haystack."""
    return [
        f"{where}: {secret[:12]}..."
        for where, data in haystacks.items()
        for secret in secrets
        if secret.encode() in data
    ]


def test_zz_audit_and_secret_scan_after_the_whole_suite(
    suite: Suite, regate: Regate, upstream: Upstream
) -> None:
    # A last request, so the fake holds a provider key the scanner must be able to find.
    with regate.openai() as oai:
        oai.chat.completions.create(model="gpt-4o-mini", messages=chat("last call"))
    [last] = upstream.received("openai")
    assert _leaks({"fake record": last.raw + repr(last.headers).encode()}, suite.secrets) == [
        f"fake record: {upstream.keys['openai'][:12]}..."
    ]

    for gateway in suite.gateways:
        if not gateway.stopped:
            with gateway.http() as http:
                metrics = http.get("/metrics")
            assert metrics.status_code == 200 and "regate_requests_total" in metrics.text
            gateway.stop()

    # One event per API request, per gateway; every chain intact.
    for origin, audit_path in suite.audit_files.items():
        lines = (
            audit_path.read_text(encoding="utf-8").split("\n")[:-1] if audit_path.exists() else []
        )
        sent = suite.api_requests.get(origin, 0)
        assert len(lines) == sent, f"{origin}: {len(lines)} audit events for {sent} requests"
        result = verify_chain(audit_path) if lines else None
        assert result is None or result.ok, f"{audit_path}: line {result and result.bad_line}"
        assert len({json.loads(line)["id"] for line in lines}) == len(lines)
    cli = subprocess.run(
        [str(REGATE), "audit", "verify", str(regate.audit_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # Everything regate wrote or sent back.
    haystacks: dict[str, bytes] = {}
    for audit_path in suite.audit_files.values():
        for path in audit_path.parent.parent.rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_bytes()
    haystacks["responses"] = b"\n".join(suite.received)
    haystacks["log records"] = "\n".join(suite.logs).encode()
    haystacks["regate serve output"] = "\n".join(suite.outputs).encode()
    assert len(suite.secrets) >= len(upstream.keys) + 2 and haystacks["responses"]
    assert _leaks(haystacks, suite.secrets) == []
