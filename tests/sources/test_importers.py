"""File importers: twarc2 (X API v2) exports from twarc-csv's test data — normal, streaming
with an error line, edits, withheld content, compliance, empty — a CSV written from them
with twarc-csv's column names, and the Jetstream corpus; through the real pipeline and
the real `watchfloor import` command (run in-process)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post, RawEvent, Watch, WatchStatus
from watchfloor.sources.files import CsvMapping, CsvNormaliser, CsvSource, FromStart, XExportSource
from watchfloor.sources.xapi import XNormaliser, split_export_line
from watchfloor.store import open_store

PSEUDONYMISE = HmacPseudonymiser(b"x" * 32)
CLI = [sys.executable, "-m", "watchfloor"]


async def read_all(source, cursor: str | None = None) -> list[RawEvent]:
    async with aclosing(source.events(cursor)) as events:
        return [event async for event in events]


@pytest.fixture
def x_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "x_api_v2"


def normalise_all(events: list[RawEvent]) -> Counter[str]:
    normaliser = XNormaliser(PSEUDONYMISE)
    kinds: Counter[str] = Counter()
    for event in events:
        try:
            item = normaliser.normalise(event)
        except MalformedEvent:
            kinds["malformed"] += 1
            continue
        kinds[type(item).__name__ if not isinstance(item, Ignored) else item.kind] += 1
    return kinds


async def test_every_export_splits_and_normalises(x_dir: Path) -> None:
    found: dict[str, Counter[str]] = {}
    for path in sorted(x_dir.iterdir()):
        found[path.name] = normalise_all(await read_all(XExportSource(path)))
    brexit = json.loads((x_dir / "brexit.jsonl").read_text())
    retweets = sum(1 for t in brexit["data"] if any(r["type"] == "retweeted" for r in t.get("referenced_tweets", [])))
    assert found["brexit.jsonl"] == Counter({"Post": 100 - retweets, "x:retweet": retweets})
    assert found["empty.json"] == Counter()
    assert found["streaming_output_with_error.jsonl"]["malformed"] == 1  # the cut-off last line
    assert found["tweets_compliance.jsonl"] == Counter({"Deletion": 2})
    withheld = found["withheld.jsonl"]
    assert withheld["Deletion"] >= 2 and withheld["x:error:user"] >= 3 and withheld["x:withheld-account"] >= 1
    assert all("malformed" not in c for name, c in found.items() if name != "streaming_output_with_error.jsonl")


async def test_an_edit_is_a_new_version_of_the_same_post(x_dir: Path) -> None:
    normaliser = XNormaliser(PSEUDONYMISE)
    before = [normaliser.normalise(e) for e in await read_all(XExportSource(x_dir / "edited_before.jsonl"))]
    after = [normaliser.normalise(e) for e in await read_all(XExportSource(x_dir / "edited_after.jsonl"))]
    (original,) = [p for p in before if isinstance(p, Post) and p.native_id == "1576994746135764992"]
    (edit,) = [p for p in after if isinstance(p, Post) and p.native_id == "1576994746135764992"]
    assert original.version == "1576994746135764992" and edit.version == "1576994789110992896"
    assert original.text != edit.text and edit.url == "https://twitter.com/i/web/status/1576994789110992896"
    assert edit.lang is None  # "qst": no linguistic content


async def test_users_are_pseudonymised_and_kept_out_of_the_raw_payload(x_dir: Path) -> None:
    line = (x_dir / "brexit.jsonl").read_bytes().splitlines()[0]
    users = {u["id"]: u["username"] for u in json.loads(line)["includes"]["users"]}
    normaliser = XNormaliser(PSEUDONYMISE)
    checked = 0
    for event in await read_all(XExportSource(x_dir / "brexit.jsonl")):
        post = normaliser.normalise(event)
        if not isinstance(post, Post):
            continue
        tweet = json.loads(event.payload)["data"]
        assert post.author == PSEUDONYMISE("x", tweet["author_id"])
        raw = post.raw.decode()
        assert f'"{users.get(tweet["author_id"], "?")}"' not in raw and '"username"' not in raw
        checked += 1
    assert checked > 10


async def test_resuming_inside_a_line_yields_the_rest_exactly(x_dir: Path) -> None:
    path = x_dir / "withheld.jsonl"
    everything = await read_all(XExportSource(path))
    for cut in (1, 7, 100, len(everything) - 1):
        rest = await read_all(XExportSource(path), everything[cut - 1].cursor)
        assert [e.payload for e in rest] == [e.payload for e in everything[cut:]]
    assert everything[-1].cursor == f"{path.stat().st_size}:0"
    again = await read_all(FromStart(XExportSource(path)), everything[-1].cursor)
    assert len(again) == len(everything)


def test_split_export_line_handles_odd_lines() -> None:
    assert split_export_line(b"{broken") == [b"{broken"]
    assert split_export_line(b'{"meta": {"result_count": 0}}') == [b'{"meta": {"result_count": 0}}']
    (single,) = split_export_line(b'[{"id": "1", "text": "a", "author_id": "2"}]')
    assert json.loads(single) == {"data": {"id": "1", "text": "a", "author_id": "2"}}


# ----------------------------------------------------------------------------- CSV

TWARC_CSV_COLUMNS = ["id", "conversation_id", "referenced_tweets.replied_to.id", "referenced_tweets.quoted.id",
                     "author_id", "author.username", "created_at", "text", "lang"]  # fmt: skip


def twarc_csv(x_dir: Path, out: Path) -> Path:
    """A CSV with twarc-csv's column names, written from the twarc2 export (derived test data)."""
    rows = []
    for tweet in json.loads((x_dir / "brexit.jsonl").read_text())["data"]:
        users = {}
        refs = {r["type"]: r["id"] for r in tweet.get("referenced_tweets", [])}
        if "retweeted" in refs:
            continue
        rows.append(
            {
                "id": tweet["id"],
                "conversation_id": tweet.get("conversation_id", ""),
                "referenced_tweets.replied_to.id": refs.get("replied_to", ""),
                "referenced_tweets.quoted.id": refs.get("quoted", ""),
                "author_id": tweet["author_id"],
                "author.username": users.get(tweet["author_id"], "someone"),
                "created_at": tweet["created_at"],
                "text": tweet["text"],
                "lang": tweet.get("lang", ""),
            }
        )
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, TWARC_CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        file.write('9999,x,,,"ragged row"\n')
        file.write('9998,9998,,,77,name,not a date,"text with\nnewline, ""quoted"" inside",en\n')
    return out


