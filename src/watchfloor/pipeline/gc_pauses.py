"""Keeps the garbage collector's pauses out of the ingest-to-alert latency.

CPython frees almost everything the pipeline makes (events, parsed JSON, posts, alerts)
by reference counting, the moment it is no longer used. The *cyclic* collector runs as
well, triggered by allocation counts, and with Python's default thresholds a firehose
hurts twice:

- a young collection runs every 700 container allocations, i.e. every few events. The
  events waiting in the queue or in the open batch are alive at that moment, survive it
  and are promoted; so the old generation grows by tens of thousands of objects a second;
- that growth triggers a *full* collection about once a second, and a full collection
  visits every tracked object of the process (the compiled watch set alone has more than
  100,000) while holding the interpreter lock: 50–100 ms during which nothing is matched
  or committed. In ``bench/pipeline.py`` these pauses were most of the p99 latency.

A process that runs pipelines (``watchfloor run``, ``watchfloor worker``) therefore calls
:func:`tune_for_streaming` at start:

- the young threshold becomes :data:`YOUNG_THRESHOLD` allocations. A young collection
  only visits the young objects still alive, so it stays short; it is just rarer, and
  far fewer short-lived objects happen to be alive (and promoted) when it runs;
- after the first watch set is compiled, :func:`settle` (called by the watch-set cache)
  collects once and freezes what start-up made — modules, models, the compiled watches —
  so later full collections skip it (:func:`gc.freeze`). A pipeline whose batches the
  match helper prepares compiles no watch set itself: it settles when the helper's first
  batch comes back (``Pipeline._adopt``); the text-signal helper settles once its models
  are loaded. Compiled watch sets hold no
  reference cycles (tests/pipeline/test_gc_pauses.py), so a frozen set that is replaced
  later is still freed by reference counting.

Nothing else changes: cycles are still found and freed, only in fewer, shorter pauses.
Processes that did not ask (the tests, the CLI's short commands) keep Python's defaults.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 50_000  # Python's default is 700
_lock = threading.Lock()
_tuned = False
_settled = False


def tune_for_streaming(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Raise the young generation's threshold for this process (a streaming process only)."""
    global _tuned
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    _tuned = True


def settle() -> bool:
    """Once per tuned process, after start-up: collect, then freeze what is alive.

    Returns whether it froze now (False when the process was not tuned, or already
    settled). Meant to be called when the long-lived objects exist: the watch-set cache
    calls it after its first compile.
    """
    global _settled
    if _settled:  # every batch of a pipeline with a match helper asks: the common answer, without the lock
        return False
    with _lock:
        if not _tuned or _settled:
            return False
        _settled = True
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info(
        "garbage collector: %d start-up objects frozen in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
    return True


def reset() -> None:
    """Back to Python's defaults (tests)."""
    global _tuned, _settled
    with _lock:
        _tuned = _settled = False
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(700, middle, old)
