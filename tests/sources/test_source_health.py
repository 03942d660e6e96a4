"""Health, gaps, backoff, rate-limit headers, credentials and configured sources: the typed
health object, the SQLite repository behind it, and the embedded supervisor that runs one
pipeline per configured source, follows pause/resume and persists health and gaps."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.config import Settings
from watchfloor.embedded import SourceRun, SourceSupervisor
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent, utcnow
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import SourceFailed
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.config import (
    Secret,
    SourceConfig,
    SourceConfigError,
    check_name,
    credentials_for,
    credentials_path,
    forget_credentials,
    save_credentials,
)
from watchfloor.sources.demo import demo_payload
from watchfloor.sources.health import SourceHealth, SourceStatus, redact
from watchfloor.sources.http import rate_limit_reset_s, retry_after_s
from watchfloor.store import StoreError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_health_follows_what_happens() -> None:
    seen = []
    health = SourceHealth("s", "bluesky", secrets=["hunter2-token"], clock=lambda: NOW)
    health.on_change.append(seen.append)
    assert health.snapshot().status is SourceStatus.starting
    health.connecting("wss://h/subscribe")
    health.connected("wss://h/subscribe")
    health.disconnected("boom with hunter2-token inside")
    health.connected()
    gap = health.gap("missed some", since=NOW - timedelta(minutes=1), until=NOW, cursor="7")
    snapshot = health.snapshot()
    assert snapshot.status is SourceStatus.connected and snapshot.reconnects == 1 and snapshot.errors == 1
    assert snapshot.last_error == "boom with *** inside" and snapshot.gaps == 1
    assert snapshot.connected_since == NOW and snapshot.endpoint == "wss://h/subscribe"
    assert health.take_gaps() == [gap] and health.take_gaps() == []
    health.rate_limited(NOW + timedelta(seconds=30), "slow down")
    assert health.snapshot().rate_limited_until == NOW + timedelta(seconds=30)
    health.failed("bad key")
    assert health.snapshot().status is SourceStatus.failed and len(seen) == 7  # one per change


def test_redact_hides_credentials() -> None:
    text = (
        "GET https://api.example/v3/x?part=a&key=AIzaSECRET&access_token=tok123 failed; "
        "Authorization: Bearer abcdefghijkl; proxy http://user:pass@proxy.example:3128; api_hash=deadbeef"
    )
    clean = redact(text, ["tok123"])
    for secret in ("AIzaSECRET", "tok123", "abcdefghijkl", "user:pass", "deadbeef"):
        assert secret not in clean
    assert "part=a" in clean and "key=***" in clean


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    backoff = Backoff(base_s=1.0, cap_s=10.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(10.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_rate_limit_headers() -> None:
    assert retry_after_s({"retry-after": "120"}, NOW) == 120
    assert retry_after_s({"retry-after": "Wed, 25 Nov 2026 12:01:00 GMT"}, NOW) == 60
    assert retry_after_s({"retry-after": "soon"}, NOW) is None and retry_after_s(None, NOW) is None
    assert rate_limit_reset_s({"x-ratelimit-reset": "42"}, NOW) == 42  # Reddit: seconds
    assert rate_limit_reset_s({"x-ratelimit-reset": "2026-11-25T12:05:00.000Z"}, NOW) == 300  # Mastodon
    assert rate_limit_reset_s({"x-ratelimit-reset": str(int(NOW.timestamp()) + 90)}, NOW) == 90  # epoch
    assert rate_limit_reset_s({"x-ratelimit-reset": "nan"}, NOW) is None


def test_credentials_come_from_env_then_file(tmp_path: Path) -> None:
    path = save_credentials(tmp_path, "my-reddit", {"client_id": "file-id", "client_secret": "file-secret"})
    assert path == credentials_path(tmp_path) and oct(path.stat().st_mode & 0o777) == "0o600"
    found = credentials_for("my-reddit", "reddit", tmp_path, env={})
    assert found["client_secret"].reveal() == "file-secret" and repr(found["client_secret"]) == "Secret('***')"
    env = {"WATCHFLOOR_REDDIT_CLIENT_SECRET": "platform", "WATCHFLOOR_SOURCE_MY_REDDIT_CLIENT_ID": "mine"}
    found = credentials_for("my-reddit", "reddit", tmp_path, env=env)
    assert found["client_id"].reveal() == "mine" and found["client_secret"].reveal() == "platform"
    assert f"{found}".count("***") == 2 and "mine" not in f"{found}"
    forget_credentials(tmp_path, "my-reddit")
    assert credentials_for("my-reddit", "reddit", tmp_path, env={}) == {}
    assert Secret("a") == Secret("a") and not Secret("")
    with pytest.raises(SourceConfigError):
        check_name("Bad Name")
    with pytest.raises(SourceConfigError):
        check_name("demo")


def test_the_store_keeps_sources_health_and_gaps(store) -> None:
    assert store.migrate() >= 2
    added = store.add_source(SourceConfig("feeds", "rss", {"feeds": ["https://a.example/f"]}))
    assert added.settings == {"feeds": ["https://a.example/f"]} and added.updated_at is not None
    with pytest.raises(StoreError, match="exists"):
        store.add_source(SourceConfig("feeds", "rss", {}))
    store.set_source_paused("feeds", True)
    assert store.get_source("feeds").paused and [c.name for c in store.list_sources()] == ["feeds"]
    with pytest.raises(StoreError):
        store.set_source_paused("nope", True)
    health = SourceHealth("feeds", "rss", clock=lambda: NOW)
    health.connected("https://a.example/f")
    health.quota(10, 100)
    store.record_source_health(health.snapshot())
    health.disconnected("HTTP 503")
    store.record_source_health(health.snapshot())
    (stored,) = store.source_health()
    assert stored == health.snapshot()
    gap = store.record_gap(health.gap("lost", since=NOW - timedelta(seconds=5), until=NOW))
    assert gap.id and store.list_gaps() == [gap] and store.list_gaps(source="other") == []
    assert store.list_gaps(since=NOW + timedelta(seconds=1)) == []
    store.remove_source("feeds")
    assert store.get_source("feeds") is None


# ----------------------------------------------------------------------------- the supervisor


class ScriptedSource:
    """Demo events from a counter, with a health object and a scripted failure or gap."""

    platform = "bluesky"

    def __init__(self, name: str, *, fail: BaseException | None = None, gap: bool = False) -> None:
        self.name = name
        self.health = SourceHealth(name, "bluesky")
        self.fail, self.gap = fail, gap

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        index = int(cursor or 0)
        self.health.connected("scripted://")
        if self.gap:
            self.health.gap("the server could not resume", since=utcnow() - timedelta(seconds=3), until=utcnow())
        while True:
            if self.fail is not None and index >= 5:
                raise self.fail
            time_us = int(utcnow().timestamp() * 1_000_000)
            yield RawEvent(self.name, "bluesky", str(index + 1), demo_payload(index, time_us=time_us), utcnow())
            index += 1
            await asyncio.sleep(0.002)


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def test_supervisor_follows_pause_and_resume_and_keeps_health(store, tmp_path: Path) -> None:
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"s" * 32))
    built: list[str] = []

    def build(config: SourceConfig) -> SourceRun:
        built.append(config.name)
        return SourceRun(ScriptedSource(config.name, gap=config.name == "gappy"), normaliser)

    store.add_source(SourceConfig("steady", "bluesky", {}))
    store.add_source(SourceConfig("gappy", "bluesky", {}))
    store.add_source(SourceConfig("sleeping", "bluesky", {}, paused=True))
    settings = Settings(home=tmp_path, db_url=store.url, batch_interval_s=0.02)
    supervisor = SourceSupervisor(settings, store, build=build, check_every_s=0.05, health_every_s=0.05)
    stop = asyncio.Event()
    runner = asyncio.create_task(supervisor.run(stop))
    try:
        await wait_for(lambda: {h.source for h in store.source_health()} == {"steady", "gappy"})
        await wait_for(lambda: len(store.list_gaps(source="gappy")) == 1)
        assert sorted(built) == ["gappy", "steady"]  # the paused one is not started
        store.set_source_paused("steady", True)
        await wait_for(lambda: "steady" not in supervisor.running)
        await wait_for(lambda: {h.source: h.status for h in store.source_health()}["steady"] is SourceStatus.paused)
        cursor = int(store.get_cursor("steady"))
        assert cursor > 0
        store.set_source_paused("steady", False)
        await wait_for(lambda: "steady" in supervisor.running)
        await wait_for(lambda: int(store.get_cursor("steady")) > cursor)
    finally:
        stop.set()
        stats = await asyncio.wait_for(runner, 10)
    assert stats.events > 0 and stats.dead_letters == 0
    assert {h.source: h.status for h in store.source_health()}["gappy"] is SourceStatus.stopped


async def test_supervisor_restarts_what_crashed_but_not_what_cannot_work(store, tmp_path: Path) -> None:
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"s" * 32))
    builds: dict[str, int] = {}

    def build(config: SourceConfig) -> SourceRun:
        builds[config.name] = builds.get(config.name, 0) + 1
        if config.name == "unbuildable":
            raise SourceConfigError("source 'unbuildable': setting 'feeds' must be a list of strings")
        failure = RuntimeError("socket exploded") if config.name == "crashy" else SourceFailed("bad credentials")
        return SourceRun(ScriptedSource(config.name, fail=failure), normaliser)

    for name in ("crashy", "refused", "unbuildable"):
        store.add_source(SourceConfig(name, "bluesky", {}))
    settings = Settings(home=tmp_path, db_url=store.url, batch_interval_s=0.02)
    supervisor = SourceSupervisor(settings, store, build=build, check_every_s=0.02, health_every_s=0.05)
    for waiting_name in ("crashy",):
        supervisor.waiting.pop(waiting_name, None)
    stop = asyncio.Event()
    runner = asyncio.create_task(supervisor.run(stop))
    try:
        await wait_for(lambda: len({h.source for h in store.source_health()}) == 3)
        await wait_for(lambda: "crashy" in supervisor.waiting)
        supervisor.waiting["crashy"].until = 0.0  # skip the backoff wait
        await wait_for(lambda: builds.get("crashy", 0) >= 2)
        await asyncio.sleep(0.2)
        assert builds["refused"] == 1 and builds["unbuildable"] == 1  # waits for a configuration change
        health = {h.source: h for h in store.source_health()}
        assert health["refused"].status is SourceStatus.failed and health["refused"].last_error == "bad credentials"
        assert "must be a list" in (health["unbuildable"].last_error or "")
        store.set_source_paused("refused", True)
        store.set_source_paused("refused", False)  # a configuration change: tried again
        await wait_for(lambda: builds["refused"] >= 2)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)


def test_no_test_leaves_credentials_in_the_environment() -> None:
    assert not any(k.startswith("WATCHFLOOR_SOURCE_") for k in os.environ)
