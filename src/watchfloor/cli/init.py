"""``watchfloor init``: create the home folder, config, keys, store and first admin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.panel import Panel

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.config import DEFAULT_CONFIG, Settings
from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.passwords import hash_password, one_time_password
from watchfloor.governance.policy import PolicyError, load_policy
from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.governance.watches import DEMO_PURPOSE
from watchfloor.model import Role, Severity, User, Watch, WatchStatus
from watchfloor.store.open import redacted_url

DEMO_LEGAL_BASIS = "synthetic demo data (no real people)"
DEMO_WATCH_DAYS = 90
INIT_ACTOR = "system:init"
DEMO_APPROVAL_REASON = (
    "demo watch for the synthetic demo source, approved by `watchfloor init --demo-watches` "
    "(no second person: the demonstration purpose only, never real monitoring)"
)


def add_demo_watches(gov: Governance, owner: str) -> list[str]:
    """Add the demo source's watches that are not there yet, and approve them (and any
    pending or expired ones) as the system actor ``system:init``, for the synthetic
    ``demonstration`` purpose only — recorded and audited as such. Returns what changed."""
    from watchfloor.sources.demo import DEMO_WATCHES

    store = gov.store
    changed = []
    for name, query, severity in DEMO_WATCHES:
        existing = store.get_watch_by_name(name)
        if existing is None:
            sev = Severity(severity)
            existing = gov.watches.propose(
                Watch(
                    name=name,
                    query=query,
                    purpose=DEMO_PURPOSE,
                    legal_basis=DEMO_LEGAL_BASIS,
                    owner=owner,
                    severity=sev,
                    sla_minutes=sev.default_sla_minutes,
                    expires_at=gov.now() + timedelta(days=DEMO_WATCH_DAYS),
                ),
                by=INIT_ACTOR,
            ).watch
        elif existing.purpose != DEMO_PURPOSE or existing.status == WatchStatus.rejected or (
            existing.status == WatchStatus.approved and (existing.expires_at or gov.now()) > gov.now()
        ):
            continue  # not a demo watch, rejected, or approved and running
        assert existing.id is not None
        gov.watches.approve_as_system(existing.id, actor=INIT_ACTOR, reason=DEMO_APPROVAL_REASON)
        changed.append(name)
    return changed


def initialise(settings: Settings, *, admin: str, demo_watches: bool) -> tuple[list[str], str | None]:
    """Create whatever is missing; return (what was done, the admin's one-time password)."""
    done: list[str] = []
    settings.home.mkdir(parents=True, exist_ok=True)
    if not settings.config_path.exists():
        settings.config_path.write_text(DEFAULT_CONFIG, encoding="utf-8")
        done.append(f"wrote {settings.config_path}")
    try:
        policy = load_policy(settings.home)
    except PolicyError as exc:
        raise fail(f"the policy cannot be used: {exc}") from None
    keys_done = Keyring(settings.home / KEYS_DIR).initialise(policy.purpose_class)
    done.extend(keys_done)
    password: str | None = None
    with opened_store(settings, must_exist=False) as store:
        done.append(f"store {redacted_url(settings.db_url)} at schema version {store.migrate()}")
        gov = Governance.open(settings, store, policy=policy)
        if keys_done:
            gov.audit.record(
                actor=INIT_ACTOR, action="keys.created", target="keyring", details={"steps": len(keys_done)}
            )
        if store.count_users() == 0:
            password = one_time_password()
            store.add_user(
                User(username=admin, role=Role.admin, password_hash=hash_password(password), must_change_password=True)
            )
            gov.audit.record(actor=INIT_ACTOR, action="user.created", target=f"user:{admin}", details={"role": "admin"})
            done.append(f"created the admin account {admin!r}")
        if demo_watches:
            try:
                approved = add_demo_watches(gov, owner=admin)
            except GovernanceError as exc:
                raise fail(str(exc)) from None
            if approved:
                done.append(
                    f"added and approved {len(approved)} demo watches (by {INIT_ACTOR}, for the synthetic "
                    f"{DEMO_PURPOSE!r} purpose; audited): {', '.join(approved)}"
                )
    return done, password


def init(
    home: Path | None = HomeOption,
    admin: str = typer.Option("admin", help="Name of the first admin account."),
    demo_watches: bool = typer.Option(False, "--demo-watches", help="Add the watches the demo source hits."),
) -> None:
    """Create the store, keys, config and first admin in WATCHFLOOR_HOME (safe to run again)."""
    settings = settings_for(home)
    done, password = initialise(settings, admin=admin, demo_watches=demo_watches)
    for line in done:
        console.print(f"[green]✓[/] {line}", highlight=False)
    if password:
        console.print(
            Panel.fit(
                f"user: [bold]{admin}[/]\npassword: [bold]{password}[/]\n\n"
                "Shown once and not stored in clear. You will be asked to change it at first login.\n"
                "Lost it? `watchfloor user reset-password admin`.",
                title="first admin account",
                border_style="yellow",
            )
        )
    else:
        console.print(f"[dim]watchfloor home {settings.home} was already initialised.[/]")
