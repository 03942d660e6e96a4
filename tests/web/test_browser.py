"""The watch floor in a real browser: headless Chromium through Playwright.

First sign-in with a one-time password, set a new one, watch a new alert arrive on the
feed without a reload, open it, see the matched term highlighted. Also saves the
screenshot (docs/img/watch-floor.png with WATCHFLOOR_UPDATE_SCREENSHOTS=1) — made from the
SYNTHETIC alerts below only.

Needs Debian's Chromium at /usr/bin/chromium: skipped when run by hand without it, a
failure under CI (CI=true).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from watchfloor.governance.passwords import hash_password, one_time_password
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Role, Severity, User
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.store import Store

pytestmark = pytest.mark.browser

NEW_PASSWORD = "tide gauge at the old mill"


# Synthetic watches and posts: invented places and people, written for this screenshot.
WATCHES: dict[str, dict[str, Any]] = {
    "Flooding & evacuations": {
        "query": 'flood* OR evacuat* OR evakuier* OR "water rising"',
        "severity": Severity.high,
        "purpose": "Spot flood emergencies early and alert the regional duty officer.",
        "legal_basis": "Public task — Civil Contingencies Act 2004 s.2",
        "owner": "regional-duty-desk",
    },
    "Threats to schools": {
        "query": '"bomb threat" OR (threat* NEAR/5 school)',
        "severity": Severity.urgent,
        "purpose": "Pass credible threats against schools to the police liaison officer.",
        "legal_basis": "Public task — Education Act duty of care",
        "owner": "safeguarding-desk",
    },
    "Polling-day misinformation": {
        "query": '"polling station" AND (closed OR moved OR cancelled)',
        "severity": Severity.medium,
        "purpose": "Correct false claims about where and when to vote.",
        "legal_basis": "Public task — electoral administration",
        "owner": "elections-desk",
    },
    "Power & water outages": {
        "query": 'blackout OR outage OR "no power"',
        "severity": Severity.low,
        "purpose": "Track outages that affect vulnerable residents.",
        "legal_basis": "Public task — resilience planning",
        "owner": "regional-duty-desk",
    },
    "Wildfire smoke": {
        "query": 'wildfire OR "smoke plume"',
        "severity": Severity.high,
        "purpose": "Early warning of wildfires near roads and homes.",
        "legal_basis": "Public task — Fire and Rescue Services Act 2004",
        "owner": "fire-liaison",
    },
}

# (watch, text, {query part: literal matched}, platform, lang, minutes ago)
POSTS: list[tuple[str, str, dict[str, str], str, str, int]] = [
    (
        "Flooding & evacuations",
        "Water rising fast on Harbour Road in Riverside, cars already floating. Is anyone coordinating "
        "an evacuation of the care home on the corner?",
        {'"water rising"': "water rising", "evacuat*": "evacuat"},
        "bluesky",
        "en",
        16,
    ),
    (
        "Threats to schools",
        "Police outside Elmstead Primary after a bomb threat was phoned in this morning. Kids are being "
        "walked over to the sports hall, parents asked to wait at the gate.",
        {'"bomb threat"': "bomb threat"},
        "bluesky",
        "en",
        12,
    ),
    (
        "Polling-day misinformation",
        "Someone in the group chat says the polling station at Northgate library is closed today?? "
        "Where are we meant to vote now",
        {'"polling station"': "polling station", "closed": "closed"},
        "mastodon",
        "en",
        9,
    ),
    (
        "Flooding & evacuations",
        "Hochwasser in der Altstadt: die Feuerwehr evakuiert gerade die Uferstraße, bitte den Bereich meiden.",
        {"evakuier*": "evakuier"},
        "mastodon",
        "de",
        7,
    ),
    (
        "Power & water outages",
        "Blackout across the whole east side since 6am, traffic lights out on Mill Lane. Drive carefully.",
        {"blackout": "blackout"},
        "bluesky",
        "en",
        5,
    ),
    (
        "Wildfire smoke",
        "Thick smoke plume visible from the ridge, looks like the wildfire jumped the road near Cedar Pass.",
        {'"smoke plume"': "smoke plume", "wildfire": "wildfire"},
        "bluesky",
        "en",
        3,
    ),
    (
        "Flooding & evacuations",
        "Flood warning upgraded for the Riverside estate. Sandbags at the community centre until 8pm.",
        {"flood*": "flood"},
        "rss",
        "en",
        1,
    ),
]
LIVE_POST = (
    "Threats to schools",
    "Second bomb threat reported at Elmstead High, students evacuated to the playing fields as a precaution.",
    {'"bomb threat"': "bomb threat"},
)


def test_first_login_live_feed_and_detail(
    browser: Any, live: Any, store: Store, signal: AlertSignal, make_watch: Any, make_alert: Any,
    screenshot_path: Any,
) -> None:
    from playwright.sync_api import expect

    otp = one_time_password()
    store.add_user(User("admin", Role.admin, hash_password(otp), must_change_password=True))
    pseudonym = HmacPseudonymiser(b"synthetic screenshot secret, not a real key")
    watches = {name: make_watch(name, **fields) for name, fields in WATCHES.items()}
    for i, (watch, text, terms, platform, lang, minutes) in enumerate(POSTS):
        make_alert(
            watches[watch],
            text,
            terms=terms,
            platform=platform,
            lang=lang,
            author=pseudonym(platform, f"synthetic-account-{i}"),
            age=timedelta(minutes=minutes, seconds=7 * i + 3),
        )

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)

    # signed out: to the login form; the one-time password leads to /password first
    page.goto(f"{live.base_url}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("#username", "admin")
    page.fill("#password", otp)
    page.click("form.form button[type=submit]")
    expect(page).to_have_url(f"{live.base_url}/password")
    expect(page.locator("h1")).to_have_text("Set your own password")
    page.fill("#current_password", otp)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("form.form button[type=submit]")

    # the live feed, connected to the event stream
    expect(page).to_have_url(f"{live.base_url}/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=5000)
    rows = page.locator("#feed-rows > tr")
    expect(rows).to_have_count(len(POSTS))
    expect(page.locator(".who .role")).to_have_text("admin")

    # a new alert is committed and announced: it appears on top without a reload
    marker = page.evaluate("() => { window.__notReloaded = true; return true; }")
    watch, text, terms = LIVE_POST
    new = make_alert(
        watches[watch],
        text,
        terms=terms,
        author=pseudonym("bluesky", "synthetic-account-live"),
    )
    signal.publish(new.id)
    expect(page.locator(f"#alert-{new.id}")).to_be_visible(timeout=5000)
    expect(rows).to_have_count(len(POSTS) + 1)
    expect(rows.first).to_have_id(f"alert-{new.id}")
    assert marker and page.evaluate("() => window.__notReloaded === true")
    expect(rows.first.locator("mark")).to_have_text("bomb threat")

    page.screenshot(path=str(screenshot_path("watch-floor.png")), full_page=True)

    # open it: the detail page highlights the matched term and explains it
    rows.first.locator("td.excerpt a").click()
    expect(page).to_have_url(f"{live.base_url}/alerts/{new.id}")
    expect(page.locator(".post-text mark")).to_have_text("bomb threat")
    expect(page.locator("table.plain code").first).to_have_text('"bomb threat"')
    expect(page.locator("body")).to_contain_text("Pass credible threats against schools")

    assert problems == [], problems  # no CSP violations, no script errors
