"""Purpose-bound watches: proposed by one person, approved by a different supervisor, for a
purpose of the policy, with an expiry the policy allows; only approved, unexpired, enabled
watches match; renewal is a new approval; account-targeted watches need an authorization."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.model import AuthorizationKind, Severity, Watch, WatchStatus
from watchfloor.pipeline.runner import Pipeline
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource


def watch(clock, query: str = "flood* AND river", **kw: object) -> Watch:
    fields = {
        "name": "river floods",
        "query": query,
        "purpose": "public-safety",
        "legal_basis": "Civil Contingencies Act",
        "owner": "duty desk",
        "expires_at": clock.now + timedelta(days=10),
    } | kw
    return Watch(**fields)  # type: ignore[arg-type]


def test_a_proposed_watch_is_pending_until_another_supervisor_approves_it(gov: Governance, clock) -> None:
    proposal = gov.watches.propose(watch(clock), by="ana")
    w = proposal.watch
    assert w.status == WatchStatus.pending and w.created_by == "ana" and w.approver is None
    assert not w.is_active(clock.now) and w.state(clock.now) == "pending"
    assert gov.store.counts().active_watches == 0
    with pytest.raises(GovernanceError, match="analyst, a role without the 'approve_watch'"):
        gov.watches.approve(w.id, by="alf")
    with pytest.raises(GovernanceError, match="admin, a role without"):
        gov.watches.approve(w.id, by="adm")
    with pytest.raises(GovernanceError, match="no account 'nobody'"):
        gov.watches.approve(w.id, by="nobody")
    approved = gov.watches.approve(w.id, by="sam")
    assert approved.status == WatchStatus.approved and approved.approver == "sam"
    assert approved.approved_at == clock.now and approved.is_active(clock.now)
    assert gov.store.counts().active_watches == 1
    actions = [(e.actor, e.action, e.target) for e in gov.audit.entries_by_action(["watch.proposed", "watch.approved"])]
    assert actions == [("ana", "watch.proposed", f"watch:{w.id}"), ("sam", "watch.approved", f"watch:{w.id}")]


def test_a_supervisor_cannot_approve_their_own_watch(gov: Governance, clock) -> None:
    w = gov.watches.propose(watch(clock), by="sam").watch
    with pytest.raises(GovernanceError, match="'sam' proposed it"):
        gov.watches.approve(w.id, by="sam")
    assert gov.watches.approve(w.id, by="sue").status == WatchStatus.approved


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"purpose": "road safety"}, "purpose 'road safety' is not in the policy"),
        ({"legal_basis": " "}, "legal basis must not be empty"),
        ({"expires_at": None}, "needs an expiry"),
        ({"severity": Severity.urgent, "sla_minutes": 240}, "at most 30 minutes"),
    ],
)
def test_policy_limits_are_enforced_when_proposing(gov: Governance, clock, change, problem) -> None:
    with pytest.raises(GovernanceError, match=problem):
        gov.watches.propose(watch(clock, **change), by="ana")


def test_the_expiry_is_capped_by_the_purpose(gov: Governance, clock) -> None:
    proposal = gov.watches.propose(
        watch(clock, purpose="threat-to-life", expires_at=clock.now + timedelta(days=400)), by="ana"
    )
    assert proposal.capped and proposal.watch.expires_at == clock.now + timedelta(days=30)
    clock.advance(days=2)  # the limit counts again from the approval
    approved = gov.watches.approve(proposal.watch.id, by="sam")
    assert approved.expires_at == clock.now - timedelta(days=2) + timedelta(days=30)


def test_expired_watches_stop_by_themselves_and_renewal_is_a_new_approval(gov: Governance, clock) -> None:
    w = gov.watches.propose(watch(clock, expires_at=clock.now + timedelta(days=3)), by="ana").watch
    gov.watches.approve(w.id, by="sam")
    cache = WatchSetCache(gov.store, check_every_s=0, clock=clock)
    cache.current()
    assert set(cache.watches) == {w.id} and gov.store.get_watch(w.id).is_active(clock.now)
    clock.advance(days=3, seconds=1)
    assert not gov.store.get_watch(w.id).is_active(clock.now)
    assert [x.id for x in gov.watches.expire_due()] == [w.id]
    expired = gov.store.get_watch(w.id)
    assert expired.status == WatchStatus.expired and expired.state(clock.now) == "expired"
    assert gov.watches.expire_due() == []  # recorded once
    assert gov.audit.entries_by_action(["watch.expired"])[0].actor == "system:scheduler"
    with pytest.raises(GovernanceError, match="not pending"):
        gov.watches.approve(w.id, by="sam")
    renewed = gov.watches.renew(w.id, by="sue", expires_at=clock.now + timedelta(days=5))
    assert renewed.status == WatchStatus.pending and renewed.approver is None and renewed.created_by == "sue"
    with pytest.raises(GovernanceError, match="'sue' proposed it"):
        gov.watches.approve(w.id, by="sue")  # who asked for the new period cannot approve it
    again = gov.watches.approve(w.id, by="sam")
    assert again.is_active(clock.now) and again.approver == "sam"


def test_rejection_is_final_and_audited(gov: Governance, clock) -> None:
    w = gov.watches.propose(watch(clock), by="ana").watch
    with pytest.raises(GovernanceError, match="give a reason"):
        gov.watches.reject(w.id, by="sam", reason="")
    rejected = gov.watches.reject(w.id, by="sam", reason="too broad")
    assert rejected.status == WatchStatus.rejected and rejected.state(clock.now) == "rejected"
    assert gov.audit.entries_by_action(["watch.rejected"])[0].details == {"reason": "too broad"}
    with pytest.raises(GovernanceError, match="rejected"):
        gov.watches.renew(w.id, by="ana", expires_at=clock.now + timedelta(days=2))


def test_an_account_targeted_watch_needs_an_authorization_covering_it(gov: Governance, clock) -> None:
    target = "p:0a1b2c3d4e5f6071"
    w = gov.watches.propose(watch(clock, name="one account", query=f"author:{target} AND bomb*"), by="ana").watch
    assert gov.audit.entries_by_action(["watch.proposed"])[0].details["account_targeted"] is True
    with pytest.raises(GovernanceError, match="needs an approved account-watch authorization"):
        gov.watches.approve(w.id, by="sam")
    auth = gov.authorizations.request(
        kind=AuthorizationKind.account_watch,
        by="ana",
        purpose="public-safety",
        pseudonyms=[target],
        legal_basis="threat to life",
        expires_at=clock.now + timedelta(days=5),
    )
    w2 = gov.watches.propose(
        watch(clock, name="one account, authorised", query=f"author:{target} AND bomb*", authorization_id=auth.id),
        by="ana",
    ).watch
    with pytest.raises(GovernanceError, match="not approved and in force"):
        gov.watches.approve(w2.id, by="sam")
    gov.authorizations.approve(auth.id, by="sue")
    approved = gov.watches.approve(w2.id, by="sam")
    assert approved.is_active(clock.now) and approved.expires_at == clock.now + timedelta(days=5)  # not beyond it


def test_only_approved_watches_match_in_the_pipeline(gov: Governance, clock, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = []
    for i, text in enumerate(["The river is flooding near the bridge", "Flooding on the river road again"]):
        lines.append(
            json.dumps(
                {
                    "did": f"did:plc:author{i}",
                    "time_us": 1764072000000000 + i,
                    "kind": "commit",
                    "commit": {
                        "rev": f"r{i}",
                        "operation": "create",
                        "collection": "app.bsky.feed.post",
                        "rkey": f"k{i}",
                        "cid": f"bafy{i}",
                        "record": {"text": text, "createdAt": "2026-11-25T12:00:00Z", "langs": ["en"]},
                    },
                }
            )
        )
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pending = gov.watches.propose(watch(clock, name="pending one"), by="ana").watch
    approved = gov.watches.propose(watch(clock, name="approved one"), by="ana").watch
    gov.watches.approve(approved.id, by="sam")

    async def run() -> None:
        pipeline = Pipeline(
            ReplaySource(events),
            JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)),
            gov.store,
            batch_interval_s=0.01,
            clock=clock,
        )
        await pipeline.run()

    import asyncio

    asyncio.run(run())
    alerts = gov.store.list_alerts(limit=10)
    assert {a.alert.watch_id for a in alerts} == {approved.id} and len(alerts) == 2
    assert pending.id not in {a.alert.watch_id for a in alerts}


def test_the_system_approves_only_synthetic_demo_watches_and_says_so(gov: Governance, clock) -> None:
    with pytest.raises(GovernanceError, match="synthetic 'demonstration'"):
        gov.watches.propose(watch(clock), by="system:init")
    real = gov.watches.propose(watch(clock), by="ana").watch
    with pytest.raises(GovernanceError, match="only watches for the 'demonstration' purpose"):
        gov.watches.approve_as_system(real.id, actor="system:init", reason="x")
    demo = gov.watches.propose(watch(clock, name="demo", purpose="demonstration"), by="system:init").watch
    approved = gov.watches.approve_as_system(demo.id, actor="system:init", reason="synthetic demo")
    assert approved.is_active(clock.now) and approved.approver == "system:init"
    entry = gov.audit.entries_by_action(["watch.approved"])[-1]
    assert entry.actor == "system:init" and entry.details["system_approval"] is True
