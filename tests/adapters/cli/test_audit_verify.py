"""``regate audit verify``: 0 on an intact chain, 1 naming the first bad line, 2 without a file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.audit import AuditChain, AuditFileSink

from .support import REPO, Regate

EXAMPLE_EVENT = REPO / "tests" / "schemas" / "examples" / "audit-event" / "valid" / "allow.json"
EVENTS = 5


@pytest.fixture
def audit_log(tmp_path: Path) -> Path:
    """An intact chain of ``EVENTS`` events, written the way the gateway writes them."""
    template: dict[str, Any] = json.loads(EXAMPLE_EVENT.read_text(encoding="utf-8"))
    del template["prev"], template["hash"]
    chain = AuditChain()
    path = tmp_path / "audit.jsonl"
    with AuditFileSink(path, fsync="never") as sink:
        sink.write_many(chain.seal({**template, "id": f"req_{i:026d}"}) for i in range(EVENTS))
    return path


def edit(lines: list[bytes]) -> list[bytes]:
    event = json.loads(lines[2])
    event["action"] = "deny" if event["action"] != "deny" else "allow"
    lines[2] = (
        json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )
    return lines


def delete(lines: list[bytes]) -> list[bytes]:
    del lines[2]
    return lines


def swap(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def test_intact_chain(regate: Regate, audit_log: Path) -> None:
    result = regate("audit", "verify", audit_log)
    assert result.code == 0
    assert result.out.strip() == f"ok: {audit_log}: {EVENTS} events, chain intact"


@pytest.mark.parametrize(
    ("change", "bad_line", "problem"),
    [(edit, 3, "hash_mismatch"), (delete, 3, "prev_mismatch"), (swap, 3, "prev_mismatch")],
    ids=["edited", "deleted", "swapped"],
)
def test_broken_chain_names_the_first_bad_line(
    regate: Regate,
    audit_log: Path,
    change: Callable[[list[bytes]], list[bytes]],
    bad_line: int,
    problem: str,
) -> None:
    audit_log.write_bytes(b"".join(change(audit_log.read_bytes().splitlines(keepends=True))))
    pretty = regate("audit", "verify", audit_log)
    assert pretty.code == 1
    assert pretty.out.startswith(f"broken: {audit_log}:{bad_line}: ")

    as_json = regate("audit", "verify", audit_log, "--format", "json")
    assert as_json.code == 1
    report = as_json.json()
    assert (report["ok"], report["bad_line"], report["problem"]) == (False, bad_line, problem)


def test_missing_file_is_exit_2(regate: Regate, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = regate("audit", "verify", missing)
    assert result.code == 2
    assert f"cannot read {missing}" in result.err


def test_exit_codes_as_a_process(regate_process: Regate, audit_log: Path) -> None:
    assert regate_process("audit", "verify", audit_log).code == 0
    audit_log.write_bytes(b"".join(delete(audit_log.read_bytes().splitlines(keepends=True))))
    broken = regate_process("audit", "verify", audit_log)
    assert broken.code == 1 and f"{audit_log}:3:" in broken.out
    assert regate_process("audit", "verify", audit_log.with_name("missing.jsonl")).code == 2
