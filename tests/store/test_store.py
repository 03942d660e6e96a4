"""The store on both backends, a real SQLite file and a real PostgreSQL database: idempotent
ingest, cursor, deletes, migrations. PostgreSQL's own concerns are in test_postgresql_store.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.model import (
    Alert,
    DeadLetter,
    Deletion,
    Explanation,
    RawEvent,
    Role,
    Severity,
    TermHit,
    User,
    Watch,
)
from watchfloor.store import IngestBatch, Store, StoreError, open_store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def watch(name: str = "floods", query: str = "flood*") -> Watch:
    return Watch(
        name=name,
        query=query,
        purpose="emergency response",
        legal_basis="public task",
        owner="alice",
        severity=Severity.high,
        sla_minutes=60,
        expires_at=NOW + timedelta(days=30),
    )


def alert_for(watch_id: int, post, term: str = "flood*") -> Alert:
    return Alert(
        watch_id=watch_id,
        post=post.key,
        score=0.7,
        explanation=Explanation(hits=(TermHit(term, "prefix", ((10, 18),)),), score_parts=(("severity", 0.375),)),
        created_at=NOW,
        due_at=NOW + timedelta(minutes=60),
    )


def latest_migration(dialect: str) -> int:
    from importlib import resources

    scripts = [f.name for f in resources.files(f"watchfloor.store.migrations.{dialect}").iterdir()]
    return max(int(name.split("_", 1)[0]) for name in scripts if name.endswith(".sql"))


def test_both_backends_have_the_same_migrations() -> None:
    from importlib import resources

    def names(dialect: str) -> list[str]:
        folder = resources.files(f"watchfloor.store.migrations.{dialect}")
        return sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))

    assert names("sqlite") == names("postgresql")


def test_schema_is_migrated_once(store) -> None:
    latest = latest_migration(store.dialect.name)
    assert store.schema_version() == latest
    assert store.migrate() == latest  # idempotent: a second run changes nothing
    assert store.schema_version() == latest


def test_sqlite_is_in_wal_mode(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'wal.db'}")
    latest = latest_migration("sqlite")
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == latest
    conn.close()
    store.close()


def test_a_failed_sqlite_migration_leaves_the_schema_untouched(tmp_path) -> None:
    from watchfloor.store.sqlite import SQLiteStore

    db = SQLiteStore(tmp_path / "x.db")
    conn = db._conn
    conn.execute("CREATE TABLE meta (key TEXT)")  # collides with the first migration
    with pytest.raises(StoreError, match="migration 0001"):
        db.migrate()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'watches'").fetchone()[0] == 0


def test_watch_round_trip_and_revision(store) -> None:
    r0 = store.watches_revision()
    w = store.add_watch(watch())
    assert w.id is not None
    assert store.get_watch(w.id) == w
    assert store.get_watch_by_name("floods") == w
    assert store.watches_revision() == r0 + 1
    store.set_watch_enabled(w.id, False)
    assert store.get_watch(w.id).enabled is False
    assert store.watches_revision() == r0 + 2
    with pytest.raises(StoreError, match="exists already"):
        store.add_watch(watch())
    with pytest.raises(StoreError, match="no watch"):
        store.set_watch_enabled(999, True)


def test_commit_batch_is_idempotent_and_moves_cursor(store, make_post) -> None:
    w = store.add_watch(watch())
    post = make_post()
    batch = IngestBatch(source="s", cursor="10", posts=[post], alerts=[alert_for(w.id, post)], events=5)
    first = store.commit_batch(batch)
    assert first.posts_added == 1
    assert [a.id for a in first.alerts_added] == [1]
    again = store.commit_batch(
        IngestBatch(source="s", cursor="12", posts=[post], alerts=[alert_for(w.id, post)], events=2)
    )
    assert again.posts_added == 0 and again.alerts_added == []
    assert store.get_cursor("s") == "12"
    assert store.counts().posts == 1 and store.counts().alerts == 1
    (state,) = store.source_states()
    assert state.events_total == 7 and state.posts_total == 1


def test_an_edit_is_a_new_version(store, make_post) -> None:
    w = store.add_watch(watch())
    v1, v2 = make_post(version="a"), make_post(version="b", text="Flooding now over the bridge")
    store.commit_batch(IngestBatch("s", "1", posts=[v1, v2], alerts=[alert_for(w.id, v1), alert_for(w.id, v2)]))
    assert store.counts().posts == 2
    assert store.get_post("bluesky", v2.native_id, "b").text.startswith("Flooding")


def test_upstream_delete_removes_every_version_and_stays_deleted(store, make_post) -> None:
    w = store.add_watch(watch())
    post = make_post()
    store.commit_batch(IngestBatch("s", "1", posts=[post], alerts=[alert_for(w.id, post)]))
    result = store.commit_batch(IngestBatch("s", "2", deletions=[Deletion("bluesky", post.native_id, NOW)]))
    assert result.posts_deleted == 1
    assert store.get_post(post.platform, post.native_id, post.version) is None
    view = store.get_alert(1)
    assert view is not None and view.post is None  # the alert stays, its content is gone
    # a replay of the post after its delete stores nothing again
    replay = store.commit_batch(IngestBatch("s", "3", posts=[post], alerts=[alert_for(w.id, post)]))
    assert replay.posts_added == 0 and replay.alerts_added == []
    assert store.counts().posts == 0


def test_dead_letters_are_kept_with_reason(store) -> None:
    dl = DeadLetter("s", "bluesky", "invalid JSON at line 1 column 2", b"{not json", NOW)
    store.commit_batch(IngestBatch("s", "1", dead_letters=[dl]))
    (got,) = store.list_dead_letters()
    assert got.reason == dl.reason and got.payload == dl.payload
    assert store.counts().dead_letters == 1


def test_a_batch_delivered_again_adds_its_dead_letters_once(store) -> None:
    """A worker killed between its commit and its acks gets the batch again: the events' dead
    letters (keyed by source, position and bytes) are not stored twice; unkeyed ones are kept."""
    bad = RawEvent("s", "bluesky", "41", b"{not json", NOW)
    other = RawEvent("s", "bluesky", "42", b"{not json", NOW)  # same bytes, another position
    keyed = [DeadLetter.of(bad, "invalid JSON"), DeadLetter.of(other, "invalid JSON")]
    assert keyed[0].key != keyed[1].key
    first = store.commit_batch(IngestBatch("s", None, dead_letters=keyed))
    again = store.commit_batch(IngestBatch("s", None, dead_letters=[DeadLetter.of(bad, "invalid JSON")]))
    assert (first.dead_letters_added, again.dead_letters_added) == (2, 0)
    from_t = RawEvent("t", "bluesky", "41", b"{not json", NOW)
    elsewhere = store.commit_batch(IngestBatch("t", None, dead_letters=[DeadLetter.of(from_t, "invalid JSON")]))
    assert elsewhere.dead_letters_added == 1  # the key is per source
    unkeyed = DeadLetter("s", "bluesky", "too large", b"x", NOW)
    store.commit_batch(IngestBatch("s", None, dead_letters=[unkeyed]))
    store.commit_batch(IngestBatch("s", None, dead_letters=[unkeyed]))
    assert store.counts().dead_letters == 5


def test_alert_views_page_by_id(store, make_post) -> None:
    w = store.add_watch(watch())
    posts = [make_post(native_id=f"at://x/app.bsky.feed.post/{i}") for i in range(5)]
    store.commit_batch(IngestBatch("s", "1", posts=posts, alerts=[alert_for(w.id, p) for p in posts]))
    assert [v.alert.id for v in store.list_alerts(after_id=2, limit=2)] == [3, 4]
    assert [v.alert.id for v in store.list_alerts(limit=2, newest_first=True)] == [5, 4]
    view = store.get_alert(3)
    assert view.watch_name == "floods" and view.severity is Severity.high
    assert view.alert.explanation.hits[0].spans == ((10, 18),)
    assert view.post.native_id == posts[2].native_id


def test_users_and_sessions(store) -> None:
    from watchfloor.store import Session

    store.add_user(User("alice", Role.analyst, "hash", must_change_password=True))
    with pytest.raises(StoreError):
        store.add_user(User("alice", Role.analyst, "hash"))
    store.set_password("alice", "hash2", must_change=False)
    user = store.get_user("alice")
    assert user.password_hash == "hash2" and not user.must_change_password
    s = Session("th", "alice", NOW, NOW + timedelta(hours=1), "csrf")
    store.add_session(s)
    assert store.get_session("th") == s
    store.delete_session("th")
    assert store.get_session("th") is None


def test_unsupported_url_is_refused(tmp_path) -> None:
    with pytest.raises(StoreError, match="unsupported store URL") as refused:
        open_store("mysql://root:s3cret@db/x")
    assert "s3cret" not in str(refused.value)  # a password is never printed


def test_store_is_shared_between_threads(store, make_post) -> None:
    import threading

    w = store.add_watch(watch())
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                p = make_post(native_id=f"at://x/app.bsky.feed.post/{n}-{i}")
                store.commit_batch(IngestBatch(f"s{n}", str(i), posts=[p], alerts=[alert_for(w.id, p)]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts().alerts == 80
