"""Fixtures for the web tests: a temporary SQLite store, users, data builders, and the
REAL app served by uvicorn on 127.0.0.1 in a background thread, spoken to over HTTP.

The suite runs with ``--import-mode=importlib``, so test modules cannot import helpers
from here: helpers are handed out as fixtures (``login``, ``csrf_token_of``, ...).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from watchfloor.config import Settings
from watchfloor.governance.passwords import hash_password
from watchfloor.model import (
    Alert,
    Explanation,
    Post,
    Role,
    Severity,
    TermHit,
    User,
    Watch,
    WatchStatus,
    utcnow,
)
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.store import IngestBatch, Store, open_store
from watchfloor.web.app import create_app
from watchfloor.web.server import build_server

PASSWORD = "correct horse battery staple"
ANALYST = "ana"


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    user: User


# ----------------------------------------------------------------------------- store and data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/wf.db")
    yield opened
    opened.close()


@pytest.fixture
def settings(tmp_path: Path, store: Store) -> Settings:
    return Settings(home=tmp_path, db_url=store.url)


@pytest.fixture
def signal() -> AlertSignal:
    return AlertSignal()


@pytest.fixture
def analyst(store: Store) -> Account:
    user = User(username=ANALYST, role=Role.analyst, password_hash=hash_password(PASSWORD))
    store.add_user(user)
    return Account(ANALYST, PASSWORD, user)


MakeWatch = Callable[..., Watch]


@pytest.fixture
def make_watch(store: Store) -> MakeWatch:
    numbers = count(1)

    def make(name: str | None = None, **fields: object) -> Watch:
        severity = Severity(fields.pop("severity", Severity.high))
        watch = Watch(
            name=name or f"watch {next(numbers)}",
            query=str(fields.pop("query", '"bomb threat" OR evacuat*')),
            purpose=str(fields.pop("purpose", "Find threats against schools to alert the duty officer.")),
            legal_basis=str(fields.pop("legal_basis", "Public task, Civil Contingencies Act s.2")),
            owner=str(fields.pop("owner", "duty-desk")),
            severity=severity,
            sla_minutes=int(fields.pop("sla_minutes", severity.default_sla_minutes)),  # type: ignore[call-overload]
            **({"status": WatchStatus.approved, "approver": "second-person"} | fields),  # type: ignore[arg-type]
        )
        return store.add_watch(watch)

    return make


@dataclass
class AlertMaker:
    """Commits a post and its alert through ``store.commit_batch``, as the pipeline does."""

    store: Store
    numbers: Iterator[int] = field(default_factory=lambda: count(1))

    def __call__(
        self,
        watch: Watch,
        text: str = "Bomb threat reported at the school, evacuation under way",
        *,
        terms: dict[str, str] | None = None,
        author: str = "p:0a1b2c3d4e5f6071",
        platform: str = "bluesky",
        lang: str | None = "en",
        links: tuple[str, ...] = (),
        hashtags: tuple[str, ...] = (),
        url: str | None = None,
        score: float | None = None,
        native_id: str | None = None,
        age: timedelta = timedelta(0),
    ) -> Alert:
        """``terms`` maps a query part to the literal text it matched (every occurrence is a span);
        by default the words 'bomb threat' and 'evacuat…' as in the default watch query. The
        score follows the documented v1 formula unless given; ``age`` backdates the alert."""
        n = next(self.numbers)
        now = utcnow() - age
        hits = tuple(
            TermHit(term=term, kind=_kind(term), spans=_spans_of(text, literal, whole_word=term.endswith("*")))
            for term, literal in (terms if terms is not None else _default_terms(text)).items()
        )
        post = Post(
            platform=platform,
            native_id=native_id or f"at://did:plc:synthetic/app.bsky.feed.post/{n:06d}",
            version="1",
            created_at=now - timedelta(seconds=30),
            received_at=now - timedelta(seconds=1),
            text=text,
            author=author,
            lang=lang,
            links=links,
            hashtags=hashtags,
            url=url,
            raw=b"{}",
        )
        severity_part = round(0.5 * watch.severity.weight, 4)
        match_part = round(0.5 * min(1.0, len(hits) / 3), 4)
        alert = Alert(
            watch_id=watch.id or 0,
            post=post.key,
            score=score if score is not None else round(severity_part + match_part, 4),
            explanation=Explanation(hits=hits, score_parts=(("severity", severity_part), ("match", match_part))),
            created_at=now,
            due_at=now + timedelta(minutes=watch.sla_minutes),
        )
        result = self.store.commit_batch(
            IngestBatch(source="test", cursor=str(n), posts=[post], alerts=[alert], events=1)
        )
        assert len(result.alerts_added) == 1, "the alert was not new"
        return result.alerts_added[0]


def _kind(term: str) -> str:
    if term.startswith('"'):
        return "phrase"
    return "prefix" if term.endswith("*") else "term"


def _spans_of(text: str, literal: str, *, whole_word: bool = False) -> tuple[tuple[int, int], ...]:
    """Where ``literal`` occurs; a prefix (``evacuat*``) spans the whole word, as the matcher's do."""
    pattern = re.escape(literal.lower()) + (r"\w*" if whole_word else "")
    return tuple((m.start(), m.end()) for m in re.finditer(pattern, text.lower()))


