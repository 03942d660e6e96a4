"""The per-text signals in a helper process (signals/text_process.py): the same results as in
the pipeline, a helper that dies is replaced without losing a batch, and a helper whose
parent is killed leaves too. Real processes throughout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tests.signals.conftest import build, build_pipeline

from watchfloor.signals.stage import SignalStage, stage_for
from watchfloor.signals.text_process import TextSignalProcess, compute_texts
from watchfloor.store import open_store

TEXTS = [
    ("The river level at the old mill is rising, volunteers are filling sandbags.", "en"),
    ("The river flooding again and the council idiots did nothing, useless morons.", "en"),
    ("La rivière déborde près du vieux moulin.", None),
    ("O rio está subindo perto da ponte 🌊🌊", "pt"),
    ("川の水位が上がっています。避難してください", None),
    ("แม่น้ำล้นตลิ่งแล้ว", None),
    ("🔥🔥🔥", None),
    ("", "en"),
    ("https://example.org/flood @someone #river", "en"),
]


@pytest.fixture(scope="module")
def helper() -> Iterator[TextSignalProcess]:
    process = TextSignalProcess(timeout_s=60)
    process.start().result(timeout=120)
    yield process
    process.close()


def test_the_helper_computes_what_the_pipeline_computes(helper: TextSignalProcess) -> None:
    items = list(TEXTS)
    from_helper = helper.results(helper.submit_texts(items))
    assert from_helper is not None
    here = SignalStage()
    index = here.near_duplicates
    expected = []
    for text, declared in items:
        signature = index.signature(text)
        expected.append((here.text_signals(text, declared), None if signature is None else index.to_bytes(signature)))
    assert from_helper == expected
    assert from_helper == compute_texts(items)
    assert any(signals.toxicity is not None for signals, _ in from_helper)  # English texts were scored
    assert from_helper[6][1] is None  # emoji only: no words, no signature


def test_a_pipeline_stores_the_same_signals_and_scores_with_the_helper(tmp_path, approved_watch, store) -> None:
    """Two real pipelines over the same posts, one with the helper process, one without."""
    from tests.signals.conftest import add_approved

    posts = [build(text, lang=lang, native_id=f"n{i}") for i, (text, lang) in enumerate(TEXTS * 3) if text]
    posts += [build(TEXTS[0][0] + " again", native_id="near-duplicate")]
    approved_watch("rivers", "river OR rivière OR rio OR 川 OR แม่น้ำ OR flood")
    other = open_store(f"sqlite:///{tmp_path / 'helper.db'}")
    other.migrate()
    add_approved(other, "rivers", "river OR rivière OR rio OR 川 OR แม่น้ำ OR flood")
    helper_stage = stage_for(other)
    helper_stage.offload_texts().start().result(timeout=120)
    try:
        for target in (store, other):
            asyncio.run(build_pipeline(target, posts, batch_size=4).run())
        assert helper_stage.texts is not None and helper_stage.texts.fallbacks == 0  # all went through it
    finally:
        helper_stage.close_helper()

    def stored(s) -> list[tuple[object, ...]]:
        rows = []
        for view in sorted(s.list_alerts(limit=100), key=lambda v: v.post.native_id):
            signals = s.get_post_signals(view.alert.post)
            rows.append(
                (
                    view.post.native_id,
                    view.alert.score,
                    view.alert.explanation.score_parts,
                    signals.lang,
                    signals.lang_confidence,
                    signals.sentiment,
                    signals.toxicity,
                    signals.threat,
                    signals.near_duplicate_group,
                    signals.minhash,
                )
            )
        return rows

    in_pipeline, with_helper = stored(store), stored(other)
    assert len(in_pipeline) >= 20  # most posts matched (the rest match in neither)
    assert with_helper == in_pipeline
    other.close()


def test_a_killed_helper_is_replaced_and_its_batch_computed_here() -> None:
    process = TextSignalProcess(timeout_s=60)
    try:
        pid = process.start().result(timeout=120)
        assert process.helper_pid() == pid != os.getpid()
        busy = [(f"{TEXTS[1][0]} {n}", "en") for n in range(5_000)]  # seconds of work: killed midway
        future = process.submit_texts(busy)
        os.kill(pid, signal.SIGKILL)
        assert process.results(future) is None  # the caller computes this batch itself
        assert (process.restarts, process.fallbacks) == (1, 1)
        again = process.results(process.submit_texts([("The river is rising.", "en")]))  # a new helper
        assert again == compute_texts([("The river is rising.", "en")])
        assert process.helper_pid() not in (None, pid)
    finally:
        process.close()


def test_the_helper_leaves_when_its_parent_is_killed(tmp_path) -> None:
    script = (
        "import sys, time\n"
        "from watchfloor.signals.text_process import TextSignalProcess\n"
        "p = TextSignalProcess()\n"
        "print(p.start().result(timeout=120), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        helper_pid = int(line.split()[0])
        os.kill(helper_pid, 0)  # it runs
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(helper_pid):
        assert time.monotonic() < deadline, "the helper outlived its parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone too
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_batch_the_helper_cannot_compute_is_computed_here(helper: TextSignalProcess) -> None:
    fallbacks, restarts = helper.fallbacks, helper.restarts
    assert helper.results(helper.submit_texts([(b"not a text", None)])) is None  # type: ignore[list-item]
    assert (helper.fallbacks, helper.restarts) == (fallbacks + 1, restarts)  # the same helper goes on
    assert helper.results(helper.submit_texts(TEXTS[:2])) == compute_texts(TEXTS[:2])
