"""The signals and network pages over real HTTP (and the graph in Chromium): /network with its
evidence, JSON and GEXF; /trends with spikes and near-duplicate groups; the alert page's signals.

Synthetic data only: invented accounts (pseudonyms) sharing invented links."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import pytest

from watchfloor.governance.passwords import hash_password
from watchfloor.model import PostSignals, Role, Spike, User, utcnow
from watchfloor.store import IngestBatch

RING = ("p:00000000000000a1", "p:00000000000000a2", "p:00000000000000a3")
PASSWORD = "a long enough password"


def _coordinated(make_watch: Any, make_alert: Any) -> None:
    """Three accounts post the same two links seconds apart; a fourth posts one link alone."""
    watch = make_watch("outages", query="outage")
    for k, link in enumerate(("https://rumour.example/a", "https://rumour.example/b")):
        for j, author in enumerate(RING):
            make_alert(
                watch,
                f"Power outage everywhere, read this {k}.{j}",
                terms={"outage": "outage"},
                author=author,
                links=(link,),
                age=timedelta(minutes=10 * k, seconds=j),
            )
    make_alert(
        watch,
        "An outage on my street",
        terms={"outage": "outage"},
        author="p:00000000000000b9",
        links=("https://rumour.example/a",),
        age=timedelta(hours=3),
    )


def test_network_page_json_and_gexf(
    store: Any, live: Any, login: Any, analyst: Any, make_watch: Any, make_alert: Any
) -> None:
    _coordinated(make_watch, make_alert)
    store.add_user(User("sup", Role.supervisor, hash_password(PASSWORD)))
    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        assert login(client, analyst.username, analyst.password).status_code == 303
        page = client.get("/network", params={"kind": "link", "window": 60, "min_repetition": 2})
        assert page.status_code == 200
        html = page.text
        assert 'id="component-1"' in html and 'id="component-2"' not in html
        for author in RING:
            assert author in html
        assert "p:00000000000000b9" not in html  # alone: no component
        assert "rumour.example/a" in html and '<a href="https://rumour.example' not in html  # links as text
        assert "/network.gexf" not in html  # analysts do not export
        data = client.get("/api/network", params={"kind": "link", "window": 60, "min_repetition": 2}).json()
        assert sorted(n["id"] for n in data["nodes"]) == list(RING)
        assert len(data["edges"]) == 3 and {e["weight"] for e in data["edges"]} == {2}
        component = data["components"][0]
        assert component["window_s"] == 60 and component["min_repetition"] == 2 and len(component["shares"]) == 6
        stricter = client.get("/api/network", params={"kind": "link", "window": 60, "min_repetition": 3}).json()
        assert stricter["components"] == []
        assert client.get("/api/network", params={"kind": "faces"}).status_code == 422
        assert client.get("/network.gexf").status_code == 403

    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        assert login(client, "sup", PASSWORD).status_code == 303
        assert "/network.gexf?" in client.get("/network").text
        gexf = client.get("/network.gexf", params={"kind": "link", "window": 60, "min_repetition": 2})
        assert gexf.status_code == 200
        assert gexf.headers["content-type"].startswith("application/gexf+xml")
        assert re.search(
            r'attachment; filename="watchfloor-coordination-link-\d{8}T\d{6}Z\.gexf"',
            gexf.headers["content-disposition"],
        )
        assert len(ET.fromstring(gexf.content).findall(".//{http://gexf.net/1.3}node")) == 3


def test_trends_and_alert_signals(store: Any, signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("outages", query="outage")
    alert = make_alert(watch, "Power outage on the whole east side", terms={"outage": "outage"})
    now = utcnow()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=30)
    store.commit_batch(
        IngestBatch(
            source="test-signals",
            cursor="1",
            signals=[
                PostSignals(
                    post=alert.post,
                    computed_at=now,
                    lang="en",
                    lang_confidence=0.93,
                    sentiment=-0.42,
                    toxicity=0.87,
                    threat=0.12,
                    near_duplicate_group="g:00000000000000ff",
                )
            ],
            spikes=[
                Spike(
                    watch_id=watch.id or 0,
                    term="outage",
                    window_start=start,
                    window_end=start + timedelta(minutes=5),
                    count=42,
                    baseline=3.5,
                    threshold=9.1,
                    excess=38.5,
                    detected_at=now,
                )
            ],
        )
    )
    trends = signed_in.get("/trends")
    assert trends.status_code == 200
    assert "outages" in trends.text and "<code>outage</code>" in trends.text
    assert ">42<" in trends.text and "3.5" in trends.text and "+38.5" in trends.text
    spikes = signed_in.get("/api/spikes").json()["spikes"]
    assert [(s["term"], s["count"], s["baseline"], s["excess"]) for s in spikes] == [("outage", 42, 3.5, 38.5)]

    detail = signed_in.get(f"/alerts/{alert.id}")
    assert detail.status_code == 200
    assert "<h3>Signals</h3>" in detail.text and "0.87" in detail.text and "-0.42" in detail.text
    assert "describe the text, never its author" in detail.text
    api = signed_in.get(f"/api/alerts/{alert.id}/signals").json()
    assert api["signals"]["toxicity"] == 0.87 and api["near_duplicates"]["posts"] == 1
    assert signed_in.get("/api/alerts/999999/signals").status_code == 404


@pytest.mark.browser
def test_the_graph_draws_in_chromium_under_the_csp(
    browser: Any, live: Any, analyst: Any, make_watch: Any, make_alert: Any
) -> None:
    from playwright.sync_api import expect

    _coordinated(make_watch, make_alert)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{live.base_url}/login?next=/network")
    page.fill("#username", analyst.username)
    page.fill("#password", analyst.password)
    page.click("form.form button[type=submit]")
    expect(page).to_have_url(f"{live.base_url}/network")
    graph = page.locator("#network-graph")
    expect(graph).to_have_attribute("data-ready", "true", timeout=10_000)
    expect(graph).to_have_attribute("data-nodes", "3")
    expect(graph).to_have_attribute("data-edges", "3")
    expect(graph.locator("canvas").first).to_be_visible()
    assert page.locator("style#__________cytoscape_stylesheet").count() == 0  # no inline style injected
    page.locator("#network-graph").click(position={"x": 5, "y": 5})
    assert problems == [], problems  # no CSP violations, no script errors
