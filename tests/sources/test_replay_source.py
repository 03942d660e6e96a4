"""ReplaySource: every line once, exact resume from any cursor, recorded pacing, bad lines kept."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from watchfloor.model import RawEvent
from watchfloor.sources.base import Source
from watchfloor.sources.demo import write_demo_file
from watchfloor.sources.replay import CHUNK_BYTES, ReplaySource

REPO = Path(__file__).resolve().parents[2]
CORPUS = (REPO / ".." / "shared" / "fixtures" / "bluesky" / "jetstream_v1_corpus.jsonl").resolve()


async def collect(source: ReplaySource, cursor: str | None = None, limit: int | None = None) -> list[RawEvent]:
    out: list[RawEvent] = []
    async with aclosing(source.events(cursor)) as events:
        async for event in events:
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
    return out


def event_line(time_us: int, text: str = "x") -> bytes:
    message = {
        "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "time_us": time_us,
        "kind": "commit",
        "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3k",
                   "record": {"text": text}, "cid": "c"},
    }  # fmt: skip
    return json.dumps(message).encode()


@pytest.fixture
def messy_file(tmp_path: Path) -> Path:
    """Blank lines, CRLF endings, a malformed line, non-ASCII text and no final newline."""
    path = tmp_path / "messy.jsonl"
    path.write_bytes(
        event_line(1, "eins")
        + b"\n\n"
        + event_line(2, "zwei ü")
        + b"\r\n   \n"
        + b"{not json at all\n"
        + b"\xff\xfe broken utf-8\n"
        + event_line(3, "drei")
    )
    return path


def test_implements_the_source_protocol(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"")
    source = ReplaySource(path)
    assert isinstance(source, Source)
    assert source.platform == "bluesky"
    assert source.name == f"replay:{path.resolve()}"
    assert ReplaySource(path, name="mine").name == "mine"
    with pytest.raises(ValueError, match="speed"):
        ReplaySource(path, speed="slow")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_yields_every_line_of_the_corpus() -> None:
    if not CORPUS.is_file():
        pytest.skip(f"the shared fixture {CORPUS} is missing")
    events = await collect(ReplaySource(CORPUS))
    lines = [line for line in CORPUS.read_bytes().splitlines() if line.strip()]
    assert [e.payload for e in events] == lines
    assert events[-1].cursor == str(CORPUS.stat().st_size)
    assert all(e.platform == "bluesky" and e.source == f"replay:{CORPUS}" for e in events)


@pytest.mark.asyncio
async def test_messy_lines_and_cursors(messy_file: Path) -> None:
    events = await collect(ReplaySource(messy_file))
    assert [e.payload for e in events] == [
        event_line(1, "eins"),
        event_line(2, "zwei ü"),
        b"{not json at all",  # malformed lines are yielded: they belong in dead letters
        b"\xff\xfe broken utf-8",
        event_line(3, "drei"),
    ]
    data = messy_file.read_bytes()
    for event in events:
        end = int(event.cursor)
        assert data[:end].rstrip(b"\r\n").endswith(event.payload)  # the cursor is just after the line
    assert events[-1].cursor == str(len(data))


@pytest.mark.asyncio
async def test_resume_from_every_cursor_loses_and_repeats_nothing(messy_file: Path) -> None:
    source = ReplaySource(messy_file)
    everything = await collect(source)
    for k, event in enumerate(everything):
        rest = await collect(source, event.cursor)
        assert [e.payload for e in rest] == [e.payload for e in everything[k + 1 :]]
        assert [e.cursor for e in rest] == [e.cursor for e in everything[k + 1 :]]
    assert [e.payload for e in await collect(source, "0")] == [e.payload for e in everything]
    assert await collect(source, str(10**9)) == []


@pytest.mark.asyncio
async def test_stop_and_resume_over_chunk_boundaries(tmp_path: Path) -> None:
    path = write_demo_file(tmp_path / "big.jsonl", 3000, seed=3)
    assert path.stat().st_size > 3 * CHUNK_BYTES
    lines = path.read_bytes().splitlines()
    source = ReplaySource(path)
    resumed: list[RawEvent] = []
    cursor = None
    for stop_after in (1, 777, 1500, 10_000):
        part = await collect(source, cursor, limit=stop_after)
        resumed += part
        cursor = part[-1].cursor if part else cursor
    assert [e.payload for e in resumed] == lines
    assert resumed[-1].cursor == str(path.stat().st_size)


@pytest.mark.parametrize("cursor", ["-1", "abc", "1.5", " 3", "٣"])
@pytest.mark.asyncio
async def test_bad_cursors_are_refused(messy_file: Path, cursor: str) -> None:
    with pytest.raises(ValueError, match="byte offset"):
        await collect(ReplaySource(messy_file), cursor)


@pytest.mark.asyncio
async def test_recorded_speed_follows_time_us(tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    base = 1_783_175_888_000_000
    path.write_bytes(b"\n".join(event_line(base + k * 100_000) for k in range(3)) + b"\n")
    started = time.monotonic()
    events = await collect(ReplaySource(path, speed="recorded"))
    assert len(events) == 3
    assert time.monotonic() - started >= 0.15  # two gaps of 100 ms


@pytest.mark.asyncio
async def test_recorded_speed_clamps_gaps_and_lets_bad_lines_through(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    base = 1_783_175_888_000_000
    lines = [
        event_line(base),
        event_line(base + 3_600_000_000),  # an hour later: clamped to max_gap_s
        b"garbage",  # no time: no sleep
        event_line(base - 60_000_000),  # back in time: no sleep
        event_line(base + 3_600_050_000),
    ]
    path.write_bytes(b"\n".join(lines))
    started = time.monotonic()
    events = await collect(ReplaySource(path, speed="recorded", max_gap_s=0.05))
    elapsed = time.monotonic() - started
    assert [e.payload for e in events] == lines
    assert 0.05 <= elapsed < 5


@pytest.mark.asyncio
async def test_reading_a_big_file_leaves_the_event_loop_free(tmp_path: Path) -> None:
    path = write_demo_file(tmp_path / "big.jsonl", 4000, seed=5)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    count = len(await collect(ReplaySource(path)))  # consumes without awaiting anything else
    done.set()
    await task
    assert count == 4000
    assert ticks > 4
