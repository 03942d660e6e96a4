"""Property tests: the matching engine agrees with the reference evaluator.

The reference (:mod:`watchfloor.query.reference`) walks the query tree over the
post's word list, trying every position; the engine scans word streams with
Hyperscan and evaluates only the watches whose anchors hit.  They must agree on
whether a post matches and on the explanation, for random queries over the whole
language and random posts with Unicode edge cases (accents, ligatures, CJK and Thai
without spaces, emoji, invisible characters), one post at a time and in batches,
in fixed and in incrementally changed watch sets.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.model import MediaRef, Post, Watch, WatchStatus
from watchfloor.query import IncrementalWatchSet, QuerySyntaxError, compile_query, compile_watch_set, parse
from watchfloor.query.reference import reference_explain, reference_matches
from watchfloor.query.text import _tokenize_slowly, tokenize, word_stream
from watchfloor.query.tree import ANCHOR_FIELDS, And, Field, Near, Node, Not, Or, Phrase, Regex, Term

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
AUTHORS = ["p:00000000000000aa", "p:00000000000000bb"]

# --------------------------------------------------------------------------- generators

WORDS = ["bomb", "Bömb", "school", "straße", "strasse", "ﬁre", "café", "İstanbul", "drill", "threat", "US", "us"]
MULTI = ["e-mail", "don't", "fire-drill", "地震", "東京", "ไฟไหม้", "서울"]
PREFIXES = ["sch", "bo", "fl", "evacuat", "ist", "dri", "e-ma", "thr"]
INFIXES = ["evac*ate", "sc*ol", "bo*b", "st*sse", "dr*l*"]
CASED = ["US", "Us", "Bomb", "NASA", "İstanbul", "STRASSE"]
PHRASES = [("bomb", "threat"), ("school", "drill"), ("fire", "flood"), ("Café",), ("e", "mail"), ("bomb*", "threat")]
REGEXES = [
    "colou?r",
    "bomb(s|ing)?",
    "evac[a-z]*",
    "[0-9]+",
    "fire .*",
    "b.mb",
    "地 震",
    "s.*l",
    "(fire|flood) (drill|threat)",
    "\\w+ threat",
    "[^ ]{5,}",
]
FIELDS = [
    ("lang", "en"),
    ("lang", "pt"),
    ("lang", "pt-br"),
    ("platform", "bluesky"),
    ("platform", "mastodon"),
    ("has", "link"),
    ("has", "media"),
    ("has", "hashtag"),
    ("has", "mention"),
    ("domain", "example.org"),
    ("domain", "other.net"),
    ("hashtag", "flood"),
    ("hashtag", "strasse"),
    ("url", "example.org/news"),
    ("author", AUTHORS[0]),
    ("mention", AUTHORS[1]),
]

term_leaves = st.one_of(
    st.sampled_from(WORDS + MULTI).map(lambda w: Term(w)),
    st.sampled_from(PREFIXES).map(lambda p: Term(p, wildcard=True)),
    st.sampled_from(INFIXES).map(lambda p: Term(p[:-1], True) if p.endswith("*") else Term(p)),
    st.sampled_from(CASED).map(lambda w: Term(w, case_sensitive=True)),
    st.sampled_from(PHRASES).map(Phrase),
    st.sampled_from(REGEXES).map(Regex),
)


def near_of(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.builds(Near, children, children, st.integers(0, 3), st.booleans())


near_operands = st.recursive(
    term_leaves,
    lambda c: st.one_of(st.lists(c, min_size=2, max_size=3).map(lambda x: Or(tuple(x))), near_of(c)),
    max_leaves=4,
)
leaves = st.one_of(
    term_leaves,
    near_of(near_operands),
    st.sampled_from(FIELDS).map(lambda f: Field(*f)),
)


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    groups = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(groups.map(And), groups.map(Or), children.map(Not))


trees = st.recursive(leaves, extend, max_leaves=7)

TEXT_WORDS = [
    *WORDS,
    *CASED,
    "schools",
    "school",
    "mail",
    "e",
    "flood",
    "#flood",
    "BOMB",
    "bombs",
    "evacuation",
    "Evacuate",
    "evacate",
    "colour",
    "Color",
    "istanbul",
    "t",
    "don",
    "’",
    "🔥",
    "e\u0301",
    "Straße",
    "b\u200bomb",
    "ｂｏｍｂ",
    "½",
    "42",
    "地震",
    "東京で地震が発生",
    "ไฟไหม้",
    "서울에서",
    "fire",
    "drill",
    "threat",
]
SEPARATORS = [" ", " ", ", ", "-", "\n", "#", "🔥", "'", "。", "\u200b", ""]
LINKS = ["https://www.example.org/news/1", "http://news.example.org/x", "https://other.net/a", "not a link"]


REGEX_EXAMPLES = {
    "colou?r": ["colour", "color"],
    "bomb(s|ing)?": ["bombs", "bombing"],
    "evac[a-z]*": ["evacuees"],
    "[0-9]+": ["42"],
    "fire .*": ["fire alarm"],
    "b.mb": ["bamb"],
    "s.*l": ["sell", "s l"],
    "(fire|flood) (drill|threat)": ["flood drill"],
    "\\w+ threat": ["real threat"],
    "[^ ]{5,}": ["longer"],
}


def words_of(node: Node) -> list[str]:
    """Words that make parts of ``node`` occur, so that random posts often match."""
    if isinstance(node, Term):
        written = node.text.replace("*", "u") + ("ion" if node.wildcard else "")
        return [written, written.upper(), written.lower()]
    if isinstance(node, Phrase):
        return [" ".join(w.replace("*", "s") for w in node.words)]
    if isinstance(node, Regex):
        return REGEX_EXAMPLES.get(node.pattern, [])
    if isinstance(node, Near):
        return words_of(node.left) + words_of(node.right)
    if isinstance(node, And | Or):
        return [w for child in node.children for w in words_of(child)]
    if isinstance(node, Not):
        return words_of(node.child)
    return []


@st.composite
def posts(draw: st.DrawFn, extra: tuple[str, ...] = ()) -> Post:
    vocabulary = TEXT_WORDS + list(extra) * 4
    words = draw(st.lists(st.sampled_from(vocabulary), max_size=12))
    text = ""
    for word in words:
        text += draw(st.sampled_from(SEPARATORS)) + word
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.text(max_size=30)) + text
    return Post(
        platform=draw(st.sampled_from(["bluesky", "mastodon"])),
        native_id="1",
        version="v1",
        created_at=NOW,
        received_at=NOW,
        text=text,
        author=draw(st.sampled_from(AUTHORS)),
        lang=draw(st.sampled_from([None, "en", "en-GB", "pt-BR", "pt", "fr"])),
        langs=tuple(draw(st.lists(st.sampled_from(["en", "pt_BR", "de"]), max_size=2))),
        links=tuple(draw(st.lists(st.sampled_from(LINKS), max_size=2, unique=True))),
        hashtags=tuple(draw(st.lists(st.sampled_from(["Flood", "#flood", "Straße", "fire"]), max_size=2))),
        mentions=tuple(draw(st.lists(st.sampled_from(AUTHORS), max_size=1))),
        media=tuple(draw(st.lists(st.just(MediaRef("at-blob:x")), max_size=1))),
    )


def render(node: Node) -> str:
    """``node`` as query text; an AND is written out or implied, by the number of children."""
    if isinstance(node, Term):
        written = node.text + ("*" if node.wildcard else "")
        return "{" + written + "}" if node.case_sensitive else written
    if isinstance(node, Phrase):
        return '"' + " ".join(node.words) + '"'
    if isinstance(node, Regex):
        return f"/{node.pattern}/"
    if isinstance(node, Field):
        return f"{node.name}:{node.value}"
    if isinstance(node, Not):
        return "NOT " + wrap(node.child)
    if isinstance(node, Near):
        operator = "ONEAR" if node.ordered else "NEAR"
        return f"{wrap(node.left)} {operator}/{node.distance} {wrap(node.right)}"
    joiner = " OR " if isinstance(node, Or) else " AND " if len(node.children) == 2 else " "
    return joiner.join(wrap(child) for child in node.children)


def wrap(node: Node) -> str:
    return f"({render(node)})" if isinstance(node, And | Or | Near) else render(node)


def anchored(node: Node) -> bool:
    """True when the query can only match through a word, phrase, regex or selective filter."""
    if isinstance(node, Term | Phrase | Regex | Near):
        return True
    if isinstance(node, Field):
        return node.name in ANCHOR_FIELDS
    if isinstance(node, And):
        return any(anchored(child) for child in node.children)
    if isinstance(node, Or):
        return all(anchored(child) for child in node.children)
    return False


def make_watch(i: int, query: str, **fields: object) -> Watch:
    return Watch(
        name=f"w{i}",
        query=query,
        purpose="p",
        legal_basis="b",
        owner="o",
        created_at=NOW,
        status=WatchStatus.approved,
        id=i,
        **fields,
    )  # type: ignore[arg-type]


FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- properties


@settings(FAST, max_examples=600)
@given(trees, st.data())
def test_the_engine_agrees_with_the_reference(tree: Node, data: st.DataObject):
    post = data.draw(posts(tuple(words_of(tree))))
    query = render(tree)
    if not anchored(tree):
        try:
            parse(query)
        except QuerySyntaxError:
            return
        raise AssertionError(f"{query!r} can match without a word and should be refused")
    parsed = parse(query)
    assert parsed == tree  # the text round-trips to the same tree
    compiled = compile_query(parsed)
    expected = reference_matches(parsed, post)
    explanation = compiled.explain(post)
    assert (explanation is not None) is expected, (query, post.text)
    assert explanation == reference_explain(parsed, post)
    if explanation is not None:
        for hit in explanation.hits:
            for start, end in hit.spans:
                assert tokenize(post.text[start:end]), "a span always covers a word"


@settings(FAST, max_examples=400)
@given(near_of(near_operands), st.data())
def test_near_agrees_with_the_reference(tree: Node, data: st.DataObject):
    post = data.draw(posts(tuple(words_of(tree))))
    parsed = parse(render(tree))
    assert parsed == tree
    assert compile_query(parsed).explain(post) == reference_explain(parsed, post)


@settings(FAST, max_examples=150)
@given(st.lists(trees.filter(anchored), min_size=1, max_size=8), st.data())
def test_a_watch_set_agrees_with_the_reference_in_batches(trees_: list[Node], data: st.DataObject):
    extra = tuple(w for tree in trees_ for w in words_of(tree))
    batch = data.draw(st.lists(posts(extra), min_size=1, max_size=6))
    watches = [make_watch(100 + i, render(tree)) for i, tree in enumerate(trees_)]
    watch_set = compile_watch_set(watches)
    assert len(watch_set) == len(watches) and not watch_set.errors
    found = watch_set.match_many(batch, now=NOW)
    for post, hits in zip(batch, found, strict=True):
        expected = []
        for watch in watches:
            explanation = reference_explain(parse(watch.query), post)
            if explanation is not None:
                expected.append((watch.id, explanation))
        assert [(h.watch_id, h.explanation) for h in hits] == expected
        assert watch_set.match(post, now=NOW) == hits


@st.composite
def changes(draw: st.DrawFn) -> list[tuple[str, int, str]]:
    """A random history of upserts and removals over a few watch ids."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        watch_id = draw(st.integers(1, 6))
        if draw(st.integers(0, 3)) == 0:
            out.append(("remove", watch_id, ""))
        else:
            tree = draw(trees)
            query = render(tree) if anchored(tree) else "NOT " + render(tree)  # sometimes a bad query
            out.append(("upsert", watch_id, query))
    return out


