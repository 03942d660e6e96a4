"""``watchfloor network coordination`` on a CSV of (account, object, timestamp), as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

T0 = 1_790_000_000


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATCHFLOOR_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "watchfloor", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _csv(tmp_path: Path, header: bool = True) -> Path:
    rows = []
    for k in range(4):  # alice, bob and carol share four links within seconds of each other
        for j, account in enumerate(("alice", "bob", "carol")):
            at = T0 + 3600 * k + 5 * j
            stamp = str(at) if j != 1 else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
            rows.append(f"{account},https://news.example/{k},{stamp}")
    rows.append(f"dave,https://news.example/0,{T0 + 9999}")  # late: not coordinated
    path = tmp_path / "shares.csv"
    path.write_text(("account,url,timestamp\n" if header else "") + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_prints_components_with_pseudonyms_by_default(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    done = _run(
        ["network", "coordination", "--input", str(path), "--window", "60", "--min-repetition", "3", "--json"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["shares"] == 13 and result["accounts"] == 4
    [component] = result["components"]
    accounts = [a["account"] for a in component["accounts"]]
    assert len(accounts) == 3 and all(a.startswith("p:") for a in accounts)
    assert "alice" not in done.stdout
    assert {e["distinct_objects"] for e in component["edges"]} == {4}
    assert component["window_s"] == 60 and component["min_repetition"] == 3
    assert len(component["shares"]) == 12 and component["shares"][0]["post"].startswith("line ")


def test_keep_ids_text_output_and_gexf(tmp_path: Path) -> None:
    path = _csv(tmp_path, header=False)
    gexf = tmp_path / "out.gexf"
    done = _run(
        [
            "network",
            "coordination",
            "--input",
            str(path),
            "--window",
            "60",
            "--min-repetition",
            "4",
            "--keep-ids",
            "--gexf",
            str(gexf),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "component 1" in done.stdout and "alice, bob, carol" in done.stdout
    root = ET.fromstring(gexf.read_bytes())
    assert len(root.findall(".//{http://gexf.net/1.3}node")) == 3
    none = _run(["network", "coordination", "--input", str(path), "--window", "60", "--min-repetition", "5"], tmp_path)
    assert none.returncode == 0 and "no coordinated components" in none.stdout


def test_a_bad_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("account,object,timestamp\nalice,x,1790000000\nbob,y,yesterday\n", encoding="utf-8")
    done = _run(["network", "coordination", "--input", str(path), "--window", "60", "--min-repetition", "1"], tmp_path)
    assert done.returncode == 1
    assert "line 3" in done.stderr
