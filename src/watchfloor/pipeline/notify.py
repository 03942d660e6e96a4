"""Wake-ups for live views: the pipeline announces new alert ids, readers wait for them.

Readers always read alerts from the store (``after_id`` paging), so a web process that
runs apart from the pipeline still works: it just falls back to polling every
``poll_s`` seconds. In the embedded deployment the pipeline and the web app share one
:class:`AlertSignal`, so an alert reaches the browser as soon as it is committed.
"""

from __future__ import annotations

import asyncio


class AlertSignal:
    """The highest committed alert id, and an event loop-safe way to wait for a newer one."""

    def __init__(self) -> None:
        self._latest = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def latest(self) -> int:
        return self._latest

    def publish(self, latest_alert_id: int) -> None:
        """Announce that alerts up to ``latest_alert_id`` are committed (any thread)."""
        if latest_alert_id <= self._latest:
            return
        self._latest = latest_alert_id
        for loop, fut in list(self._waiters):
            loop.call_soon_threadsafe(_settle, fut)

    async def wait_newer(self, than: int, timeout: float) -> bool:
        """Wait until an alert id above ``than`` is announced; False on timeout."""
        if self._latest > than:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        self._waiters.add(entry)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return self._latest > than
        finally:
            self._waiters.discard(entry)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
