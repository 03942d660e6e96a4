"""``watchfloor watch``: propose, approve, reject, renew, list, show, disable and enable standing watches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, err_console, fail, opened_store, settings_for
from watchfloor.cli.governed import cli_actor, governed
from watchfloor.model import Severity, Watch, WatchStatus, utcnow
from watchfloor.query import QuerySyntaxError, parse
from watchfloor.query.tree import Node
from watchfloor.store import Store

app = typer.Typer(help="Standing watches: a query plus its purpose, legal basis and expiry.", no_args_is_help=True)


def watch_dict(w: Watch) -> dict[str, object]:
    return {
        "id": w.id,
        "name": w.name,
        "query": w.query,
        "purpose": w.purpose,
        "legal_basis": w.legal_basis,
        "owner": w.owner,
        "status": w.status.value,
        "created_by": w.created_by,
        "approver": w.approver,
        "approved_at": w.approved_at.isoformat() if w.approved_at else None,
        "held_for_review": w.hold.split(",") if w.hold else [],
        "reviewed_by": w.reviewed_by,
        "authorization": w.authorization_id,
        "severity": w.severity.value,
        "sla_minutes": w.sla_minutes,
        "expires_at": w.expires_at.isoformat() if w.expires_at else None,
        "sources": list(w.sources),
        "languages": list(w.languages),
        "enabled": w.enabled,
        "active": w.is_active(utcnow()),
        "state": w.state(utcnow()),
        "created_at": w.created_at.isoformat(),
    }


def find_watch(store: Store, ref: str) -> Watch:
    """A watch by id or by name."""
    watch = store.get_watch(int(ref)) if ref.isdigit() else store.get_watch_by_name(ref)
    if watch is None:
        raise fail(f"no watch {ref!r} (give its id or its name; `watchfloor watch list` shows them)")
    return watch


def parse_expiry(value: str) -> datetime:
    """``30d``, ``12h`` or an ISO date/time (UTC when no zone is given)."""
    units = {"d": "days", "h": "hours", "w": "weeks"}
    if value[-1:] in units and value[:-1].isdigit():
        return utcnow() + timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--expires {value!r}: use e.g. 30d, 12h, 2w or an ISO date like 2027-01-31") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A unique, descriptive name."),
    query: str = typer.Argument(..., help="The watch query, e.g. '\"bridge closed\" OR (flood* AND NOT drill)'."),
    purpose: str = typer.Option(..., help="A purpose of the policy (`watchfloor policy show` lists them)."),
    legal_basis: str = typer.Option(..., "--legal-basis", help="The legal basis for the monitoring."),
    owner: str = typer.Option(..., help="The person responsible for the watch."),
    created_by: str = typer.Option(..., "--created-by", help="Your account: who proposes the watch."),
    severity: Severity = typer.Option(Severity.medium, help="low, medium, high or urgent."),
    sla: int | None = typer.Option(None, "--sla", help="Minutes to triage an alert [default: by severity]."),
    expires: str = typer.Option("30d", help="Expiry: 30d, 12h, 2w or an ISO date (capped by the policy)."),
    lang: list[str] = typer.Option([], "--lang", help="Only posts in this language (repeatable)."),
    source: list[str] = typer.Option([], "--source", help="Only posts from this source (repeatable)."),
    authorization: int | None = typer.Option(
        None, "--authorization", help="For author:/mention: watches: the approved account-watch authorization."
    ),
    home: Path | None = HomeOption,
) -> None:
    """Propose a watch. It matches nothing until a supervisor other than you approves it
    (`watchfloor watch approve`). The query is checked first; an error shows where it is."""
    try:
        parse(query)
    except QuerySyntaxError as exc:
        err_console.print(f"[bold red]error:[/] the query is not valid\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    expires_at = parse_expiry(expires)
    if expires_at <= utcnow():
        raise fail("--expires is in the past")
    for field, value in (("--purpose", purpose), ("--legal-basis", legal_basis), ("--owner", owner)):
        if not value.strip():
            raise fail(f"{field} must not be empty")
    with governed(settings_for(home)) as gov:
        proposal = gov.watches.propose(
            Watch(
                name=name,
                query=query,
                purpose=purpose,
                legal_basis=legal_basis,
                owner=owner,
                severity=severity,
                sla_minutes=sla if sla is not None else severity.default_sla_minutes,
                expires_at=expires_at,
                languages=tuple(lang),
                sources=tuple(source),
                authorization_id=authorization,
            ),
            by=created_by,
        )
    watch = proposal.watch
    console.print(
        f"added watch {watch.id}: {watch.name!r}, pending approval by a supervisor other than {created_by!r}; "
        f"expires {watch.expires_at:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    if proposal.capped:
        console.print(f"[yellow]the expiry was capped at the policy's limit for the purpose {purpose!r}[/]")
    if proposal.held:
        console.print(
            f"[yellow]held for two-person review (protected activity: {proposal.verdict.describe()}): "
            "two supervisors, neither of them the creator, must approve it[/]",
            highlight=False,
        )


@app.command("approve")
def approve(
    ref: str = typer.Argument(..., help="Watch id or name."),
    by: str = typer.Option(..., "--by", help="Your account: a supervisor who did not propose the watch."),
    home: Path | None = HomeOption,
) -> None:
    """Approve a pending watch; from then on it matches, until its expiry."""
    with governed(settings_for(home)) as gov:
        watch = find_watch(gov.store, ref)
        assert watch.id is not None
        approved = gov.watches.approve(watch.id, by=by)
    if approved.status == WatchStatus.approved:
        console.print(
            f"approved watch {approved.id}: {approved.name!r}, active until {approved.expires_at:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )
    else:
        console.print(f"watch {approved.id}: first of two approvals recorded; a second supervisor must approve it")


@app.command("reject")
def reject(
    ref: str = typer.Argument(..., help="Watch id or name."),
    by: str = typer.Option(..., "--by", help="Your account: a supervisor."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    home: Path | None = HomeOption,
) -> None:
    """Reject a pending watch."""
    with governed(settings_for(home)) as gov:
        watch = find_watch(gov.store, ref)
        assert watch.id is not None
        gov.watches.reject(watch.id, by=by, reason=reason)
    console.print(f"rejected watch {watch.id}: {watch.name!r}", highlight=False)


@app.command("renew")
def renew(
    ref: str = typer.Argument(..., help="Watch id or name."),
    by: str = typer.Option(..., "--by", help="Your account: who asks for the new period."),
    expires: str = typer.Option("30d", help="New expiry: 30d, 12h, 2w or an ISO date (capped by the policy)."),
    home: Path | None = HomeOption,
) -> None:
    """Ask for a new period: the watch goes back to pending and needs a new approval."""
    expires_at = parse_expiry(expires)
    with governed(settings_for(home)) as gov:
        watch = find_watch(gov.store, ref)
        assert watch.id is not None
        renewed = gov.watches.renew(watch.id, by=by, expires_at=expires_at)
    console.print(
        f"watch {renewed.id}: {renewed.name!r} is pending approval for a period until "
        f"{renewed.expires_at:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    home: Path | None = HomeOption,
) -> None:
    """List every watch with its state."""
    with opened_store(settings_for(home)) as store:
        watches = store.list_watches()
    if as_json:
        for w in watches:
            typer.echo(json.dumps(watch_dict(w), ensure_ascii=False))
        return
    table = Table("id", "name", "query", "purpose", "severity", "SLA", "expires (UTC)", "state")
    now = utcnow()
    for w in watches:
        expiry = f"{w.expires_at:%Y-%m-%d %H:%M}" if w.expires_at else "-"
        state = w.state(now) + (" (held for review)" if w.hold and w.status == WatchStatus.pending else "")
        table.add_row(str(w.id), w.name, w.query, w.purpose, w.severity.value, f"{w.sla_minutes} min", expiry, state)
    console.print(table)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="Watch id or name."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Show one watch in full."""
    with opened_store(settings_for(home)) as store:
        data = watch_dict(find_watch(store, ref))
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    for key, value in data.items():
        console.print(f"[bold]{key:>15}[/]  {value}", highlight=False)


