"""What the PostgreSQL store must do beyond the shared behaviour (test_store.py and the other
areas run that on both backends): SQLite's placeholders and rows on psycopg, migrations that
are atomic and safe when processes start together, and the concurrency SQLite's single writer
gave for free: the same batch from two workers stored once, audit appends from several
processes that keep a valid Merkle log, a decision taken once, a delete that races its post,
a lost connection taken up again. Real PostgreSQL (``pg_url``), real processes and threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg
import pytest

from watchfloor.governance.audit import AuditLog, decode_entry, verify_log
from watchfloor.model import (
    Alert,
    Deletion,
    Disposition,
    Explanation,
    Post,
    Role,
    StoreCounts,
    TermHit,
    User,
    Watch,
    WatchStatus,
)
from watchfloor.store import IngestBatch, Store, StoreError, open_store
from watchfloor.store.pg_connection import PgConnection, pg_row, translate
from watchfloor.store.postgresql import INGEST_LOCK, LOCK_CLASS

# the number of the newest PostgreSQL migration shipped in the package
LATEST = max(
    int(f.name.split("_", 1)[0])
    for f in resources.files("watchfloor.store.migrations.postgresql").iterdir()
    if f.name.endswith(".sql")
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(pg_url: str):
    s = open_store(pg_url)
    yield s
    s.close()


def raw(url: str) -> PgConnection:
    return PgConnection(psycopg.connect(url, autocommit=True, row_factory=pg_row))


def approved(store: Store, name: str = "floods") -> Watch:
    return store.add_watch(
        Watch(name=name, query="flood*", purpose="p", legal_basis="b", owner="o", status=WatchStatus.approved,
              approver="sue", expires_at=NOW + timedelta(days=30))
    )  # fmt: skip


def batch_of(watch: Watch, make_post: Callable[..., Post], n: int, *, prefix: str, cursor: str = "1") -> IngestBatch:
    posts = [make_post(native_id=f"at://x/app.bsky.feed.post/{prefix}-{i}", text=f"flood {i}") for i in range(n)]
    alerts = [
        Alert(watch_id=watch.id or 0, post=p.key, score=0.5, created_at=NOW, due_at=NOW + timedelta(hours=1),
              explanation=Explanation(hits=(TermHit("flood*", "prefix", ()),)))
        for p in posts
    ]  # fmt: skip
    return IngestBatch(source=f"src-{prefix}", cursor=cursor, posts=posts, alerts=alerts, events=n)


def run_together(*jobs: Callable[[], object]) -> list[object]:
    """Start the jobs in threads at the same moment; their results (an exception is a result)."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int, job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = job()
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --------------------------------------------------------------------------- the adapter


def test_sqlite_placeholders_become_psycopg_ones_outside_literals() -> None:
    assert translate("SELECT * FROM t WHERE a = ? AND b = :name") == "SELECT * FROM t WHERE a = %s AND b = %(name)s"
    assert translate("SELECT 'a ? :b %', \"q:r\", x::int, 5 % 2 FROM t WHERE c = ?") == (
        "SELECT 'a ? :b %', \"q:r\", x::int, 5 %% 2 FROM t WHERE c = %s"
    )
    assert translate("SELECT 'it''s :x ?' || :y") == "SELECT 'it''s :x ?' || %(y)s"


def test_rows_are_read_by_name_and_by_position(store: Store) -> None:
    conn = store._conn  # type: ignore[attr-defined]
    row = conn.execute("SELECT 1 AS one, 'x' AS two, ? AS three", ("%3",)).fetchone()
    assert row[0] == 1 and row["two"] == "x" and row["three"] == "%3" and row.keys() == ["one", "two", "three"]
    assert tuple(row) == (1, "x", "%3")
    with pytest.raises(IndexError, match="no column named 'four'"):
        row["four"]


# --------------------------------------------------------------------------- migrations


def test_both_backends_have_the_same_tables_and_columns(pg_url: str, tmp_path) -> None:
    sqlite = open_store(f"sqlite:///{tmp_path / 'schema.db'}")
    conn = sqlite._conn  # type: ignore[attr-defined]
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    lite = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    sqlite.close()
    open_store(pg_url).close()
    pg = raw(pg_url)
    columns: dict[str, set[str]] = {}
    for table, column in pg.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        columns.setdefault(table, set()).add(column)
    pg.close()
    assert columns.pop("schema_migrations") == {"version", "name", "applied_at"}  # SQLite: PRAGMA user_version
    columns["post_signals"].remove("rowid")  # SQLite's implicit rowid, made explicit
    assert columns == lite


