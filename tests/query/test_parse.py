"""The parser: one tree per construct, precedence, positions, and every refusal."""

from __future__ import annotations

import pytest

from watchfloor.query import QuerySyntaxError, parse
from watchfloor.query.parse import MAX_DEPTH
from watchfloor.query.tree import And, Field, Near, Not, Or, Phrase, Regex, Term, account_targets, walk


def T(text: str, wildcard: bool = False) -> Term:
    return Term(text, wildcard)


# --------------------------------------------------------------------------- constructs


def test_a_single_word_is_a_term():
    assert parse("bomb") == T("bomb")


def test_a_trailing_star_is_a_prefix_term():
    assert parse("evacuat*") == T("evacuat", wildcard=True)


def test_a_quoted_phrase_keeps_its_words_as_written():
    assert parse('"Bomb  Threat"') == Phrase(("Bomb", "Threat"))


def test_curly_quotes_pasted_from_a_word_processor_make_a_phrase():
    assert parse("“bomb threat”") == Phrase(("bomb", "threat"))


def test_a_word_with_punctuation_inside_stays_one_term():
    assert parse("e-mail") == T("e-mail")
    assert parse("10:30") == T("10:30")


def test_lang_and_platform_filters_are_fields_with_normalised_values():
    assert parse("bomb lang:PT_br") == And((T("bomb"), Field("lang", "pt-br")))
    assert parse("bomb Platform:Bluesky") == And((T("bomb"), Field("platform", "bluesky")))


def test_every_filter_normalises_its_value():
    def field(text: str) -> Field:
        tree = parse("bomb " + text)
        assert isinstance(tree, And)
        return tree.children[1]

    assert field("has:LINK") == Field("has", "link")
    assert field("domain:News.Example.ORG.") == Field("domain", "news.example.org")
    assert field("hashtag:#Straße") == Field("hashtag", "strasse")
    assert field("url:https://www.Example.org/News") == Field("url", "example.org/news")
    assert field("author:p:0123456789ABCDEF") == Field("author", "p:0123456789abcdef")
    assert field("mention:p:0123456789abcdef") == Field("mention", "p:0123456789abcdef")


def test_selective_filters_can_make_a_watch_on_their_own():
    assert parse("hashtag:flood") == Field("hashtag", "flood")
    assert parse("domain:example.org lang:en") == And((Field("domain", "example.org"), Field("lang", "en")))
    assert parse("author:p:0123456789abcdef OR url:example.org/news") == Or(
        (Field("author", "p:0123456789abcdef"), Field("url", "example.org/news"))
    )


def test_author_and_mention_make_a_watch_account_targeted():
    assert account_targets(parse("flood")) == []
    assert account_targets(parse("flood (author:p:0123456789abcdef OR NOT mention:p:0123456789abcdee)")) == [
        Field("author", "p:0123456789abcdef"),
        Field("mention", "p:0123456789abcdee"),
    ]


def test_wildcards_inside_words_and_phrases():
    assert parse("evac*ate") == T("evac*ate")
    assert parse("dr*l*") == T("dr*l", wildcard=True)
    assert parse('"evacuat* order*"') == Phrase(("evacuat*", "order*"))


def test_braces_make_a_case_sensitive_word():
    assert parse("{US} troops") == And((Term("US", case_sensitive=True), T("troops")))
    assert parse("{NASA*}") == Term("NASA", wildcard=True, case_sensitive=True)


def test_slashes_make_a_regex():
    assert parse("/colou?r/ flood") == And((Regex("colou?r"), T("flood")))
    assert parse("/a b/").source == "/a b/"
    assert parse("24/7") == T("24/7")  # a slash inside a word is punctuation


def test_near_and_onear_take_a_distance_and_group_from_the_left():
    assert parse("evacuat* NEAR/5 school") == Near(T("evacuat", True), T("school"), 5)
    assert parse("a ONEAR/0 b") == Near(T("a"), T("b"), 0, ordered=True)
    assert parse("a NEAR/1 b NEAR/2 c") == Near(Near(T("a"), T("b"), 1), T("c"), 2)
    assert parse('(fire OR "forest fire") NEAR/3 (evacuat* OR /flee(ing)?/)') == Near(
        Or((T("fire"), Phrase(("forest", "fire")))), Or((T("evacuat", True), Regex("flee(ing)?"))), 3
    )


