"""The matcher: what matches, the spans it reports, and how a watch set picks watches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.model import Post, TermHit, Watch, WatchStatus
from watchfloor.query import QuerySyntaxError, compile_query, compile_watch_set
from watchfloor.query.tree import And, Not, Term

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def make_post(
    text: str,
    *,
    lang: str | None = "en",
    langs: tuple[str, ...] = (),
    platform: str = "bluesky",
) -> Post:
    return Post(
        platform=platform,
        native_id="at://x/app.bsky.feed.post/1",
        version="v1",
        created_at=NOW,
        received_at=NOW,
        text=text,
        author="p:0000000000000000",
        lang=lang,
        langs=langs,
    )


def make_watch(watch_id: int, query: str, **fields: object) -> Watch:
    return Watch(
        name=f"watch {watch_id}",
        query=query,
        purpose="testing",
        legal_basis="none",
        owner="analyst",
        created_at=NOW,
        status=WatchStatus.approved,
        id=watch_id,
        **fields,  # type: ignore[arg-type]
    )


def matches(query: str, text: str, **post_fields: object) -> bool:
    return compile_query(query).matches(make_post(text, **post_fields))  # type: ignore[arg-type]


def hits(query: str, text: str, **post_fields: object) -> list[TermHit]:
    explanation = compile_query(query).explain(make_post(text, **post_fields))  # type: ignore[arg-type]
    assert explanation is not None, f"{query!r} should match {text!r}"
    return list(explanation.hits)


def highlighted(post_text: str, hit: TermHit) -> list[str]:
    return [post_text[s:e] for s, e in hit.spans]


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("school", "Evacuate the school now", True),
        ("school", "Evacuate the schools now", False),
        ("school", "preschool closed", False),
        ("school*", "Evacuate the schools now", True),
        ("school*", "Evacuate the SCHOOLHOUSE", True),
        ("school*", "preschools closed", False),
        ("evacuat*", "Evacuation ordered", True),
        ("cafe", "Meet at the Café", True),
        ("Café", "meet at the cafe", True),
        ("ÉVACUATION", "evacuation under way", True),
        ("strasse", "Die Straße ist gesperrt", True),
        ("straße", "HAUPTSTRASSE", False),
        ("straße", "Haupt STRASSE", True),
        ("fire", "ﬁre in the hall", True),
        ("istanbul", "İSTANBUL'da sel", True),
        ("flood", "Look at this #flood", True),
        ("flood", "#flooding everywhere", False),
        ("flood*", "#flooding everywhere", True),
        ("bomb", "b\u200bomb threat", True),
        ("bomb", "ｂｏｍｂ threat", True),
        ("e-mail", "send an E-Mail now", True),
        ("e-mail", "send an email now", False),
        ("don't", "I DON’T know", True),
        ("or", "this or that", True),
        ("bomb", "", False),
    ],
)
def test_words_match_whole_folded_words(query: str, text: str, expected: bool):
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ('"bomb threat"', "There is a Bomb Threat at the station", True),
        ('"bomb threat"', "bomb, threat!", True),
        ('"bomb threat"', "threat of a bomb", False),
        ('"bomb threat"', "bomb big threat", False),
        ('"bomb threat"', "bomb threats", False),
        ('"école fermée"', "ECOLE FERMEE aujourd'hui", True),
        ('"a b a b c"', "a b a b a b c", True),
        ('"flood"', "#flood", True),
    ],
)
def test_phrases_match_consecutive_words(query: str, text: str, expected: bool):
    assert matches(query, text) is expected


def test_boolean_operators():
    assert matches("bomb AND threat", "threat: bomb")
    assert not matches("bomb AND threat", "bomb only")
    assert matches("bomb OR threat", "just a threat")
    assert not matches("bomb OR threat", "nothing here")
    assert matches("bomb NOT drill", "bomb in the school")
    assert not matches("bomb NOT drill", "bomb drill at school")
    assert not matches("bomb NOT drill*", "bomb DRILLING at school")
    assert matches('bomb NOT "fire drill"', "bomb drill, no fire")
    assert not matches("(bomb OR fire) NOT (drill OR exercise)", "fire exercise today")
    assert matches("(bomb OR fire) NOT (drill OR exercise)", "fire today")


# --------------------------------------------------------------------------- filters


def test_lang_filter_uses_lang_and_langs_with_prefix_semantics():
    assert matches("bomba lang:pt", "bomba", lang="pt-BR")
    assert matches("bomba lang:pt", "bomba", lang=None, langs=("es", "pt_PT"))
    assert matches("bomba lang:pt-br", "bomba", lang="pt-BR")
    assert not matches("bomba lang:pt-br", "bomba", lang="pt")
    assert not matches("bomba lang:pt", "bomba", lang="ptx")
    assert not matches("bomba lang:pt", "bomba", lang=None)
    assert not matches("bomba NOT lang:es", "bomba", lang="es-MX")


def test_platform_filter_compares_the_platform():
    assert matches("flood platform:mastodon", "flood", platform="mastodon")
    assert not matches("flood platform:mastodon", "flood", platform="bluesky")
    assert matches("flood (platform:mastodon OR platform:bluesky)", "flood", platform="bluesky")


# --------------------------------------------------------------------------- explanations


def test_spans_point_at_the_original_characters():
    text = "Bomb threat! Another BOMB THREAT; bombs? École, e\u0301cole. Straße"
    [phrase] = hits('"bomb threat"', text)
    assert phrase == TermHit('"bomb threat"', "phrase", ((0, 11), (21, 32)))
    assert highlighted(text, phrase) == ["Bomb threat", "BOMB THREAT"]
    [prefix] = hits("bomb*", text)
    assert prefix.kind == "prefix"
    assert highlighted(text, prefix) == ["Bomb", "BOMB", "bombs"]
    [ecole] = hits("ecole", text)
    assert highlighted(text, ecole) == ["École", "e\u0301cole"]
    [strasse] = hits("STRASSE", text)
    assert highlighted(text, strasse) == ["Straße"]


def test_spans_skip_emoji_and_hashtag_signs():
    text = "🔥🔥 #Flood🔥flood"
    [hit] = hits("flood", text)
    assert highlighted(text, hit) == ["Flood", "flood"]


def test_every_matched_positive_part_is_listed_with_its_kind():
    text = "Bomb threat at the school; evacuation under way"
    assert hits('"bomb threat" school evacuat* lang:en', text) == [
        TermHit('"bomb threat"', "phrase", ((0, 11),)),
        TermHit("school", "term", ((19, 25),)),
        TermHit("evacuat*", "prefix", ((27, 37),)),
        TermHit("lang:en", "filter"),
    ]


def test_terms_are_listed_as_written_in_the_query():
    [hit] = hits("ÉVACUATION", "evacuation now")
    assert hit.term == "ÉVACUATION"


def test_parts_under_not_are_never_listed():
    text = "bomb at school, not a drill"
    assert hits("bomb NOT fire", text) == [TermHit("bomb", "term", ((0, 4),))]
    assert [h.term for h in hits("bomb NOT (fire NOT drill)", text)] == ["bomb"]


def test_only_alternatives_that_matched_are_listed():
    text = "bomb and fire"
    listed = [h.term for h in hits("(bomb AND drill) OR fire OR bomb", text)]
    assert listed == ["fire", "bomb"]  # "bomb" once, though written twice
    assert [h.term for h in hits("bomb OR fire", text)] == ["bomb", "fire"]


def test_a_part_written_twice_is_listed_once():
    assert hits("flood flood", "flood") == [TermHit("flood", "term", ((0, 5),))]


def test_no_explanation_without_a_match():
    assert compile_query("bomb").explain(make_post("nothing")) is None


def test_hand_built_trees_compile_too():
    query = compile_query(And((Term("bomb"), Not(Term("drill")))))
    assert query.matches(make_post("a bomb"))
    explanation = query.explain(make_post("a bomb"))
    assert explanation is not None
    assert explanation.hits == (TermHit("bomb", "term", ((2, 6),)),)


def test_compile_query_refuses_bad_text():
    with pytest.raises(QuerySyntaxError):
        compile_query("bomb AND")


# --------------------------------------------------------------------------- watch sets


def test_a_watch_set_returns_one_hit_per_matching_watch_in_order():
    watches = [
        make_watch(7, "flood"),
        make_watch(3, "bridge NOT drill"),
        make_watch(5, "earthquake"),
        make_watch(9, 'riv* OR "old bridge"'),
    ]
    watch_set = compile_watch_set(watches)
    assert len(watch_set) == 4
    found = watch_set.match(make_post("The river is flooding near the old bridge"), now=NOW)
    assert [h.watch_id for h in found] == [3, 9]
    assert found[1].explanation.hits == (
        TermHit("riv*", "prefix", ((4, 9),)),
        TermHit('"old bridge"', "phrase", ((31, 41),)),
    )


def test_watch_set_matches_prefix_anchors_of_any_length():
    watch_set = compile_watch_set([make_watch(1, "ev*"), make_watch(2, "evacuat*"), make_watch(3, "evacuation")])
    found = watch_set.match(make_post("EVACUATION!"), now=NOW)
    assert [h.watch_id for h in found] == [1, 2, 3]
    assert watch_set.match(make_post("eve"), now=NOW)[0].watch_id == 1


def test_inactive_watches_do_not_match():
    watches = [
        make_watch(1, "flood", enabled=False),
        make_watch(2, "flood", expires_at=NOW),
        make_watch(3, "flood", expires_at=NOW + timedelta(seconds=1)),
        make_watch(4, "flood"),
    ]
    watch_set = compile_watch_set(watches)
    post = make_post("flood")
    assert [h.watch_id for h in watch_set.match(post, now=NOW)] == [3, 4]
    assert [h.watch_id for h in watch_set.match(post, now=NOW + timedelta(seconds=1))] == [4]


def test_without_now_the_current_time_decides():
    current = datetime.now(UTC)
    watches = [
        make_watch(1, "flood", expires_at=current - timedelta(minutes=1)),
        make_watch(2, "flood", expires_at=current + timedelta(days=1)),
    ]
    assert [h.watch_id for h in compile_watch_set(watches).match(make_post("flood"))] == [2]


def test_watch_languages_restrict_with_prefix_semantics():
    watches = [
        make_watch(1, "bomba", languages=("pt",)),
        make_watch(2, "bomba", languages=("es", "PT_br")),
        make_watch(3, "bomba"),
    ]
    watch_set = compile_watch_set(watches)

    def ids(**post_fields: object) -> list[int]:
        post = make_post("bomba!", **post_fields)  # type: ignore[arg-type]
        return [h.watch_id for h in watch_set.match(post, now=NOW)]

    assert ids(lang="pt-BR") == [1, 2, 3]
    assert ids(lang="pt") == [1, 3]
    assert ids(lang="es") == [2, 3]
    assert ids(lang=None, langs=("en", "pt")) == [1, 3]
    assert ids(lang=None) == [3]
    assert ids(lang="it") == [3]


def test_watch_sources_restrict_to_the_named_sources():
    watches = [make_watch(1, "flood", sources=("jetstream",)), make_watch(2, "flood")]
    watch_set = compile_watch_set(watches)
    post = make_post("flood")
    assert [h.watch_id for h in watch_set.match(post, "jetstream", now=NOW)] == [1, 2]
    assert [h.watch_id for h in watch_set.match(post, "demo", now=NOW)] == [2]
    assert [h.watch_id for h in watch_set.match(post, now=NOW)] == [2]


def test_a_post_without_any_watch_word_matches_nothing():
    watch_set = compile_watch_set([make_watch(1, "flood"), make_watch(2, "bomb NOT drill")])
    assert watch_set.match(make_post("a quiet day"), now=NOW) == []
    assert watch_set.match(make_post(""), now=NOW) == []


def test_watches_with_bad_queries_are_left_out_and_reported():
    watch_set = compile_watch_set([make_watch(1, "flood AND"), make_watch(2, "flood")])
    assert len(watch_set) == 1
    assert set(watch_set.errors) == {1}
    assert watch_set.errors[1].position == 9
    assert [h.watch_id for h in watch_set.match(make_post("flood"), now=NOW)] == [2]


def test_watches_need_a_unique_id():
    unsaved = Watch(name="w", query="flood", purpose="p", legal_basis="b", owner="o")
    with pytest.raises(ValueError, match="has no id"):
        compile_watch_set([unsaved])
    with pytest.raises(ValueError, match="appears twice"):
        compile_watch_set([make_watch(1, "flood"), make_watch(1, "bomb")])


def test_an_empty_watch_set_matches_nothing():
    watch_set = compile_watch_set([])
    assert len(watch_set) == 0
    assert watch_set.match(make_post("flood"), now=NOW) == []
