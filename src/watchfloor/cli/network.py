"""``watchfloor network``: coordinated sharing in a CSV export or in the stored posts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, err_console, fail, opened_store, settings_for
from watchfloor.cli.signals import parse_since
from watchfloor.model import utcnow

if TYPE_CHECKING:
    from watchfloor.network.coordination import CoordinationResult

app = typer.Typer(
    help="Coordinated behaviour: accounts (pseudonyms) that repeatedly share the same things within seconds.",
    no_args_is_help=True,
)

EVIDENCE_LINES = 5


def _print(result: CoordinationResult, evidence: int) -> None:
    console.print(
        f"{result.shares:,} shares of {result.objects:,} {result.kind} objects by {result.accounts:,} accounts; "
        f"window {result.window_s:g} s, at least {result.min_repetition} distinct co-shared objects per edge",
        highlight=False,
    )
    if result.crowded_objects:
        console.print(
            f"[yellow]{len(result.crowded_objects)} objects shared by too many accounts were set aside "
            f"(largest: {result.crowded_objects[0][1]} accounts)[/]"
        )
    if not result.components:
        console.print("no coordinated components")
        return
    table = Table(title="coordinated components")
    for column in ("#", "accounts", "edges", "objects", "communities", "first share (UTC)", "last share (UTC)"):
        table.add_column(column)
    for c in result.components:
        table.add_row(
            str(c.id),
            str(len(c.accounts)),
            str(len(c.edges)),
            str(len(c.objects)),
            str(len(c.communities)),
            f"{c.shares[0].time:%Y-%m-%d %H:%M:%S}",
            f"{c.shares[-1].time:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
    for c in result.components:
        console.print(f"[bold]component {c.id}[/]: {', '.join(c.accounts)}", highlight=False)
        for e in sorted(c.edges, key=lambda e: (-e.weight, e.a, e.b))[:evidence]:
            objects = ", ".join(sorted(e.objects)[:3]) + (" …" if e.weight > 3 else "")
            console.print(f"  {e.a} — {e.b}: {e.weight} objects, {e.pairs} pairs ({objects})", highlight=False)
        if len(c.edges) > evidence:
            console.print(f"  … {len(c.edges) - evidence} more edges (--json for all evidence)")


def _emit(result: CoordinationResult, as_json: bool, gexf: Path | None, evidence: int) -> None:
    if gexf is not None:
        from watchfloor.network.gexf import to_gexf

        gexf.write_bytes(to_gexf(result))
        err_console.print(f"wrote {gexf}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print(result, evidence)


@app.command("coordination")
def coordination(
    input: Path = typer.Option(..., "--input", "-i", help="CSV of (account, object, timestamp) rows."),
    window: float = typer.Option(60.0, "--window", help="Seconds within which two shares co-occur."),
    min_repetition: int = typer.Option(2, "--min-repetition", help="Distinct co-shared objects an edge needs."),
    max_accounts: int = typer.Option(500, "--max-accounts-per-object", help="Wider objects are set aside."),
    keep_ids: bool = typer.Option(False, "--keep-ids", help="Print the file's account ids instead of pseudonyms."),
    gexf: Path | None = typer.Option(None, "--gexf", help="Also write the components as a GEXF file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document with every component and its evidence."),
    evidence: int = typer.Option(EVIDENCE_LINES, "--evidence", help="Edges shown per component (text output)."),
) -> None:
    """Coordinated components in a CSV export, comparable with CooRnet and the coordination-network-toolkit.

    Accounts are replaced by pseudonyms made for this run unless they already are
    pseudonyms or --keep-ids is given.
    """
    from watchfloor.network.coordination import coordinated_components
    from watchfloor.network.shares import CsvError, read_shares_csv

    if not input.is_file():
        raise fail(f"no file {input}")
    try:
        shares = list(read_shares_csv(input, keep_ids=keep_ids))
        result = coordinated_components(
            shares, window_s=window, min_repetition=min_repetition, max_accounts_per_object=max_accounts
        )
    except (CsvError, ValueError) as exc:
        raise fail(str(exc)) from None
    _emit(result, as_json, gexf, evidence)


@app.command("recent")
def recent(
    kind: str = typer.Option("link", "--kind", help="What is co-shared: link, hashtag, quote or text."),
    since: str = typer.Option("24h", "--since", help="Stored posts created within this span: 6h, 24h, 7d."),
    window: float = typer.Option(60.0, "--window"),
    min_repetition: int = typer.Option(2, "--min-repetition"),
    max_accounts: int = typer.Option(500, "--max-accounts-per-object"),
    gexf: Path | None = typer.Option(None, "--gexf"),
    as_json: bool = typer.Option(False, "--json"),
    evidence: int = typer.Option(EVIDENCE_LINES, "--evidence"),
    home: Path | None = HomeOption,
) -> None:
    """Coordinated components among the stored (matched) posts' authors, as pseudonyms."""
    from watchfloor.network.recent import recent_coordination

    settings = settings_for(home)
    with opened_store(settings) as store:
        try:
            result = recent_coordination(
                store,
                kind=kind,
                since=utcnow() - parse_since(since),
                window_s=window,
                min_repetition=min_repetition,
                max_accounts_per_object=max_accounts,
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
    _emit(result, as_json, gexf, evidence)
