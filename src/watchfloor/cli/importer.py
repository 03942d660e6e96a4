"""``watchfloor import FILE --format x-v2|csv|jetstream``: research exports through the pipeline.

The file is read as a finite source and goes through the same normalise → match →
persist path as a live stream: only posts that match a watch are stored, posts are
keyed by (platform, id, version) so what is already stored is counted as a duplicate,
and the cursor is committed with the data, so an interrupted import resumes where it
stopped (``--from-start`` reads the file again from the top).
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.config import ConfigError
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.pseudonyms import deployment_pseudonymiser
from watchfloor.sources.base import Normaliser, Source
from watchfloor.sources.catalog import normaliser_for
from watchfloor.sources.files import (
    CSV_FIELDS,
    CSV_PRESETS,
    CsvMapping,
    CsvNormaliser,
    CsvSource,
    FromStart,
    TrackedReplaySource,
    XExportSource,
)
from watchfloor.store import IngestResult

MAP_HELP = f"CSV: FIELD=COLUMN (repeat). Fields: {', '.join(CSV_FIELDS)}."
PRESET_HELP = f"CSV: a known layout ({', '.join(CSV_PRESETS)})."


class Format(StrEnum):
    x_v2 = "x-v2"
    csv = "csv"
    jetstream = "jetstream"


def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The file to import."),
    format: Format = typer.Option(..., "--format", "-f", help="x-v2 (twarc2 JSONL), csv, or jetstream (JSONL)."),
    mapping: list[str] = typer.Option([], "--map", help=MAP_HELP),
    preset: str | None = typer.Option(None, "--preset", help=PRESET_HELP),
    platform: str | None = typer.Option(None, "--platform", help="CSV: the platform the rows come from [csv]."),
    from_start: bool = typer.Option(False, "--from-start", help="Read the whole file again, not from its cursor."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    home: Path | None = HomeOption,
) -> None:
    """Import a research export through the pipeline (matched posts are stored, with alerts)."""
    settings = settings_for(home)
    try:
        pseudonymise = deployment_pseudonymiser(settings.home)  # also seals matched authors' identities
    except (ConfigError, KeyringError) as exc:
        raise fail(str(exc)) from None
    source: Source
    normaliser: Normaliser
    if format is Format.csv:
        if preset is not None and preset not in CSV_PRESETS:
            raise fail(f"unknown preset {preset!r}; known: {', '.join(CSV_PRESETS)}")
        try:
            csv_mapping = CsvMapping.parse(mapping, preset=preset, platform=platform)
        except ValueError as exc:
            raise fail(str(exc)) from None
        source, normaliser = CsvSource(file), CsvNormaliser(pseudonymise, csv_mapping)
    elif mapping or preset or platform:
        raise fail("--map, --preset and --platform are for --format csv")
    elif format is Format.x_v2:
        source = XExportSource(file)
        normaliser = normaliser_for(source.platform, pseudonymise)
    else:
        source = TrackedReplaySource(file, name=f"import:jetstream:{file.resolve()}")
        normaliser = normaliser_for(source.platform, pseudonymise)
    if from_start:
        source = FromStart(source)
    total = file.stat().st_size
    added = {"posts": 0, "deleted": 0}

    from watchfloor.pipeline.runner import Pipeline  # heavy: only when importing

    with opened_store(settings) as store:
        if not store.list_watches():
            console.print("[yellow]no watches: nothing will match, so nothing will be stored (only counted).[/]")
        pipeline = Pipeline(
            source, normaliser, store, batch_size=settings.batch_size, batch_interval_s=settings.batch_interval_s
        )

        def committed(result: IngestResult) -> None:
            added["posts"] += result.posts_added
            added["deleted"] += result.posts_deleted

        pipeline.on_commit.append(committed)
        pipeline.before_commit.append(pseudonymise.seal_batch)
        progress = Progress(
            TextColumn("[bold]importing[/]"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[events]:,} events, {task.fields[matched]:,} matched"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        )

        async def run() -> None:
            with progress:
                task = progress.add_task("import", total=total, events=0, matched=0)
                runner = asyncio.create_task(pipeline.run())
                while not runner.done():
                    await asyncio.wait({runner}, timeout=0.2)
                    position = int(getattr(source, "position", 0))
                    progress.update(
                        task, completed=position, events=pipeline.stats.events, matched=pipeline.stats.matched_posts
                    )
                await runner

        try:
            asyncio.run(run())
        except (ValueError, OSError) as exc:
            raise fail(f"cannot import {file}: {exc}") from None
    stats = pipeline.stats
    summary = {
        "file": str(file),
        "format": format.value,
        "events": stats.events,
        "posts": stats.posts,
        "matched": stats.matched_posts,
        "imported": added["posts"],
        "duplicates": stats.matched_posts - added["posts"],
        "not_matched": stats.posts - stats.matched_posts,
        "deletions": stats.deletions,
        "posts_deleted": added["deleted"],
        "ignored": sum(stats.ignored.values()),
        "dead_letters": stats.dead_letters,
        "alerts": stats.alerts,
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"imported {summary['imported']:,} new posts from {file.name} "
        f"({summary['matched']:,} matched a watch, {summary['duplicates']:,} duplicates already stored, "
        f"{summary['not_matched']:,} not matched: counted, not stored)",
        highlight=False,
    )
    console.print(
        f"{summary['events']:,} events: {summary['posts']:,} posts, {summary['deletions']:,} deletions, "
        f"{summary['ignored']:,} ignored, {summary['dead_letters']:,} dead letters; {summary['alerts']:,} new alerts",
        highlight=False,
    )
    if summary["dead_letters"]:
        console.print("see them with `watchfloor status --dead-letters 20`", highlight=False)
