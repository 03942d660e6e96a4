"""The command line as a user runs it: real processes, a real WATCHFLOOR_HOME, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "watchfloor"]


def wf(home: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"watchfloor {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "var"
    wf(h, "init", "--demo-watches")
    return h


def test_init_creates_everything_once(tmp_path: Path) -> None:
    h = tmp_path / "var"
    first = wf(h, "init")
    assert "password:" in first.stdout
    assert (h / "config.toml").exists() and (h / "watchfloor.db").exists()
    key = h / "keys" / "pseudonym" / "epoch-0001.key"  # the keyring's first epoch (docs/accountability.md)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert len(bytes.fromhex(key.read_text().strip())) == 32
    secret = key.read_text()
    second = wf(h, "init")
    assert "password:" not in second.stdout and "already initialised" in second.stdout
    assert key.read_text() == secret  # a second init never replaces the secret


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    proc = wf(tmp_path / "nothing", "watch", "list", check=False)
    assert proc.returncode == 1
    assert "watchfloor init" in proc.stderr


def test_watch_add_list_show_disable(home: Path) -> None:
    wf(home, "user", "add", "ana", "--role", "analyst")
    wf(home, "user", "add", "sam", "--role", "supervisor")
    wf(
        home,
        "watch",
        "add",
        "bridges",
        '"bridge closed" OR (bridge AND closure*)',
        "--purpose",
        "public-safety",
        "--legal-basis",
        "public task",
        "--owner",
        "alice",
        "--created-by",
        "ana",
        "--severity",
        "high",
        "--expires",
        "7d",
    )
    wf(home, "watch", "approve", "bridges", "--by", "sam")  # a supervisor other than the creator
    listed = [json.loads(line) for line in wf(home, "watch", "list", "--json").stdout.splitlines()]
    bridges = next(w for w in listed if w["name"] == "bridges")
    assert bridges["severity"] == "high" and bridges["sla_minutes"] == 60 and bridges["active"]
    shown = json.loads(wf(home, "watch", "show", "bridges", "--json").stdout)
    assert shown["purpose"] == "public-safety" and shown["legal_basis"] == "public task"
    wf(home, "watch", "disable", str(bridges["id"]))
    shown = json.loads(wf(home, "watch", "show", str(bridges["id"]), "--json").stdout)
    assert shown["enabled"] is False and shown["active"] is False


def test_a_bad_query_is_refused_with_its_position(home: Path) -> None:
    proc = wf(
        home,
        "watch",
        "add",
        "broken",
        "flood AND (river OR",
        "--purpose",
        "p",
        "--legal-basis",
        "b",
        "--owner",
        "o",
        "--created-by",
        "ana",
        check=False,
    )
    assert proc.returncode == 2
    assert "flood AND (river OR" in proc.stderr
    assert "^" in proc.stderr
    assert "position" in proc.stderr.lower() or "column" in proc.stderr.lower()
    names = [json.loads(line)["name"] for line in wf(home, "watch", "list", "--json").stdout.splitlines()]
    assert "broken" not in names


def test_run_replay_then_alerts_and_status(home: Path, tmp_path: Path) -> None:
    events = tmp_path / "demo.jsonl"
    wf(home, "demo", "record", str(events), "--count", "2000", "--hit-share", "0.3")
    run = wf(home, "run", "--replay", str(events), "--no-web")
    assert "stopped: 2,000 events" in run.stdout
    lines = wf(home, "alerts", "--json", "--limit", "1000").stdout.splitlines()
    alerts = [json.loads(line) for line in lines]
    assert alerts, "the demo watches must hit the demo events"
    ids = [a["id"] for a in alerts]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    first = alerts[0]
    assert first["explanation"]["hits"] and first["post"]["author"].startswith("p:")
    for hit in first["explanation"]["hits"]:
        for start, end in hit["spans"]:
            assert first["post"]["text"][start:end]
    status = json.loads(wf(home, "status", "--json").stdout)
    (source,) = status["sources"]
    assert source["events_total"] == 2000 and source["cursor"] == str(events.stat().st_size)
    assert status["counts"]["alerts"] == len(alerts)
    # running the same replay again adds nothing
    wf(home, "run", "--replay", str(events), "--no-web")
    assert json.loads(wf(home, "status", "--json").stdout)["counts"] == status["counts"]


def test_alerts_follow_streams_new_alerts(home: Path, tmp_path: Path) -> None:
    events = tmp_path / "demo.jsonl"
    wf(home, "demo", "record", str(events), "--count", "1000", "--hit-share", "0.5")
    env = {**os.environ, "WATCHFLOOR_HOME": str(home)}
    follower = subprocess.Popen([*CLI, "alerts", "--follow", "--json"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        wf(home, "run", "--replay", str(events), "--no-web")
        line = follower.stdout.readline()  # blocks until the follower prints the first new alert
        assert json.loads(line)["id"] >= 1
    finally:
        follower.terminate()
        follower.wait(timeout=10)
