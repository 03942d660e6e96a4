"""The reference evaluator: slow, direct, and meant to be obviously correct.

It walks the query tree over the post's word list (:func:`~watchfloor.query.text.tokenize`),
trying every position, with no index, no automaton and no caching.  The matching
engine (:mod:`watchfloor.query.engine`) must agree with it on every query and every
post; property tests check that.  Nothing in production calls it on the stream.

Definitions (the same as in docs/watch-language.md):

* an *occurrence* of a part is a run of words ``[i, j)``;
* a term or phrase occurs where its word patterns match words ``i, i+1, ...`` in a row;
* a regex occurs at ``[i, j)`` when it fullmatches ``" ".join(words[i:j])``; for each
  end ``j`` only the leftmost start counts;
* ``A NEAR/n B`` occurs at ``[min start, max end)`` of an occurrence of A and one of B
  that do not overlap and have at most ``n`` words between them (``ONEAR``: A first);
  a group joined by ``OR`` occurs wherever any of its parts does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..model import Explanation, Post, TermHit
from .fields import field_matches
from .patterns import glob_matches, pattern_kind, phrase_patterns, term_patterns
from .regex import compile_regex
from .text import Token, light_fold, tokenize
from .tree import And, Field, Near, Node, Not, Or, Phrase, Regex, Term

__all__ = ["label", "reference_explain", "reference_matches", "reference_occurrences"]

Occurrence = tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Text:
    post: Post
    tokens: list[Token]
    words: list[str]


def _text(post: Post) -> _Text:
    tokens = tokenize(post.text)
    return _Text(post, tokens, [t.text for t in tokens])


@lru_cache(maxsize=1024)
def _python_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(compile_regex(pattern).python)


def label(node: Node) -> str:
    """The query part as written (or rebuilt, for trees made by hand)."""
    if node.source:
        return node.source
    if isinstance(node, Term):
        written = node.text + ("*" if node.wildcard else "")
        return "{" + written + "}" if node.case_sensitive else written
    if isinstance(node, Phrase):
        return '"' + " ".join(node.words) + '"'
    if isinstance(node, Regex):
        return f"/{node.pattern}/"
    if isinstance(node, Field):
        return f"{node.name}:{node.value}"
    if isinstance(node, Near):
        operator = "ONEAR" if node.ordered else "NEAR"
        return f"{label(node.left)} {operator}/{node.distance} {label(node.right)}"
    return ""


def _occurrences(node: Node, text: _Text) -> set[Occurrence]:
    words, tokens = text.words, text.tokens
    found: set[Occurrence] = set()
    if isinstance(node, Term | Phrase):
        patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
        m = len(patterns)
        for i in range(len(words) - m + 1):
            if all(glob_matches(patterns[k].glob, words[i + k]) for k in range(m)) and all(
                p.cased is None
                or glob_matches(p.cased, light_fold(text.post.text[tokens[i + k].start : tokens[i + k].end]))
                for k, p in enumerate(patterns)
            ):
                found.add((i, i + m))
    elif isinstance(node, Regex):
        regex = _python_regex(node.pattern)
        for j in range(1, len(words) + 1):
            for i in range(j):
                if regex.fullmatch(" ".join(words[i:j])):
                    found.add((i, j))
                    break
    elif isinstance(node, Or):
        for child in node.children:
            found |= _occurrences(child, text)
    elif isinstance(node, Near):
        for a in _occurrences(node.left, text):
            for b in _occurrences(node.right, text):
                if a[1] <= b[0] and b[0] - a[1] <= node.distance:
                    found.add((a[0], b[1]))
                if not node.ordered and b[1] <= a[0] and a[0] - b[1] <= node.distance:
                    found.add((b[0], a[1]))
    else:
        raise TypeError(f"{node!r} has no occurrences")
    return found


def reference_occurrences(node: Node, post: Post) -> set[Occurrence]:
    """Every occurrence ``[i, j)`` (word indexes) of a term, phrase, regex, NEAR or OR group."""
    return _occurrences(node, _text(post))


def _matches(node: Node, text: _Text) -> bool:
    if isinstance(node, Field):
        return field_matches(node.name, node.value, text.post)
    if isinstance(node, And):
        return all(_matches(child, text) for child in node.children)
    if isinstance(node, Or):
        return any(_matches(child, text) for child in node.children)
    if isinstance(node, Not):
        return not _matches(node.child, text)
    return bool(_occurrences(node, text))


def reference_matches(tree: Node, post: Post) -> bool:
    """True if ``post`` matches the query ``tree``."""
    return _matches(tree, _text(post))


def _spans(occurrences: set[Occurrence], tokens: list[Token]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted({(tokens[i].start, tokens[j - 1].end) for i, j in occurrences}))


def _collect(node: Node, text: _Text, hits: list[TermHit]) -> None:
    """Append the hits of the positive parts of the branches that make ``node`` true."""
    if not _matches(node, text):
        return
    if isinstance(node, Field):
        hits.append(TermHit(label(node), "filter"))
    elif isinstance(node, And | Or):
        for child in node.children:
            _collect(child, text, hits)
    elif isinstance(node, Not):
        return
    else:
        if isinstance(node, Regex):
            kind = "regex"
        elif isinstance(node, Near):
            kind = "near"
        else:
            kind = pattern_kind(node)
        hits.append(TermHit(label(node), kind, _spans(_occurrences(node, text), text.tokens)))


def reference_explain(tree: Node, post: Post) -> Explanation | None:
    """Why ``post`` matches ``tree``, or None when it does not.

    Lists the positive parts of the branches that made the query true, in query
    order, each once; parts under ``NOT`` are never listed.
    """
    text = _text(post)
    hits: list[TermHit] = []
    _collect(tree, text, hits)
    if not hits and not _matches(tree, text):
        return None
    unique: dict[tuple[str, str], TermHit] = {}
    for hit in hits:
        unique.setdefault((hit.term, hit.kind), hit)
    return Explanation(hits=tuple(unique.values()))