@settings(FAST, max_examples=120)
@given(st.lists(trees.filter(anchored), max_size=4), changes(), st.data())
def test_an_incremental_watch_set_matches_like_a_fresh_one(initial: list[Node], history, data: st.DataObject):
    extra = tuple(w for tree in initial for w in words_of(tree)) + tuple(
        w for _, _, query in history for w in query.replace("(", " ").replace(")", " ").replace('"', " ").split()
    )
    batch = data.draw(st.lists(posts(extra), min_size=1, max_size=4))
    current = {i + 1: make_watch(i + 1, render(tree)) for i, tree in enumerate(initial)}
    incremental = IncrementalWatchSet(current.values(), max_delta=3, background=False)
    for step, (op, watch_id, query) in enumerate(history):
        if op == "remove":
            incremental.remove(watch_id)
            current.pop(watch_id, None)
        else:
            watch = make_watch(watch_id, query, sla_minutes=step)
            incremental.upsert(watch)
            current[watch_id] = watch
        fresh = compile_watch_set(sorted(current.values(), key=lambda w: w.id or 0))
        assert incremental.errors.keys() == fresh.errors.keys()
        assert incremental.match_many(batch, now=NOW) == fresh.match_many(batch, now=NOW)
    assert len(incremental) == len(current) - len(incremental.errors)


