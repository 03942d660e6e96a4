"""Open the store a URL names: ``sqlite:///path/to/watchfloor.db`` or
``postgresql://user:password@host:5432/database`` (also ``postgres://``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from watchfloor.store.base import Store, StoreError

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url``."""
    if url.startswith("sqlite:///"):
        from watchfloor.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(POSTGRESQL_SCHEMES):
        from watchfloor.store.postgresql import PostgreSQLStore

        store = PostgreSQLStore(url)
    else:
        raise StoreError(
            f"unsupported store URL {redacted_url(url)!r}: expected sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        )
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


def redacted_url(url: str) -> str:
    """``url`` without its password, to print or log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://…"  # not even a URL: show its scheme only
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
