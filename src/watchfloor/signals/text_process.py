"""The per-text signals of matched posts, computed in a helper process.

The signal stage's per-text work — language, sentiment, toxicity and threat, and the
MinHash signature — is pure: a text gives the same result in any process. It is also the
largest cost of a matched post (≈ 0.5 ms), and in the embedded deployment it runs under
the interpreter lock of the pipeline, whose one core is the bottleneck
(docs/performance.md). With a :class:`TextSignalProcess`, one helper process does it on
another core while the pipeline normalises and matches the next batch; the stateful rest
(near-duplicate groups, burst counts, rescoring) stays in the pipeline, in batch order
(:meth:`watchfloor.signals.stage.SignalStage.annotate`).

- The helper is started with the "spawn" method (the pipeline has threads, whose locks a
  fork would copy) and loads the models once. It exits by itself when its parent is gone,
  so a ``kill -9`` of ``watchfloor run`` leaves no helper behind.
- If the helper dies or cannot start, those texts are computed by the pipeline's own stage
  instead (the same code, so the same results, only slower), a warning is logged, and a new helper is started for
  the next batch. Nothing is lost and nothing waits forever: a batch waits at most
  ``timeout_s`` for its texts.
- The results are those of :meth:`SignalStage.text_signals` and
  :meth:`NearDuplicateIndex.signature`, run by the helper itself
  (tests/signals/test_text_process.py compares the two ways).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchfloor.signals.stage import SignalStage, TextSignals

__all__ = ["TextItem", "TextResult", "TextSignalProcess", "compute_texts"]

log = logging.getLogger(__name__)

TextItem = tuple[str, "str | None"]  # (text, the language the post declares)
TextResult = tuple["TextSignals", "bytes | None"]  # (its signals, its MinHash signature as bytes)

_PARENT_CHECK_S = 0.5
_helper_stage: SignalStage | None = None  # in the helper process: the models, loaded once


def compute_texts(items: list[TextItem]) -> list[TextResult]:
    """The per-text signals of ``items``, in order (what the helper runs)."""
    global _helper_stage
    if _helper_stage is None:
        from watchfloor.signals.stage import SignalStage

        _helper_stage = SignalStage()
    stage = _helper_stage
    index = stage.near_duplicates
    out: list[TextResult] = []
    for text, declared in items:
        signature = index.signature(text)
        out.append((stage.text_signals(text, declared), None if signature is None else index.to_bytes(signature)))
    return out


def _start_helper(parent: int) -> None:
    """The helper's initialiser: load the models, and leave when the parent is gone."""

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
    compute_texts([("warm up", "en")])


class TextSignalProcess:
    """One helper process for the per-text signals; thread-safe."""

    def __init__(self, *, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.restarts = 0  # helpers replaced after they died or timed out
        self.fallbacks = 0  # batches whose texts were computed in the pipeline instead
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[int] | None = None  # the helper's process id, once it runs
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the text-signal helper is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_helper,
                    initargs=(os.getpid(),),
                )
                self._started = self._pool.submit(os.getpid)
            return self._pool

    def start(self) -> Future[int]:
        """Start the helper now (it takes a second or two to load the models); the future
        gives its process id once it runs."""
        self._executor()
        started = self._started
        assert started is not None
        return started

    def helper_pid(self) -> int | None:
        """The running helper's process id (None before it has started)."""
        started = self._started
        return started.result() if started is not None and started.done() and not started.exception() else None

    def submit(self, items: list[TextItem]) -> Future[list[TextResult]] | None:
        """Hand ``items`` to the helper; None when it cannot take them (compute them here)."""
        try:
            return self._executor().submit(compute_texts, items)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._replace(exc)
            return None

    def results(self, future: Future[list[TextResult]] | None) -> list[TextResult] | None:
        """The results of :meth:`submit`, or None when the helper failed: the caller computes
        them itself (with the same code, so with the same results)."""
        if future is not None:
            try:
                return future.result(timeout=self.timeout_s)
            except (BrokenProcessPool, TimeoutError, OSError) as exc:
                self._replace(exc)
            except Exception as exc:  # raised by the helper's own work: the helper is fine
                log.warning("the text-signal helper could not compute a batch (%s: %s)", type(exc).__name__, exc)
        self.fallbacks += 1
        return None

    def _replace(self, exc: BaseException) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            started, self._started = self._started, None
            if pool is None or self._closed:
                return
            self.restarts += 1
        log.warning(
            "the text-signal helper failed (%s: %s); computing in the pipeline, starting a new helper",
            type(exc).__name__,
            exc,
        )
        if started is not None and started.done() and not started.exception():
            with contextlib.suppress(ProcessLookupError):  # a hung helper: stop it
                os.kill(started.result(), signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the helper: it finishes what it has, or is killed after ``timeout_s``."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            started, self._started = self._started, None
        if pool is None:
            return
        closer = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True}, daemon=True)
        closer.start()
        closer.join(timeout_s)
        if closer.is_alive() and started is not None and started.done() and not started.exception():
            with contextlib.suppress(ProcessLookupError):  # hung: stop it
                os.kill(started.result(), signal.SIGKILL)
