"""The parts of the repository the other test areas reach only through the web or the CLI,
checked directly on both backends: sources, health and gaps; notification rules, outbox and
inbox; login challenges and tokens; evidence exports; identities; the floor's volume chart,
near-duplicate groups and the network view's posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.model import (
    Alert,
    EvidenceExport,
    Explanation,
    InboxMessage,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    OutboxMessage,
    PostSignals,
    Role,
    SealedIdentity,
    Severity,
    TermHit,
    User,
    Watch,
    WatchStatus,
)
from watchfloor.sources.config import SourceConfig
from watchfloor.sources.health import Gap, HealthSnapshot, SourceStatus
from watchfloor.store import IngestBatch, Store, StoreError
from watchfloor.store.notify_repo import Fanout
from watchfloor.store.web_accounts_repo import ApiToken, LoginChallenge

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def approved_watch(store: Store, name: str = "floods") -> Watch:
    return store.add_watch(
        Watch(
            name=name, query="flood*", purpose="emergency response", legal_basis="public task", owner="desk",
            severity=Severity.high, sla_minutes=60, status=WatchStatus.approved, approver="sue",
        )
    )  # fmt: skip


def commit_alerts(store: Store, watch: Watch, make_post, times: list[datetime], *, prefix: str = "p") -> list[Alert]:
    posts = [
        make_post(native_id=f"at://x/app.bsky.feed.post/{prefix}{i}", text=f"Flood number {i}", created_at=at)
        for i, at in enumerate(times)
    ]
    alerts = [
        Alert(
            watch_id=watch.id or 0, post=p.key, score=0.5, created_at=at, due_at=at + timedelta(hours=1),
            explanation=Explanation(hits=(TermHit("flood*", "prefix", ()),)),
        )
        for p, at in zip(posts, times, strict=True)
    ]  # fmt: skip
    return store.commit_batch(IngestBatch("s", prefix, posts=posts, alerts=alerts)).alerts_added


def test_sources_health_and_gaps(store: Store) -> None:
    added = store.add_source(SourceConfig("jet", "bluesky", {"wanted": ["app.bsky.feed.post"]}, created_at=NOW))
    assert added.settings == {"wanted": ["app.bsky.feed.post"]} and added.updated_at is not None
    with pytest.raises(StoreError, match="exists already"):
        store.add_source(SourceConfig("jet", "bluesky"))
    store.add_source(SourceConfig("feeds", "rss", created_at=NOW))
    store.set_source_paused("jet", True)
    assert [(s.name, s.paused) for s in store.list_sources()] == [("feeds", False), ("jet", True)]
    with pytest.raises(StoreError, match="no source"):
        store.set_source_paused("nope", True)
    store.remove_source("feeds")
    assert store.get_source("feeds") is None
    with pytest.raises(StoreError, match="no source"):
        store.remove_source("feeds")

    snapshot = HealthSnapshot("jet", "bluesky", SourceStatus.backoff, errors=2, last_error="timeout",
                              last_error_at=NOW, quota_used=3_000_000_000, updated_at=NOW)  # fmt: skip
    store.record_source_health(snapshot)
    store.record_source_health(HealthSnapshot("jet", "bluesky", SourceStatus.connected, reconnects=1, updated_at=NOW))
    (health,) = store.source_health()
    assert health.status is SourceStatus.connected and health.reconnects == 1 and health.errors == 0

    first = store.record_gap(Gap("jet", "cursor too old", NOW, since=NOW - timedelta(minutes=5), cursor="17"))
    second = store.record_gap(Gap("other", "reconnect", NOW + timedelta(minutes=1)))
    assert first.id is not None and second.id == first.id + 1
    assert [g.id for g in store.list_gaps()] == [second.id, first.id]
    assert store.list_gaps(source="jet") == [first]
    assert store.list_gaps(since=NOW + timedelta(seconds=30)) == [second]


def test_notification_rules_outbox_and_inbox(store: Store) -> None:
    rule = store.add_notification_rule(
        NotificationRule(NotificationChannel.webhook, "http://127.0.0.1:9/hook", "sue", NOW,
                         events=(NotificationEvent.alert, NotificationEvent.sla_breach), secret="s")
    )  # fmt: skip
    assert store.get_notification_rule(rule.id or 0) == rule
    message = OutboxMessage(rule.id or 0, NotificationChannel.webhook, rule.target, NotificationEvent.alert,
                            "alert:1", {"alert": 1, "text": "naïve café ☕"}, NOW, NOW)  # fmt: skip
    fanout = Fanout(
        inbox=[InboxMessage("ana", "alert", "New alert", NOW, subject="alert:1"),
               InboxMessage("ana", "note", "Once", NOW), InboxMessage("ana", "note", "Twice", NOW)],
        outbox=[message],
    )  # fmt: skip
    assert store.enqueue_notifications(fanout) == 4
    assert store.enqueue_notifications(Fanout(inbox=fanout.inbox[:1], outbox=[message])) == 0  # repeats ignored
    (due,) = store.due_outbox(NOW)
    assert due.payload == {"alert": 1, "text": "naïve café ☕"} and store.due_outbox(NOW - timedelta(seconds=1)) == []
    store.mark_attempt_failed(due.id or 0, NOW, "connection refused " * 100, NOW + timedelta(minutes=1))
    assert store.due_outbox(NOW) == [] and len(store.due_outbox(NOW + timedelta(minutes=1))) == 1
    store.mark_delivered(due.id or 0, NOW + timedelta(minutes=1))
    (done,) = store.list_outbox()
    assert done.attempts == 2 and done.delivered_at is not None and done.last_error is None
    store.delete_notification_rule(rule.id or 0)
    assert store.list_notification_rules() == []
    with pytest.raises(StoreError):
        store.delete_notification_rule(rule.id or 0)

    assert store.unread_count("ana") == 3
    newest = store.inbox("ana", limit=1)[0]
    assert store.mark_read("ana", NOW, [newest.id or 0]) == 1
    assert store.unread_count("ana") == 2 and len(store.inbox("ana", unread_only=True)) == 2
    assert store.mark_read("ana", NOW) == 2 and store.unread_count("ana") == 0


def test_login_challenges_and_tokens_of_an_account(store: Store) -> None:
    store.add_user(User("ana", Role.analyst, "hash"))
    assert store.count_users() == 1
    store.add_login_challenge(LoginChallenge("c1", "ana", NOW, NOW + timedelta(minutes=5)))
    assert store.count_login_challenge_failure("c1") == 1 and store.count_login_challenge_failure("c1") == 2
    assert store.count_login_challenge_failure("missing") == 0
    assert store.get_login_challenge("c1").failures == 2  # type: ignore[union-attr]
    store.delete_login_challenge("c1")
    assert store.get_login_challenge("c1") is None
    token = store.add_api_token(ApiToken("ana", "cron", "h1", ("read_alerts",), NOW, NOW + timedelta(days=1)))
    store.add_api_token(ApiToken("ana", "other", "h2", ("read_alerts",), NOW, NOW + timedelta(days=1)))
    store.note_api_token_used(token.id or 0, NOW + timedelta(minutes=1))
    assert store.get_api_token(token.id or 0).last_used_at == NOW + timedelta(minutes=1)  # type: ignore[union-attr]
    assert store.revoke_user_api_tokens("ana", at=NOW) == 2
    assert store.revoke_user_api_tokens("ana", at=NOW) == 0


def test_exports_identities_and_the_purpose_of_an_alert(store: Store, make_post) -> None:
    watch = approved_watch(store)
    (alert,) = commit_alerts(store, watch, make_post, [NOW])
    assert store.purpose_of_alert(alert.id or 0) == "emergency response" and store.purpose_of_alert(999) is None
    case, _ = store.create_case("Flooding", "ana", actor="ana", at=NOW, alert_ids=[alert.id or 0], reason="keep")
    export = store.record_export(EvidenceExport(case.id or 0, NOW, "ana", "ab" * 32, "case-1.zip"))
    assert export.id is not None and store.find_exports("ab" * 32) == [export] and store.find_exports("cd") == []
    sealed = [SealedIdentity("p:01", 1, b"n" * 12, b"\x00\xff", NOW), SealedIdentity("p:01", 2, b"m" * 12, b"c", NOW)]
    assert store.add_identities(sealed) == 2 and store.add_identities(sealed) == 0
    assert store.identities_of("p:01") == sealed


def test_alert_volume_buckets_and_groups_of_near_duplicates(store: Store, make_post) -> None:
    watch = approved_watch(store)
    since = NOW - timedelta(minutes=30)
    times = [since + timedelta(minutes=m, seconds=s) for m, s in ((0, 0), (4, 59), (5, 0), (17, 30), (29, 59))]
    alerts = commit_alerts(store, watch, make_post, times)
    assert store.alert_volume(since, 300) == [
        (since, 2),
        (since + timedelta(minutes=5), 1),
        (since + timedelta(minutes=10), 0),
        (since + timedelta(minutes=15), 1),
        (since + timedelta(minutes=20), 0),
        (since + timedelta(minutes=25), 1),
    ]
    store.commit_batch(
        IngestBatch("s", "signals", signals=[
            PostSignals(a.post, NOW, near_duplicate_group="g:00000000000000aa", minhash=bytes([i]) * 8)
            for i, a in enumerate(alerts[:3])
        ])
    )  # fmt: skip
    group = store.get_near_duplicate_group("g:00000000000000aa")
    assert group is not None and group.count == 3 and group.first_post == alerts[0].post
    assert group.first_seen_at == times[0] and group.last_seen_at == times[2]
    assert [g.group_id for g in store.list_near_duplicate_groups(min_count=3)] == ["g:00000000000000aa"]
    assert store.list_near_duplicate_groups(min_count=4) == []
    assert (
        [key for key, _, _ in store.recent_signatures(2)]
        == [  # the newest two, oldest first
            f"{a.post.platform}|{a.post.native_id}|{a.post.version}" for a in alerts[1:3]
        ]
    )
    assert [p.created_at for p in store.posts_since(times[2])] == [times[4], times[3], times[2]]
