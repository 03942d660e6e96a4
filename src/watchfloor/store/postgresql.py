"""The scale-out store: PostgreSQL (15 or newer) through psycopg 3, one connection per thread.

``WATCHFLOOR_DB=postgresql://user:password@host:5432/watchfloor`` (or ``postgres://``; any
libpq connection URL, e.g. ``?sslmode=require``). Everything callers see is
:class:`~watchfloor.store.sql_store.SQLStore`, the repository SQLite runs too; this module
adds the plumbing and what many writers at once need.

**Design.** The repository SQL is shared (``sql_*.py``, :mod:`~watchfloor.store.dialect`);
:class:`~watchfloor.store.pg_connection.PgConnection` gives psycopg SQLite's small surface
(``?``/``:name`` placeholders, rows by name and position, ``rowcount``, errors as the
store's). Only the bulk part of ``commit_batch`` is written again, because PostgreSQL does
it much faster that way: its posts, alerts, signals and sealed identities go through binary
``COPY`` into per-connection temporary tables (made when the connection opens) and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` each, with the same rules (tombstones,
known keys, signals only of stored posts) as the shared row-by-row SQL.

**Concurrency.** On SQLite one writer at a time is a given; here several worker and web
processes write at once, so what the SQL assumed is made explicit with advisory locks
(transaction-scoped, released by COMMIT or ROLLBACK, so a crashed process never holds one):

- *writes* (everything but ``commit_batch``): one lock for all of them, taken by
  :meth:`_write`. Triage, cases, governance, accounts and the audit log read a row and
  then rewrite it (the audit tree head, an alert's status, a task, the fan-out cursor);
  with the lock they run one after another exactly as on SQLite. They are human-paced or
  periodic, short, and never wait for the lock while holding another. The audit head and
  the fan-out cursor are also read ``FOR UPDATE``, so their order would hold without it.
- *ingest order*: ``commit_batch`` runs in parallel in every worker up to its posts (COPY
  and insert, ordered by key so two batches never deadlock); then it takes the ingest lock
  and, holding it to its COMMIT, drops any post a concurrent delete tombstoned meanwhile,
  adds the alerts, signals, deletions, dead letters and the source's cursor. So alert ids
  become visible in increasing order (a reader of ``id > cursor``, the notification
  fan-out or the live floor, never skips an alert committed late), and a post never
  outlives a delete that raced it.
- *migrations*: one lock, so two processes starting at once apply each script once.

**Failures.** A deadlock, a serialisation failure, a lost connection or a restarting server
make ``commit_batch`` run the whole batch again (a new connection if needed) for up to
:attr:`PostgreSQLStore.retry_for_s`; the batch is idempotent (keys, tombstones, cursor), so
a retry after a COMMIT whose answer was lost stores nothing twice but a dead letter and
the source's counters. Any other write surfaces the failure as a
:class:`~watchfloor.store.base.StoreError` and changes nothing; nothing is lost silently.
A read, or the ``BEGIN`` of a write, that finds its connection lost (a server restart)
connects again and runs once more: neither has changed anything yet.

Connections: one per thread that uses the store (like SQLite's), opened on first use and
again after a lost connection; size ``max_connections`` for the threads of every process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from watchfloor.model import Alert, SealedIdentity, utcnow
from watchfloor.store.base import IngestBatch, IngestResult, StoreError, StoreUnavailable
from watchfloor.store.dialect import POSTGRESQL, TransientStoreError
from watchfloor.store.migrations import scripts as migration_scripts
from watchfloor.store.open import redacted_url
from watchfloor.store.pg_connection import PgConnection, pg_row, store_error
from watchfloor.store.rows import alert_row, post_row, ts
from watchfloor.store.sql_governance import IDENTITY_COLUMNS, identity_row
from watchfloor.store.sql_signals import INSERT_SPIKE, SIGNAL_COLUMNS, signals_row, spike_row
from watchfloor.store.sql_store import ALERT_COLUMNS, POST_COLUMNS, SQLStore

log = logging.getLogger(__name__)

# advisory locks: (class, object), the two-int key space; the class says "watchfloor"
LOCK_CLASS = 0x5746_4C52  # "WFLR"
WRITE_LOCK, INGEST_LOCK, MIGRATION_LOCK = 1, 2, 3


def _lock(which: int) -> str:
    return f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, {which})"


@dataclass(frozen=True)
class _Staging:
    """A per-session temporary table that COPY fills with one batch's rows; every COMMIT
    (and ROLLBACK) empties it. Created when a connection opens."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def ddl(self) -> str:
        columns = [
            f'{c} {t} COLLATE "C"' if t == "text" else f"{c} {t}" for c, t in zip(self.columns, self.types, strict=True)
        ]
        return f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.name} ({', '.join(columns)}) ON COMMIT DELETE ROWS"

    def copy(self, conn: PgConnection, rows: Iterable[Sequence[Any]]) -> None:
        """Binary COPY: no text escaping on either side."""
        try:
            with conn.raw.cursor() as cursor:
                sql = f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN (FORMAT BINARY)"
                with cursor.copy(sql) as copy:  # type: ignore[arg-type]
                    copy.set_types(list(self.types))
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            raise store_error(exc, f"COPY into {self.name}") from exc


