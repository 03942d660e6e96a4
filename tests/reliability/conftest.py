"""The reliability campaign's parts: real processes, a private NATS server and a private
PostgreSQL cluster that the tests stop and start, paced recordings, and the exactness check
against an uninterrupted embedded run (docs/testing.md, "Reliability").

Test modules import the helpers from here (``from tests.reliability.conftest import ...``:
pytest has loaded this module under that name before it imports them)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require
from tests.processes import Processes  # noqa: F401 (the reliability tests import it from here)

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import open_store

CLI = [sys.executable, "-m", "watchfloor"]
NATS_SERVER_BIN = os.environ.get("WATCHFLOOR_TEST_NATS_SERVER", "/usr/sbin/nats-server")
AlertKey = tuple[str, str, str, str]  # watch name, platform, native id, version
PostKey = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy (errors count as not yet); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


# ----------------------------------------------------------------------------- recordings


def paced_recording(path: Path, segments: list[tuple[int, float]], *, hit_share: float = 0.1, seed: int = 7) -> int:
    """A demo recording whose ``time_us`` paces it: ``segments`` of (events, events per
    second), e.g. a steady rate then 25 times that. Replayed with ``--speed recorded`` it
    arrives at those rates. Returns the file's size (the cursor at its end)."""
    count = sum(n for n, _ in segments)
    subprocess.run(
        [*CLI, "demo", "record", str(path), "--count", str(count), "--hit-share", str(hit_share), "--seed", str(seed)],
        check=True, capture_output=True, timeout=300, env={**os.environ, "WATCHFLOOR_HOME": str(path.parent / "rec")},
    )  # fmt: skip
    lines = path.read_bytes().splitlines()
    assert len(lines) == count
    rates = [rate for n, rate in segments for _ in range(n)]
    start = json.loads(lines[0])["time_us"]
    out, t = [], float(start)
    for line, rate in zip(lines, rates, strict=True):
        event = json.loads(line)
        event["time_us"] = int(t)
        t += 1_000_000 / rate
        out.append(json.dumps(event, separators=(",", ":")).encode())
    path.write_bytes(b"\n".join(out) + b"\n")
    return path.stat().st_size


# ----------------------------------------------------------------------------- the exactness check


@dataclass(frozen=True)
class Contents:
    alerts: list[AlertKey]  # sorted, repeats kept (a repeat is a doubled alert)
    posts: list[PostKey]
    cursors: dict[str, str | None]
    failed_dead_letters: int  # "failed N deliveries": events the workers gave up on


def read_contents(url: str) -> Contents:
    """The store's alerts, posts and cursors, read with plain SQL (no repository code)."""
    alerts_sql = (
        "SELECT w.name, a.platform, a.native_id, a.version FROM alerts a JOIN watches w ON w.id = a.watch_id"
    )
    posts_sql = "SELECT platform, native_id, version FROM posts"
    cursors_sql = "SELECT source, cursor FROM source_state"
    failed_sql = "SELECT COUNT(*) FROM dead_letters WHERE reason LIKE 'failed %'"
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
        try:
            rows = [conn.execute(q).fetchall() for q in (alerts_sql, posts_sql, cursors_sql, failed_sql)]
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url, connect_timeout=10) as conn:
            rows = [conn.execute(q).fetchall() for q in (alerts_sql, posts_sql, cursors_sql, failed_sql)]  # type: ignore[arg-type]
    alerts, posts, cursors, failed = rows
    return Contents(
        sorted(tuple(r) for r in alerts),  # type: ignore[misc]
        sorted(tuple(r) for r in posts),  # type: ignore[misc]
        {r[0]: r[1] for r in cursors},
        int(failed[0][0]),
    )


