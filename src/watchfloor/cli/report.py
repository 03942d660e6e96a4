"""``watchfloor report transparency``: the public transparency report, as HTML and JSON."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, fail, settings_for
from watchfloor.cli.governed import cli_actor, governed
from watchfloor.governance.transparency import build_report, write_report

app = typer.Typer(help="Reports for the public and for oversight (no personal data).", no_args_is_help=True)


def _day(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r}: use a date like 2026-01-31 (or an ISO date and time)") from None
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("transparency")
def transparency(
    since: str = typer.Option(..., "--from", help="First day (UTC) of the period, e.g. 2026-01-01."),
    until: str = typer.Option(..., "--to", help="Last day (UTC) of the period, included."),
    out: Path = typer.Option(..., "--out", help="Folder for transparency.html and transparency.json."),
    by: str | None = typer.Option(None, "--by", help="Your account (for the audit log)."),
    home: Path | None = HomeOption,
) -> None:
    """Write the transparency report for a period: counts and rules, no personal data."""
    start = _day(since, "--from")
    end = _day(until, "--to")
    if len(until) <= 10:
        end += timedelta(days=1)  # --to names the last day, included
    if end <= start:
        raise fail("--to must not be before --from")
    with governed(settings_for(home)) as gov:
        report = build_report(gov, start, end)
        written = write_report(report, out)
        gov.audit.record(
            actor=cli_actor(by),
            action="report.transparency",
            target="report",
            details={"from": start.isoformat(), "to": end.isoformat(), "files": [p.name for p in written]},
        )
    for path in written:
        console.print(f"wrote {path}", highlight=False)
