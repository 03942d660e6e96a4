"""What differs between the SQL databases a store runs on, kept in one small place.

The repository code (``sql_*.py``) is written once, in the SQL that SQLite and PostgreSQL
both understand: ``?`` and ``:name`` placeholders (the PostgreSQL connection adapter,
:mod:`watchfloor.store.pg_connection`, translates them), ``INSERT ... ON CONFLICT``,
``RETURNING``, ``CASE`` instead of summing booleans, table-qualified columns in upserts.
The few expressions that have no common spelling are attributes of a :class:`Dialect`;
every store names its dialect (``self.dialect``) and the SQL asks it.

The connection protocol below is the small surface the repository code uses; a
:class:`sqlite3.Connection` has it as is, :class:`~watchfloor.store.pg_connection.PgConnection`
offers it on psycopg. Rows are addressable by column name and by position on both.

Errors: a uniqueness, foreign-key or check violation is caught as :data:`INTEGRITY_ERRORS`
(SQLite's own, or :class:`IntegrityError`, which the PostgreSQL adapter raises); a
transaction the database rolled back on its own (deadlock, serialisation failure, lost
connection) is a :class:`TransientStoreError`, which the ingest path retries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from watchfloor.store.base import StoreError, StoreUnavailable

Row = Any  # a sqlite3.Row or a PgRow: row["column"] and row[0] both work


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Row: ...

    def fetchall(self) -> list[Row]: ...

    def __iter__(self) -> Iterator[Row]: ...


class Connection(Protocol):
    """The part of a DB-API connection the repository code uses."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


class IntegrityError(StoreError):
    """A constraint said no (unique, foreign key, check); raised by the PostgreSQL adapter."""


class TransientStoreError(StoreUnavailable):
    """The database undid the transaction on its own (deadlock, serialisation failure,
    lost connection): running it again may well succeed."""


INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, IntegrityError)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The expressions whose spelling differs. Each is SQL text with the same meaning."""

    name: str
    # appended to a SELECT inside a write transaction that reads a row it then rewrites
    # (SQLite's single writer already excludes everyone else)
    lock_rows: str
    # the audit entry's actor, the same expression as the index audit_log_by_actor
    audit_actor: str

    def seconds_between(self, later: str, earlier: str) -> str:
        """Seconds from ``earlier`` to ``later``, both stored ISO 8601 timestamps (text)."""
        if self.name == "sqlite":
            return f"((julianday({later}) - julianday({earlier})) * 86400)"
        # CAST(... AS TEXT) first: a parameter used here and compared with a text column
        # elsewhere in the statement must be inferred as text
        return (
            f"EXTRACT(EPOCH FROM (CAST(CAST({later} AS TEXT) AS timestamptz)"
            f" - CAST(CAST({earlier} AS TEXT) AS timestamptz)))"
        )

    def floor_int(self, expression: str) -> str:
        """The whole number at or below a non-negative ``expression`` (SQLite's CAST truncates;
        PostgreSQL's rounds)."""
        if self.name == "sqlite":
            return f"CAST({expression} AS INTEGER)"
        return f"CAST(FLOOR({expression}) AS BIGINT)"

    def json_texts(self, json_list: str, alias: str) -> str:
        """A FROM item with one row per string of the JSON list ``json_list``, column ``alias.value``."""
        if self.name == "sqlite":
            return f"json_each({json_list}) {alias}"
        return f"jsonb_array_elements_text(CAST({json_list} AS jsonb)) AS {alias}(value)"


SQLITE = Dialect(
    name="sqlite",
    lock_rows="",
    audit_actor="json_extract(CAST(entry AS TEXT), '$.actor')",
)
POSTGRESQL = Dialect(
    name="postgresql",
    lock_rows=" FOR UPDATE",
    audit_actor="watchfloor_audit_actor(entry)",  # an IMMUTABLE function (0006_web_accountability.sql)
)


def count_if(condition: str) -> str:
    """How many rows of the group meet ``condition`` (0 for none): SQLite sums booleans,
    PostgreSQL does not, both understand CASE."""
    return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"
