"""The HTTP server for the web app: uvicorn, run inside the caller's event loop.

The caller owns process signals (the embedded runner stops the pipeline first, then
sets ``server.should_exit``), so this server installs no signal handlers of its own.
On shutdown it first tells open event streams to end, so a browser left open on the
feed never holds up a Ctrl-C.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from watchfloor.web.sse import streams_closing

GRACEFUL_SHUTDOWN_S = 5


class WebServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the owner of the event loop handles SIGINT/SIGTERM and sets should_exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        streams_closing(self._app).clear()
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        streams_closing(self._app).set()
        await super().shutdown(sockets)


def build_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app``; run it with ``await server.serve()``."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        # X-Forwarded-For is NOT trusted, not even from 127.0.0.1: otherwise any local process
        # could pick its own client address and step around the per-address login throttle.
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return WebServer(config, app)
