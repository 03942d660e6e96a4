"""Server-sent events (the ``text/event-stream`` format), read incrementally from bytes.

Implements the parsing rules of the WHATWG HTML standard, section 9.2.6: lines end in
CRLF, LF or CR; ``field: value`` (one optional space after the colon); lines starting
with ``:`` are comments (servers send them as heartbeats); a blank line dispatches the
event; several ``data`` lines are joined with ``\\n``. An event bigger than
``max_event_bytes`` is dropped and counted in :attr:`SseParser.dropped`, so a broken or
hostile server cannot grow memory without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "message" when the server named none
    data: str
    id: str | None = None


class SseParser:
    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.dropped = 0
        self.comments = 0
        self._buffer = bytearray()
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._id: str | None = None
        self._oversized = False
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by ``chunk``."""
        out: list[SseEvent] = []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._after_cr = False
        self._buffer += chunk
        start = 0
        buffer = self._buffer
        length = len(buffer)
        while start < length:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start)
            if lf == -1 and cr == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                end, next_start = cr, cr + 1
                if next_start < length and buffer[next_start] == 0x0A:
                    next_start += 1
                elif next_start == length:
                    self._after_cr = True
            else:
                end, next_start = lf, lf + 1
            line = bytes(buffer[start:end])
            start = next_start
            event = self._line(line)
            if event is not None:
                out.append(event)
        del buffer[:start]
        if len(buffer) > self.max_event_bytes:  # one endless line
            buffer.clear()
            self._oversized = True
        return out

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            return self._dispatch()
        if raw.startswith(b":"):
            self.comments += 1
            return None
        line = raw.decode("utf-8", errors="replace")
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(raw)
            if self._size > self.max_event_bytes:
                self._oversized = True
                self._data.clear()
            elif not self._oversized:
                self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        return None  # "retry" and unknown fields are ignored

    def _dispatch(self) -> SseEvent | None:
        event: SseEvent | None = None
        if self._oversized:
            self.dropped += 1
        elif self._data:
            event = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event, self._data, self._size, self._oversized = "", [], 0, False
        return event
