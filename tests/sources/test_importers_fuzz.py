"""The file importers against hypothesis: files of any content — good records, junk bytes,
broken encodings, CRLF, a last line without its newline — and cursors of any text.

tests/sources/test_fuzz.py fuzzes what the normalisers get; this fuzzes the readers in
front of them (``watchfloor import``): a Jetstream JSONL recording (``TrackedReplaySource``),
a twarc2 X API v2 export (``XExportSource``) and a CSV file (``CsvSource``). For any file:

- reading never fails (except a CSV whose header row is unreadable: a clear ValueError),
  and every event goes to its normaliser, which returns a Post, Deletion or Ignored or
  raises MalformedEvent (the pipeline then dead-letters it with the reason);
- resuming from the cursor of ANY event yields exactly the events after it — what a crash
  and restart of an import relies on to lose nothing and double nothing;
- a cursor that is not one (edited by hand, another source's) is a ValueError, never a
  wrong place to resume from.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post, RawEvent
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import demo_payload, parse_index
from watchfloor.sources.files import (
    CsvMapping,
    CsvNormaliser,
    CsvSource,
    TrackedReplaySource,
    XExportSource,
    parse_line_cursor,
)
from watchfloor.sources.replay import parse_offset
from watchfloor.sources.xapi import XNormaliser

PSEUDONYMISE = HmacPseudonymiser(b"i" * 32)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WHEN = datetime(2026, 11, 25, tzinfo=UTC)

JETSTREAM_LINE = demo_payload(3, time_us=1_764_000_000_000_000)
X_LINE = json.dumps(
    {
        "data": [
            {"id": "20", "text": "hi #t", "author_id": "2", "created_at": "2026-11-25T10:00:00.000Z",
             "edit_history_tweet_ids": ["20"], "lang": "en"},
            {"id": "21", "text": "again", "author_id": "3", "created_at": "2026-11-25T10:01:00.000Z",
             "edit_history_tweet_ids": ["21"]},
        ],
        "includes": {"users": [{"id": "2", "username": "a"}, {"id": "3", "username": "b"}]},
    }
).encode()  # fmt: skip
CSV_HEADER = b"id,text,author,created_at,lang\r\n"
CSV_ROW = b'1,"hello, ""world""",u,2026-11-25T10:00:00Z,en\r\n'

junk = st.binary(max_size=80) | st.sampled_from([b"{", b"}", b"[]", b'"', b"\xff\xfe", b"\x00", b"\r", b"\n\n", b"{}"])


