"""The transparency report: the right counts, the policy in force, how matching and scoring
work — and no personal data: no post text, pseudonym, account, watch name or query, staff
name or legal-process reference, in the JSON or the HTML (which is self-contained)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import seal_identity
from watchfloor.governance.retention import run_retention
from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.governance.transparency import build_report, render_html, write_report
from watchfloor.model import Alert, AuthorizationKind, Disposition, Explanation, Post, TermHit, Watch
from watchfloor.store import IngestBatch

CLI = [sys.executable, "-m", "watchfloor"]
SECRET_TEXT = "Zyx flood at 14 Quayside Lane"
ACCOUNT = "did:plc:victimaccount42"
PSEUDONYM = "p:00000000deadbeef"
WATCH_NAME = "Quayside residents"
QUERY = 'flood* AND "Quayside Lane"'
LEGAL_REF = "Warrant 2026/XK-77"
STAFF = ["ana", "alf", "sam", "sue", "aud", "adm"]


def build_activity(gov: Governance, clock) -> None:
    evil_basis = "Public task <b>s.2</b>"
    w = gov.watches.propose(
        Watch(
            name=WATCH_NAME,
            query=QUERY,
            purpose="public-safety",
            legal_basis=evil_basis,
            owner="ana",
            expires_at=clock.now + timedelta(days=30),
        ),
        by="ana",
    ).watch
    gov.watches.approve(w.id, by="sam")
    gov.watches.propose(
        Watch(
            name="pending one",
            query="storm*",
            purpose="threat-to-life",
            legal_basis="x",
            owner="alf",
            expires_at=clock.now + timedelta(days=3),
        ),
        by="alf",
    )
    with pytest.raises(GovernanceError):
        gov.watches.propose(
            Watch(
                name="refused",
                query="migrants AND camp",
                purpose="public-safety",
                legal_basis="x",
                owner="alf",
                expires_at=clock.now + timedelta(days=3),
            ),
            by="alf",
        )
    key = gov.keyring.identity_key(1)
    posts, alerts = [], []
    for i in range(4):
        post = Post(
            platform="bluesky",
            native_id=f"at://{ACCOUNT}/app.bsky.feed.post/{i}",
            version="1",
            created_at=clock.now,
            received_at=clock.now,
            text=f"{SECRET_TEXT} #{i}",
            author=PSEUDONYM,
        )
        posts.append(post)
        alerts.append(
            Alert(
                watch_id=w.id,
                post=post.key,
                score=0.5,
                created_at=clock.now,
                due_at=clock.now + timedelta(minutes=30),
                explanation=Explanation(hits=(TermHit("flood*", "prefix", ((4, 9),)),)),
            )
        )
    sealed = seal_identity(key, pseudonym=PSEUDONYM, epoch=1, platform="bluesky", account=ACCOUNT, now=clock.now)
    ids = [
        a.id
        for a in gov.store.commit_batch(
            IngestBatch(source="t", cursor="1", posts=posts, alerts=alerts, identities=[sealed])
        ).alerts_added
    ]
    clock.advance(minutes=10)
    gov.store.dispose_alerts([ids[0]], Disposition.dismiss, "", actor="ana", at=clock.now)  # within the SLA
    gov.store.dispose_alerts([ids[1]], Disposition.false_positive, "", actor="ana", at=clock.now)
    clock.advance(hours=1)
    gov.store.dispose_alerts([ids[2]], Disposition.dismiss, "", actor="ana", at=clock.now)  # late
    case, _ = gov.store.create_case("Quayside case", "sam", actor="sam", at=clock.now)
    asked = dict(
        kind=AuthorizationKind.unmask,
        by="ana",
        purpose="public-safety",
        pseudonyms=[PSEUDONYM],
        case_id=str(case.id),
        legal_ref=LEGAL_REF,
        expires_at=clock.now + timedelta(days=3),
    )
    granted = gov.authorizations.request(**asked)
    gov.authorizations.approve(granted.id, by="sam")
    assert (
        gov.authorizations.reveal(PSEUDONYM, authorization_id=granted.id, by="ana", case_id=case.id).account == ACCOUNT
    )
    gov.authorizations.deny(gov.authorizations.request(**asked).id, by="sue", reason="not needed")
    clock.advance(days=31)
    run_retention(gov)


def test_the_report_counts_what_happened(gov: Governance, clock) -> None:
    start = clock.now - timedelta(days=1)
    build_activity(gov, clock)
    report = build_report(gov, start, clock.now + timedelta(seconds=1))
    watches = report["watches"]
    assert watches["in_period"] == 2 and watches["proposed"] == 2 and watches["approved"] == 1
    assert watches["refused_by_protected_activity_guard"] == 1
    assert watches["refused_by_category"] == {"immigration_status": 1}
    assert {p["purpose"]: p["watches"] for p in watches["by_purpose"]} == {"public-safety": 1, "threat-to-life": 1}
    assert watches["approved_without_second_person"] == 0
    alerts = report["alerts"]
    assert alerts["raised"] == 4 and alerts["decided"] == 3
    assert alerts["false_positive_rate"] == round(1 / 3, 4)
    assert alerts["sla"]["met"] == 2 and alerts["sla"]["missed"] == 2  # one late, one still open past due
    assert report["unmasking"] == {
        "requested": 2,
        "granted": 1,
        "denied": 1,
        "undecided": 0,
        "identities_revealed": 1,
        "reveal_attempts_refused": 0,
    }
    assert report["retention"]["runs"] == 1 and report["retention"]["deleted"]["dismissed_alerts"] == 2
    assert report["policy"]["digest"] == gov.policy.digest
    assert "protest" in report["policy"]["protected"]
    assert report["method"]["score_formula"] and "score" in report["method"]["scoring"]
    assert set(report["roles"]) == {"analyst", "supervisor", "auditor", "admin"}


def test_no_personal_data_in_json_or_html(gov: Governance, clock, tmp_path: Path) -> None:
    start = clock.now - timedelta(days=1)
    build_activity(gov, clock)
    files = write_report(build_report(gov, start, clock.now + timedelta(seconds=1)), tmp_path / "out")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in (SECRET_TEXT, "Quayside", ACCOUNT, "did:plc:", PSEUDONYM, WATCH_NAME, QUERY, LEGAL_REF):
            assert secret not in text, (path.name, secret)
        assert not re.search(r"\bp:[0-9a-f]{16}\b", text), path.name
        for name in STAFF:
            assert not re.search(rf"\b{name}\b", text), (path.name, name)
    html = files[1].read_text(encoding="utf-8")
    assert "Public task &lt;b&gt;s.2&lt;/b&gt;" in html and "<b>s.2</b>" not in html  # escaped
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)  # no external assets
    assert json.loads(files[0].read_text())["version"] == 1


def test_the_report_command(gov: Governance, home: Path, tmp_path: Path, clock) -> None:
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "WATCHFLOOR_DB": gov.store.url, "COLUMNS": "200"}
    env["NO_COLOR"] = "1"
    out = tmp_path / "report"
    proc = subprocess.run(
        [*CLI, "report", "transparency", "--from", "2026-01-01", "--to", "2026-12-31", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "transparency.html").exists() and json.loads((out / "transparency.json").read_text())["period"] == {
        "from": "2026-01-01T00:00:00+00:00",
        "to": "2027-01-01T00:00:00+00:00",
    }
    assert gov.audit.entries_by_action(["report.transparency"])  # producing it is recorded
    assert "<html" in render_html(json.loads((out / "transparency.json").read_text()))
