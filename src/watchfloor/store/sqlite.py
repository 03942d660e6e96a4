"""The embedded store: SQLite in WAL mode, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from importlib import resources
from pathlib import Path

from watchfloor.model import (
    Alert,
    AlertStatus,
    AlertView,
    DeadLetter,
    Post,
    Severity,
    SourceState,
    StoreCounts,
    User,
    Watch,
    utcnow,
)
from watchfloor.store.base import IngestBatch, IngestResult, Session, StoreError
from watchfloor.store.rows import (
    alert_from_row,
    alert_row,
    must_ts,
    parse_ts,
    post_from_row,
    post_row,
    ts,
    user_from_row,
    watch_from_row,
    watch_row,
)
from watchfloor.store.sqlite_cases import SQLiteCasesMixin
from watchfloor.store.sqlite_governance import SQLiteGovernanceMixin
from watchfloor.store.sqlite_notify import SQLiteNotificationsMixin
from watchfloor.store.sqlite_signals import SQLiteSignalsMixin
from watchfloor.store.sqlite_sources import SQLiteSourcesMixin
from watchfloor.store.sqlite_triage import SQLiteTriageMixin
from watchfloor.store.sqlite_web_accounts import SQLiteWebAccountsMixin

DEAD_LETTER_PAYLOAD_LIMIT = 64 * 1024  # bytes of a quarantined payload that are kept

_POST_COLUMNS = tuple(
    [
        "platform",
        "native_id",
        "version",
        "created_at",
        "received_at",
        "text",
        "author",
        "lang",
        "langs",
        "url",
        "links",
        "hashtags",
        "mentions",
        "reply_to",
        "quote_of",
        "media",
        "raw",
    ]
)
_INSERT_POST = (
    f"INSERT OR IGNORE INTO posts ({', '.join(_POST_COLUMNS)}) "
    f"SELECT {', '.join(':' + c for c in _POST_COLUMNS)} "
    "WHERE NOT EXISTS (SELECT 1 FROM tombstones t"
    " WHERE t.platform = :platform AND t.native_id = :native_id)"
)
_ALERT_COLUMNS = tuple(
    ["watch_id", "platform", "native_id", "version", "score", "explanation", "created_at", "due_at", "status"]
)
_INSERT_ALERT = (
    f"INSERT OR IGNORE INTO alerts ({', '.join(_ALERT_COLUMNS)}) "
    f"SELECT {', '.join(':' + c for c in _ALERT_COLUMNS)} "
    "WHERE NOT EXISTS (SELECT 1 FROM tombstones t"
    " WHERE t.platform = :platform AND t.native_id = :native_id) "
    "RETURNING id"
)
_ALERT_VIEW = (
    "SELECT a.*, w.name AS watch_name, w.severity AS watch_severity, p.id AS post_id, "
    + ", ".join(f"p.{c} AS p_{c}" for c in _POST_COLUMNS)
    + " FROM alerts a JOIN watches w ON w.id = a.watch_id "
    "LEFT JOIN posts p ON p.platform = a.platform AND p.native_id = a.native_id AND p.version = a.version"
)


class SQLiteStore(
    SQLiteWebAccountsMixin,
    SQLiteSignalsMixin,
    SQLiteSourcesMixin, SQLiteTriageMixin, SQLiteCasesMixin, SQLiteNotificationsMixin, SQLiteGovernanceMixin
):
    """Store on one SQLite file. Safe to share between threads: each gets its own connection."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ plumbing
    @property
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self._busy_timeout_ms / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so writers queue instead of deadlocking."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot start a write on {self.path}: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.ProgrammingError):  # closed from another thread already
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def migrate(self) -> int:
        conn = self._conn
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        scripts = sorted(
            (f for f in resources.files("watchfloor.store.migrations.sqlite").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        for script in scripts:
            version = int(script.name.split("_", 1)[0])
            if version <= current:
                continue
            sql = script.read_text(encoding="utf-8")
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={version};\nCOMMIT;")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"migration {script.name} failed: {exc}") from exc
            current = version
        return current

    # ------------------------------------------------------------------ watches
    def _bump_watches_revision(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'watches_revision'")

    def add_watch(self, watch: Watch) -> Watch:
        row = watch_row(watch)
        row["updated_at"] = ts(utcnow())
        cols = ", ".join(row)
        try:
            with self._write() as conn:
                cur = conn.execute(f"INSERT INTO watches ({cols}) VALUES ({', '.join(':' + c for c in row)})", row)
                self._bump_watches_revision(conn)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a watch named {watch.name!r} exists already") from exc
        stored = self.get_watch(int(cur.lastrowid or 0))
        assert stored is not None
        return stored

    def get_watch(self, watch_id: int) -> Watch | None:
        row = self._conn.execute("SELECT * FROM watches WHERE id = ?", (watch_id,)).fetchone()
        return None if row is None else watch_from_row(row)

    def get_watch_by_name(self, name: str) -> Watch | None:
        row = self._conn.execute("SELECT * FROM watches WHERE name = ?", (name,)).fetchone()
        return None if row is None else watch_from_row(row)

    def list_watches(self) -> list[Watch]:
        return [watch_from_row(r) for r in self._conn.execute("SELECT * FROM watches ORDER BY id")]

    def set_watch_enabled(self, watch_id: int, enabled: bool) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE watches SET enabled = ?, updated_at = ? WHERE id = ?",
                (1 if enabled else 0, ts(utcnow()), watch_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no watch with id {watch_id}")
            self._bump_watches_revision(conn)

    def watches_revision(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'watches_revision'").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ ingest
    def get_cursor(self, source: str) -> str | None:
        row = self._conn.execute("SELECT cursor FROM source_state WHERE source = ?", (source,)).fetchone()
        return None if row is None else row[0]

    def commit_batch(self, batch: IngestBatch) -> IngestResult:
        now = ts(utcnow())
        added: list[Alert] = []
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(_INSERT_POST, [post_row(p) for p in batch.posts])
            posts_added = conn.total_changes - before
            self._insert_identities(conn, batch.identities)  # sealed with the posts that need them
            for alert in batch.alerts:
                row = conn.execute(_INSERT_ALERT, alert_row(alert)).fetchone()
                if row is not None:
                    added.append(replace(alert, id=int(row[0])))
            self._insert_signals(conn, batch)  # the matched posts' signals and the batch's spikes
            deleted = 0
            for d in batch.deletions:
                conn.execute(
                    "INSERT OR IGNORE INTO tombstones (platform, native_id, deleted_at) VALUES (?, ?, ?)",
                    (d.platform, d.native_id, ts(d.deleted_at)),
                )
                deleted += conn.execute(
                    "DELETE FROM posts WHERE platform = ? AND native_id = ?", (d.platform, d.native_id)
                ).rowcount
                conn.execute(
                    "UPDATE alerts SET post_deleted = 1 WHERE platform = ? AND native_id = ?",
                    (d.platform, d.native_id),
                )
            conn.executemany(
                "INSERT INTO dead_letters (source, platform, reason, payload, received_at) VALUES (?, ?, ?, ?, ?)",
                [
                    (dl.source, dl.platform, dl.reason, dl.payload[:DEAD_LETTER_PAYLOAD_LIMIT], ts(dl.received_at))
                    for dl in batch.dead_letters
                ],
            )
            conn.execute(
                """INSERT INTO source_state
                       (source, cursor, events_total, posts_total, events_per_s, lag_s, last_event_at, updated_at)
                   VALUES (:source, :cursor, :events, :posts, :rate, :lag, :last, :now)
                   ON CONFLICT (source) DO UPDATE SET
                       cursor = COALESCE(:cursor, cursor),
                       events_total = events_total + :events,
                       posts_total = posts_total + :posts,
                       events_per_s = :rate,
                       lag_s = :lag,
                       last_event_at = COALESCE(:last, last_event_at),
                       updated_at = :now""",
                {
                    "source": batch.source,
                    "cursor": batch.cursor,
                    "events": batch.events,
                    "posts": posts_added,
                    "rate": batch.events_per_s,
                    "lag": batch.lag_s,
                    "last": ts(batch.last_event_at),
                    "now": now,
                },
            )
        return IngestResult(
            posts_added=posts_added,
            alerts_added=added,
            posts_deleted=deleted,
            dead_letters_added=len(batch.dead_letters),
        )

    # ------------------------------------------------------------------ reading
    def _alert_view(self, row: sqlite3.Row) -> AlertView:
        post: Post | None = None
        if row["post_id"] is not None:
            post = post_from_row({c: row[f"p_{c}"] for c in _POST_COLUMNS})
        return AlertView(
            alert=alert_from_row(row),
            watch_name=row["watch_name"],
            severity=Severity(row["watch_severity"]),
            post=post,
        )

    def list_alerts(
        self, *, after_id: int = 0, limit: int = 100, watch_id: int | None = None, newest_first: bool = False
    ) -> list[AlertView]:
        sql = _ALERT_VIEW + " WHERE a.id > ?"
        args: list[object] = [after_id]
        if watch_id is not None:
            sql += " AND a.watch_id = ?"
            args.append(watch_id)
        sql += f" ORDER BY a.id {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args.append(limit)
        return [self._alert_view(r) for r in self._conn.execute(sql, args)]

    def get_alert(self, alert_id: int) -> AlertView | None:
        row = self._conn.execute(_ALERT_VIEW + " WHERE a.id = ?", (alert_id,)).fetchone()
        return None if row is None else self._alert_view(row)

    def get_post(self, platform: str, native_id: str, version: str) -> Post | None:
        row = self._conn.execute(
            "SELECT * FROM posts WHERE platform = ? AND native_id = ? AND version = ?",
            (platform, native_id, version),
        ).fetchone()
        return None if row is None else post_from_row(row)

    def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        rows = self._conn.execute("SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,))
        return [
            DeadLetter(
                id=r["id"],
                source=r["source"],
                platform=r["platform"],
                reason=r["reason"],
                payload=bytes(r["payload"]),
                received_at=must_ts(r["received_at"]),
            )
            for r in rows
        ]

    def source_states(self) -> list[SourceState]:
        rows = self._conn.execute("SELECT * FROM source_state ORDER BY source")
        return [
            SourceState(
                source=r["source"],
                cursor=r["cursor"],
                events_total=r["events_total"],
                posts_total=r["posts_total"],
                events_per_s=r["events_per_s"],
                lag_s=r["lag_s"],
                last_event_at=parse_ts(r["last_event_at"]),
                updated_at=parse_ts(r["updated_at"]),
            )
            for r in rows
        ]

    def counts(self) -> StoreCounts:
        now = ts(utcnow())
        row = self._conn.execute(
            """SELECT
                 (SELECT COUNT(*) FROM posts) AS posts,
                 (SELECT COUNT(*) FROM alerts) AS alerts,
                 (SELECT COUNT(*) FROM alerts WHERE status = ?) AS open_alerts,
                 (SELECT COUNT(*) FROM dead_letters) AS dead_letters,
                 (SELECT COUNT(*) FROM watches) AS watches,
                 (SELECT COUNT(*) FROM watches WHERE enabled = 1 AND status = 'approved'
                     AND (expires_at IS NULL OR expires_at > ?)) AS active_watches""",
            (AlertStatus.open.value, now),
        ).fetchone()
        return StoreCounts(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (Row iterates values)

    # ------------------------------------------------------------------ accounts
    def add_user(self, user: User) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO users (username, role, password_hash, must_change_password, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        user.username,
                        user.role.value,
                        user.password_hash,
                        int(user.must_change_password),
                        ts(user.created_at),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"a user named {user.username!r} exists already") from exc

    def get_user(self, username: str) -> User | None:
        row = self._conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return None if row is None else user_from_row(row)

    def set_password(self, username: str, password_hash: str, *, must_change: bool) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ?, must_change_password = ? WHERE username = ?",
                (password_hash, int(must_change), username),
            )

    def count_users(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def add_session(self, session: Session) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sessions (token_hash, username, created_at, expires_at, csrf_token, idle_expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.token_hash,
                    session.username,
                    ts(session.created_at),
                    ts(session.expires_at),
                    session.csrf_token,
                    ts(session.idle_expires_at),
                ),
            )

    def get_session(self, token_hash: str) -> Session | None:
        row = self._conn.execute("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        if row is None:
            return None
        return Session(
            token_hash=row["token_hash"],
            username=row["username"],
            created_at=must_ts(row["created_at"]),
            expires_at=must_ts(row["expires_at"]),
            csrf_token=row["csrf_token"],
            idle_expires_at=parse_ts(row["idle_expires_at"]),
        )

    def delete_session(self, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
