"""What every command needs: the settings, an open store, and clean error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from watchfloor.config import ConfigError, Settings, load_settings
from watchfloor.store import Store, StoreError, open_store
from watchfloor.store.open import redacted_url

console = Console()
err_console = Console(stderr=True)

HomeOption = typer.Option(
    None, "--home", envvar="WATCHFLOOR_HOME", help="Folder with the store, keys and config [default: ./var]."
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def settings_for(home: Path | None) -> Settings:
    try:
        return load_settings(home)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@contextmanager
def opened_store(settings: Settings, *, must_exist: bool = True) -> Iterator[Store]:
    """Open the store; refuse with a helpful message when ``init`` has not run."""
    db_path = settings.db_url.removeprefix("sqlite:///") if settings.db_url.startswith("sqlite:///") else None
    if must_exist and db_path is not None and not Path(db_path).exists():
        raise fail(f"no store at {db_path}: run `watchfloor init` first (or set WATCHFLOOR_HOME)")
    # a database server is there whether or not init ran: an empty database is not migrated here
    empty_is_fine = db_path is not None or not must_exist
    try:
        store = open_store(settings.db_url, migrate=empty_is_fine)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        if not empty_is_fine:
            if store.schema_version() == 0:
                where = redacted_url(settings.db_url)
                raise fail(f"the database {where} has no watchfloor schema: run `watchfloor init` first")
            store.migrate()
        yield store
    except StoreError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
