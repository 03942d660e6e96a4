"""The web layer's accountability over real HTTP: every authenticated request in the audit
log (ids, never content), watches proposed and approved by two people, the two-person
unmask, and the auditor's pages (log, verification, checkpoints, report, policy)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from watchfloor.governance.audit import entry_dict, parse_checkpoint
from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.passwords import hash_password
from watchfloor.governance.pseudonyms import seal_identity
from watchfloor.model import Role, User, utcnow
from watchfloor.store import Store

PASSWORD = "a long enough password"
POST_TEXT = "Bomb threat reported at Quillfield school, evacuation under way"
AUTHOR = "p:0a1b2c3d4e5f6071"
ACCOUNT = "did:plc:quillfield-clear-account"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)


@pytest.fixture
def people(live: Any, store: Store, login: Any) -> Iterator[Callable[[str, Role], httpx.Client]]:
    """Signed-in clients: ``people("ana", Role.analyst)``; each has ``.csrf`` for API calls."""
    clients: list[httpx.Client] = []

    def person(name: str, role: Role) -> httpx.Client:
        store.add_user(User(name, role, hash_password(PASSWORD)))
        client = httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10)
        assert login(client, name, PASSWORD).status_code in (303,)
        match = CSRF.search(client.get("/account").text)
        assert match
        client.headers["X-CSRF-Token"] = match.group(1)
        clients.append(client)
        return client

    yield person
    for c in clients:
        c.close()


def entries(store: Store) -> list[dict[str, Any]]:
    from watchfloor.governance.audit import decode_entry

    return [entry_dict(decode_entry(r.entry)) for r in store.audit_rows()]


def raw_log(store: Store) -> str:
    return "\n".join(r.entry.decode() for r in store.audit_rows())


def watch_in(**fields: Any) -> dict[str, Any]:
    return {
        "name": "River floods",
        "query": "flood* AND (river OR levee)",
        "purpose": "public-safety",
        "legal_basis": "Civil Contingencies Act s.2",
        "owner": "duty-desk",
        "severity": "high",
        "days": 10,
    } | fields


# ----------------------------------------------------------------------------- the audit of requests


def test_reads_and_searches_are_audited_with_ids_never_content(
    people: Any, store: Store, make_watch: Any, make_alert: Any
) -> None:
    watch = make_watch("Schools", purpose="public-safety")
    alert = make_alert(watch, POST_TEXT, author=AUTHOR)
    ana = people("ana", Role.analyst)
    before = len(entries(store))
    assert "Quillfield" in ana.get(f"/alerts/{alert.id}").text
    assert ana.get(f"/api/alerts/{alert.id}").json()["post"]["text"] == POST_TEXT
    searched = ana.get("/api/alerts", params={"watch_id": watch.id, "q": "Quillfield school", "limit": 5})
    assert searched.status_code == 200
    assert ana.get("/static/app.css").status_code == 200
    assert ana.get("/healthz").status_code == 200
    new = entries(store)[before:]
    assert len(new) == 3  # one per request; static files and the health check are not audited
    page, api, search = new
    assert page["actor"] == "ana" and page["action"] == "web.read" and page["target"] == f"alert:{alert.id}"
    assert page["purpose"] == "public-safety"
    assert page["details"] == {
        "method": "GET", "route": "/alerts/{alert_ref}", "status": 200, "role": "analyst", "via": "session",
    }  # fmt: skip
    assert api["details"]["route"] == "/api/alerts/{alert_id}" and api["purpose"] == "public-safety"
    assert search["action"] == "web.search" and search["target"] is None
    assert sorted(search["details"]["params"]) == ["limit=5", "q=…", f"watch_id={watch.id}"]
    log = raw_log(store)
    for secret in ("Quillfield", "Bomb threat", AUTHOR):
        assert secret not in log


def test_an_event_stream_is_audited_when_it_opens_not_per_event(
    people: Any, store: Store, make_watch: Any, make_alert: Any
) -> None:
    watch = make_watch()
    for n in range(3):
        make_alert(watch, f"Bomb threat number {n}")
    ana = people("ana", Role.analyst)
    before = len(entries(store))
    got = 0
    with ana.stream("GET", "/events/alerts", params={"after": 0}, timeout=httpx.Timeout(10, read=5)) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            got += line.startswith("event: alert")
            if got == 3:
                break
    new = entries(store)[before:]
    assert [e["action"] for e in new] == ["web.stream"]
    assert new[0]["details"]["route"] == "/events/alerts" and new[0]["details"]["params"] == ["after=0"]


def test_actions_name_the_ids_in_their_body_never_its_text(
    people: Any, store: Store, make_watch: Any, make_alert: Any
) -> None:
    watch = make_watch()
    first, second = make_alert(watch, "Bomb threat one"), make_alert(watch, "Bomb threat two")
    ana = people("ana", Role.analyst)
    before = len(entries(store))
    assert ana.post("/api/queue/claim", json={"alert_ids": [first.id, second.id]}).status_code == 200
    acted = ana.post("/queue/act", data={
        "action": "dispose", "alert_ids": str(first.id), "reason": "Quillfield is a hoax", "disposition": "dismiss",
    })  # fmt: skip
    assert acted.status_code == 303
    claim, act = entries(store)[before:]
    assert claim["action"] == "web.change" and claim["target"] == f"alert:{first.id},alert:{second.id}"
    assert act["target"] == f"alert:{first.id}" and act["details"]["body"] == ["action=dispose", "disposition=dismiss"]
    assert "Quillfield" not in raw_log(store)


def test_refusals_are_audited_and_anonymous_requests_are_not(people: Any, store: Store, live: Any) -> None:
    ana = people("ana", Role.analyst)
    before = len(entries(store))
    assert ana.get("/audit").status_code == 403
    assert ana.get("/api/audit").status_code == 403
    assert httpx.get(f"{live.base_url}/api/alerts").status_code == 401  # nobody signed in: nothing to audit
    new = entries(store)[before:]
    assert [(e["action"], e["details"]["route"], e["details"]["status"]) for e in new] == [
        ("web.refused", "/audit", 403),
        ("web.refused", "/api/audit", 403),
    ]


def test_without_an_audit_entry_nothing_is_shown(
    people: Any, live: Any, monkeypatch: pytest.MonkeyPatch, make_watch: Any, make_alert: Any
) -> None:
    make_alert(make_watch(), POST_TEXT)
    ana = people("ana", Role.analyst)

    def broken(**_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(live.app.state.gov.audit, "record", broken)
    refused = ana.get("/api/alerts")
    assert refused.status_code == 503 and "audit log" in refused.json()["error"]
    assert "Quillfield" not in refused.text
    assert refused.headers["content-security-policy"]  # still a proper answer
    monkeypatch.undo()
    assert ana.get("/api/alerts").status_code == 200


# ----------------------------------------------------------------------------- watches


def test_analyst_proposes_and_another_supervisor_approves_over_the_api(people: Any, store: Store) -> None:
    ana, sam = people("ana", Role.analyst), people("sam", Role.supervisor)
    before = len(entries(store))
    proposed = ana.post("/api/watches", json=watch_in())
    assert proposed.status_code == 201, proposed.text
    watch = proposed.json()["watch"]
    assert watch["state"] == "pending" and watch["status"] == "pending" and watch["active"] is False
    assert watch["created_by"] == "ana" and watch["approver"] is None
    assert watch["purpose"] == "public-safety" and watch["legal_basis"] == "Civil Contingencies Act s.2"

    refused = ana.post(f"/api/watches/{watch['id']}/approve")
    assert refused.status_code == 403 and "approve_watch" in refused.json()["error"]
    own = sam.post("/api/watches", json=watch_in(name="Sam's own")).json()["watch"]
    not_own = sam.post(f"/api/watches/{own['id']}/approve")
    assert not_own.status_code == 403 and "a different supervisor must approve it" in not_own.json()["error"]

    approved = sam.post(f"/api/watches/{watch['id']}/approve")
    assert approved.status_code == 200, approved.text
    expected = {"state": "active", "approver": "sam", "created_by": "ana", "active": True}
    assert {k: approved.json()[k] for k in expected} == expected
    again = sam.post(f"/api/watches/{watch['id']}/approve")
    assert again.status_code == 409 and "not pending" in again.json()["error"]
    assert ana.get(f"/api/watches/{watch['id']}").json()["state"] == "active"
    listed = {w["name"]: w for w in ana.get("/api/watches").json()["watches"]}
    assert listed["Sam's own"]["state"] == "pending"

    actions = [(e["actor"], e["action"]) for e in entries(store)[before:]]
    assert ("ana", "watch.proposed") in actions and ("sam", "watch.approved") in actions
    # a decision is the request's entry: no second, generic entry for it
    assert actions.count(("sam", "web.change")) == 1  # the 409 (a refusal by state), nothing for the approval
    assert actions.count(("sam", "web.refused")) == 1  # approving his own watch


def test_the_guard_refuses_on_the_form_and_says_why(people: Any, store: Store) -> None:
    ana = people("ana", Role.analyst)
    form = ana.get("/watches/new")
    assert form.status_code == 200 and "public-safety" in form.text
    data = {k: str(v) for k, v in watch_in(name="Worship", query="mosque* AND crowd").items()}
    refused = ana.post("/watches", data=data)
    assert refused.status_code == 403
    assert "refused by the protected-activity guard" in refused.text and "Religion" in refused.text
    assert 'value="Worship"' in refused.text  # the form comes back filled in
    assert store.get_watch_by_name("Worship") is None
    actions = [e["action"] for e in entries(store)]
    assert "watch.refused" in actions and actions[-1] == "web.refused"
    assert entries(store)[-1]["details"]["refusal"].startswith("proposing the watch: refused by the protected")


def test_forms_propose_list_approve_and_reject(people: Any, store: Store) -> None:
    ana, sam = people("ana", Role.analyst), people("sam", Role.supervisor)
    data = {k: str(v) for k, v in watch_in().items()}
    done = ana.post("/watches", data=data)
    assert done.status_code == 303 and done.headers["location"] == "/watches"
    page = ana.get("/watches").text
    assert "pending until a supervisor other than you approves it" in page
    assert '<span class="state off">pending</span>' in page and "/approve" not in page  # analysts cannot approve
    held = ana.post("/watches", data=data | {"name": "Crowds", "query": "rally AND flood*"})
    assert held.status_code == 303, re.findall(r"notice error[^>]*>([^<]*)", held.text)
    assert "two supervisors" in ana.get("/watches").text
    river, crowds = store.get_watch_by_name("River floods"), store.get_watch_by_name("Crowds")
    assert river is not None and crowds is not None and crowds.hold == "protest"

    page = sam.get("/watches").text
    assert f'action="/watches/{river.id}/approve"' in page and f'action="/watches/{river.id}/reject"' in page
    assert sam.post(f"/watches/{river.id}/reject", data={"reason": "too broad"}).status_code == 303
    assert "rejected" in sam.get("/watches").text
    assert store.get_watch(river.id).status.value == "rejected"  # type: ignore[union-attr]
    assert sam.post(f"/watches/{crowds.id}/approve").status_code == 303  # one of two
    assert store.get_watch(crowds.id).reviewed_by == "sam"  # type: ignore[union-attr]
    twice = sam.post(f"/watches/{crowds.id}/approve")
    assert twice.status_code == 403 and "already reviewed" in twice.text
    assert people("sue", Role.supervisor).post(f"/watches/{crowds.id}/approve").status_code == 303
    assert store.get_watch(crowds.id).is_active(utcnow())  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- the two-person unmask


@pytest.fixture
def sealed_author(settings: Any, store: Store, live: Any) -> str:
    """The deployment's keys, and the sealed identity of AUTHOR (as the pipeline stores it)."""
    keyring = Keyring(settings.home / KEYS_DIR)
    keyring.initialise(live.app.state.gov.policy.purpose_class)
    epoch, _ = keyring.pseudonym_key()
    store.add_identities(
        [seal_identity(keyring.identity_key(epoch), pseudonym=AUTHOR, epoch=epoch, platform="bluesky",
                       account=ACCOUNT, now=utcnow())]
    )  # fmt: skip
    return AUTHOR


