"""The embedded pipeline when its SQLite store cannot be written: another connection holds an
exclusive lock longer than the store's busy timeout, or the disk is full (a real, small
tmpfs mounted for the test and filled up with a file).

The pipeline must apply backpressure (it stops taking events from the source; the batch in
hand is kept), retry with backoff until the store is writable again, log the outage once
(not once per retry), count the retries, and then go on: at the end the store equals an
uninterrupted run's exactly, nothing lost, nothing doubled, no crash."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.conftest import require
from tests.reliability.conftest import Processes, embedded_reference, free_port, paced_recording, read_contents

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent
from watchfloor.pipeline.match_process import MatchProcess
from watchfloor.pipeline.runner import MAX_IN_FLIGHT, Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import IngestBatch, StoreUnavailable
from watchfloor.store.sqlite import SQLiteStore, is_transient

EVENTS = 10_000
QUEUE, BATCH = 1_000, 200
OUTAGE_S = 3.0


class CountingSource:
    """A replay whose events taken by the pipeline are counted (to see the backpressure)."""

    def __init__(self, inner: ReplaySource) -> None:
        self.inner, self.platform, self.name = inner, inner.platform, inner.name
        self.taken = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        async for event in self.inner.events(cursor):
            self.taken += 1
            yield event


class Fault:
    """Makes the store unwritable after the first commit, and writable again ``OUTAGE_S`` later."""

    def __init__(self, kind: str, db: Path) -> None:
        self.kind, self.db = kind, db
        self.lock: sqlite3.Connection | None = None
        self.filler = db.parent / "filler"
        self.begun_at: float | None = None
        self.ended = asyncio.Event()
        self.taken_before_end: list[int] = []

    def begin(self) -> None:
        self.begun_at = time.monotonic()
        if self.kind == "locked":
            self.lock = sqlite3.connect(self.db, isolation_level=None, timeout=5)
            self.lock.execute("BEGIN EXCLUSIVE")  # no writer gets in until ROLLBACK
        else:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:  # take every free byte of the file system, down to the last block
                for size in (1 << 20, 4096, 512):
                    while True:
                        try:
                            os.write(fd, b"\0" * size)
                        except OSError as exc:
                            assert exc.errno == errno.ENOSPC
                            break
            finally:
                os.close(fd)

    def end(self) -> None:
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
        self.filler.unlink(missing_ok=True)
        self.ended.set()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs mounted on a folder of the test's (root only)."""
    require(os.geteuid() == 0, "mounting a small tmpfs for the disk-full test needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    require(done.returncode == 0, f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kind", "matched_in"), [("locked", "pipeline"), ("disk-full", "pipeline"), ("locked", "match helper")]
)
def test_the_embedded_pipeline_holds_the_source_back_and_retries_until_the_store_is_writable(
    kind: str, matched_in: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    folder = request.getfixturevalue("small_disk") if kind == "disk-full" else tmp_path / "db"
    home = tmp_path / "var"
    db = folder / "watchfloor.db"
    Processes(home, {"WATCHFLOOR_DB": f"sqlite:///{db}"}).run("init", "--demo-watches")
    recording = tmp_path / "events.jsonl"
    paced_recording(recording, [(EVENTS, 1000.0)], hit_share=0.3)
    expected = embedded_reference(recording, f"sqlite:///{db}", tmp_path)

    store = SQLiteStore(db, busy_timeout_ms=300)  # a lock outlasts this timeout by far
    store.migrate()
    source = CountingSource(ReplaySource(recording))
    helper = MatchProcess() if matched_in == "match helper" else None  # batches in flight there too
    pipeline = Pipeline(
        source, JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)), store,
        batch_size=BATCH, batch_interval_s=0.05, queue_size=QUEUE, match_process=helper,
    )  # fmt: skip
    fault = Fault(kind, db)

    def after_commit(_result: object) -> None:
        if fault.begun_at is None:
            fault.begin()
            asyncio.get_running_loop().call_later(OUTAGE_S - 1.0, lambda: fault.taken_before_end.append(source.taken))
            asyncio.get_running_loop().call_later(OUTAGE_S, fault.end)

    pipeline.on_commit.append(after_commit)
    caplog.set_level(logging.WARNING, logger="watchfloor.pipeline.store_retry")
    try:
        stats = asyncio.run(asyncio.wait_for(pipeline.run(), timeout=240))
    finally:
        fault.end() if not fault.ended.is_set() else None
        store.close()
        if helper is not None:
            helper.close()

    assert fault.begun_at is not None and fault.ended.is_set()
    # backpressure: a second before the store came back the reader had long stopped, holding
    # no more than the queue and the batches in hand
    taken_at_end = fault.taken_before_end[0]
    in_hand = 2 if helper is None else MAX_IN_FLIGHT + 2  # batches being committed, prepared, or in the helper
    assert taken_at_end <= BATCH + QUEUE + in_hand * BATCH + 1, taken_at_end
    assert taken_at_end < EVENTS
    # retried, logged once for the one outage, and everything stored exactly once
    assert stats.store_retries >= 3, stats
    # logged once per outage, not once per retry: "unavailable", then "available again". A
    # lock is one outage; a full disk may let a small commit through now and then (SQLite
    # reuses WAL space it already has), each such gap ends one outage and starts another
    outages = pipeline.store_retry.outages
    assert outages == 1 if kind == "locked" else 1 <= outages < stats.store_retries
    outage_logs = [r.getMessage() for r in caplog.records if r.name == "watchfloor.pipeline.store_retry"]
    assert len(outage_logs) == 2 * outages, outage_logs
    assert all("the store is unavailable" in m for m in outage_logs[::2]), outage_logs
    assert all("available again" in m for m in outage_logs[1::2]), outage_logs
    assert stats.events == EVENTS
    expected.check(read_contents(f"sqlite:///{db}"), in_order=True)
    if helper is not None:
        assert helper.fallbacks == 0  # the outage was the store's: every batch still went through the helper


