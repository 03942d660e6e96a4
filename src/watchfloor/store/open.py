"""Open the store a URL names: ``sqlite:///path/to/watchfloor.db`` (PostgreSQL comes later)."""

from __future__ import annotations

from pathlib import Path

from watchfloor.store.base import Store, StoreError


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url``."""
    if url.startswith("sqlite:///"):
        from watchfloor.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        raise StoreError("the PostgreSQL store is not built yet; use a sqlite:/// URL")
    else:
        raise StoreError(f"unsupported store URL {url!r}: expected sqlite:///PATH")
    if migrate:
        store.migrate()
    return store
