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
from watchfloor.query.tree import Field, Near, Node, Not, Phrase, Regex, Term

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


class _PartWords:
    """The folded words of each part of one query, worked out once per check.

    A query may have hundreds of parts and the policy has over a hundred terms; folding
    the same part again for every term — and, for a chain ``a NEAR/5 b NEAR/5 c ...``,
    every word below every ``NEAR`` again — kept a 4000-character query busy for tens of seconds."""

    def __init__(self) -> None:
        self._own: dict[int, list[QueryWord]] = {}
        self._leaves: dict[int, list[QueryWord]] = {}

    def own(self, node: Term | Phrase) -> list[QueryWord]:
        found = self._own.get(id(node))
        if found is None:
            found = self._own[id(node)] = _term_words(node) if isinstance(node, Term) else _phrase_words(node)
        return found

    def leaves(self, node: Node) -> list[QueryWord]:
        """The words of every term and phrase at or below ``node``, in query order."""
        found = self._leaves.get(id(node))
        if found is not None:
            return found
        if isinstance(node, Term | Phrase):
            found = self.own(node)
        else:
            below = (node.child,) if isinstance(node, Not) else _children(node)
            found = [word for child in below for word in self.leaves(child)]
        self._leaves[id(node)] = found
        return found


def _part_meets(node: Node, words: tuple[Word, ...], known: _PartWords) -> bool:
    if not words:
        return False
    if isinstance(node, Term):
        own = known.own(node)
        return _contains(own, words) if len(own) > 1 else len(words) == 1 and _meets(own[0], words[0])
    if isinstance(node, Phrase):
        return _contains(known.own(node), words)
    if isinstance(node, Field) and node.name == "hashtag":
        return _meets((fold(node.value), None, False), ("".join(w for w, _ in words), words[-1][1]))
    if isinstance(node, Regex):
        return _regex_meets(node.pattern, words)
    if isinstance(node, Near) and len(words) > 1:
        left, right = known.leaves(node.left), known.leaves(node.right)
        both_sides = any(_meets(q, w) for q in left for w in words) and any(_meets(q, w) for q in right for w in words)
        return both_sides and all(any(_meets(q, w) for q in left) or any(_meets(q, w) for q in right) for w in words)
    return False


def check_query(query: str | Node, policy: Policy) -> GuardVerdict:
    """The guard's verdict on a watch query (a QuerySyntaxError propagates for bad text)."""
    tree = parse(query) if isinstance(query, str) else query
    hits: list[GuardHit] = []
    seen: set[tuple[str, str]] = set()
    parts = [p for p in positive_parts(tree) if isinstance(p, Term | Phrase | Field | Regex | Near)]
    known = _PartWords()
    everywhere = known.leaves(tree)
    for category in policy.protected:
        for term in category.terms:
            words = _policy_words(term)
            # a NEAR can only hold a several-word term if the query has each of its words somewhere
            near_possible = len(words) > 1 and all(any(_meets(q, w) for q in everywhere) for w in words)
            for part in parts:
                if isinstance(part, Near) and not near_possible:
                    continue
                if (category.key, term) not in seen and _part_meets(part, words, known):
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
