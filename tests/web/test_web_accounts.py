"""Sessions, the TOTP second factor and API tokens over real HTTP, on the app's clock
(``app.state.clock``, injected here, so time passes without sleeping), on both stores."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from watchfloor.cli import app as cli
from watchfloor.governance.audit import decode_entry, entry_dict
from watchfloor.governance.passwords import hash_password
from watchfloor.model import Role, User, utcnow
from watchfloor.store import Session, Store
from watchfloor.web.app import create_app
from watchfloor.web.sessions import SESSION_COOKIE, token_hash
from watchfloor.web.totp import code_at, step_of

PASSWORD = "a long enough password"
NEW_PASSWORD = "another long enough password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
URI = re.compile(r'id="totp-uri">(otpauth://[^<]+)<')
NEW_TOKEN = re.compile(r'id="new-token">(wft_[A-Za-z0-9_-]+)<')


@pytest.fixture
def store(any_store: Store) -> Store:
    """The web layer's accounts on both stores: SQLite and PostgreSQL."""
    return any_store


@dataclass
class Clock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live(serve: Any, settings: Any, store: Store, signal: Any, clock: Clock) -> Any:
    """The real app on the injected clock."""
    app = create_app(settings, store, signal)
    app.state.clock = clock
    return serve(app)


@pytest.fixture
def person(live: Any, store: Store, login: Any) -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(name: str = "ana", role: Role = Role.analyst, *, add: bool = True) -> httpx.Client:
        if add:
            store.add_user(User(name, role, hash_password(PASSWORD)))
        client = httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10)
        clients.append(client)
        assert login(client, name, PASSWORD).status_code == 303
        return client

    yield make
    for c in clients:
        c.close()


def csrf(client: httpx.Client, page: str = "/account") -> str:
    match = CSRF.search(client.get(page).text)
    assert match
    return match.group(1)


def audit(store: Store) -> list[dict[str, Any]]:
    return [entry_dict(decode_entry(r.entry)) for r in store.audit_rows()]


# ----------------------------------------------------------------------------- idle and absolute timeouts


def test_idle_sessions_end_and_background_refreshes_do_not_count(
    person: Any, clock: Clock, store: Store, settings: Any
) -> None:
    assert settings.session_idle_minutes == 30
    ana = person()
    clock.advance(minutes=20)
    assert ana.get("/watches").status_code == 200  # a page the person opened: idle until +50
    clock.advance(minutes=25)
    poll = ana.get("/status", headers={"HX-Request": "true"})  # the page refreshing itself (htmx)
    assert poll.status_code == 200
    fetch = ana.get("/api/alerts", headers={"Sec-Fetch-Mode": "cors"})  # a script's fetch
    assert fetch.status_code == 200
    clock.advance(minutes=6)  # 31 minutes after the last thing the person did
    assert ana.get("/watches").headers["location"] == "/login?next=/watches"
    assert ana.get("/api/alerts").status_code == 401
    assert store.get_session(token_hash(ana.cookies[SESSION_COOKIE])) is None


def test_activity_does_not_outlive_the_absolute_end(person: Any, clock: Clock) -> None:
    ana = person()
    for _ in range(24):  # active every 29 minutes, for 11 h 36 min
        clock.advance(minutes=29)
        assert ana.get("/watches").status_code == 200
    clock.advance(minutes=29)  # 12 h 05 min after signing in
    assert ana.get("/watches").status_code == 303


def test_expired_sessions_are_swept(store: Store, clock: Clock) -> None:
    now = clock()
    store.add_user(User("ana", Role.analyst, hash_password(PASSWORD)))
    store.add_session(Session("old", "ana", now - timedelta(hours=13), now - timedelta(hours=1), "c"))
    store.add_session(Session("idle", "ana", now, now + timedelta(hours=11), "c", now - timedelta(minutes=1)))
    store.add_session(Session("live", "ana", now, now + timedelta(hours=11), "c", now + timedelta(minutes=5)))
    assert store.delete_expired_sessions(now) == 2
    assert store.get_session("live") is not None and store.get_session("idle") is None


