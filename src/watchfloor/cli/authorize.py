"""``watchfloor authorize``: request, approve, deny and list authorizations; and
``watchfloor unmask``: an authorised, audited, counted identity reveal."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, settings_for
from watchfloor.cli.governed import governed
from watchfloor.cli.watch import parse_expiry
from watchfloor.model import Authorization, AuthorizationKind, AuthorizationStatus, utcnow

app = typer.Typer(
    help="Authorizations for identity reveals and account-targeted watches (two people, recorded, expiring).",
    no_args_is_help=True,
)


class Kind(StrEnum):
    unmask = "unmask"
    account_watch = "account-watch"


def authorization_dict(a: Authorization) -> dict[str, object]:
    return {
        "id": a.id,
        "kind": a.kind.value,
        "status": a.status.value,
        "in_force": a.in_force(utcnow()),
        "requester": a.requester,
        "approver": a.approver,
        "purpose": a.purpose,
        "pseudonyms": list(a.pseudonyms),
        "case": a.case_id,
        "legal_basis": a.legal_basis,
        "legal_ref": a.legal_ref,
        "reason": a.reason,
        "requested_at": a.requested_at.isoformat(),
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "decision_note": a.decision_note,
        "expires_at": a.expires_at.isoformat(),
        "reveals": a.reveals,
        "max_reveals": a.max_reveals,
    }


@app.command("request")
def request(
    kind: Kind = typer.Option(..., "--kind", help="unmask (one pseudonym, one case) or account-watch."),
    by: str = typer.Option(..., "--by", help="Your account: the requester."),
    pseudonym: list[str] = typer.Option(..., "--pseudonym", help="The scope: p:… (repeatable for account-watch)."),
    purpose: str = typer.Option(..., "--purpose", help="A purpose of the policy."),
    case: str | None = typer.Option(None, "--case", help="The case number (required for unmask)."),
    legal_basis: str = typer.Option("", "--legal-basis", help="The legal basis."),
    legal_ref: str | None = typer.Option(None, "--legal-ref", help="A legal-process reference (order, request no.)."),
    reason: str = typer.Option("", "--reason", help="Why it is needed."),
    expires: str = typer.Option("7d", "--expires", help="Expiry: 7d, 12h or an ISO date (capped by the policy)."),
    home: Path | None = HomeOption,
) -> None:
    """Request an authorization; a supervisor other than you must approve it."""
    expires_at = parse_expiry(expires)
    with governed(settings_for(home)) as gov:
        auth = gov.authorizations.request(
            kind=AuthorizationKind.unmask if kind is Kind.unmask else AuthorizationKind.account_watch,
            by=by,
            purpose=purpose,
            pseudonyms=pseudonym,
            case_id=case,
            legal_basis=legal_basis,
            legal_ref=legal_ref,
            reason=reason,
            expires_at=expires_at,
        )
    console.print(
        f"authorization {auth.id} requested ({auth.kind.value}); expires {auth.expires_at:%Y-%m-%d %H:%M} UTC "
        "unless approved and used before",
        highlight=False,
    )


@app.command("approve")
def approve(
    authorization_id: int = typer.Argument(..., metavar="ID"),
    by: str = typer.Option(..., "--by", help="Your account: a supervisor who is not the requester."),
    note: str | None = typer.Option(None, "--note", help="A note for the record."),
    home: Path | None = HomeOption,
) -> None:
    """Approve a requested authorization."""
    with governed(settings_for(home)) as gov:
        auth = gov.authorizations.approve(authorization_id, by=by, note=note)
    console.print(
        f"authorization {auth.id} approved until {auth.expires_at:%Y-%m-%d %H:%M} UTC"
        + (f", {auth.max_reveals} reveal(s)" if auth.kind == AuthorizationKind.unmask else ""),
        highlight=False,
    )


@app.command("deny")
def deny(
    authorization_id: int = typer.Argument(..., metavar="ID"),
    by: str = typer.Option(..., "--by", help="Your account: a supervisor who is not the requester."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
    home: Path | None = HomeOption,
) -> None:
    """Deny a requested authorization."""
    with governed(settings_for(home)) as gov:
        gov.authorizations.deny(authorization_id, by=by, reason=reason)
    console.print(f"authorization {authorization_id} denied", highlight=False)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Every authorization, newest first."""
    with governed(settings_for(home)) as gov:
        items = gov.authorizations.list()
    if as_json:
        for a in items:
            typer.echo(json.dumps(authorization_dict(a), ensure_ascii=False))
        return
    table = Table("id", "kind", "status", "requester", "approver", "scope", "case", "expires (UTC)", "reveals")
    for a in items:
        expired = a.status == AuthorizationStatus.approved and not a.in_force(utcnow())
        reveals = f"{a.reveals}/{a.max_reveals}" if a.kind == AuthorizationKind.unmask else "-"
        table.add_row(
            str(a.id), a.kind.value, a.status.value + (" (expired)" if expired else ""), a.requester,
            a.approver or "-", ", ".join(a.pseudonyms), a.case_id or "-", f"{a.expires_at:%Y-%m-%d %H:%M}", reveals,
        )  # fmt: skip
    console.print(table)


def unmask(
    pseudonym: str = typer.Argument(..., help="The pseudonym, p:…"),
    authorization: int = typer.Option(..., "--authorization", help="An approved unmask authorization for it."),
    by: str = typer.Option(..., "--by", help="Your account: the authorization's requester."),
    case: str = typer.Option(..., "--case", help="The case the authorization is for."),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Reveal the account behind a pseudonym, under an approved authorization (audited, counted)."""
    with governed(settings_for(home)) as gov:
        reveal = gov.authorizations.reveal(pseudonym, authorization_id=authorization, by=by, case_id=case)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "pseudonym": reveal.pseudonym,
                    "platform": reveal.platform,
                    "account": reveal.account,
                    "epoch": reveal.epoch,
                    "authorization": authorization,
                    "reveal": reveal.authorization.reveals,
                    "of": reveal.authorization.max_reveals,
                }
            )
        )
        return
    console.print(f"{reveal.pseudonym} is {reveal.platform} account {reveal.account}", highlight=False)
    console.print(
        f"[dim]reveal {reveal.authorization.reveals} of {reveal.authorization.max_reveals} under authorization "
        f"{authorization}; recorded in the audit log[/]"
    )
