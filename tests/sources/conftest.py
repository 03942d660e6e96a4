"""The loopback Jetstream for the source tests: a real websocket on 127.0.0.1.

:class:`JetstreamServer` is a Jetstream v1 ``/subscribe`` websocket replaying a JSONL
  recording with Jetstream's cursor, ``wantedCollections`` and ``compress=true``
  (zstd with the v1 dictionary) semantics, and scripted misbehaviour: refused
  handshakes, connections cut mid-stream, frames cut half-way, garbage frames, a
  retention floor that makes resuming impossible, silence.

HTTP platforms get their loopback servers next to their tests (``test_mastodon_source.py``,
``test_reddit_source.py``, ``test_rss_source.py``, ``test_youtube_source.py``): each
replays its recordings the way the real API pages and rate-limits them.

The suite runs with ``--import-mode=importlib``: tests get these through fixtures.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import zstandard
from aiohttp import web

from watchfloor.sources.jetstream import dictionary, time_us_of

# ----------------------------------------------------------------------------- Jetstream


@dataclass
class JetstreamScript:
    """What the server does on its n-th connection attempt (lists are per attempt)."""

    refuse: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers)
    cut_after: list[int | None] = field(default_factory=list)  # abort after N events
    truncate_after: list[int | None] = field(default_factory=list)  # half a frame after N events, then abort
    floor: int = 0  # index of the oldest event still kept (older cursors are clamped to it)
    inject: dict[int, bytes] = field(default_factory=dict)  # raw message sent before event i (first time)
    silent: bool = False  # accept, then send nothing
    refuse_later: bool = False  # refuse (503) every attempt after the first while this is set
    content_size: bool = True  # write the content size into zstd frame headers


class JetstreamServer:
    def __init__(self, events: list[bytes], script: JetstreamScript | None = None) -> None:
        self.events = events
        self.times = [time_us_of(e) or 0 for e in events]
        self.script = script or JetstreamScript()
        self.requests: list[dict[str, list[str]]] = []
        self.sent: list[int] = []  # events sent per connection
        self._injected: set[int] = set()
        self._runner: web.AppRunner | None = None
        self._compressors: dict[bool, zstandard.ZstdCompressor] = {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    async def start(self) -> JetstreamServer:
        app = web.Application()
        app.router.add_get("/subscribe", self._subscribe)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def compress(self, payload: bytes) -> bytes:
        size = self.script.content_size
        if size not in self._compressors:
            self._compressors[size] = zstandard.ZstdCompressor(dict_data=dictionary(), write_content_size=size)
        return self._compressors[size].compress(payload)

    def start_index(self, cursor: str | None) -> int:
        if not cursor:
            return self.script.floor
        wanted = int(cursor)
        index = next((i for i, t in enumerate(self.times) if t >= wanted), len(self.events))
        return max(index, self.script.floor)

    def wants(self, payload: bytes, collections: list[str]) -> bool:
        if not collections:
            return True
        message = json.loads(payload)
        if message.get("kind") != "commit":
            return True  # identity and account events always come
        collection = message["commit"]["collection"]
        return any(collection == c or (c.endswith(".*") and collection.startswith(c[:-1])) for c in collections)

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        attempt = len(self.requests)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(request.query_string):
            query.setdefault(key, []).append(value)
        self.requests.append(query)
        script = self.script
        if attempt < len(script.refuse):
            status, headers = script.refuse[attempt]
            return web.Response(status=status, headers=headers, text="try later")
        if script.refuse_later and attempt > 0:
            return web.Response(status=503, text="down for maintenance")
        zstd = query.get("compress") == ["true"]
        ws = web.WebSocketResponse(compress=not zstd)
        await ws.prepare(request)
        if script.silent:
            await ws.receive()
            return ws
        cut = script.cut_after[attempt] if attempt < len(script.cut_after) else None
        truncate = script.truncate_after[attempt] if attempt < len(script.truncate_after) else None
        collections = query.get("wantedCollections", [])
        sent = 0
        self.sent.append(0)
        transport = request.transport
        for index in range(self.start_index(query.get("cursor", [None])[0]), len(self.events)):
            if index in script.inject and index not in self._injected:
                self._injected.add(index)
                await ws.send_bytes(script.inject[index])
            payload = self.events[index]
            if not self.wants(payload, collections):
                continue
            if cut is not None and sent >= cut:
                assert transport is not None
                transport.abort()  # no close frame: the connection just dies
                return ws
            if truncate is not None and sent >= truncate:
                assert transport is not None
                transport.write(b"\x82\x7e\x04\x00" + b"\x28\xb5\x2f\xfd" + b"x" * 20)  # says 1024 bytes, sends 24
                await asyncio.sleep(0.01)
                transport.abort()
                return ws
            if zstd:
                await ws.send_bytes(self.compress(payload))
            else:
                await ws.send_str(payload.decode("utf-8"))
            sent += 1
            self.sent[-1] = sent
        async for _ in ws:  # then idle, as a live tail with nothing new
            pass
        return ws


@pytest.fixture
def jetstream_corpus(shared_fixtures: Path) -> list[bytes]:
    path = shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl"
    return [line for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture
async def jetstream_server() -> Any:
    """``await jetstream_server(events, script)`` starts a server; all stop at the end."""
    started: list[JetstreamServer] = []

    async def start(events: list[bytes], script: JetstreamScript | None = None) -> JetstreamServer:
        server = await JetstreamServer(events, script).start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def jetstream_script() -> type[JetstreamScript]:
    return JetstreamScript
