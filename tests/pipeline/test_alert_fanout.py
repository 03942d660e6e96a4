"""New-alert wake-ups across processes: a `watchfloor web` process on a PostgreSQL store and the
in-process bus hears of alerts committed elsewhere through NOTIFY, at once; over NATS through
the bus (tests/cli/test_scaleout.py runs that with real processes)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx

from watchfloor.config import Settings
from watchfloor.model import Alert, Explanation, PostKey
from watchfloor.pipeline.alert_fanout import Announcer, PostgresAlertFanout, alert_fanout_for
from watchfloor.pipeline.bus_memory import MemoryBus
from watchfloor.scaleout import run_web
from watchfloor.store import IngestResult, open_store

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def result_with_alert(alert_id: int) -> IngestResult:
    alert = Alert(1, PostKey("bluesky", "x", "1"), 0.5, Explanation(()), NOW, NOW, id=alert_id)
    return IngestResult(posts_added=1, alerts_added=[alert], posts_deleted=0, dead_letters_added=0)


def test_the_channel_follows_the_deployment() -> None:
    assert alert_fanout_for("sqlite:///x.db", None) is None  # one process, or polling
    assert alert_fanout_for("sqlite:///x.db", MemoryBus()) is None
    assert isinstance(alert_fanout_for("postgresql://h/db", None), PostgresAlertFanout)
    assert isinstance(alert_fanout_for("postgresql://h/db", MemoryBus()), PostgresAlertFanout)


async def test_notify_reaches_every_listener(pg_url: str) -> None:
    heard: list[asyncio.Queue[int]] = [asyncio.Queue(), asyncio.Queue()]
    listeners = [PostgresAlertFanout(pg_url) for _ in heard]
    for listener, queue in zip(listeners, heard, strict=True):
        await listener.follow(queue.put_nowait)
    announcer = Announcer(PostgresAlertFanout(pg_url)).start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        latest = 0
        while loop.time() < deadline and any(q.empty() for q in heard):  # LISTEN starts in the background
            latest += 1
            announcer.committed(result_with_alert(latest))
            await asyncio.sleep(0.2)
        firsts = [q.get_nowait() for q in heard]
        assert all(1 <= first <= latest for first in firsts)
        announcer.committed(result_with_alert(latest + 1))  # once both listen, every announcement reaches both
        for queue in heard:
            while (got := await asyncio.wait_for(queue.get(), 5)) != latest + 1:
                assert got <= latest
    finally:
        await announcer.stop()
        for listener in listeners:
            await listener.close()


async def test_a_web_process_on_postgresql_wakes_on_notify(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=tmp_path, db_url=pg_url, web_port=port)
    stop = asyncio.Event()
    web = asyncio.create_task(run_web(settings, store, None, stop=stop))
    announcer = Announcer(PostgresAlertFanout(pg_url)).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            wakeups = 0.0
            while wakeups < 1 and loop.time() < deadline:
                announcer.committed(result_with_alert(int(loop.time() * 1000)))
                await asyncio.sleep(0.2)
                try:
                    text = (await client.get("/metrics")).text
                except httpx.HTTPError:
                    continue
                line = next(x for x in text.splitlines() if x.startswith("watchfloor_web_alert_wakeups_total "))
                wakeups = float(line.split()[1])
            assert wakeups >= 1
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"ok": True, "checks": {"store": "ok"}}
    finally:
        await announcer.stop()
        stop.set()
        await web
        store.close()
