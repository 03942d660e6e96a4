"""Request bodies beyond what schemathesis derives from the schema, over real HTTP on loopback:

1. the watch query of ``POST /api/watches``: random, Unicode and huge queries — made of
   anything, or of the watch language's own pieces. A query is used (201), refused by the
   protected-activity guard (403), or refused with 400 and the ``position`` of the problem
   in the query AS SENT — the parser's position, never a server error;
2. every form post of the pages (they are not in the OpenAPI schema): any path value, known
   and junk fields, repeated fields, huge and binary values, broken encodings, with and
   without the CSRF token — a page, a redirect or a clear 4xx, never a server error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import count
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute

from watchfloor.cases.service import Cases
from watchfloor.governance.passwords import hash_password
from watchfloor.model import Role, User, WatchStatus, utcnow
from watchfloor.query import QuerySyntaxError, parse
from watchfloor.store import Store
from watchfloor.web.tokens import create_token

PASSWORD = "a long enough password"
NUMBERS = count(1)
LIVE = settings(
    max_examples=120, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],  # one server per test
)  # fmt: skip

# --------------------------------------------------------------------------- 1. the watch query

SYNTAX = [
    "AND", "OR", "NOT", "NEAR/3", "ONEAR/2", "NEAR/999", "(", ")", '"', "“", "*", "/", "{", "}", ":", "lang:en",
    "platform:", "has:link", "domain:x", "author:", "author:p:0123456789abcdef", "bomb", "school", "evacuat*",
    "protest", "march", "地震", "ไฟไหม้", "🔥", "\u200b", "\u202e", "e\u0301", "/colou?r/", "/(a+)+/", "\\", "-",
    "!", "\x00", " ", "\t", "\n",
]  # fmt: skip
queries = (
    st.text(max_size=300)
    | st.lists(st.sampled_from(SYNTAX), min_size=1, max_size=30).map(" ".join)
    | st.lists(st.sampled_from(SYNTAX), min_size=1, max_size=30).map("".join)
    | st.sampled_from(["地震" * 1999, "(" * 200 + "x", " NEAR/5 ".join(["a1"] * 300), "x" * 4000, "x" * 4001])
)


@pytest.fixture
def analyst_api(live: Any, store: Store, analyst: Any) -> Iterator[httpx.Client]:
    token, _ = create_token(store, analyst.user, name="fuzz", scopes=["propose_watch"], days=1, now=utcnow())
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


@LIVE
@given(query=queries)
def test_any_watch_query_is_used_or_refused_with_its_position(analyst_api: httpx.Client, query: str) -> None:
    name = f"fuzz {next(NUMBERS)}"  # watch names are unique
    body = {"name": name, "query": query, "purpose": "public-safety", "legal_basis": "s.2", "owner": "d", "days": 5}
    response = analyst_api.post("/api/watches", json=body)
    assert response.status_code < 500, response.text
    answer = response.json()
    if not 1 <= len(query) <= 4000:
        assert response.status_code == 422 and "query" in answer["error"]
        return
    try:
        parse(query.strip())
    except QuerySyntaxError as exc:
        expected = exc.position + len(query) - len(query.lstrip())
        assert response.status_code == 400, answer
        assert answer["position"] == expected and 0 <= expected <= len(query)
        assert answer["error"].startswith(f"the query cannot be used: {exc.message}")
        return
    assert response.status_code in (201, 403), answer  # 403: the protected-activity guard
    if response.status_code == 201:
        assert answer["watch"]["query"] == query.strip() and answer["watch"]["status"] == "pending"
    else:
        assert "protected-activity guard" in answer["error"]


def test_a_bad_query_s_position_counts_the_spaces_sent_before_it(analyst_api: httpx.Client) -> None:
    body = {"name": "n", "query": "   bomb AND", "purpose": "public-safety", "legal_basis": "s.2", "owner": "d",
            "days": 5}  # fmt: skip
    answer = analyst_api.post("/api/watches", json=body)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "the query cannot be used: AND must be followed by a word, phrase or '(', not the end of the query "
        "(at position 11)",
        "position": 11,
    }


# --------------------------------------------------------------------------- 2. every form post


def _routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or route
        yield from _routes(getattr(inner, "routes", []))


SKIPPED = {"/logout"}  # ends the very session the fuzzing uses


def page_posts(app: FastAPI) -> list[tuple[str, list[str]]]:
    """Every POST route of the pages, with the names of its form fields."""
    found = {}
    for route in _routes(app.routes):
        if "POST" in route.methods and not route.include_in_schema and route.path not in SKIPPED:
            fields = [param.alias for param in route.dependant.body_params]
            found[route.path] = sorted(set(fields) | {"csrf_token"})
    return sorted(found.items())


PATH_VALUES = ["1", "2", "3", "0", "-1", "abc", "99999999999999999999999", "٣", "1.5", "%00", "a%2Fb"]
values = (
    st.text(max_size=40)
    | st.sampled_from(["", "1", "0", "-1", "true", "on", "dismiss", "escalate", "merge", "split", "note", "task",
                       "update", "evidence", "claim", "assign", "webhook", "email", "inapp", "alert", "high",
                       "2026-11-25", "2026-11-25T10:00", "p:0123456789abcdef", "https://example.invalid/h"])
    | st.text(min_size=2000, max_size=6000)
    | st.integers(-(2**70), 2**70).map(str)
)  # fmt: skip


@st.composite
def form_posts(draw: st.DrawFn, routes: list[tuple[str, list[str]]]) -> tuple[str, list[tuple[str, str]], str]:
    path, fields = draw(st.sampled_from(routes))
    ids = st.sampled_from(["1", "2", "3"])  # the seeded watch, alerts, case: mostly things that exist
    path = re.sub(r"\{[^}]+\}", lambda _: draw(ids | ids | st.sampled_from(PATH_VALUES)), path)
    known = [name for name in fields if draw(st.integers(0, 9)) < 7]  # most of the route's own fields
    names = known + draw(st.lists(st.sampled_from(fields) | st.text(max_size=12), max_size=6))  # and repeats, junk
    pairs = [(name, draw(values)) for name in draw(st.permutations(names))]
    encoding = draw(st.sampled_from(["urlencoded", "urlencoded", "multipart", "raw"]))
    return path, pairs, encoding


@pytest.fixture
def supervisor_browser(
    live: Any, app: FastAPI, store: Store, analyst: Any, make_watch: Any, make_alert: Any, login: Any
) -> Iterator[httpx.Client]:
    store.add_user(User(username="sam", role=Role.supervisor, password_hash=hash_password(PASSWORD)))
    watch = make_watch()
    make_watch("second", status=WatchStatus.pending, approver=None)
    alerts = [make_alert(watch, native_id=f"at://did:plc:fuzz/app.bsky.feed.post/{n}") for n in range(3)]
    Cases(store, clock=utcnow).open(analyst.user, "Fuzzing case", alert_ids=[alerts[0].id], reason="seeded here")
    with httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=30) as client:
        assert login(client, "sam", PASSWORD).status_code == 303
        yield client


def _post(client: httpx.Client, path: str, pairs: list[tuple[str, str]], encoding: str, csrf: str) -> httpx.Response:
    if encoding == "multipart":
        return client.post(path, data=dict(pairs) | {"csrf_token": csrf}, files={"x": ("x.bin", b"\x00\xff")})
    if encoding == "raw":  # percent-escapes and bytes a form parser must survive
        raw = "&".join(f"{name}={value}" for name, value in pairs).encode("utf-8", "surrogatepass") + b"%zz&\xff=%"
        return client.post(path, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = urlencode([*pairs, ("csrf_token", csrf)])  # repeated names stay repeated
    return client.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_every_form_post_survives_junk(app: FastAPI, supervisor_browser: httpx.Client, csrf_token_of: Any) -> None:
    routes = page_posts(app)
    assert len(routes) >= 20, routes  # the pages' forms were found
    csrf = csrf_token_of(supervisor_browser, "/")
    seen: set[str] = set()

    @settings(LIVE, max_examples=400)  # ~15 per form
    @given(post=form_posts(routes))
    def fuzz(post: tuple[str, list[tuple[str, str]], str]) -> None:
        path, pairs, encoding = post
        response = _post(supervisor_browser, path, pairs, encoding, csrf)
        assert response.status_code < 500, (path, encoding, pairs, response.text[:500])
        seen.add(path.split("/")[1])

    fuzz()
    assert supervisor_browser.get("/account").status_code == 200  # still signed in: the fuzzing really ran
    assert {"queue", "cases", "watches", "authorizations", "account"} <= seen


def test_a_junk_form_post_is_a_clear_refusal_not_a_server_error(
    supervisor_browser: httpx.Client, csrf_token_of: Callable[..., str]
) -> None:
    """The id overflow schemathesis found in the API (a 500 from the database driver), in the
    page forms too: refused as invalid before it reaches the store."""
    csrf = csrf_token_of(supervisor_browser, "/")
    huge = "99999999999999999999999"
    for path, data in [
        ("/queue/act", {"action": "claim", "alert_ids": huge}),
        (f"/cases/{huge}/act", {"action": "note", "body": "x"}),
        ("/cases/1/act", {"action": "task_done", "task_id": huge}),
        (f"/watches/{huge}/approve", {}),
        (f"/authorizations/{huge}/deny", {"reason": "r"}),
        (f"/notifications/{huge}/delete", {}),
        (f"/account/tokens/{huge}/revoke", {}),
    ]:
        response = supervisor_browser.post(path, data=data | {"csrf_token": csrf})
        assert response.status_code == 422, (path, response.status_code)
