"""The HTML pages over real HTTP: feed, alert detail, watches, status, escaping, 404s."""

from __future__ import annotations

import re
from typing import Any

import httpx

from watchfloor.model import Deletion, utcnow
from watchfloor.store import IngestBatch, Store

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr id="alert-(\d+)"', html)


def test_feed_shows_the_latest_50_newest_first(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("School threats")
    ids = [make_alert(watch).id for _ in range(55)]
    page = signed_in.get("/")
    assert page.status_code == 200
    assert _rows(page.text) == [str(i) for i in reversed(ids[-50:])]
    assert f'sse-connect="/events/alerts?after={ids[-1]}"' in page.text
    assert 'sse-swap="alert"' in page.text and 'hx-swap="afterbegin"' in page.text
    assert 'id="live"' in page.text


def test_feed_row_shows_what_an_analyst_needs(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch("School threats", severity="urgent")
    alert = make_alert(watch, "Bomb threat phoned in to Elm Street school", author="p:77aa00bb11cc22dd", lang="en")
    row = signed_in.get("/").text.split(f'<tr id="alert-{alert.id}"')[1].split("</tr>")[0]
    assert f'href="/alerts/{alert.id}"' in row
    assert '<span class="badge sev-urgent">urgent</span>' in row
    assert "School threats" in row
    assert f'<td class="num">{alert.score:.2f}</td>' in row
    assert '<mark title="matched: &#34;bomb threat&#34;">Bomb threat</mark>' in row
    assert "p:77aa00bb11cc22dd" in row
    assert "bluesky" in row and ">en<" in row


def test_the_feed_without_alerts_says_so(signed_in: httpx.Client) -> None:
    page = signed_in.get("/").text
    assert _rows(page) == []
    assert "No alerts yet" in page
    assert 'sse-connect="/events/alerts?after=0"' in page


def test_post_text_is_escaped_everywhere(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch(f"watch {EVIL}", query=f"bomb {EVIL}", purpose=EVIL, legal_basis=EVIL, owner=EVIL)
    alert = make_alert(
        watch,
        f"Bomb threat {EVIL} evacuate",
        author="p:1111222233334444",
        links=(f"javascript:{EVIL}",),
        hashtags=(EVIL,),
        url=f"javascript:alert(1)//{EVIL}",
        terms={"<script>": "<script>", "bomb": "bomb"},
    )
    for path in ("/", f"/alerts/{alert.id}", "/watches"):
        html = signed_in.get(path).text
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path
    detail = signed_in.get(f"/alerts/{alert.id}").text
    assert '<mark title="matched: &lt;script&gt;">&lt;script&gt;</mark>' in detail
    assert 'href="javascript:' not in detail


def test_alert_detail_explains_the_match(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    watch = make_watch(
        "School threats",
        query='"bomb threat" OR evacuat*',
        purpose="Protect pupils",
        legal_basis="Public task",
        severity="high",
        sla_minutes=60,
    )
    text = "Evacuation at Elm Street school after a bomb threat. Evacuate calmly."
    alert = make_alert(
        watch,
        text,
        links=("https://news.example/elm",),
        hashtags=("elmstreet",),
        url="https://bsky.app/profile/x/post/3",
    )
    page = signed_in.get(f"/alerts/{alert.id}")
    assert page.status_code == 200
    html = page.text
    post = html.split('<blockquote class="post-text">')[1].split("</blockquote>")[0]
    assert post == (
        '<mark title="matched: evacuat*">Evacuation</mark> at Elm Street school after a '
        '<mark title="matched: &#34;bomb threat&#34;">bomb threat</mark>. '
        '<mark title="matched: evacuat*">Evacuate</mark> calmly.'
    )
    # the explanation table: term, kind, character offsets, count, matched text
    assert "<code>&#34;bomb threat&#34;</code>" in html
    bomb = text.index("bomb threat")
    assert f'<td class="mono">{bomb}–{bomb + 11}</td>' in html
    second = text.index("Evacuate")
    assert f"0–10, {second}–{second + 8}" in html
    assert '<td class="num">2</td>' in html
    assert "<q>Evacuation</q> <q>Evacuate</q>" in html
    # score parts and total
    assert "severity" in html and "match" in html and f"{alert.score:.2f}" in html
    # the watch and its accountability fields
    for expected in ("Protect pupils", "Public task", "1 h", "&#34;bomb threat&#34; OR evacuat*"):
        assert expected in html
    # post metadata; links inside posts are text, never links
    assert alert.post.native_id in html
    assert "https://news.example/elm" in html
    assert 'href="https://news.example/elm"' not in html
    assert "#elmstreet" in html
    assert 'href="https://bsky.app/profile/x/post/3" rel="noopener noreferrer nofollow"' in html


def test_alert_detail_of_a_post_deleted_upstream(
    signed_in: httpx.Client, store: Store, make_watch: Any, make_alert: Any
) -> None:
    alert = make_alert(make_watch())
    gone = Deletion(alert.post.platform, alert.post.native_id, utcnow())
    store.commit_batch(IngestBatch(source="test", cursor="d", deletions=[gone]))
    html = signed_in.get(f"/alerts/{alert.id}").text
    assert "Post deleted upstream" in html
    assert "evacuation under way" not in html
    assert "<code>&#34;bomb threat&#34;</code>" in html  # the explanation remains
    feed = signed_in.get("/").text
    assert "post deleted upstream" in feed


def test_unknown_alert_pages_are_404(signed_in: httpx.Client) -> None:
    for ref in ("999", "abc", "1e3", "-1", "٣"):
        page = signed_in.get(f"/alerts/{ref}")
        assert page.status_code == 404, ref
        assert "Not found" in page.text
        assert 'href="/watches"' in page.text  # still inside the signed-in layout


def test_watches_page(signed_in: httpx.Client, make_watch: Any) -> None:
    make_watch("Flooding", query="flood* AND NOT drill", purpose="Warn the duty officer", severity="medium")
    make_watch("Old", enabled=False)
    html = signed_in.get("/watches").text
    assert "Flooding" in html and "flood* AND NOT drill" in html and "Warn the duty officer" in html
    assert "Public task, Civil Contingencies Act s.2" in html and "duty-desk" in html
    assert '<span class="state on">active</span>' in html
    assert '<span class="state off">disabled</span>' in html
    assert "4 h" in html  # the medium SLA


def test_status_page(signed_in: httpx.Client, make_watch: Any, make_alert: Any) -> None:
    make_alert(make_watch())
    html = signed_in.get("/status").text
    assert "Open alerts" in html and "Dead letters" in html
    assert '<td class="watch">test</td>' in html
    assert 'hx-trigger="every 5s"' in html


def test_static_assets_are_served_locally(client: httpx.Client) -> None:
    for path in ("/static/app.css", "/static/vendor/htmx.min.js", "/static/vendor/sse.js", "/static/feed.js"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert 'version:"2.0.8"' in client.get("/static/vendor/htmx.min.js").text
    assert "htmx.defineExtension('sse'" in client.get("/static/vendor/sse.js").text