def test_near_binds_tighter_than_not_and_and_or():
    assert parse("a OR b NEAR/3 c") == Or((T("a"), Near(T("b"), T("c"), 3)))
    assert parse("a b NEAR/3 c") == And((T("a"), Near(T("b"), T("c"), 3)))
    assert parse("x NOT a NEAR/2 b") == And((T("x"), Not(Near(T("a"), T("b"), 2))))


def test_and_or_not_in_upper_case_are_operators():
    assert parse("bomb AND threat") == And((T("bomb"), T("threat")))
    assert parse("bomb OR threat") == Or((T("bomb"), T("threat")))
    assert parse("bomb AND NOT drill") == And((T("bomb"), Not(T("drill"))))


def test_adjacent_parts_mean_and():
    assert parse('bomb "school bus" evac*') == And((T("bomb"), Phrase(("school", "bus")), T("evac", True)))
    assert parse("bomb NOT drill") == parse("bomb AND NOT drill")


def test_lower_case_and_or_not_are_plain_words():
    assert parse("bomb or threat") == And((T("bomb"), T("or"), T("threat")))
    assert parse("not and") == And((T("not"), T("and")))


def test_a_chain_of_one_operator_is_one_node():
    assert parse("a OR b OR c") == Or((T("a"), T("b"), T("c")))
    assert parse("a b AND c") == And((T("a"), T("b"), T("c")))


def test_parentheses_group():
    assert parse("(a OR b) c") == And((Or((T("a"), T("b"))), T("c")))
    assert parse("a AND (b AND c)") == And((T("a"), And((T("b"), T("c")))))
    assert parse("((bomb))") == T("bomb")


# --------------------------------------------------------------------------- precedence


def test_and_binds_tighter_than_or():
    assert parse("a OR b AND c") == Or((T("a"), And((T("b"), T("c")))))
    assert parse("a AND b OR c") == Or((And((T("a"), T("b"))), T("c")))
    assert parse("a OR b c") == Or((T("a"), And((T("b"), T("c")))))


def test_not_binds_tighter_than_and():
    assert parse("a AND NOT b c") == And((T("a"), Not(T("b")), T("c")))
    assert parse("a AND NOT b OR c") == Or((And((T("a"), Not(T("b")))), T("c")))
    assert parse("a NOT (b OR c)") == And((T("a"), Not(Or((T("b"), T("c"))))))


def test_the_design_doc_example():
    tree = parse('"bomb threat" OR (evacuat* NEAR/5 school) AND NOT drill')
    assert tree == Or(
        (
            Phrase(("bomb", "threat")),
            And((Near(T("evacuat", True), T("school"), 5), Not(T("drill")))),
        )
    )


def test_the_design_doc_example_without_near():
    tree = parse('"bomb threat" OR (evacuat* school) AND NOT drill')
    assert tree == Or(
        (
            Phrase(("bomb", "threat")),
            And((And((T("evacuat", True), T("school"))), Not(T("drill")))),
        )
    )


# --------------------------------------------------------------------------- positions


def test_every_node_knows_where_it_was_written():
    query = '"bomb threat" OR (evacuat* school) lang:en'
    tree = parse(query)
    for node in walk(tree):
        assert query[node.start : node.end] == node.source
    sources = [node.source for node in walk(tree)]
    assert sources == [
        query,
        '"bomb threat"',
        "(evacuat* school) lang:en",
        "(evacuat* school)",
        "evacuat*",
        "school",
        "lang:en",
    ]


def test_not_spans_the_operator_and_its_operand():
    query = "bomb NOT  drill"
    tree = parse(query)
    assert isinstance(tree, And)
    negation = tree.children[1]
    assert (negation.start, negation.end, negation.source) == (5, 15, "NOT  drill")


def test_positions_do_not_take_part_in_equality():
    assert parse("  bomb") == parse("bomb")
    assert parse("  bomb").start == 2


