"""engine.audit: sealing, the hash chain, verification, resuming, and the file sink."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.audit import (
    GENESIS,
    AuditChain,
    AuditFileSink,
    audit_prompt,
    canonical_json,
    event_hash,
    verify_chain,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "schemas/examples/audit-event/valid/allow.json"


def event(number: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = json.loads(EXAMPLE.read_text("utf-8"))
    del base["prev"], base["hash"]
    base["id"] = f"req_{number:026d}"
    base.update(changes)
    return base


def write_log(path: Path, count: int, chain: AuditChain | None = None) -> AuditChain:
    chain = chain or AuditChain()
    with AuditFileSink(path, fsync="never") as sink:
        sink.write_many(chain.seal(event(i)) for i in range(count))
    return chain


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_seal_links_events_and_hashes_everything_but_hash() -> None:
    chain = AuditChain()
    first, second = chain.seal(event(1)), chain.seal(event(2))
    assert first["prev"] == GENESIS == "sha256:" + "0" * 64
    assert second["prev"] == first["hash"] and chain.last_hash == second["hash"]
    body = {k: v for k, v in second.items() if k != "hash"}
    assert second["hash"] == "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()
    assert event_hash(second) == second["hash"]


def test_seal_neither_mutates_nor_aliases_its_input() -> None:
    original = event(1, hash="sha256:" + "f" * 64)
    snapshot = json.loads(json.dumps(original))
    sealed = AuditChain().seal(original)
    assert original == snapshot
    original["reasons"].append({"code": "late.edit", "message": "after sealing"})
    assert sealed["reasons"] == [] and event_hash(sealed) == sealed["hash"]


def test_seal_that_fails_does_not_advance_the_chain() -> None:
    chain = AuditChain()
    with pytest.raises(ValueError):
        chain.seal(event(1, latency_ms={"policy": float("inf"), "upstream": 1, "total": 2}))
    assert chain.last_hash == GENESIS


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    chain = AuditChain()
    sealed = chain.seal(event(1, model="gpt\ud800x"))
    assert sealed["model"] == "gpt\ufffdx"
    with AuditFileSink(path) as sink:
        sink.write(sealed)
    assert verify_chain(path).ok


def test_clean_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    chain = write_log(path, 5)
    result = verify_chain(path)
    assert (result.ok, result.lines, result.bad_line) == (True, 5, None)
    assert result.last_hash == chain.last_hash


def test_empty_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    assert verify_chain(path).as_dict() == {
        "ok": True,
        "lines": 0,
        "last_hash": GENESIS,
        "bad_line": None,
        "problem": None,
        "reason": None,
    }


def tamper(path: Path, edit: Any) -> None:
    lines = lines_of(path)
    edit(lines)
    path.write_bytes(b"".join(lines))


def edit_status(lines: list[bytes]) -> None:
    lines[2] = lines[2].replace(b'"status":200', b'"status":201')


def reseal(lines: list[bytes]) -> None:
    changed = json.loads(lines[2])
    changed["status"] = 201
    changed["hash"] = event_hash(changed)
    lines[2] = canonical_json(changed) + b"\n"


def swap(lines: list[bytes]) -> None:
    lines[2], lines[3] = lines[3], lines[2]


def duplicate_key(lines: list[bytes]) -> None:
    lines[2] = lines[2].replace(b'{"action":', b'{"action":"deny","action":', 1)


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (edit_status, 3, "hash_mismatch"),
        (lambda lines: lines.pop(2), 3, "prev_mismatch"),
        (lambda lines: lines.pop(0), 1, "prev_mismatch"),
        (swap, 3, "prev_mismatch"),
        (reseal, 4, "prev_mismatch"),
        (duplicate_key, 3, "not_canonical"),
        (lambda lines: lines.insert(1, b"\n"), 2, "unparsable"),
        (lambda lines: lines.__setitem__(4, lines[4][:40]), 5, "unparsable"),
        (lambda lines: lines.__setitem__(1, b'{"hash": 1}\n'), 2, "unparsable"),
    ],
    ids=[
        "edited",
        "deleted",
        "deleted-first",
        "swapped",
        "edited-and-resealed",
        "duplicate-key",
        "blank-line",
        "torn-last-line",
        "no-hash",
    ],
)
def test_tampering_is_found_on_the_right_line(
    tmp_path: Path, edit: Any, line: int, problem: str
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    tamper(path, edit)
    result = verify_chain(path)
    assert (result.ok, result.bad_line, result.problem) == (False, line, problem)
    assert result.reason
    assert result.lines == line


def test_resume_after_restart_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    before = write_log(path, 3)
    resumed = AuditChain.resume(path)
    assert resumed.last_hash == before.last_hash
    write_log(path, 2, chain=resumed)
    result = verify_chain(path)
    assert (result.ok, result.lines) == (True, 5)


def test_resume_of_a_missing_file_starts_at_genesis(tmp_path: Path) -> None:
    assert AuditChain.resume(tmp_path / "none.jsonl").last_hash == GENESIS


def test_resume_reads_long_lines_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    chain = AuditChain()
    big = "x" * (150 * 1024)
    with AuditFileSink(path, fsync="never") as sink:
        for i in range(3):
            sink.write(chain.seal(event(i, model=big)))
    assert path.stat().st_size > 3 * len(big)
    assert AuditChain.resume(path).last_hash == chain.last_hash


def test_a_torn_tail_is_closed_and_reported_but_does_not_stop_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    before = write_log(path, 2)
    with path.open("ab") as handle:
        handle.write(b'{"id":"req_torn","act')  # crash mid-write
    resumed = AuditChain.resume(path)
    assert resumed.last_hash == before.last_hash
    write_log(path, 1, chain=resumed)
    lines = lines_of(path)
    assert len(lines) == 4 and json.loads(lines[3])["prev"] == json.loads(lines[1])["hash"]
    result = verify_chain(path)
    assert (result.bad_line, result.problem) == (3, "unparsable")


def test_a_rotated_file_verifies_against_the_previous_files_last_hash(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    chain = write_log(first, 2)
    link = chain.last_hash
    write_log(second, 2, chain=chain)
    assert verify_chain(second, genesis=link).ok
    assert verify_chain(second).bad_line == 1


def test_each_line_is_the_canonical_json_of_the_sealed_event(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    chain = AuditChain()
    sealed = chain.seal(event(1))
    with AuditFileSink(path) as sink:
        sink.write(sealed)
    assert path.read_bytes() == canonical_json(sealed) + b"\n"


def test_sink_refuses_unsealed_events(tmp_path: Path) -> None:
    with AuditFileSink(tmp_path / "a.jsonl") as sink, pytest.raises(ValueError, match="sealed"):
        sink.write(event(1))
    assert not (tmp_path / "a.jsonl").exists()


def test_sink_creates_a_private_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "nested" / "regate.jsonl"
    write_log(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("policy", "fsyncs"), [("always", 2), ("never", 0)])
def test_fsync_policy_counts_one_fsync_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: Any, fsyncs: int
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")  # existing file: no directory fsync
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    chain = AuditChain()
    with AuditFileSink(path, fsync=policy) as sink:
        sink.write_many([chain.seal(event(i)) for i in range(10)])
        sink.write(chain.seal(event(10)))
    assert len(calls) == fsyncs
    assert len(lines_of(path)) == 11


def test_audit_prompt_follows_the_level() -> None:
    received = [{"role": "user", "content": [{"type": "text", "text": "ssn 123-45-6789"}]}]
    forwarded = [{"role": "user", "content": [{"type": "text", "text": "ssn [SSN]"}]}]
    assert audit_prompt("none", received=received, forwarded=forwarded) is None
    assert audit_prompt("redacted", received=received, forwarded=forwarded) == {
        "level": "redacted",
        "messages": forwarded,
    }
    assert audit_prompt("redacted", received=received, forwarded=None) is None
    assert audit_prompt("full", received=received, forwarded=None) == {
        "level": "full",
        "messages": received,
    }