def _set_enabled(ref: str, enabled: bool, by: str | None, home: Path | None) -> None:
    with governed(settings_for(home)) as gov:
        watch = find_watch(gov.store, ref)
        assert watch.id is not None
        gov.watches.set_enabled(watch.id, enabled, by=cli_actor(by))
    verb = "enabled" if enabled else "disabled"
    console.print(f"{verb} watch {watch.id}: {watch.name!r} (takes effect in the running pipeline within a second)")


@app.command("disable")
def disable(
    ref: str = typer.Argument(..., help="Watch id or name."),
    by: str | None = typer.Option(None, "--by", help="Your account (for the audit log)."),
    home: Path | None = HomeOption,
) -> None:
    """Stop a watch from matching (its alerts stay)."""
    _set_enabled(ref, False, by, home)


@app.command("enable")
def enable(
    ref: str = typer.Argument(..., help="Watch id or name."),
    by: str | None = typer.Option(None, "--by", help="Your account (for the audit log)."),
    home: Path | None = HomeOption,
) -> None:
    """Let a disabled watch match again (while approved and until its expiry)."""
    _set_enabled(ref, True, by, home)


# --------------------------------------------------------------------------- trying queries


def _parsed_or_exit(query: str) -> Node:
    try:
        return parse(query)
    except QuerySyntaxError as exc:
        err_console.print(f"[bold red]error:[/] the query is not valid\n{exc}", highlight=False)
        raise typer.Exit(2) from None


