"""Where shares come from: stored posts (links, hashtags, quotes, near-duplicate texts) or
a CSV file of (account, object, timestamp) rows, as published coordination tools take.

CSV input: a header naming the columns (``account``, ``object``, ``timestamp``; also
accepted: ``user``/``user_id``/``author`` for the account, ``url``/``link``/``hashtag``
for the object, ``time``/``created_at``/``date`` for the time), or no header and those
three columns in that order. A timestamp is ISO 8601 (a time without a zone is UTC) or
seconds since the epoch (milliseconds when above 10^11).

Accounts in a CSV are replaced by pseudonyms (``p:`` + 16 hex digits, keyed by a secret
made for this run only) unless they already are pseudonyms or ``keep_ids`` is asked for.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from watchfloor.model import Post, PostKey
from watchfloor.network.coordination import Share
from watchfloor.query.fields import normalise_url

__all__ = ["KINDS", "CsvError", "read_shares_csv", "shares_from_posts"]

KINDS = ("link", "hashtag", "quote", "text")
_PSEUDONYM = re.compile(r"p:[0-9a-f]{16}")
_ALIASES = {
    "account": ("account", "account_id", "user", "user_id", "author", "author_id", "entity", "account_url"),
    "object": ("object", "url", "link", "expanded", "hashtag", "item"),
    "timestamp": ("timestamp", "time", "created_at", "date", "datetime", "ts"),
}


class CsvError(ValueError):
    """A CSV row that cannot be read; the message names the line."""


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch from ISO 8601 or epoch seconds (or milliseconds)."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number / 1000.0 if number > 1e11 else number
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class _Pseudonyms:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def __call__(self, account: str) -> str:
        if _PSEUDONYM.fullmatch(account):
            return account
        return "p:" + hmac.new(self._key, account.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _columns(header: list[str]) -> dict[str, int] | None:
    lowered = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[name] = lowered.index(alias)
                break
    return found if len(found) == 3 else None


def read_shares_csv(path: Path, *, keep_ids: bool = False) -> Iterator[Share]:
    """The shares of a CSV file (see the module docstring); raises :class:`CsvError`."""
    pseudonym = (lambda a: a) if keep_ids else _Pseudonyms()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        columns: Mapping[str, int] | None = None
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if columns is None:
                columns = _columns(row)
                if columns is not None:
                    continue  # a header
                columns = {"account": 0, "object": 1, "timestamp": 2}
            line = reader.line_num
            try:
                account = row[columns["account"]].strip()
                obj = row[columns["object"]].strip()
                at = parse_timestamp(row[columns["timestamp"]])
            except IndexError:
                raise CsvError(f"line {line}: expected account, object and timestamp columns") from None
            except ValueError:
                raise CsvError(f"line {line}: {row[columns['timestamp']]!r} is not a timestamp") from None
            if not account or not obj:
                raise CsvError(f"line {line}: empty account or object")
            yield Share(pseudonym(account), obj, at, post=f"line {line}")


def _objects(post: Post, kind: str, groups: Mapping[PostKey, str] | None) -> Iterable[str]:
    if kind == "link":
        return {normalise_url(link) for link in post.links}
    if kind == "hashtag":
        return {"#" + tag.removeprefix("#").lower() for tag in post.hashtags}
    if kind == "quote":
        return {post.quote_of} if post.quote_of else ()
    if kind == "text":
        group = (groups or {}).get(post.key)
        return {group} if group else ()
    raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")


def shares_from_posts(posts: Iterable[Post], kind: str, *, groups: Mapping[PostKey, str] | None = None) -> list[Share]:
    """One share per (post, object) of ``kind``; accounts are the posts' pseudonymous authors."""
    shares: list[Share] = []
    for post in posts:
        for obj in sorted(_objects(post, kind, groups)):
            shares.append(Share(post.author, obj, post.created_at.timestamp(), post=post.url or post.native_id))
    return shares
