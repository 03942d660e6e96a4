"""File importers: research exports read as finite, resumable sources.

``watchfloor import FILE --format …`` runs one of these through the same pipeline as a
live source (normalise → match → persist, cursor committed with the data), so an
interrupted import resumes where it stopped and importing the same posts twice stores
them once.

- ``x-v2``: :class:`XExportSource`, twarc2 JSONL (one API response per line, each split
  into single tweets, errors and compliance records; see :mod:`.xapi`). Cursor
  ``"<line offset>:<items done in that line>"``.
- ``csv``: :class:`CsvSource` + :class:`CsvNormaliser`, any CSV with a header, read
  through a column mapping. Cursor: the byte offset after the last row.
- ``jetstream``: :class:`~watchfloor.sources.replay.ReplaySource` (Jetstream v1 JSONL).

Every file source counts the bytes it has read (``position``) for a progress bar.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchfloor.model import Deletion, MalformedEvent, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.base import Pseudonymiser, Source
from watchfloor.sources.replay import ReplaySource, parse_offset, read_lines
from watchfloor.sources.xapi import PLATFORM as X_PLATFORM
from watchfloor.sources.xapi import split_export_line

FORMATS = ("x-v2", "csv", "jetstream")
YIELD_EVERY = 200
MAX_CSV_RECORD_BYTES = 1024 * 1024


class FromStart:
    """Wraps a source so that it ignores the stored cursor (``watchfloor import --from-start``)."""

    def __init__(self, source: Source) -> None:
        self.inner = source
        self.name = source.name
        self.platform = source.platform

    @property
    def position(self) -> int:
        return int(getattr(self.inner, "position", 0))

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        async with aclosing(self.inner.events(None)) as events:
            async for event in events:
                yield event


class TrackedReplaySource(ReplaySource):
    """A Jetstream JSONL import: a fast replay that tells how far it has read."""

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        super().__init__(path, speed="fast", name=name)
        self.position = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        async with aclosing(super().events(cursor)) as events:
            async for event in events:
                self.position = int(event.cursor)
                yield event


# --------------------------------------------------------------------------- X API v2


def parse_line_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    offset, _, done = cursor.partition(":")
    # ASCII digits only: str.isdigit() also takes '٣' (which int() reads as 3) and '²' (which it refuses)
    if not (cursor.isascii() and offset.isdigit() and (done.isdigit() or not done)):
        raise ValueError(f"an export cursor is 'offset:items', not {cursor!r}")
    return int(offset), int(done or 0)


class XExportSource:
    """A twarc2 JSONL export (platform ``x``), one event per tweet, error or compliance record."""

    platform = X_PLATFORM

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        self.path = Path(path).resolve()
        self.name = name or f"import:x-v2:{self.path}"
        self.position = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        start, skip = parse_line_cursor(cursor)
        count = 0
        async with aclosing(read_lines(self.path, start)) as lines:
            async for line, end in lines:
                items = split_export_line(line)
                for index, item in enumerate(items):
                    if skip:
                        skip -= 1
                        continue
                    last = index == len(items) - 1
                    position = f"{end}:0" if last else f"{start}:{index + 1}"
                    count += 1
                    if count % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    yield RawEvent(self.name, self.platform, position, item, utcnow())
                skip = 0
                start = end
                self.position = end


# --------------------------------------------------------------------------- CSV

#: Fields a CSV mapping can fill, and what they mean.
CSV_FIELDS = {
    "id": "the post's id on its platform (required)",
    "text": "the text (required)",
    "author": "the author's account id or name: pseudonymised, never stored (required)",
    "created_at": "ISO 8601 time or epoch seconds",
    "version": "a version id (default: a hash of the text)",
    "lang": "language code",
    "url": "link to the post (leave out if it contains a user name)",
    "reply_to": "id of the post it replies to",
    "quote_of": "id of the post it quotes",
    "links": "links, separated by spaces",
    "hashtags": "hashtags, separated by spaces or commas",
    "deleted": "a true value (1, true, yes) makes the row a deletion",
}
REQUIRED_FIELDS = ("id", "text", "author")

#: Mappings for CSV files other tools write.
CSV_PRESETS: dict[str, dict[str, str]] = {
    # twarc-csv (DocNow/twarc-csv) exports of X API v2 data
    "twarc-csv": {
        "id": "id",
        "text": "text",
        "author": "author_id",
        "created_at": "created_at",
        "lang": "lang",
        "version": "id",
        "reply_to": "referenced_tweets.replied_to.id",
        "quote_of": "referenced_tweets.quoted.id",
    },
}
_PERSONAL_COLUMN = re.compile(r"(?i)(user_?name|screen_?name|display_?name|handle|author\.name|user\.name|email)")
_TRUE = frozenset({"1", "true", "yes", "y", "t"})


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """Which column holds which field, and which platform the rows come from."""

    columns: Mapping[str, str]
    platform: str = "csv"
    drop: tuple[str, ...] = field(default_factory=tuple)  # more columns never to keep in the raw payload

    @classmethod
    def parse(cls, pairs: list[str], *, preset: str | None = None, platform: str | None = None) -> CsvMapping:
        """From ``field=column`` strings (and a preset they override)."""
        columns: dict[str, str] = dict(CSV_PRESETS[preset]) if preset else {}
        for pair in pairs:
            name, sep, column = pair.partition("=")
            name, column = name.strip(), column.strip()
            if not sep or not column:
                raise ValueError(f"a mapping is FIELD=COLUMN, not {pair!r}")
            if name not in CSV_FIELDS:
                raise ValueError(f"unknown field {name!r}; fields: {', '.join(CSV_FIELDS)}")
            columns[name] = column
        missing = [name for name in REQUIRED_FIELDS if name not in columns]
        if missing:
            raise ValueError(f"map the required field(s) {', '.join(missing)} (e.g. --map id=tweet_id)")
        chosen = platform or ("x" if preset == "twarc-csv" else "csv")
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", chosen):
            raise ValueError(f"{chosen!r} is not a platform name")
        return cls(columns=columns, platform=chosen)


class CsvSource:
    """A CSV file with a header row; one event per record (as a JSON object of its columns)."""

    platform = "csv"

    def __init__(self, path: str | Path, *, name: str | None = None, encoding: str = "utf-8-sig") -> None:
        self.path = Path(path).resolve()
        self.name = name or f"import:csv:{self.path}"
        self.encoding = encoding
        self.position = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        offset = parse_offset(cursor or None)  # a byte offset; int() would also take ' 7' and '٣'
        header: list[str] | None = None
        count = 0
        with self.path.open("rb") as file:
            first = await asyncio.to_thread(_read_record, file)
            if first is None:
                return
            header_bytes, header_end = first
            header = _parse_record(header_bytes, self.encoding)
            if header is None:
                raise ValueError(f"{self.path}: the first row is not a CSV header")
            header = [name.strip() for name in header]
            await asyncio.to_thread(file.seek, max(offset, header_end))
            while True:
                record = await asyncio.to_thread(_read_record, file)
                if record is None:
                    break
                raw, end = record
                self.position = end
                if not raw.strip():
                    continue
                row = _parse_record(raw, self.encoding)
                if row is None or len(row) != len(header):
                    payload = raw  # ragged or undecodable: the normaliser sends it to the dead letters
                else:
                    payload = f.compact(dict(zip(header, row, strict=True)))
                count += 1
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                yield RawEvent(self.name, self.platform, str(end), payload, utcnow())


def _read_record(file: io.BufferedReader) -> tuple[bytes, int] | None:
    """The bytes of one CSV record (quoted fields may hold newlines) and the offset after it."""
    parts: list[bytes] = []
    quotes = 0
    size = 0
    while True:
        line = file.readline()
        if not line:
            break
        parts.append(line)
        size += len(line)
        quotes += line.count(b'"')
        if quotes % 2 == 0 or size > MAX_CSV_RECORD_BYTES:
            break
    if not parts:
        return None
    return b"".join(parts), file.tell()


def _parse_record(raw: bytes, encoding: str) -> list[str] | None:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


class CsvNormaliser:
    """Reads CSV rows (JSON objects of column → value) through a :class:`CsvMapping`."""

    platform = "csv"

    def __init__(self, pseudonymise: Pseudonymiser, mapping: CsvMapping) -> None:
        self._pseudonymise = pseudonymise
        self.mapping = mapping

    def normalise(self, event: RawEvent) -> Normalised:
        if not event.payload.startswith(b"{"):
            raise MalformedEvent("not a CSV record with as many fields as the header")
        row = f.load_object(event.payload, "row")
        for column, value in row.items():
            if not isinstance(value, str):
                raise MalformedEvent(f"column {f.short(str(column))} is not text")
        columns = self.mapping.columns
        platform = self.mapping.platform

        def value(name: str, *, limit: int = 2048) -> str | None:
            column = columns.get(name)
            if column is None:
                return None
            if column not in row:
                raise MalformedEvent(f"column {f.short(column)} (mapped to {name}) is not in the file")
            found = f.checked_text(row[column], f"column {column}", limit=limit).strip()
            return found or None

        native_id = value("id")
        if native_id is None:
            raise MalformedEvent(f"column {columns['id']!r} (id) is empty")
        deleted = value("deleted")
        if deleted is not None and deleted.lower() in _TRUE:
            return Deletion(platform, native_id, event.received_at)
        text = value("text", limit=f.MAX_TEXT_CHARS)
        if text is None:
            raise MalformedEvent(f"column {columns['text']!r} (text) is empty")
        author = value("author", limit=512)
        if author is None:
            raise MalformedEvent(f"column {columns['author']!r} (author) is empty")
        created = value("created_at", limit=64)
        created_at = event.received_at
        if created is not None:
            number = created.replace(".", "", 1)
            created_at = (
                f.from_epoch(float(created), "created_at")
                if number.isascii() and number.isdigit()  # float() refuses '²', which isdigit() takes
                else f.parse_time(created, "created_at")
            )
        version = value("version", limit=256) or "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
        lang = value("lang", limit=16)
        url = value("url", limit=4096)
        links = (value("links", limit=100_000) or "").split()
        hashtags = re.split(r"[\s,]+", value("hashtags", limit=10_000) or "")
        return Post(
            platform=platform,
            native_id=native_id,
            version=version,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(platform, author),
            lang=lang,
            langs=(lang,) if lang else (),
            url=url if url and url.startswith(("http://", "https://")) else None,
            links=f.unique(link for link in links if link.startswith(("http://", "https://"))),
            hashtags=f.unique(tag.lstrip("#") for tag in hashtags),
            reply_to=value("reply_to", limit=512),
            quote_of=value("quote_of", limit=512),
            raw=self._redacted(row),
        )

    def _redacted(self, row: dict[str, Any]) -> bytes:
        """The row without the author column and columns that look like names or handles."""
        dropped = {self.mapping.columns["author"], *self.mapping.drop}
        kept = {k: v for k, v in row.items() if k not in dropped and not _PERSONAL_COLUMN.search(k)}
        return json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode()
