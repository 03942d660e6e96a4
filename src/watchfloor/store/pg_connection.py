"""A psycopg 3 connection with the small surface the repository code uses on SQLite.

The repository SQL (``sql_*.py``) is written with SQLite's placeholders, ``?`` and
``:name``, and reads rows by column name and by position. :class:`PgConnection` gives it
the same on PostgreSQL:

- :func:`translate` turns ``?`` into ``%s`` and ``:name`` into ``%(name)s`` (and a literal
  ``%`` into ``%%``), outside string literals and quoted names, leaving ``::`` casts alone;
  the result is cached, since the statements are few and repeat;
- rows are :class:`PgRow`: tuples that also take a column name, like :class:`sqlite3.Row`;
- ``execute``/``executemany`` return a psycopg cursor (``rowcount``, ``fetchone``,
  ``fetchall``, iteration); ``executemany`` sums ``rowcount`` over its parameter sets
  and runs them in one pipeline;
- errors become the store's: a constraint violation is
  :class:`~watchfloor.store.dialect.IntegrityError`; a deadlock, a serialisation failure,
  a lock timeout or a lost connection is
  :class:`~watchfloor.store.dialect.TransientStoreError` (the transaction is gone and may be
  run again); anything else is a :class:`~watchfloor.store.base.StoreError` that says what
  failed.

The connection runs in autocommit mode, like the SQLite store's (``isolation_level=None``):
a read outside a transaction is its own statement and never leaves a transaction open; a
write is inside :meth:`transaction`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from functools import lru_cache
from typing import Any, ClassVar

import psycopg
from psycopg.pq import TransactionStatus

from watchfloor.store.base import StoreError
from watchfloor.store.dialect import IntegrityError, TransientStoreError

# A transaction the server aborted by itself: running it again is the documented remedy.
_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown (the server is restarting)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up)
    }
)

log = logging.getLogger(__name__)
_READ = re.compile(r"\s*(SELECT|SHOW)\b", re.IGNORECASE)  # statements that are safe to run again
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'      # a string literal
      | "(?:[^"]|"")*"      # a quoted name
      | ::                  # a PostgreSQL cast
      | :(?P<name>[A-Za-z_]\w*)
      | \?
      | %""",
    re.VERBOSE,
)


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite placeholders to psycopg's: ``?`` -> ``%s``, ``:name`` -> ``%(name)s``, ``%`` -> ``%%``."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group("name"):
            return f"%({match.group('name')})s"
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token  # literals, quoted names and casts stay as they are

    return _TOKENS.sub(swap, sql)


class PgRow(tuple):
    """A result row: ``row[0]`` and ``row["column"]``, like :class:`sqlite3.Row`."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                key = self._index[key]
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=2048)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)  # like sqlite3.Row: the first of equal names
    return type("PgRow", (PgRow,), {"__slots__": (), "_index": index})


def pg_row(cursor: Any) -> Any:
    """psycopg row factory making :class:`PgRow` rows."""
    description = cursor.description
    if description is None:
        return tuple
    return _row_class(tuple(column.name for column in description))


def store_error(exc: psycopg.Error, doing: str) -> StoreError:
    """The store's error for a psycopg one (see the module docstring)."""
    message = f"{doing}: {str(exc).strip() or type(exc).__name__}"
    if isinstance(exc, psycopg.IntegrityError):
        return IntegrityError(message)
    if exc.sqlstate in _TRANSIENT_SQLSTATES or isinstance(exc, psycopg.OperationalError):
        return TransientStoreError(message)
    return StoreError(message)


class PgConnection:
    """One psycopg connection, spoken to as the repository code speaks to SQLite.

    With ``reconnect``, a read outside a transaction that finds the connection lost (the
    server restarted, a proxy cut it) connects again and runs once more: reads are safe to
    repeat. Writes are never repeated here; the caller decides (see ``commit_batch``).
    """

    def __init__(
        self, raw: psycopg.Connection[Any], reconnect: Callable[[], psycopg.Connection[Any]] | None = None
    ) -> None:
        self.raw = raw
        self._reconnect = reconnect

    @property
    def usable(self) -> bool:
        return not self.raw.closed and not self.raw.broken

    def _run(self, sql: str, parameters: Any) -> psycopg.Cursor[Any]:
        if not parameters:  # psycopg reads placeholders (and %%) only when there are parameters
            return self.raw.execute(sql)  # type: ignore[arg-type]
        return self.raw.execute(translate(sql), parameters)  # type: ignore[arg-type]

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        idle = self.raw.info.transaction_status == TransactionStatus.IDLE
        try:
            return self._run(sql, parameters)
        except psycopg.OperationalError as exc:
            if not (idle and self._reconnect is not None and _READ.match(sql) and not self.usable):
                raise store_error(exc, "the PostgreSQL store") from exc
            log.warning("the PostgreSQL connection was lost (%s); connecting again", str(exc).strip())
            self.close()
            try:
                self.raw = self._reconnect()
                return self._run(sql, parameters)
            except psycopg.Error as again:
                raise store_error(again, "the PostgreSQL store") from again
        except psycopg.Error as exc:
            raise store_error(exc, "the PostgreSQL store") from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(translate(sql), parameters)
        except psycopg.Error as exc:
            raise store_error(exc, "the PostgreSQL store") from exc
        return cursor

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """BEGIN ... COMMIT, or ROLLBACK when the block raises; errors of BEGIN and COMMIT
        are the store's too (a COMMIT that fails is reported, never taken for done). A BEGIN
        that finds the connection lost has done nothing yet: it connects again (with
        ``reconnect``) and begins once more."""
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(self.raw.transaction())
                except psycopg.OperationalError as exc:
                    if self._reconnect is None or self.usable:
                        raise
                    log.warning("the PostgreSQL connection was lost (%s); connecting again", str(exc).strip())
                    self.close()
                    self.raw = self._reconnect()
                    stack.enter_context(self.raw.transaction())
                yield self
        except psycopg.Error as exc:
            raise store_error(exc, "a PostgreSQL transaction") from exc

    def close(self) -> None:
        with suppress(psycopg.Error):
            self.raw.close()
