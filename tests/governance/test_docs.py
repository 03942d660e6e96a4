"""docs/accountability.md and docs/oversight.md stay true: every command they show exists
with every option they use, and every policy key they name is a key of the policy."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchfloor.cli import app
from watchfloor.governance.policy import load_policy

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMAND = re.compile(r"^(?:\$ )?(watchfloor [^#\n]+)", re.MULTILINE)


def shell_blocks(text: str) -> list[str]:
    blocks, current, language = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language = line[3:].strip() or "plain"
            else:
                if language == "sh":
                    blocks.append("\n".join(current))
                current, language = [], None
        elif language is not None:
            current.append(line)
    return blocks


def commands() -> list[tuple[str, str]]:
    found = []
    for name in ("accountability.md", "oversight.md"):
        for block in shell_blocks((DOCS / name).read_text(encoding="utf-8")):
            joined = block.replace("\\\n", " ")
            found += [(name, m.group(1).strip()) for m in COMMAND.finditer(joined)]
    return found


@pytest.mark.parametrize(("doc", "line"), commands())
def test_documented_commands_exist_with_their_options(doc: str, line: str) -> None:
    words = shlex.split(line.replace("|", " | ").split(" | ")[0].replace("...", "").replace("…", ""))[1:]
    path = [w for w in words if not w.startswith("-")][:2]
    result = CliRunner().invoke(
        app, [*path[:1], "--help"] if path[0] in ("init", "unmask", "run") else [*path, "--help"]
    )
    assert result.exit_code == 0, f"{doc}: `{line}`\n{result.output}"
    for option in re.findall(r"(--[a-z][a-z-]*)", line):
        assert option in result.output, f"{doc}: `{line}` uses {option}, which the command does not have"


def test_documented_policy_keys_exist() -> None:
    text = (DOCS / "accountability.md").read_text(encoding="utf-8")
    data = load_policy(None).data
    for table, key in re.findall(r"`\[(\w+)\] (\w+)`", text):
        assert key in data[table], f"[{table}] {key}"
    for key in set(re.findall(r"`(\w+_days|\w+_hours|run_every_minutes)`", text)) - {"max_watch_days", "max_days"}:
        assert key in data["retention"], key
