"""``watchfloor demo``: write the demo source's events to a file (for replays and benchmarks)."""

from __future__ import annotations

from pathlib import Path

import typer

from watchfloor.cli.context import console, fail

app = typer.Typer(help="The built-in demo source.", no_args_is_help=True)


@app.command("record")
def record(
    out: Path = typer.Argument(..., help="JSONL file to write (Jetstream v1 format)."),
    count: int = typer.Option(10_000, "--count", "-n", help="Number of events."),
    seed: int = typer.Option(7, help="Seed: the same seed writes the same events."),
    hit_share: float = typer.Option(0.1, "--hit-share", help="Share of posts that hit the demo watches."),
) -> None:
    """Write COUNT demo events to OUT; `watchfloor run --replay OUT` plays them back."""
    from watchfloor.sources.demo import write_demo_file

    if count <= 0:
        raise fail("--count must be positive")
    if not 0.0 <= hit_share <= 1.0:
        raise fail("--hit-share must be between 0 and 1")
    write_demo_file(out, count, seed=seed, hit_share=hit_share)
    console.print(f"wrote {count} demo events to {out}")
