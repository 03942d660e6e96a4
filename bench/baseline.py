"""The naive baseline: every watch on its own, as Python ``re`` searches, one post at a time.

This is what matching looks like without a multi-pattern automaton: for each post,
for each watch, evaluate the boolean tree, each word, phrase, wildcard or regex a
Python regular expression searched in the post's word stream.  It shares the text
folding with the engine (so both mean the same thing and their hit counts can be
compared), and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from watchfloor.model import Post, Watch
from watchfloor.query import parse
from watchfloor.query.fields import field_matches
from watchfloor.query.patterns import phrase_patterns, term_patterns
from watchfloor.query.regex import compile_regex
from watchfloor.query.text import light_fold, tokenize, word_stream
from watchfloor.query.tree import And, Field, Near, Node, Not, Or, Phrase, Regex, Term

Check = Callable[["_PostView"], bool]


class _PostView:
    __slots__ = ("_cased", "post", "stream")

    def __init__(self, post: Post) -> None:
        self.post = post
        self.stream = word_stream(post.text)
        self._cased: str | None = None

    @property
    def cased(self) -> str:
        """The words with their case kept (for ``{Word}``), joined like the stream."""
        if self._cased is None:
            text = self.post.text
            words = [light_fold(text[t.start : t.end]) for t in tokenize(text)]
            self._cased = " " + " ".join(words) + " " if words else " "
        return self._cased


def _glob(glob: str) -> str:
    return "[^ ]*".join(re.escape(piece) for piece in glob.split("*"))


def _sequence_regex(globs: Sequence[str]) -> re.Pattern[str]:
    body = " " + " ".join(_glob(g) for g in globs)
    return re.compile("(?=" + (body if globs[-1].endswith("*") else body + " ") + ")")


def _starts(pattern: re.Pattern[str], stream: str, width: int) -> list[tuple[int, int]]:
    """Word occurrences [i, i+width) of a fixed-width pattern, from its match positions."""
    return [
        (stream.count(" ", 0, m.start() + 1) - 1, stream.count(" ", 0, m.start() + 1) - 1 + width)
        for m in pattern.finditer(stream)
    ]


def _occurrences(node: Node) -> Callable[[_PostView], list[tuple[int, int]]]:
    if isinstance(node, Term | Phrase):
        patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
        folded = _sequence_regex([p.glob for p in patterns])
        width = len(patterns)
        if isinstance(node, Term) and node.case_sensitive:
            cased = _sequence_regex([p.cased or "" for p in patterns])

            def both(view: _PostView) -> list[tuple[int, int]]:
                found = set(_starts(folded, view.stream, width))
                return [o for o in _starts(cased, view.cased, width) if o in found]

            return both
        return lambda view: _starts(folded, view.stream, width)
    if isinstance(node, Or):
        parts = [_occurrences(child) for child in node.children]
        return lambda view: [o for part in parts for o in part(view)]
    if isinstance(node, Near):
        left, right, distance, ordered = _occurrences(node.left), _occurrences(node.right), node.distance, node.ordered

        def near(view: _PostView) -> list[tuple[int, int]]:
            found = []
            for a in left(view):
                for b in right(view):
                    if a[1] <= b[0] and b[0] - a[1] <= distance:
                        found.append((a[0], b[1]))
                    if not ordered and b[1] <= a[0] and a[0] - b[1] <= distance:
                        found.append((b[0], a[1]))
            return found

        return near
    raise NotImplementedError(f"the baseline does not place {node!r} inside a NEAR")


def _check(node: Node) -> Check:
    if isinstance(node, Term | Phrase):
        occurrences = _occurrences(node)
        if isinstance(node, Term) and node.case_sensitive:
            return lambda view: bool(occurrences(view))
        patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
        search = _sequence_regex([p.glob for p in patterns]).search
        return lambda view: search(view.stream) is not None
    if isinstance(node, Regex):
        search = re.compile(" (?:" + compile_regex(node.pattern).python + ") ").search
        return lambda view: search(view.stream) is not None
    if isinstance(node, Near):
        occurrences = _occurrences(node)
        return lambda view: bool(occurrences(view))
    if isinstance(node, Field):
        name, value = node.name, node.value
        return lambda view: field_matches(name, value, view.post)
    if isinstance(node, And):
        parts = [_check(child) for child in node.children]
        return lambda view: all(part(view) for part in parts)
    if isinstance(node, Or):
        parts = [_check(child) for child in node.children]
        return lambda view: any(part(view) for part in parts)
    if isinstance(node, Not):
        part = _check(node.child)
        return lambda view: not part(view)
    raise TypeError(node)


class NaiveMatcher:
    """Matches posts against watches one watch at a time."""

    def __init__(self, watches: Sequence[Watch]) -> None:
        self._checks = [(w.id, _check(parse(w.query))) for w in watches]

    def match(self, post: Post) -> list[int]:
        view = _PostView(post)
        return [watch_id for watch_id, check in self._checks if check(view)]  # type: ignore[misc]