def test_a_new_password_ends_every_session_of_the_account(person: Any, store: Store, live: Any, login: Any) -> None:
    ana = person()
    other = person("ana", add=False)  # the same account in another browser
    old = other.cookies[SESSION_COOKIE]
    changed = ana.post("/password", data={
        "csrf_token": csrf(ana, "/password"), "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    })  # fmt: skip
    assert changed.status_code == 303
    assert other.get("/watches").status_code == 303  # signed out there
    assert store.get_session(token_hash(old)) is None
    assert ana.get("/watches").status_code == 200  # the browser that changed it has a new session
    entry = [e for e in audit(store) if e["action"] == "user.password_changed"][-1]
    assert entry["actor"] == "ana" and entry["details"]["sessions_ended"] == 2


# ----------------------------------------------------------------------------- TOTP


def _enrol(client: httpx.Client, clock: Clock) -> str:
    page = client.post("/account/totp/start", data={"csrf_token": csrf(client)})
    assert page.status_code == 200
    secret = SECRET.search(page.text)
    uri = URI.search(page.text)
    assert secret and uri
    plain = secret.group(1).replace(" ", "")
    assert uri.group(1).startswith("otpauth://totp/watchfloor:ana?") and f"secret={plain}" in uri.group(1)
    wrong = client.post("/account/totp/confirm", data={"csrf_token": csrf(client), "code": "000000"})
    assert wrong.status_code == 400
    code = code_at(plain, step_of(clock()))
    assert client.post("/account/totp/confirm", data={"csrf_token": csrf(client), "code": code}).status_code == 303
    assert "since" in client.get("/account").text
    return plain


@contextmanager
def _password_step(live: Any, login: Any, name: str = "ana") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10) as client:
        response = login(client, name, PASSWORD, "/watches")
        assert response.status_code == 200 and 'action="/login/code"' in response.text  # asks for the code
        assert SESSION_COOKIE not in client.cookies
        yield client


def test_totp_sign_in_with_a_computed_code(person: Any, clock: Clock, live: Any, login: Any, store: Store) -> None:
    secret = _enrol(person(), clock)
    clock.advance(seconds=30)  # the enrolment used this step's code; a code is never accepted twice
    with _password_step(live, login) as client:
        assert client.get("/watches").status_code == 303  # not signed in yet
        wrong = client.post("/login/code", data={"code": "123456", "next": "/watches"})
        assert wrong.status_code == 401 and "Wrong or already used code" in wrong.text
        code = code_at(secret, step_of(clock()))
        signed_in = client.post("/login/code", data={"code": code, "next": "/watches"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/watches"
        assert client.get("/watches").status_code == 200
    with _password_step(live, login) as replay:
        assert replay.post("/login/code", data={"code": code}).status_code == 401  # the same code again
        clock.advance(seconds=30)
        assert replay.post("/login/code", data={"code": code_at(secret, step_of(clock()))}).status_code == 303
    started = [e for e in audit(store) if e["action"] == "session.started"]
    assert started[-1]["details"]["second_factor"] is True
    assert [e["action"] for e in audit(store) if e["action"].startswith("user.totp")] == [
        "user.totp_started", "user.totp_enrolled",
    ]  # fmt: skip
    log = "\n".join(r.entry.decode() for r in store.audit_rows())
    assert secret not in log and code not in log


def test_wrong_codes_end_the_challenge_and_the_cookie_alone_is_nothing(
    person: Any, clock: Clock, live: Any, login: Any
) -> None:
    secret = _enrol(person(), clock)
    clock.advance(seconds=30)
    with _password_step(live, login) as client:
        for _ in range(4):
            assert client.post("/login/code", data={"code": "000000"}).status_code == 401
        fifth = client.post("/login/code", data={"code": "000000"})
        assert fifth.status_code == 401 and "Please sign in again" in fifth.text
        # the challenge is gone: even the right code no longer signs in with it
        late = client.post("/login/code", data={"code": code_at(secret, step_of(clock()))})
        assert late.status_code == 401 and SESSION_COOKIE not in client.cookies
    with httpx.Client(base_url=live.base_url, follow_redirects=False) as stranger:  # no challenge cookie
        assert stranger.post("/login/code", data={"code": code_at(secret, step_of(clock()))}).status_code == 401


def test_totp_reset_from_the_command_line(person: Any, clock: Clock, store: Store, settings: Any) -> None:
    ana = person()
    _enrol(ana, clock)
    result = CliRunner().invoke(
        cli, ["user", "totp-reset", "ana", "--by", "adm", "--home", str(settings.home)],
        env={"WATCHFLOOR_DB": store.url},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "removed its second factor" in result.output and "1 session(s) ended" in result.output
    assert store.get_totp("ana") is None
    assert ana.get("/watches").status_code == 303  # its sessions ended
    entry = audit(store)[-1]
    assert entry["actor"] == "adm" and entry["action"] == "user.totp_reset" and entry["target"] == "user:ana"
    assert person("ana", add=False).get("/watches").status_code == 200  # the password alone again


# ----------------------------------------------------------------------------- API tokens


def _token(client: httpx.Client, *scopes: str, name: str = "script", days: str = "30") -> str:
    page = client.post("/account/tokens", data={"csrf_token": csrf(client), "name": name, "days": days,
                                                "scopes": list(scopes)})  # fmt: skip
    assert page.status_code == 200, page.text
    match = NEW_TOKEN.search(page.text)
    assert match
    return match.group(1)


def test_api_tokens_are_limited_to_their_scope(
    person: Any, live: Any, store: Store, clock: Clock, make_watch: Any, make_alert: Any
) -> None:
    make_alert(make_watch())
    ana = person()
    reader = _token(ana, "read_alerts")
    assert reader not in ana.get("/account").text  # shown once
    stored = store.list_api_tokens("ana")[0]
    assert stored.scopes == ("read_alerts",) and reader not in stored.token_hash

    def bearer(token: str) -> httpx.Client:
        return httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    with bearer(reader) as api:
        assert api.get("/api/alerts").status_code == 200
        refused = api.get("/api/watches")
        assert refused.status_code == 403 and refused.json()["error"] == (
            "forbidden: your API token's scope lacks the 'read_watches' permission"
        )
        assert api.post("/api/watches", json={}).status_code == 403  # no CSRF needed, but no scope either
        assert api.get("/watches", follow_redirects=False).status_code == 303  # pages never take tokens
        with api.stream("GET", "/events/alerts") as stream:
            assert stream.status_code == 200
    proposer = _token(ana, "read_watches", "propose_watch", name="proposer")
    with bearer(proposer) as api:
        proposed = api.post("/api/watches", json={
            "name": "By script", "query": "flood*", "purpose": "public-safety", "legal_basis": "s.2",
            "owner": "desk", "days": 5,
        })  # fmt: skip
        assert proposed.status_code == 201, proposed.text  # a bearer request needs no CSRF token
        assert proposed.json()["watch"]["created_by"] == "ana"
    beyond = ana.post("/account/tokens", data={"csrf_token": csrf(ana), "name": "x", "days": "5",
                                               "scopes": ["approve_watch"]})  # fmt: skip
    assert beyond.status_code == 400 and "cannot grant approve_watch" in beyond.text

    token_id = store.list_api_tokens("ana")[-1].id  # the reader
    assert ana.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf(ana)}).status_code == 303
    with bearer(reader) as api:
        assert api.get("/api/alerts").status_code == 401
    clock.advance(days=31)
    with bearer(proposer) as api:
        assert api.get("/api/watches").status_code == 401  # expired
    with bearer("wft_not-a-token") as api:
        assert api.get("/api/alerts").status_code == 401

    log = audit(store)
    assert [e["action"] for e in log if e["action"].startswith("token.")] == [
        "token.created", "token.created", "token.revoked",
    ]  # fmt: skip
    used = [e for e in log if e["details"].get("via", "").startswith("token:")]
    assert {e["details"]["via"] for e in used} >= {f"token:{token_id}"}
    assert any(e["action"] == "web.refused" and e["details"]["route"] == "/api/watches" for e in used)
    assert any(e["action"] == "watch.proposed" for e in log)
    raw = "\n".join(r.entry.decode() for r in store.audit_rows())
    assert reader not in raw and proposer not in raw


def test_a_demoted_owner_s_token_loses_what_the_new_role_lacks(person: Any, live: Any, store: Store) -> None:
    sam = person("sam", Role.supervisor)
    token = _token(sam, "read_watches", "approve_watch")
    store._conn.execute("UPDATE users SET role = 'analyst' WHERE username = 'sam'")  # type: ignore[attr-defined]
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/watches").status_code == 200
        refused = api.post("/api/watches/1/approve")
        assert refused.status_code == 403 and "your role lacks the 'approve_watch'" in refused.json()["error"]
