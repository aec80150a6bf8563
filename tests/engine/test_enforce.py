"""Redactions, max_tokens clamping and route resolution."""

from __future__ import annotations

import copy

import pytest

from engine.decision import DecisionError
from engine.enforce import Target, apply_redactions, clamp_max_tokens, expand_path, resolve_route


def doc_with(*texts: str) -> dict:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]}]}


def text_of(doc: dict, part: int = 0, message: int = 0) -> str:
    return doc["messages"][message]["content"][part]["text"]


@pytest.mark.parametrize(
    "prefix",
    ["", "😀 ", "e\u0301e\u0301 ", "👩‍👩‍👧 family ", "漢字テキスト "],
    ids=["ascii", "emoji", "combining", "zwj-sequence", "cjk"],
)
def test_span_offsets_count_code_points(prefix: str) -> None:
    text = f"{prefix}ssn 123-45-6789 end"
    start = text.index("123")
    doc = doc_with(text)
    out = apply_redactions(
        doc,
        [
            {
                "path": "/messages/0/content/0/text",
                "start": start,
                "end": start + 11,
                "replacement": "[SSN]",
            }
        ],
    )
    assert text_of(out) == f"{prefix}ssn [SSN] end"


def test_input_document_is_never_mutated() -> None:
    doc = doc_with("mail a@b.co now")
    before = copy.deepcopy(doc)
    apply_redactions(
        doc,
        [{"path": "/messages/0/content/0/text", "start": 5, "end": 11, "replacement": "[EMAIL]"}],
    )
    assert doc == before


def test_several_spans_in_one_text_apply_against_original_offsets() -> None:
    text = "a@b.co and c@d.io"
    out = apply_redactions(
        doc_with(text),
        [
            {"path": "/messages/0/content/0/text", "start": 11, "end": 17, "replacement": "[E2]"},
            {"path": "/messages/0/content/0/text", "start": 0, "end": 6, "replacement": "[E1]"},
        ],
    )
    assert text_of(out) == "[E1] and [E2]"


def test_overlapping_spans_are_merged_not_corrupted() -> None:
    out = apply_redactions(
        doc_with("0123456789"),
        [
            {"path": "/messages/0/content/0/text", "start": 2, "end": 6, "replacement": "[A]"},
            {"path": "/messages/0/content/0/text", "start": 4, "end": 8, "replacement": "[B]"},
        ],
    )
    assert text_of(out) == "01[A]89"


def test_pattern_redaction_with_wildcards_covers_every_text() -> None:
    doc = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "SECRET-1 x"},
                    {"type": "text", "text": "y secret-22"},
                ],
            },
            {"role": "user", "content": [{"type": "text", "text": "no match"}]},
        ]
    }
    out = apply_redactions(
        doc,
        [
            {
                "path": "/messages/*/content/*/text",
                "pattern": "(?i)secret-\\d+",
                "replacement": "[S]",
            }
        ],
    )
    assert [p["text"] for m in out["messages"] for p in m["content"]] == [
        "[S] x",
        "y [S]",
        "no match",
    ]


def test_pattern_replacement_is_literal() -> None:
    out = apply_redactions(
        doc_with("abc"),
        [{"path": "/messages/0/content/0/text", "pattern": "(b)", "replacement": "\\1$1"}],
    )
    assert text_of(out) == "a\\1$1c"


@pytest.mark.parametrize(
    "redaction",
    [
        {"path": "/messages/0/content/5/text", "start": 0, "end": 1, "replacement": "x"},
        {"path": "/messages/0/content/0/text", "start": 0, "end": 99, "replacement": "x"},
        {"path": "/messages/0/content/0/text", "start": 3, "end": 2, "replacement": "x"},
        {"path": "/messages/0/role", "start": 0, "end": 1, "replacement": "x"}
        | {"path": "/messages/0"},
        {"path": "/messages/*/content/*/text", "pattern": "(unclosed", "replacement": "x"},
    ],
    ids=["missing-path", "end-past-text", "start-after-end", "not-a-text", "bad-re2"],
)
def test_unenforceable_redactions_are_decision_errors(redaction: dict) -> None:
    with pytest.raises(DecisionError):
        apply_redactions(doc_with("short"), [redaction])


def test_backtracking_pattern_runs_in_linear_time() -> None:
    import time

    text = "a" * 20000 + "!"
    started = time.perf_counter()
    apply_redactions(
        doc_with(text),
        [{"path": "/messages/0/content/0/text", "pattern": "(a+)+$", "replacement": "x"}],
    )
    assert time.perf_counter() - started < 1.0


def test_expand_path_matches_only_existing_nodes() -> None:
    doc = doc_with("a", "b")
    assert list(expand_path(doc, "/messages/*/content/*/text")) == [
        "/messages/0/content/0/text",
        "/messages/0/content/1/text",
    ]
    assert list(expand_path(doc, "/messages/*/nothing")) == []


@pytest.mark.parametrize(
    ("given", "limit", "want"), [(None, 100, 100), (500, 100, 100), (50, 100, 50), (50, None, 50)]
)
def test_max_tokens_is_clamped(given: int | None, limit: int | None, want: int) -> None:
    doc: dict = {"params": {} if given is None else {"max_tokens": given}}
    clamp_max_tokens(doc, limit)
    assert doc["params"]["max_tokens"] == want


ROUTES = {"gpt-4o": (Target("openai", "gpt-4o"),), "*": (Target("echo", "echo"),)}


def test_route_prefers_decision_then_exact_model_then_wildcard() -> None:
    providers = {"openai", "echo", "azure-eu"}
    decided = resolve_route(
        {"route": {"targets": [{"provider": "azure-eu"}]}}, "gpt-4o", ROUTES, providers
    )
    assert decided == (Target("azure-eu", "gpt-4o"),)
    assert resolve_route({}, "gpt-4o", ROUTES, providers) == (Target("openai", "gpt-4o"),)
    assert resolve_route({}, "other", ROUTES, providers) == (Target("echo", "echo"),)


def test_route_to_unconfigured_provider_is_a_decision_error() -> None:
    with pytest.raises(DecisionError, match="not configured"):
        resolve_route({"route": {"targets": [{"provider": "nowhere"}]}}, "m", ROUTES, {"echo"})