async def test_csv_rows_through_a_mapping(x_dir: Path, tmp_path: Path) -> None:
    path = twarc_csv(x_dir, tmp_path / "tweets.csv")
    events = await read_all(CsvSource(path))
    normaliser = CsvNormaliser(PSEUDONYMISE, CsvMapping.parse([], preset="twarc-csv"))
    x_posts = {
        p.key: p
        for p in (XNormaliser(PSEUDONYMISE).normalise(e) for e in await read_all(XExportSource(x_dir / "brexit.jsonl")))
        if isinstance(p, Post)
    }
    results = []
    for event in events:
        try:
            results.append(normaliser.normalise(event))
        except MalformedEvent as exc:
            results.append(exc)
    posts = [r for r in results if isinstance(r, Post)]
    errors = [r for r in results if isinstance(r, MalformedEvent)]
    assert len(posts) == len(x_posts) and {p.key for p in posts} == set(x_posts)  # the same keys as the JSONL
    for post in posts:
        assert post.author == x_posts[post.key].author and post.text == x_posts[post.key].text
        assert "author.username" not in post.raw.decode() and "author_id" not in post.raw.decode()
    assert len(errors) == 2 and "header" in errors[0].reason and "created_at" in errors[1].reason
    resumed = await read_all(CsvSource(path), events[10].cursor)
    assert [e.payload for e in resumed] == [e.payload for e in events[11:]]