_TEXT, _FLOAT = "text", "double precision"
_POSTS_IN = _Staging("wf_posts_in", POST_COLUMNS, (_TEXT,) * (len(POST_COLUMNS) - 1) + ("bytea",))
_ALERTS_IN = _Staging(
    "wf_alerts_in", ("ord", *ALERT_COLUMNS), ("integer", "bigint", *(_TEXT,) * 3, _FLOAT, *(_TEXT,) * 4)
)
_SIGNALS_IN = _Staging(
    "wf_signals_in", ("ord", *SIGNAL_COLUMNS), ("integer", *(_TEXT,) * 5, *(_FLOAT,) * 4, _TEXT, "bytea")
)
_IDENTITIES_IN = _Staging("wf_identities_in", IDENTITY_COLUMNS, (_TEXT, "integer", "bytea", "bytea", _TEXT))
_STAGING = ";\n".join(t.ddl for t in (_POSTS_IN, _ALERTS_IN, _SIGNALS_IN, _IDENTITIES_IN))
_KEY_MATCH = "{a}.platform = s.platform AND {a}.native_id = s.native_id"
_NOT_TOMBSTONED = f"NOT EXISTS (SELECT 1 FROM tombstones t WHERE {_KEY_MATCH.format(a='t')})"
_STAGED_POSTS = f"""INSERT INTO posts ({", ".join(POST_COLUMNS)})
SELECT {", ".join("s." + c for c in POST_COLUMNS)} FROM wf_posts_in s
WHERE {_NOT_TOMBSTONED}
  AND NOT EXISTS (SELECT 1 FROM posts p WHERE {_KEY_MATCH.format(a="p")} AND p.version = s.version)
ORDER BY s.platform, s.native_id, s.version
ON CONFLICT DO NOTHING
RETURNING id"""
_STAGED_ALERTS = f"""INSERT INTO alerts ({", ".join(ALERT_COLUMNS)})
SELECT {", ".join("s." + c for c in ALERT_COLUMNS)} FROM wf_alerts_in s
WHERE {_NOT_TOMBSTONED}
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.watch_id = s.watch_id AND {_KEY_MATCH.format(a="a")}
                  AND a.version = s.version)
ORDER BY s.ord
ON CONFLICT DO NOTHING
RETURNING id, watch_id, platform, native_id, version"""
_STAGED_SIGNALS = f"""INSERT INTO post_signals ({", ".join(SIGNAL_COLUMNS)})
SELECT {", ".join("s." + c for c in SIGNAL_COLUMNS)} FROM wf_signals_in s
WHERE EXISTS (SELECT 1 FROM posts p WHERE {_KEY_MATCH.format(a="p")} AND p.version = s.version)
ORDER BY s.ord
ON CONFLICT DO NOTHING"""
_STAGED_IDENTITIES = f"""INSERT INTO identities ({", ".join(IDENTITY_COLUMNS)})
SELECT {", ".join("s." + c for c in IDENTITY_COLUMNS)} FROM wf_identities_in s
ORDER BY s.pseudonym, s.epoch
ON CONFLICT DO NOTHING"""
# posts this batch added that a delete committed since tombstoned (checked under the ingest lock)
_DROP_TOMBSTONED = (
    "DELETE FROM posts p USING tombstones t"
    " WHERE p.id = ANY(CAST(? AS BIGINT[])) AND t.platform = p.platform AND t.native_id = p.native_id"
)


