"""Fixtures for the governance tests: a real store on each backend (a SQLite file, a PostgreSQL
database), a real keyring in a temporary WATCHFLOOR_HOME, the shipped policy, accounts of every
role, and a controlled clock (tests move time forward instead of sleeping)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.policy import load_policy
from watchfloor.governance.service import Governance
from watchfloor.model import Role, User
from watchfloor.store import Store

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# Governance never checks passwords; a fixed argon2id-shaped string keeps the tests fast.
NO_PASSWORD = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
ACCOUNTS = {
    "ana": Role.analyst,
    "alf": Role.analyst,
    "sam": Role.supervisor,
    "sue": Role.supervisor,
    "aud": Role.auditor,
    "adm": Role.admin,
}


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "var"
    h.mkdir()
    Keyring(h / KEYS_DIR).initialise("deployment", now=T0)
    return h


@pytest.fixture
def store(home: Path, any_store: Store) -> Store:
    return any_store


@pytest.fixture
def raw_db(store: Store) -> Iterator[object]:
    """A second connection to the store's database, opened as a tool (or an attacker) outside
    watchfloor would: autocommit, ``?`` placeholders, on either backend."""
    if store.url.startswith("sqlite:///"):
        conn: object = sqlite3.connect(store.url.removeprefix("sqlite:///"), isolation_level=None)
    else:
        import psycopg

        from watchfloor.store.pg_connection import PgConnection, pg_row

        conn = PgConnection(psycopg.connect(store.url, autocommit=True, row_factory=pg_row))
    yield conn
    conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def accounts(store: Store) -> dict[str, Role]:
    for name, role in ACCOUNTS.items():
        store.add_user(User(username=name, role=role, password_hash=NO_PASSWORD, created_at=T0))
    return ACCOUNTS


@pytest.fixture
def gov(home: Path, store: Store, clock: Clock, accounts: dict[str, Role]) -> Governance:
    return Governance(store, load_policy(home), Keyring(home / KEYS_DIR), clock)