def refused_by_sqlite(sql: str, *, lock_first: bool = False, path: Path | None = None) -> sqlite3.Error:
    """The error SQLite itself raises for ``sql`` (on ``path`` held by another writer)."""
    holder = sqlite3.connect(path or ":memory:", isolation_level=None)
    conn = sqlite3.connect(path or ":memory:", isolation_level=None, timeout=0.05)
    try:
        if lock_first:
            holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.Error) as raised:
            conn.execute(sql)
        return raised.value
    finally:
        conn.close()
        holder.close()


def test_a_locked_sqlite_store_says_unavailable_stores_nothing_and_recovers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "watchfloor.db", busy_timeout_ms=100)
    store.migrate()
    lock = sqlite3.connect(tmp_path / "watchfloor.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked"):
            store.commit_batch(IngestBatch(source="s", cursor="1", events=5))
        lock.execute("ROLLBACK")
        assert store.get_cursor("s") is None  # nothing of the failed batch
        store.commit_batch(IngestBatch(source="s", cursor="1", events=5))
        assert store.get_cursor("s") == "1"
        assert is_transient(refused_by_sqlite("BEGIN EXCLUSIVE", lock_first=True, path=tmp_path / "watchfloor.db"))
        assert not is_transient(refused_by_sqlite("SELECT no_such_column"))  # a bug is not an outage
    finally:
        lock.close()
        store.close()


def test_an_unreachable_postgresql_store_says_unavailable() -> None:
    from watchfloor.store.postgresql import PostgreSQLStore

    store = PostgreSQLStore(f"postgresql://postgres@127.0.0.1:{free_port()}/none", connect_timeout_s=1)
    store.retry_for_s = 0.5  # its own retries, before it hands the outage to the caller
    try:
        with pytest.raises(StoreUnavailable):
            store.commit_batch(IngestBatch(source="s", cursor="1"))
    finally:
        store.close()