def test_a_failed_migration_leaves_the_schema_untouched(pg_url: str) -> None:
    outsider = raw(pg_url)
    outsider.execute("CREATE TABLE meta (key TEXT)")  # collides with the first migration
    with pytest.raises(StoreError, match="migration 0001"):
        open_store(pg_url)
    assert outsider.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == 0
    assert outsider.execute("SELECT to_regclass('watches')").fetchone()[0] is None  # rolled back as a whole
    outsider.execute("DROP TABLE meta")
    store = open_store(pg_url)
    assert store.schema_version() == LATEST
    store.close()
    outsider.close()


def test_a_database_that_is_not_utf8_is_refused(pg_url: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    admin = raw(urlunsplit(urlsplit(pg_url)._replace(path="/postgres")))
    name = urlsplit(pg_url).path.lstrip("/") + "_ascii"
    admin.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        with pytest.raises(StoreError, match="UTF8"):
            open_store(urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}")))
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_processes_that_start_together_apply_each_migration_once(pg_url: str) -> None:
    code = "import sys; from watchfloor.store import open_store; print(open_store(sys.argv[1]).schema_version())"
    run = [sys.executable, "-c", code, pg_url]
    procs = [subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outcomes
    assert [out.strip() for out, _ in outcomes] == [str(LATEST)] * 3
    conn = raw(pg_url)
    applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == list(range(1, LATEST + 1))
    conn.close()


# --------------------------------------------------------------------------- concurrency


def test_the_same_batch_from_two_workers_is_stored_once(pg_url: str, make_post) -> None:
    first, second = open_store(pg_url), open_store(pg_url)  # two workers: two stores, two connections
    watch = approved(first)
    for round_ in range(5):
        batch = batch_of(watch, make_post, 50, prefix=f"r{round_}")
        results = run_together(lambda b=batch: first.commit_batch(b), lambda b=batch: second.commit_batch(b))
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert sum(r.posts_added for r in results) == 50  # type: ignore[attr-defined]
        assert sum(len(r.alerts_added) for r in results) == 50  # type: ignore[attr-defined]
    counts = first.counts()
    assert counts.posts == 250 and counts.alerts == 250
    ids = [v.alert.id for v in first.list_alerts(limit=1000)]
    assert ids == list(range(1, 251))  # no id burnt by the losing worker: a later fan-out misses none
    first.close()
    second.close()


def test_audit_appends_from_several_processes_keep_one_valid_merkle_log(pg_url: str, tmp_path) -> None:
    open_store(pg_url).close()  # migrated once, before the writers start
    go = tmp_path / "go"
    code = (
        "import pathlib, sys, time\n"
        "from watchfloor.governance.audit import AuditLog\n"
        "from watchfloor.store import open_store\n"
        "log = AuditLog(open_store(sys.argv[1]))\n"
        "print('ready', flush=True)\n"
        "while not pathlib.Path(sys.argv[3]).exists():\n"
        "    time.sleep(0.001)\n"
        "for i in range(100):\n"
        "    log.record(actor=sys.argv[2], action='alert.read', target=f'alert:{i}')\n"
    )
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url, f"worker{n}", str(go)], **pipes) for n in range(3)]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3  # type: ignore[union-attr]
    go.touch()  # all at once
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = open_store(pg_url)
    report = verify_log(store, None)
    assert report.ok, report.problems
    assert report.size == 300 and [r.seq for r in store.audit_rows()] == list(range(300))
    actors = [decode_entry(r.entry).actor for r in store.audit_rows()]
    assert len(set(actors[:150])) == 3  # the writers really were interleaved
    AuditLog(store).record(actor="auditor", action="audit.verified")  # the head is still the log's
    assert verify_log(store, None).ok
    store.close()


def test_a_decision_is_taken_once_when_two_analysts_decide_at_once(store: Store, make_post) -> None:
    for name in ("ana", "bob"):
        store.add_user(User(name, Role.analyst, "x"))
    alerts = store.commit_batch(batch_of(approved(store), make_post, 10, prefix="d")).alerts_added
    for alert in alerts:
        results = run_together(
            lambda a=alert: store.dispose_alerts([a.id], Disposition.dismiss, "noise", actor="ana", at=NOW),
            lambda a=alert: store.dispose_alerts([a.id], Disposition.false_positive, "wrong", actor="bob", at=NOW),
        )
        assert sorted(len(r.changed) for r in results) == [0, 1], results  # type: ignore[attr-defined]
        assert [e.kind for e in store.triage_history(alert.id or 0)] == ["disposed"]