class PostgreSQLStore(SQLStore):
    """Store in one PostgreSQL database. Safe to share between threads: each gets its own connection."""

    dialect = POSTGRESQL
    retry_for_s = 30.0  # how long commit_batch keeps retrying a transaction the server undid

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self.url = url
        self._connect_timeout_s = connect_timeout_s
        self._local = threading.local()
        self._connections: dict[threading.Thread, PgConnection] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    def _open(self) -> psycopg.Connection[Any]:
        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=pg_row,
                connect_timeout=self._connect_timeout_s,
                application_name="watchfloor",
            )
            raw.execute(_STAGING)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise store_error(exc, f"cannot connect to {redacted_url(self.url)}") from exc
        return raw

    @property
    def _conn(self) -> PgConnection:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or not conn.usable:
            if conn is not None:
                log.warning("the PostgreSQL connection was lost; connecting again")
            conn = PgConnection(self._open(), reconnect=self._open)
            self._local.conn = conn
            with self._lock:
                # connections of threads that ended are closed here, not kept open forever
                for thread in [t for t in self._connections if not t.is_alive()]:
                    self._connections.pop(thread).close()
                old = self._connections.get(threading.current_thread())
                if old is not None:
                    old.close()
                self._connections[threading.current_thread()] = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[PgConnection]:
        """One write transaction, one writer at a time (see the module docstring)."""
        conn = self._conn
        with conn.transaction():
            conn.execute(_lock(WRITE_LOCK))
            yield conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        conn = self._conn
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
            return 0
        return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])

    def migrate(self) -> int:
        """Apply the scripts of ``migrations/postgresql`` that are not applied yet, each in
        its own transaction under the migration lock; the versions applied are rows of
        ``schema_migrations``."""
        conn = self._conn
        encoding = conn.execute("SHOW server_encoding").fetchone()[0]
        if encoding != "UTF8":
            raise StoreError(f"the database's encoding is {encoding}; watchfloor needs a UTF8 database")
        with conn.transaction():
            conn.execute(_lock(MIGRATION_LOCK))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        current = self.schema_version()
        for version, script in migration_scripts("postgresql"):
            if version <= current:
                continue
            sql = script.read_text(encoding="utf-8")
            try:
                with conn.transaction():
                    conn.execute(_lock(MIGRATION_LOCK))
                    if self.schema_version() >= version:  # another process applied it meanwhile
                        continue
                    conn.execute(sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, script.name, ts(utcnow())),
                    )
            except StoreError as exc:
                raise StoreError(f"migration {script.name} failed: {exc}") from exc
            current = version
        return self.schema_version()

    # ------------------------------------------------------------------ ingest
    def commit_batch(self, batch: IngestBatch) -> IngestResult:
        deadline = time.monotonic() + self.retry_for_s
        pause = 0.05
        while True:
            try:
                conn = self._conn
                with conn.transaction():
                    return self._commit_batch_in(conn, batch)
            except TransientStoreError as exc:
                if time.monotonic() + pause > deadline:
                    waited = f"{self.retry_for_s:.0f} s"
                    raise StoreUnavailable(f"batch of {batch.source!r} not stored after {waited}: {exc}") from exc
                log.warning("batch of %r not stored (%s); trying again in %.2f s", batch.source, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _insert_posts(self, conn: PgConnection, batch: IngestBatch) -> int:  # type: ignore[override]
        """COPY, then one INSERT in key order (two batches never deadlock), then the ingest lock
        and the check against tombstones committed since (see the module docstring)."""
        ids: list[int] = []
        if batch.posts:
            _POSTS_IN.copy(conn, ([row[c] for c in POST_COLUMNS] for row in map(post_row, batch.posts)))
            ids = [r[0] for r in conn.execute(_STAGED_POSTS).fetchall()]
        if not (batch.posts or batch.alerts or batch.deletions):
            return 0
        conn.execute(_lock(INGEST_LOCK))  # held to COMMIT: see the module docstring
        if not ids:
            return 0
        return len(ids) - conn.execute(_DROP_TOMBSTONED, (ids,)).rowcount

    def _insert_alerts(self, conn: PgConnection, alerts: Sequence[Alert]) -> list[Alert]:  # type: ignore[override]
        """COPY, then one INSERT in the batch's order (ids in that order), under the ingest lock."""
        if not alerts:
            return []
        _ALERTS_IN.copy(conn, ((i, *(row[c] for c in ALERT_COLUMNS)) for i, row in enumerate(map(alert_row, alerts))))
        ids = {(r[1], r[2], r[3], r[4]): int(r[0]) for r in conn.execute(_STAGED_ALERTS)}
        added: list[Alert] = []
        for alert in alerts:
            alert_id = ids.pop((alert.watch_id, alert.post.platform, alert.post.native_id, alert.post.version), None)
            if alert_id is not None:
                added.append(replace(alert, id=alert_id))
        return added

    def _insert_signals(self, conn: PgConnection, batch: IngestBatch) -> None:  # type: ignore[override]
        """COPY, then one INSERT of the signals of stored posts, in the batch's order."""
        if batch.signals:
            rows = ((i, *(row[c] for c in SIGNAL_COLUMNS)) for i, row in enumerate(map(signals_row, batch.signals)))
            _SIGNALS_IN.copy(conn, rows)
            conn.execute(_STAGED_SIGNALS)
        if batch.spikes:  # a few per batch at most
            conn.executemany(INSERT_SPIKE, [spike_row(s) for s in batch.spikes])

    def _insert_identities(self, conn: PgConnection, identities: Sequence[SealedIdentity]) -> int:  # type: ignore[override]
        """COPY, then one INSERT in key order; returns how many were new."""
        if not identities:
            return 0
        _IDENTITIES_IN.copy(conn, (identity_row(i) for i in identities))
        return conn.execute(_STAGED_IDENTITIES).rowcount
