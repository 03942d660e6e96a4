"""Replay a recorded Jetstream v1 JSONL file as a source: one event per non-empty line.

The cursor is the byte offset just after a line, so resuming seeks straight to the
next line. ``speed="recorded"`` sleeps between events as the recording's ``time_us``
says (gaps clamped to ``[0, max_gap_s]``); ``speed="fast"`` replays as fast as the
consumer reads. Lines that cannot be parsed are yielded anyway, so they reach the
normaliser and land in dead letters with a reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Literal

from watchfloor.model import RawEvent, utcnow

Speed = Literal["recorded", "fast"]

CHUNK_BYTES = 256 * 1024
YIELD_EVERY = 500  # lines between explicit hand-backs to the event loop in fast mode
RESYNC_AFTER_S = 1.0  # a consumer this far behind the recorded pace is not made to catch up


class ReplaySource:
    """A finite source reading a Jetstream v1 JSONL recording (platform ``bluesky``)."""

    platform = "bluesky"

    def __init__(
        self,
        path: str | Path,
        *,
        speed: Speed = "fast",
        name: str | None = None,
        max_gap_s: float = 5.0,
    ) -> None:
        if speed not in ("recorded", "fast"):
            raise ValueError(f"speed must be 'recorded' or 'fast', not {speed!r}")
        self.path = Path(path).resolve()
        self.speed: Speed = speed
        self.name = name or f"replay:{self.path}"
        self.max_gap_s = max_gap_s

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Yield the events after ``cursor`` (a byte offset) up to the end of the file."""
        pacer = _Pacer(self.max_gap_s) if self.speed == "recorded" else None
        count = 0
        async with aclosing(read_lines(self.path, parse_offset(cursor))) as lines:
            async for line, end in lines:
                if pacer is not None:
                    await pacer.wait_for(line)
                elif count % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
                count += 1
                yield RawEvent(
                    source=self.name,
                    platform=self.platform,
                    cursor=str(end),
                    payload=line,
                    received_at=utcnow(),
                )


def parse_offset(cursor: str | None) -> int:
    """The byte offset a replay cursor stands for (0 for ``None``)."""
    if cursor is None:
        return 0
    if not cursor.isascii() or not cursor.isdigit():
        raise ValueError(f"a replay cursor is a byte offset, not {cursor!r}")
    return int(cursor)


async def read_lines(path: Path, offset: int) -> AsyncIterator[tuple[bytes, int]]:
    """Each non-empty line from ``offset`` on, without its line ending, with the offset after it.

    The file is read in chunks in a worker thread, so a big file never blocks the loop.
    A last line without a newline still counts.
    """
    with path.open("rb") as file:
        await asyncio.to_thread(file.seek, offset)
        buffer = bytearray()
        start = offset  # file offset of buffer[0]
        while True:
            chunk = await asyncio.to_thread(file.read, CHUNK_BYTES)
            buffer += chunk
            position = 0
            while (newline := buffer.find(b"\n", position)) != -1:
                line = bytes(buffer[position:newline]).rstrip(b"\r")
                position = newline + 1
                if line.strip():
                    yield line, start + position
            del buffer[:position]
            start += position
            if not chunk:
                break
        if buffer.strip():
            yield bytes(buffer).rstrip(b"\r"), start + len(buffer)


class _Pacer:
    """Sleeps so that events come out spaced as their ``time_us`` says."""

    def __init__(self, max_gap_s: float) -> None:
        self.max_gap_s = max_gap_s
        self.last_time_us: int | None = None
        self.due = 0.0  # monotonic time the next paced event is due

    async def wait_for(self, line: bytes) -> None:
        time_us = _time_us(line)
        if time_us is None:
            return  # malformed or without a time: goes straight through
        now = time.monotonic()
        if self.last_time_us is None or now - self.due > RESYNC_AFTER_S:
            self.due = now
        else:
            gap = (time_us - self.last_time_us) / 1_000_000
            self.due += min(max(gap, 0.0), self.max_gap_s)
        self.last_time_us = time_us
        delay = self.due - now
        await asyncio.sleep(delay if delay > 0 else 0)


def _time_us(line: bytes) -> int | None:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    value = message.get("time_us") if isinstance(message, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
