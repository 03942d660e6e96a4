"""The regular-expression dialect of watch queries: ``/.../``.

A regex is matched against the post's *words*: folded (lower case, no accents, see
:mod:`watchfloor.query.text`) and separated by single spaces, without punctuation,
emoji or line breaks -- the same words that terms and phrases see.  A match must
start at the beginning of a word and end at the end of one, so ``/colou?r/``
finds "color" and "Colour" but not "colours", and ``/bomb(s|ing)? threat/`` spans
two words.

The dialect is a small, bounded subset, parsed here (not by ``re``) so that every
error points at its place and both engines get exactly the same meaning:

* characters; ``.`` (any character of a word, or the space between words);
  classes ``[abc]``, ``[a-z]``, ``[^abc]``; ``\\d`` (0-9), ``\\w`` (a character of
  a word), ``\\s`` (the space between words) and ``\\D``, ``\\W``, ``\\S``;
  ``\\`` before punctuation for the character itself;
* groups ``(...)`` and ``(?:...)``, alternatives ``a|b``;
* repeats ``?``, ``*``, ``+``, ``{m}``, ``{m,}``, ``{m,n}`` (and their lazy forms).

Refused, because they either cannot occur in folded words or can make a
backtracking engine take exponential or runaway time (the matching engine is an
automaton and never backtracks, but the reference evaluator and any other backend
must stay safe too): upper-case or accented letters and punctuation (they never
occur), anchors and ``\\b`` (a regex always starts and ends at word boundaries),
back-references, look-arounds, flags, nested repeats (``(a+)+``), repeated
alternatives (``(a|ab)*``), more than :data:`MAX_OPEN_REPEATS` open-ended repeats,
counts above :data:`MAX_REPEAT`, a pattern longer than :data:`MAX_REGEX_CHARS`,
and a pattern that can match nothing at all.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import hyperscan

from .text import UNSEGMENTED_RANGES, fold

__all__ = ["MAX_OPEN_REPEATS", "MAX_REGEX_CHARS", "MAX_REPEAT", "CompiledRegex", "RegexError", "compile_regex"]

MAX_REGEX_CHARS = 200
MAX_REPEAT = 100
MAX_OPEN_REPEATS = 2

_NEWLINE = (10, 10)
_SPACE = (32, 32)
_DIGITS = (48, 57)


class RegexError(ValueError):
    """A regex that cannot be used; ``offset`` is the position inside the pattern."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message, offset)
        self.message = message
        self.offset = offset


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class _Chars:
    """One character out of ``ranges`` (or, when ``negated``, out of none of them)."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool
    at: int


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Regex, ...]
    at: int


@dataclass(frozen=True, slots=True)
class _Alt:
    options: tuple[_Regex, ...]
    at: int


@dataclass(frozen=True, slots=True)
class _Repeat:
    item: _Regex
    low: int
    high: int | None  # None: open-ended
    at: int


_Regex = _Chars | _Seq | _Alt | _Repeat

_ANY = ((10, 10),)  # negated: every character but a line break
_CLASS_ESCAPES: dict[str, tuple[tuple[tuple[int, int], ...], bool]] = {
    "d": ((_DIGITS,), False),
    "D": ((_NEWLINE, _DIGITS), True),
    "w": ((_NEWLINE, _SPACE), True),
    "W": ((_SPACE,), False),
    "s": ((_SPACE,), False),
    "S": ((_NEWLINE, _SPACE), True),
}
_PUNCTUATION = set("\\/.*+?()[]{}|^$-!\"#%&',:;<=>@_`~")


def _literal_problem(ch: str) -> str | None:
    """Why ``ch`` can never occur in the words a regex sees, or None if it can."""
    if ch == " ":
        return None
    word_char = ch.isalnum() or ch == "_" or unicodedata.category(ch)[0] == "M"
    folded = fold(ch)
    if word_char and folded == ch:
        return None
    if word_char and folded:
        return f"'{ch}' never occurs: a regex sees the post's words in lower case without accents; write '{folded}'"
    return f"'{ch}' never occurs: a regex sees the post's words separated by single spaces, without punctuation"


def _unsegmented_literal(node: _Regex) -> bool:
    if not isinstance(node, _Chars) or node.negated or len(node.ranges) != 1:
        return False
    lo, hi = node.ranges[0]
    return lo == hi and any(a <= lo <= b for a, b in UNSEGMENTED_RANGES)


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def parse(self) -> _Regex:
        node = self.alternatives()
        if self.i < len(self.p):
            assert self.p[self.i] == ")"
            raise RegexError("this ')' has no matching '('", self.i)
        return node

    def alternatives(self) -> _Regex:
        at = self.i
        options = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options), at)

    def sequence(self) -> _Regex:
        at = self.i
        items: list[_Regex] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.repeat(self.atom()))
        if not items:
            raise RegexError("an empty alternative matches nothing", at)
        for before, item in pairwise(items):
            if _unsegmented_literal(before) and _unsegmented_literal(item):
                a, b = chr(before.ranges[0][0]), chr(item.ranges[0][0])  # type: ignore[union-attr]
                raise RegexError(
                    f"in Chinese, Japanese, Korean and Thai every character is a word of its own, and a regex "
                    f"sees a space between them: write '{a} {b}', or leave out the slashes to find '{a}{b}' anywhere",
                    item.at,
                )
        return items[0] if len(items) == 1 else _Seq(tuple(items), at)

    def repeat(self, item: _Regex) -> _Regex:
        at = self.i
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.i += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        elif ch == "{":
            bounds = re.compile(r"\{(\d{1,4})(?:(,)(\d{1,4})?)?\}").match(self.p, self.i)
            if bounds is None:
                raise RegexError("'{' starts a repeat such as {2,5}", at)
            self.i = bounds.end()
            low = int(bounds[1])
            high = low if bounds[2] is None else (int(bounds[3]) if bounds[3] is not None else None)
            if high is not None and high < low:
                raise RegexError(f"this repeat asks for at least {low} but at most {high}", at)
            if max(low, high or 0) > MAX_REPEAT:
                raise RegexError(f"repeat counts above {MAX_REPEAT} are not allowed", at)
        else:
            return item
        if self.peek() == "?":  # lazy: the same matches for a whole-word matcher
            self.i += 1
        elif self.peek() == "+":
            raise RegexError("possessive repeats (*+, ++) are not supported", self.i)
        if self.peek() in ("*", "+", "?", "{"):
            raise RegexError("a repeat cannot be repeated again; use a group", self.i)
        return _Repeat(item, low, high, at)

    def atom(self) -> _Regex:
        at = self.i
        ch = self.peek()
        if ch == "(":
            self.i += 1
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise RegexError("look-arounds, named groups and flags are not supported; use (...) or (?:...)", at)
            if self.peek() == ")":
                raise RegexError("these parentheses are empty", at)
            inner = self.alternatives()
            if self.peek() != ")":
                raise RegexError("this '(' is never closed", at)
            self.i += 1
            return inner
        if ch == "[":
            return self.char_class()
        if ch == ".":
            self.i += 1
            return _Chars(_ANY, True, at)
        if ch in ("*", "+", "?", "{"):
            raise RegexError(f"'{ch}' has nothing before it to repeat", at)
        if ch in ("^", "$"):
            raise RegexError(
                "anchors are not needed: a regex always starts at the beginning of a word and ends at the end of one",
                at,
            )
        if ch == "\\":
            return self.escape(in_class=False)
        self.i += 1
        return self.literal(ch, at)

    def literal(self, ch: str, at: int) -> _Chars:
        problem = _literal_problem(ch)
        if problem:
            raise RegexError(problem, at)
        return _Chars(((ord(ch), ord(ch)),), False, at)

    def escape(self, in_class: bool) -> _Chars:
        at = self.i
        if self.i + 1 >= len(self.p):
            raise RegexError("a '\\' must be followed by a character", at)
        ch = self.p[self.i + 1]
        self.i += 2
        if ch in _CLASS_ESCAPES:
            ranges, negated = _CLASS_ESCAPES[ch]
            if in_class and (negated or ch == "W"):
                raise RegexError(f"\\{ch} is not allowed inside [...]; write it outside", at)
            return _Chars(ranges, negated, at)
        if ch == "b" or ch == "B":
            raise RegexError("\\b is not needed: a regex always starts and ends at word boundaries", at)
        if ch.isdigit():
            raise RegexError("back-references are not supported", at)
        if ch in _PUNCTUATION or ch == " ":
            return self.literal(ch, at)
        raise RegexError(f"unknown escape \\{ch}", at)

    def char_class(self) -> _Chars:
        at = self.i
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            ch = self.peek()
            if ch == "":
                raise RegexError("this '[' is never closed", at)
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            item_at = self.i
            if ch == "\\":
                item = self.escape(in_class=True)
                ranges.extend(item.ranges)
                continue
            self.i += 1
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                high = self.p[self.i + 1]
                if high == "\\":
                    raise RegexError("write the end of a range as a plain character", self.i + 1)
                self.i += 2
                if ord(high) < ord(ch):
                    raise RegexError(f"the range {ch}-{high} is backwards", item_at)
                if not negated:
                    for end, end_at in ((ch, item_at), (high, self.i - 1)):
                        problem = _literal_problem(end)
                        if problem:
                            raise RegexError(problem, end_at)
                ranges.append((ord(ch), ord(high)))
                continue
            if not negated:
                problem = _literal_problem(ch)
                if problem:
                    raise RegexError(problem, item_at)
            ranges.append((ord(ch), ord(ch)))
        if negated:
            ranges.append(_NEWLINE)
        return _Chars(tuple(sorted(set(ranges))), negated, at)


# --------------------------------------------------------------------------- checks


def _is_repeat(node: _Regex) -> bool:
    return isinstance(node, _Repeat) and (node.high is None or node.high > 1)


def _walk(node: _Regex):
    yield node
    if isinstance(node, _Seq):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, _Alt):
        for option in node.options:
            yield from _walk(option)
    elif isinstance(node, _Repeat):
        yield from _walk(node.item)


def _check(node: _Regex) -> None:
    open_repeats = [n for n in _walk(node) if isinstance(n, _Repeat) and n.high is None]
    if len(open_repeats) > MAX_OPEN_REPEATS:
        raise RegexError(
            f"at most {MAX_OPEN_REPEATS} open-ended repeats (*, +, {{m,}}) are allowed; "
            "bound the others, e.g. {1,20}",
            open_repeats[MAX_OPEN_REPEATS].at,
        )
    for outer in _walk(node):
        if not _is_repeat(outer):
            continue
        assert isinstance(outer, _Repeat)
        for inner in _walk(outer.item):
            if _is_repeat(inner):
                raise RegexError(
                    "a repeat inside a repeat, such as (a+)+, can take exponential time to match; write it without",
                    inner.at,
                )
            if isinstance(inner, _Alt):
                raise RegexError(
                    "repeated alternatives, such as (a|ab)*, can take exponential time to match; "
                    "use a class such as [ab] or repeat each alternative on its own",
                    inner.at,
                )
    if _min_length(node) == 0:
        raise RegexError("this regex can match nothing at all; it must match at least one character", 0)


def _min_length(node: _Regex) -> int:
    if isinstance(node, _Chars):
        return 1
    if isinstance(node, _Seq):
        return sum(map(_min_length, node.items))
    if isinstance(node, _Alt):
        return min(map(_min_length, node.options))
    return node.low * _min_length(node.item)


# --------------------------------------------------------------------------- output


def _emit(node: _Regex, char: str) -> str:
    """``node`` as regex text; ``char`` formats one code point (per engine)."""
    if isinstance(node, _Chars):
        parts = "".join(
            char.format(lo) if lo == hi else char.format(lo) + "-" + char.format(hi) for lo, hi in node.ranges
        )
        return f"[^{parts}]" if node.negated else f"[{parts}]"
    if isinstance(node, _Seq):
        return "".join(_emit(item, char) for item in node.items)
    if isinstance(node, _Alt):
        return "(?:" + "|".join(_emit(option, char) for option in node.options) + ")"
    high = "" if node.high is None else str(node.high)
    bounds = f"{{{node.low}}}" if node.high == node.low else f"{{{node.low},{high}}}"
    return f"(?:{_emit(node.item, char)}){bounds}"


@dataclass(frozen=True, slots=True)
class CompiledRegex:
    """One checked regex, written out for each engine.

    ``python`` must *fullmatch* words joined by single spaces; ``hyperscan`` is the
    same pattern for the engine's word stream, framed by the spaces around words.
    """

    pattern: str
    python: str
    hyperscan: str


HYPERSCAN_REGEX_FLAGS = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SOM_LEFTMOST


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> CompiledRegex:
    """``pattern`` (the text between the slashes) checked and translated; raises :class:`RegexError`."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise RegexError(f"a regex may be at most {MAX_REGEX_CHARS} characters long", MAX_REGEX_CHARS)
    pattern_unescaped = pattern
    tree = _Parser(pattern_unescaped).parse()
    _check(tree)
    python = _emit(tree, "\\U{:08x}")
    engine = " (?:" + _emit(tree, "\\x{{{:x}}}") + ") "
    try:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(expressions=[engine.encode()], ids=[0], elements=1, flags=[HYPERSCAN_REGEX_FLAGS])
    except hyperscan.error as error:
        raise RegexError(f"this regex is too complex for the matching engine ({error})", 0) from None
    return CompiledRegex(pattern, python, engine)
