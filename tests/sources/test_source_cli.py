"""`watchfloor source …`, `watchfloor run` with configured sources and `watchfloor status`
as a user runs them, against a loopback Jetstream and a real WATCHFLOOR_HOME: the short
commands through the real command line in-process (CliRunner, in a worker thread), `run`
as a real process stopped with SIGINT."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "watchfloor"]


def _invoke(home: Path, args: tuple[str, ...], env: dict[str, str] | None) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from watchfloor.cli import app

    environment = {"WATCHFLOOR_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    result = CliRunner().invoke(app, list(args), env=environment)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def wf(home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    code, out, err = await asyncio.to_thread(_invoke, home, args, env)
    if check and code != 0:
        raise AssertionError(f"watchfloor {' '.join(args)} exited {code}\n{out}\n{err}")
    return code, out, err


@pytest.fixture
async def home(tmp_path: Path) -> Path:
    h = tmp_path / "var"
    await wf(h, "init")
    return h


async def test_add_list_pause_resume_remove_and_credentials(home: Path) -> None:
    await wf(home, "source", "add", "rss", "news", "--feed", "https://news.example/feed.xml", "--poll-interval", "600")
    _, out, _ = await wf(
        home, "source", "add", "reddit", "--subreddit", "askscience", "--client-id", "cid-1",
        "--client-secret", "very-secret-value",
    )  # fmt: skip
    assert "saved to" in out and "very-secret-value" not in out
    keys = home / "keys" / "sources.toml"
    assert oct(keys.stat().st_mode & 0o777) == "0o600" and "very-secret-value" in keys.read_text()
    _, out, _ = await wf(home, "source", "add", "youtube", "yt", "--video", "abc123")
    assert "credentials missing: api_key" in out and "WATCHFLOOR_YOUTUBE_API_KEY" in out
    code, _, err = await wf(home, "source", "add", "rss", "news", "--feed", "https://x.example/f", check=False)
    assert code == 1 and "exists already" in err
    code, _, err = await wf(home, "source", "add", "mastodon", "--instance", "ftp://nope", check=False)
    assert code == 1 and "http(s) URL" in err
    code, _, err = await wf(home, "source", "add", "rss", "Bad Name", "--feed", "https://x.example/f", check=False)
    assert code == 1 and "source name" in err

    _, out, _ = await wf(home, "source", "list", "--json")
    rows = {row["name"]: row for row in map(json.loads, out.splitlines())}
    assert set(rows) == {"news", "reddit", "yt"}
    assert rows["reddit"]["credentials"] == {"client_id": "set", "client_secret": "set"}
    assert rows["yt"]["credentials"] == {"api_key": "missing"} and rows["news"]["status"] == "not started"
    _, out, _ = await wf(home, "source", "list", "--json", env={"WATCHFLOOR_YOUTUBE_API_KEY": "from-env"})
    assert "from-env" not in out and '"api_key": "set"' in out
    _, table, _ = await wf(home, "source", "list")
    assert "very-secret-value" not in table and "cid-1" not in table and "news" in table

    await wf(home, "source", "pause", "news")
    _, out, _ = await wf(home, "source", "list", "--json")
    assert next(r for r in map(json.loads, out.splitlines()) if r["name"] == "news")["status"] == "paused"
    await wf(home, "source", "resume", "news")
    code, _, err = await wf(home, "source", "pause", "nothing", check=False)
    assert code == 1 and "no source named" in err
    await wf(home, "source", "remove", "reddit", "--yes")
    assert not keys.exists() or "very-secret-value" not in keys.read_text()


async def test_source_test_reads_a_few_events(home: Path, jetstream_server, jetstream_corpus) -> None:
    server = await jetstream_server(jetstream_corpus)
    await wf(home, "source", "add", "bluesky", "--endpoint", server.url, "--collection", "app.bsky.feed.*")
    _, out, _ = await wf(home, "source", "test", "bluesky", "--events", "20")
    assert "bluesky: 20 events" in out and "status connected" in out and server.url in out
    assert server.requests[0]["wantedCollections"] == ["app.bsky.feed.*"]
    assert server.requests[0]["compress"] == ["true"]
    await wf(home, "source", "add", "youtube", "--video", "abc123")
    code, _, err = await wf(home, "source", "test", "youtube", check=False)
    assert code == 1 and "needs an API key" in err


def db_rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "watchfloor.db")
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


async def run_until(home: Path, condition, *args: str) -> str:
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        *CLI, "run", "--no-web", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not condition():
            assert proc.returncode is None, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            assert asyncio.get_running_loop().time() < deadline, "the condition was never reached"
            await asyncio.sleep(0.1)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_run_follows_configured_sources_and_status_shows_a_gap(
    home: Path, jetstream_server, jetstream_corpus, jetstream_script
) -> None:
    server = await jetstream_server(jetstream_corpus, jetstream_script(cut_after=[60], refuse_later=True))
    await wf(
        home, "source", "add", "bluesky", "--endpoint", server.url, "--collection", "app.bsky.*",
        "--replay-margin", "0.05", "--gap-tolerance", "0.001",  # the recording spans 0.3 s
    )  # fmt: skip
    await wf(home, "source", "add", "rss", "feeds", "--feed", "http://127.0.0.1:9/feed.xml", "--paused")
    # the first run is cut after 60 events, and the server refuses it from then on
    out = await run_until(home, lambda: len(server.requests) >= 3)
    assert "sources: bluesky" in out and "stopped: 60 events" in out
    health = db_rows(home, "SELECT status, errors FROM source_health WHERE source = 'bluesky'")
    assert health == [("stopped", 3)]  # the cut, then two refusals
    # when it is back, it has forgotten everything before event 120: the next run cannot resume
    server.script.floor, server.script.refuse_later = 120, False
    wanted = sum(server.wants(event, ["app.bsky.*"]) for event in jetstream_corpus[120:])
    events_sql = "SELECT events_total FROM source_state WHERE source = 'bluesky'"
    await run_until(home, lambda: db_rows(home, events_sql) == [(60 + wanted,)])
    assert db_rows(home, "SELECT COUNT(*) FROM source_gaps") == [(1,)]
    _, text, _ = await wf(home, "status")
    assert "GAP" in text and "did not replay from the cursor" in text and "source health" in text
    _, js, _ = await wf(home, "status", "--json")
    status = json.loads(js)
    (gap,) = status["gaps"]
    assert gap["source"] == "bluesky" and gap["since"] and gap["until"]
    (bluesky,) = [h for h in status["health"] if h["source"] == "bluesky"]
    assert bluesky["gaps"] == 1 and bluesky["status"] == "stopped"
    assert not [h for h in status["health"] if h["source"] == "feeds"]  # paused: never started
    code, _, err = await wf(home, "run", "--no-web", "--source", "feeds", check=False)
    assert code == 1 and "is paused" in err