def _default_terms(text: str) -> dict[str, str]:
    terms = {}
    if "bomb threat" in text.lower():
        terms['"bomb threat"'] = "bomb threat"
    if "evacuat" in text.lower():
        terms["evacuat*"] = "evacuat"
    return terms


@pytest.fixture
def make_alert(store: Store) -> AlertMaker:
    return AlertMaker(store)


# ----------------------------------------------------------------------------- live server


@dataclass
class LiveServer:
    app: FastAPI
    base_url: str
    stop: Callable[[], float]


def _serve(app: FastAPI) -> tuple[str, Callable[[], float]]:
    """Serve ``app`` with the production ``build_server`` on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; the socket stays ours, so no race
    port = sock.getsockname()[1]
    server = build_server(app, "127.0.0.1", port)
    # build_server's server installs no signal handlers (its owner handles signals), which is
    # also what running it outside the main thread needs.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.01)

    def stop() -> float:
        """Stop the server; returns how long the shutdown took, in seconds."""
        began = time.monotonic()
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the web server did not stop"
        sock.close()
        return time.monotonic() - began

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], LiveServer]]:
    """Start any number of live servers in a test; all are stopped after it."""
    stops: list[Callable[[], float]] = []
    stopped: set[int] = set()

    def start(app: FastAPI) -> LiveServer:
        base_url, stop = _serve(app)

        def stop_once(index: int = len(stops)) -> float:
            if index in stopped:
                return 0.0
            stopped.add(index)
            return stop()

        stops.append(stop_once)
        return LiveServer(app=app, base_url=base_url, stop=stop_once)

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def app(settings: Settings, store: Store, signal: AlertSignal) -> FastAPI:
    return create_app(settings, store, signal)


@pytest.fixture
def live(serve: Callable[[FastAPI], LiveServer], app: FastAPI) -> LiveServer:
    return serve(app)


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10) as c:
        yield c


# ----------------------------------------------------------------------------- signing in

LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

Login = Callable[..., httpx.Response]


def _login(client: httpx.Client, username: str, password: str, next_path: str = "/") -> httpx.Response:
    """Sign in through the real form: GET it for its login token, then POST it."""
    form = client.get("/login", params={"next": next_path})
    match = LOGIN_TOKEN.search(form.text)
    assert match, form.text
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next_path, "login_token": match.group(1)},
    )


def _csrf_token_of(client: httpx.Client, page: str = "/") -> str:
    match = CSRF_TOKEN.search(client.get(page).text)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


@pytest.fixture
def login() -> Login:
    return _login


@pytest.fixture
def csrf_token_of() -> Callable[..., str]:
    return _csrf_token_of


@pytest.fixture
def signed_in(client: httpx.Client, analyst: Account) -> httpx.Client:
    response = _login(client, analyst.username, analyst.password)
    assert response.status_code == 303, response.text
    return client


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required under CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def screenshot_path(tmp_path: Path) -> Callable[[str], Path]:
    """Where a test saves a screenshot: docs/img/ only when WATCHFLOOR_UPDATE_SCREENSHOTS=1
    (so an ordinary test run never rewrites tracked files), else the test's tmp folder."""

    def path(name: str) -> Path:
        folder = DOCS_IMG if os.environ.get("WATCHFLOOR_UPDATE_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    return path
