"""``watchfloor signals``: score texts offline, list spikes and near-duplicate groups, show the model."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, err_console, fail, opened_store, settings_for
from watchfloor.model import utcnow

app = typer.Typer(
    help="Signals: language, sentiment, toxicity and threat of texts; bursts; near-duplicates.",
    no_args_is_help=True,
)

BATCH = 256
_SINCE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` or ``2w`` as a time span."""
    found = _SINCE.fullmatch(value.strip())
    if found is None:
        raise fail(f"--since {value!r}: use e.g. 30m, 24h, 7d or 2w")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


@app.command("score")
def score(
    input: str = typer.Option(..., "--input", "-i", help="A text file, one text per line ('-' for stdin)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Print one JSON line per input line: language, sentiment, toxicity and threat.

    Runs offline on the models shipped in the package. Lines are texts with newlines
    written as spaces; an empty line gives nulls. Scores describe texts, never people.
    """
    from watchfloor.signals.stage import SignalStage

    if input == "-":
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(input)
        if not path.is_file():
            raise fail(f"no file {input}")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    stage = SignalStage()
    bar = Progress(
        TextColumn("[bold]scoring[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not progress or not err_console.is_terminal,
    )
    out = sys.stdout
    with bar:
        task = bar.add_task("score", total=len(lines))
        for start in range(0, len(lines), BATCH):
            chunk = lines[start : start + BATCH]
            for number, text in enumerate(chunk, start=start + 1):
                record = {"line": number, **stage.text_signals(text).to_dict()}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            bar.advance(task, len(chunk))


@app.command("model")
def model(as_json: bool = typer.Option(False, "--json")) -> None:
    """The shipped toxicity/threat model: what it was trained on and its validation figures."""
    from watchfloor.pipeline.scoring import SCORE_FORMULA
    from watchfloor.signals.toxicity import load_classifier

    meta = load_classifier().meta
    if as_json:
        formula = [{"name": p.name, "weight": p.weight, "what": p.what} for p in SCORE_FORMULA]
        typer.echo(json.dumps({"model": meta, "score": formula}, indent=2))
        return
    table = Table(title="toxicity / threat classifier (validation split, threshold 0.5)")
    for column in ("signal", "TweetEval task", "precision", "recall", "F1", "macro-F1", "train 5-fold F1"):
        table.add_column(column)
    for task in meta["tasks"]:
        v = task["validation"]
        table.add_row(
            task["name"],
            task["tweeteval_task"],
            f"{v['precision']:.3f}",
            f"{v['recall']:.3f}",
            f"{v['f1']:.3f}",
            f"{v['macro_f1']:.3f}",
            f"{task['train_cv5']['f1']:.3f}",
        )
    console.print(table)
    console.print("score = " + " + ".join(f"{p.weight:.2f}·{p.name}" for p in SCORE_FORMULA))


@app.command("spikes")
def spikes(
    since: str = typer.Option("24h", "--since", help="Windows that started within this span: 30m, 24h, 7d."),
    watch: str | None = typer.Option(None, "--watch", help="Only this watch (id or name)."),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines: one spike per line."),
    home: Path | None = HomeOption,
) -> None:
    """Bursts: windows in which a watch or one of its terms matched far above its baseline."""
    settings = settings_for(home)
    with opened_store(settings) as store:
        watch_id = None
        if watch is not None:
            found = store.get_watch(int(watch)) if watch.isdigit() else store.get_watch_by_name(watch)
            if found is None:
                raise fail(f"no watch {watch!r}")
            watch_id = found.id
        names = {w.id: w.name for w in store.list_watches()}
        found_spikes = store.list_spikes(since=utcnow() - parse_since(since), watch_id=watch_id, limit=limit)
    if as_json:
        for s in found_spikes:
            typer.echo(
                json.dumps(
                    {
                        "watch_id": s.watch_id,
                        "watch": names.get(s.watch_id),
                        "term": s.term or None,
                        "window_start": s.window_start.isoformat(),
                        "window_end": s.window_end.isoformat(),
                        "count": s.count,
                        "baseline": s.baseline,
                        "threshold": s.threshold,
                        "excess": s.excess,
                    },
                    ensure_ascii=False,
                )
            )
        return
    if not found_spikes:
        console.print("no spikes in that span")
        return
    table = Table(title=f"spikes since {since} ago")
    for column in ("window (UTC)", "watch", "term", "alerts", "baseline", "threshold", "excess"):
        table.add_column(column)
    for s in found_spikes:
        table.add_row(
            f"{s.window_start:%Y-%m-%d %H:%M}–{s.window_end:%H:%M}",
            names.get(s.watch_id, str(s.watch_id)),
            s.term or "(whole watch)",
            str(s.count),
            f"{s.baseline:.1f}",
            f"{s.threshold:.1f}",
            f"+{s.excess:.1f}",
        )
    console.print(table)


@app.command("groups")
def groups(
    since: str = typer.Option("7d", "--since", help="Groups with a post within this span: 24h, 7d."),
    min_count: int = typer.Option(2, "--min-count", help="Only groups of at least this many posts."),
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
    home: Path | None = HomeOption,
) -> None:
    """Near-duplicate groups of stored posts: one story copied many times is one group."""
    settings = settings_for(home)
    with opened_store(settings) as store:
        found = store.list_near_duplicate_groups(since=utcnow() - parse_since(since), min_count=min_count, limit=limit)
    if not found and not as_json:
        console.print("no near-duplicate groups in that span")
    for g in found:
        record = {
            "group": g.group_id,
            "posts": g.count,
            "first_seen_at": g.first_seen_at.isoformat(),
            "last_seen_at": g.last_seen_at.isoformat(),
            "first_post": {
                "platform": g.first_post.platform,
                "native_id": g.first_post.native_id,
                "version": g.first_post.version,
            },
        }
        if as_json:
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            console.print(
                f"{g.group_id}  {g.count:>5} posts  first {g.first_seen_at:%Y-%m-%d %H:%M} "
                f"({g.first_post.platform} {g.first_post.native_id})",
                highlight=False,
            )
