"""kill -9 of `watchfloor run` at random points: the final store equals an uninterrupted run's,
nothing is doubled, the committed cursor never goes backwards, and no helper process
(the match helper, the text-signal helper) outlives a killed run.

At least ``WATCHFLOOR_CRASH_TRIALS`` (default 50) kills: most land while batches are being
matched and committed, about one in five lands during start-up (opening the store, loading
the watch set, before the first commit)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "watchfloor"]
TRIALS = int(os.environ.get("WATCHFLOOR_CRASH_TRIALS", "50"))
EVENTS = 300_000  # enough stream for every kill to land mid-stream


def wf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHFLOOR_HOME": str(home)}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=True)


def snapshot(home: Path) -> tuple[list[tuple], list[tuple], str | None]:
    """(alert keys, post keys, cursor) read straight from the database file."""
    conn = sqlite3.connect(home / "watchfloor.db")
    try:
        alerts = conn.execute(
            "SELECT w.name, a.platform, a.native_id, a.version FROM alerts a JOIN watches w ON w.id = a.watch_id"
        ).fetchall()
        posts = conn.execute("SELECT platform, native_id, version FROM posts").fetchall()
        row = conn.execute("SELECT cursor FROM source_state").fetchone()
    finally:
        conn.close()
    return sorted(alerts), sorted(posts), None if row is None else row[0]


def committed_cursor(home: Path) -> int:
    conn = sqlite3.connect(home / "watchfloor.db")
    try:
        row = conn.execute("SELECT cursor FROM source_state").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row and row[0] else 0


@pytest.mark.slow
def children(pid: int) -> list[int]:
    """The child processes of ``pid`` now (from each process's parent in /proc)."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, UnicodeDecodeError):
            continue
        if int(fields[1]) == pid:  # the field after the state: the parent's process id
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.timeout(1200)
def test_kill_9_at_random_points_loses_and_doubles_nothing(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    wf(reference, "init", "--demo-watches")
    wf(crashed, "init", "--demo-watches")
    wf(reference, "demo", "record", str(events), "--count", str(EVENTS), "--hit-share", "0.2")
    size = events.stat().st_size

    started = time.monotonic()
    wf(reference, "run", "--replay", str(events), "--no-web")
    # Each killed run reads on for up to this long after its first commit: at most the time
    # one uninterrupted run takes over a TRIALS-th of the stream, so that the kills land
    # mid-stream however fast the machine is (half a second at most, as on a slow one).
    max_delay_s = min(0.5, (time.monotonic() - started) / TRIALS)
    expected_alerts, expected_posts, expected_cursor = snapshot(reference)
    assert expected_cursor == str(size) and expected_alerts

    rng = random.Random(20261125)
    env = {**os.environ, "WATCHFLOOR_HOME": str(crashed)}
    cursors: list[int] = []
    kills = started_helpers = 0
    for _ in range(TRIALS * 4):
        proc = subprocess.Popen(
            [*CLI, "run", "--replay", str(events), "--no-web"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if rng.random() < 0.2:
            # during start-up: before (or around) the first commit of this run
            time.sleep(rng.uniform(0.0, 2.0))
        else:
            # wait until this run has committed something (start-up time varies with machine
            # load), then kill at a random point after that
            before = committed_cursor(crashed)
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline and committed_cursor(crashed) == before:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, max_delay_s))
        helpers = children(proc.pid)  # the match and text-signal helpers, once started
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        for pid in helpers:  # a killed run leaves no helper behind
            deadline = time.monotonic() + 10
            while alive(pid):
                assert time.monotonic() < deadline, f"helper {pid} outlived its killed parent"
                time.sleep(0.05)
        started_helpers += len(helpers)
        alerts, posts, cursor = snapshot(crashed)
        assert len(alerts) == len(set(alerts)) and len(posts) == len(set(posts))
        position = int(cursor or 0)
        assert not cursors or position >= cursors[-1], "the committed cursor went backwards"
        cursors.append(position)
        if kills >= TRIALS or position == size:
            break
    assert kills >= TRIALS, f"only {kills} of {TRIALS} runs were killed before the replay ended"
    assert started_helpers > 0, "no killed run had started its helper processes"
    # finish the stream without interruption
    wf(crashed, "run", "--replay", str(events), "--no-web")
    alerts, posts, cursor = snapshot(crashed)
    assert cursor == str(size)
    assert alerts == expected_alerts
    assert posts == expected_posts
    mid_stream = [c for c in cursors if 0 < c < size]
    assert mid_stream, f"no kill landed mid-stream (cursors {cursors})"
