"""What a term or phrase asks of the post's words: one :class:`WordPattern` per word.

A word written in a query (``flood``, ``evacuat*``, ``evac*ate``, ``e-mail``,
``{US}``) becomes one or more word patterns, one per word of the post it has to
match in a row:

* the written word is folded and split into words exactly like post text
  (``e-mail`` -> ``e``, ``mail``; ``地震`` -> ``地``, ``震``);
* a ``*`` stands for any run of letters or digits (possibly none) *inside one
  word*: ``evacuat*`` matches "evacuation", ``evac*ate`` "evacuate" and
  "evacate"; it must touch a letter or digit on its left, and at least
  :data:`MIN_PREFIX` letters or digits must come before the first ``*``;
* a case-sensitive word (``{US}``) also carries its letters with their case kept
  (:func:`~watchfloor.query.text.light_fold`): the post's word must have the same.

Both the matching engine and the reference evaluator take their patterns from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import QuerySyntaxError
from .text import UNSEGMENTED_RANGES, light_fold, tokenize
from .tree import Phrase, Term

__all__ = ["MIN_PREFIX", "WordPattern", "glob_matches", "phrase_patterns", "term_patterns", "word_patterns"]

MIN_PREFIX = 2  # letters or digits before the first *


@dataclass(frozen=True, slots=True)
class WordPattern:
    """One word to match: ``glob`` is folded (``*`` = any run of word characters);
    ``cased`` is the same with case kept, for case-sensitive words only."""

    glob: str
    cased: str | None = None

    @property
    def is_exact(self) -> bool:
        return "*" not in self.glob

    @property
    def is_prefix(self) -> bool:
        return self.glob.endswith("*") and "*" not in self.glob[:-1]


@lru_cache(maxsize=65536)
def _glob_regex(glob: str) -> re.Pattern[str]:
    return re.compile("(?s:" + ".*".join(re.escape(piece) for piece in glob.split("*")) + r")\Z")


def glob_matches(glob: str, word: str) -> bool:
    """True if ``word`` is matched by ``glob`` (``*`` = any run of characters, possibly empty)."""
    if "*" not in glob:
        return glob == word
    return _glob_regex(glob).match(word) is not None


def _unsegmented(word: str) -> bool:
    return any(lo <= ord(ch) <= hi for ch in word for lo, hi in UNSEGMENTED_RANGES)


def word_patterns(written: str, at: int, case_sensitive: bool = False) -> list[WordPattern]:
    """The word patterns of one written word (``at``: its position in the query, for errors).

    ``written`` may end with ``*`` or hold ``*`` inside; raises :class:`QuerySyntaxError`.
    """
    segments = written.split("*")
    seg_tokens = [tokenize(segment) for segment in segments]
    offset = 0
    for k in range(len(segments) - 1):
        left, right = segments[k], segments[k + 1]
        left_tokens, right_tokens = seg_tokens[k], seg_tokens[k + 1]
        star = offset + len(left)
        offset = star + 1
        if k == 0 and left == "":
            raise QuerySyntaxError(
                "* cannot start a word; write it after at least 2 letters or digits, as in evacuat* or evac*ate",
                at + star,
            )
        if not (left_tokens and left_tokens[-1].end == len(left)):
            raise QuerySyntaxError("* must come right after a letter or digit", at + star)
        right_word = bool(right_tokens) and right_tokens[0].start == 0
        if right and not right_word:
            raise QuerySyntaxError("* must be followed by a letter, a digit or the end of the word", at + star + 1)
        if _unsegmented(left_tokens[-1].text) or (right_word and _unsegmented(right_tokens[0].text)):
            raise QuerySyntaxError(
                "* does not work on Chinese, Japanese, Korean or Thai text, which is found inside longer "
                "runs of text anyway; leave the * out",
                at + star,
            )
    globs: list[str] = []
    cased: list[str] = []
    for k, (segment, tokens) in enumerate(zip(segments, seg_tokens, strict=True)):
        texts = [token.text for token in tokens]
        cased_texts = [light_fold(segment[token.start : token.end]) for token in tokens] if case_sensitive else []
        if k > 0:
            globs[-1] += "*" + (texts.pop(0) if texts else "")
            if case_sensitive:
                cased[-1] += "*" + (cased_texts.pop(0) if cased_texts else "")
        globs.extend(texts)
        cased.extend(cased_texts)
    if not globs:
        raise QuerySyntaxError(f"'{written}' has no letters or digits to match", at)
    for glob in globs:
        if "*" in glob and len(glob.split("*")[0]) < MIN_PREFIX:
            raise QuerySyntaxError(
                f"* needs at least {MIN_PREFIX} letters or digits before it", at + written.index("*")
            )
    if case_sensitive:
        return [WordPattern(g, c) for g, c in zip(globs, cased, strict=True)]
    return [WordPattern(g) for g in globs]


def term_patterns(term: Term) -> tuple[WordPattern, ...]:
    written = term.text + ("*" if term.wildcard else "")
    return tuple(_cached_word_patterns(written, term.case_sensitive))


def phrase_patterns(phrase: Phrase) -> tuple[WordPattern, ...]:
    return tuple(p for word in phrase.words for p in _cached_word_patterns(word, False))


@lru_cache(maxsize=65536)
def _cached_word_patterns(written: str, case_sensitive: bool) -> tuple[WordPattern, ...]:
    return tuple(word_patterns(written, 0, case_sensitive))


def pattern_kind(node: Term | Phrase) -> str:
    """The kind an explanation gives the part: phrase, term, prefix or wildcard."""
    if isinstance(node, Phrase):
        return "phrase"
    patterns = term_patterns(node)
    if all(p.is_exact for p in patterns):
        return "term"
    if all(p.is_exact for p in patterns[:-1]) and patterns[-1].is_prefix:
        return "prefix"
    return "wildcard"
