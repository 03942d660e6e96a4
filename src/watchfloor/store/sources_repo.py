"""The part of the repository that keeps configured sources, their health and their gaps.

:class:`~watchfloor.store.base.Store` includes this protocol. Readers (``watchfloor
status``, the web UI's /status) combine three things per source:

- :meth:`SourcesRepository.source_health`: connected or not, reconnects, errors, the
  last error, rate-limit waits, quota, gaps found;
- :meth:`SourcesRepository.list_gaps`: the gaps themselves (newest first), each one a
  health alert until someone has looked at it;
- ``Store.source_states()``: events/s, lag and the newest event's time, committed with
  the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from watchfloor.sources.config import SourceConfig
from watchfloor.sources.health import Gap, HealthSnapshot


class SourcesRepository(Protocol):
    # ---------------------------------------------------------------- configuration
    def add_source(self, config: SourceConfig) -> SourceConfig:
        """Store a new source; StoreError if the name is taken."""
        ...

    def get_source(self, name: str) -> SourceConfig | None: ...

    def list_sources(self) -> list[SourceConfig]: ...

    def set_source_paused(self, name: str, paused: bool) -> None:
        """Pause or resume; StoreError if there is no such source."""
        ...

    def remove_source(self, name: str) -> None:
        """Forget the source's configuration (its cursor, figures and gaps stay)."""
        ...

    # ---------------------------------------------------------------- health
    def record_source_health(self, health: HealthSnapshot) -> None:
        """Replace the stored health reading of ``health.source``."""
        ...

    def source_health(self) -> list[HealthSnapshot]:
        """The newest health reading of every source that ever reported one."""
        ...

    def record_gap(self, gap: Gap) -> Gap:
        """Store a gap; returns it with its id."""
        ...

    def list_gaps(self, *, source: str | None = None, since: datetime | None = None, limit: int = 50) -> list[Gap]:
        """Gaps, newest first; only those detected at or after ``since`` if given."""
        ...
