"""The audit log (Contract 4): events sealed into a SHA-256 hash chain, one JSON line each.

Chain rule. Every event carries ``prev``, the ``hash`` of the line before it
(:data:`GENESIS`, ``"sha256:"`` + 64 zeros, on a file's first line), and
``hash`` = ``"sha256:"`` + hex SHA-256 over the canonical JSON of the event
without ``hash``. Canonical JSON is::

    json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
               allow_nan=False).encode("utf-8")

and each line of the file is the canonical JSON of the whole sealed event, so a
line edited in any way (even re-spaced, or given a duplicate key) no longer
verifies. Editing a line breaks its ``hash``; deleting, inserting or reordering
lines breaks the next line's ``prev``. The chain is not keyed: someone who can
rewrite the whole file from a point on can re-seal it, and dropping the last
lines leaves no trace, so operators who need that should ship
:attr:`VerifyResult.last_hash` (or the live :attr:`AuditChain.last_hash`)
somewhere else.

One writer per file: :class:`AuditChain` holds the last hash and is meant to be
driven by a single writer (task or thread), which seals and then hands the
sealed events to :class:`AuditFileSink`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal

GENESIS = "sha256:" + "0" * 64
_HASH_PREFIX = "sha256:"
_TAIL_CHUNK = 64 * 1024

Problem = Literal["hash_mismatch", "prev_mismatch", "not_canonical", "unparsable"]


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON bytes that hashes are taken over (see module docstring)."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def event_hash(event: Mapping[str, Any]) -> str:
    """``"sha256:"`` + hex SHA-256 of the canonical JSON of ``event`` without ``hash``."""
    body = {key: value for key, value in event.items() if key != "hash"}
    return _HASH_PREFIX + hashlib.sha256(canonical_json(body)).hexdigest()


class AuditChain:
    """Seals events into the chain. Not thread-safe by design: one writer drives it.

    >>> chain = AuditChain()
    >>> first = chain.seal({"id": "req_1"})
    >>> first["prev"] == GENESIS, chain.seal({"id": "req_2"})["prev"] == first["hash"]
    (True, True)
    """

    def __init__(self, last_hash: str = GENESIS) -> None:
        self._last_hash = last_hash

    @classmethod
    def resume(cls, path: str | Path) -> AuditChain:
        """Continue the chain of an existing file (a missing or empty file starts anew).

        The last line that parses and carries a ``hash`` is the link; a torn
        last line (a crash mid-write) is skipped here and reported by
        :func:`verify_chain`, so a crash never stops the gateway from starting.
        """
        return cls(_last_hash(Path(path)))

    @property
    def last_hash(self) -> str:
        return self._last_hash

    def seal(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A detached copy of ``event`` with ``prev`` and ``hash`` set; advances the chain.

        Lone surrogates (possible in client text) become U+FFFD so that the line
        is valid UTF-8. Raises ``TypeError``/``ValueError`` for values JSON
        cannot hold (the chain does not advance then).
        """
        body = {key: value for key, value in event.items() if key != "hash"}
        body["prev"] = self._last_hash
        try:
            data = canonical_json(body)
        except UnicodeEncodeError:
            data = canonical_json(_scrub_surrogates(body))
        sealed: dict[str, Any] = json.loads(data)
        sealed["hash"] = _HASH_PREFIX + hashlib.sha256(data).hexdigest()
        self._last_hash = sealed["hash"]
        return sealed


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_chain`.

    ``lines`` counts the lines checked (all of them when ``ok``); ``bad_line``
    is the 1-based number of the first bad line, ``problem`` its stable code
    and ``reason`` a sentence for humans. ``last_hash`` is the hash of the
    last good line.
    """

    ok: bool
    lines: int
    last_hash: str
    bad_line: int | None = None
    problem: Problem | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_chain(path: str | Path, *, genesis: str = GENESIS) -> VerifyResult:
    """Check every line of an audit file; stop at the first bad one.

    ``genesis`` is the ``prev`` expected on line 1: :data:`GENESIS` for a
    fresh log, or the last hash of the previous file for a rotated one. A file
    that cannot be opened raises ``OSError``.
    """
    expected = genesis
    number = 0
    with Path(path).open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            line = raw.removesuffix(b"\n")
            event, why = _parse_line(line)
            if event is None:
                return _broken(number, expected, "unparsable", why)
            if event_hash(event) != event["hash"]:
                return _broken(
                    number,
                    expected,
                    "hash_mismatch",
                    "hash does not match the content: the event was edited",
                )
            if canonical_json(event) != line:
                return _broken(
                    number,
                    expected,
                    "not_canonical",
                    "the line is not in canonical form: it was rewritten after sealing",
                )
            if event["prev"] != expected:
                return _broken(number, expected, "prev_mismatch", _prev_reason(number))
            expected = event["hash"]
    return VerifyResult(ok=True, lines=number, last_hash=expected)


def _prev_reason(number: int) -> str:
    if number == 1:
        return (
            "prev is not the chain's genesis value: lines were deleted from the start, "
            "or the file continues another log (verify it with that log's last hash)"
        )
    return (
        f"prev does not match the hash of line {number - 1}: "
        "lines were deleted, inserted or reordered"
    )


def _broken(number: int, last_good: str, problem: Problem, reason: str) -> VerifyResult:
    return VerifyResult(
        ok=False, lines=number, last_hash=last_good, bad_line=number, problem=problem, reason=reason
    )


def _parse_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """The event on ``line`` if it is a JSON object with string ``prev`` and ``hash``."""
    if not line.strip():
        return None, "empty line"
    try:
        event = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except ValueError:
        return None, "not valid JSON (a torn write or an edit)"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    for key in ("prev", "hash"):
        if not isinstance(event.get(key), str):
            return None, f"has no {key!r} string"
    return event, ""


def _last_hash(path: Path) -> str:
    for line in _lines_backwards(path):
        event, _ = _parse_line(line)
        if event is not None:
            return str(event["hash"])
    return GENESIS


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The file's lines, last first, reading from the end in chunks."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        position = handle.seek(0, os.SEEK_END)
        carry = b""
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            pieces = (handle.read(step) + carry).split(b"\n")
            # pieces[0] may continue into the previous chunk unless we reached the start.
            carry = pieces.pop(0) if position > 0 else b""
            yield from reversed(pieces)


def _scrub_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if isinstance(value, Mapping):
        return {_scrub_surrogates(k): _scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_surrogates(item) for item in value]
    return value


FsyncPolicy = Literal["always", "never"]


class AuditFileSink:
    """Appends sealed events to a JSON-lines file (created ``0600``: it may hold prompts).

    ``fsync="always"`` makes each :meth:`write_many` call durable before it
    returns (one fsync per call, so a writer that batches pays once per batch);
    ``"never"`` only flushes to the operating system. If a write raises, the
    caller should retry the same sealed events: dropping them breaks the chain
    at the next line, which :func:`verify_chain` then reports.
    """

    name = "file"

    def __init__(self, path: str | Path, *, fsync: FsyncPolicy = "always") -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._file: IO[bytes] | None = None

    def write(self, event: Mapping[str, Any]) -> None:
        self.write_many((event,))

    def write_many(self, events: Iterable[Mapping[str, Any]]) -> None:
        lines = []
        for event in events:
            if not isinstance(event.get("hash"), str) or not isinstance(event.get("prev"), str):
                raise ValueError("audit events must be sealed by AuditChain.seal before writing")
            lines.append(canonical_json(event) + b"\n")
        if not lines:
            return
        handle = self._open()
        handle.write(b"".join(lines))
        handle.flush()
        if self.fsync == "always":
            os.fsync(handle.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> AuditFileSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> IO[bytes]:
        if self._file is not None:
            return self._file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        handle = os.fdopen(fd, "ab")
        if not created and not _ends_with_newline(self.path):
            handle.write(b"\n")  # close a torn line so the next event starts on its own line
        if created and self.fsync == "always":
            _fsync_directory(self.path.parent)
        self._file = handle
        return handle


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable too (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def audit_prompt(
    level: Literal["none", "redacted", "full"],
    *,
    received: Sequence[Mapping[str, Any]],
    forwarded: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any] | None:
    """The ``prompt`` field the audit level allows, or None to leave it out.

    ``redacted`` records the messages as forwarded; a request that was not
    forwarded (denied) has no redacted form, so its prompt is left out.
    """
    if level == "full":
        return {"level": "full", "messages": [dict(m) for m in received]}
    if level == "redacted" and forwarded is not None:
        return {"level": "redacted", "messages": [dict(m) for m in forwarded]}
    return None
