"""The protected-activity guard: a watch that looks for protest and assembly, religion, the
press, unions, political organising, immigration status or ethnicity is refused, or held
for two-person review where the policy allows.

The guard reads the watch's *parsed* query (:func:`watchfloor.query.parse`) and checks its
positive parts only — what the watch looks for. Parts under ``NOT`` exclude posts, which
is never a reason to refuse (``flood AND NOT protest`` is fine).

How a policy term meets a query part (both folded as the matcher folds them, so case and
accents never matter; a trailing ``*`` means "any ending" on either side):

- a one-word term meets a query word, a phrase word, a ``hashtag:`` value or a regex
  that matches the word;
- a several-word term meets a phrase that contains it in order, a ``NEAR`` whose two sides
  hold its words, a hashtag that is its words run together, or a regex that matches it.
  (Its words scattered over an ``AND`` do not count: ``black smoke AND people trapped`` is
  not about "black people".)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from watchfloor.governance.policy import GuardAction, Policy, ProtectedCategory
from watchfloor.query import parse
from watchfloor.query.text import fold, tokenize
from watchfloor.query.tree import Field, Near, Node, Not, Phrase, Regex, Term, walk

Word = tuple[str, bool]  # (folded word or prefix, is a prefix)


@dataclass(frozen=True, slots=True)
class GuardHit:
    category: str
    label: str
    action: GuardAction
    term: str  # the policy's term
    query_part: str  # the part of the query as written


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    hits: tuple[GuardHit, ...] = ()

    @property
    def action(self) -> GuardAction | None:
        """None: allowed; review: held for two supervisors; refuse: refused."""
        if any(h.action == GuardAction.refuse for h in self.hits):
            return GuardAction.refuse
        return GuardAction.review if self.hits else None

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.category for h in self.hits))

    def describe(self) -> str:
        parts = [f"{h.label} ({h.query_part!r} ~ {h.term!r})" for h in self.hits]
        return "; ".join(dict.fromkeys(parts))


# --------------------------------------------------------------------------- words


def _words(text: str) -> tuple[Word, ...]:
    """A term as folded words; a ``*`` ending a piece makes its last word a prefix."""
    words: list[Word] = []
    for piece in text.split():
        prefix = piece.endswith("*")
        tokens = [t.text for t in tokenize(piece.rstrip("*"))]
        for i, token in enumerate(tokens):
            words.append((token, prefix and i == len(tokens) - 1))
    return tuple(words)


@lru_cache(maxsize=4096)
def _policy_words(term: str) -> tuple[Word, ...]:
    return _words(term)


QueryWord = tuple[str, re.Pattern[str] | None, bool]  # (folded word or start, pattern if inner *, prefix)
_ENDINGS = ("", "s", "es", "er", "ers", "or", "ors", "ing", "ed", "ism", "ist", "ists", "ian", "ians")


def _query_words(text: str, wildcard: bool) -> list[QueryWord]:
    """A word as written in a query, as the folded word(s) it stands for."""
    folded = fold(text)
    if "*" in folded:  # a wildcard inside the word: keep it whole, as a pattern
        pieces = folded.split("*")
        body = r"\w*".join(re.escape(p) for p in pieces) + (r"\w*" if wildcard else "")
        return [(pieces[0], re.compile(body), False)]
    tokens = [t.text for t in tokenize(folded)]
    return [(t, None, wildcard and i == len(tokens) - 1) for i, t in enumerate(tokens)]


def _meets(query: QueryWord, policy: Word) -> bool:
    """Can one word satisfy both the query word and the policy word?"""
    start, pattern, q_prefix = query
    p_word, p_prefix = policy
    if pattern is not None:
        if not p_prefix:
            return pattern.fullmatch(p_word) is not None
        return start.startswith(p_word) or p_word.startswith(start)
    if q_prefix and p_prefix:
        return start.startswith(p_word) or p_word.startswith(start)
    if q_prefix:
        return p_word.startswith(start)
    if p_prefix:
        return start.startswith(p_word)
    return start == p_word


def _term_words(node: Term) -> list[QueryWord]:
    return _query_words(node.text, node.wildcard)


def _phrase_words(node: Phrase) -> list[QueryWord]:
    words: list[QueryWord] = []
    for w in node.words:
        wildcard = w.endswith("*")
        words.extend(_query_words(w[:-1] if wildcard else w, wildcard))
    return words


def _contains(sequence: list[QueryWord], words: tuple[Word, ...]) -> bool:
    n = len(words)
    return any(all(_meets(sequence[i + j], words[j]) for j in range(n)) for i in range(len(sequence) - n + 1))


def _regex_meets(pattern_text: str, words: tuple[Word, ...]) -> bool:
    try:
        pattern = re.compile(pattern_text)
    except re.error:
        return False
    stem = " ".join(w for w, _ in words)
    endings = _ENDINGS if words[-1][1] else ("",)
    return any(pattern.fullmatch(stem + ending) is not None for ending in endings)


# --------------------------------------------------------------------------- the query


def positive_parts(node: Node) -> Iterator[Node]:
    """Every node of ``node`` that is not under a NOT."""
    yield node
    if isinstance(node, Not):
        return
    for child in _children(node):
        yield from positive_parts(child)


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Near):
        return (node.left, node.right)
    children = getattr(node, "children", None)
    return tuple(children) if children else ()


def _leaf_words(node: Node) -> list[QueryWord]:
    words: list[QueryWord] = []
    for leaf in walk(node):
        if isinstance(leaf, Term):
            words.extend(_term_words(leaf))
        elif isinstance(leaf, Phrase):
            words.extend(_phrase_words(leaf))
    return words


def _part_meets(node: Node, words: tuple[Word, ...]) -> bool:
    if not words:
        return False
    if isinstance(node, Term):
        own = _term_words(node)
        return _contains(own, words) if len(own) > 1 else len(words) == 1 and _meets(own[0], words[0])
    if isinstance(node, Phrase):
        return _contains(_phrase_words(node), words)
    if isinstance(node, Field) and node.name == "hashtag":
        return _meets((fold(node.value), None, False), ("".join(w for w, _ in words), words[-1][1]))
    if isinstance(node, Regex):
        return _regex_meets(node.pattern, words)
    if isinstance(node, Near) and len(words) > 1:
        left, right = _leaf_words(node.left), _leaf_words(node.right)
        every_word_there = all(any(_meets(q, w) for q in left + right) for w in words)
        both_sides = any(_meets(q, w) for q in left for w in words) and any(_meets(q, w) for q in right for w in words)
        return every_word_there and both_sides
    return False


def check_query(query: str | Node, policy: Policy) -> GuardVerdict:
    """The guard's verdict on a watch query (a QuerySyntaxError propagates for bad text)."""
    tree = parse(query) if isinstance(query, str) else query
    hits: list[GuardHit] = []
    seen: set[tuple[str, str]] = set()
    parts = [p for p in positive_parts(tree) if isinstance(p, Term | Phrase | Field | Regex | Near)]
    for category in policy.protected:
        for term in category.terms:
            words = _policy_words(term)
            for part in parts:
                if (category.key, term) not in seen and _part_meets(part, words):
                    seen.add((category.key, term))
                    hits.append(_hit(category, term, part))
    return GuardVerdict(tuple(hits))


def _hit(category: ProtectedCategory, term: str, part: Node) -> GuardHit:
    return GuardHit(
        category=category.key,
        label=category.label,
        action=category.action,
        term=term,
        query_part=getattr(part, "source", "") or str(part),
    )
