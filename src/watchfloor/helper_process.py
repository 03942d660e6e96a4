"""One helper process that takes pure work off the pipeline's core, and survives its failures.

The embedded deployment runs its pipelines under one interpreter lock, so work moved to
another process runs on the other core. Two kinds of work are moved this way: matched
posts' per-text signals (:mod:`watchfloor.signals.text_process`) and normalising and
matching whole batches (:mod:`watchfloor.pipeline.match_process`). Both share what is here:

- The helper is started with the "spawn" method (the pipeline has threads, whose locks a
  fork would copy). It exits by itself when its parent is gone, so a ``kill -9`` of
  ``watchfloor run`` leaves no helper behind.
- :meth:`HelperProcess.submit` hands one call over; :meth:`HelperProcess.result` waits for it
  at most ``timeout_s``. Either returns None when the helper cannot do the work: the caller
  then does it itself, with the same code, so with the same results, only slower. A helper
  that died, hung or could not start is killed if need be, a warning is logged and a new
  one is started for the next call; an exception raised by the work itself leaves the
  helper running.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["HelperProcess"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_PARENT_CHECK_S = 0.5


def _start_helper(parent: int, warm_up: Callable[[], object] | None) -> None:
    """The helper's initialiser: leave when the parent is gone, then warm up."""

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
    if warm_up is not None:
        warm_up()


class HelperProcess:
    """One helper process named ``name`` (in warnings); thread-safe.

    ``warm_up`` (a module-level function, run in each new helper before its first call)
    loads what the work needs once.
    """

    def __init__(self, name: str, *, timeout_s: float = 30.0, warm_up: Callable[[], object] | None = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.restarts = 0  # helpers replaced after they died or timed out
        self.fallbacks = 0  # calls the caller did itself instead
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[int] | None = None  # the helper's process id, once it runs
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_helper,
                    initargs=(os.getpid(), self._warm_up),
                )
                self._started = self._pool.submit(os.getpid)
            return self._pool

    def start(self) -> Future[int]:
        """Start the helper now (loading what it needs takes a moment); the future gives its
        process id once it runs."""
        self._executor()
        started = self._started
        assert started is not None
        return started

    def helper_pid(self) -> int | None:
        """The running helper's process id (None before it has started)."""
        started = self._started
        return started.result() if started is not None and started.done() and not started.exception() else None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        """Hand ``fn(*args)`` to the helper (both picklable); None when it cannot take it."""
        try:
            return self._executor().submit(fn, *args)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._replace(exc)
            return None

    def result(self, future: Future[T] | None, timeout_s: float | None = None) -> T | None:
        """What :meth:`submit` computed, or None when the helper failed (the caller does the
        work itself). Waits at most ``timeout_s`` (default: the helper's ``timeout_s``)."""
        if future is not None:
            try:
                return future.result(timeout=self.timeout_s if timeout_s is None else timeout_s)
            except (BrokenProcessPool, TimeoutError, OSError) as exc:
                self._replace(exc)
            except Exception as exc:  # raised by the work itself: the helper is fine
                log.warning("the %s could not do its work (%s: %s)", self.name, type(exc).__name__, exc)
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
            "the %s failed (%s: %s); doing its work in the pipeline, starting a new helper",
            self.name,
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
