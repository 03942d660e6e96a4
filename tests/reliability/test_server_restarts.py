"""The servers under the scale-out deployment restart while it works, and it loses nothing.

- NATS: a private nats-server (JetStream, its own store folder and port) is stopped with
  SIGTERM and started again, then killed with SIGKILL and started again, while `watchfloor
  ingest` publishes a paced replay and a `watchfloor worker` consumes it. Both reconnect on
  their own (neither process is restarted) and the final store is exact.
- PostgreSQL: a private cluster (initdb in a temporary folder) is stopped with ``-m
  immediate`` (a crash: connections cut mid-transaction) and started again, twice, while a
  worker commits batches. The worker keeps its messages (nothing is acknowledged before its
  commit), retries with backoff, and the final store is exact. The embedded pipeline
  (`watchfloor run` on PostgreSQL) goes through the same restarts with the same result.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import (
    PrivateNats,
    PrivatePostgres,
    Processes,
    consumer_state,
    embedded_reference,
    paced_recording,
    read_contents,
    wait_until,
)

WORKER = ("worker", "--ack-wait", "5", "--batch-size", "200", "--no-duties")


def _cursor(url: str) -> int:
    return max((int(c) for c in read_contents(url).cursors.values() if c), default=0)


def _alive(procs: Processes, *running: subprocess.Popen[bytes]) -> None:
    for proc in running:
        assert proc.poll() is None, f"a process ended ({proc.returncode}):\n{procs.log_of(proc)[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_nats_stopped_and_killed_mid_stream_the_processes_reconnect_and_lose_nothing(
    tmp_path: Path, private_nats: PrivateNats, pg_url: str
) -> None:
    procs = Processes(tmp_path / "var", {"WATCHFLOOR_DB": pg_url, "WATCHFLOOR_BUS": private_nats.url})
    procs.run("init", "--demo-watches")
    recording = tmp_path / "events.jsonl"
    size = paced_recording(recording, [(12_000, 600.0)], hit_share=0.2)
    expected = embedded_reference(recording, pg_url, tmp_path)
    worker = procs.start(*WORKER)
    ingest = procs.start("ingest", "--replay", str(recording), "--speed", "recorded", "--cursor-every", "0.2")
    try:
        for how in (signal.SIGTERM, signal.SIGKILL):
            before = wait_until(lambda: _cursor(pg_url) or None, 120, "a saved cursor")
            time.sleep(1.0)
            _alive(procs, worker, ingest)
            private_nats.stop(how)
            time.sleep(2.0)  # down for a while: publishes fail, fetches fail, acks wait
            _alive(procs, worker, ingest)
            private_nats.start()
            wait_until(lambda before=before: _cursor(pg_url) > before, 120, "the ingest to go on after the restart")
        assert ingest.wait(timeout=180) == 0, procs.log_of(ingest)[-3000:]
        assert _cursor(pg_url) == size
        wait_until(lambda: consumer_state(private_nats.url, "watchfloor") == (0, 0), 180, "the worker to drain")
        _alive(procs, worker)
    finally:
        procs.stop_all()
    expected.check(read_contents(pg_url), in_order=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgresql_restarted_mid_batch_the_worker_retries_and_loses_nothing(
    tmp_path: Path, private_pg: PrivatePostgres, nats_url: str, bus_prefix: str
) -> None:
    url = private_pg.url
    env = {"WATCHFLOOR_DB": url, "WATCHFLOOR_BUS": nats_url, "WATCHFLOOR_BUS_PREFIX": bus_prefix}
    procs = Processes(tmp_path / "var", env)
    procs.run("init", "--demo-watches")
    recording = tmp_path / "events.jsonl"
    paced_recording(recording, [(10_000, 1000.0)], hit_share=0.3)
    expected = embedded_reference(recording, url, tmp_path)
    # the events are on the bus before the worker starts, so the worker is busy committing
    ingest = procs.start("ingest", "--replay", str(recording))
    assert ingest.wait(timeout=180) == 0, procs.log_of(ingest)[-3000:]
    worker = procs.start(*WORKER, "--log-level", "info")
    try:
        for _ in range(2):
            committed = wait_until(lambda: read_contents(url).posts and len(read_contents(url).posts), 120, "commits")
            private_pg.stop("immediate")  # connections cut mid-transaction, as in a crash
            time.sleep(3.0)
            _alive(procs, worker)
            private_pg.start()
            wait_until(lambda committed=committed: len(read_contents(url).posts) > committed, 120, "commits again")
        wait_until(lambda: consumer_state(nats_url, bus_prefix) == (0, 0), 180, "the worker to drain the bus")
        _alive(procs, worker)
    finally:
        procs.stop_all()
    log = procs.log_of(worker)
    assert "not stored" in log, log[-3000:]  # commits failed and were retried
    expected.check(read_contents(url), in_order=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgresql_restarted_under_the_embedded_pipeline_loses_nothing(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    url = private_pg.url
    procs = Processes(tmp_path / "var", {"WATCHFLOOR_DB": url})
    procs.run("init", "--demo-watches")
    recording = tmp_path / "events.jsonl"
    size = paced_recording(recording, [(8_000, 800.0)], hit_share=0.3)
    expected = embedded_reference(recording, url, tmp_path)
    run = procs.start("run", "--replay", str(recording), "--speed", "recorded", "--no-web")
    try:
        for _ in range(2):
            before = wait_until(lambda: _cursor(url) or None, 120, "a committed cursor")
            private_pg.stop("immediate")
            time.sleep(3.0)
            _alive(procs, run)
            private_pg.start()
            wait_until(lambda before=before: _cursor(url) > before, 120, "commits again")
        assert run.wait(timeout=180) == 0, procs.log_of(run)[-3000:]
    finally:
        procs.stop_all()
    assert _cursor(url) == size
    log = procs.log_of(run)
    # the commits failed and were retried (by the store for a while, then by the pipeline)
    assert "not stored" in log, log[-3000:]
    expected.check(read_contents(url), in_order=True)
