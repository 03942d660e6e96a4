"""Highlighting matched spans in post text: escaping, overlaps, bad spans, excerpts."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from watchfloor.model import TermHit
from watchfloor.web.highlight import highlighted, highlighted_excerpt, matched_pieces


def hit(term: str, *spans: tuple[int, int]) -> TermHit:
    return TermHit(term=term, kind="term", spans=spans)


def test_one_span() -> None:
    assert highlighted("a flood warning", [hit("flood", (2, 7))]) == (
        'a <mark title="matched: flood">flood</mark> warning'
    )


def test_no_hits_is_just_escaped_text() -> None:
    assert highlighted("<b>&</b>", []) == "&lt;b&gt;&amp;&lt;/b&gt;"


def test_everything_is_escaped_inside_and_outside_marks() -> None:
    text = '<script>alert("x")</script> & "bomb"'
    out = highlighted(text, [hit('<script>"', (0, 8))])
    assert out == (
        '<mark title="matched: &lt;script&gt;&#34;">&lt;script&gt;</mark>'
        "alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;bomb&#34;"
    )


def test_overlapping_spans_become_one_mark_listing_both_terms() -> None:
    text = "bomb threat now"
    out = highlighted(text, [hit('"bomb threat"', (0, 11)), hit("threat", (5, 11)), hit("bomb", (0, 4))])
    assert out == '<mark title="matched: &#34;bomb threat&#34;, bomb, threat">bomb threat</mark> now'


def test_partly_overlapping_spans() -> None:
    out = highlighted("abcdefgh", [hit("x", (1, 5)), hit("y", (3, 7))])
    assert out == 'a<mark title="matched: x, y">bcdefg</mark>h'


def test_separate_spans_stay_separate() -> None:
    out = highlighted("flood and flood", [hit("flood", (0, 5), (10, 15))])
    assert out == '<mark title="matched: flood">flood</mark> and <mark title="matched: flood">flood</mark>'


def test_spans_out_of_range_empty_or_inverted_are_harmless() -> None:
    bad = [hit("a", (3, 99)), hit("b", (7, 9)), hit("c", (2, 2)), hit("d", (4, 1)), hit("e", (-5, 1))]
    out = highlighted("short", bad)
    assert out == '<mark title="matched: e">s</mark>ho<mark title="matched: a">rt</mark>'


def test_offsets_are_characters_not_bytes() -> None:
    text = "🌊 Überflutung in Köln"
    start = text.index("Überflutung")
    out = highlighted(text, [hit("überflut*", (start, start + 8))])
    assert out == '🌊 <mark title="matched: überflut*">Überflut</mark>ung in Köln'


def test_pieces_cover_the_text_in_order() -> None:
    pieces = matched_pieces("abcdef", [hit("x", (1, 3)), hit("y", (4, 5))])
    assert [(p.start, p.end, sorted(p.terms)) for p in pieces] == [
        (0, 1, []),
        (1, 3, ["x"]),
        (3, 4, []),
        (4, 5, ["y"]),
        (5, 6, []),
    ]


def test_excerpt_of_a_short_text_is_the_whole_text() -> None:
    assert highlighted_excerpt("a flood", [hit("flood", (2, 7))]) == 'a <mark title="matched: flood">flood</mark>'


def test_excerpt_centres_on_the_first_match_with_ellipses() -> None:
    text = ("calm words " * 30) + "FLOOD here " + ("more calm " * 30)
    start = text.index("FLOOD")
    out = str(highlighted_excerpt(text, [hit("flood", (start, start + 5))], width=100, lead=30))
    assert out.startswith("…") and out.endswith("…")
    assert '<mark title="matched: flood">FLOOD</mark>' in out
    visible = html.unescape(re.sub(r"<[^>]+>", "", out)).strip("…")
    assert len(visible) <= 100
    assert visible in text
    assert not visible.startswith(" ")


def test_excerpt_near_the_end_shows_the_end() -> None:
    text = "x" * 300 + " flood"
    out = str(highlighted_excerpt(text, [hit("flood", (301, 306))], width=50))
    assert out.startswith("…") and not out.endswith("…")
    assert out.endswith('<mark title="matched: flood">flood</mark>')


def test_excerpt_without_hits_shows_the_start() -> None:
    out = str(highlighted_excerpt("y" * 300, [], width=40))
    assert out == "y" * 40 + "…"


spans = st.lists(st.tuples(st.integers(-5, 60), st.integers(-5, 60)), max_size=6)


@given(
    text=st.text(alphabet=st.sampled_from(list("ab <>&\"'é🌊\n")), max_size=50),
    hits=st.lists(st.tuples(st.sampled_from(["t1", "<t2>", '"t 3"']), spans), max_size=4),
)
def test_any_spans_give_well_formed_html_of_the_same_text(text: str, hits: list) -> None:
    out = str(highlighted(text, [TermHit(term, "term", tuple(s)) for term, s in hits]))
    assert out.count("<mark ") == out.count("</mark>")
    assert "<mark" not in re.sub(r'<mark title="[^"<>]*">|</mark>', "", out)
    assert not re.search(r"<(?!mark |/mark>)", out)  # no other tag can appear
    assert html.unescape(re.sub(r"<[^>]+>", "", out)) == text