# --------------------------------------------------------------------------- refusals

REFUSED = [
    ("", 0, "the query is empty"),
    ("   ", 0, "the query is empty"),
    ("bomb AND", 8, "AND must be followed by a word, phrase or '(', not the end of the query"),
    ("bomb OR", 7, "OR must be followed"),
    ("NOT", 3, "NOT must be followed"),
    ("bomb AND OR x", 9, "AND must be followed by a word, phrase or '(', not 'OR'"),
    ("(bomb AND)", 9, "AND must be followed by a word, phrase or '(', not ')'"),
    ("(bomb", 0, "this '(' is never closed"),
    ("((bomb)", 0, "this '(' is never closed"),
    ("bomb)", 4, "this ')' has no matching '('"),
    ("(bomb))", 6, "this ')' has no matching '('"),
    ("()", 0, "these parentheses are empty"),
    ("bomb ()", 5, "these parentheses are empty"),
    ('"unclosed', 0, "this quote is never closed"),
    ('bomb "school bus', 5, "this quote is never closed"),
    ('""', 0, "this phrase has no letters or digits"),
    ('"!!"', 0, "this phrase has no letters or digits"),
    ('"*bomb threat"', 1, "* cannot start a word"),
    ("OR bomb", 0, "OR needs a word, phrase or group before it"),
    ("(AND bomb)", 1, "AND needs a word, phrase or group before it"),
    ("*bomb", 0, "* cannot start a word; write it after at least 2 letters or digits"),
    ("bomb**", 5, "* must come right after a letter or digit"),
    ("*", 0, "* cannot start a word"),
    ("b*mb", 1, "* needs at least 2 letters or digits before it"),
    ("bo*-mb", 3, "* must be followed by a letter, a digit or the end of the word"),
    ("地震*", 2, "* does not work on Chinese, Japanese, Korean or Thai text"),
    ("e-*", 2, "* must come right after a letter or digit"),
    ("a*", 1, "* needs at least 2 letters or digits before it"),
    ("x-a*", 3, "* needs at least 2 letters or digits before it"),
    ("lang:", 5, "lang: needs a value right after the colon"),
    ("bomb platform:", 14, "platform: needs a value"),
    ("bomb lang:english", 10, "'english' is not a language code"),
    ("bomb lang:en*", 10, "'en*' is not a language code"),
    ("bomb platform:blue!sky", 14, "'blue!sky' is not a platform name"),
    ("colour:red", 0, "unknown field 'colour:'; the fields are lang:, platform:, has:, domain:, hashtag:, mention:"),
    ("bomb has:video", 9, "has: takes link, media, hashtag or mention, not 'video'"),
    ("bomb domain:https://x.org", 12, "'https://x.org' is not a domain such as example.org"),
    ("bomb domain:localhost", 12, "is not a domain"),
    ("author:@alice.bsky.social", 7, "author: takes an account's pseudonym, such as author:p:0123456789abcdef"),
    ("mention:alice", 8, "mention: takes an account's pseudonym"),
    ("bomb url:nothing", 9, "'nothing' is not a web address"),
    ("hashtag:#", 8, "'#' is not a hashtag"),
    ("bomb http://example.org", 5, "unknown field 'http:'"),
    ("!!!", 0, "'!!!' has no letters or digits to match"),
    ("bomb && threat", 5, "write AND"),
    ("bomb -drill", 5, "to exclude a word write NOT drill, not -drill"),
    ("!drill", 0, "to exclude a word write NOT drill, not !drill"),
    ("school NEAR bus", 7, "NEAR needs a distance in words, as in NEAR/5"),
    ("school ONEAR bus", 7, "ONEAR needs a distance in words"),
    ("school near/5 bus", 7, "'near/5' is not an operator: write NEAR/5 or ONEAR/5 in capitals"),
    ("school NEAR/x bus", 7, "is not an operator"),
    ("school NEAR/101 bus", 7, "NEAR/101 allows at most 100 words between its sides"),
    ("NEAR/5 bus", 0, "NEAR/5 needs a word, phrase or group before it"),
    ("bus NEAR/5", 10, "NEAR/5 must be followed by a word, phrase or '(', not the end of the query"),
    ("bus NEAR/5 NOT drill", 11, "NEAR/5 must be followed by a word, phrase or '(', not 'NOT'"),
    ("bus NEAR/3 lang:en", 11, "NEAR/3 works between words, phrases, regexes and groups of them joined by OR; "),
    ("bus NEAR/3 lang:en", 11, "; 'lang:en' is a filter"),
    ("(a AND b) NEAR/3 c", 0, "'(a AND b)' is an AND; to want both near, write (a NEAR/3 c) AND (b NEAR/3 c)"),
    ("c NEAR/3 (a OR (b NOT d))", 15, "'(b NOT d)' is an AND"),
    ("/colou?r", 0, "this regex is never closed"),
    ("/colou?r/i", 9, "flags such as /i are not supported"),
    ("//", 0, "this regex is empty"),
    ("/Colour/", 1, "regex: 'C' never occurs: a regex sees the post's words in lower case without accents; write 'c'"),
    ("/a-b/", 2, "regex: '-' never occurs"),
    ("x /(a+)+/", 5, "regex: a repeat inside a repeat"),
    ("/(a|ab)*/", 2, "regex: repeated alternatives"),
    ("/a*/", 1, "regex: this regex can match nothing at all"),
    ("/\\bfoo/", 1, "regex: \\b is not needed"),
    ("/(?=a)b/", 1, "regex: look-arounds, named groups and flags are not supported"),
    ("/a{1,500}/", 2, "regex: repeat counts above 100 are not allowed"),
    ("/.*a.*b.*/", 8, "regex: at most 2 open-ended repeats"),
    ("/地震/", 2, "regex: in Chinese, Japanese, Korean and Thai every character is a word of its own"),
    ("{US", 0, "this '{' is never closed"),
    ("{New York}", 0, "{...} holds exactly one word"),
    ("{}", 0, "{...} holds exactly one word"),
    ("NOT drill", 0, "'NOT drill' on its own would match almost every post"),
    ("NOT NOT drill", 0, "on its own would match almost every post"),
    ("bomb OR NOT drill", 8, "'NOT drill' on its own"),
    ("lang:en", 0, "a filter such as 'lang:en' cannot stand alone"),
    ("bomb OR platform:bluesky", 8, "a filter such as 'platform:bluesky' cannot stand alone"),
    ("lang:en NOT drill", 0, "'lang:en NOT drill' can match without any word or phrase"),
    ("bomb OR (lang:en NOT drill)", 8, "'(lang:en NOT drill)' can match without any word"),
    ("has:link lang:en", 0, "'has:link lang:en' can match without any word or phrase"),
    ("bomb OR has:media", 8, "a filter such as 'has:media' cannot stand alone"),
]


