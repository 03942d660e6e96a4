"""Sessions, login, logout, password change and CSRF, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from watchfloor.config import Settings
from watchfloor.governance.passwords import hash_password, one_time_password, verify_password
from watchfloor.model import Role, User, utcnow
from watchfloor.store import Session, Store
from watchfloor.web.app import create_app
from watchfloor.web.sessions import SESSION_COOKIE, token_hash

Login = Callable[..., httpx.Response]

PAGES = ["/", "/watches", "/status", "/alerts/1"]
API = ["/api/alerts", "/api/alerts/1", "/api/watches", "/api/status", "/events/alerts"]
GENERIC_FAILURE = "Wrong username or password."
ANALYST = "ana"  # the analyst fixture's account
PASSWORD = "correct horse battery staple"


def _set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


# ----------------------------------------------------------------------------- signed out


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_signed_out_browsers_to_login(client: httpx.Client, path: str) -> None:
    response = client.get(path, params={"x": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}%3Fx%3D1"


@pytest.mark.parametrize("path", API)
def test_api_refuses_signed_out_requests_with_json_401(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()


def test_htmx_requests_are_redirected_by_header_not_by_swapping_the_login_page(client: httpx.Client) -> None:
    response = client.get("/status", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=/status"


def test_healthz_needs_no_session(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_an_unknown_session_cookie_is_not_a_session(client: httpx.Client, analyst: Any) -> None:
    client.cookies.set(SESSION_COOKIE, "made-up-token")
    assert client.get("/").status_code == 303
    assert client.get("/api/alerts").status_code == 401


# ----------------------------------------------------------------------------- login


def test_login_sets_a_strict_httponly_session_cookie(
    client: httpx.Client, analyst: Any, store: Store, login: Login
) -> None:
    response = login(client, ANALYST, PASSWORD, next_path="/watches")
    assert response.status_code == 303
    assert response.headers["location"] == "/watches"
    [cookie] = _set_cookie_headers(response, SESSION_COOKIE)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain HTTP on localhost unless secure_cookies is set
    assert any(f.startswith("max-age=") and 11 * 3600 < int(f.split("=")[1]) <= 12 * 3600 for f in flags)
    # only the token's hash is stored
    token = client.cookies[SESSION_COOKIE]
    session = store.get_session(token_hash(token))
    assert session is not None and session.username == ANALYST
    assert store.get_session(token) is None
    assert timedelta(hours=11, minutes=59) < session.expires_at - session.created_at <= timedelta(hours=12)
    assert client.get("/watches").status_code == 200


def test_secure_cookies_setting_marks_the_cookie_secure(
    serve: Callable[[FastAPI], Any], settings: Settings, store: Store, analyst: Any
) -> None:
    live = serve(create_app(replace(settings, secure_cookies=True), store))
    with httpx.Client(base_url=live.base_url, follow_redirects=False) as c:
        form = c.get("/login")
        token = form.text.split('name="login_token" value="')[1].split('"')[0]
        login_cookie = form.headers["set-cookie"]
        # a client keeps Secure cookies away from plain http, so send this one by hand
        response = c.post(
            "/login",
            data={"username": ANALYST, "password": PASSWORD, "login_token": token},
            headers={"Cookie": login_cookie.split(";")[0]},
        )
    assert response.status_code == 303
    [cookie] = _set_cookie_headers(response, SESSION_COOKIE)
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]
    assert "secure" in [part.strip().lower() for part in login_cookie.split(";")]


def test_wrong_password_and_unknown_user_get_the_same_generic_answer(
    client: httpx.Client, analyst: Any, login: Login
) -> None:
    wrong = login(client, ANALYST, "not the password at all")
    unknown = login(client, "nobody-by-this-name", "not the password at all")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert GENERIC_FAILURE in response.text
        assert not _set_cookie_headers(response, SESSION_COOKIE)
    assert "nobody-by-this-name" not in unknown.text


def test_login_without_the_form_token_is_refused(client: httpx.Client, analyst: Any) -> None:
    # a cross-site form post carries neither the wf_login cookie nor a matching token
    response = client.post("/login", data={"username": ANALYST, "password": PASSWORD, "login_token": "forged"})
    assert response.status_code == 403
    assert not _set_cookie_headers(response, SESSION_COOKIE)
    client.get("/login")  # now the cookie is there, but the field is still wrong
    response = client.post("/login", data={"username": ANALYST, "password": PASSWORD, "login_token": "forged"})
    assert response.status_code == 403
    assert not _set_cookie_headers(response, SESSION_COOKIE)


def test_repeated_failures_are_rate_limited_per_user_and_address(
    client: httpx.Client, analyst: Any, store: Store, login: Login
) -> None:
    for _ in range(5):
        assert login(client, ANALYST, "wrong password, again").status_code == 401
    blocked = login(client, ANALYST, PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    assert 0 < int(blocked.headers["retry-after"]) <= 300
    assert not _set_cookie_headers(blocked, SESSION_COOKIE)
    # another account from the same address is not locked out
    store.add_user(User(username="bo", role=Role.analyst, password_hash=hash_password(PASSWORD)))
    assert login(client, "bo", PASSWORD).status_code == 303


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client: httpx.Client, analyst: Any, next_path: str, login: Login) -> None:
    response = login(client, ANALYST, PASSWORD, next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_every_login_rotates_the_session(
    live: Any, client: httpx.Client, analyst: Any, store: Store, login: Login
) -> None:
    # two browsers: two different sessions, both valid (a desk runs several screens)
    login(client, ANALYST, PASSWORD)
    first = client.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=str(client.base_url), follow_redirects=False) as other:
        login(other, ANALYST, PASSWORD)
        second = other.cookies[SESSION_COOKIE]
        assert second != first
        assert other.get("/").status_code == 200
    assert client.get("/").status_code == 200
    # signing in again in the same browser replaces its session: the old token is dead
    login(client, ANALYST, PASSWORD)
    third = client.cookies[SESSION_COOKIE]
    assert third not in (first, second)
    assert store.get_session(token_hash(first)) is None
    assert store.get_session(token_hash(third)) is not None
    with httpx.Client(base_url=str(client.base_url), follow_redirects=False) as replay:
        replay.cookies.set(SESSION_COOKIE, first)
        assert replay.get("/").status_code == 303


def test_an_expired_session_is_refused_and_deleted(client: httpx.Client, analyst: Any, store: Store) -> None:
    token = "an-old-token-from-yesterday"
    then = utcnow() - timedelta(hours=13)
    store.add_session(Session(token_hash(token), ANALYST, then, then + timedelta(hours=12), "csrf"))
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/").status_code == 303
    assert client.get("/api/alerts").status_code == 401
    assert store.get_session(token_hash(token)) is None


# ----------------------------------------------------------------------------- logout and CSRF


def test_logout_ends_the_session(signed_in: httpx.Client, store: Store, csrf_token_of: Callable[..., str]) -> None:
    token = signed_in.cookies[SESSION_COOKIE]
    response = signed_in.post("/logout", data={"csrf_token": csrf_token_of(signed_in)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert store.get_session(token_hash(token)) is None
    signed_in.cookies.set(SESSION_COOKIE, token)  # even if a copy of the cookie survives
    assert signed_in.get("/").status_code == 303
    assert signed_in.get("/api/alerts").status_code == 401


def test_logout_without_csrf_token_is_refused(signed_in: httpx.Client) -> None:
    response = signed_in.post("/logout")
    assert response.status_code == 403
    assert signed_in.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert signed_in.post("/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert signed_in.get("/").status_code == 200  # still signed in


def test_csrf_token_is_accepted_in_the_htmx_header(signed_in: httpx.Client, csrf_token_of: Callable[..., str]) -> None:
    token = csrf_token_of(signed_in)
    page = signed_in.get("/").text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page
    assert signed_in.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint of the app, also inside included routers (whatever this FastAPI
    version wraps them in)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or route
        yield from _api_routes(getattr(inner, "routes", []))


def test_every_state_changing_route_requires_the_csrf_token(live: Any, signed_in: httpx.Client) -> None:
    app: FastAPI = live.app
    unsafe = sorted(
        {route.path for route in _api_routes(app.routes) if route.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    )
    assert "/logout" in unsafe and "/password" in unsafe
    for path in unsafe:
        if path in ("/login", "/login/code"):
            # protected by its own double-submit form token, tested above; the code step by its
            # SameSite=Strict challenge cookie (tests/web/test_web_accounts.py)
            continue
        response = signed_in.post(path, data={"anything": "x"})
        assert response.status_code == 403, path


# ----------------------------------------------------------------------------- password change


@pytest.fixture
def first_admin(store: Store) -> tuple[str, str]:
    """The admin `watchfloor init` creates: a one-time password that must be changed."""
    otp = one_time_password()
    store.add_user(User("admin", Role.admin, hash_password(otp), must_change_password=True))
    return "admin", otp


def test_a_one_time_password_must_be_changed_first(
    client: httpx.Client, store: Store, first_admin: tuple[str, str], login: Login, csrf_token_of: Callable[..., str]
) -> None:
    username, otp = first_admin
    response = login(client, username, otp, next_path="/watches")
    assert response.status_code == 303
    assert response.headers["location"] == "/password"
    assert client.get("/").headers["location"] == "/password"
    assert client.get("/status").headers["location"] == "/password"
    assert client.get("/api/alerts").status_code == 403
    page = client.get("/password")
    assert page.status_code == 200
    assert "Set your own password" in page.text
    old_token = client.cookies[SESSION_COOKIE]
    csrf = csrf_token_of(client, "/password")

    def change(current: str, new: str, confirm: str) -> httpx.Response:
        return client.post(
            "/password",
            data={"csrf_token": csrf, "current_password": current, "new_password": new, "confirm_password": confirm},
        )

    assert "current password is wrong" in change("not-it", "a new long passphrase", "a new long passphrase").text
    assert "differ" in change(otp, "a new long passphrase", "a new long passphrase!").text
    assert "at least 12 characters" in change(otp, "short", "short").text
    assert "must differ from the current" in change(otp, otp, otp).text
    assert store.get_user(username).must_change_password  # type: ignore[union-attr]

    done = change(otp, "a new long passphrase", "a new long passphrase")
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    user = store.get_user(username)
    assert user is not None and not user.must_change_password
    assert verify_password(user.password_hash, "a new long passphrase")
    # the password change rotated the session
    assert client.cookies[SESSION_COOKIE] != old_token
    assert store.get_session(token_hash(old_token)) is None
    assert client.get("/").status_code == 200
    assert client.get("/api/alerts").status_code == 200
    # and the one-time password no longer works
    with httpx.Client(base_url=str(client.base_url), follow_redirects=False) as other:
        assert login(other, username, otp).status_code == 401
        assert login(other, username, "a new long passphrase").headers["location"] == "/"


def test_password_change_without_csrf_token_is_refused(
    client: httpx.Client, store: Store, first_admin: tuple[str, str], login: Login
) -> None:
    username, otp = first_admin
    login(client, username, otp)
    response = client.post(
        "/password",
        data={
            "current_password": otp,
            "new_password": "a long new passphrase",
            "confirm_password": "a long new passphrase",
        },
    )
    assert response.status_code == 403
    assert store.get_user(username).must_change_password  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- headers


def test_pages_carry_security_headers(signed_in: httpx.Client) -> None:
    response = signed_in.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


def test_a_forged_forwarded_for_header_does_not_dodge_the_throttle(
    client: httpx.Client, analyst: Any, login: Login
) -> None:
    for i in range(5):
        client.headers["X-Forwarded-For"] = f"203.0.113.{i}"
        assert login(client, ANALYST, "wrong password, again").status_code == 401
    client.headers["X-Forwarded-For"] = "203.0.113.99"
    assert login(client, ANALYST, PASSWORD).status_code == 429


def test_a_post_without_session_comes_back_to_the_feed_not_to_the_post(client: httpx.Client) -> None:
    response = client.post("/logout", data={"csrf_token": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"
