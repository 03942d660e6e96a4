"""Template filters and the login redirect guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from watchfloor.web.errors import safe_next
from watchfloor.web.rendering import feed_time, minutes_text, seconds_text, utc_time, web_url


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "0 min"), (30, "30 min"), (60, "1 h"), (240, "4 h"), (90, "1 h 30 min"), (1440, "1 d"), (1500, "1 d 1 h")],
)
def test_minutes_for_people(minutes: int, text: str) -> None:
    assert minutes_text(minutes) == text


def test_seconds_for_people() -> None:
    assert seconds_text(None) == "—"
    assert seconds_text(0.42) == "420 ms"
    assert seconds_text(12.34) == "12.3 s"
    assert seconds_text(600) == "10 min"


def test_times_are_shown_in_utc() -> None:
    plus_two = datetime(2025, 11, 25, 9, 48, 3, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert plus_two.hour == 11
    assert utc_time(plus_two) == "2025-11-25 09:48:03 UTC"
    assert utc_time(None) == "—"


def test_feed_time_is_short_today_and_dated_before() -> None:
    now = datetime.now(UTC)
    assert feed_time(now) == now.strftime("%H:%M:%S")
    earlier = now - timedelta(days=2)
    assert feed_time(earlier) == earlier.strftime("%m-%d %H:%M")


@pytest.mark.parametrize(
    ("url", "linkable"),
    [
        ("https://bsky.app/x", True),
        ("HTTP://example.org", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,x", False),
        (None, False),
        ("", False),
    ],
)
def test_only_web_urls_become_links(url: str | None, linkable: bool) -> None:
    assert web_url(url) is linkable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/alerts/3?x=1", "/alerts/3?x=1"),
        (None, "/"),
        ("", "/"),
        ("alerts", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example", "/"),
    ],
)
def test_after_login_the_browser_stays_on_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
