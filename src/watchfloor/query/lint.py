"""What a query means, part by part, and warnings about parts that match too much.

Used by ``watchfloor watch lint`` (explain a query before saving it) and ``watchfloor
watch test`` (show which parts a sample text has, and where).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Post
from .engine import _COMMON_WORDS
from .fields import field_matches
from .patterns import pattern_kind, phrase_patterns, term_patterns
from .reference import label, reference_occurrences
from .regex import compile_regex
from .text import UNSEGMENTED_RANGES, tokenize
from .tree import ACCOUNT_FIELDS, And, Field, Near, Node, Not, Or, Phrase, Regex, Term, walk

__all__ = ["Finding", "Part", "describe", "lint", "parts_found"]

WIDE_NEAR = 20  # a NEAR this wide is nearly an AND


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a query: as written, its kind, and what it matches in plain words."""

    source: str
    kind: str
    meaning: str
    negated: bool = False  # under a NOT: it must be absent


@dataclass(frozen=True, slots=True)
class Finding:
    """A warning about a query part (the query still works)."""

    source: str
    message: str


@dataclass(frozen=True, slots=True)
class Report:
    parts: list[Part]
    findings: list[Finding] = field(default_factory=list)
    account_targeted: bool = False


def _words(node: Term | Phrase) -> list[str]:
    patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
    return [p.glob for p in patterns]


def describe(node: Node) -> str:
    """What one part matches, in a sentence."""
    if isinstance(node, Term | Phrase):
        words = _words(node)
        kind = pattern_kind(node)
        shown = " ".join(words)
        if isinstance(node, Term) and node.case_sensitive:
            return f"the word {node.text + ('*' if node.wildcard else '')!r} with exactly this upper and lower case"
        if kind == "phrase" or len(words) > 1:
            return f"the words '{shown}' one right after the other (punctuation between them does not matter)"
        if kind == "prefix":
            return f"any word that starts with '{words[0][:-1]}'"
        if kind == "wildcard":
            return f"any word like '{words[0]}' (* stands for any letters or digits, or none)"
        return f"the whole word '{words[0]}', in any case, with or without accents"
    if isinstance(node, Regex):
        return f"words matching the regex {node.pattern!r} (whole words, lower case, without accents)"
    if isinstance(node, Near):
        order = "the first before the second" if node.ordered else "in either order"
        return (
            f"{label(node.left)} and {label(node.right)} with at most {node.distance} "
            f"word{'s' if node.distance != 1 else ''} between them, {order}"
        )
    if isinstance(node, Field):
        return {
            "lang": f"posts in the language '{node.value}' (or a variant such as '{node.value}-xx')",
            "platform": f"posts from the platform '{node.value}'",
            "has": f"posts with at least one {node.value}",
            "domain": f"posts with a link to {node.value} or one of its subdomains",
            "hashtag": f"posts tagged #{node.value} (any case, with or without accents)",
            "url": f"posts with a link that starts with {node.value}",
            "author": f"posts by the account with pseudonym {node.value}",
            "mention": f"posts that mention the account with pseudonym {node.value}",
        }[node.name]
    return ""


def _parts(node: Node, negated: bool, out: list[Part]) -> None:
    if isinstance(node, And | Or):
        for child in node.children:
            _parts(child, negated, out)
    elif isinstance(node, Not):
        _parts(node.child, not negated, out)
    else:
        if isinstance(node, Term | Phrase):
            kind = pattern_kind(node)
        else:
            kind = {Regex: "regex", Near: "near", Field: "filter"}[type(node)]
        out.append(Part(label(node), kind, describe(node), negated))


def _unsegmented(text: str) -> bool:
    return any(lo <= ord(ch) <= hi for ch in text for lo, hi in UNSEGMENTED_RANGES)


def _findings(tree: Node, query: str) -> list[Finding]:
    found: list[Finding] = []
    for node in walk(tree):
        if isinstance(node, Term | Phrase):
            words = _words(node)
            stems = [w.split("*")[0] for w in words]
            if len(words) == 1 and words[0] in _COMMON_WORDS:
                found.append(Finding(label(node), "a very common word: on its own it matches a large share of posts"))
            elif all(len(w) <= 2 and "*" not in w and not _unsegmented(w) for w in words):
                found.append(Finding(label(node), "a very short word: it matches many unrelated posts"))
            if any("*" in w for w in words) and min(len(s) for s in stems if s) <= 3:
                found.append(Finding(label(node), "a wildcard after 3 letters or fewer matches very many words"))
            if len(words) == 1 and _unsegmented(words[0]):
                found.append(
                    Finding(label(node), "one Chinese, Japanese, Korean or Thai character is found inside many words")
                )
            if isinstance(node, Term) and node.case_sensitive and node.text == node.text.lower():
                found.append(Finding(label(node), "{...} asks for this exact case, but the word has no capitals"))
        elif isinstance(node, Regex):
            python = compile_regex(node.pattern).python
            if "{0,}" in python and ("[^\\U0000000a]" in python):
                found.append(Finding(label(node), "'.*' in a regex can span many words: the regex may match too much"))
        elif isinstance(node, Near) and node.distance >= WIDE_NEAR:
            found.append(Finding(label(node), f"NEAR/{node.distance} is so wide it is almost an AND"))
        elif isinstance(node, Field) and node.name in ACCOUNT_FIELDS:
            found.append(
                Finding(
                    label(node),
                    "targets one account: such a watch needs a recorded authorization approved by a second person",
                )
            )
        elif isinstance(node, And):
            langs = [c for c in node.children if isinstance(c, Field) and c.name == "lang"]
            if len({c.value.split("-")[0] for c in langs}) > 1:
                found.append(
                    Finding(label(node), "a post must pass every lang: joined by AND; use OR between languages")
                )
    for word in ("and", "or", "not"):
        for token in tokenize(query):
            if token.text == word and query[token.start : token.end] == word:
                hint = f"'{word}' in lower case is a word to look for; write {word.upper()} for the operator"
                found.append(Finding(word, hint))
                break
    return found


def lint(tree: Node, query: str = "") -> Report:
    """The parts of ``tree`` and warnings about them (``query``: the text, for operator hints)."""
    parts: list[Part] = []
    _parts(tree, False, parts)
    targeted = any(isinstance(n, Field) and n.name in ACCOUNT_FIELDS for n in walk(tree))
    return Report(parts=parts, findings=_findings(tree, query), account_targeted=targeted)


def parts_found(tree: Node, post: Post) -> list[tuple[Part, list[tuple[int, int]] | bool]]:
    """For every part of ``tree``: where it occurs in ``post`` (spans), or whether a filter passes."""
    out: list[tuple[Part, list[tuple[int, int]] | bool]] = []
    parts: list[Part] = []
    nodes: list[Node] = []

    def collect(node: Node, negated: bool) -> None:
        if isinstance(node, And | Or):
            for child in node.children:
                collect(child, negated)
        elif isinstance(node, Not):
            collect(node.child, not negated)
        else:
            before = len(parts)
            _parts(node, negated, parts)
            nodes.extend([node] * (len(parts) - before))

    collect(tree, False)
    tokens = tokenize(post.text)
    for part, node in zip(parts, nodes, strict=True):
        if isinstance(node, Field):
            out.append((part, field_matches(node.name, node.value, post)))
        else:
            spans = sorted({(tokens[i].start, tokens[j - 1].end) for i, j in reference_occurrences(node, post)})
            out.append((part, spans))
    return out
