"""The part of the repository that keeps signals: per-post signal values, near-duplicate
groups and burst spikes (schema: 0005_signals.sql).

:class:`~watchfloor.store.base.Store` includes this protocol. Signals and spikes are
written by ``commit_batch`` in the same transaction as the posts and alerts they belong
to (``IngestBatch.signals`` / ``IngestBatch.spikes``); a post's signals are deleted with
the post (upstream delete, retention).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from watchfloor.model import NearDuplicateGroup, Post, PostKey, PostSignals, Spike


class SignalsRepository(Protocol):
    def get_post_signals(self, key: PostKey) -> PostSignals | None:
        """The signals stored for one post (None if it has none, or is gone)."""
        ...

    def get_near_duplicate_group(self, group_id: str) -> NearDuplicateGroup | None:
        """How many stored posts share ``group_id``, and its first post."""
        ...

    def list_near_duplicate_groups(
        self, *, since: datetime | None = None, min_count: int = 2, limit: int = 50
    ) -> list[NearDuplicateGroup]:
        """The largest groups (most posts first) with a post created at or after ``since``."""
        ...

    def recent_signatures(self, limit: int) -> list[tuple[str, bytes, str]]:
        """(post key text, MinHash bytes, group id) of the newest ``limit`` posts, oldest first."""
        ...

    def list_spikes(
        self, *, since: datetime | None = None, watch_id: int | None = None, limit: int = 100
    ) -> list[Spike]:
        """Spikes, newest window first; only windows starting at or after ``since`` if given."""
        ...

    def posts_since(self, since: datetime, *, limit: int = 5_000) -> list[Post]:
        """Stored (matched) posts created at or after ``since``, newest first (for the network view)."""
        ...
