"""Detectors: bundle-defined RE2 patterns that add ``findings`` to the canonical document.

A bundle lists its detectors at ``data.regate.detectors``; :func:`compile_detectors`
checks and compiles them once per bundle, and :meth:`DetectorSet.scan` returns the
findings of one document (Contract 1), offsets counted in Unicode code points.

How a scan works, and why:

* One pass over each text with an ``re2.Set`` of every pattern tells which
  detectors match that text at all. Most texts match none, so most texts cost
  exactly one linear DFA pass, whatever the number of detectors.
* Each detector the set reported then runs its own compiled pattern over the
  text. Detectors are therefore independent: matches of *different* detectors
  may overlap (a phone number inside an e-mail address) and are all reported; a scan never lets one
  detector's match hide another's, which a single combined alternation would
  (it resumes after each match). Within one detector matches do not overlap,
  as with any regex search. Overlapping findings are the policy's to resolve
  (``regate.lib.pii`` drops a redaction contained in a wider one) and the
  enforcer's to merge.
* The validator named by the detector confirms (or trims) each match.

Measured on a 1 KB English text with the 18 patterns of the default bundle
(``scan_text`` / one alternation, matches only / each pattern on its own), µs:
no match 2.4 / 4.3 / 60; one e-mail 13 / 15 / 72. Time grows linearly with the
text (RE2 on both passes): 185 µs for 100 KB.

What is scanned: every text part (``/messages/i/content/j/text``, from
:func:`engine.document.iter_texts`) and every string inside a tool call's
``arguments`` (``/messages/i/tool_calls/j/arguments/<key>...``), because tool
calls in the history are sent to the provider too; both are JSON pointers to
one string, so a finding can be redacted in place. Object keys, tool
definitions and metadata are not scanned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from engine.document import iter_texts
from engine.errors import BundleError
from engine.validators import VALIDATORS, Validator

Finding = dict[str, Any]

_ALLOWED_KEYS = frozenset({"id", "category", "pattern", "validator", "description"})
_NAME = re2.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")


@dataclass(frozen=True)
class Detector:
    """One compiled detector."""

    id: str
    category: str
    pattern: str
    validator: str
    regex: Any
    check: Validator


class DetectorSet:
    """The compiled detectors of one bundle; immutable and safe to share."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self._set: Any = _compile_set(self.detectors) if self.detectors else None

    def __len__(self) -> int:
        return len(self.detectors)

    def scan(self, doc: Mapping[str, Any]) -> list[Finding]:
        """Findings for every scanned string of ``doc`` (see the module docstring).

        >>> ds = compile_detectors([{"id": "pii.email", "category": "pii",
        ...                          "pattern": r"[a-z]+@[a-z]+\\.[a-z]{2,}"}])
        >>> ds.scan({"messages": [{"role": "user",
        ...          "content": [{"type": "text", "text": "😀 a@b.co"}]}]})
        [{'detector': 'pii.email', 'category': 'pii', 'path': '/messages/0/content/0/text', 'start': 2, 'end': 8}]
        """
        findings: list[Finding] = []
        for path, text in iter_scanned_texts(doc):
            findings.extend(self.scan_text(path, text))
        return findings

    def scan_text(self, path: str, text: str) -> list[Finding]:
        """Findings in one string, ordered by ``(start, end, detector)``."""
        if self._set is None or not text:
            return []
        hits = self._set.Match(text)
        if not hits:
            return []
        found: list[Finding] = []
        for index in sorted(hits):
            detector = self.detectors[index]
            for match in detector.regex.finditer(text):
                start, end = match.span()
                if start == end:
                    continue
                length = detector.check(text[start:end])
                if not length:
                    continue
                found.append(
                    {
                        "detector": detector.id,
                        "category": detector.category,
                        "path": path,
                        "start": start,
                        "end": start + length,
                    }
                )
        found.sort(key=lambda f: (f["start"], f["end"], f["detector"]))
        return found


def compile_detectors(spec: object, *, source: str | None = None) -> DetectorSet:
    """Check and compile ``data.regate.detectors``; raises :class:`BundleError`.

    ``source`` names the file the list came from, for error messages.
    """
    if spec is None:
        return DetectorSet(())
    if not isinstance(spec, list):
        raise BundleError("data.regate.detectors must be a list", file=source)
    detectors: list[Detector] = []
    seen: set[str] = set()
    for index, entry in enumerate(spec):
        detector = _compile_one(index, entry, source)
        if detector.id in seen:
            raise BundleError(f"detector {index} ({detector.id!r}): duplicate id", file=source)
        seen.add(detector.id)
        detectors.append(detector)
    return DetectorSet(detectors)


def _compile_one(index: int, entry: object, source: str | None) -> Detector:
    where = f"detector {index}"
    if not isinstance(entry, dict):
        raise BundleError(f"{where}: must be an object", file=source)
    ident = entry.get("id")
    if isinstance(ident, str):
        where = f"detector {index} ({ident!r})"
    unknown = sorted(str(key) for key in entry if key not in _ALLOWED_KEYS)
    if unknown:
        raise BundleError(f"{where}: unknown field(s) {', '.join(unknown)}", file=source)
    ident, category = (_dotted_name(entry, key, where, source) for key in ("id", "category"))
    pattern = entry.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise BundleError(f"{where}: 'pattern' must be a non-empty string", file=source)
    validator = entry.get("validator", "none")
    if not isinstance(validator, str) or validator not in VALIDATORS:
        known = ", ".join(sorted(VALIDATORS))
        raise BundleError(f"{where}: unknown validator {validator!r} (known: {known})", file=source)
    try:
        regex = re2.compile(pattern, _options())
    except re2.error as err:
        raise BundleError(f"{where}: invalid RE2 pattern: {err}", file=source) from None
    if regex.search("") is not None:
        raise BundleError(f"{where}: pattern matches the empty string", file=source)
    return Detector(ident, category, pattern, validator, regex, VALIDATORS[validator])


def _dotted_name(entry: Mapping[str, Any], key: str, where: str, source: str | None) -> str:
    # Detector ids become reason codes, so they follow the reason-code syntax.
    value = entry.get(key)
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BundleError(
            f"{where}: {key!r} must be lower-case dotted words like 'pii.email'", file=source
        )
    return value


def _compile_set(detectors: Sequence[Detector]) -> Any:
    # Default options: should the set's DFA ever run out of memory while
    # matching (it then reports no match), RE2 says so on stderr. Measured: a
    # set too large for its memory budget fails here, at compile time, instead.
    patterns = re2.Set.SearchSet()
    try:
        for detector in detectors:
            patterns.Add(detector.pattern)
        patterns.Compile()
    except re2.error as err:
        raise BundleError(f"detectors do not compile together: {err}") from None
    return patterns


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors become BundleErrors, not stderr noise
    return options


def iter_scanned_texts(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(json_pointer, text)`` for every string the detectors scan."""
    yield from iter_texts(doc)
    for m_index, message in enumerate(doc.get("messages", ())):
        for c_index, call in enumerate(message.get("tool_calls") or ()):
            if isinstance(call, Mapping) and "arguments" in call:
                base = f"/messages/{m_index}/tool_calls/{c_index}/arguments"
                yield from _string_leaves(call["arguments"], base)


def _string_leaves(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    # An explicit stack: arguments come from clients and may nest deeply.
    stack: list[tuple[str, Any]] = [(pointer, value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, Mapping):
            items = [(f"{path}/{_escape(str(k))}", v) for k, v in node.items()]
            stack.extend(reversed(items))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}/{i}", v) for i, v in enumerate(node)]))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
