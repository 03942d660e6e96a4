"""The watch language against hypothesis: any text at all, text made of the language's own
syntax, and huge queries. Whatever comes in, ``parse`` returns a tree or raises
``QuerySyntaxError`` pointing INSIDE the query (never another exception, never a hang);
a query that parses compiles, matches posts, lints and passes the protected-activity
guard without crashing — what the web app and the command line rely on to answer a bad
query with "this is wrong, here" instead of a server error.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.governance.guard import check_query
from watchfloor.governance.policy import load_policy
from watchfloor.model import Post
from watchfloor.query import QuerySyntaxError, compile_query, parse
from watchfloor.query.lint import lint, parts_found
from watchfloor.query.parse import MAX_DEPTH, MAX_PART_CHARS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY = load_policy()
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# pieces of the language, glued together at random: most results are nonsense in every
# interesting way (unbalanced, misplaced operators, bad fields, broken regexes)
SYNTAX = [
    "AND", "OR", "NOT", "NEAR/", "ONEAR/", "NEAR/3", "NEAR/101", "(", ")", '"', "“", "”", "*", "/", "{", "}",
    ":", "lang:", "platform:", "has:", "domain:", "hashtag:", "mention:", "author:", "url:", "en", "pt-br",
    "link", "p:0123456789abcdef", "example.org", "bomb", "school", "evacuat*", "地震", "ไฟไหม้", "🔥", "\u200b",
    "e\u0301", "/colou?r/", "/(a+)+/", "/[/", "/a{1,500}/", "\\", "-", "!", "&&", "#", "@", " ", "  ", "\n", "\t",
]  # fmt: skip
syntax_soup = st.lists(st.sampled_from(SYNTAX), max_size=25).map(" ".join) | st.lists(
    st.sampled_from(SYNTAX), max_size=25
).map("".join)
any_text = st.text(max_size=200) | st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
POST_TEXT = "Bomb threat reported at the school, evacuation under way 地震 #flood https://example.org/a"


def post(text: str = POST_TEXT) -> Post:
    return Post(
        platform="bluesky", native_id="at://fuzz/1", version="1", created_at=WHEN, received_at=WHEN, text=text,
        author="p:0123456789abcdef", lang="en", langs=("en",), links=("https://example.org/a",), hashtags=("flood",),
        mentions=("p:00000000000000bb",), raw=b"{}",
    )  # fmt: skip


def check(query: str, text: str = POST_TEXT) -> str:
    """What becomes of ``query``: "refused" (with a usable error) or "used" (and exercised)."""
    try:
        tree = parse(query)
    except QuerySyntaxError as error:
        assert error.message.strip(), query
        assert 0 <= error.position <= len(query), (query, error.position)
        assert error.query == query
        shown = str(error)  # the caret line must render for any text
        assert error.message in shown and "^" in shown
        return "refused"
    compiled = compile_query(tree)
    found = compiled.explain(post(text))
    if found is not None:
        for hit in found.hits:
            for start, end in hit.spans:
                assert 0 <= start <= end <= len(text), (query, hit)
    report = lint(tree, query)
    assert all(part.source for part in report.parts)
    parts_found(tree, post(text))
    check_query(tree, POLICY)
    return "used"


@FUZZ
@given(query=any_text)
def test_any_text_is_parsed_or_refused_with_a_position(query: str) -> None:
    check(query)


@FUZZ
@given(query=syntax_soup)
def test_the_language_s_own_pieces_in_any_order(query: str) -> None:
    check(query)


@FUZZ
@given(query=syntax_soup, text=st.text(max_size=120))
def test_a_usable_query_matches_any_post_without_crashing(query: str, text: str) -> None:
    check(query, text)


def test_the_soup_reaches_both_outcomes() -> None:
    """The strategies above are not vacuous: they produce usable and refused queries."""
    outcomes = {check(q) for q in ("bomb OR (school NEAR/3 evacuat*)", "bomb AND", "(地震 OR 🔥) lang:en", "/[/")}
    assert outcomes == {"used", "refused"}


HUGE = [
    " OR ".join(f"word{i}" for i in range(600)),
    " ".join(["bomb"] * 900),
    "(" * MAX_DEPTH + "bomb" + ")" * MAX_DEPTH,
    "(" * 2000,
    ")" * 2000,
    '"' + "bomb " * 800 + '"',
    "/" + "a" * 3000 + "/",
    "NOT " * 1000 + "drill",
    "x" * 4000,
    "protest NEAR/5 " * 60 + "march",  # a protected two-word term inside a long NEAR chain
    "(" + " OR ".join(["trade", "union", "press", "freedom"] * 100) + ") NEAR/5 zzz",
]


def test_huge_queries_are_used_or_refused() -> None:
    """The web app takes queries of up to 4000 characters: every shape of that size is
    parsed, compiled, linted and guarded, or refused with a position (the suite's timeout
    catches one that takes minutes, as a long NEAR chain once did in the guard)."""
    for query in HUGE:
        check(query)


def test_too_deep_or_too_long_parts_are_refused_where_they_start() -> None:
    """Shapes that once crashed whatever came after the parser: a NEAR chain nesting the
    tree 900 levels deep (RecursionError) and a phrase of 4000 Chinese characters, each a
    word, whose pattern Hyperscan refuses (hyperscan.error)."""
    chain = " NEAR/5 ".join(["school"] * 900)
    with pytest.raises(QuerySyntaxError) as caught:
        parse(chain)
    assert caught.value.message == f"the query nests deeper than {MAX_DEPTH} levels"
    assert chain[caught.value.position :].startswith("NEAR/5")
    parse(" NEAR/5 ".join(["school"] * MAX_DEPTH))  # a chain of 63 NEARs is fine
    for query, what in (("地震" * 2000, "word"), ('bomb "' + "地 " * 1000 + '"', "phrase")):
        with pytest.raises(QuerySyntaxError) as caught:
            parse(query)
        assert caught.value.message == f"this {what} is longer than {MAX_PART_CHARS} characters"
        assert caught.value.position == query.index("地") - (what == "phrase")
    assert check("地震" * (MAX_PART_CHARS // 2)) == "used"  # the longest part compiles
