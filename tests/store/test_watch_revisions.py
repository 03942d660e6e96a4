"""Watch revisions (schema 8), on both backends: every write of a watch stamps the row with the
``watches_revision`` it bumps the counter to, so ``watches_changed_since`` names exactly the
watches written after a revision, and a reader that follows the counter never misses one, even
with writers at work; a database at schema 7 keeps its watches, at revision 0."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.policy import load_policy
from watchfloor.governance.service import Governance
from watchfloor.model import Role, User, Watch, WatchStatus
from watchfloor.store import Store, StoreError, open_store
from watchfloor.store.migrations import scripts as migration_scripts
from watchfloor.store.rows import ts, watch_row

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NO_PASSWORD = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"  # never checked here


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def gov(tmp_path: Path, store: Store) -> Governance:
    """Governance over the store: ``ana`` (analyst) proposes, ``sam`` (supervisor) approves."""
    home = tmp_path / "var"
    home.mkdir()
    Keyring(home / KEYS_DIR).initialise("deployment", now=T0)
    for name, role in (("ana", Role.analyst), ("sam", Role.supervisor)):
        store.add_user(User(username=name, role=role, password_hash=NO_PASSWORD, created_at=T0))
    return Governance(store, load_policy(home), Keyring(home / KEYS_DIR), Clock())


def proposal(name: str, query: str = "flood* AND river") -> Watch:
    return Watch(
        name=name,
        query=query,
        purpose="public-safety",
        legal_basis="Civil Contingencies Act",
        owner="duty desk",
        expires_at=T0 + timedelta(days=10),
    )


def row_revisions(store: Store) -> dict[int, int]:
    rows = store._conn.execute("SELECT id, revision FROM watches ORDER BY id")  # type: ignore[attr-defined]
    return {int(r[0]): int(r[1]) for r in rows}


def test_changed_since_names_exactly_the_watches_written_after_a_revision(store: Store, gov: Governance) -> None:
    r0 = store.watches_revision()
    assert store.watches_changed_since(r0) == []
    a = gov.watches.propose(proposal("a"), by="ana").watch
    b = gov.watches.propose(proposal("b"), by="ana").watch
    r1 = store.watches_revision()
    assert r1 == r0 + 2
    assert store.watches_changed_since(r0) == [a, b]
    assert store.watches_changed_since(r0 + 1) == [b]
    assert store.watches_changed_since(r1) == []  # nothing written after r1

    approved = gov.watches.approve(a.id, by="sam")  # the governance update of the row
    assert approved.status == WatchStatus.approved
    r2 = store.watches_revision()
    assert store.watches_changed_since(r1) == [approved]

    disabled = gov.watches.set_enabled(b.id, False, by="sam")
    r3 = store.watches_revision()
    assert store.watches_changed_since(r2) == [disabled] and not disabled.enabled
    c = store.add_watch(proposal("c"))
    enabled = gov.watches.set_enabled(b.id, True, by="sam")
    assert store.watches_changed_since(r3) == [enabled, c]  # by id, each as it is now
    assert store.watches_changed_since(r1) == [approved, enabled, c]
    assert store.watches_changed_since(r0) == store.list_watches()

    # each row carries the revision of its last write, in the order of the writes
    assert row_revisions(store) == {a.id: r2, b.id: r3 + 2, c.id: r3 + 1}
    assert store.watches_revision() == r3 + 2


def test_a_refused_write_takes_no_revision(store: Store) -> None:
    a = store.add_watch(proposal("a"))
    r = store.watches_revision()
    with pytest.raises(StoreError, match="exists already"):
        store.add_watch(proposal("a"))
    with pytest.raises(StoreError, match="no watch"):
        store.set_watch_enabled(a.id + 100, False)
    with pytest.raises(StoreError, match="no watch"):
        store.save_watch_approval(replace(proposal("ghost"), id=a.id + 100))
    assert store.watches_revision() == r and store.watches_changed_since(r) == []
    assert row_revisions(store) == {a.id: r}


def test_a_reader_that_follows_the_revision_misses_no_write(any_store_url: str) -> None:
    """Writers on their own connections add and toggle watches while a reader applies what
    ``watches_changed_since`` returns after each revision it reads: at the end it holds every
    watch as stored, and the rows' revisions are distinct and no newer than the counter."""
    writers = [open_store(any_store_url) for _ in range(3)]
    reader = open_store(any_store_url)
    errors: list[BaseException] = []

    def write(n: int, store: Store) -> None:
        try:
            for i in range(15):
                w = store.add_watch(proposal(f"w{n}-{i}"))
                store.set_watch_enabled(w.id, i % 2 == 0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(writers)]
    held: dict[int, Watch] = {}
    known = reader.watches_revision()
    for t in threads:
        t.start()
    try:
        finished = False
        while not finished:
            finished = not any(t.is_alive() for t in threads)  # then one last round
            revision = reader.watches_revision()  # first, then the rows (as the watch-set cache does)
            if revision != known:
                held.update((w.id, w) for w in reader.watches_changed_since(known) if w.id is not None)
                known = revision
        assert not errors, errors
        assert held == {w.id: w for w in reader.list_watches()} and len(held) == 45
        revisions = row_revisions(reader)
        assert len(set(revisions.values())) == 45 and max(revisions.values()) == reader.watches_revision() == 90
    finally:
        for t in threads:
            t.join(timeout=60)
        for s in [*writers, reader]:
            s.close()


# --------------------------------------------------------------------------- schema 7 -> 8


def _scripts(dialect: str, up_to: int) -> list[tuple[int, str, str]]:
    return [(v, f.name, f.read_text(encoding="utf-8")) for v, f in migration_scripts(dialect) if v <= up_to]


def _database_at_schema_7(url: str) -> None:
    """A database as watchfloor left it at schema 7, with two watches and revision 5."""
    row = watch_row(proposal("old")) | {"updated_at": ts(T0)}
    other = watch_row(proposal("older", query="bridge")) | {"updated_at": ts(T0), "enabled": 0}
    insert = f"INSERT INTO watches ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"
    bump = "UPDATE meta SET value = '5' WHERE key = 'watches_revision'"
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for version, _, sql in _scripts("sqlite", 7):
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={version};\nCOMMIT;")
        conn.execute(insert, row)
        conn.execute(insert, other)
        conn.execute(bump)
        conn.close()
        return
    import psycopg

    from watchfloor.store.pg_connection import PgConnection, pg_row

    pg = PgConnection(psycopg.connect(url, autocommit=True, row_factory=pg_row))
    pg.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for version, name, sql in _scripts("postgresql", 7):
        with pg.transaction():
            pg.execute(sql)
            pg.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, ts(T0)))
    pg.execute(insert, row)
    pg.execute(insert, other)
    pg.execute(bump)
    pg.close()


def test_schema_8_keeps_the_watches_of_schema_7_at_revision_0(any_store_url: str) -> None:
    _database_at_schema_7(any_store_url)
    store = open_store(any_store_url)  # migrates: 8
    try:
        assert store.schema_version() == 8
        old, older = store.list_watches()
        assert (old.name, old.query, older.name, older.enabled) == ("old", "flood* AND river", "older", False)
        assert row_revisions(store) == {old.id: 0, older.id: 0}
        assert store.watches_revision() == 5
        assert store.watches_changed_since(5) == [] and store.watches_changed_since(-1) == [old, older]
        store.set_watch_enabled(older.id, True)  # the next write goes on from the counter
        assert row_revisions(store) == {old.id: 0, older.id: 6}
        assert [w.name for w in store.watches_changed_since(5)] == ["older"]
    finally:
        store.close()
