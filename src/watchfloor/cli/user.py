"""``watchfloor user``: manage accounts from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.cli.governed import cli_actor, governed
from watchfloor.governance.passwords import hash_password, one_time_password
from watchfloor.model import Role, User

app = typer.Typer(help="Accounts: add users, reset passwords and second factors.", no_args_is_help=True)


@app.command("add")
def add(
    username: str,
    role: Role = typer.Option(Role.analyst, help="analyst, supervisor, auditor or admin."),
    home: Path | None = HomeOption,
) -> None:
    """Add an account and print its one-time password."""
    password = one_time_password()
    with opened_store(settings_for(home)) as store:
        store.add_user(User(username, role, hash_password(password), must_change_password=True))
    console.print(f"user {username!r} ({role.value}) one-time password: [bold]{password}[/]", highlight=False)


@app.command("reset-password")
def reset_password(username: str, home: Path | None = HomeOption) -> None:
    """Give an account a new one-time password (to be changed at next login); its sessions end."""
    password = one_time_password()
    with opened_store(settings_for(home)) as store:
        if store.get_user(username) is None:
            raise fail(f"no user named {username!r}")
        store.set_password(username, hash_password(password), must_change=True)
        store.delete_user_sessions(username)
    console.print(f"new one-time password for {username!r}: [bold]{password}[/]", highlight=False)


@app.command("totp-reset")
def totp_reset(
    username: str,
    by: str | None = typer.Option(None, "--by", help="Your account (for the audit log) [default: cli:<os user>]."),
    home: Path | None = HomeOption,
) -> None:
    """Remove an account's second factor (a lost authenticator) and end its sessions; the
    person signs in with their password and can set up a new one under Account."""
    with governed(settings_for(home)) as gov:
        if gov.store.get_user(username) is None:
            raise fail(f"no user named {username!r}")
        removed = gov.store.delete_totp(username)
        ended = gov.store.delete_user_sessions(username)
        gov.audit.record(
            actor=cli_actor(by),
            action="user.totp_reset",
            target=f"user:{username}",
            details={"removed": removed, "sessions_ended": ended},
        )
    what = "removed its second factor" if removed else "it had no second factor"
    console.print(f"{username!r}: {what}; {ended} session(s) ended", highlight=False)