@dataclass(frozen=True)
class Expected:
    """What an uninterrupted embedded run (pipeline/runner.py on SQLite) stores for a recording."""

    alerts: list[AlertKey]
    posts: list[PostKey]
    deleted: frozenset[str]  # native ids of posts the recording itself deletes

    def check(self, actual: Contents, *, in_order: bool) -> None:
        """Nothing doubled; the posts exactly; the alerts exactly, except (``in_order=False``,
        after redeliveries) alerts of posts the stream itself deletes: a delete processed
        before its create (or edit) leaves a tombstone that keeps that version and its alert
        out, and an edit the stream sends after the delete, redelivered before it, raises an
        alert whose post the delete then removes — by design (docs/deploy.md). Nothing else
        may be missing or extra, and no post the stream deletes is kept."""
        assert len(actual.alerts) == len(set(actual.alerts)), "an alert was stored twice"
        assert len(actual.posts) == len(set(actual.posts)), "a post was stored twice"
        assert actual.failed_dead_letters == 0, "events were given up as dead letters"
        assert actual.posts == self.posts, (
            f"posts differ: missing {sorted(set(self.posts) - set(actual.posts))[:5]}, "
            f"extra {sorted(set(actual.posts) - set(self.posts))[:5]}"
        )
        if in_order:
            assert actual.alerts == self.alerts
            return
        extra = sorted(k for k in set(actual.alerts) - set(self.alerts) if k[2] not in self.deleted)
        assert not extra, f"unexpected alerts: {extra[:5]}"
        missing = set(self.alerts) - set(actual.alerts)
        lost = sorted(k for k in missing if k[2] not in self.deleted)
        assert not lost, f"{len(lost)} alerts lost: {lost[:5]}"


def embedded_reference(recording: Path, watches_from: str, workdir: Path) -> Expected:
    """Run the recording through the embedded pipeline, uninterrupted, under the watches of
    the store at ``watches_from``."""
    source = open_store(watches_from)
    oracle_url = f"sqlite:///{workdir / 'reference.db'}"
    oracle = open_store(oracle_url)
    try:
        for watch in source.list_watches():
            oracle.add_watch(replace(watch, id=None))
        normaliser = JetstreamNormaliser(HmacPseudonymiser(b"r" * 32))
        asyncio.run(Pipeline(ReplaySource(recording), normaliser, oracle, batch_interval_s=0.05).run())
        views = oracle.list_alerts(limit=10_000_000)
        deleted = frozenset(v.alert.post.native_id for v in views if v.post is None)
    finally:
        source.close()
        oracle.close()
    contents = read_contents(oracle_url)
    assert contents.alerts, "the recording raises no alert: the test would prove nothing"
    return Expected(contents.alerts, contents.posts, deleted)


# ----------------------------------------------------------------------------- processes


def consumer_state(nats_url: str, prefix: str, durable: str = "workers") -> tuple[int, int]:
    """(not yet delivered, delivered and not acknowledged) of the workers' consumer."""
    import nats

    async def ask() -> tuple[int, int]:
        nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            info = await nc.jetstream().consumer_info(f"{prefix.upper()}_BLUESKY", durable)
            return int(info.num_pending), int(info.num_ack_pending)
        finally:
            await nc.close()

    return asyncio.run(ask())


# ----------------------------------------------------------------------------- private servers


class PrivateNats:
    """A nats-server with JetStream of this test's own, on a free port, to stop and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.store_dir = workdir / "nats"
        self.log = workdir / "nats.log"
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER_BIN, "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: port_open(self.port), 30, "the private nats-server to listen")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    require(os.access(NATS_SERVER_BIN, os.X_OK), f"no nats-server at {NATS_SERVER_BIN} (WATCHFLOOR_TEST_NATS_SERVER)")
    server = PrivateNats(tmp_path)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin with initdb and pg_ctl (or WATCHFLOOR_TEST_PG_BIN)."""
    candidates = [os.environ.get("WATCHFLOOR_TEST_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (initdb into a temporary folder, trust auth,
    loopback on a free port) that the test stops (``-m immediate``: like a crash) and starts.

    PostgreSQL refuses to run as root: as root the commands run as the ``postgres`` user
    (``runuser -u postgres --``) in a folder owned by it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="wf-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=60"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.logfile),
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = postgres_bin()
    require(bindir is not None, "no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb; WATCHFLOOR_TEST_PG_BIN)")
    assert bindir is not None
    if os.geteuid() == 0:
        require(shutil.which("runuser") is not None, "as root, a private cluster needs runuser (util-linux)")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            require(False, "as root, a private cluster needs a 'postgres' user to run as")
    cluster = PrivatePostgres(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
