"""Detectors: the YAML corpus against every shipped bundle, offsets, overlaps, errors, speed."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detectors import DetectorSet, compile_detectors, iter_scanned_texts
from engine.errors import BundleError
from engine.resources import data_dir

CORPUS_DIR = Path(__file__).parent / "detectors"
BUNDLES = sorted(
    p.name for p in data_dir("policy-bundles").iterdir() if (p / "data.json").is_file()
)


def _bundle_spec(bundle: str) -> list[dict[str, Any]]:
    data = json.loads(
        (data_dir("policy-bundles") / bundle / "data.json").read_text(encoding="utf-8")
    )
    return list(data["regate"]["detectors"])


@cache
def _compiled(bundle: str) -> DetectorSet:
    return compile_detectors(_bundle_spec(bundle))


def _corpus() -> dict[str, dict[str, Any]]:
    corpus = {}
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        corpus[entry["detector"]] = {**entry, "file": path.name}
    return corpus


def _corpus_params(kind: str) -> list[Any]:
    params = []
    corpus = _corpus()
    for bundle in BUNDLES:
        ids = {d["id"] for d in _bundle_spec(bundle)}
        for detector, entry in corpus.items():
            if detector not in ids:
                continue
            for index, item in enumerate(entry.get(kind) or ()):
                text, match = (
                    (item, None) if isinstance(item, str) else (item["text"], item.get("match"))
                )
                params.append(
                    pytest.param(bundle, detector, text, match, id=f"{bundle}:{detector}:{index}")
                )
    return params


def _doc(*texts: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]}]}


# -- corpus ---------------------------------------------------------------------------


def test_corpus_files_are_well_formed() -> None:
    files = sorted(CORPUS_DIR.glob("*.yaml"))
    assert files
    seen = set()
    for path in files:
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert set(entry) <= {"detector", "true_positives", "false_positives"}, path.name
        assert entry["detector"] not in seen, f"{path.name}: detector listed twice"
        seen.add(entry["detector"])
        assert entry.get("true_positives"), f"{path.name}: needs true positives"
        for item in entry["true_positives"]:
            assert isinstance(item, str) or (
                isinstance(item, dict) and set(item) <= {"text", "match"}
            )
        assert all(isinstance(item, str) for item in entry.get("false_positives") or ())


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_shipped_detector_has_a_corpus(bundle: str) -> None:
    missing = {d["id"] for d in _bundle_spec(bundle)} - set(_corpus())
    assert not missing, f"add tests/engine/detectors/<id>.yaml for {sorted(missing)}"


def test_corpus_names_only_shipped_detectors() -> None:
    shipped = {d["id"] for bundle in BUNDLES for d in _bundle_spec(bundle)}
    assert set(_corpus()) <= shipped


@pytest.mark.parametrize(("bundle", "detector", "text", "match"), _corpus_params("true_positives"))
def test_true_positive(bundle: str, detector: str, text: str, match: str | None) -> None:
    found = [f for f in _compiled(bundle).scan_text("/t", text) if f["detector"] == detector]
    assert found, f"{detector} found nothing in {text!r}"
    if match is not None:
        assert match in [text[f["start"] : f["end"]] for f in found]


@pytest.mark.parametrize(("bundle", "detector", "text", "match"), _corpus_params("false_positives"))
def test_false_positive(bundle: str, detector: str, text: str, match: None) -> None:
    found = [
        text[f["start"] : f["end"]]
        for f in _compiled(bundle).scan_text("/t", text)
        if f["detector"] == detector
    ]
    assert not found, f"{detector} wrongly found {found}"


# -- offsets and paths ------------------------------------------------------------------


def test_offsets_count_code_points_after_emoji_and_combining_marks() -> None:
    # family emoji = 5 code points (3 people, 2 zero-width joiners), "e" + U+0301 = 2:
    # the e-mail starts at code point 9, although at UTF-8 byte 23 and UTF-16 unit 12.
    text = "👨\u200d👩\u200d👧 e\u0301 a@b.co!"
    [finding] = _compiled("default").scan(_doc(text))
    assert (finding["start"], finding["end"]) == (9, 15)
    assert text[finding["start"] : finding["end"]] == "a@b.co"


def test_scan_reports_path_category_and_every_text_part() -> None:
    doc = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {
                "role": "user",
                "content": [
                    {"type": "image", "media_type": "image/png", "source": "base64", "bytes": 10},
                    {"type": "text", "text": "ssn 123-45-6789"},
                ],
            },
        ]
    }
    assert _compiled("default").scan(doc) == [
        {
            "detector": "pii.ssn",
            "category": "pii",
            "path": "/messages/1/content/1/text",
            "start": 4,
            "end": 15,
        }
    ]


def test_tool_call_arguments_are_scanned_with_pointer_paths() -> None:
    doc = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "go"}]},
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [
                    {
                        "id": "c1",
                        "name": "send",
                        "arguments": {"to": "a@b.co", "cc": ["x", "c@d.io"], "a/b~": "e@f.org"},
                    },
                    {"id": "c2", "name": "raw", "arguments": "key AKIAIOSFODNN7EXAMPLE"},
                ],
            },
        ]
    }
    found = {(f["path"], f["detector"]) for f in _compiled("default").scan(doc)}
    assert found == {
        ("/messages/1/tool_calls/0/arguments/to", "pii.email"),
        ("/messages/1/tool_calls/0/arguments/cc/1", "pii.email"),
        ("/messages/1/tool_calls/0/arguments/a~1b~0", "pii.email"),
        ("/messages/1/tool_calls/1/arguments", "secret.aws_access_key"),
    }


def test_iter_scanned_texts_skips_non_strings() -> None:
    doc = {
        "messages": [
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [{"arguments": {"n": 1, "ok": True, "s": "x"}}],
            }
        ]
    }
    assert list(iter_scanned_texts(doc)) == [("/messages/0/tool_calls/0/arguments/s", "x")]


def test_findings_are_ordered_by_offset() -> None:
    text = "key AKIAIOSFODNN7EXAMPLE, mail a@b.co, ssn 123-45-6789"
    found = _compiled("default").scan_text("/t", text)
    assert [f["detector"] for f in found] == ["secret.aws_access_key", "pii.email", "pii.ssn"]


def test_validator_can_trim_a_match() -> None:
    text = "pay BE68 5390 0754 7034 EUR 100"
    [finding] = _compiled("default").scan_text("/t", text)
    assert text[finding["start"] : finding["end"]] == "BE68 5390 0754 7034"


# -- overlaps ------------------------------------------------------------------------------


def test_overlapping_matches_of_different_detectors_are_all_reported() -> None:
    text = "write john.415-555-2671@example.com"
    spans = {
        (f["detector"], text[f["start"] : f["end"]])
        for f in _compiled("default").scan_text("/t", text)
    }
    assert spans == {("pii.email", "john.415-555-2671@example.com"), ("pii.phone", "415-555-2671")}


def test_a_match_does_not_hide_one_that_starts_inside_it() -> None:
    # One alternation would resume after "abc123" and never see "c1".
    detectors = compile_detectors(
        [
            {"id": "x.long", "category": "x", "pattern": r"abc\d+"},
            {"id": "x.inner", "category": "x", "pattern": "c1"},
        ]
    )
    found = [(f["detector"], f["start"], f["end"]) for f in detectors.scan_text("/t", "abc123")]
    assert found == [("x.long", 0, 6), ("x.inner", 2, 4)]


def test_jwt_next_to_an_email_hides_nothing() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
    found = [f["detector"] for f in _compiled("default").scan_text("/t", f"{jwt} a@b.co")]
    assert found == ["secret.jwt", "pii.email"]


def test_anthropic_key_is_not_also_an_openai_key() -> None:
    key = (
        "sk-ant-api03-"
        + "Xy7zAb3cDe6fGh9iJk2lMn5oPq8rSt1uVw4xYz7aBc0dEf3gHi6jKl9mNo2pQr5sTu8vWx1yZa4b-AA"
    )
    assert [f["detector"] for f in _compiled("default").scan_text("/t", key)] == [
        "secret.anthropic_key"
    ]


_ALPHABET = "a@b.co 1-23456789+()4 eyJ.AKIA SDEG"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=80))
def test_the_prefilter_loses_nothing(text: str) -> None:
    detectors = _compiled("default")
    expected = []
    for detector in detectors.detectors:
        for match in re2.compile(detector.pattern).finditer(text):
            length = detector.check(match.group()) if match.end() > match.start() else None
            if length:
                expected.append((match.start(), match.start() + length, detector.id))
    got = [(f["start"], f["end"], f["detector"]) for f in detectors.scan_text("/t", text)]
    assert got == sorted(expected)


# -- compiling -------------------------------------------------------------------------------


def test_no_detectors_find_nothing() -> None:
    assert len(compile_detectors([])) == 0
    assert compile_detectors(None).scan(_doc("a@b.co")) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"not": "a list"}, "must be a list"),
        (["pii.email"], "detector 0: must be an object"),
        (
            [{"id": "x.a", "category": "x", "pattern": "(?<=a)b"}],
            "detector 0 ('x.a'): invalid RE2 pattern",
        ),
        (
            [{"id": "x.a", "category": "x", "pattern": "a("}],
            "detector 0 ('x.a'): invalid RE2 pattern",
        ),
        (
            [{"id": "x.a", "category": "x", "pattern": "a", "validator": "crc"}],
            "unknown validator 'crc'",
        ),
        (
            [{"id": "x.a", "category": "x", "pattern": "a", "validatr": "luhn"}],
            "unknown field(s) validatr",
        ),
        ([{"id": "x.a", "category": "x", "pattern": ""}], "'pattern' must be a non-empty string"),
        ([{"id": "x.a", "category": "x", "pattern": "a*"}], "matches the empty string"),
        ([{"id": "X A", "category": "x", "pattern": "a"}], "'id' must be lower-case dotted words"),
        ([{"id": "x.9a", "category": "x", "pattern": "a"}], "'id' must be lower-case dotted words"),
        ([{"id": "x.a", "pattern": "a"}], "'category' must be lower-case dotted words"),
        (
            [{"id": "x.a", "category": "x", "pattern": "a", "validator": ["luhn"]}],
            "unknown validator",
        ),
        ([{"id": "x.a", "category": "x", "pattern": "a", 7: "seven"}], "unknown field(s) 7"),
        (
            [
                {"id": "x.a", "category": "x", "pattern": "a"},
                {"id": "x.a", "category": "x", "pattern": "b"},
            ],
            "detector 1 ('x.a'): duplicate id",
        ),
    ],
)
def test_bad_specs_are_bundle_errors(spec: Any, expected: str) -> None:
    with pytest.raises(BundleError) as info:
        compile_detectors(spec)
    assert expected in info.value.message
    assert info.value.code == "bundle_error"


def test_detectors_too_large_to_scan_together_are_a_bundle_error() -> None:
    spec = [
        {"id": f"x.d{i}", "category": "x", "pattern": f"q{i}[a-z]{{1,1000}}"} for i in range(80)
    ]
    with pytest.raises(BundleError, match="do not compile together"):
        compile_detectors(spec)


def test_bundle_error_names_the_source_file() -> None:
    with pytest.raises(BundleError) as info:
        compile_detectors([{"id": "x.a", "category": "x", "pattern": "a("}], source="b/data.json")
    assert str(info.value).startswith("b/data.json: detector 0 ('x.a')")


def test_validator_defaults_to_none_and_description_is_allowed() -> None:
    detectors = compile_detectors(
        [{"id": "x.a", "category": "x", "pattern": "ab", "description": "demo"}]
    )
    assert detectors.detectors[0].validator == "none"
    assert len(detectors.scan_text("/t", "xaby")) == 1


# -- speed -------------------------------------------------------------------------------------


def _best_of(runs: int, detectors: DetectorSet, doc: dict[str, Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        detectors.scan(doc)
        best = min(best, time.perf_counter() - started)
    return best


def test_scan_time_grows_linearly_with_text_size() -> None:
    # Near-misses that make backtracking engines go quadratic on these patterns,
    # plus real matches so the per-detector passes and validators run too.
    unit = "a.a.a.a.a.a.a.a.a@ 1 2 3 4 5 6 7 8 eyJ" + "A" * 20 + ". -----BEGIN x@y.io 415-555-2671 "
    detectors = _compiled("default")
    small = _best_of(3, detectors, _doc(unit * 300))
    large = _best_of(3, detectors, _doc(unit * 3000))
    assert large / small < 25, f"10x the text took {large / small:.1f}x the time"
