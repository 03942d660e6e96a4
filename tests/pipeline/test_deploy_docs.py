"""docs/deploy.md stays true: its bus settings table is BusSettings (names and defaults), every
metric it names is exported, and every flag it gives `watchfloor ingest|worker|web` exists."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import typer

from watchfloor.cli import app
from watchfloor.pipeline.bus import BusSettings
from watchfloor.pipeline.metrics import BusMetrics
from watchfloor.store import Store
from watchfloor.web.routes_ops import WebMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def test_the_settings_table_is_bus_settings() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    table = text[text.index("| `[bus]` setting |") :].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", table, re.MULTILINE)
    documented = {name: default.strip() for name, default in rows}
    defaults = BusSettings()
    assert set(documented) == {f.name for f in fields(BusSettings)}
    for name, text in documented.items():
        value = getattr(defaults, name)
        first = text.split()[0].strip("`")
        assert type(value)(first) == value, f"{name}: the docs say {text!r}, the code {value!r}"


def test_every_metric_named_is_exported(store: Store) -> None:
    exported = set()
    for registry in (BusMetrics().registry, WebMetrics(store).registry):
        for family in registry.collect():
            exported |= {family.name, f"{family.name}_total", *(s.name for s in family.samples)}
    named = set(re.findall(r"`(watchfloor_[a-z_]+)", DEPLOY.read_text(encoding="utf-8")))
    named = {n for n in named if not n.endswith("_")}  # "watchfloor_store_alerts, `_open_alerts`" style lists
    assert named, "no metric names found in docs/deploy.md"
    assert named <= exported, f"not exported: {sorted(named - exported)}"


def test_every_flag_shown_exists() -> None:
    command = typer.main.get_command(app)
    text = DEPLOY.read_text(encoding="utf-8")
    checked = 0
    for name in ("ingest", "worker", "web"):
        options = {opt for param in command.commands[name].params for opt in param.opts + param.secondary_opts}
        for line in re.findall(rf"watchfloor {name}\b([^\n`]*)", text):
            for flag in re.findall(r"(--[a-z-]+)", line):
                assert flag in options, f"`watchfloor {name} {flag}` in docs/deploy.md does not exist"
                checked += 1
    assert checked >= 8
