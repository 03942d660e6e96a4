"""``watchfloor retention run``: delete what the policy no longer allows to keep, now."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, err_console, settings_for
from watchfloor.cli.governed import cli_actor, governed
from watchfloor.governance.retention import run_retention

app = typer.Typer(help="Retention per data class, as the policy says (runs by itself in `watchfloor run`).")


@app.command("run")
def run(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    as_json: bool = typer.Option(False, "--json"),
    by: str | None = typer.Option(None, "--by", help="Your account (for the audit log)."),
    home: Path | None = HomeOption,
) -> None:
    """Run the retention job once (recorded in the audit log, with its counts)."""
    with governed(settings_for(home)) as gov:
        result = run_retention(gov, dry_run=dry_run, actor=cli_actor(by))
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "deleted": result.counts, "errors": result.errors}))
    else:
        verb = "would delete" if dry_run else "deleted"
        for name, count in result.counts.items():
            console.print(f"{verb} {count:>7,}  {name.replace('_', ' ')}", highlight=False)
        for name, error in result.errors.items():
            err_console.print(f"[bold red]failed[/] {name}: {error}", highlight=False)
    if result.errors:
        raise typer.Exit(1)
