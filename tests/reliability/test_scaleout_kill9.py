"""kill -9 of the scale-out deployment at random points: `watchfloor ingest` publishing a paced
replay to NATS JetStream, two `watchfloor worker` processes committing it to a fresh
PostgreSQL database. At least ``WATCHFLOOR_SCALEOUT_KILLS`` (default 50) kills, each of a
randomly chosen process at a random moment, about one in four or five during start-up (within 0.8 s
of the process being started again); every killed process is started again at once.

At the end the store holds exactly what an uninterrupted embedded run over the same events
stores (posts exactly; alerts exactly but for the documented delete-before-create case),
nothing twice, no event given up as a dead letter, and the ingest cursor saved in the store
never went backwards (sampled every 0.2 s throughout)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import (
    Processes,
    consumer_state,
    embedded_reference,
    paced_recording,
    read_contents,
    wait_until,
)

KILLS = int(os.environ.get("WATCHFLOOR_SCALEOUT_KILLS", "50"))
EVENTS = int(os.environ.get("WATCHFLOOR_SCALEOUT_EVENTS", "40000"))
RATE = 400.0  # events per second the replay is published at (the recording's pace)
WORKER = ("worker", "--ack-wait", "3", "--batch-size", "200", "--no-duties", "--max-deliver", "10")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_9_of_ingest_and_two_workers_on_postgresql_loses_and_doubles_nothing(
    tmp_path: Path, pg_url: str, nats_url: str, bus_prefix: str
) -> None:
    home = tmp_path / "var"
    procs = Processes(home, {"WATCHFLOOR_DB": pg_url, "WATCHFLOOR_BUS": nats_url, "WATCHFLOOR_BUS_PREFIX": bus_prefix})
    procs.run("init", "--demo-watches")
    recording = tmp_path / "events.jsonl"
    size = paced_recording(recording, [(EVENTS, RATE)], hit_share=0.2)
    expected = embedded_reference(recording, pg_url, tmp_path)
    ingest_args = ("ingest", "--replay", str(recording), "--speed", "recorded", "--cursor-every", "0.2")

    def saved_cursor() -> int:
        return max((int(c) for c in read_contents(pg_url).cursors.values() if c), default=0)

    cursors: list[int] = []

    def sample() -> None:
        position = saved_cursor()
        assert not cursors or position >= cursors[-1], f"the saved cursor went backwards: {cursors[-1]} -> {position}"
        cursors.append(position)

    def pause(seconds: float) -> None:  # sampling the cursor meanwhile
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.2, left))
            sample()

    running: dict[str, subprocess.Popen[bytes]] = {
        "worker-a": procs.start(*WORKER),
        "worker-b": procs.start(*WORKER),
        "ingest": procs.start(*ingest_args),
    }
    args = {"worker-a": WORKER, "worker-b": WORKER, "ingest": ingest_args}
    rng = random.Random(20261126)
    kills: dict[str, int] = {"worker-a": 0, "worker-b": 0, "ingest": 0}
    startup_kills = 0
    ingest_kill_cursors: list[int] = []

    def kill(name: str) -> int:
        """kill -9 of the process (if it is still running); 1 if it was."""
        proc = running[name]
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
            kills[name] += 1
            if name == "ingest":
                ingest_kill_cursors.append(saved_cursor())
        proc.wait(timeout=30)
        assert proc.returncode in (0, -signal.SIGKILL), procs.log_of(proc)
        sample()
        return int(killed)

    try:
        wait_until(lambda: saved_cursor() > 0, 120, "the first saved cursor")
        while sum(kills.values()) < KILLS:
            name = rng.choice(list(running))
            if running["ingest"].poll() == 0 and name == "ingest":  # the replay ended: kill a worker
                name = rng.choice(["worker-a", "worker-b"])
            pause(rng.uniform(0.3, 2.5))  # a random moment of its work
            kill(name)
            running[name] = procs.start(*args[name])
            if rng.random() < 0.3:  # about one kill in four or five lands in that start-up
                pause(rng.uniform(0.0, 0.8))
                startup_kills += kill(name)
                running[name] = procs.start(*args[name])
        # finish the stream at full speed, then let the workers drain the bus
        if running["ingest"].poll() is None:
            running["ingest"].send_signal(signal.SIGTERM)  # (in its start-up, before its handler: -SIGTERM)
            assert running["ingest"].wait(timeout=60) in (0, -signal.SIGTERM), procs.log_of(running["ingest"])
        sample()
        final = procs.start("ingest", "--replay", str(recording))
        assert final.wait(timeout=300) == 0, procs.log_of(final)
        sample()
        assert cursors[-1] == size
        wait_until(lambda: consumer_state(nats_url, bus_prefix) == (0, 0), 300, "the workers to drain the bus")
        for name in ("worker-a", "worker-b"):
            assert running[name].poll() is None, procs.log_of(running[name])
    finally:
        procs.stop_all()
    total = sum(kills.values())
    print(f"kills: {kills} ({startup_kills} during start-up); ingest killed at cursors {ingest_kill_cursors}")
    assert total >= KILLS
    assert min(kills.values()) >= KILLS // 6, f"every process must be killed often: {kills}"
    assert startup_kills >= KILLS // 10, f"too few kills during start-up: {startup_kills}"
    assert any(0 < c < size for c in ingest_kill_cursors), "no ingest kill landed mid-stream"
    expected.check(read_contents(pg_url), in_order=False)
