"""The pipeline end to end on real parts: replay file -> Jetstream normaliser -> watch set -> SQLite."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent, Severity, Watch, WatchStatus
from watchfloor.pipeline.match_process import MatchProcess
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.runner import Pipeline, PipelineStats
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import DemoSource, write_demo_file
from watchfloor.sources.replay import ReplaySource

SECRET = b"k" * 32


def add_watch(store, name: str, query: str, **kw) -> Watch:
    return store.add_watch(
        Watch(
            name=name,
            query=query,
            purpose="test",
            legal_basis="test",
            owner="tester",
            severity=kw.pop("severity", Severity.medium),
            expires_at=kw.pop("expires_at", datetime.now(UTC) + timedelta(days=1)),
            status=WatchStatus.approved,  # approval itself is tested in tests/governance
            **kw,
        )
    )


def pipeline_for(source, store, **kw) -> Pipeline:
    return Pipeline(source, JetstreamNormaliser(HmacPseudonymiser(SECRET)), store, batch_interval_s=0.05, **kw)


def corpus_expectations(path: Path) -> dict[str, object]:
    """What the recording says, read straight from its JSON (independent of the normaliser)."""
    kinds: Counter[str] = Counter()
    posts, deletes = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["kind"] != "commit":
            kinds[event["kind"]] += 1
            continue
        c = event["commit"]
        if c["collection"] == "app.bsky.feed.post" and c["operation"] in ("create", "update"):
            posts.append((f"at://{event['did']}/app.bsky.feed.post/{c['rkey']}", c["cid"], c["record"]["text"]))
        elif c["collection"] == "app.bsky.feed.post" and c["operation"] == "delete":
            deletes.append(f"at://{event['did']}/app.bsky.feed.post/{c['rkey']}")
        else:
            kinds["commit"] += 1
    return {"kinds": kinds, "posts": posts, "deletes": deletes}


async def test_corpus_replay_is_handled_as_the_recording_says(store, shared_fixtures) -> None:
    corpus = shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl"
    expected = corpus_expectations(corpus)
    watch = add_watch(store, "bands and boredom", "band OR boring")
    pipeline = pipeline_for(ReplaySource(corpus), store)
    stats = await pipeline.run()

    lines = corpus.read_text(encoding="utf-8").splitlines()
    assert stats.events == len(lines) == 152
    assert stats.dead_letters == 0
    assert stats.posts == len(expected["posts"])
    assert stats.deletions == len(expected["deletes"])
    ignored = Counter()
    for kind, n in stats.ignored.items():
        ignored["commit" if kind.startswith("commit") else kind] += n
    assert ignored == expected["kinds"]  # likes, reposts, follows, blocks, statuses, identity, account

    # only matched posts are stored, each with its alert and explanation
    oracle = re.compile(r"(?<!\w)(band|boring)(?!\w)", re.IGNORECASE)
    should_match = {(nid, cid) for nid, cid, text in expected["posts"] if oracle.search(text)}
    assert should_match, "the oracle must find something in the corpus"
    stored = {(v.post.native_id, v.post.version) for v in store.list_alerts(limit=1000)}
    assert stored == should_match
    assert store.counts().posts == len(should_match)
    for view in store.list_alerts(limit=1000):
        assert view.alert.watch_id == watch.id
        for hit in view.alert.explanation.hits:
            for start, end in hit.spans:
                assert view.post.text[start:end].casefold() in {"band", "boring"}
        assert "did:plc" not in view.post.author
    # the cursor is the end of the file: a restart reads nothing again
    assert store.get_cursor(pipeline.source.name) == str(corpus.stat().st_size)
    again = await pipeline_for(ReplaySource(corpus), store).run()
    assert again.events == 0


async def test_replay_is_idempotent_even_without_the_cursor(store, tmp_path) -> None:
    path = tmp_path / "demo.jsonl"
    write_demo_file(path, 3000, seed=3, hit_share=0.3)
    from watchfloor.sources.demo import DEMO_WATCHES

    for name, query, severity in DEMO_WATCHES:
        add_watch(store, name, query, severity=Severity(severity))
    await pipeline_for(ReplaySource(path, name="first"), store).run()
    counts = store.counts()
    assert counts.alerts > 0
    # the same file under another source name starts from scratch: nothing is stored twice
    rerun = pipeline_for(ReplaySource(path, name="second"), store)
    committed = []
    rerun.on_commit.append(committed.append)
    await rerun.run()
    assert sum(len(r.alerts_added) for r in committed) == 0
    assert sum(r.posts_added for r in committed) == 0
    assert store.counts() == counts


async def test_malformed_events_go_to_dead_letters_and_the_stream_goes_on(store, tmp_path, shared_fixtures) -> None:
    good = (shared_fixtures / "bluesky" / "jetstream_v1_golden.jsonl").read_text(encoding="utf-8").splitlines()
    post = {
        "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "time_us": 1783175888085434,
        "kind": "commit",
        "commit": {
            "rev": "r1",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3zzz",
            "cid": "c1",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "Bridge closed after the flood",
                "langs": ["en"],
                "createdAt": "2026-07-04T14:38:06.240Z",
            },
        },
    }
    bad = [
        "{not json",
        '{"kind": "commit"}',
        '"a string"',
        "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([*good[:3], *bad, json.dumps(post), *good[3:]]) + "\n", encoding="utf-8")
    add_watch(store, "bridge", '"bridge closed"')
    stats = await pipeline_for(ReplaySource(path), store).run()
    assert stats.dead_letters == len(bad)
    letters = store.list_dead_letters()
    assert len(letters) == len(bad)
    assert all(letter.reason for letter in letters)
    assert {v.post.native_id for v in store.list_alerts()} == {
        "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3zzz"
    }


async def test_a_delete_removes_the_stored_post(store, tmp_path) -> None:
    did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"

    def event(op: str, t: int, **commit) -> str:
        return json.dumps(
            {
                "did": did,
                "time_us": t,
                "kind": "commit",
                "commit": {
                    "rev": f"r{t}",
                    "operation": op,
                    "collection": "app.bsky.feed.post",
                    "rkey": "3abc",
                    **commit,
                },
            }
        )

    record = {
        "$type": "app.bsky.feed.post",
        "text": "Evacuation ordered for the valley",
        "createdAt": "2026-07-04T14:38:06.240Z",
        "langs": ["en"],
    }
    path = tmp_path / "del.jsonl"
    path.write_text(event("create", 1, cid="c1", record=record) + "\n", encoding="utf-8")
    add_watch(store, "evac", "evacuat*")
    await pipeline_for(ReplaySource(path, name="r"), store).run()
    assert store.counts().posts == 1
    with path.open("a", encoding="utf-8") as fh:
        fh.write(event("delete", 2) + "\n")
    await pipeline_for(ReplaySource(path, name="r"), store).run()
    assert store.counts().posts == 0
    (view,) = store.list_alerts()
    assert view.post is None


async def test_an_edit_sent_after_the_delete_raises_nothing_however_the_events_are_batched(tmp_path) -> None:
    """create, delete, then an edit of the deleted post: only the create's alert, and no post,
    whether the three events are one batch or three (the batching must not change the outcome)."""
    from watchfloor.store import open_store

    did = "did:plc:cccccccccccccccccccccccc"
    record = {"$type": "app.bsky.feed.post", "text": "Evacuation ordered", "createdAt": "2026-07-04T14:38:06Z"}

    def event(op: str, t: int, **commit) -> str:
        body = {"rev": f"r{t}", "operation": op, "collection": "app.bsky.feed.post", "rkey": "3xyz", **commit}
        return json.dumps({"did": did, "time_us": t, "kind": "commit", "commit": body})

    path = tmp_path / "edit-after-delete.jsonl"
    lines = [
        event("create", 1, cid="c1", record=record),
        event("delete", 2),
        event("update", 3, cid="c2", record={**record, "text": "Evacuation ordered (edited)"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcomes = []
    for batch_size in (500, 1):
        store = open_store(f"sqlite:///{tmp_path / f'batch-{batch_size}.db'}")
        try:
            add_watch(store, "evac", "evacuat*")
            await pipeline_for(ReplaySource(path, name="r"), store, batch_size=batch_size).run()
            alerts = [(v.alert.post.version, v.post is None) for v in store.list_alerts()]
            outcomes.append((alerts, store.counts().posts))
        finally:
            store.close()
    assert outcomes[0] == outcomes[1] == ([("c1", True)], 0)


@pytest.mark.parametrize("matched_in", ["pipeline", "match helper"])
async def test_a_new_watch_takes_effect_while_running(store, matched_in: str) -> None:
    signal = AlertSignal()
    source = DemoSource(rate=2000, hit_share=0.5, seed=11)
    helper = MatchProcess() if matched_in == "match helper" else None  # its own watch set, kept current
    try:
        pipeline = pipeline_for(source, store, signal=signal, watch_check_s=0.2, match_process=helper)
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        await asyncio.sleep(0.5)
        assert store.counts().alerts == 0  # no watches yet
        from watchfloor.sources.demo import DEMO_WATCHES

        name, query, severity = DEMO_WATCHES[0]
        added_at = asyncio.get_running_loop().time()
        add_watch(store, name, query, severity=Severity(severity))
        assert await signal.wait_newer(0, timeout=5.0)
        took = asyncio.get_running_loop().time() - added_at
        stop.set()
        await task
        assert took < 2.0
        assert store.counts().alerts > 0
        assert store.get_cursor("demo") is not None
        if helper is not None:
            assert helper.helper_pid() is not None and helper.fallbacks == 0  # every batch went through it
    finally:
        if helper is not None:
            helper.close()


def test_a_batch_prepared_apart_is_counted_apart(store, shared_fixtures) -> None:
    """prepare(stats=...) counts the batch in the given figures only and leaves its rate to
    the caller: what the pipeline uses for a batch prepared on a worker thread while the
    event loop's thread adds the match helper's figures (runner.py, _prepare_here)."""
    lines = (shared_fixtures / "bluesky" / "jetstream_v1_golden.jsonl").read_bytes().splitlines()
    events = [RawEvent("replay", "bluesky", str(n), line, datetime.now(UTC)) for n, line in enumerate(lines, 1)]
    add_watch(store, "everything", "the OR a OR de OR la")
    counted = pipeline_for(ReplaySource(Path("unused")), store)
    apart = pipeline_for(ReplaySource(Path("unused")), store)
    figures = PipelineStats()
    for _ in range(2):  # twice, a moment apart: the second batch has a rate
        expected = counted.prepare(events, source="replay", cursor=events[-1].cursor)
        prepared = apart.prepare(events, source="replay", cursor=events[-1].cursor, stats=figures)
        time.sleep(0.01)
    assert apart.stats == PipelineStats()  # nothing counted in the pipeline's own figures
    assert figures == counted.stats and figures.events == 2 * len(events) and figures.posts > 0
    assert figures.matched_posts > 0 and figures.ignored
    assert prepared.batch.events_per_s == 0 and expected.batch.events_per_s > 0  # the rate is the caller's
    assert [p.key for p in prepared.batch.posts] == [p.key for p in expected.batch.posts]
    assert len(prepared.batch.alerts) == len(expected.batch.alerts) > 0


async def test_an_expired_watch_stops_matching(store) -> None:
    from watchfloor.sources.demo import DEMO_WATCHES

    name, query, _severity = DEMO_WATCHES[0]
    add_watch(store, name, query, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    stats = await pipeline_for(DemoSource(rate=0, hit_share=1.0, limit=500), store).run()
    assert stats.posts > 0
    assert store.counts().alerts == 0
