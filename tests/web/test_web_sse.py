"""The live alert stream over real HTTP (server-sent events)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from watchfloor.config import Settings
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.store import Store
from watchfloor.web import sse
from watchfloor.web.app import create_app
from watchfloor.web.server import GRACEFUL_SHUTDOWN_S
from watchfloor.web.sse import sse_message, start_after

READ_TIMEOUT = httpx.Timeout(10.0, read=5.0)  # no event within 5 s fails the test


@dataclass
class Message:
    event: str | None = None
    data: list[str] = field(default_factory=list)
    id: str | None = None
    retry: str | None = None
    comments: list[str] = field(default_factory=list)


def messages(lines: Iterator[str]) -> Iterator[Message]:
    """Parse an event stream into messages (a comment-only block is a message too)."""
    current = Message()
    for line in lines:
        if line == "":
            yield current
            current = Message()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "retry":
                current.retry = value


def next_alert(stream: Iterator[Message]) -> Message:
    for message in stream:
        if message.event == "alert":
            return message
    raise AssertionError("the stream ended")


def test_a_new_alert_is_pushed_as_soon_as_it_is_published(
    signed_in: httpx.Client, signal: AlertSignal, make_watch: Any, make_alert: Any
) -> None:
    watch = make_watch("School threats")
    first = make_alert(watch)
    with signed_in.stream("GET", "/events/alerts", params={"after": first.id}, timeout=READ_TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        stream = messages(response.iter_lines())
        assert next(stream).retry == "3000"
        new = make_alert(watch, "Second bomb threat called in, evacuation of the annex")
        signal.publish(new.id)
        began = time.monotonic()
        message = next_alert(stream)
        assert time.monotonic() - began < 3.0
    assert message.id == str(new.id)
    html = "\n".join(message.data)
    assert html.startswith(f'<tr id="alert-{new.id}" class="alert-row sev-high fresh">')
    assert '<mark title="matched: &#34;bomb threat&#34;">bomb threat</mark>' in html
    assert html.rstrip().endswith("</tr>")


def test_the_stream_resumes_after_last_event_id(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch()
    ids = [make_alert(watch).id for _ in range(3)]
    headers = {"Last-Event-ID": str(ids[1])}
    with signed_in.stream(
        "GET", "/events/alerts", params={"after": 0}, headers=headers, timeout=READ_TIMEOUT
    ) as response:
        assert next_alert(messages(response.iter_lines())).id == str(ids[2])


def test_a_backlog_arrives_in_order(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch()
    ids = [make_alert(watch).id for _ in range(sse.BATCH + 20)]
    with signed_in.stream("GET", "/events/alerts", params={"after": 0}, timeout=READ_TIMEOUT) as response:
        stream = messages(response.iter_lines())
        got = [next_alert(stream).id for _ in ids]
    assert got == [str(i) for i in ids]


def test_without_a_signal_the_stream_polls_the_store(
    serve: Callable[[FastAPI], Any],
    settings: Settings,
    store: Store,
    analyst: Any,
    login: Any,
    make_watch: Any,
    make_alert: Any,
) -> None:
    # another process (here: no shared AlertSignal) commits; the stream still sees it
    live = serve(create_app(settings, store, signal=None))
    watch = make_watch()
    with httpx.Client(base_url=live.base_url, follow_redirects=False) as c:
        login(c, analyst.username, analyst.password)
        with c.stream("GET", "/events/alerts", params={"after": 0}, timeout=READ_TIMEOUT) as response:
            stream = messages(response.iter_lines())
            next(stream)  # retry
            new = make_alert(watch)
            assert next_alert(stream).id == str(new.id)


def test_keepalives_flow_and_the_stream_ends_with_its_session(
    signed_in: httpx.Client, monkeypatch: pytest.MonkeyPatch, csrf_token_of: Any
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.3)
    token = csrf_token_of(signed_in)
    with signed_in.stream("GET", "/events/alerts", timeout=READ_TIMEOUT) as response:
        stream = messages(response.iter_lines())
        assert next(stream).retry
        assert next(stream).comments == ["keepalive"]
        assert signed_in.post("/logout", data={"csrf_token": token}).status_code == 303
        rest = list(stream)  # ends: the session is gone
    assert all(m.event is None for m in rest)


def test_shutdown_ends_open_streams_promptly(
    serve: Callable[[FastAPI], Any], app: FastAPI, analyst: Any, login: Any
) -> None:
    live = serve(app)
    with httpx.Client(base_url=live.base_url, follow_redirects=False) as c:
        login(c, analyst.username, analyst.password)
        with c.stream("GET", "/events/alerts", timeout=READ_TIMEOUT) as response:
            stream = messages(response.iter_lines())
            next(stream)
            took: list[float] = []
            stopper = threading.Thread(target=lambda: took.append(live.stop()))
            stopper.start()
            list(stream)  # the server closes the stream
            stopper.join(timeout=20)
    assert took and took[0] < GRACEFUL_SHUTDOWN_S


# ----------------------------------------------------------------------------- units


def test_every_line_of_data_gets_its_own_field() -> None:
    assert sse_message("alert", "<tr>\n<td>a</td>\r\n</tr>", 7) == (
        "event: alert\ndata: <tr>\ndata: <td>a</td>\ndata: </tr>\nid: 7\n\n"
    )
    assert sse_message("ping", "") == "event: ping\ndata: \n\n"


@pytest.mark.parametrize(
    ("after", "last_event_id", "start"),
    [(None, None, 0), ("5", None, 5), ("5", "9", 9), ("9", "5", 9), ("x", "-3", 0), ("1" * 30, None, 0)],
)
def test_where_a_stream_starts(after: str | None, last_event_id: str | None, start: int) -> None:
    assert start_after(after, last_event_id) == start
