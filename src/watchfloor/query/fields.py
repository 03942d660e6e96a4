"""Filters (``lang:``, ``domain:``, ``url:`` ...): how a value is written and what a post has.

The parser normalises the value once (:func:`normalise_value`); a post's side is
read by the small functions below, which both the matching engine and the
reference evaluator use, so a filter means the same everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from ..model import Post
from .languages import is_language_code, language_matches, normalise_language
from .text import word_stream

__all__ = [
    "HAS_VALUES",
    "FieldValueError",
    "field_matches",
    "link_hosts",
    "link_urls",
    "normalise_url",
    "normalise_value",
    "post_hashtags",
    "post_langs",
]

HAS_VALUES = ("link", "media", "hashtag", "mention")

_PLATFORM = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_DOMAIN = re.compile(r"(?:[^\s./:@?#]+\.)+[^\s./:@?#]+")
_PSEUDONYM = re.compile(r"p:[0-9a-z]{8,64}")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


class FieldValueError(ValueError):
    """A filter value that is not usable; the message says what to write instead."""


def normalise_url(url: str) -> str:
    """``url`` as ``url:`` compares it: lower case, without the scheme and a leading ``www.``."""
    url = _SCHEME.sub("", url.strip().lower(), count=1)
    return url.removeprefix("www.")


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url if "://" in url else "//" + url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def normalise_value(name: str, raw: str) -> str:
    """The value of filter ``name`` as the matcher compares it; raises :class:`FieldValueError`."""
    if name == "lang":
        if not is_language_code(raw):
            raise FieldValueError(f"'{raw}' is not a language code such as en or pt-BR")
        return normalise_language(raw)
    if name == "platform":
        value = raw.lower()
        if not _PLATFORM.fullmatch(value):
            raise FieldValueError(f"'{raw}' is not a platform name such as bluesky")
        return value
    if name == "has":
        value = raw.lower()
        if value not in HAS_VALUES:
            raise FieldValueError(f"has: takes {', '.join(HAS_VALUES[:-1])} or {HAS_VALUES[-1]}, not '{raw}'")
        return value
    if name == "domain":
        value = raw.lower().rstrip(".")
        if "/" in value or not _DOMAIN.fullmatch(value):
            raise FieldValueError(
                f"'{raw}' is not a domain such as example.org (no http:// and no path; for those use url:)"
            )
        return value
    if name == "hashtag":
        value = hashtag_key(raw)
        if not value:
            raise FieldValueError(f"'{raw}' is not a hashtag such as flood or #flood")
        return value
    if name in ("author", "mention"):
        value = raw.lower()
        if not _PSEUDONYM.fullmatch(value):
            raise FieldValueError(
                f"{name}: takes an account's pseudonym, such as {name}:p:0123456789abcdef; looking an account up "
                "by its handle needs a recorded authorization, which comes with the accountability work"
            )
        return value
    if name == "url":
        value = normalise_url(raw)
        host = _host(value)
        if not host or "." not in host or any(ch.isspace() for ch in value):
            raise FieldValueError(f"'{raw}' is not a web address such as example.org/news")
        return value
    raise FieldValueError(f"unknown field {name!r}")


# --------------------------------------------------------------------------- the post's side


def post_langs(post: Post) -> tuple[str, ...]:
    langs = (post.lang, *post.langs) if post.lang else post.langs
    return tuple(normalise_language(lang) for lang in langs)


@lru_cache(maxsize=65_536)  # the same tags come back all day; folding one costs microseconds
def hashtag_key(tag: str) -> str:
    """A hashtag as ``hashtag:`` compares it: its folded words (``#COVID-19`` -> ``covid 19``)."""
    return word_stream(tag.removeprefix("#")).strip()


def post_hashtags(post: Post) -> frozenset[str]:
    return frozenset(hashtag_key(tag) for tag in post.hashtags)


def link_hosts(post: Post) -> frozenset[str]:
    """The lower-cased host of every link of the post."""
    return frozenset(h for link in post.links if (h := _host(normalise_url(link))))


def link_urls(post: Post) -> tuple[str, ...]:
    return tuple(normalise_url(link) for link in post.links)


def has(value: str, post: Post) -> bool:
    """``has:value``: the post has at least one link, media item, hashtag or mention."""
    if value == "link":
        return bool(post.links)
    if value == "media":
        return bool(post.media)
    if value == "hashtag":
        return bool(post.hashtags)
    return bool(post.mentions)


def domain_matches(domain: str, hosts: frozenset[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for host in hosts)


def field_matches(name: str, value: str, post: Post) -> bool:
    """True if ``post`` passes the filter ``name:value`` (``value`` normalised)."""
    if name == "lang":
        return language_matches(value, post_langs(post))
    if name == "platform":
        return post.platform.lower() == value
    if name == "has":
        return has(value, post)
    if name == "domain":
        return domain_matches(value, link_hosts(post))
    if name == "hashtag":
        return value in post_hashtags(post)
    if name == "author":
        return post.author == value
    if name == "mention":
        return value in post.mentions
    if name == "url":
        return any(url.startswith(value) for url in link_urls(post))
    raise ValueError(f"unknown field {name!r}")