def test_csv_mapping_is_checked() -> None:
    with pytest.raises(ValueError, match="required"):
        CsvMapping.parse(["text=body"])
    with pytest.raises(ValueError, match="unknown field"):
        CsvMapping.parse(["id=a", "text=b", "author=c", "colour=d"])
    mapping = CsvMapping.parse(["id=a", "text=b", "author=c", "deleted=gone"], platform="forum")
    row = json.dumps({"a": "1", "b": "t", "c": "u", "gone": "yes"}).encode()
    item = CsvNormaliser(PSEUDONYMISE, mapping).normalise(RawEvent("s", "csv", "1", row, datetime.now(UTC)))
    assert isinstance(item, Deletion) and item.platform == "forum"


# ----------------------------------------------------------------------------- the command


def wf(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real command line, in-process (typer's CliRunner), with its own WATCHFLOOR_HOME."""
    from typer.testing import CliRunner

    from watchfloor.cli import app

    env = {"WATCHFLOOR_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    proc = subprocess.CompletedProcess(["watchfloor", *args], result.exit_code, result.stdout, result.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"watchfloor {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "var"
    wf(h, "init")
    store = open_store(f"sqlite:///{h / 'watchfloor.db'}")
    try:  # an approved watch (approval by a second person is the governance CLI's business)
        store.add_watch(
            Watch(name="brexit", query="brexit OR labour OR corbyn", purpose="research", legal_basis="public interest",
                  owner="tester", created_by="tester", approver="supervisor", status=WatchStatus.approved,
                  expires_at=datetime.now(UTC) + timedelta(days=7))
        )  # fmt: skip
    finally:
        store.close()
    return h


def test_import_command_counts_imports_duplicates_and_dead_letters(home: Path, x_dir: Path, tmp_path: Path) -> None:
    brexit = x_dir / "brexit.jsonl"
    first = json.loads(wf(home, "import", str(brexit), "--format", "x-v2", "--json").stdout)
    assert first["events"] == 100 and first["imported"] > 0 and first["duplicates"] == 0
    assert first["imported"] == first["matched"] and first["alerts"] == first["matched"]
    resumed = json.loads(wf(home, "import", str(brexit), "--format", "x-v2", "--json").stdout)
    assert resumed["events"] == 0  # the cursor is at the end: nothing is read again
    again = json.loads(wf(home, "import", str(brexit), "--format", "x-v2", "--from-start", "--json").stdout)
    assert again["imported"] == 0 and again["duplicates"] == first["matched"] and again["alerts"] == 0
    csv_file = twarc_csv(x_dir, tmp_path / "tweets.csv")
    via_csv = json.loads(wf(home, "import", str(csv_file), "--format", "csv", "--preset", "twarc-csv", "--json").stdout)
    assert via_csv["imported"] == 0 and via_csv["duplicates"] == first["matched"] and via_csv["dead_letters"] == 2
    text = wf(home, "import", str(x_dir / "streaming_output_with_error.jsonl"), "--format", "x-v2").stdout
    assert "1 dead letters" in text and "imported" in text
    status = json.loads(wf(home, "status", "--json", "--dead-letters", "5").stdout)
    assert status["counts"]["dead_letters"] == 3


def test_import_command_jetstream_and_refusals(home: Path, shared_fixtures: Path) -> None:
    corpus = shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl"
    result = json.loads(wf(home, "import", str(corpus), "--format", "jetstream", "--json").stdout)
    assert result["events"] == 152 and result["dead_letters"] == 0
    refused = wf(home, "import", str(corpus), "--format", "csv", check=False)
    assert refused.returncode == 1 and "map the required field" in refused.stderr
    refused = wf(home, "import", str(corpus), "--format", "x-v2", "--map", "id=x", check=False)
    assert refused.returncode == 1 and "--format csv" in refused.stderr