def test_unmask_request_approve_and_reveal_within_scope(people: Any, store: Store, sealed_author: str) -> None:
    case, _ = store.create_case("Threats at Quillfield", "ana", actor="ana", at=utcnow())
    ana, sam, bob = people("ana", Role.analyst), people("sam", Role.supervisor), people("bob", Role.analyst)
    asked = ana.post("/api/authorizations", json={
        "kind": "unmask", "purpose": "threat-to-life", "pseudonyms": [AUTHOR], "case_id": str(case.id),
        "legal_ref": "Court order 2026/114", "reason": "threats in the case", "days": 7,
    })  # fmt: skip
    assert asked.status_code == 201, asked.text
    auth = asked.json()
    assert auth["status"] == "requested" and auth["requester"] == "ana"
    assert bob.get("/api/authorizations").json()["authorizations"] == []  # not his
    assert ana.post(f"/api/authorizations/{auth['id']}/approve", json={}).status_code == 403  # lacks approve_unmask
    early = ana.post(f"/api/authorizations/{auth['id']}/reveal", json={"pseudonym": AUTHOR, "case_id": str(case.id)})
    assert early.status_code == 403 and "not approved" in early.json()["error"]

    approved = sam.post(f"/api/authorizations/{auth['id']}/approve", json={"note": "order checked"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["max_reveals"] == 3

    wrong = ana.post(f"/api/authorizations/{auth['id']}/reveal", json={"pseudonym": "p:1111111111111111",
                                                                       "case_id": str(case.id)})  # fmt: skip
    assert wrong.status_code == 403 and "outside the scope" in wrong.json()["error"]
    other = bob.post(f"/api/authorizations/{auth['id']}/reveal", json={"pseudonym": AUTHOR, "case_id": str(case.id)})
    assert other.status_code == 403 and "only the requester" in other.json()["error"]

    revealed = ana.post(f"/api/authorizations/{auth['id']}/reveal", json={"pseudonym": AUTHOR, "case_id": str(case.id)})
    assert revealed.status_code == 200, revealed.text
    assert revealed.json() == {"pseudonym": AUTHOR, "platform": "bluesky", "account": ACCOUNT,
                               "authorization_id": auth["id"], "reveal": 1, "of": 3}  # fmt: skip
    assert revealed.headers["cache-control"] == "no-store"
    page = ana.post(f"/authorizations/{auth['id']}/reveal", data={"pseudonym": AUTHOR, "case_id": str(case.id)})
    assert page.status_code == 200 and ACCOUNT in page.text and "reveal 2 of 3" in page.text
    assert ana.post(f"/api/authorizations/{auth['id']}/reveal",
                    json={"pseudonym": AUTHOR, "case_id": str(case.id)}).status_code == 200  # fmt: skip
    spent = ana.post(f"/api/authorizations/{auth['id']}/reveal", json={"pseudonym": AUTHOR, "case_id": str(case.id)})
    assert spent.status_code == 409 and "no reveals left" in spent.json()["error"]

    log = entries(store)
    reveals = [e for e in log if e["action"] == "identity.revealed"]
    assert len(reveals) == 3 and reveals[0]["target"] == f"pseudonym:{AUTHOR}" and reveals[0]["case"] == str(case.id)
    assert {e["actor"] for e in log if e["action"] == "identity.reveal_refused"} == {"ana", "bob"}
    assert ACCOUNT not in raw_log(store) and "quillfield-clear" not in raw_log(store)


def test_a_supervisor_denies_on_the_page(people: Any, store: Store) -> None:
    case, _ = store.create_case("A case", "ana", actor="ana", at=utcnow())
    ana, sam = people("ana", Role.analyst), people("sam", Role.supervisor)
    asked = ana.post("/authorizations", data={
        "kind": "unmask", "purpose": "threat-to-life", "pseudonyms": AUTHOR, "case_id": str(case.id),
        "legal_basis": "threat to life", "days": "7",
    })  # fmt: skip
    assert asked.status_code == 303
    auth = store.list_authorizations()[0]
    page = sam.get("/authorizations").text
    assert f'action="/authorizations/{auth.id}/approve"' in page and AUTHOR in page
    assert f'action="/authorizations/{auth.id}/approve"' not in ana.get("/authorizations").text  # her own
    assert sam.post(f"/authorizations/{auth.id}/deny", data={"reason": "no legal process"}).status_code == 303
    assert store.get_authorization(auth.id).status.value == "denied"  # type: ignore[union-attr]
    again = sam.post(f"/authorizations/{auth.id}/approve")
    assert again.status_code == 409 and "denied already" in again.text


# ----------------------------------------------------------------------------- the auditor's pages


def test_the_auditor_reads_filters_and_pages_the_log(people: Any, store: Store) -> None:
    ana = people("ana", Role.analyst)
    ana.post("/api/watches", json=watch_in())
    for _ in range(3):
        ana.get("/watches")
    ada = people("ada", Role.auditor)
    nav = NAV.search(ada.get("/audit").text)
    assert nav and all(f'href="{p}"' in nav.group(1) for p in ("/audit", "/reports/transparency", "/policy"))
    assert 'href="/"' not in nav.group(1) and 'href="/authorizations"' not in nav.group(1)

    mine = ada.get("/api/audit", params={"actor": "ana", "limit": 2}).json()
    assert [e["actor"] for e in mine["entries"]] == ["ana", "ana"] and mine["next_before"] is not None
    older = ada.get("/api/audit", params={"actor": "ana", "limit": 2, "before": mine["next_before"]}).json()
    assert older["entries"][0]["seq"] < mine["entries"][-1]["seq"]
    watches = ada.get("/api/audit", params={"action": "watch."}).json()["entries"]
    assert [e["action"] for e in watches] == ["watch.proposed"]
    today = utcnow().date().isoformat()
    assert ada.get("/api/audit", params={"from": today, "to": today}).json()["entries"]
    assert ada.get("/api/audit", params={"to": "2000-01-01"}).json()["entries"] == []

    page = ada.get("/audit", params={"action": "watch."}).text
    assert "<code>watch.proposed</code>" in page and "legal_basis" in page and "<code>web.read</code>" not in page
    assert ada.get("/audit", params={"from": "yesterday"}).status_code == 422


def test_verify_checkpoint_and_witness(people: Any, store: Store, settings: Any, sealed_author: str) -> None:
    ada = people("ada", Role.auditor)
    page = ada.get("/audit/verify")
    assert page.status_code == 200 and 'id="verify-result"' in page.text and "<strong>OK</strong>" in page.text
    key = re.search(r'id="verifier-key">([^<]+)<', page.text)
    assert key
    download = ada.post("/audit/checkpoint")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    checkpoint = parse_checkpoint(download.text, Keyring(settings.home / KEYS_DIR).verify_key())
    assert checkpoint.tree_size > 0 and store.list_checkpoints()[-1].root_hash == checkpoint.root_hash
    verified = ada.get("/api/audit/verify").json()
    assert verified["ok"] and verified["signatures_checked"] and verified["checkpoints_checked"] == 1
    assert verified["verifier_key"] == key.group(1)
    witnessed = ada.post("/api/audit/verify", json={"checkpoint": download.text, "verifier_key": key.group(1)})
    assert witnessed.status_code == 200 and witnessed.json()["ok"] and witnessed.json()["witnessed_checked"] == 1
    bad = ada.post("/api/audit/verify", json={"checkpoint": download.text.replace("\n\n", "\n\nx")})
    assert bad.status_code == 400
    form = ada.post("/audit/verify", data={"checkpoint": download.text})
    assert form.status_code == 200 and "1 witnessed checkpoint(s)" in form.text
    actions = [e["action"] for e in entries(store)]
    assert actions.count("audit.verified") == 4 and actions.count("audit.checkpoint") == 1


def test_report_and_policy_pages(people: Any, store: Store, live: Any) -> None:
    ana = people("ana", Role.analyst)
    ana.post("/api/watches", json=watch_in())
    ada = people("ada", Role.auditor)
    today = utcnow().date().isoformat()
    page = ada.get("/reports/transparency", params={"from": today, "to": today})
    assert page.status_code == 200 and "Transparency report" in page.text and "public-safety" in page.text
    report = ada.get("/api/reports/transparency", params={"from": today, "to": today}).json()
    assert report["watches"]["proposed"] == 1 and report["period"]["from"].startswith(today)
    download = ada.get("/reports/transparency.json", params={"from": today, "to": today})
    assert json.loads(download.text)["watches"]["proposed"] == 1
    html = ada.get("/reports/transparency.html")
    assert html.status_code == 200 and "<style>" in html.text
    assert "style-src 'sha256-" in html.headers["content-security-policy"]
    assert "script" not in html.headers["content-security-policy"]
    assert ada.get("/reports/transparency", params={"from": today, "to": "2000-01-01"}).status_code == 400
    assert [e["details"]["format"] for e in entries(store) if e["action"] == "report.transparency"] == [
        "page", "json", "json", "html",
    ]  # fmt: skip

    policy = ada.get("/api/policy").json()
    assert policy["digest"] == live.app.state.gov.policy.digest
    assert "read_audit" in policy["permissions"]["auditor"] and "read_alerts" not in policy["permissions"]["auditor"]
    text = ada.get("/policy").text
    assert live.app.state.gov.policy.digest in text and "Religion" in text and "public-safety" in text


def test_an_auditor_lands_on_the_audit_log(live: Any, store: Store, login: Any) -> None:
    store.add_user(User("ada", Role.auditor, hash_password(PASSWORD)))
    with httpx.Client(base_url=live.base_url, follow_redirects=False, timeout=10) as client:
        response = login(client, "ada", PASSWORD)
        assert response.status_code == 303 and response.headers["location"] == "/audit"
        assert client.get("/audit").status_code == 200
    started = [e for e in entries(store) if e["action"] == "session.started"]
    assert started[-1]["actor"] == "ada" and started[-1]["details"] == {"role": "auditor", "second_factor": False}