def test_a_post_whose_delete_commits_while_its_batch_waits_is_not_kept(pg_url: str, make_post) -> None:
    """A worker stores a post; before it commits, another worker commits the post's delete.
    SQLite's single writer rules this out; here the ingest lock and a second look at the
    tombstones under it do. The deleting batch is made to go first with the lock held."""
    first, second = open_store(pg_url), open_store(pg_url)
    watch = approved(first)
    batch = batch_of(watch, make_post, 1, prefix="race")
    post = batch.posts[0]
    holder = raw(pg_url)
    monitor = raw(pg_url)

    def waiting() -> int:
        return monitor.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = ? AND objid = ?",
            (LOCK_CLASS, INGEST_LOCK),
        ).fetchone()[0]

    with holder.transaction():
        holder.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, {INGEST_LOCK})")
        deleting = threading.Thread(
            target=second.commit_batch,
            args=(IngestBatch("deletes", "9", deletions=[Deletion(post.platform, post.native_id, NOW)]),),
        )
        deleting.start()
        wait_until(lambda: waiting() == 1)  # the delete queues first ...
        results: list[object] = []
        storing = threading.Thread(target=lambda: results.append(first.commit_batch(batch)))
        storing.start()
        wait_until(lambda: waiting() == 2)  # ... then the post, inserted and waiting to commit
    deleting.join(timeout=30)
    storing.join(timeout=30)
    (result,) = results
    assert result.posts_added == 0 and result.alerts_added == []  # type: ignore[attr-defined]
    assert first.get_post(post.platform, post.native_id, post.version) is None
    assert first.counts().posts == 0
    for conn in (holder, monitor):
        conn.close()
    first.close()
    second.close()


def test_a_lost_connection_is_taken_up_again(store: Store, pg_url: str, make_post) -> None:
    watch = approved(store)
    store.commit_batch(batch_of(watch, make_post, 3, prefix="a"))
    admin = raw(pg_url)

    def cut() -> None:  # what a server restart does to every open connection
        pid = store._conn.raw.info.backend_pid  # type: ignore[attr-defined]
        admin.execute("SELECT pg_terminate_backend(?)", (pid,))
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = ?)"
        wait_until(lambda: admin.execute(gone, (pid,)).fetchone()[0])

    cut()
    assert store.counts().posts == 3  # a read runs again on a new connection
    cut()
    store.add_user(User("ana", Role.analyst, "x"))  # a write begins again on a new connection
    cut()
    result = store.commit_batch(batch_of(watch, make_post, 3, prefix="b", cursor="2"))  # and so does a batch
    assert result.posts_added == 3 and store.get_cursor("src-b") == "2"
    admin.close()


def test_the_url_s_password_is_never_shown(pg_url: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(pg_url)
    wrong = urlunsplit(parts._replace(netloc=f"nobody:s3cret-pw@{parts.hostname}:{parts.port or 5432}"))
    with pytest.raises(StoreError) as refused:
        open_store(wrong)
    assert "s3cret-pw" not in str(refused.value) and "nobody:***@" in str(refused.value)


def test_init_status_and_run_work_on_postgresql(pg_url: str, tmp_path) -> None:
    home = tmp_path / "var"
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "WATCHFLOOR_DB": pg_url, "NO_COLOR": "1", "COLUMNS": "200"}

    def watchfloor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "watchfloor", *args], env=env, capture_output=True, text=True)

    status = watchfloor("status")
    assert status.returncode == 1 and "run `watchfloor init` first" in status.stderr  # an empty database
    init = watchfloor("init", "--demo-watches")
    assert init.returncode == 0, init.stderr
    assert f"at schema version {LATEST}" in init.stdout and not (home / "watchfloor.db").exists()  # no file store
    run = watchfloor("run", "--source", "demo", "--limit", "2000", "--rate", "0", "--no-web")
    assert run.returncode == 0, run.stderr
    status = watchfloor("status", "--json")
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stdout)
    assert figures["counts"]["alerts"] > 0 and figures["sources"][0]["cursor"] == "2000"
    store = open_store(pg_url)
    assert store.count_users() == 1 and store.counts() == StoreCounts(**figures["counts"])
    store.close()
