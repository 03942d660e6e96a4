"""Coordination among the posts watchfloor stored: the authors (pseudonyms) of matched posts
that co-shared links, hashtags, quoted posts or near-duplicate texts.

Only matched posts are ever stored, so this looks at what the watches found, not at a
platform as a whole; the web view (``/network``) and ``watchfloor network recent`` use it.
"""

from __future__ import annotations

from datetime import datetime

from watchfloor.model import PostKey
from watchfloor.network.coordination import MAX_ACCOUNTS_PER_OBJECT, CoordinationResult, coordinated_components
from watchfloor.network.shares import KINDS, shares_from_posts
from watchfloor.store.signals_repo import SignalsRepository

__all__ = ["MAX_POSTS", "recent_coordination"]

MAX_POSTS = 5_000  # newest stored posts read at most


def recent_coordination(
    store: SignalsRepository,
    *,
    kind: str,
    since: datetime,
    window_s: float,
    min_repetition: int,
    max_accounts_per_object: int = MAX_ACCOUNTS_PER_OBJECT,
    limit: int = MAX_POSTS,
) -> CoordinationResult:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    posts = store.posts_since(since, limit=limit)
    groups: dict[PostKey, str] | None = None
    if kind == "text":
        groups = {}
        for post in posts:
            signals = store.get_post_signals(post.key)
            if signals is not None and signals.near_duplicate_group:
                groups[post.key] = signals.near_duplicate_group
    return coordinated_components(
        shares_from_posts(posts, kind, groups=groups),
        window_s=window_s,
        min_repetition=min_repetition,
        kind=kind,
        max_accounts_per_object=max_accounts_per_object,
    )
