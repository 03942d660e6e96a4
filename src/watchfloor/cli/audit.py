"""``watchfloor audit``: read, prove and verify the tamper-evident audit log, and sign
checkpoints for an outside witness."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, err_console, fail, settings_for
from watchfloor.cli.governed import cli_actor, governed
from watchfloor.governance.audit import CheckpointError, entry_dict, log_origin, parse_checkpoint, verify_log
from watchfloor.governance.keys import KeyringError, parse_verifier_key, verifier_key_string
from watchfloor.governance.merkle import ProofError, leaf_hash

app = typer.Typer(help="The audit log: show, verify, checkpoint, prove.", no_args_is_help=True)

ByOption = typer.Option(None, "--by", help="Your account (for the audit log) [default: cli:<os user>].")


@app.command("show")
def show(
    limit: int = typer.Option(50, "--limit", help="The newest N entries."),
    action: list[str] = typer.Option([], "--action", help="Only these actions (repeatable), e.g. identity.revealed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    by: str | None = ByOption,
    home: Path | None = HomeOption,
) -> None:
    """Show the newest entries (reading the log is itself recorded)."""
    with governed(settings_for(home)) as gov:
        entries = gov.audit.entries_by_action(action)[-limit:] if action else gov.audit.tail(limit)
        gov.audit.record(actor=cli_actor(by), action="audit.read", target="audit", details={"entries": len(entries)})
    for e in entries:
        if as_json:
            typer.echo(json.dumps(entry_dict(e), ensure_ascii=False))
            continue
        where = " ".join(
            part
            for part in (
                e.target,
                f"purpose={e.purpose}" if e.purpose else "",
                f"case={e.case_id}" if e.case_id else "",
            )
            if part
        )
        details = " ".join(f"{k}={v}" for k, v in e.details.items())
        console.print(
            f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<16} {e.action:<26} {where} {details}", highlight=False
        )


@app.command("verify")
def verify(
    checkpoint: list[Path] = typer.Option(
        [], "--checkpoint", help="A checkpoint held by a witness (repeatable): the log must extend it."
    ),
    key: str | None = typer.Option(None, "--key", help="The witness's pinned verifier key (name+id+base64)."),
    as_json: bool = typer.Option(False, "--json"),
    by: str | None = ByOption,
    home: Path | None = HomeOption,
) -> None:
    """Verify the whole log; say what is wrong and where. Exit status 1 when anything is."""
    with governed(settings_for(home)) as gov:
        try:
            public = parse_verifier_key(key)[1] if key else gov.keyring.verify_key()
        except KeyringError as exc:
            raise fail(str(exc)) from None
        witnessed = []
        for path in checkpoint:
            try:
                witnessed.append(parse_checkpoint(path.read_text(encoding="utf-8"), public))
            except (OSError, CheckpointError) as exc:
                raise fail(f"{path}: {exc}") from None
        report = verify_log(gov.store, public, witnessed=witnessed)
        gov.audit.record(
            actor=cli_actor(by),
            action="audit.verified",
            target="audit",
            details={
                "size": report.size,
                "ok": report.ok,
                "problems": len(report.problems),
                "witnessed": len(witnessed),
            },
        )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "size": report.size,
                    "root": report.root.hex(),
                    "checkpoints_checked": report.checkpoints_checked,
                    "witnessed_checked": report.witnessed_checked,
                    "problems": [
                        {"kind": p.kind, "where": p.where(), "first": p.first, "last": p.last, "message": p.message}
                        for p in report.problems
                    ],
                }
            )
        )
    elif report.ok:
        console.print(
            f"OK: {report.size} entries, root {report.root.hex()}, {report.checkpoints_checked} stored and "
            f"{report.witnessed_checked} witnessed checkpoint(s) consistent",
            highlight=False,
        )
    else:
        err_console.print(f"[bold red]the audit log is NOT intact: {len(report.problems)} problem(s)[/]")
        for p in report.problems:
            err_console.print(f"  {p.kind:<10} {p.where():<16} {p.message}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint(
    out: Path = typer.Option(..., "--out", help="Where to write the signed checkpoint (hand it to your witness)."),
    by: str | None = ByOption,
    home: Path | None = HomeOption,
) -> None:
    """Sign the current tree head and write it as a c2sp.org/tlog-checkpoint signed note."""
    with governed(settings_for(home)) as gov:
        try:
            key = gov.keyring.signing_key()
        except KeyringError as exc:
            raise fail(str(exc)) from None
        gov.audit.record(actor=cli_actor(by), action="audit.checkpoint", target="audit", details={"out": out.name})
        signed = gov.audit.checkpoint(key)
        verifier = verifier_key_string(log_origin(key.public_key()), key.public_key())
    out.write_text(signed.note, encoding="utf-8")
    console.print(f"wrote {out}: tree size {signed.tree_size}, root {signed.root_hash.hex()}", highlight=False)
    console.print(f"verifier key (give it to the witness once): {verifier}", highlight=False)


@app.command("prove")
def prove(
    index: int | None = typer.Option(None, "--index", help="Inclusion proof of this entry."),
    old_size: int | None = typer.Option(None, "--from", help="Consistency proof from this tree size."),
    size: int | None = typer.Option(None, "--size", help="Against this tree size [default: now]."),
    home: Path | None = HomeOption,
) -> None:
    """Print an RFC 9162 inclusion or consistency proof as JSON (hex hashes)."""
    if (index is None) == (old_size is None):
        raise fail("give either --index N or --from SIZE")
    with governed(settings_for(home)) as gov:
        leaves = gov.audit.leaves()
        tree_size = len(leaves) if size is None else size
        try:
            if index is not None:
                entries = list(gov.store.audit_rows(index, index + 1))
                proof = gov.audit.inclusion_proof(index, tree_size)
                data: dict[str, object] = {
                    "leaf_index": index,
                    "tree_size": tree_size,
                    "leaf_hash": leaf_hash(entries[0].entry).hex() if entries else None,
                }
            else:
                assert old_size is not None
                proof = gov.audit.consistency_proof(old_size, tree_size)
                data = {"old_size": old_size, "tree_size": tree_size}
        except ProofError as exc:
            raise fail(str(exc)) from None
    typer.echo(json.dumps({**data, "proof": [p.hex() for p in proof]}))
