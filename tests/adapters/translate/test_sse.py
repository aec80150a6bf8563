"""SSE parser and serializer: line endings, comments, multi-line data, arbitrary chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.translate.errors import TranslateError
from adapters.translate.sse import SSEEvent, SSEParser, serialize, serialize_all

from .recorded import load_bytes, parse_sse


def feed_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(cuts):
        events += parser.feed(data[start:cut])
        start = cut
    return events + parser.feed(data[start:]) + parser.finish()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_gives_the_same_events(newline: str) -> None:
    text = "event: a\ndata: one\ndata: two\n\n: comment\ndata: three\n\n".replace("\n", newline)
    assert parse_sse(text.encode()) == [
        SSEEvent(data="one\ntwo", event="a"),
        SSEEvent(data="three"),
    ]


def test_field_rules_follow_the_spec() -> None:
    text = (
        "\ufeffdata:no-space\n"  # BOM dropped, the space after ':' is optional
        "data:  two spaces\n"  # only one leading space is removed
        "id: 7\nretry: 1500\nretry: x\n"
        "unknown: ignored\ndata\n\n"  # a field without ':' has an empty value
        "event: only-a-name\n\n"  # no data: nothing is dispatched
        "data: later\n\n"
    )
    events = parse_sse(text.encode())
    assert events == [
        SSEEvent(data="no-space\n two spaces\n", id="7", retry=1500),
        SSEEvent(data="later", id="7"),  # the last event id persists
    ]


def test_unterminated_event_at_end_is_discarded() -> None:
    assert parse_sse(b"data: complete\n\ndata: cut off") == [SSEEvent(data="complete")]


def test_cr_lf_split_across_reads_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent(data="x")]
    assert parser.feed(b"\ndata: y\r\n\r\n") == [SSEEvent(data="y")]


def test_utf8_character_split_across_reads() -> None:
    data = "data: «☀️»\n\n".encode()
    for cut in range(1, len(data)):
        assert feed_in_pieces(data, [cut]) == [SSEEvent(data="«☀️»")]


def test_oversized_event_is_refused() -> None:
    parser = SSEParser(max_event_chars=64)
    parser.feed(b"data: " + b"x" * 40 + b"\n")
    with pytest.raises(TranslateError) as caught:
        parser.feed(b"data: " + b"y" * 40)
    assert caught.value.code == "sse_event_too_large"


def test_serializer_splits_multi_line_data_and_refuses_multi_line_names() -> None:
    wire = serialize(SSEEvent(data="a\r\nb\rc", event="e", id="1", retry=5))
    assert wire == b"event: e\nid: 1\nretry: 5\ndata: a\ndata: b\ndata: c\n\n"
    with pytest.raises(ValueError):
        serialize(SSEEvent(data="x", event="a\nb"))


def test_recorded_gemini_stream_with_crlf_framing_parses_to_json_events() -> None:
    events = parse_sse(load_bytes("gemini_text.sse"))
    assert len(events) == 3
    assert all(event.event is None and event.json()["responseId"] for event in events)


def test_non_json_data_raises_a_coded_error() -> None:
    with pytest.raises(TranslateError) as caught:
        SSEEvent(data="{not json").json()
    assert caught.value.code == "upstream_malformed_event"


_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
_events = st.lists(
    st.builds(
        SSEEvent,
        data=st.lists(_text, min_size=1, max_size=3).map("\n".join),
        event=st.none() | _text.filter(lambda name: name != ""),
        retry=st.none() | st.integers(min_value=0, max_value=10**6),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    events=_events,
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_chunking_of_a_serialized_stream_gives_the_same_events(
    events: list[SSEEvent], cuts: list[int], newline: bytes
) -> None:
    wire = serialize_all(events).replace(b"\n", newline)
    cuts = [cut % (len(wire) + 1) for cut in cuts]
    assert feed_in_pieces(wire, cuts) == events
