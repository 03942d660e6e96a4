"""The watch floor's pages over real HTTP: what each role sees, and every form (queue,
alert, case, inbox, notification rules) doing what it says and coming back with a notice."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from watchfloor.governance.passwords import hash_password
from watchfloor.model import Role, User

PASSWORD = "a long enough password"
NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)


@pytest.fixture
def as_role(live: Any, store: Any, login: Any) -> Iterator[Callable[[Role], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(role: Role) -> httpx.Client:
        name = f"{role.value}-user"
        store.add_user(User(name, role, hash_password(PASSWORD)))
        client = httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10)
        assert login(client, name, PASSWORD).status_code == 303
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def nav_of(html: str) -> str:
    match = NAV.search(html)
    assert match, html[:500]
    return match.group(1)


def test_navigation_shows_what_the_role_may_open(as_role: Any) -> None:
    seen = {role: nav_of(as_role(role).get("/password").text) for role in Role}
    for link in ("/queue", "/cases", "/wall", "/figures", "/inbox"):
        assert f'href="{link}"' in seen[Role.analyst]
    assert 'href="/notifications"' not in seen[Role.analyst]
    assert 'href="/notifications"' in seen[Role.supervisor]
    assert 'href="/figures"' in seen[Role.auditor]
    for link in ("/queue", "/cases", "/wall", "/inbox", "/notifications"):
        assert f'href="{link}"' not in seen[Role.auditor]


def test_queue_page_forms(signed_in: httpx.Client, csrf_token_of: Any, store: Any, make_watch: Any,
                          make_alert: Any) -> None:
    watch = make_watch("Threats", severity="urgent")
    twins = [make_alert(watch, f"Bomb threat at Elm school https://t.example/{n}") for n in range(3)]
    other = make_alert(watch, "Bomb threat at the station")
    page = signed_in.get("/queue").text
    assert "×3 near-duplicates" in page and 'id="bulk"' in page and "Keyboard shortcuts" in page
    assert 'data-due="' in page and "left</time>" in page
    token = csrf_token_of(signed_in, "/queue")

    claimed = signed_in.post("/queue/act", data={
        "csrf_token": token, "action": "claim", "alert_ids": str(twins[0].id), "include_duplicates": "true",
        "next": "/queue?view=mine",
    })
    assert claimed.status_code == 303 and claimed.headers["location"] == "/queue?view=mine"
    mine = signed_in.get("/queue?view=mine").text
    assert "Claimed 3 alerts." in mine and "Bomb threat at the station" not in mine
    assert "Claimed 3 alerts." not in signed_in.get("/queue").text  # a notice shows once

    refused = signed_in.post("/queue/act", data={"csrf_token": token, "action": "escalate",
                                                  "alert_ids": str(other.id)})
    assert refused.status_code == 303
    assert "may affect a person" in signed_in.get("/queue").text
    assert store.alert_statuses([other.id])[other.id].value == "open"

    bulk = signed_in.post("/queue/act", data={
        "csrf_token": token, "action": "open_case", "alert_ids": [str(other.id), str(twins[0].id)],
        "include_duplicates": "true", "reason": "One incident, several reports", "case_title": "Elm and station",
    })
    assert bulk.status_code == 303 and bulk.headers["location"].startswith("/cases/")
    case_page = signed_in.get(bulk.headers["location"]).text
    assert "Elm and station" in case_page and "with 4 alerts." in case_page
    assert signed_in.get("/queue").text.count('class="alert-row queue-row') == 0


def test_alert_page_triage_panel(signed_in: httpx.Client, csrf_token_of: Any, make_watch: Any,
                                 make_alert: Any) -> None:
    alert = make_alert(make_watch("Threats"))
    page = signed_in.get(f"/alerts/{alert.id}").text
    assert 'id="triage-h"' in page and 'value="escalate"' in page and "History (0)" in page
    token = csrf_token_of(signed_in, f"/alerts/{alert.id}")
    response = signed_in.post("/queue/act", data={"csrf_token": token, "action": "dismiss",
                                                  "alert_ids": str(alert.id), "next": f"/alerts/{alert.id}"})
    assert response.headers["location"] == f"/alerts/{alert.id}"
    page = signed_in.get(f"/alerts/{alert.id}").text
    assert "dismiss by ana" in page and "Reason to reopen" in page and "History (1)" in page


def test_case_page_forms(signed_in: httpx.Client, csrf_token_of: Any, make_watch: Any, make_alert: Any,
                         store: Any) -> None:
    watch = make_watch("Threats")
    a, b, c = (make_alert(watch, f"Bomb threat report {n}") for n in range(3))
    token = csrf_token_of(signed_in)
    new = signed_in.post("/cases", data={"csrf_token": token, "title": "Harbour"})
    case_url = new.headers["location"]
    case_id = int(case_url.rsplit("/", 1)[1])

    def act(**fields: Any) -> httpx.Response:
        response = signed_in.post(f"{case_url}/act", data={"csrf_token": token, **fields})
        assert response.status_code == 303, response.text
        return response

    act(action="evidence", alert_refs=f"{a.id}, {b.id} {c.id}", reason="All about the harbour")
    act(action="note", body="Spoke to the **harbour master**.")
    act(action="task", title="Check the CCTV request", assignee="ana", due_at="2030-01-02T10:30")
    task_id = store.case_file(case_id).tasks[0].id
    act(action="task_done", task_id=str(task_id))
    act(action="update", title="Harbour incident", status="on_hold", owner="ana")
    page = signed_in.get(case_url).text
    assert "Harbour incident" in page and "<strong>harbour master</strong>" in page
    assert "Check the CCTV request" in page and "2030-01-02 10:30:00 UTC" in page
    assert page.count('<tr id="evidence-') == 3 and "on hold" in page
    assert 'id="export"' not in page  # analysts do not export evidence
    act(action="evidence", alert_refs="abc", reason="x")
    assert "is not an alert id" in signed_in.get(case_url).text

    split = act(action="split", alert_ids=str(c.id), title="Second harbour", reason="Other pier")
    new_url = split.headers["location"]
    assert new_url != case_url and "Second harbour" in signed_in.get(new_url).text
    new_id = int(new_url.rsplit("/", 1)[1])
    merged = signed_in.post(f"/cases/{new_id}/act", data={"csrf_token": token, "action": "merge",
                                                          "into_case_id": str(case_id), "reason": "Same pier"})
    assert merged.headers["location"] == case_url
    assert "merged into" in signed_in.get(new_url).text
    listing = signed_in.get("/cases").text
    assert "Harbour incident" in listing and "→ case" in listing
    assert signed_in.get("/cases/abc").status_code == 404
    assert signed_in.get("/cases/99999").status_code == 404


def test_supervisor_pages_export_rules_inbox_wall_figures(as_role: Any, csrf_token_of: Any, store: Any,
                                                          make_watch: Any, make_alert: Any) -> None:
    from watchfloor.cases.export import verify_export

    sup = as_role(Role.supervisor)
    ana = as_role(Role.analyst)
    watch = make_watch("Threats")
    alert = make_alert(watch)
    token = csrf_token_of(sup, "/notifications")
    added = sup.post("/notifications", data={"csrf_token": token, "channel": "webhook",
                                             "target": "https://hooks.example/x", "events": ["alert", "escalation"],
                                             "watch_id": str(watch.id), "min_severity": "high"})
    assert added.status_code == 303
    page = sup.get("/notifications").text
    assert "signing secret, shown only now: whsec_" in page and "https://hooks.example/x" in page
    assert "whsec_" not in sup.get("/notifications").text  # once only
    rule_id = store.list_notification_rules()[0].id
    assert sup.post(f"/notifications/{rule_id}/delete", data={"csrf_token": token}).status_code == 303
    assert store.list_notification_rules() == []

    ana_token = csrf_token_of(ana, "/queue")
    ana.post("/queue/act", data={"csrf_token": ana_token, "action": "escalate", "alert_ids": str(alert.id),
                                 "reason": "Please decide on this one"})
    nav = nav_of(sup.get("/inbox").text)
    assert 'class="count-badge">1' in nav
    inbox = sup.get("/inbox").text
    assert "Escalated by analyst-user" in inbox and "Please decide on this one" in inbox
    sup.post("/inbox/read", data={"csrf_token": token})
    assert "count-badge" not in nav_of(sup.get("/inbox").text)

    case_id = store.create_case("Export me", "supervisor-user", actor="supervisor-user",
                                at=store.list_alerts()[0].alert.created_at)[0].id
    exported = sup.post(f"/cases/{case_id}/export", data={"csrf_token": token})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert verify_export(exported.content).ok
    wall = sup.get("/wall").text
    assert "Watch floor" in wall and '<svg class="volume"' in wall and "alerts in the last 6 hours" in wall
    figures = sup.get("/figures?period=all").text
    assert "Threats" in figures and "/api/figures.csv?period=all" in figures
