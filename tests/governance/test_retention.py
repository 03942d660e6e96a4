"""Retention per data class, on a controlled clock: what is due goes (with what it held),
what is not due stays, a dry run only counts, every run is audited with its counts, and the
schedule keeps the stated time for upstream deletes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.policy import load_policy
from watchfloor.governance.pseudonyms import seal_identity
from watchfloor.governance.retention import run_retention
from watchfloor.governance.schedule import GovernanceSchedule
from watchfloor.governance.service import Governance
from watchfloor.model import (
    Alert,
    CaseStatus,
    DeadLetter,
    Deletion,
    Disposition,
    Explanation,
    Post,
    TermHit,
    Watch,
)
from watchfloor.store import IngestBatch


def seed(gov: Governance, clock) -> dict[str, int]:
    """Four matched posts by four authors (identities sealed), one alert each, a dead letter."""
    w = gov.watches.propose(
        Watch(
            name="floods",
            query="flood*",
            purpose="public-safety",
            legal_basis="public task",
            owner="desk",
            expires_at=clock.now + timedelta(days=90),
        ),
        by="ana",
    ).watch
    gov.watches.approve(w.id, by="sam")
    key = gov.keyring.identity_key(1)
    posts, alerts, identities = [], [], []
    for i in range(4):
        author = f"p:{i:016x}"
        post = Post(
            platform="bluesky",
            native_id=f"at://did:plc:a{i}/app.bsky.feed.post/{i}",
            version="1",
            created_at=clock.now,
            received_at=clock.now,
            text=f"flooding report {i}",
            author=author,
        )
        posts.append(post)
        alerts.append(
            Alert(
                watch_id=w.id,
                post=post.key,
                score=0.5,
                created_at=clock.now,
                due_at=clock.now + timedelta(hours=1),
                explanation=Explanation(hits=(TermHit("flood*", "prefix", ((0, 8),)),)),
            )
        )
        identities.append(
            seal_identity(key, pseudonym=author, epoch=1, platform="bluesky", account=f"did:plc:a{i}", now=clock.now)
        )
    dead = DeadLetter("demo", "bluesky", "not JSON", b"\xff", clock.now)
    result = gov.store.commit_batch(
        IngestBatch(source="test", cursor="1", posts=posts, alerts=alerts, identities=identities, dead_letters=[dead])
    )
    ids = [a.id for a in result.alerts_added]
    gov.store.dispose_alerts([ids[0]], Disposition.dismiss, "not relevant", actor="ana", at=clock.now)
    gov.store.dispose_alerts([ids[1]], Disposition.false_positive, "wrong sense", actor="ana", at=clock.now)
    case, _ = gov.store.create_case("Flood case", "sam", actor="sam", at=clock.now, alert_ids=[ids[3]], reason="real")
    gov.store.update_case(case.id, actor="sam", at=clock.now, status=CaseStatus.closed)
    return {"dismissed": ids[0], "false_positive": ids[1], "open": ids[2], "case": ids[3], "case_id": case.id}


def alive(gov: Governance) -> set[int]:
    return {v.alert.id for v in gov.store.list_alerts(limit=100)}


def test_retention_by_data_class_on_a_controlled_clock(gov: Governance, clock) -> None:
    ids = seed(gov, clock)
    assert gov.store.count_identities() == {1: 4} and gov.store.counts().posts == 4

    clock.advance(days=15)
    first = run_retention(gov)
    assert first.counts["dead_letters"] == 1 and first.total == 1  # 14 days for raw events
    assert alive(gov) == {ids["dismissed"], ids["false_positive"], ids["open"], ids["case"]}

    clock.advance(days=16)  # 31 days after the dispositions
    dry = run_retention(gov, dry_run=True)
    assert dry.counts["dismissed_alerts"] == 1 and dry.counts["false_positive_alerts"] == 1
    assert len(alive(gov)) == 4  # a dry run deletes nothing
    done = run_retention(gov)
    assert done.counts["dismissed_alerts"] == 1 and done.counts["false_positive_alerts"] == 1
    assert done.counts["unreferenced_posts"] == 2 and done.counts["sealed_identities"] == 2
    assert alive(gov) == {ids["open"], ids["case"]}  # open alerts and cases are not aged out
    assert gov.store.counts().posts == 2 and gov.store.count_identities() == {1: 2}

    clock.advance(days=365)  # the case was closed 396 days ago: closed + 365 days
    last = run_retention(gov)
    assert last.counts["closed_cases"] == 1 and last.counts["case_alerts"] == 1 and last.counts["case_evidence"] == 1
    assert gov.store.get_case(ids["case_id"]) is None and alive(gov) == {ids["open"]}
    assert gov.store.counts().posts == 1 and gov.store.count_identities() == {1: 1}
    assert not last.errors

    runs = gov.audit.entries_by_action(["retention.run", "retention.dry_run"])
    assert [e.action for e in runs] == ["retention.run", "retention.dry_run", "retention.run", "retention.run"]
    assert runs[2].details["deleted.dismissed_alerts"] == 1 and runs[2].actor == "system:retention"


def test_upstream_deletes_are_honoured_at_once_and_swept_by_retention(gov: Governance, clock, raw_db) -> None:
    seed(gov, clock)
    native = "at://did:plc:a2/app.bsky.feed.post/2"
    gov.store.commit_batch(IngestBatch(source="test", cursor="2", deletions=[Deletion("bluesky", native, clock.now)]))
    assert gov.store.get_post("bluesky", native, "1") is None  # at once, in the same commit
    # a copy that reached the store some other way (say, an import made before the delete arrived)
    raw_db.execute(
        "INSERT INTO posts (platform, native_id, version, created_at, received_at, text, author, raw)"
        " VALUES ('bluesky', ?, '2', ?, ?, 'copy', 'p:0000000000000002', ?)",
        (native, clock.now.isoformat(), clock.now.isoformat(), b""),
    )
    clock.advance(hours=1)
    result = run_retention(gov)
    assert result.counts["upstream_deleted_posts"] == 1
    assert gov.store.get_post("bluesky", native, "2") is None


def test_the_schedule_on_a_controlled_clock(gov: Governance, clock, home: Path) -> None:
    schedule = GovernanceSchedule(gov)
    assert set(schedule.due(clock.now)) == {"expire_watches", "retention", "checkpoint", "sweep_sessions"}
    done = schedule.tick()
    assert done["retention"] == 0 and isinstance(done["checkpoint"], int)  # the log had entries: signed
    assert done["sweep_sessions"] == 0  # no web sessions to sweep
    assert schedule.due(clock.now) == []
    clock.advance(minutes=1)
    assert schedule.due(clock.now) == ["expire_watches"]
    clock.advance(minutes=59)
    assert set(schedule.due(clock.now)) == {"expire_watches", "retention", "checkpoint", "sweep_sessions"}

    # a policy that runs retention rarely still keeps the stated time for upstream deletes
    (home / "policy.toml").write_text("[retention]\nrun_every_minutes = 5000\nupstream_delete_hours = 6\n")
    rare = GovernanceSchedule(Governance(gov.store, load_policy(home), Keyring(home / KEYS_DIR), clock))
    assert rare.every["retention"] == timedelta(hours=6)


def test_a_failing_rule_does_not_stop_the_others(gov: Governance, clock, raw_db) -> None:
    seed(gov, clock)
    raw_db.execute("DROP TABLE notification_outbox")  # a broken data class
    clock.advance(days=40)
    result = run_retention(gov)
    assert "notifications" in result.errors and result.counts["dismissed_alerts"] == 1
    (entry,) = gov.audit.entries_by_action(["retention.run"])
    assert "error.notifications" in entry.details
