"""``watchfloor keys``: pseudonym epochs (show, rotate, destroy = crypto-shred) and the
audit log's verifier key."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, fail, settings_for
from watchfloor.cli.governed import governed
from watchfloor.governance.audit import log_origin
from watchfloor.governance.keys import KeyringError, verifier_key_string
from watchfloor.governance.permissions import Permission

app = typer.Typer(help="Keys: pseudonym epochs, crypto-shredding, the audit verifier key.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json"), home: Path | None = HomeOption) -> None:
    """Epochs (never the keys), sealed identities per epoch, and the audit verifier key."""
    with governed(settings_for(home)) as gov:
        try:
            epochs = gov.keyring.epochs()
            current = gov.keyring.current_epoch
            public = gov.keyring.verify_key()
        except KeyringError as exc:
            raise fail(str(exc)) from None
        sealed = gov.store.count_identities()
    verifier = verifier_key_string(log_origin(public), public)
    if as_json:
        rows = [
            {
                "epoch": e.epoch,
                "purpose_class": e.purpose_class,
                "current": e.epoch == current,
                "created_at": e.created_at.isoformat(),
                "rotated_at": e.rotated_at.isoformat() if e.rotated_at else None,
                "pseudonym_key_destroyed_at": e.pseudonym_key_destroyed_at.isoformat()
                if e.pseudonym_key_destroyed_at
                else None,
                "identity_key_destroyed_at": e.identity_key_destroyed_at.isoformat()
                if e.identity_key_destroyed_at
                else None,
                "sealed_identities": sealed.get(e.epoch, 0),
            }
            for e in epochs
        ]
        typer.echo(json.dumps({"epochs": rows, "audit_verifier_key": verifier}))
        return
    table = Table("epoch", "class", "created", "pseudonym key", "identity key", "sealed identities")
    for e in epochs:
        pseudonym_key = "in use" if e.epoch == current else ("destroyed" if e.pseudonym_key_destroyed_at else "kept")
        identity_key = "SHREDDED" if e.identity_key_destroyed_at else "kept"
        table.add_row(
            str(e.epoch), e.purpose_class, f"{e.created_at:%Y-%m-%d}", pseudonym_key, identity_key,
            str(sealed.get(e.epoch, 0)),
        )  # fmt: skip
    console.print(table)
    console.print(f"audit verifier key: {verifier}", highlight=False)


@app.command("rotate")
def rotate(
    by: str = typer.Option(..., "--by", help="Your account (an admin)."),
    purpose_class: str | None = typer.Option(None, "--purpose-class", help="Start the new epoch in another class."),
    home: Path | None = HomeOption,
) -> None:
    """Start a new pseudonym epoch: new posts get pseudonyms unlinkable to earlier ones.
    The previous epoch's pseudonym key is destroyed at once; its identity key is kept
    (authorised unmasks of older pseudonyms still work) until `keys destroy`."""
    with governed(settings_for(home)) as gov:
        gov.user(by, Permission.manage_policy, "rotating the pseudonym keys")
        previous = gov.keyring.current_epoch
        epoch = gov.keyring.rotate(purpose_class=purpose_class, now=gov.now())
        gov.audit.record(
            actor=by,
            action="keys.rotated",
            target="keyring",
            details={"previous_epoch": previous, "epoch": epoch, "purpose_class": gov.keyring.purpose_class},
        )
    console.print(
        f"epoch {epoch} started (epoch {previous}'s pseudonym key destroyed). A running `watchfloor run` "
        "switches within seconds.",
        highlight=False,
    )


@app.command("destroy")
def destroy(
    epoch: int = typer.Argument(..., help="The epoch to crypto-shred."),
    by: str = typer.Option(..., "--by", help="Your account (an admin)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
    home: Path | None = HomeOption,
) -> None:
    """Crypto-shred an epoch: destroy its keys and delete its sealed identities. No one can
    ever again learn which account was behind that epoch's pseudonyms."""
    if not yes:
        raise fail("this cannot be undone: add --yes")
    with governed(settings_for(home)) as gov:
        gov.user(by, Permission.manage_policy, "destroying an epoch")
        try:
            gov.keyring.destroy(epoch, now=gov.now())
        except KeyringError as exc:
            raise fail(str(exc)) from None
        deleted = gov.store.delete_identities_of_epoch(epoch)
        gov.audit.record(
            actor=by, action="keys.destroyed", target=f"epoch:{epoch}", details={"sealed_identities_deleted": deleted}
        )
    console.print(f"epoch {epoch} crypto-shredded: keys destroyed, {deleted} sealed identities deleted")
