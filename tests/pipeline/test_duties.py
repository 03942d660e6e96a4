"""The deployment's duties (floor fan-out, SLA, notifications, governance) run in exactly one
worker at a time, and move to another when that one stops renewing its lease."""

from __future__ import annotations

import asyncio
from pathlib import Path

from watchfloor.config import Settings
from watchfloor.pipeline.bus_memory import MemoryBus
from watchfloor.pipeline.duties import DutyHolder
from watchfloor.store import Store


async def until(condition, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_one_holder_at_a_time_and_a_takeover(tmp_path: Path, store: Store) -> None:
    settings = Settings(home=tmp_path, db_url=store.url)
    bus = MemoryBus()  # the same lease semantics as the NATS key-value lease (tests/pipeline/test_bus_nats.py)
    first = DutyHolder(settings, store, bus, ttl_s=0.6, holder="first")
    second = DutyHolder(settings, store, bus, ttl_s=0.6, holder="second")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    runs = [asyncio.create_task(first.run(stop_first))]
    await until(lambda: first.holding)
    runs.append(asyncio.create_task(second.run(stop_second)))
    await asyncio.sleep(1.0)  # several renewals: the second never gets the lease meanwhile
    assert (first.holding, second.holding) == (True, False)
    stop_first.set()  # the first stops (and releases): the second takes over
    await runs[0]
    assert not first.holding
    await until(lambda: second.holding)
    stop_second.set()
    await runs[1]
    assert not second.holding
