"""Decision test cases (``cases/*.yaml`` beside a bundle's source), read with line numbers.

Cases are data a security engineer can extend without Python::

    cases:
      - note: email in a user message is redacted
        api: openai.chat
        principal: {id: support-bot, kind: app, labels: {region: us}}
        request: {model: gpt-4o-mini, messages: [{role: user, content: "a@b.co"}]}
        want: {action: redact, reasons: [pii.email], forward: {excludes: ["a@b.co"]}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import BundleError

CASE_KEYS = frozenset({"note", "api", "principal", "context", "request", "want"})
WANT_KEYS = frozenset({"action", "reasons", "status", "route", "forward"})
APIS = ("openai.chat", "openai.embeddings", "anthropic.messages", "canonical")
ACTIONS = ("allow", "redact", "route", "deny")


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    note: str
    request: Mapping[str, Any]
    want: Mapping[str, Any]
    api: str | None = None
    principal: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _lines_of_items(text: str, file: str) -> list[int]:
    """Line (1-based) of each item of the top-level ``cases`` list."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BundleError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise BundleError("a case file must be a mapping with a 'cases' list", file=file, line=1)
    for key, value in root.value:
        if key.value == "cases" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    raise BundleError("a case file must be a mapping with a 'cases' list", file=file, line=1)


def _check_case(raw: Any, file: str, line: int) -> Case:
    def fail(message: str) -> BundleError:
        return BundleError(message, file=file, line=line)

    if not isinstance(raw, dict):
        raise fail("each case must be a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise fail(f"unknown case key(s): {', '.join(sorted(unknown))}")
    note = raw.get("note")
    if not isinstance(note, str) or not note:
        raise fail("each case needs a 'note'")
    if not isinstance(raw.get("request"), dict):
        raise fail(f"case {note!r}: 'request' must be a mapping")
    api = raw.get("api")
    if api is not None and api not in APIS:
        raise fail(f"case {note!r}: api must be one of {', '.join(APIS)}")
    want = raw.get("want")
    if not isinstance(want, dict) or want.get("action") not in ACTIONS:
        raise fail(f"case {note!r}: 'want.action' must be one of {', '.join(ACTIONS)}")
    unknown = set(want) - WANT_KEYS
    if unknown:
        raise fail(f"case {note!r}: unknown want key(s): {', '.join(sorted(unknown))}")
    for key in ("principal", "context"):
        if key in raw and not isinstance(raw[key], dict):
            raise fail(f"case {note!r}: {key!r} must be a mapping")
    return Case(
        file, line, note, raw["request"], want, api, raw.get("principal"), raw.get("context")
    )


def parse_cases(text: str, file: str) -> list[Case]:
    lines = _lines_of_items(text, file)
    items = yaml.safe_load(text)["cases"]
    cases = [_check_case(raw, file, line) for raw, line in zip(items, lines, strict=True)]
    seen: dict[str, int] = {}
    for case in cases:
        if case.note in seen:
            raise BundleError(
                f"duplicate case note {case.note!r} (first at line {seen[case.note]})",
                file=file,
                line=case.line,
            )
        seen[case.note] = case.line
    return cases


def load_cases(source_dir: Path | None) -> list[Case]:
    """Every case in ``<bundle>/cases/*.yaml`` (none for built bundles)."""
    if source_dir is None or not (source_dir / "cases").is_dir():
        return []
    cases: list[Case] = []
    for path in sorted((source_dir / "cases").glob("*.y*ml")):
        cases.extend(parse_cases(path.read_text(encoding="utf-8"), str(path)))
    return cases
