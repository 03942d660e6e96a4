"""The one error type of the floor's actions: a refusal with an HTTP-like status code."""

from __future__ import annotations


class FloorError(Exception):
    """An action on the queue or a case was refused: 400 bad input, 403 not permitted,
    404 no such thing, 409 the state does not allow it. The message is for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
