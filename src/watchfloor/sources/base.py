"""The one interface every source implements, and the one every normaliser implements.

A *source* yields :class:`~watchfloor.model.RawEvent` objects, each carrying the cursor
to resume *after* it. It knows nothing about posts, watches or storage. A *normaliser*
turns one raw event of its platform into a :class:`~watchfloor.model.Post`, a
:class:`~watchfloor.model.Deletion` or an :class:`~watchfloor.model.Ignored`, or raises
:class:`~watchfloor.model.MalformedEvent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from watchfloor.model import Normalised, RawEvent


@runtime_checkable
class Source(Protocol):
    """An async stream of raw events that can resume from a cursor."""

    name: str  # unique per source instance; the key its cursor is stored under
    platform: str  # the normaliser that reads its payloads

    def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Yield events after ``cursor`` (from the start when ``None``), forever or to the end."""
        ...


class SourceFailed(RuntimeError):
    """Raised by ``events()`` for a failure that retrying cannot fix: missing or refused
    credentials, a channel or feed that does not exist, a wrong configuration. The
    message says what to do and never contains a credential."""


class Pseudonymiser(Protocol):
    """Turns a platform account identifier into a stable keyed pseudonym."""

    def __call__(self, platform: str, account: str) -> str: ...


class Normaliser(Protocol):
    """Reads one platform's wire format."""

    platform: str

    def normalise(self, event: RawEvent) -> Normalised:
        """Return the normalised event, or raise MalformedEvent with a readable reason."""
        ...
