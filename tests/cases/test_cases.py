"""Cases on a real store (SQLite and PostgreSQL): open from alerts (evidence preserved as received), add,
notes, tasks, the timeline, merge and split; evidence outlives the post's upstream delete."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from watchfloor.cases.service import Cases
from watchfloor.model import AlertStatus, CaseStatus, Deletion, Disposition, Role, TaskStatus, User, utcnow
from watchfloor.store import IngestBatch, Store
from watchfloor.triage.actions import Triage
from watchfloor.triage.errors import FloorError

ANA = User("ana", Role.analyst, "x")
SUE = User("sue", Role.supervisor, "x")


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


@pytest.fixture
def cases(store) -> Cases:
    store.add_user(ANA)
    store.add_user(SUE)
    return Cases(store)


def test_open_a_case_from_the_queue_preserves_the_post(store, floor, cases) -> None:
    raw = b'{"kind":"commit","commit":{"record":{"text":"Flood at the weir"}},"bytes":"\\u00e9\\u00e9"}'
    alert = floor.alert(floor.watch("Floods"), "Flood at the weir", raw=raw, url="https://example.org/p/1")
    result = Triage(store).dispose(ANA, [alert.id], Disposition.open_case, "Names a school and a time",
                                   case_title="Weir flooding")
    assert result.changed == [alert.id] and result.case_id is not None
    cf = cases.file(result.case_id)
    assert cf.case.title == "Weir flooding" and cf.case.owner == "ana" and cf.case.status == CaseStatus.open
    [linked] = cf.alerts
    assert linked.view.alert.id == alert.id and linked.reason == "Names a school and a time"
    [evidence] = cf.evidence
    assert evidence.raw == raw and evidence.sha256 == hashlib.sha256(raw).hexdigest()
    assert evidence.source_url == "https://example.org/p/1" and evidence.author.startswith("p:")
    post = store.get_post(alert.post.platform, alert.post.native_id, alert.post.version)
    assert evidence.captured_at == post.received_at and evidence.text == post.text
    assert evidence.preserved_by == "ana" and evidence.alert_id == alert.id
    state = store.triage_state(alert.id)
    assert state.case_id == result.case_id and state.disposition == Disposition.open_case
    assert store.alert_statuses([alert.id])[alert.id] == AlertStatus.case
    assert [e.kind for e in cf.timeline] == ["opened", "alert_added", "evidence_preserved"]


def test_evidence_survives_the_upstream_delete(store, floor, cases) -> None:
    alert = floor.alert(floor.watch(), "Flood post the author will delete")
    case, _ = cases.open(ANA, "Held", alert_ids=[alert.id], reason="Keep this one for the record")
    store.commit_batch(
        IngestBatch(source="test", cursor="d", deletions=[Deletion("bluesky", alert.post.native_id, utcnow())])
    )
    assert store.get_post(alert.post.platform, alert.post.native_id, alert.post.version) is None
    cf = cases.file(case.id)
    assert cf.alerts[0].view.post is None  # the alert's post is gone...
    assert cf.evidence[0].text == "Flood post the author will delete"  # ...the case's copy is not
    assert hashlib.sha256(cf.evidence[0].raw).hexdigest() == cf.evidence[0].sha256


def test_an_alert_whose_post_is_already_gone_is_linked_without_evidence(store, floor, cases) -> None:
    alert = floor.alert(floor.watch(), "Flood post deleted before anyone looked")
    store.commit_batch(
        IngestBatch(source="test", cursor="d", deletions=[Deletion("bluesky", alert.post.native_id, utcnow())])
    )
    case, _ = cases.open(ANA, "Too late", alert_ids=[alert.id], reason="Linked for the record")
    cf = cases.file(case.id)
    assert len(cf.alerts) == 1 and cf.evidence == ()
    assert cf.timeline[-1].kind == "evidence_unavailable"


def test_adding_alerts_and_what_is_refused(store, floor, cases) -> None:
    watch = floor.watch()
    a, b, dismissed, elsewhere = (floor.alert(watch, f"flood {n}") for n in "abcd")
    case, _ = cases.open(ANA, "Main", alert_ids=[a.id], reason="First report of it")
    other, _ = cases.open(ANA, "Other", alert_ids=[elsewhere.id], reason="Separate incident")
    Triage(store).dispose(ANA, [dismissed.id], Disposition.dismiss)
    with pytest.raises(FloorError, match="may affect a person"):
        cases.add_alerts(ANA, case.id, [b.id], "")
    result = cases.add_alerts(ANA, case.id, [b.id, a.id, dismissed.id, elsewhere.id, 999_999], "Same incident")
    assert result.changed == [b.id]
    assert result.skipped == {
        a.id: "already in this case",
        dismissed.id: "was decided as dismissed: reopen it first",
        elsewhere.id: f"already in case {other.id}",
        999_999: "no such alert",
    }
    assert store.triage_state(b.id).disposition == Disposition.add_to_case
    cases.update(SUE, case.id, status=CaseStatus.closed)
    with pytest.raises(FloorError, match="closed") as refused:
        cases.add_alerts(ANA, case.id, [floor.alert(watch, "flood e").id], "After closing")
    assert refused.value.status == 409
    with pytest.raises(FloorError, match="none of the alerts"):
        cases.open(ANA, "Nothing addable", alert_ids=[dismissed.id], reason="This will not work")
    assert [s.case.title for s in store.list_cases()] == ["Main", "Other"]


def test_notes_tasks_and_updates_are_on_the_timeline(store, floor, cases) -> None:
    case, _ = cases.open(ANA, "Notes and tasks")
    cases.note(ANA, case.id, "**Checked** the weir gauge: rising.")
    with pytest.raises(FloorError):
        cases.note(ANA, case.id, "   ")
    due = utcnow() + timedelta(hours=2)
    task = cases.add_task(ANA, case.id, "Call the duty officer", assignee="sue", due_at=due)
    with pytest.raises(FloorError, match="not an account"):
        cases.add_task(ANA, case.id, "Ask someone unknown", assignee="mallory")
    done = cases.update_task(SUE, case.id, task.id, status=TaskStatus.done)
    assert done.done_by == "sue" and done.done_at is not None
    cases.update_task(SUE, case.id, task.id, assignee="")
    cases.update(SUE, case.id, title="Notes, tasks", owner="sue", status=CaseStatus.on_hold)
    with pytest.raises(FloorError, match="merging"):
        cases.update(SUE, case.id, status=CaseStatus.merged)
    cf = cases.file(case.id)
    assert cf.notes[0].body.startswith("**Checked**")
    assert cf.tasks[0].status == TaskStatus.done and cf.tasks[0].assignee is None
    assert (cf.case.title, cf.case.owner, cf.case.status) == ("Notes, tasks", "sue", CaseStatus.on_hold)
    assert [e.kind for e in cf.timeline] == [
        "opened", "note_added", "task_added", "task_done", "task_assigned",
        "title_changed", "status_changed", "owner_changed",
    ]


def test_merge_moves_everything_and_split_moves_alerts_with_their_evidence(store, floor, cases) -> None:
    watch = floor.watch()
    a, b, c = (floor.alert(watch, f"flood {n}") for n in "abc")
    first, _ = cases.open(ANA, "First", alert_ids=[a.id], reason="One incident")
    second, _ = cases.open(ANA, "Second", alert_ids=[b.id, c.id], reason="Looks like the same one")
    cases.note(ANA, second.id, "note in the second case")
    merged = cases.merge(SUE, second.id, first.id, "Same incident after all")
    assert merged.id == first.id
    cf = cases.file(first.id)
    assert {x.view.alert.id for x in cf.alerts} == {a.id, b.id, c.id}
    assert len(cf.evidence) == 3 and len(cf.notes) == 1
    gone = cases.file(second.id)
    assert gone.case.status == CaseStatus.merged and gone.case.merged_into == first.id
    assert gone.alerts == () and gone.timeline[-1].kind == "merged_into"
    assert store.triage_state(b.id).case_id == first.id
    with pytest.raises(FloorError, match="merged into case"):
        cases.note(ANA, second.id, "too late")
    with pytest.raises(FloorError):
        cases.merge(SUE, first.id, first.id)

    new = cases.split(SUE, first.id, [c.id], "Third, separate", "Different town")
    assert {x.view.alert.id for x in cases.file(new.id).alerts} == {c.id}
    assert [e.alert_id for e in cases.file(new.id).evidence] == [c.id]
    assert len(cases.file(first.id).evidence) == 2
    assert store.triage_state(c.id).case_id == new.id
    with pytest.raises(FloorError, match="at least one alert"):
        cases.split(SUE, new.id, [c.id], "Empty it")
    with pytest.raises(FloorError, match="does not hold"):
        cases.split(SUE, first.id, [c.id], "Not here")
    assert cases.file(first.id).timeline[-1].kind == "split_to"
    assert [e.kind for e in cases.file(new.id).timeline] == ["opened", "split_from"]
