"""``watchfloor signals score`` as a subprocess: one JSON line per input line, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LINES = [
    "What a lovely, helpful crowd at the food bank this morning.",
    "",
    "Shut up you pathetic idiot, nobody wants you here.",
    "Le pont de la route de la rivière est fermé ce soir.",
]


def _run(args: list[str], tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHFLOOR_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "watchfloor", *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )


def test_score_prints_one_json_line_per_input_line(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    done = _run(["signals", "score", "--input", str(texts)], tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert set(records[0]) == {"line", "language", "language_confidence", "sentiment", "toxicity", "threat"}
    kind, empty, rude, french = records
    assert kind["language"] == "en" and kind["sentiment"] > 0.3 and kind["toxicity"] < 0.5
    assert empty["language"] is None and empty["toxicity"] is None
    assert rude["toxicity"] > 0.5 and rude["sentiment"] < 0
    assert french["language"] == "fr" and french["toxicity"] is None

    piped = _run(["signals", "score", "--input", "-", "--no-progress"], tmp_path, stdin="\n".join(LINES))
    assert piped.returncode == 0, piped.stderr
    assert [json.loads(x) for x in piped.stdout.splitlines()] == records


def test_model_reports_its_validation_figures(tmp_path: Path) -> None:
    done = _run(["signals", "model", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert {t["name"] for t in info["model"]["tasks"]} == {"toxicity", "threat"}
    assert abs(sum(p["weight"] for p in info["score"]) - 1.0) < 1e-9
