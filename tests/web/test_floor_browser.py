"""The watch floor in a real browser (Debian's Chromium through Playwright):

- the whole flow: sign in -> claim -> disposition -> open a case -> add evidence -> export,
  mostly with the keyboard shortcuts, and the downloaded ZIP verified;
- bulk actions on selected queue items (near-duplicates included);
- an SLA breach under a controlled clock: the app's and the checker's clocks are moved
  past the deadline, nothing sleeps;
- and the queue screenshot (docs/img/queue.png with WATCHFLOOR_UPDATE_SCREENSHOTS=1),
  made from the SYNTHETIC watches and posts below only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from watchfloor.cases.export import verify_export
from watchfloor.governance.passwords import hash_password
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Role, Severity, User, utcnow
from watchfloor.store import Store
from watchfloor.triage.actions import Triage
from watchfloor.triage.sla import SlaChecker

pytestmark = pytest.mark.browser

PASSWORD = "harbour lights at dusk"
PSEUDONYM = HmacPseudonymiser(b"synthetic queue screenshot secret, not a real key")

# Synthetic watches and posts: invented places and people, written for these tests.
WATCHES: dict[str, dict[str, Any]] = {
    "Threats to schools": {"severity": Severity.urgent, "sla_minutes": 30, "query": '"bomb threat" OR evacuat*'},
    "Flooding & evacuations": {"severity": Severity.high, "sla_minutes": 60, "query": "flood* OR evacuat*"},
    "Polling-day misinformation": {"severity": Severity.medium, "sla_minutes": 240,
                                   "query": '"polling station" AND (closed OR moved)'},
    "Power & water outages": {"severity": Severity.low, "sla_minutes": 24 * 60, "query": "blackout OR outage"},
}
BOMB = "Bomb threat phoned in to Elmstead Primary, children being walked to the sports hall. Share to warn parents"
POSTS: list[tuple[str, str, dict[str, str], int]] = [
    # (watch, text, {query part: matched literal}, minutes ago)
    ("Threats to schools", BOMB + " https://short.example/a1", {'"bomb threat"': "bomb threat"}, 12),
    ("Threats to schools", BOMB + " https://short.example/b7", {'"bomb threat"': "bomb threat"}, 11),
    ("Threats to schools", BOMB.lower() + " https://short.example/c3", {'"bomb threat"': "bomb threat"}, 9),
    ("Threats to schools", BOMB + "!!", {'"bomb threat"': "bomb threat"}, 8),
    ("Threats to schools", "Second bomb threat at Elmstead High today, the school is being evacuated as a precaution.",
     {'"bomb threat"': "bomb threat", "evacuat*": "evacuat"}, 4),
    ("Flooding & evacuations", "Water rising fast on Harbour Road in Riverside, is anyone evacuating the care home?",
     {"evacuat*": "evacuat"}, 38),
    ("Flooding & evacuations", "Flood warning upgraded for the Riverside estate. Sandbags at the community centre.",
     {"flood*": "flood"}, 21),
    ("Flooding & evacuations", "Hochwasser: die Feuerwehr evakuiert die Uferstraße, Flooding reported downstream.",
     {"flood*": "flood"}, 6),
    ("Polling-day misinformation", "Someone says the polling station at Northgate library is closed today?? Where now",
     {'"polling station"': "polling station", "closed": "closed"}, 25),
    ("Polling-day misinformation", "The polling station in Marsh Lane has moved to the church hall, apparently",
     {'"polling station"': "polling station", "moved": "moved"}, 14),
    ("Power & water outages", "Blackout across the whole east side since 6am, traffic lights out on Mill Lane.",
     {"blackout": "blackout"}, 50),
]


def seed(store: Store, make_watch: Callable[..., Any], make_alert: Callable[..., Any]) -> dict[str, list[Any]]:
    watches = {name: make_watch(name, **fields) for name, fields in WATCHES.items()}
    alerts: dict[str, list[Any]] = {name: [] for name in WATCHES}
    for i, (watch, text, terms, minutes) in enumerate(POSTS):
        alerts[watch].append(
            make_alert(watches[watch], text, terms=terms, author=PSEUDONYM("bluesky", f"synthetic-{i}"),
                       age=timedelta(minutes=minutes, seconds=3 * i))
        )
    return alerts


def sign_in(page: Any, base_url: str, username: str, next_path: str = "/queue") -> None:
    page.goto(f"{base_url}{next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_path) + "$"))


def watch_problems(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    return problems


@pytest.fixture
def people(store: Store) -> None:
    store.add_user(User("sue", Role.supervisor, hash_password(PASSWORD)))
    store.add_user(User("ana", Role.analyst, hash_password(PASSWORD)))


def test_claim_dispose_open_case_add_evidence_export(browser: Any, live: Any, store: Store, people: None,
                                                     make_watch: Any, make_alert: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    alerts = seed(store, make_watch, make_alert)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    problems = watch_problems(page)
    sign_in(page, live.base_url, "sue")
    expect(page.locator("#queue-live")).to_have_attribute("data-state", "live")
    rows = page.locator("#queue-rows > tr")
    expect(rows).to_have_count(8)  # 11 alerts, the four reposts are one item
    group = rows.nth(1)  # second: the other school threat matched two terms and scores higher
    expect(group.locator(".dupes")).to_have_text("×4 near-duplicates")

    # claim the repost group with the keyboard: j focuses the first item, j the next, c claims
    page.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile(r"\bfocused\b"))
    page.keyboard.press("j")
    expect(group).to_have_class(re.compile(r"\bfocused\b"))
    page.keyboard.press("c")
    expect(page.locator(".flashes")).to_contain_text("Claimed 4 alerts.")
    expect(rows.nth(1).locator("td.holder")).to_have_text("sue")

    # dismiss the low-priority outage post: its row's own button
    outage = alerts["Power & water outages"][0]
    page.locator(f"#q-{outage.id} .act-dismiss").click()
    expect(page.locator(".flashes")).to_contain_text("Dismissed 1 alert.")
    expect(page.locator(f"#q-{outage.id}")).to_have_count(0)

    # open a case from the second school threat: select it (x), o, write the reason, Enter
    school = alerts["Threats to schools"][-1]
    page.locator(f"#q-{school.id} td.holder").click()
    page.keyboard.press("x")
    expect(page.locator("#picked")).to_have_text("1 selected")
    page.keyboard.press("o")
    expect(page.locator("#bulk-reason")).to_be_focused()
    page.keyboard.type("Two threats against Elmstead schools in one morning")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/cases/\d+$"))
    expect(page.locator("h1")).to_contain_text("Threats to schools: alert")
    expect(page.locator("table.evidence tbody tr")).to_have_count(1)

    # add evidence: the first flood post, by its alert id
    flood = alerts["Flooding & evacuations"][0]
    page.fill("#ev-alerts", str(flood.id))
    page.fill("#ev-reason", "The care home is next to the school")
    page.click("form[aria-label='Add evidence'] button[type=submit]")
    expect(page.locator(".flashes")).to_contain_text("Added 1 alert to case")
    expect(page.locator("table.evidence tbody tr")).to_have_count(2)
    expect(page.locator("table.evidence")).to_contain_text("Water rising fast on Harbour Road")

    # export: a download that verifies, and a line in the timeline
    with page.expect_download() as download:
        page.click("#export")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    report = verify_export(path)
    assert report.ok and report.evidence == 2, report.problems
    page.reload()
    expect(page.locator(".timeline li").last).to_contain_text("exported")
    assert problems == [], problems


def test_bulk_actions_on_selected_items(browser: Any, live: Any, store: Store, people: None, make_watch: Any,
                                        make_alert: Any, signal: Any) -> None:
    from playwright.sync_api import expect

    alerts = seed(store, make_watch, make_alert)
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    problems = watch_problems(page)
    sign_in(page, live.base_url, "ana")
    rows = page.locator("#queue-rows > tr")
    expect(rows).to_have_count(8)

    # select the repost group and both polling posts, then f: false positive for all 6 alerts
    polling = alerts["Polling-day misinformation"]
    group_lead = page.locator("#queue-rows > tr", has=page.locator(".dupes")).get_attribute("data-alert-id")
    for alert_id in (group_lead, polling[0].id, polling[1].id):
        page.check(f"#pick-{alert_id}")
    expect(page.locator("#picked")).to_have_text("3 selected")
    page.keyboard.press("f")
    expect(page.locator(".flashes")).to_contain_text("Marked as false positive 6 alerts.")
    expect(rows).to_have_count(5)

    # select everything left and assign it to the supervisor through the action menu
    page.check("#pick-all")
    expect(page.locator("#picked")).to_have_text("5 selected")
    page.select_option("#bulk-action", "assign")
    expect(page.locator("#bulk-assignee")).to_be_visible()
    page.select_option("#bulk-assignee", "sue")
    page.click("#bulk-go")
    expect(page.locator(".flashes")).to_contain_text("Assigned 5 alerts.")
    expect(page.locator("td.holder", has_text="sue")).to_have_count(5)

    # live: a new alert is committed and announced; the queue shows it without a reload
    page.evaluate("() => { window.__notReloaded = true; }")
    flood_watch = store.get_watch(alerts["Flooding & evacuations"][0].watch_id)
    new = make_alert(flood_watch, "Evacuation of the Riverside care home has started", terms={"evacuat*": "evacuat"},
                     author=PSEUDONYM("bluesky", "synthetic-live"))
    signal.publish(new.id)
    expect(page.locator(f"#q-{new.id}")).to_be_visible()
    expect(rows).to_have_count(6)
    assert page.evaluate("() => window.__notReloaded === true")

    # escalating without a reason is refused by the browser and the server alike
    page.check("#pick-all")
    page.select_option("#bulk-action", "escalate")
    page.click("#bulk-go")
    expect(page.locator("#bulk-reason:invalid")).to_have_count(1)
    assert store.floor_counts(utcnow()).open_alerts == 6
    assert problems == [], problems


def test_sla_breach_under_a_controlled_clock_and_the_screenshot(browser: Any, live: Any, store: Store,
                                                                people: None, make_watch: Any,
                                                                make_alert: Any, screenshot_path: Any) -> None:
    from playwright.sync_api import expect

    alerts = seed(store, make_watch, make_alert)
    triage = Triage(store)
    triage.claim(store.get_user("ana"), [alerts["Flooding & evacuations"][1].id])
    triage.claim(store.get_user("sue"), [alerts["Polling-day misinformation"][0].id])

    # move the app's and the checker's clocks 25 minutes on: the flood post raised 38 minutes
    # ago (due after 60) and the four reposts raised 8 to 12 minutes ago (due after 30) breach
    later = utcnow() + timedelta(minutes=25)
    live.app.state.clock = lambda: later
    breaches = SlaChecker(store, clock=lambda: later).check_once()
    late = alerts["Flooding & evacuations"][0]
    reposts = [a.id for a in alerts["Threats to schools"][:4]]
    assert sorted(b.alert_id for b in breaches) == sorted([late.id, *reposts])
    assert SlaChecker(store, clock=lambda: later).check_once() == []  # recorded once

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems = watch_problems(page)
    sign_in(page, live.base_url, "sue")
    row = page.locator(f"#q-{late.id}")
    expect(row).to_have_class(re.compile(r"\boverdue\b"))
    expect(row.locator(".countdown")).to_have_text(re.compile(r"^overdue \d+:\d\d$"))
    expect(row.locator(".badge.breach")).to_have_text("SLA breached")
    expect(page.locator("nav .count-badge")).to_contain_text("2")  # escalated to the supervisor: one per group
    expect(page.locator(".queue-counts")).to_contain_text("overdue")
    page.locator("#queue-rows > tr").nth(1).click(position={"x": 5, "y": 5})
    page.screenshot(path=str(screenshot_path("queue.png")), full_page=True)

    page.goto(f"{live.base_url}/inbox")
    messages = page.locator(".inbox .message")
    expect(messages).to_have_count(2)
    expect(messages.filter(has_text=f"SLA breach: high alert {late.id}")).to_have_count(1)
    expect(messages.filter(has_text="with 3 near-duplicates")).to_have_count(1)
    page.goto(f"{live.base_url}/wall")
    alarm = page.locator(".wall-counts > div.alarm")
    expect(alarm).to_have_count(2)  # overdue and breaches
    expect(page.locator(".wall-list").last).to_contain_text(f"alert {late.id}")
    page.goto(f"{live.base_url}/alerts/{late.id}")
    expect(page.locator(".triage-panel")).to_contain_text("breached")
    assert problems == [], problems
