"""SSE writing: one table drives the formatter and millstream's own parser (whole and one byte
at a time), injection attempts are refused, and any data survives the round trip."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from millstream.client import SSEParser
from millstream.dualmode import SSEEvent, SSEFormatError, format_sse_data, format_sse_event
from millstream.dualmode._sse import comment

# (data, event, id, retry) -> exact text, and what a parser must hand back (data, event, id).
CASES = [
    ("hello", None, None, None, "data: hello\n\n", ("hello", "message", None)),
    ({"a": 1}, None, None, None, 'data: {"a":1}\n\n', ('{"a":1}', "message", None)),
    (
        [1, "two"],
        "list",
        None,
        None,
        'event: list\ndata: [1,"two"]\n\n',
        ('[1,"two"]', "list", None),
    ),
    (
        "line1\nline2",
        None,
        None,
        None,
        "data: line1\ndata: line2\n\n",
        ("line1\nline2", "message", None),
    ),
    # CRLF and a lone CR are line breaks in SSE; each becomes its own data line.
    ("a\r\nb\rc", None, None, None, "data: a\ndata: b\ndata: c\n\n", ("a\nb\nc", "message", None)),
    ("trailing\n", None, None, None, "data: trailing\ndata: \n\n", ("trailing\n", "message", None)),
    ("", None, None, None, "data: \n\n", ("", "message", None)),
    ("\n", None, None, None, "data: \ndata: \n\n", ("\n", "message", None)),
    (
        " leading space",
        None,
        None,
        None,
        "data:  leading space\n\n",
        (" leading space", "message", None),
    ),
    (
        "x",
        "update",
        "42",
        1500,
        "event: update\nid: 42\nretry: 1500\ndata: x\n\n",
        ("x", "update", "42"),
    ),
    # Form feed and U+2028 are not SSE line breaks (str.splitlines would split them).
    ("a\fb\u2028c", None, None, None, "data: a\fb\u2028c\n\n", ("a\fb\u2028c", "message", None)),
    (
        ": not a comment",
        None,
        None,
        None,
        "data: : not a comment\n\n",
        (": not a comment", "message", None),
    ),
    (
        "data: fake\n\nevent: x",
        None,
        None,
        None,
        "data: data: fake\ndata: \ndata: event: x\n\n",
        ("data: fake\n\nevent: x", "message", None),
    ),
    (None, None, "7", None, "id: 7\ndata: null\n\n", ("null", "message", "7")),
    (3.5, None, None, None, "data: 3.5\n\n", ("3.5", "message", None)),
    (True, None, None, None, "data: true\n\n", ("true", "message", None)),
    ("é ✓ 😀", "ünï", "ïd", None, "event: ünï\nid: ïd\ndata: é ✓ 😀\n\n", ("é ✓ 😀", "ünï", "ïd")),
]


@pytest.mark.parametrize(("data", "event", "id", "retry", "text", "parsed"), CASES)
def test_format_and_parse_back(
    data: object,
    event: str | None,
    id: str | None,
    retry: int | None,
    text: str,
    parsed: tuple[str, str, str | None],
) -> None:
    formatted = format_sse_event(data, event=event, id=id, retry=retry)
    assert formatted == text
    assert SSEEvent(data, event, id, retry).format() == text
    whole = SSEParser()
    events = whole.feed(formatted.encode()) + whole.flush()
    assert [(e.data, e.event, e.id) for e in events] == [parsed]
    bytewise = SSEParser()
    one_by_one = [e for b in formatted.encode() for e in bytewise.feed(bytes([b]))]
    assert [(e.data, e.event, e.id) for e in one_by_one] == [parsed]


def test_format_sse_data_is_an_unnamed_event() -> None:
    assert format_sse_data({"k": "v"}) == 'data: {"k":"v"}\n\n'
    assert format_sse_data({1: "int keys become strings"}) == (
        'data: {"1":"int keys become strings"}\n\n'
    )
    assert format_sse_data("two\nlines") == "data: two\ndata: lines\n\n"


# Each would end its field early and smuggle in a field or event of its own.
INJECTIONS = [
    {"event": "update\ndata: injected"},
    {"event": "update\rdata: injected"},
    {"event": "a\r\n\r\ndata: x"},
    {"id": "1\nevent: admin"},
    {"id": "1\r"},
    {"id": "1\x00"},
    {"retry": -1},
    {"retry": "1000"},
    {"retry": True},
]


@pytest.mark.parametrize("fields", INJECTIONS)
def test_injection_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(SSEFormatError) as info:
        format_sse_event("data", **fields)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert info.value.hint


def test_comments_are_single_lines() -> None:
    assert comment("keep-alive") == ": keep-alive\n\n"
    with pytest.raises(SSEFormatError):
        comment("a\ndata: b")
    parser = SSEParser()
    assert parser.feed(comment("ping").encode()) == []


text_without_cr = st.text(alphabet=st.characters(blacklist_categories=["Cs"]))
field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"),
    min_size=1,
)


@given(data=text_without_cr, event=field_text, id=field_text)
def test_any_text_round_trips(data: str, event: str, id: str) -> None:
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    parser = SSEParser()
    (parsed,) = parser.feed(format_sse_event(data, event=event, id=id).encode())
    assert parsed.data == expected
    assert parsed.event == event
    assert parsed.id == id


@given(value=st.text(alphabet=string.printable, min_size=1))
def test_any_event_name_is_either_refused_or_a_single_field(value: str) -> None:
    try:
        formatted = format_sse_event("d", event=value)
    except SSEFormatError:
        assert "\n" in value or "\r" in value
        return
    parser = SSEParser()
    events = parser.feed(formatted.encode())
    assert [(e.event, e.data) for e in events] == [(value, "d")]
