"""The embedded store: SQLite in WAL mode, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from watchfloor.store.base import StoreError, StoreUnavailable
from watchfloor.store.dialect import SQLITE
from watchfloor.store.migrations import scripts as migration_scripts
from watchfloor.store.sql_store import SQLStore

# SQLite's primary result codes that say "not now" rather than "never": busy or locked
# past the timeout, out of memory, an I/O error, a full disk, a file that cannot be opened
# (its folder's disk is full or gone), a WAL locking protocol race.
TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def is_transient(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is one of :data:`TRANSIENT_CODES` (by its extended code's primary part)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module itself, without a code: judge by the message
        text = str(exc).lower()
        return any(word in text for word in ("locked", "busy", "disk is full", "disk i/o", "unable to open"))
    return (code & 0xFF) in TRANSIENT_CODES


class SQLiteStore(SQLStore):
    """Store on one SQLite file. Safe to share between threads: each gets its own connection."""

    dialect = SQLITE

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
        """One write transaction; BEGIN IMMEDIATE so writers queue instead of deadlocking.

        A lock held past the busy timeout, a full disk or an I/O error (at BEGIN, in a
        statement or at COMMIT) rolls the transaction back and raises
        :class:`StoreUnavailable`: nothing of it is stored, and the same write may succeed
        later. SQLite may already have rolled back by itself (a full disk): the ROLLBACK
        here is then skipped rather than hiding the real error behind its own."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_transient(exc):
                raise StoreUnavailable(f"cannot start a write on {self.path}: {exc}") from exc
            raise StoreError(f"cannot start a write on {self.path}: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and is_transient(exc):
                raise StoreUnavailable(f"write on {self.path} not stored: {exc}") from exc
            raise

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.ProgrammingError):  # closed from another thread already
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        conn = self._conn
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for version, script in migration_scripts("sqlite"):
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