def _highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    from rich.markup import escape

    out, at = [], 0
    for start, end in sorted(spans):
        if start < at:
            start = at
        if start >= end:
            continue
        out.append(escape(text[at:start]))
        out.append(f"[reverse]{escape(text[start:end])}[/reverse]")
        at = end
    out.append(escape(text[at:]))
    return "".join(out)


@app.command("test")
def test(
    query: str = typer.Argument(..., help="The watch query to try."),
    text: str = typer.Option(..., "--text", help="A sample post text."),
    lang: str | None = typer.Option(None, "--lang", help="The sample post's language, e.g. en."),
    platform: str = typer.Option("bluesky", "--platform", help="The sample post's platform."),
    link: list[str] = typer.Option([], "--link", help="A link in the sample post (repeatable)."),
    hashtag: list[str] = typer.Option([], "--hashtag", help="A hashtag of the sample post (repeatable)."),
    media: bool = typer.Option(False, "--media", help="The sample post has media."),
    as_json: bool = typer.Option(False, "--json", help="The result as one JSON object."),
) -> None:
    """Show whether QUERY matches a sample post, and where each part of it is found.

    Exits 0 when it matches, 1 when it does not, 2 when the query is not valid.
    """
    from watchfloor.model import MediaRef, Post
    from watchfloor.query import compile_query
    from watchfloor.query.lint import parts_found

    tree = _parsed_or_exit(query)
    now = utcnow()
    post = Post(
        platform=platform.lower(),
        native_id="sample",
        version="1",
        created_at=now,
        received_at=now,
        text=text,
        author="p:0000000000000000",
        lang=lang,
        links=tuple(link),
        hashtags=tuple(hashtag),
        media=(MediaRef("sample"),) if media else (),
    )
    explanation = compile_query(tree).explain(post)
    found = parts_found(tree, post)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "matches": explanation is not None,
                    "explanation": explanation.to_dict() if explanation else None,
                    "parts": [
                        {
                            "part": part.source,
                            "kind": part.kind,
                            "negated": part.negated,
                            "found": bool(where),
                            "spans": [list(s) for s in where] if isinstance(where, list) else [],
                            "text": [text[s:e] for s, e in where] if isinstance(where, list) else [],
                        }
                        for part, where in found
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        verdict = "[bold green]matches[/]" if explanation else "[bold red]does not match[/]"
        console.print(f"{verdict}: {query}", highlight=False)
        if explanation:
            spans = [span for hit in explanation.hits for span in hit.spans]
            console.print("  " + _highlighted(text, spans), highlight=False)
        table = Table("part", "kind", "wanted", "found in the sample")
        for part, where in found:
            if isinstance(where, bool):
                seen = "yes" if where else "no"
            else:
                seen = ", ".join(repr(text[s:e]) for s, e in where) if where else "no"
            table.add_row(part.source, part.kind, "absent" if part.negated else "present", seen)
        console.print(table)
    raise typer.Exit(0 if explanation else 1)


@app.command("lint")
def lint(
    query: str = typer.Argument(..., help="The watch query to explain."),
    as_json: bool = typer.Option(False, "--json", help="The parts and warnings as one JSON object."),
) -> None:
    """Explain each part of QUERY and warn about parts that match too much.

    Exits 0 without warnings, 1 with warnings, 2 when the query is not valid.
    """
    from watchfloor.query.lint import lint as lint_query

    report = lint_query(_parsed_or_exit(query), query)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "parts": [
                        {"part": p.source, "kind": p.kind, "meaning": p.meaning, "negated": p.negated}
                        for p in report.parts
                    ],
                    "warnings": [{"part": f.source, "message": f.message} for f in report.findings],
                    "account_targeted": report.account_targeted,
                },
                ensure_ascii=False,
            )
        )
    else:
        table = Table("part", "kind", "matches")
        for part in report.parts:
            meaning = ("[bold]must be absent:[/] " if part.negated else "") + part.meaning
            table.add_row(part.source, part.kind, meaning)
        console.print(table)
        for finding in report.findings:
            console.print(f"[yellow]warning:[/] {finding.source}: {finding.message}", highlight=False)
        if not report.findings:
            console.print("no warnings", highlight=False)
    raise typer.Exit(1 if report.findings else 0)
