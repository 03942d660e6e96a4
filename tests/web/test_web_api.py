"""The JSON API over real HTTP: paging, one alert, watches, status, the OpenAPI schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from watchfloor.model import Deletion, utcnow
from watchfloor.store import IngestBatch, Store


def test_alerts_page_with_after_id(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("School threats")
    ids = [make_alert(watch).id for _ in range(5)]
    first = signed_in.get("/api/alerts", params={"limit": 2}).json()["alerts"]
    assert [a["id"] for a in first] == ids[:2]
    second = signed_in.get("/api/alerts", params={"after_id": first[-1]["id"], "limit": 2}).json()["alerts"]
    assert [a["id"] for a in second] == ids[2:4]
    rest = signed_in.get("/api/alerts", params={"after_id": second[-1]["id"]}).json()["alerts"]
    assert [a["id"] for a in rest] == ids[4:]
    assert signed_in.get("/api/alerts", params={"after_id": ids[-1]}).json() == {"alerts": []}


def test_alerts_filter_by_watch(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    a, b = make_watch("A"), make_watch("B")
    make_alert(a)
    wanted = make_alert(b)
    make_alert(a)
    got = signed_in.get("/api/alerts", params={"watch_id": b.id}).json()["alerts"]
    assert [x["id"] for x in got] == [wanted.id]
    assert got[0]["watch_name"] == "B"


def test_alerts_limit_is_bounded(signed_in: httpx.Client) -> None:
    assert signed_in.get("/api/alerts", params={"limit": 500}).status_code == 200
    for bad in ({"limit": 501}, {"limit": 0}, {"after_id": -1}, {"limit": "many"}):
        response = signed_in.get("/api/alerts", params=bad)
        assert response.status_code == 422, bad
        assert "error" in response.json()


def test_one_alert_with_its_explanation_and_post(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("School threats", severity="urgent", sla_minutes=30)
    text = "Bomb threat at Elm Street school — evacuation ordered"
    alert = make_alert(
        watch,
        text,
        author="p:5e1f0c9a2b3d4e6f",
        links=("https://news.example/elm",),
        hashtags=("elmstreet",),
        url="https://bsky.app/profile/x/post/1",
    )
    body = signed_in.get(f"/api/alerts/{alert.id}").json()
    assert body["id"] == alert.id
    assert body["watch_id"] == watch.id
    assert body["watch_name"] == "School threats"
    assert body["severity"] == "urgent"
    assert body["status"] == "open"
    assert body["score"] == alert.score
    hits = {h["term"]: h for h in body["explanation"]["hits"]}
    assert hits['"bomb threat"'] == {"term": '"bomb threat"', "kind": "phrase", "spans": [[0, 11]]}
    assert hits["evacuat*"]["kind"] == "prefix"
    start, end = hits["evacuat*"]["spans"][0]
    assert text[start:end] == "evacuation"
    assert [p["name"] for p in body["explanation"]["score_parts"]] == ["severity", "match"]
    post = body["post"]
    assert post["text"] == text
    assert post["author"] == "p:5e1f0c9a2b3d4e6f"
    assert post["links"] == ["https://news.example/elm"]
    assert post["hashtags"] == ["elmstreet"]
    assert post["platform"] == "bluesky" and post["version"] == "1" and post["lang"] == "en"
    assert post["url"] == "https://bsky.app/profile/x/post/1"
    due = body["due_at"]
    created = body["created_at"]
    assert due > created


def test_unknown_alert_is_a_json_404(signed_in: httpx.Client) -> None:
    response = signed_in.get("/api/alerts/424242")
    assert response.status_code == 404
    assert response.json() == {"error": "no alert with id 424242"}


def test_an_alert_whose_post_was_deleted_upstream_has_post_null(
    signed_in: httpx.Client, store: Store, make_watch: Any, make_alert: Any
) -> None:
    alert = make_alert(make_watch())
    store.commit_batch(
        IngestBatch(
            source="test",
            cursor="del",
            deletions=[Deletion(alert.post.platform, alert.post.native_id, utcnow())],
        )
    )
    body = signed_in.get(f"/api/alerts/{alert.id}").json()
    assert body["post"] is None
    assert body["explanation"]["hits"]  # the explanation stays


def test_watches(signed_in: httpx.Client, make_watch: Any) -> None:
    make_watch("Live one", severity="low")
    make_watch("Expired one", expires_at=utcnow() - timedelta(days=1))
    make_watch("Disabled one", enabled=False)
    watches = {w["name"]: w for w in signed_in.get("/api/watches").json()["watches"]}
    assert watches["Live one"]["active"] is True
    assert watches["Live one"]["severity"] == "low"
    assert watches["Live one"]["sla_minutes"] == 24 * 60
    assert watches["Live one"]["legal_basis"].startswith("Public task")
    assert watches["Expired one"]["active"] is False and watches["Expired one"]["enabled"] is True
    assert watches["Disabled one"]["active"] is False and watches["Disabled one"]["enabled"] is False


def test_status(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    make_alert(make_watch())
    body = signed_in.get("/api/status").json()
    assert body["counts"] == {
        "posts": 1,
        "alerts": 1,
        "open_alerts": 1,
        "dead_letters": 0,
        "watches": 1,
        "active_watches": 1,
    }
    [source] = body["sources"]
    assert source["source"] == "test"
    assert source["cursor"] == "1"
    assert source["events_total"] == 1


def test_openapi_schema_describes_the_api(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/alerts", "/api/alerts/{alert_id}", "/api/watches", "/api/status", "/healthz"} <= set(paths)
    assert not {"/", "/login", "/logout", "/password", "/events/alerts"} & set(paths)  # pages stay out
    ok = paths["/api/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/AlertsOut")
    alert = schema["components"]["schemas"]["AlertOut"]
    assert {"id", "watch_id", "watch_name", "severity", "score", "explanation", "post", "due_at"} <= set(
        alert["properties"]
    )
    assert "401" in paths["/api/alerts"]["get"]["responses"]


def test_the_interactive_docs_are_off_because_they_need_a_cdn(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
