"""``watchfloor policy``: the policy in force, and checking a policy file before using it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, err_console, settings_for
from watchfloor.governance.keys import KEYS_DIR, Keyring, KeyringError
from watchfloor.governance.policy import OVERRIDE_FILE, Policy, PolicyError, check_policy_file, load_policy

app = typer.Typer(help="The policy: purposes, limits, retention, protected activity.", no_args_is_help=True)


def _print(policy: Policy) -> None:
    console.print(f"[bold]{policy.name}[/] version {policy.version}  digest {policy.digest[:16]}", highlight=False)
    console.print(f"read from: {', '.join(policy.sources)}", highlight=False)
    purposes = Table("purpose", "longest watch", "enabled", "what it is for", title="purposes")
    for p in policy.purposes.values():
        purposes.add_row(p.key, f"{p.max_watch_days} days", "yes" if p.enabled else "no", p.description)
    console.print(purposes)
    retention = Table("data class", "kept", title="retention")
    retention.add_row("posts that matched no watch", "never stored")
    for key, value in sorted(policy.data.get("retention", {}).items()):
        retention.add_row(key.replace("_", " "), str(value))
    retention.add_row("audit entries", "kept")
    console.print(retention)
    guard = Table("category", "action", "terms", title="protected activity")
    for c in policy.protected:
        guard.add_row(c.label, c.action.value, ", ".join(c.terms))
    console.print(guard)
    sla = ", ".join(f"{s.value} {m} min" for s, m in policy.sla_max_minutes.items())
    console.print(f"longest triage deadline: {sla}", highlight=False)
    console.print(
        f"unmask: at most {policy.unmask_max_days} days and {policy.unmask_max_reveals} reveals per authorization; "
        f"account watches: at most {policy.account_watch_max_days} days; pseudonym class {policy.purpose_class!r}",
        highlight=False,
    )


@app.command("show")
def show(
    as_json: bool = typer.Option(False, "--json", help="The merged policy as JSON."),
    home: Path | None = HomeOption,
) -> None:
    """Show the policy in force (the shipped default merged with WATCHFLOOR_HOME/policy.toml)."""
    settings = settings_for(home)
    try:
        policy = load_policy(settings.home)
    except PolicyError as exc:
        err_console.print(f"[bold red]error:[/] {settings.home / OVERRIDE_FILE} cannot be used:", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  - {problem}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(policy.to_dict(), indent=2, ensure_ascii=False))
        return
    _print(policy)
    keyring = Keyring(settings.home / KEYS_DIR)
    try:
        if keyring.exists() and keyring.purpose_class != policy.purpose_class:
            console.print(
                f"[yellow]the keyring's pseudonym class is {keyring.purpose_class!r} but the policy says "
                f"{policy.purpose_class!r}: `watchfloor keys rotate --purpose-class {policy.purpose_class}`[/]"
            )
    except KeyringError:
        pass


@app.command("check")
def check(file: Path = typer.Argument(..., help="A policy file (an override of the default, or complete).")) -> None:
    """Check a policy file: every problem is listed; exit status 1 when there is one."""
    try:
        policy = check_policy_file(file)
    except PolicyError as exc:
        err_console.print(f"[bold red]{file}: {len(exc.problems)} problem(s)[/]", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  - {problem}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"{file}: OK ({len(policy.purposes)} purposes, {len(policy.protected)} protected categories, "
        f"digest {policy.digest[:16]})",
        highlight=False,
    )
