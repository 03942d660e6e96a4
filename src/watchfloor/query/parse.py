"""Watch query text -> :mod:`watchfloor.query.tree`, by recursive descent.

Grammar, loosest binding first::

    query     := or_expr END
    or_expr   := and_expr ( "OR" and_expr )*
    and_expr  := unary ( ["AND"] unary )*         -- no operator between two parts means AND
    unary     := "NOT" unary | near_expr
    near_expr := primary ( ("NEAR/n" | "ONEAR/n") primary )*     -- left to right
    primary   := WORD | WORD* | WO*RD | {WORD} | "phrase" | /regex/ | name:value | "(" or_expr ")"

``AND``, ``OR``, ``NOT``, ``NEAR/n`` and ``ONEAR/n`` are operators only in upper
case.  ``NEAR`` works between words, phrases, regexes and groups of them joined by
``OR`` (or by ``NEAR`` again).  A query must be able to match only through a word,
phrase or regex, or a selective filter (``hashtag:``, ``domain:``, ``url:``,
``author:``, ``mention:``): every alternative needs at least one of those that is
not under ``NOT`` (so ``NOT drill``, ``lang:en`` and ``bomb OR NOT drill`` are
refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import QuerySyntaxError
from .fields import FieldValueError, normalise_value
from .patterns import phrase_patterns, word_patterns
from .regex import RegexError, compile_regex
from .text import tokenize
from .tree import ANCHOR_FIELDS, FIELD_NAMES, And, Field, Near, Node, Not, Or, Phrase, Regex, Term

__all__ = ["MAX_DEPTH", "MAX_DISTANCE", "MAX_PART_CHARS", "QuerySyntaxError", "parse"]

MAX_DEPTH = 64  # nested parentheses, NOTs and NEARs (also each NEAR of a chain)
MAX_DISTANCE = 100  # words allowed between the two sides of a NEAR
# one word or phrase: its pattern must fit the matcher's limit (Hyperscan refuses patterns of
# about 16 kB, which 4000 Chinese characters — each a word of its own — exceed)
MAX_PART_CHARS = 1000

_QUOTES = '"“”„'
_OPERATORS = ("AND", "OR", "NOT")
_FIELD_NAME = re.compile(r"[A-Za-z_]+")
_NEAR = re.compile(r"(O?)NEAR(?:/(\d{1,6}))?")
_NEAR_LIKE = re.compile(r"O?NEAR/.*|(?i:o?near/\d+)")
_FIELD_EXAMPLES = {
    "lang": "lang:en",
    "platform": "platform:bluesky",
    "has": "has:link",
    "domain": "domain:example.org",
    "hashtag": "hashtag:flood",
    "mention": "mention:p:0123456789abcdef",
    "url": "url:example.org/news",
    "author": "author:p:0123456789abcdef",
}


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "(" ")" "AND" "OR" "NOT" "NEAR" "WORD" "CASE" "PHRASE" "REGEX" "END"
    text: str
    start: int
    end: int
    distance: int = 0
    ordered: bool = False


def _lex(query: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(_Lexeme(ch, ch, i, i + 1))
            i += 1
        elif ch in _QUOTES:
            close = next((j for j in range(i + 1, n) if query[j] in _QUOTES), -1)
            if close == -1:
                raise QuerySyntaxError("this quote is never closed", i)
            out.append(_Lexeme("PHRASE", query[i : close + 1], i, close + 1))
            i = close + 1
        elif ch == "/":
            j = i + 1
            while j < n and query[j] != "/":
                j += 2 if query[j] == "\\" else 1
            if j >= n:
                raise QuerySyntaxError("this regex is never closed: write it between two slashes, as in /colou?r/", i)
            if j + 1 < n and not (query[j + 1].isspace() or query[j + 1] in "()"):
                raise QuerySyntaxError("a regex ends at its closing slash; flags such as /i are not supported", j + 1)
            out.append(_Lexeme("REGEX", query[i : j + 1], i, j + 1))
            i = j + 1
        elif ch == "{":
            close = query.find("}", i + 1)
            if close == -1:
                raise QuerySyntaxError("this '{' is never closed: write a case-sensitive word as {NASA}", i)
            inner = query[i + 1 : close]
            if not inner.strip() or any(c.isspace() or c in _QUOTES or c in "(){" for c in inner):
                raise QuerySyntaxError("{...} holds exactly one word, written with the case it must have", i)
            out.append(_Lexeme("CASE", query[i : close + 1], i, close + 1))
            i = close + 1
        else:
            j = i
            while j < n and not (query[j].isspace() or query[j] in "()" or query[j] in _QUOTES):
                j += 1
            word = query[i:j]
            near = _NEAR.fullmatch(word)
            if near:
                if near[2] is None:
                    raise QuerySyntaxError(f"{word} needs a distance in words, as in {word}/5", i)
                distance = int(near[2])
                if distance > MAX_DISTANCE:
                    raise QuerySyntaxError(
                        f"{word} allows at most {MAX_DISTANCE} words between its sides; use AND for anything further",
                        i,
                    )
                out.append(_Lexeme("NEAR", word, i, j, distance, ordered=near[1] == "O"))
            elif _NEAR_LIKE.fullmatch(word):
                raise QuerySyntaxError(
                    f"'{word}' is not an operator: write NEAR/5 or ONEAR/5 in capitals with a number of words "
                    "(to search for the word near, write it without the slash)",
                    i,
                )
            else:
                out.append(_Lexeme(word if word in _OPERATORS else "WORD", word, i, j))
            i = j
    out.append(_Lexeme("END", "", n, n))
    return out


# --------------------------------------------------------------------------- leaves


def _not_too_long(lexeme: _Lexeme) -> None:
    if len(lexeme.text) > MAX_PART_CHARS:
        what = "phrase" if lexeme.kind == "PHRASE" else "word"
        raise QuerySyntaxError(f"this {what} is longer than {MAX_PART_CHARS} characters", lexeme.start)


def _phrase(lexeme: _Lexeme) -> Phrase:
    _not_too_long(lexeme)
    content = lexeme.text[1:-1]
    if not tokenize(content.replace("*", " ")):
        raise QuerySyntaxError("this phrase has no letters or digits to match", lexeme.start)
    at = lexeme.start + 1
    for match in re.finditer(r"\S+", content):
        word_patterns(match.group(), at + match.start())
    phrase = Phrase(tuple(content.split()), lexeme.start, lexeme.end, lexeme.text)
    phrase_patterns(phrase)
    return phrase


def _regex(lexeme: _Lexeme) -> Regex:
    pattern = lexeme.text[1:-1]
    if not pattern:
        raise QuerySyntaxError("this regex is empty", lexeme.start)
    try:
        compile_regex(pattern)
    except RegexError as error:
        raise QuerySyntaxError(f"regex: {error.message}", lexeme.start + 1 + error.offset) from None
    return Regex(pattern, lexeme.start, lexeme.end, lexeme.text)


def _case_term(lexeme: _Lexeme) -> Term:
    _not_too_long(lexeme)
    inner = lexeme.text[1:-1]
    if inner.endswith("*"):
        stem, wildcard = inner[:-1], True
    else:
        stem, wildcard = inner, False
    word_patterns(inner, lexeme.start + 1, case_sensitive=True)
    return Term(stem, wildcard, True, lexeme.start, lexeme.end, lexeme.text)


def _field(lexeme: _Lexeme, colon: int) -> Field:
    written = lexeme.text[:colon]
    name = written.lower()
    if name not in FIELD_NAMES:
        known = ", ".join(f"{f}:" for f in FIELD_NAMES[:-1]) + f" and {FIELD_NAMES[-1]}:"
        raise QuerySyntaxError(
            f"unknown field '{written}:'; the fields are {known} "
            "(to search for the text itself, put it in double quotes)",
            lexeme.start,
        )
    raw = lexeme.text[colon + 1 :]
    at = lexeme.start + colon + 1
    if not raw:
        raise QuerySyntaxError(f"{name}: needs a value right after the colon, e.g. {_FIELD_EXAMPLES[name]}", at)
    try:
        value = normalise_value(name, raw)
    except FieldValueError as error:
        raise QuerySyntaxError(str(error), at) from None
    return Field(name, value, lexeme.start, lexeme.end, lexeme.text)


def _word(lexeme: _Lexeme) -> Term | Field:
    text, start = lexeme.text, lexeme.start
    if text[0] in "-!" and tokenize(text):
        raise QuerySyntaxError(f"to exclude a word write NOT {text.lstrip('-!')}, not {text}", start)
    colon = text.find(":")
    if colon > 0 and _FIELD_NAME.fullmatch(text[:colon]):
        return _field(lexeme, colon)
    if not tokenize(text.replace("*", " ")) and "*" not in text:
        hint = {"&&": "; write AND", "&": "; write AND", "||": "; write OR", "|": "; write OR"}
        raise QuerySyntaxError(f"'{text}' has no letters or digits to match{hint.get(text, '')}", start)
    _not_too_long(lexeme)
    word_patterns(text, start)
    wildcard = text.endswith("*")
    stem = text[:-1] if wildcard else text
    return Term(stem, wildcard, False, start, lexeme.end, text)


# --------------------------------------------------------------------------- grammar


def _near_operand_problem(node: Node) -> Node | None:
    """The part of ``node`` that cannot be one side of a NEAR, if any."""
    if isinstance(node, Term | Phrase | Regex | Near):
        return None
    if isinstance(node, Or):
        return next((p for child in node.children if (p := _near_operand_problem(child)) is not None), None)
    return node


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.lexemes = _lex(query)
        self.at = 0
        self.depth = 0

    def peek(self) -> _Lexeme:
        return self.lexemes[self.at]

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.at]
        self.at += 1
        return lexeme

    def node(self, cls: type[And] | type[Or], children: list[Node]) -> Node:
        if len(children) == 1:
            return children[0]
        start, end = children[0].start, children[-1].end
        return cls(tuple(children), start, end, self.query[start:end])

    def query_(self) -> Node:
        if self.peek().kind == "END":
            raise QuerySyntaxError("the query is empty", 0)
        node = self.or_expr()
        extra = self.peek()
        if extra.kind == ")":
            raise QuerySyntaxError("this ')' has no matching '('", extra.start)
        assert extra.kind == "END", extra  # every other lexeme starts or joins a part
        return node

    def or_expr(self, after: _Lexeme | None = None) -> Node:
        children = [self.and_expr(after)]
        while self.peek().kind == "OR":
            operator = self.take()
            children.append(self.and_expr(operator))
        return self.node(Or, children)

    def and_expr(self, after: _Lexeme | None) -> Node:
        children = [self.unary(after)]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                operator = self.take()
                children.append(self.unary(operator))
            elif kind in ("WORD", "CASE", "PHRASE", "REGEX", "(", "NOT"):
                children.append(self.unary(None))
            else:
                return self.node(And, children)

    def unary(self, after: _Lexeme | None) -> Node:
        if self.peek().kind != "NOT":
            return self.near_expr(after)
        operator = self.take()
        self.enter(operator)
        child = self.unary(operator)
        self.depth -= 1
        return Not(child, operator.start, child.end, self.query[operator.start : child.end])

    def near_expr(self, after: _Lexeme | None) -> Node:
        node = self.primary(after)
        chained = 0
        while self.peek().kind == "NEAR":
            operator = self.take()
            # a chain groups from the left, so each NEAR of it nests the tree one level deeper
            # (an unbounded chain made a tree deep enough to overflow the stack of whatever walks it)
            self.enter(operator)
            chained += 1
            right = self.primary(operator)
            for side in (node, right):
                problem = _near_operand_problem(side)
                if problem is not None:
                    raise QuerySyntaxError(_near_message(operator.text, problem), problem.start)
            node = Near(
                node,
                right,
                operator.distance,
                operator.ordered,
                node.start,
                right.end,
                self.query[node.start : right.end],
            )
        self.depth -= chained
        return node

    def enter(self, lexeme: _Lexeme) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests deeper than {MAX_DEPTH} levels", lexeme.start)

    def primary(self, after: _Lexeme | None) -> Node:
        lexeme = self.take()
        if lexeme.kind == "WORD":
            return _word(lexeme)
        if lexeme.kind == "CASE":
            return _case_term(lexeme)
        if lexeme.kind == "PHRASE":
            return _phrase(lexeme)
        if lexeme.kind == "REGEX":
            return _regex(lexeme)
        if lexeme.kind == "(":
            if self.peek().kind == ")":
                raise QuerySyntaxError("these parentheses are empty", lexeme.start)
            self.enter(lexeme)
            inner = self.or_expr(lexeme)
            self.depth -= 1
            close = self.peek()
            if close.kind != ")":
                raise QuerySyntaxError("this '(' is never closed", lexeme.start)
            self.take()
            return replace(
                inner,
                start=lexeme.start,
                end=close.end,
                source=self.query[lexeme.start : close.end],
            )
        found = "the end of the query" if lexeme.kind == "END" else f"'{lexeme.text}'"
        if after is None or after.kind == "(":
            if lexeme.kind in ("AND", "OR", "NEAR"):
                message = f"{lexeme.text} needs a word, phrase or group before it"
            else:
                message = f"expected a word, phrase or '(' but found {found}"
        else:
            message = f"{after.text} must be followed by a word, phrase or '(', not {found}"
        raise QuerySyntaxError(message, lexeme.start)


def _near_message(operator: str, part: Node) -> str:
    if isinstance(part, Field):
        what = f"'{part.source}' is a filter"
    elif isinstance(part, Not):
        what = f"'{part.source}' is a NOT"
    else:
        what = f"'{part.source}' is an AND; to want both near, write (a {operator} c) AND (b {operator} c)"
    return f"{operator} works between words, phrases, regexes and groups of them joined by OR; {what}"


def _unanchored_part(node: Node) -> Node | None:
    """The part of ``node`` that can match with none of its words present, if any."""
    if isinstance(node, Term | Phrase | Regex | Near):
        return None
    if isinstance(node, Field):
        return None if node.name in ANCHOR_FIELDS else node
    if isinstance(node, And):
        parts = [_unanchored_part(child) for child in node.children]
        return node if all(part is not None for part in parts) else None
    if isinstance(node, Or):
        return next((p for c in node.children if (p := _unanchored_part(c)) is not None), None)
    return node  # Not


def _unanchored_message(part: Node) -> str:
    if isinstance(part, Not):
        return (
            f"'{part.source}' on its own would match almost every post; "
            "add a word or phrase to look for, e.g. bomb NOT drill"
        )
    if isinstance(part, Field):
        return (
            f"a filter such as '{part.source}' cannot stand alone, it would match every "
            "post it lets through; add a word or phrase, e.g. bomb lang:en"
        )
    return (
        f"'{part.source}' can match without any word or phrase of the query; each side "
        "of an OR needs at least one word or phrase that is not under NOT"
    )


def parse(query: str) -> Node:
    """The tree of ``query``; raises :class:`QuerySyntaxError` for anything unusable."""
    try:
        node = _Parser(query).query_()
        part = _unanchored_part(node)
        if part is not None:
            raise QuerySyntaxError(_unanchored_message(part), part.start)
    except QuerySyntaxError as error:
        raise error.with_query(query) from None
    return node
