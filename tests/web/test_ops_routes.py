"""/healthz, /readyz and /metrics of the web app, over real HTTP: public, content-free, and
/metrics behind a bearer token when the deployment sets one."""

from __future__ import annotations

import httpx
import pytest

from watchfloor.pipeline.bus import BusSettings
from watchfloor.pipeline.bus_nats import NatsBus
from watchfloor.web.app import create_app


def test_health_readiness_and_metrics_need_no_session(client: httpx.Client, make_watch, make_alert) -> None:
    make_alert(make_watch(), "Bomb threat reported at the school")
    assert client.get("/healthz").json() == {"ok": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ok": True, "checks": {"store": "ok"}}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "watchfloor_store_alerts 1.0" in lines
    assert "watchfloor_store_open_alerts 1.0" in lines
    assert 'watchfloor_source_events_per_second{source="test"} 0.0' in lines
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    assert "Bomb threat" not in metrics.text  # counts only, never content


def test_readiness_fails_while_the_bus_is_unreachable(serve, settings, store, signal) -> None:
    app = create_app(settings, store, signal)
    app.state.bus = NatsBus("nats://127.0.0.1:9", BusSettings())  # never connected: nothing listens there
    live = serve(app)
    ready = httpx.get(f"{live.base_url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json() == {"ok": False, "checks": {"store": "ok", "bus": "unreachable"}}
    assert httpx.get(f"{live.base_url}/healthz", timeout=10).status_code == 200  # alive all the same


def test_metrics_need_the_token_when_one_is_set(
    serve, settings, store, signal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHFLOOR_METRICS_TOKEN", "s3cret-scrape-token")
    live = serve(create_app(settings, store, signal))
    url = f"{live.base_url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    answer = httpx.get(url, headers={"Authorization": "Bearer s3cret-scrape-token"}, timeout=10)
    assert answer.status_code == 200 and "watchfloor_store_alerts" in answer.text
    assert httpx.get(f"{live.base_url}/readyz", timeout=10).status_code == 200  # probes stay open
