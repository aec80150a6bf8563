"""The background audit writer: backpressure instead of loss, retries, one chain."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine.audit import AuditChain, AuditFileSink, verify_chain
from engine.audit_writer import AuditWriter


def event(i: int) -> dict[str, Any]:
    return {"id": f"req_{i:04d}", "action": "allow", "status": 200}


async def test_a_full_queue_makes_producers_wait_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter.for_file(str(path), fsync="never", max_queue=4, max_batch=3)
    writer.start()
    await asyncio.gather(*(writer.submit(event(i)) for i in range(200)))
    await writer.close()
    result = verify_chain(path)
    assert result.ok and result.lines == 200
    assert writer.written == 200


async def test_the_configured_fsync_policy_reaches_the_sink(tmp_path: Path) -> None:
    for policy in ("always", "never"):
        writer = AuditWriter.for_file(str(tmp_path / f"{policy}.jsonl"), fsync=policy)
        assert writer._sink.fsync == policy


class FlakySink(AuditFileSink):
    """Fails its first two writes, as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, fsync="never")
        self.failures_left = 2

    def write_many(self, events: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise OSError(28, "No space left on device")
        super().write_many(events)


async def test_failed_writes_are_retried_with_the_same_sealed_events(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(FlakySink(path), AuditChain())
    writer.start()
    for i in range(5):
        await writer.submit(event(i))
    await writer.close()
    assert writer.write_failures == 2
    result = verify_chain(path)
    assert result.ok and result.lines == 5


async def test_a_restarted_writer_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for run in range(2):
        writer = AuditWriter.for_file(str(path), fsync="never")
        writer.start()
        for i in range(3):
            await writer.submit(event(run * 10 + i))
        await writer.close()
    result = verify_chain(path)
    assert result.ok and result.lines == 6
