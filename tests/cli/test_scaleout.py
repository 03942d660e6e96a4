"""The scale-out deployment as real processes: `watchfloor ingest`, `watchfloor worker` and
`watchfloor web` against a real NATS JetStream server and a real store, on loopback.

- the three processes together: a replay ends with exactly the alerts `watchfloor run`
  raises, visible through the web process's JSON API; /healthz, /readyz and /metrics answer;
- a worker killed (kill -9) while its commit is held up: nothing was acknowledged, the
  events come back and are stored once;
- ingest and worker killed at random points: the saved cursor never goes backwards and the
  final store equals the expected set exactly."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js.errors import NotFoundError
from tests.processes import Processes

from watchfloor.governance.passwords import hash_password
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Role, User, utcnow
from watchfloor.pipeline.bus import BusSettings
from watchfloor.pipeline.bus_nats import NatsBus
from watchfloor.pipeline.ingest import BusPublisher
from watchfloor.pipeline.runner import Pipeline
from watchfloor.pipeline.worker import Worker
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import Store, open_store
from watchfloor.web.tokens import create_token

CLI = [sys.executable, "-m", "watchfloor"]
Key = tuple[str, str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment(Processes):
    """One WATCHFLOOR_HOME on a SQLite store and a bus prefix, and the processes started on it."""

    def __init__(self, home: Path, nats_url: str, prefix: str) -> None:
        super().__init__(home, {"WATCHFLOOR_BUS": nats_url, "WATCHFLOOR_BUS_PREFIX": prefix})
        self.nats_url, self.prefix = nats_url, prefix

    def store(self) -> Store:
        return open_store(f"sqlite:///{self.home / 'watchfloor.db'}")


@pytest.fixture
def deployment(tmp_path: Path, nats_url: str, bus_prefix: str) -> Iterator[Deployment]:
    d = Deployment(tmp_path / "var", nats_url, bus_prefix)
    d.run("init", "--demo-watches")
    yield d
    d.stop_all()


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, sqlite3.OperationalError, ValueError, KeyError):
            value = None
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def get(url: str, **kw: Any) -> httpx.Response:
    return httpx.get(url, timeout=5, **kw)


@dataclass(frozen=True)
class Expected:
    """What `watchfloor run` raises for a recording: every alert's key, and the native ids of
    the posts the recording itself deletes later."""

    alerts: list[Key]
    deleted: frozenset[str]

    def check(self, store: Store, *, in_order: bool) -> None:
        """Processed in the stream's order, the store holds exactly these alerts. After a
        redelivery (a worker died), a post's creation can come after its own deletion: the
        deletion's tombstone then keeps it (and its alert) out; and an edit the stream sends
        after the deletion can come before it: its alert stays, its post is removed — by
        design (docs/deploy.md). Only alerts of posts the stream deletes may be missing or
        extra, and none of those posts is kept."""
        actual = alert_keys(store)
        assert len(actual) == len(set(actual)), "an alert was stored twice"
        if in_order:
            assert actual == self.alerts
            return
        missing = set(self.alerts) - set(actual)
        extra = sorted(k for k in set(actual) - set(self.alerts) if k[2] not in self.deleted)
        assert not extra, f"unexpected alerts: {extra[:5]}"
        assert {key[2] for key in missing} <= self.deleted, f"alerts lost: {sorted(missing)[:5]}"
        kept = [v.alert.post.native_id for v in store.list_alerts(limit=1_000_000) if v.post is not None]
        assert not self.deleted & set(kept), "a post the stream deleted is still stored"


def expected_alerts(home_store: Store, recording: Path, tmp_path: Path) -> Expected:
    """Replays the recording through `watchfloor run`'s pipeline under the same watches."""
    oracle = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    try:
        for watch in home_store.list_watches():
            oracle.add_watch(replace(watch, id=None))
        normaliser = JetstreamNormaliser(HmacPseudonymiser(b"o" * 32))
        asyncio.run(Pipeline(ReplaySource(recording), normaliser, oracle, batch_interval_s=0.01).run())
        views = oracle.list_alerts(limit=1_000_000)
        return Expected(alert_keys(oracle), frozenset(v.alert.post.native_id for v in views if v.post is None))
    finally:
        oracle.close()


def alert_keys(store: Store) -> list[Key]:
    """(watch, platform, native id, version) of every alert (its post may be gone since:
    retention, run by the worker holding the duties, removes old matched posts)."""
    keys, after = [], 0
    while views := store.list_alerts(after_id=after, limit=500):
        keys += [(v.watch_name, v.alert.post.platform, v.alert.post.native_id, v.alert.post.version) for v in views]
        after = views[-1].alert.id or after
    return sorted(keys)


