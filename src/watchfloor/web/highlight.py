"""Post text as safe HTML with every matched span wrapped in ``<mark>``.

Spans come from :class:`~watchfloor.model.Explanation` hits as ``[start, end)`` character
offsets into ``Post.text``. They may overlap (two terms of one watch hitting the same
words), nest, touch, be empty, or — from a buggy or older matcher — point past the end of
the text. Every case yields well-formed HTML: the text is cut at every span boundary,
each piece is escaped on its own, and consecutive covered pieces become ONE ``<mark>``
whose ``title`` lists the terms that matched there. No character of the post ever
reaches the page unescaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from markupsafe import Markup, escape

from watchfloor.model import TermHit

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of the text, ``[start, end)``, with the terms whose spans cover all of it."""

    start: int
    end: int
    terms: frozenset[str]


def matched_pieces(text: str, hits: Iterable[TermHit]) -> list[Piece]:
    """``text`` cut at every span boundary, in order; uncovered runs have no terms.

    Spans are clamped to the text; empty or inverted spans are ignored.
    """
    n = len(text)
    spans: list[tuple[int, int, str]] = []
    bounds = {0, n}
    for hit in hits:
        for start, end in hit.spans:
            s, e = max(0, min(start, n)), max(0, min(end, n))
            if s < e:
                spans.append((s, e, hit.term))
                bounds.update((s, e))
    points = sorted(bounds)
    pieces: list[Piece] = []
    for a, b in pairwise(points):
        terms = frozenset(t for s, e, t in spans if s <= a and b <= e)
        if pieces and pieces[-1].terms and terms:
            # merge consecutive covered runs into one <mark> listing every term involved
            last = pieces.pop()
            pieces.append(Piece(last.start, b, last.terms | terms))
        else:
            pieces.append(Piece(a, b, terms))
    return pieces


def _render(text: str, pieces: Iterable[Piece], start: int, end: int) -> str:
    out: list[str] = []
    for piece in pieces:
        a, b = max(piece.start, start), min(piece.end, end)
        if a >= b:
            continue
        chunk = escape(text[a:b])
        if piece.terms:
            title = escape("matched: " + ", ".join(sorted(piece.terms)))
            out.append(f'<mark title="{title}">{chunk}</mark>')
        else:
            out.append(str(chunk))
    return "".join(out)


def highlighted(text: str, hits: Iterable[TermHit]) -> Markup:
    """The whole text, escaped, with matched spans in ``<mark>``."""
    return Markup(_render(text, matched_pieces(text, hits), 0, len(text)))


def excerpt_window(text: str, pieces: list[Piece], *, width: int, lead: int) -> tuple[int, int]:
    """The ``[start, end)`` window of at most ``width`` characters an excerpt shows:
    the first match with ``lead`` characters of context before it, nudged to word starts."""
    n = len(text)
    if n <= width:
        return 0, n
    first = next((p.start for p in pieces if p.terms), 0)
    start = max(0, first - min(lead, width // 2))  # the match always lies inside the window
    if start > 0:
        # begin at a word: skip forward to just after the next space, if one is near
        space = text.find(" ", start, first)
        if space != -1 and space - start < 20:
            start = space + 1
    end = min(n, start + width)
    if end == n:
        start = max(0, n - width)
    return start, end


def highlighted_excerpt(text: str, hits: Iterable[TermHit], *, width: int = 220, lead: int = 60) -> Markup:
    """At most ``width`` characters around the first match, escaped and highlighted,
    with an ellipsis wherever the text was cut."""
    pieces = matched_pieces(text, hits)
    start, end = excerpt_window(text, pieces, width=width, lead=lead)
    body = _render(text, pieces, start, end)
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    return Markup(prefix + body + suffix)
