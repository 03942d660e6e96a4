"""Fixtures shared by the whole suite: a real SQLite store, a fresh PostgreSQL database, a store on
each backend, the shared fixtures folder, posts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchfloor.model import Post
from watchfloor.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()
IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    """Skip when run by hand without a needed part; under CI a missing part is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {why}")
    pytest.skip(why)


@pytest.fixture
def shared_fixtures() -> Path:
    require(SHARED_FIXTURES.is_dir(), f"the shared fixtures folder {SHARED_FIXTURES} is missing")
    return SHARED_FIXTURES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'watchfloor.db'}")
    yield s
    s.close()


# ----------------------------------------------------------------------------- PostgreSQL

PG_SERVER = os.environ.get("WATCHFLOOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server (``WATCHFLOOR_TEST_PG``, default
    postgres@127.0.0.1:5432), created for this test and dropped after it: the URL to it."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        require(False, f"no PostgreSQL server at {PG_SERVER} (set WATCHFLOOR_TEST_PG): {exc}")
        raise
    name = f"wf_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
        try:
            yield urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{name}"))
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once per backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watchfloor.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def any_store(any_store_url: str) -> Iterator[Store]:
    """A migrated store on each backend. A test module runs its store tests on both with
    ``@pytest.fixture def store(any_store): return any_store``."""
    s = open_store(any_store_url)
    yield s
    s.close()


# ----------------------------------------------------------------------------- NATS JetStream

NATS_SERVER = os.environ.get("WATCHFLOOR_TEST_NATS", "nats://127.0.0.1:4222")


def _nats_reachable(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url.split(",")[0])
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=2):
            return True
    except OSError:
        return False


async def delete_bus_prefix(url: str, prefix: str) -> list[str]:
    """Delete every stream (and KV bucket) of ``prefix`` on the server; returns their names."""
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        upper = prefix.upper().replace("-", "_")
        names = [i.config.name for i in await js.streams_info()]
        doomed = [n for n in names if n.startswith((f"{upper}_", f"KV_{upper}_"))]
        for name in doomed:
            await js.delete_stream(name)
        return doomed
    finally:
        await nc.close()


@pytest.fixture
def nats_url() -> str:
    """The shared NATS server with JetStream (``WATCHFLOOR_TEST_NATS``, default 127.0.0.1:4222)."""
    require(_nats_reachable(NATS_SERVER), f"no NATS server at {NATS_SERVER} (set WATCHFLOOR_TEST_NATS)")
    return NATS_SERVER


@pytest.fixture
def bus_prefix(nats_url: str) -> Iterator[str]:
    """A subject and stream prefix of this test's own on the shared server; its streams are
    deleted afterwards."""
    import asyncio
    import secrets

    prefix = f"wft{secrets.token_hex(5)}"
    yield prefix
    asyncio.run(delete_bus_prefix(nats_url, prefix))


def build_post(
    native_id: str = "at://x/app.bsky.feed.post/1",
    text: str = "The river is flooding near the old bridge",
    *,
    version: str = "v1",
    lang: str | None = "en",
    author: str = "p:00000000000000aa",
    created_at: datetime | None = None,
) -> Post:
    when = created_at or datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    return Post(
        platform="bluesky",
        native_id=native_id,
        version=version,
        created_at=when,
        received_at=when,
        text=text,
        author=author,
        lang=lang,
        langs=(lang,) if lang else (),
        raw=b'{"synthetic": true}',
    )


@pytest.fixture(name="make_post")
def make_post_fixture():
    """A factory of synthetic posts: ``make_post(native_id, text, version=..., lang=...)``."""
    return build_post


# ----------------------------------------------------------------------------- the watch floor


class FloorData:
    """Synthetic watches and alerts for the floor's tests (queue, cases, notifications),
    committed through ``store.commit_batch`` exactly as the pipeline commits them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._n = 0

    def watch(self, name: str | None = None, *, severity: str = "high", sla_minutes: int | None = None, **fields):
        from watchfloor.model import Severity, Watch, WatchStatus

        self._n += 1
        level = Severity(severity)
        return self.store.add_watch(
            Watch(
                name=name or f"synthetic watch {self._n}",
                query=str(fields.pop("query", "flood*")),
                purpose="Synthetic purpose for tests.",
                legal_basis="Synthetic legal basis for tests.",
                owner="duty-desk",
                severity=level,
                sla_minutes=sla_minutes if sla_minutes is not None else level.default_sla_minutes,
                **({"status": WatchStatus.approved, "approver": "synthetic-supervisor"} | fields),
            )
        )

    def alert(self, watch, text: str = "Flood water rising on Mill Lane", *, at: datetime | None = None,
              score: float = 0.5, raw: bytes | None = None, native_id: str | None = None, url: str | None = None):
        from datetime import timedelta

        from watchfloor.model import Alert, Explanation, TermHit, utcnow
        from watchfloor.store import IngestBatch

        self._n += 1
        when = at or utcnow()
        post = Post(
            platform="bluesky", native_id=native_id or f"at://did:plc:synthetic/app.bsky.feed.post/f{self._n:05d}",
            version="1", created_at=when - timedelta(seconds=20), received_at=when - timedelta(seconds=1),
            text=text, author=f"p:{self._n:016x}", lang="en", langs=("en",), url=url,
            raw=raw if raw is not None else f'{{"synthetic": {self._n}, "text": "{text}"}}'.encode(),
        )
        alert = Alert(
            watch_id=watch.id, post=post.key, score=score,
            explanation=Explanation(hits=(TermHit("flood*", "prefix", ()),), score_parts=(("match", score),)),
            created_at=when, due_at=when + timedelta(minutes=watch.sla_minutes),
        )
        result = self.store.commit_batch(IngestBatch(source="test", cursor=str(self._n), posts=[post], alerts=[alert]))
        return result.alerts_added[0]


@pytest.fixture
def floor(store: Store) -> FloorData:
    return FloorData(store)
