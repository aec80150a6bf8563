"""Enforce a validated decision: redactions, token limit, route.

Pure functions: they never mutate the request document they are given, so
a fallback can re-send the intact forward document.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from engine.decision import DecisionError
from engine.document import resolve, split_pointer


@dataclass(frozen=True)
class Target:
    """One hop of a route: a configured provider and the model to ask it for."""

    provider: str
    model: str

    def as_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "model": self.model}


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """RE2-compile a redaction pattern (linear time; cached across requests)."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise DecisionError(f"redaction pattern {pattern!r} is not valid RE2: {exc}") from None


def expand_path(doc: Any, pattern: str) -> Iterator[str]:
    """Concrete JSON pointers matching ``pattern``, where ``*`` matches every array index."""

    def walk(node: Any, tokens: list[str], prefix: str) -> Iterator[str]:
        if not tokens:
            yield prefix
            return
        head, rest = tokens[0], tokens[1:]
        if head == "*":
            if isinstance(node, list):
                for i, item in enumerate(node):
                    yield from walk(item, rest, f"{prefix}/{i}")
            return
        escaped = head.replace("~", "~0").replace("/", "~1")
        if isinstance(node, list) and head.isdigit() and int(head) < len(node):
            yield from walk(node[int(head)], rest, f"{prefix}/{head}")
        elif isinstance(node, dict) and head in node:
            yield from walk(node[head], rest, f"{prefix}/{escaped}")

    yield from walk(doc, split_pointer(pattern), "")


def _merge_spans(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sort spans and fold overlapping ones together (the earlier replacement wins)."""
    merged: list[tuple[int, int, str]] = []
    for start, end, replacement in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            merged.append((start, end, replacement))
    return merged


class _CopyOnWrite:
    """A shallow copy of a document whose containers are copied only on the way
    to a value that changes, so redacting one text does not copy the whole request."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.root: dict[str, Any] = dict(doc)
        self._copied: set[int] = {id(self.root)}

    def set(self, pointer: str, value: Any) -> None:
        tokens = split_pointer(pointer)
        node: Any = self.root
        for token in tokens[:-1]:
            key: Any = int(token) if isinstance(node, list) else token
            child = node[key]
            if id(child) not in self._copied:
                child = list(child) if isinstance(child, list) else dict(child)
                self._copied.add(id(child))
                node[key] = child
            node = child
        last: Any = int(tokens[-1]) if isinstance(node, list) else tokens[-1]
        node[last] = value

    def params(self) -> dict[str, Any]:
        """``params``, copied so it may be changed."""
        params = self.root.get("params")
        if id(params) not in self._copied:
            params = dict(params or {})
            self._copied.add(id(params))
            self.root["params"] = params
        return params  # type: ignore[return-value]


def apply_redactions(
    doc: Mapping[str, Any], redactions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A copy of ``doc`` with every redaction applied.

    Span redactions (``start``/``end`` in code points of the original text) are
    applied first; pattern redactions then run over the result. Replacements are
    literal text.

    >>> doc = {"messages": [{"content": [{"type": "text", "text": "id 123-45-6789"}]}]}
    >>> out = apply_redactions(doc, [{"path": "/messages/0/content/0/text",
    ...                               "start": 3, "end": 14, "replacement": "[SSN]"}])
    >>> out["messages"][0]["content"][0]["text"]
    'id [SSN]'
    """
    writer = _CopyOnWrite(doc)
    forward = writer.root
    spans: dict[str, list[tuple[int, int, str]]] = {}
    patterns = []
    for redaction in redactions:
        if "pattern" in redaction:
            patterns.append(redaction)
            continue
        spans.setdefault(redaction["path"], []).append(
            (int(redaction["start"]), int(redaction["end"]), str(redaction["replacement"]))
        )
    for path, items in spans.items():
        try:
            text = resolve(forward, path)
        except KeyError:
            raise DecisionError(f"redaction path {path} does not exist in the request") from None
        if not isinstance(text, str):
            raise DecisionError(f"redaction path {path} does not name a text")
        pieces: list[str] = []
        cursor = 0
        for start, end, replacement in _merge_spans(items):
            if not 0 <= start <= end <= len(text):
                raise DecisionError(
                    f"redaction span {start}..{end} is outside the text at {path} ({len(text)} code points)"
                )
            pieces.extend((text[cursor:start], replacement))
            cursor = end
        pieces.append(text[cursor:])
        writer.set(path, "".join(pieces))
    for redaction in patterns:
        regex = compile_pattern(str(redaction["pattern"]))
        replacement = str(redaction["replacement"])
        for path in expand_path(forward, str(redaction["path"])):
            text = resolve(forward, path)
            if isinstance(text, str):
                writer.set(path, regex.sub(lambda _m, r=replacement: r, text))
    writer.params()  # the forward document's params are its own, for clamp_max_tokens
    return forward


def clamp_max_tokens(doc: dict[str, Any], limit: int | None) -> None:
    """Lower (or set) ``params.max_tokens`` to the decision's limit, in place."""
    if limit is None:
        return
    params = doc.setdefault("params", {})
    current = params.get("max_tokens")
    if not isinstance(current, int) or current > limit:
        params["max_tokens"] = limit


def resolve_route(
    decision: Mapping[str, Any],
    model: str,
    routes: Mapping[str, Sequence[Target]],
    providers: Collection[str],
) -> tuple[Target, ...]:
    """Ordered targets: the decision's route if any, else the configured route for
    ``model`` (exact name first, then ``*``). Empty when nothing routes the model.
    """
    named = decision.get("route", {}).get("targets") if decision.get("route") else None
    if named:
        targets = tuple(Target(t["provider"], t.get("model") or model) for t in named)
    else:
        configured = routes.get(model) or routes.get("*") or ()
        targets = tuple(
            Target(t.provider, model if t.model in ("", "*") else t.model) for t in configured
        )
    for target in targets:
        if target.provider not in providers:
            raise DecisionError(
                f"route names provider {target.provider!r}, which is not configured"
            )
    return targets
