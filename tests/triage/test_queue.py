"""The queue on a real store (SQLite and PostgreSQL): priority order, near-duplicate groups, claims,
dispositions (with the reason rule), reopening, history and the figures per watch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchfloor.model import AlertStatus, Disposition, Role, User, utcnow
from watchfloor.store import Store
from watchfloor.store.triage_repo import QueueFilter
from watchfloor.triage.actions import Triage
from watchfloor.triage.errors import FloorError

ANA = User("ana", Role.analyst, "x")
BOB = User("bob", Role.analyst, "x")
SUE = User("sue", Role.supervisor, "x")


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


@pytest.fixture
def triage(store) -> Triage:
    for user in (ANA, BOB, SUE):
        store.add_user(user)
    return Triage(store)


def test_priority_is_severity_then_score_then_time_left(store, floor, triage) -> None:
    low = floor.watch("low", severity="low")
    urgent = floor.watch("urgent", severity="urgent")
    high = floor.watch("high", severity="high")
    now = utcnow()
    a_low = floor.alert(low, "flood one", score=0.99)
    a_high_weak = floor.alert(high, "flood two", score=0.4)
    a_high_strong_late = floor.alert(high, "flood three", score=0.8, at=now)
    a_high_strong_early = floor.alert(high, "flood four", score=0.8, at=now - timedelta(minutes=10))
    a_urgent = floor.alert(urgent, "flood five", score=0.1)
    order = [i.view.alert.id for i in triage.queue()]
    assert order == [a_urgent.id, a_high_strong_early.id, a_high_strong_late.id, a_high_weak.id, a_low.id]


def test_near_duplicates_are_one_item_with_a_count(store, floor, triage) -> None:
    watch = floor.watch()
    first = floor.alert(watch, "Flood on Mill Lane https://t.example/1", score=0.5)
    floor.alert(watch, "flood on  mill lane https://t.example/2", score=0.7)
    floor.alert(watch, "FLOOD ON MILL LANE", score=0.6)
    other = floor.alert(watch, "Flood on Harbour Road")
    other_watch = floor.watch("other")
    floor.alert(other_watch, "Flood on Mill Lane")  # same text, another watch: its own item
    items = triage.queue()
    assert len(items) == 3
    group = next(i for i in items if i.count == 3)
    assert group.view.alert.score == 0.7  # the most urgent member leads
    assert first.id in group.alert_ids and other.id not in group.alert_ids
    assert store.floor_counts(utcnow()).queue_items == 3


def test_claim_never_steals_assign_does_release_gives_back(store, floor, triage) -> None:
    watch = floor.watch()
    a, b = floor.alert(watch, "flood a"), floor.alert(watch, "flood b")
    assert triage.claim(ANA, [a.id]).changed == [a.id]
    result = triage.claim(BOB, [a.id, b.id])
    assert result.changed == [b.id] and result.skipped == {a.id: "held by ana"}
    assert "left alone (alert" in result.summary()
    assert triage.assign(SUE, [a.id], "bob").changed == [a.id]
    assert store.triage_state(a.id).assignee == "bob"
    assert [i.view.alert.id for i in triage.queue(QueueFilter(assignee="bob"))] == [a.id, b.id]
    assert triage.release(BOB, [a.id]).changed == [a.id]
    assert [i.view.alert.id for i in triage.queue(QueueFilter(unassigned=True))] == [a.id]
    with pytest.raises(FloorError, match="not an account that can triage"):
        triage.assign(SUE, [a.id], "nobody-of-that-name")
    kinds = [e.kind for e in store.triage_history(a.id)]
    assert kinds == ["claimed", "assigned", "released"]


def test_dispositions_and_the_reason_rule(store, floor, triage) -> None:
    watch = floor.watch()
    a, b, c = (floor.alert(watch, f"flood {n}") for n in "abc")
    assert triage.dispose(ANA, [a.id], Disposition.dismiss).changed == [a.id]  # no reason needed
    assert triage.dispose(ANA, [b.id], Disposition.false_positive).changed == [b.id]
    for needs in (Disposition.escalate, Disposition.open_case, Disposition.add_to_case):
        with pytest.raises(FloorError, match="may affect a person"):
            triage.dispose(ANA, [c.id], needs, "  ")
    assert store.alert_statuses([c.id])[c.id] == AlertStatus.open  # nothing happened
    done = triage.dispose(ANA, [c.id], Disposition.escalate, "Credible threat naming a school")
    assert done.changed == [c.id]
    state = store.triage_state(c.id)
    assert state.disposition == Disposition.escalate and state.reason == "Credible threat naming a school"
    assert state.disposed_by == "ana"
    again = triage.dispose(BOB, [a.id], Disposition.false_positive)
    assert again.changed == [] and again.skipped == {a.id: "already decided (dismissed)"}
    assert [i.view.alert.id for i in triage.queue()] == []


def test_escalation_tells_the_supervisors(store, floor, triage) -> None:
    alert = floor.alert(floor.watch("Threats", severity="urgent"), "flood threat")
    triage.dispose(ANA, [alert.id], Disposition.escalate, "Needs a decision by a supervisor")
    [message] = store.inbox("sue")
    assert message.kind == "escalation" and message.link == f"/alerts/{alert.id}"
    assert "Escalated by ana" in message.title and "Needs a decision" in message.body
    assert store.inbox("bob") == []


def test_bulk_on_a_group_with_include_duplicates(store, floor, triage) -> None:
    watch = floor.watch()
    ids = [floor.alert(watch, "Same text reposted https://x.example/" + str(n)).id for n in range(4)]
    lone = floor.alert(watch, "Another text").id
    result = triage.dispose(ANA, [ids[0]], Disposition.false_positive, include_duplicates=True)
    assert sorted(result.changed) == ids
    assert [i.view.alert.id for i in triage.queue()] == [lone]


def test_reopen_needs_a_reason_and_keeps_the_first_triage_time(store, floor, triage) -> None:
    alert = floor.alert(floor.watch(), "flood")
    triage.dispose(ANA, [alert.id], Disposition.dismiss)
    with pytest.raises(FloorError):
        triage.reopen(ANA, [alert.id], "")
    assert triage.reopen(ANA, [alert.id], "Dismissed by mistake").changed == [alert.id]
    assert store.alert_statuses([alert.id])[alert.id] == AlertStatus.open
    assert store.triage_state(alert.id).disposition is None
    kinds = [e.kind for e in store.triage_history(alert.id)]
    assert kinds == ["disposed", "reopened"]


def test_open_case_needs_the_manage_cases_permission(store, floor) -> None:
    auditor = User("audrey", Role.auditor, "x")
    alert = floor.alert(floor.watch(), "flood")
    with pytest.raises(FloorError) as refused:
        Triage(store).dispose(auditor, [alert.id], Disposition.open_case, "A reason long enough")
    assert refused.value.status == 403


def test_figures_per_watch_under_a_controlled_clock(store, floor) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=5)
    clock = {"now": t0}
    triage = Triage(store, clock=lambda: clock["now"])
    store.add_user(ANA)
    watch = floor.watch("Figures", severity="urgent", sla_minutes=30)
    quiet = floor.watch("Quiet")
    fast = floor.alert(watch, "flood fast", at=t0)
    slow = floor.alert(watch, "flood slow", at=t0)
    fp = floor.alert(watch, "flood fp", at=t0)
    floor.alert(watch, "flood left open", at=t0)
    clock["now"] = t0 + timedelta(minutes=10)
    triage.dispose(ANA, [fast.id], Disposition.dismiss)
    triage.dispose(ANA, [fp.id], Disposition.false_positive)
    clock["now"] = t0 + timedelta(minutes=50)
    triage.dispose(ANA, [slow.id], Disposition.dismiss)
    figures = {f.watch_name: f for f in store.watch_figures(t0 + timedelta(hours=1))}
    f = figures["Figures"]
    assert (f.alerts, f.open, f.triaged, f.decided) == (4, 1, 3, 3)
    assert f.median_time_to_triage_s == 600 and f.p90_time_to_triage_s == 3000
    assert (f.sla_met, f.sla_missed) == (2, 2)  # slow was late; the open one is past due
    assert f.sla_compliance == 0.5
    assert f.false_positives == 1 and f.false_positive_rate == pytest.approx(1 / 3)
    q = figures["Quiet"]
    assert q.watch_id == quiet.id and q.alerts == 0 and q.sla_compliance is None and q.false_positive_rate is None
    # the window: only alerts raised since then
    assert {x.watch_name: x.alerts for x in store.watch_figures(t0, since=t0 + timedelta(minutes=1))}["Figures"] == 0