@pytest.mark.parametrize(("query", "position", "message"), REFUSED, ids=[q or "<empty>" for q, _, _ in REFUSED])
def test_refused_queries_say_why_and_where(query: str, position: int, message: str):
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert caught.value.position == position
    assert message in caught.value.message
    assert caught.value.query == query


def test_the_error_text_puts_a_caret_under_the_problem():
    with pytest.raises(QuerySyntaxError) as caught:
        parse("bomb)\tx")
    assert str(caught.value) == ("this ')' has no matching '(' (at position 4)\n  bomb) x\n      ^")


def test_the_caret_accounts_for_wide_characters():
    with pytest.raises(QuerySyntaxError) as caught:
        parse("学校 AND")
    assert str(caught.value).splitlines()[1:] == ["  学校 AND", "          ^"]


def test_an_error_without_a_query_shows_the_position_only():
    error = QuerySyntaxError("bad", 3)
    assert str(error) == "bad (at position 3)"
    assert isinstance(error, ValueError)


def test_nesting_is_limited():
    deep = "(" * (MAX_DEPTH + 1) + "bomb" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(QuerySyntaxError) as caught:
        parse(deep)
    assert caught.value.position == MAX_DEPTH
    fine = "(" * MAX_DEPTH + "bomb" + ")" * MAX_DEPTH
    assert parse(fine) == T("bomb")
