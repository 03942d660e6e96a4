"""The protected-activity guard reads the parsed query: what a watch looks for, not what
it excludes; refuses or holds by the policy's action; and every refusal is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchfloor.governance.guard import check_query
from watchfloor.governance.policy import GuardAction, load_policy
from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.model import Role, User, Watch, WatchStatus
from watchfloor.sources.demo_corpus import DEMO_WATCHES

POLICY = load_policy(None)


@pytest.mark.parametrize(
    ("query", "action", "category"),
    [
        ("protest", GuardAction.review, "protest"),
        ('"peaceful PROTEST" AND downtown', GuardAction.review, "protest"),
        ("hashtag:protesters", GuardAction.review, "protest"),
        ("#Kundgebung", GuardAction.review, "protest"),
        ("/protest(er)?s?/", GuardAction.review, "protest"),
        ("mosquée OR church", GuardAction.refuse, "religion"),
        ('"trade union" AND meeting', GuardAction.refuse, "unions"),
        ('"general strike"', GuardAction.refuse, "unions"),
        ("journalists AND arrested", GuardAction.review, "press"),
        ("(undocumented OR refugees) AND border", GuardAction.refuse, "immigration_status"),
        ("black NEAR/2 people", GuardAction.refuse, "ethnicity"),
        ("activis*", GuardAction.refuse, "political_organising"),
        ("prot*", GuardAction.refuse, "protest"),  # a wildcard that covers protest (and protestant)
    ],
)
def test_protected_activity_is_recognised(query: str, action: GuardAction, category: str) -> None:
    verdict = check_query(query, POLICY)
    assert verdict.action == action, verdict.describe()
    assert category in verdict.categories


@pytest.mark.parametrize(
    "query",
    [
        "flood AND NOT protest",  # excluding is not targeting
        "(black smoke) AND (people trapped)",  # a phrase's words scattered over AND do not count
        '"air strike" OR "lightning strike"',
        "bridge AND (closed OR collapse*)",
        "evac*ate",
    ],
)
def test_unprotected_queries_pass(query: str) -> None:
    assert check_query(query, POLICY).action is None


def test_the_demo_watches_pass_the_guard() -> None:
    for name, query, _ in DEMO_WATCHES:
        assert check_query(query, POLICY).action is None, name


def watch(query: str, **kw: object) -> Watch:
    fields = {
        "name": f"w {query}",
        "query": query,
        "purpose": "public-safety",
        "legal_basis": "public task",
        "owner": "desk",
    } | kw
    return Watch(**fields)  # type: ignore[arg-type]


def test_a_refused_watch_is_not_stored_and_the_refusal_is_audited(gov: Governance, clock) -> None:
    with pytest.raises(GovernanceError, match="protected-activity guard"):
        gov.watches.propose(watch('"asylum seekers" AND station', expires_at=clock.now + timedelta(days=5)), by="ana")
    assert gov.store.list_watches() == []
    (entry,) = gov.audit.entries_by_action(["watch.refused"])
    assert entry.actor == "ana" and entry.details["categories"] == ["immigration_status"]
    assert entry.purpose == "public-safety"


def test_a_held_watch_needs_two_supervisors_neither_its_creator(gov: Governance, clock) -> None:
    proposal = gov.watches.propose(watch("protest AND crush", expires_at=clock.now + timedelta(days=5)), by="sam")
    assert proposal.held and proposal.watch.hold == "protest" and proposal.watch.status == WatchStatus.pending
    assert gov.audit.entries_by_action(["watch.proposed"])[0].details["held_for_review"] == ["protest"]
    wid = proposal.watch.id
    with pytest.raises(GovernanceError, match="different supervisor"):
        gov.watches.approve(wid, by="sam")  # the creator
    first = gov.watches.approve(wid, by="sue")
    assert first.status == WatchStatus.pending and first.reviewed_by == "sue" and not first.is_active(clock.now)
    with pytest.raises(GovernanceError, match="already reviewed"):
        gov.watches.approve(wid, by="sue")
    gov.store.add_user(User(username="sid", role=Role.supervisor, password_hash="not checked here"))
    second = gov.watches.approve(wid, by="sid")
    assert second.status == WatchStatus.approved and second.approver == "sid" and second.is_active(clock.now)
    assert [e.action for e in gov.audit.entries_by_action(["watch.reviewed", "watch.approved"])] == [
        "watch.reviewed",
        "watch.approved",
    ]