def lines_of(good: bytes) -> st.SearchStrategy[bytes]:
    """Files of good records and junk, in any order, with any line endings."""
    piece = st.just(good) | junk | st.just(good[: len(good) // 2])
    ending = st.sampled_from([b"\n", b"\r\n", b"\n\n", b""])
    return st.lists(st.tuples(piece, ending), max_size=8).map(lambda parts: b"".join(p + e for p, e in parts))


async def read_all(source: Any, cursor: str | None = None) -> list[RawEvent]:
    async with aclosing(source.events(cursor)) as events:
        return [event async for event in events]


def written(content: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="wf-import-fuzz-"))
    path = folder / "import.data"
    path.write_bytes(content)
    return path


def normalised(normaliser: Any, event: RawEvent) -> str:
    try:
        item = normaliser.normalise(RawEvent(event.source, event.platform, event.cursor, event.payload, WHEN))
    except MalformedEvent as exc:
        assert exc.reason and len(exc.reason) < 2000
        return "malformed"
    assert isinstance(item, Post | Deletion | Ignored), item
    return type(item).__name__


def resumes_exactly(make_source: Any, events: list[RawEvent]) -> None:
    """From the cursor of every event, the rest of the file and nothing else."""
    payloads = [e.payload for e in events]
    for index, event in enumerate(events):
        rest = asyncio.run(read_all(make_source(), event.cursor))
        assert [e.payload for e in rest] == payloads[index + 1 :], (index, event.cursor)


@FUZZ
@given(content=lines_of(JETSTREAM_LINE))
def test_a_jetstream_recording_of_any_content(content: bytes) -> None:
    path = written(content)
    events = asyncio.run(read_all(TrackedReplaySource(path)))
    normaliser = JetstreamNormaliser(PSEUDONYMISE)
    assert all(normalised(normaliser, e) for e in events)
    assert [e.payload for e in events] == [
        line.rstrip(b"\r") for line in content.split(b"\n") if line.rstrip(b"\r").strip()
    ]
    resumes_exactly(lambda: TrackedReplaySource(path), events)


@FUZZ
@given(content=lines_of(X_LINE))
def test_an_x_export_of_any_content(content: bytes) -> None:
    path = written(content)
    events = asyncio.run(read_all(XExportSource(path)))
    normaliser = XNormaliser(PSEUDONYMISE)
    outcomes = [normalised(normaliser, e) for e in events]
    good = sum(line.rstrip(b"\r") == X_LINE for line in content.split(b"\n"))
    assert outcomes.count("Post") >= 2 * good  # each good line is two tweets
    resumes_exactly(lambda: XExportSource(path), events)


csv_cells = st.text(alphabet=st.sampled_from(list('ab ,"\r\n;é\x00x1-:T')), max_size=12)
csv_rows = st.lists(st.lists(csv_cells, min_size=1, max_size=6), max_size=6)


@FUZZ
@given(rows=csv_rows, extra=st.lists(junk, max_size=2))
def test_a_csv_file_of_any_content(rows: list[list[str]], extra: list[bytes]) -> None:
    body = b"".join(
        (",".join('"' + c.replace('"', '""') + '"' if i % 2 else c for i, c in enumerate(row)) + "\r\n").encode()
        for row in rows
    )
    content = CSV_HEADER + CSV_ROW + body + b"".join(extra) + CSV_ROW
    path = written(content)
    events = asyncio.run(read_all(CsvSource(path)))
    normaliser = CsvNormaliser(
        PSEUDONYMISE, CsvMapping.parse(["id=id", "text=text", "author=author", "created_at=created_at", "lang=lang"])
    )
    outcomes = [normalised(normaliser, e) for e in events]
    assert outcomes[0] == "Post"
    resumes_exactly(lambda: CsvSource(path), events)


CSV_COLUMNS = ("id", "text", "author", "created_at", "lang", "version", "url", "links", "hashtags", "deleted")


# any text; digits, numbers and punctuation of every script; and runs of what Python calls a digit
# (str.isdigit() is true for '²' and '٣' too) — what epoch and ISO 8601 parsing trip over
cell_text = (
    st.text(max_size=30)
    | st.text(alphabet=st.characters(categories=("Nd", "No", "Po", "Zs")), max_size=8)
    | st.text(alphabet=st.characters(categories=("Nd", "No")).filter(str.isdigit), min_size=1, max_size=4)
)


CSV_ALL_COLUMNS = CsvNormaliser(PSEUDONYMISE, CsvMapping.parse([f"{name}={name}" for name in CSV_COLUMNS]))
GOOD_ROW = {
    "id": "1", "text": "hello #a", "author": "u", "created_at": "2026-11-25T10:00:00Z", "lang": "en", "version": "v1",
    "url": "https://x.example/1", "links": "https://x.example/2", "hashtags": "a", "deleted": "",
}  # fmt: skip


@FUZZ
@given(row=st.fixed_dictionaries({}, optional={name: cell_text for name in CSV_COLUMNS}))
def test_a_csv_row_with_any_text_in_any_column(row: dict[str, str]) -> None:
    assert normalised(CSV_ALL_COLUMNS, RawEvent("fuzz", "csv", "1", json.dumps(GOOD_ROW).encode(), WHEN)) == "Post"
    for payload in (row, GOOD_ROW | row):
        normalised(CSV_ALL_COLUMNS, RawEvent("fuzz", "csv", "1", json.dumps(payload).encode(), WHEN))


@FUZZ
@given(column=st.sampled_from(CSV_COLUMNS), text=cell_text)
def test_a_good_csv_row_with_one_column_replaced_by_any_text(column: str, text: str) -> None:
    payload = json.dumps(GOOD_ROW | {column: text}).encode()
    normalised(CSV_ALL_COLUMNS, RawEvent("fuzz", "csv", "1", payload, WHEN))


@FUZZ
@given(header=st.binary(max_size=40))
def test_a_csv_file_whose_header_is_not_one_is_refused_clearly(header: bytes) -> None:
    path = written(header + b"\n" + CSV_ROW)
    try:
        events = asyncio.run(read_all(CsvSource(path)))
    except ValueError as exc:
        assert "header" in str(exc)
        return
    assert events is not None


@FUZZ
@given(cursor=st.text(max_size=30))
def test_a_cursor_that_is_not_one_is_refused(cursor: str) -> None:
    for parse in (parse_offset, parse_line_cursor, parse_index):
        try:
            value = parse(cursor)
        except ValueError as exc:
            assert repr(cursor) in str(exc)
            continue
        flat = value if isinstance(value, tuple) else (value,)
        assert all(isinstance(v, int) and v >= 0 for v in flat)
        assert cursor == "" or all(c.isascii() for c in cursor)


@pytest.mark.parametrize("cursor", ["abc", "-5", "1:2:3", "٣", "²", " 7"])
def test_every_importer_refuses_a_foreign_cursor(cursor: str) -> None:
    path = written(JETSTREAM_LINE + b"\n")
    for source in (TrackedReplaySource(path), XExportSource(path), CsvSource(written(CSV_HEADER + CSV_ROW))):
        with pytest.raises(ValueError):
            asyncio.run(read_all(source, cursor))
