"""Accountability end to end in a real browser (headless Chromium through Playwright): an
analyst proposes a watch, a supervisor approves it, and an auditor finds both decisions in
the audit log and verifies the log.

Needs Debian's Chromium at /usr/bin/chromium: skipped when run by hand without it, a
failure under CI (CI=true).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.passwords import hash_password
from watchfloor.model import Role, User
from watchfloor.store import Store

pytestmark = pytest.mark.browser

PASSWORD = "salt marsh at high water"


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")


def test_propose_approve_and_audit_in_the_browser(browser: Any, live: Any, store: Store, settings: Any) -> None:
    from playwright.sync_api import expect

    Keyring(settings.home / KEYS_DIR).initialise(live.app.state.gov.policy.purpose_class)  # signed checkpoints
    for name, role in (("ana", Role.analyst), ("sam", Role.supervisor), ("ada", Role.auditor)):
        store.add_user(User(name, role, hash_password(PASSWORD)))
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    # the analyst proposes a watch through the form
    sign_in(page, live.base_url, "ana")
    expect(page).to_have_url(f"{live.base_url}/")
    page.click("nav >> text=Watches")
    page.click("text=Propose a watch")
    page.fill("#w-name", "Levee breach")
    page.fill("#w-query", '"levee breach" OR (flood* NEAR/3 levee)')
    page.select_option("#w-purpose", "public-safety")
    page.fill("#w-legal", "Civil Contingencies Act s.2")
    page.fill("#w-owner", "duty-desk")
    page.fill("#w-days", "20")
    page.click("form.card button[type=submit]")
    expect(page).to_have_url(f"{live.base_url}/watches")
    expect(page.locator(".flashes")).to_contain_text("pending until a supervisor other than you approves it")
    row = page.locator("tr", has_text="Levee breach")
    expect(row).to_have_attribute("data-state", "pending")
    expect(row.locator("button", has_text="Approve")).to_have_count(0)  # not for analysts

    # a supervisor approves it
    sign_in(page, live.base_url, "sam")
    page.goto(f"{live.base_url}/watches")
    row = page.locator("tr", has_text="Levee breach")
    row.locator("button", has_text="Approve").click()
    expect(page.locator(".flashes")).to_contain_text("approved")
    expect(page.locator("tr", has_text="Levee breach")).to_have_attribute("data-state", "active")
    expect(page.locator("tr", has_text="Levee breach")).to_contain_text("sam")

    # the auditor lands on the audit log, sees both decisions, and verifies the log
    sign_in(page, live.base_url, "ada")
    expect(page).to_have_url(f"{live.base_url}/audit")
    nav = page.locator("nav[aria-label=Main]")
    expect(nav.locator("a", has_text="Live feed")).to_have_count(0)
    for link in ("Audit", "Reports", "Policy", "Watches"):
        expect(nav.locator("a", has_text=link)).to_have_count(1)
    page.fill("#f-action", "watch.")
    page.click("form[role=search] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/audit\?.*action=watch\."))
    entries = page.locator("table.audit tbody tr")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("watch.approved")
    expect(entries.nth(0)).to_contain_text("sam")
    expect(entries.nth(1)).to_contain_text("watch.proposed")
    expect(entries.nth(1)).to_contain_text("ana")
    page.click("text=Verify the log")
    expect(page.locator("#verify-result")).to_contain_text("OK")
    expect(page.locator("#verifier-key")).to_contain_text("watchfloor/")
    with page.expect_download() as download:
        page.click("text=Sign and download a checkpoint now")
    assert download.value.suggested_filename.startswith("watchfloor-checkpoint-")
    assert problems == []
    page.close()