@settings(FAST, max_examples=2000)
@given(st.text() | st.text(alphabet=st.sampled_from(sorted(set("".join(TEXT_WORDS + SEPARATORS))))))
def test_the_word_stream_holds_exactly_the_words_of_the_tokeniser(text: str):
    words = [token.text for token in _tokenize_slowly(text)]
    assert word_stream(text) == (" " + " ".join(words) + " " if words else " ")


@settings(FAST, max_examples=300)
@given(st.text(), st.data())
def test_any_word_of_a_text_is_found_again_as_a_phrase(text: str, data: st.DataObject):
    tokens = tokenize(text)
    if not tokens:
        return
    token = data.draw(st.sampled_from(tokens))
    written = text[token.start : token.end]
    if any(quote in written for quote in '"“”„*'):
        return
    if [t.text for t in tokenize(written)] != [token.text]:
        return  # e.g. "¼0" reads as "1⁄40": the "1" alone does not fold back to one word
    query = compile_query(f'"{written}"')
    post = Post(
        platform="bluesky",
        native_id="1",
        version="v1",
        created_at=NOW,
        received_at=NOW,
        text=text,
        author="p:0000000000000000",
    )
    explanation = query.explain(post)
    assert explanation is not None
    assert (token.start, token.end) in explanation.hits[0].spans
