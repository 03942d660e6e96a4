"""``watchfloor evidence``: export a case's evidence as a ZIP, and prove a ZIP untouched."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, err_console, fail, opened_store, settings_for

app = typer.Typer(help="Evidence: export a case as a ZIP, verify an export.", no_args_is_help=True)


@app.command("export")
def export(
    case: int = typer.Argument(..., help="The case's id."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write the ZIP [default: its own name, in the current folder]."
    ),
    home: Path | None = HomeOption,
) -> None:
    """Write the case's evidence ZIP (manifest of hashes, case.json, report.html, raw bytes)
    and record the export, with its fingerprint, in the case's timeline."""
    from watchfloor.cases.export import export_case  # imported when used: keeps every command quick to start
    from watchfloor.model import utcnow
    from watchfloor.triage.errors import FloorError

    exporter = f"cli:{getpass.getuser()}"
    with opened_store(settings_for(home)) as store:
        try:
            exported = export_case(store, case, exported_by=exporter, now=utcnow())
        except FloorError as exc:
            raise fail(exc.message) from None
    target = out if out is not None else Path(exported.filename)
    if target.is_dir():
        target = target / exported.filename
    target.write_bytes(exported.data)
    console.print(f"wrote {target} ({len(exported.data):,} bytes)", highlight=False)
    console.print(f"fingerprint (SHA-256 of manifest.json): [bold]{exported.manifest_sha256}[/]", highlight=False)


@app.command("verify")
def verify(
    zip_path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, metavar="ZIP"),
    home: Path | None = HomeOption,
) -> None:
    """Prove an export untouched: every file against the manifest, every evidence file against
    the SHA-256 taken when it was preserved, and (with a store) the fingerprint against the
    deployment's record of exports. Exits 1 if anything differs."""
    from watchfloor.cases.export import verify_export

    report = verify_export(zip_path)
    for problem in report.problems:
        err_console.print(f"[bold red]✗[/] {problem}", highlight=False)
    if not report.ok:
        raise fail(f"{zip_path} is NOT intact ({len(report.problems)} problem(s))")
    console.print(
        f"[green]✓[/] {zip_path}: {report.files} files match the manifest, {report.evidence} evidence "
        f"file(s) match their capture hashes (case {report.case_id}, exported {report.exported_at} "
        f"by {report.exported_by})",
        highlight=False,
    )
    console.print(f"fingerprint: {report.manifest_sha256}", highlight=False)
    settings = settings_for(home)
    db = settings.db_url.removeprefix("sqlite:///")
    if settings.db_url.startswith("sqlite:///") and not Path(db).exists():
        console.print("[yellow]no store here: the export's record was not checked (use --home)[/]")
        return
    with opened_store(settings) as store:
        records = store.find_exports(report.manifest_sha256 or "")
    if records:
        r = records[0]
        console.print(
            f"[green]✓[/] recorded by this deployment: case {r.case_id}, "
            f"{r.exported_at.isoformat()} by {r.exported_by}",
            highlight=False,
        )
    else:
        console.print("[yellow]this deployment has no record of this export (made elsewhere, or not by watchfloor)[/]")
