"""Real receivers for notifications: an HTTP server on loopback that records webhook calls
(and answers with the statuses a test asks for), and a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    calls: list[Call] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)  # answers to give, in order; then 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec = box["r"]
            rec.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = rec.statuses.popleft() if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/watchfloor")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield box["r"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[object] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:  # pragma: no cover - a dev dependency
        import os

        if os.environ.get("CI") == "true":
            pytest.fail("required under CI: aiosmtpd (pip install -e '.[dev]')")
        pytest.skip("aiosmtpd is not installed")
    import email
    from email import policy

    box = Mailbox(host="127.0.0.1", port=_free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
