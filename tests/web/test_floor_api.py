"""The watch floor's JSON API over real HTTP: every queue, case, wall, figures and
notification endpoint, with the CSRF token a state change needs and the refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from watchfloor.cases.export import verify_export
from watchfloor.governance.passwords import hash_password
from watchfloor.model import Role, User

PASSWORD = "a long enough password"


@pytest.fixture
def api(signed_in: httpx.Client, csrf_token_of: Any) -> httpx.Client:
    """The analyst's client, sending the CSRF token as the API expects."""
    signed_in.headers["X-CSRF-Token"] = csrf_token_of(signed_in)
    return signed_in


@pytest.fixture
def sup(live: Any, store: Any, login: Any, csrf_token_of: Any) -> Iterator[httpx.Client]:
    store.add_user(User("sue", Role.supervisor, hash_password(PASSWORD)))
    with httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10) as client:
        assert login(client, "sue", PASSWORD).status_code == 303
        client.headers["X-CSRF-Token"] = csrf_token_of(client)
        yield client


def ids(body: dict[str, Any]) -> list[int]:
    return [item["alert"]["id"] for item in body["items"]]


# ----------------------------------------------------------------------------- queue


def test_queue_claim_release_assign(api: httpx.Client, sup: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    urgent, low = make_watch("Urgent one", severity="urgent"), make_watch("Low one", severity="low")
    a = make_alert(low, "Bomb threat reported, low watch")
    b = make_alert(urgent, "Bomb threat reported at the school")
    body = api.get("/api/queue").json()
    assert ids(body) == [b.id, a.id]
    first = body["items"][0]
    assert first["count"] == 1 and first["assignee"] is None and 0 < first["time_left_s"] <= 30 * 60
    assert first["alert"]["severity"] == "urgent"

    claimed = api.post("/api/queue/claim", json={"alert_ids": [b.id]}).json()
    assert claimed["changed"] == [b.id] and claimed["summary"] == "Claimed 1 alert."
    stolen = sup.post("/api/queue/claim", json={"alert_ids": [b.id]}).json()
    assert stolen["changed"] == [] and stolen["skipped"] == [{"alert_id": b.id, "reason": "held by ana"}]
    assert ids(api.get("/api/queue", params={"view": "mine"}).json()) == [b.id]
    assert ids(api.get("/api/queue", params={"view": "unassigned"}).json()) == [a.id]
    assert ids(api.get("/api/queue", params={"severity": "low"}).json()) == [a.id]
    assert ids(api.get("/api/queue", params={"watch_id": urgent.id}).json()) == [b.id]
    assert api.get("/api/assignees").json() == {"assignees": ["ana", "sue"]}
    assert sup.post("/api/queue/assign", json={"alert_ids": [a.id], "assignee": "ana"}).json()["changed"] == [a.id]
    refused = sup.post("/api/queue/assign", json={"alert_ids": [a.id], "assignee": "nobody"})
    assert refused.status_code == 400 and "not an account" in refused.json()["error"]
    assert api.post("/api/queue/release", json={"alert_ids": [a.id, b.id]}).json()["changed"] == [a.id, b.id]
    triage = api.get(f"/api/alerts/{a.id}/triage").json()
    assert triage["assignee"] is None and [h["kind"] for h in triage["history"]] == ["assigned", "released"]
    assert api.get("/api/alerts/999999/triage").status_code == 404
    assert api.get("/api/queue", params={"view": "everything"}).status_code == 422


def test_dispositions_reasons_duplicates_and_reopen(api: httpx.Client, sup: httpx.Client, store: Any,
                                                    make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("Threats")
    group = [make_alert(watch, f"Bomb threat at Elm school https://x.example/{n}").id for n in range(3)]
    lone = make_alert(watch, "Bomb threat near the station").id
    [item] = [i for i in api.get("/api/queue").json()["items"] if i["count"] == 3]
    assert sorted(item["alert_ids"]) == group

    no_reason = api.post("/api/queue/dispose", json={"alert_ids": [lone], "disposition": "escalate"})
    assert no_reason.status_code == 400 and "may affect a person" in no_reason.json()["error"]
    fp = api.post(
        "/api/queue/dispose",
        json={"alert_ids": [group[0]], "disposition": "false_positive", "include_duplicates": True},
    ).json()
    assert sorted(fp["changed"]) == group
    esc = api.post(
        "/api/queue/dispose",
        json={"alert_ids": [lone], "disposition": "escalate", "reason": "Credible, names a time"},
    ).json()
    assert esc["changed"] == [lone]
    assert api.get("/api/queue").json()["items"] == []
    inbox = sup.get("/api/inbox").json()
    assert inbox["unread"] == 1 and inbox["messages"][0]["kind"] == "escalation"

    assert api.post("/api/queue/reopen", json={"alert_ids": [group[1]], "reason": "no"}).status_code == 400
    back = api.post("/api/queue/reopen", json={"alert_ids": [group[1]], "reason": "Not a false positive"}).json()
    assert back["changed"] == [group[1]]
    assert ids(api.get("/api/queue").json()) == [group[1]]
    unknown = api.post("/api/queue/dispose", json={"alert_ids": [1], "disposition": "shrug"})
    assert unknown.status_code == 422


def test_state_changes_need_the_csrf_token(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    alert = make_alert(make_watch())
    refused = signed_in.post("/api/queue/claim", json={"alert_ids": [alert.id]})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]


# ----------------------------------------------------------------------------- cases


def test_cases_end_to_end_over_the_api(api: httpx.Client, sup: httpx.Client, store: Any, make_watch: Any,
                                       make_alert: Any) -> None:
    watch = make_watch("Threats")
    a, b, c = (make_alert(watch, f"Bomb threat number {n}") for n in range(3))
    opened = api.post(
        "/api/queue/dispose",
        json={"alert_ids": [a.id], "disposition": "open_case", "reason": "Names the school", "case_title": "Elm"},
    ).json()
    case_id = opened["case_id"]
    body = api.get(f"/api/cases/{case_id}").json()
    assert body["case"]["title"] == "Elm" and body["case"]["owner"] == "ana"
    assert body["evidence"][0]["sha256"] and body["evidence"][0]["size"] > 0 and "raw" not in body["evidence"][0]
    add = api.post(f"/api/cases/{case_id}/evidence", json={"alert_ids": [b.id, c.id], "reason": "Same threat"}).json()
    assert add["changed"] == [b.id, c.id]
    note = api.post(f"/api/cases/{case_id}/notes", json={"markdown": "**Called** the school"})
    assert note.status_code == 201 and note.json()["html"] == "<p><strong>Called</strong> the school</p>\n"
    task = api.post(f"/api/cases/{case_id}/tasks", json={"title": "Call police", "assignee": "sue"}).json()
    done = api.post(f"/api/cases/{case_id}/tasks/{task['id']}", json={"status": "done"}).json()
    assert done["status"] == "done" and done["assignee"] == "sue"  # left out: kept
    unassigned = api.post(f"/api/cases/{case_id}/tasks/{task['id']}", json={"assignee": None}).json()
    assert unassigned["assignee"] is None
    updated = api.post(f"/api/cases/{case_id}/update", json={"status": "on_hold", "owner": "sue"}).json()
    assert updated["status"] == "on_hold" and updated["owner"] == "sue"

    split = api.post(f"/api/cases/{case_id}/split", json={"alert_ids": [c.id], "title": "Other school"})
    assert split.status_code == 201
    new_id = split.json()["id"]
    merged = api.post(f"/api/cases/{new_id}/merge", json={"into_case_id": case_id, "reason": "Same after all"})
    assert merged.json()["id"] == case_id
    listing = api.get("/api/cases").json()["cases"]
    assert {(x["id"], x["status"]) for x in listing} == {(case_id, "on_hold"), (new_id, "merged")}
    assert [x["id"] for x in api.get("/api/cases", params={"status": "merged"}).json()["cases"]] == [new_id]
    created = api.post("/api/cases", json={"title": "Empty one"})
    assert created.status_code == 201 and created.json()["alerts"] == []
    assert api.post("/api/cases", json={"title": "x", "alert_ids": [b.id]}).status_code == 400  # no reason
    assert api.post(f"/api/cases/{new_id}/notes", json={"markdown": "late"}).status_code == 409
    assert api.get("/api/cases/424242").status_code == 404

    # export: supervisors only; the ZIP verifies and the export is on the timeline
    assert api.post(f"/api/cases/{case_id}/export").status_code == 403
    exported = sup.post(f"/api/cases/{case_id}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert f"case-{case_id}-evidence-" in exported.headers["content-disposition"]
    report = verify_export(exported.content)
    assert report.ok and report.evidence == 3
    assert report.manifest_sha256 == exported.headers["x-watchfloor-manifest-sha256"]
    timeline = api.get(f"/api/cases/{case_id}").json()["timeline"]
    assert timeline[-1]["kind"] == "exported" and timeline[-1]["actor"] == "sue"


# ----------------------------------------------------------------------------- wall, figures


def test_wall_and_figures(api: httpx.Client, store: Any, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("Threats", severity="urgent", sla_minutes=30)
    old = make_alert(watch, "Bomb threat, an hour old", age=timedelta(hours=1))
    make_alert(watch, "Bomb threat, fresh")
    api.post("/api/queue/dispose", json={"alert_ids": [old.id], "disposition": "false_positive"})
    wall = api.get("/api/wall").json()
    assert wall["counts"]["open_alerts"] == 1 and wall["counts"]["new_1h"] >= 1
    assert len(wall["queue"]) == 1 and wall["bucket_s"] == 600 and len(wall["volume"]) == 36
    assert sum(v["alerts"] for v in wall["volume"]) == 2
    assert wall["sources"][0]["source"] == "test"
    figures = api.get("/api/figures", params={"period": "7d"}).json()
    [f] = figures["watches"]
    assert f["watch"] == "Threats" and f["alerts"] == 2 and f["false_positives"] == 1
    assert f["sla_missed"] == 1 and f["sla_compliance"] == 0.0 and f["false_positive_rate"] == 1.0
    response = api.get("/api/figures.csv", params={"period": "all"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["watch"] == "Threats" and rows[0]["false_positives"] == "1" and rows[0]["median_time_to_triage_s"]
    assert api.get("/api/figures", params={"period": "1y"}).status_code == 422


# ----------------------------------------------------------------------------- notifications


def test_inbox_and_notification_rules(api: httpx.Client, sup: httpx.Client, make_watch: Any) -> None:
    watch = make_watch("Threats")
    hook = sup.post(
        "/api/notification-rules",
        json={"channel": "webhook", "target": "https://hooks.example/wf", "events": ["alert", "sla_breach"],
              "watch_id": watch.id, "min_severity": "high"},
    )
    assert hook.status_code == 201
    rule = hook.json()
    assert rule["secret"].startswith("whsec_") and rule["events"] == ["alert", "sla_breach"]
    assert "secret" not in sup.get("/api/notification-rules").json()["rules"][0]  # shown once only
    mail = sup.post("/api/notification-rules", json={"channel": "email", "target": "duty@example.org",
                                                     "events": ["escalation"]})
    assert mail.status_code == 201 and mail.json()["secret"] is None
    for bad in (
        {"channel": "webhook", "target": "ftp://x.example/", "events": ["alert"]},
        {"channel": "webhook", "target": "https://user:pw@x.example/", "events": ["alert"]},
        {"channel": "email", "target": "not an address", "events": ["alert"]},
        {"channel": "inapp", "target": "nobody", "events": ["alert"]},
        {"channel": "inapp", "target": "ana", "events": ["alert"], "watch_id": 999},
    ):
        assert sup.post("/api/notification-rules", json=bad).status_code == 400, bad
    no_events = {"channel": "inapp", "target": "ana", "events": []}
    assert sup.post("/api/notification-rules", json=no_events).status_code == 422
    assert api.get("/api/notification-rules").status_code == 403  # analysts do not manage rules
    assert sup.post(f"/api/notification-rules/{rule['id']}/delete").status_code == 204
    assert sup.post(f"/api/notification-rules/{rule['id']}/delete").status_code == 404
    assert [r["channel"] for r in sup.get("/api/notification-rules").json()["rules"]] == ["email"]

    assert api.get("/api/inbox").json() == {"unread": 0, "messages": []}
    assert api.post("/api/inbox/read", json={}).json() == {"marked": 0}


def test_the_openapi_schema_documents_the_floor(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/api/queue", "/api/queue/claim", "/api/queue/release", "/api/queue/assign", "/api/queue/dispose",
        "/api/queue/reopen", "/api/alerts/{alert_id}/triage", "/api/assignees", "/api/cases", "/api/cases/{case_id}",
        "/api/cases/{case_id}/update", "/api/cases/{case_id}/notes", "/api/cases/{case_id}/tasks",
        "/api/cases/{case_id}/tasks/{task_id}", "/api/cases/{case_id}/evidence", "/api/cases/{case_id}/merge",
        "/api/cases/{case_id}/split", "/api/cases/{case_id}/export", "/api/wall", "/api/figures", "/api/figures.csv",
        "/api/inbox", "/api/inbox/read", "/api/notification-rules", "/api/notification-rules/{rule_id}/delete",
    }
    assert expected <= set(paths)
    assert not {"/queue", "/queue/act", "/cases/{case_ref}", "/wall", "/figures", "/inbox"} & set(paths)
    dispose = paths["/api/queue/dispose"]["post"]
    assert "400" in dispose["responses"] and "requestBody" in dispose
    assert "application/zip" in paths["/api/cases/{case_id}/export"]["post"]["responses"]["200"]["content"]