def api_alerts(base: str, token: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    while True:
        page = get(f"{base}/api/alerts", params={"after_id": alerts[-1]["id"] if alerts else 0, "limit": 500},
                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        page.raise_for_status()
        batch = page.json()["alerts"]
        if not batch:
            return alerts
        alerts += batch


def metric(text: str, name: str) -> float:
    """The value of one sample line (``name`` includes its labels, as printed)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_worker_and_web_processes_end_with_the_alerts_in_the_api(deployment: Deployment, tmp_path: Path) -> None:
    recording = tmp_path / "events.jsonl"
    deployment.run("demo", "record", str(recording), "--count", "3000", "--hit-share", "0.3")
    store = deployment.store()
    try:
        expected = expected_alerts(store, recording, tmp_path)
        expected_total = len(expected.alerts)
        assert expected_total
        user = User("ana", Role.analyst, hash_password("a long enough password"))
        store.add_user(user)
        token, _ = create_token(store, user, name="test", scopes=["read_alerts"], days=1, now=utcnow())
    finally:
        store.close()
    web_port, worker_port, ingest_port = free_port(), free_port(), free_port()
    web = deployment.start("web", "--port", str(web_port))
    worker = deployment.start("worker", "--metrics-port", str(worker_port), "--batch-size", "200")
    base, worker_base = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
    wait_for(lambda: get(f"{base}/readyz").status_code == 200, 60, "the web process to be ready", web)
    wait_for(lambda: get(f"{worker_base}/healthz").json()["ok"], 60, "the worker to be connected", worker)

    ingest = deployment.start("ingest", "--replay", str(recording), "--metrics-port", str(ingest_port))
    assert ingest.wait(timeout=180) == 0, deployment.log_of(ingest)
    assert "stopped: 3,000 events confirmed by the bus" in deployment.log_of(ingest)
    alerts = wait_for(
        lambda: (a := api_alerts(base, token)) and len(a) >= expected_total and a, 180, "every alert in the API", worker
    )
    store = deployment.store()
    try:
        expected.check(store, in_order=True)  # one worker, no failure: exactly what `watchfloor run` raises
        stored = {v.alert.id: v.watch_name for v in store.list_alerts(limit=10_000)}
    finally:
        store.close()
    assert {a["id"]: a["watch_name"] for a in alerts} == stored  # and the web process shows every one

    health = get(f"{worker_base}/healthz").json()
    assert health["role"] == "worker" and health["events"] == 3000 and health["alerts"] == expected_total
    assert health["duties"] is True  # the only worker holds the duties lease
    worker_metrics = get(f"{worker_base}/metrics").text
    assert metric(worker_metrics, 'watchfloor_events_consumed_total{platform="bluesky"}') == 3000
    assert metric(worker_metrics, "watchfloor_alerts_total") == expected_total
    assert metric(worker_metrics, "watchfloor_commit_seconds_count") >= 1
    assert "watchfloor_consumer_pending" in worker_metrics and "process_resident_memory_bytes" in worker_metrics
    # the web process: liveness, readiness (store and bus), metrics, and live wake-ups from the worker
    assert get(f"{base}/healthz").json() == {"ok": True}
    assert get(f"{base}/readyz").json() == {"ok": True, "checks": {"store": "ok", "bus": "ok"}}
    web_metrics = get(f"{base}/metrics").text
    assert metric(web_metrics, "watchfloor_store_alerts") == expected_total
    assert metric(web_metrics, "watchfloor_web_alert_wakeups_total") >= 1
    deployment.stop_all()
    assert (web.returncode, worker.returncode) == (0, 0), deployment.log_of(worker)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_metrics_and_health_show_its_state(deployment: Deployment) -> None:
    port = free_port()
    ingest = deployment.start("ingest", "--source", "demo", "--rate", "300", "--metrics-port", str(port))
    base = f"http://127.0.0.1:{port}"
    state = wait_for(
        lambda: (h := get(f"{base}/healthz").json())["sources"].get("demo", {}).get("saved_cursor") and h,
        60, "a saved cursor", ingest,
    )  # fmt: skip
    assert state["ok"] is True and state["role"] == "ingest"
    published = metric(get(f"{base}/metrics").text, 'watchfloor_events_published_total{platform="bluesky"}')
    assert published >= int(state["sources"]["demo"]["saved_cursor"]) > 0
    ingest.send_signal(signal.SIGTERM)
    assert ingest.wait(timeout=60) == 0
    store = deployment.store()
    try:
        saved = int(store.get_cursor("demo") or 0)
    finally:
        store.close()
    assert saved >= published  # a graceful stop saves the cursor of everything confirmed


def test_worker_and_ingest_refuse_the_in_process_bus(tmp_path: Path) -> None:
    env = {**os.environ, "WATCHFLOOR_HOME": str(tmp_path / "var"), "WATCHFLOOR_BUS": "memory://"}
    subprocess.run([*CLI, "init"], env=env, capture_output=True, check=True)
    for command in ("worker", "ingest"):
        done = subprocess.run([*CLI, command], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert "needs a bus that connects processes: set WATCHFLOOR_BUS=nats://" in " ".join(done.stderr.split())


async def _publish(nats_url: str, prefix: str, recording: Path, cursor_store: Path) -> None:
    bus = NatsBus(nats_url, BusSettings(prefix=prefix))
    await bus.connect()
    store = open_store(f"sqlite:///{cursor_store}")
    try:
        await BusPublisher(ReplaySource(recording), bus, store).run()
    finally:
        store.close()
        await bus.close()


def consumer_state(d: Deployment) -> tuple[int, int]:
    """(events not yet delivered, events delivered and not acknowledged) of the workers' consumer."""

    async def ask() -> tuple[int, int]:
        bus = NatsBus(d.nats_url, BusSettings(prefix=d.prefix))
        await bus.connect()
        try:
            info = await bus.js.consumer_info(f"{d.prefix.upper()}_BLUESKY", "workers")
            return int(info.num_pending), int(info.num_ack_pending)
        except NotFoundError:  # no worker has created the consumer yet
            return -1, -1
        finally:
            await bus.close()

    return asyncio.run(ask())


def worker_idle(d: Deployment) -> bool:
    """Every event on the bus is acknowledged, hence committed (the acks follow the commits)."""
    return consumer_state(d) == (0, 0)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_worker_killed_before_its_commit_acknowledged_nothing(deployment: Deployment, tmp_path: Path) -> None:
    recording = tmp_path / "events.jsonl"
    deployment.run("demo", "record", str(recording), "--count", "400", "--hit-share", "0.5")
    store = deployment.store()
    try:
        expected = expected_alerts(store, recording, tmp_path)
    finally:
        store.close()
    # Every event is in the stream before the worker starts, so its first fetch (up to 500)
    # takes all 400 at once: a worker stuck on its first commit fetches nothing more.
    asyncio.run(_publish(deployment.nats_url, deployment.prefix, recording, tmp_path / "cursor.db"))
    lock = sqlite3.connect(deployment.home / "watchfloor.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the store is held up: the worker cannot commit (WAL: it can read)
    try:
        port = free_port()
        worker = deployment.start(
            "worker", "--ack-wait", "3", "--batch-size", "500", "--no-duties", "--metrics-port", str(port)
        )
        wait_for(lambda: consumer_state(deployment) == (0, 400), 60, "the worker to take every event", worker)
        time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)  # dies holding 400 processed, uncommitted events
        worker.wait(timeout=30)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    store = deployment.store()
    try:
        assert store.counts().alerts == 0  # nothing was committed ...
        survivor = Worker(
            NatsBus(deployment.nats_url, BusSettings(prefix=deployment.prefix, ack_wait_s=3)),
            store,
            {"bluesky": JetstreamNormaliser(HmacPseudonymiser(b"s" * 32))},
        )

        async def finish() -> None:
            await survivor.bus.connect()
            stop = asyncio.Event()
            run = asyncio.create_task(survivor.run(stop))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while survivor.stats.events < 400 and loop.time() < deadline:
                await asyncio.sleep(0.1)
            stop.set()
            await run
            await survivor.bus.close()

        asyncio.run(finish())
        assert survivor.redeliveries == 400  # ... and nothing acknowledged: every event came back
        expected.check(store, in_order=True)  # each stored once (all came back, in their order)
    finally:
        store.close()


def _saved_cursor(home: Path) -> int:
    conn = sqlite3.connect(home / "watchfloor.db", timeout=30)
    try:
        row = conn.execute("SELECT cursor FROM source_state WHERE cursor IS NOT NULL").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_of_ingest_and_worker_loses_and_doubles_nothing(deployment: Deployment, tmp_path: Path) -> None:
    recording = tmp_path / "events.jsonl"
    deployment.run("demo", "record", str(recording), "--count", "60000", "--hit-share", "0.1")
    size = recording.stat().st_size
    store = deployment.store()
    try:
        expected = expected_alerts(store, recording, tmp_path)
    finally:
        store.close()
    rng = random.Random(20261125)
    worker_args = ("worker", "--ack-wait", "3", "--batch-size", "300")
    worker = deployment.start(*worker_args)
    cursors: list[int] = []
    kills = 0
    for trial in range(8):
        before = _saved_cursor(deployment.home)
        ingest = deployment.start("ingest", "--replay", str(recording), "--cursor-every", "0.2")
        wait_for(
            lambda before=before, ingest=ingest: _saved_cursor(deployment.home) > before or ingest.poll() is not None,
            120, "a saved cursor",
        )  # fmt: skip
        time.sleep(rng.uniform(0.0, 1.0))
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGKILL)
            kills += 1
        ingest.wait(timeout=30)
        cursors.append(_saved_cursor(deployment.home))
        if trial % 3 == 1:  # now and then the worker dies too, mid-batch
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            worker = deployment.start(*worker_args)
        if cursors[-1] == size:
            break
    assert kills >= 3, f"only {kills} ingest runs were killed before the replay ended"
    assert cursors == sorted(cursors), f"the saved cursor went backwards: {cursors}"
    assert any(0 < c < size for c in cursors)
    final = deployment.start("ingest", "--replay", str(recording))
    assert final.wait(timeout=300) == 0, deployment.log_of(final)
    assert _saved_cursor(deployment.home) == size
    store = deployment.store()
    try:
        wait_for(lambda: worker_idle(deployment), 300, "the worker to finish the stream", worker)
        expected.check(store, in_order=False)  # nothing lost, nothing doubled
    finally:
        store.close()
