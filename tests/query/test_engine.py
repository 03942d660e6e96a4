"""The full language on the matching engine: proximity, regexes, case, scripts, filters,
batches, anchors and incremental watch sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.model import MediaRef, Post, TermHit, Watch, WatchStatus
from watchfloor.query import IncrementalWatchSet, compile_query, compile_watch_set
from watchfloor.query.engine import Segment, make_entry
from watchfloor.query.parse import parse

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ME = "p:0123456789abcdef"


def make_post(text: str, **fields: object) -> Post:
    base: dict[str, object] = {
        "platform": "bluesky",
        "native_id": "at://x/app.bsky.feed.post/1",
        "version": "v1",
        "created_at": NOW,
        "received_at": NOW,
        "text": text,
        "author": "p:00000000000000aa",
        "lang": "en",
    }
    base.update(fields)
    return Post(**base)  # type: ignore[arg-type]


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


def matches(query: str, text: str, **fields: object) -> bool:
    return compile_query(query).matches(make_post(text, **fields))


def hits(query: str, text: str, **fields: object) -> list[tuple[str, str, list[str]]]:
    explanation = compile_query(query).explain(make_post(text, **fields))
    assert explanation is not None, f"{query!r} should match {text!r}"
    return [(h.term, h.kind, [text[s:e] for s, e in h.spans]) for h in explanation.hits]


# --------------------------------------------------------------------------- proximity


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("evacuat* NEAR/0 school", "evacuate school", True),
        ("evacuat* NEAR/0 school", "school, evacuated!", True),
        ("evacuat* NEAR/0 school", "evacuate the school", False),
        ("evacuat* NEAR/1 school", "evacuate the school", True),
        ("evacuat* NEAR/2 school", "evacuate the old school", True),
        ("evacuat* NEAR/2 school", "evacuate the old red school", False),
        ("evacuat* ONEAR/2 school", "school to evacuate", False),
        ("evacuat* ONEAR/2 school", "evacuate the school", True),
        ('"bomb threat" NEAR/1 school', "school: bomb threat", True),
        ('"bomb threat" NEAR/1 school', "bomb at school threat", False),  # the phrase itself is missing
        ("bomb NEAR/3 bomb", "bomb", False),  # two occurrences that do not overlap
        ("bomb NEAR/3 bomb", "bomb bomb", True),
        ("bomb NEAR/3 bomb*", "bombing", False),
        ("(fire OR flood) NEAR/1 (evacuat* OR /flee(ing)?/)", "people fleeing the flood", True),
        ("(fire NEAR/1 forest) NEAR/1 evacuat*", "forest big fire, then evacuate", True),
        ("(fire NEAR/1 forest) NEAR/0 evacuat*", "forest big fire, then evacuate", False),
    ],
)
def test_near_counts_the_words_between_the_two_sides(query: str, text: str, expected: bool):
    assert matches(query, text) is expected


def test_near_in_cjk_counts_characters():
    assert matches("地震 NEAR/1 発生", "地震が発生")
    assert not matches("地震 NEAR/0 発生", "地震が発生")


def test_near_is_listed_as_one_part_highlighting_the_window():
    text = "They evacuated the old school; the school is safe"
    assert hits("evacuat* NEAR/2 school", text) == [("evacuat* NEAR/2 school", "near", ["evacuated the old school"])]


# --------------------------------------------------------------------------- regexes


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("/colou?r/", "What a COLOR", True),
        ("/colou?r/", "Colours!", False),  # a regex must end at the end of a word
        ("/colou?r/", "multicolour", False),  # and start at the start of one
        ("/bomb(s|ing)? threat/", "Bombing, threat!", True),
        ("/[0-9]{3} [0-9]{4}/", "call 555-1234 now", True),
        ("/evac[a-z]*/", "Évacuation", True),
        ("/地 震/", "東京で地震が発生", True),
    ],
)
def test_regexes_match_whole_folded_words(query: str, text: str, expected: bool):
    assert matches(query, text) is expected


def test_a_regex_hit_highlights_the_words_it_matched():
    text = "call 555-1234 or 555 9876"
    assert hits("/[0-9]{3} [0-9]{4}/", text) == [("/[0-9]{3} [0-9]{4}/", "regex", ["555-1234", "555 9876"])]


# --------------------------------------------------------------------------- case, scripts


def test_case_sensitive_words_need_the_same_case():
    assert matches("{US} troops", "US troops arrive")
    assert not matches("{US} troops", "us troops arrive")
    assert not matches("{US} troops", "Us troops arrive")
    assert matches("{NASA*}", "NASAs launch")
    assert not matches("{NASA*}", "Nasas launch")
    assert matches("{Café}", "Cafe open")  # accents are still ignored
    assert not matches("{Café}", "CAFE open")


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("地震", "東京で地震が発生しました", True),
        ("地震", "地 震", True),  # every character is a word, so spaces between them do not matter
        ("東京", "東京都", True),
        ("ไฟไหม้", "เกิดไฟไหม้ที่ตลาด", True),
        ("서울", "서울에서 지진", True),
        ("火事", "東京で地震が発生", False),
        ("iphone", "新しいiPhone発売", True),
    ],
)
def test_cjk_and_thai_are_found_without_word_boundaries(query: str, text: str, expected: bool):
    assert matches(query, text) is expected


def test_wildcards_inside_words():
    assert matches("evac*ate", "They EVACUATE")
    assert matches("evac*ate", "evacate")
    assert not matches("evac*ate", "evacuated")
    assert matches('"evacuat* order*"', "Evacuation orders issued")
    assert hits("evac*ate", "evacuate")[0][1] == "wildcard"


def test_emoji_separate_words():
    assert matches("fire", "🔥fire🔥")
    assert matches('"fire alarm"', "fire🚨alarm")


# --------------------------------------------------------------------------- filters


def test_has_filters():
    assert matches("flood has:link", "flood", links=("https://example.org",))
    assert not matches("flood has:link", "flood")
    assert matches("flood has:media", "flood", media=(MediaRef("at-blob:x"),))
    assert matches("flood has:hashtag", "flood", hashtags=("x",))
    assert matches("flood NOT has:mention", "flood")


def test_domain_matches_the_host_and_its_subdomains():
    links = ("https://news.Example.org/a/b",)
    assert matches("flood domain:example.org", "flood", links=links)
    assert matches("flood domain:news.example.org", "flood", links=links)
    assert not matches("flood domain:ample.org", "flood", links=links)
    assert not matches("flood domain:www.example.org", "flood", links=links)


def test_url_matches_the_start_of_a_link_without_scheme_and_www():
    links = ("https://www.example.org/News/2026/flood",)
    assert matches("url:example.org/news", "x", links=links)
    assert matches("url:http://example.org/news/2026", "x", links=links)
    assert not matches("url:example.org/sport", "x", links=links)


def test_hashtag_filters_fold_like_words():
    assert matches("hashtag:flood", "nothing in the text", hashtags=("Flood",))
    assert matches("hashtag:strasse", "x", hashtags=("Straße",))
    assert not matches("hashtag:flood", "#flood in the text only")


def test_author_and_mention_compare_pseudonyms():
    assert matches(f"author:{ME}", "anything", author=ME)
    assert not matches(f"author:{ME}", "anything")
    assert matches(f"flood mention:{ME}", "flood", mentions=(ME,))


# --------------------------------------------------------------------------- sets and batches


def test_a_batch_is_matched_like_its_posts_one_by_one():
    watches = [
        make_watch(1, "flood"),
        make_watch(2, "evacuat* NEAR/3 school"),
        make_watch(3, "/colou?r/ NOT drill"),
        make_watch(4, "hashtag:flood"),
        make_watch(5, "地震"),
        make_watch(6, "{US}"),
    ]
    watch_set = compile_watch_set(watches)
    batch = [
        make_post("flood near the school, evacuate!"),
        make_post("colour drill"),
        make_post("東京で地震", hashtags=("Flood",)),
        make_post(""),
        make_post("the US and the us"),
        make_post("colour 🔥 évacuez the school"),
    ]
    together = watch_set.match_many(batch, now=NOW)
    assert together == [watch_set.match(post, now=NOW) for post in batch]
    assert [[h.watch_id for h in found] for found in together] == [[1, 2], [], [4, 5], [], [6], [3]]


def test_words_under_not_and_other_and_parts_are_checked_only_for_anchored_posts():
    segment = Segment([make_entry(make_watch(1, "flood NOT the"), parse("flood NOT the"))])
    assert segment.by_atom and segment.first and segment.second  # "the" is not scanned for every post
    watch_set = compile_watch_set([make_watch(1, "flood NOT the"), make_watch(2, "the AND bridge")])
    assert [h.watch_id for h in watch_set.match(make_post("the flood"), now=NOW)] == []
    assert [h.watch_id for h in watch_set.match(make_post("a flood"), now=NOW)] == [1]
    assert [h.watch_id for h in watch_set.match(make_post("the bridge"), now=NOW)] == [2]


def test_an_explanation_lists_each_kind_of_part():
    text = "Evacuate the school: colour threat #flood"
    explanation = (
        compile_watch_set([make_watch(1, '(evacuat* NEAR/2 school) /colou?r/ "colour threat" hashtag:flood lang:en')])
        .match(make_post(text, hashtags=("flood",)), now=NOW)[0]
        .explanation
    )
    assert [(h.term, h.kind) for h in explanation.hits] == [
        ("(evacuat* NEAR/2 school)", "near"),
        ("/colou?r/", "regex"),
        ('"colour threat"', "phrase"),
        ("hashtag:flood", "filter"),
        ("lang:en", "filter"),
    ]


# --------------------------------------------------------------------------- incremental


def ids(watch_set: IncrementalWatchSet, text: str) -> list[int]:
    return [h.watch_id for h in watch_set.match(make_post(text), now=NOW)]


def test_an_incremental_set_sees_changes_at_once():
    watch_set = IncrementalWatchSet([make_watch(1, "flood"), make_watch(2, "bridge")])
    assert ids(watch_set, "flood at the bridge") == [1, 2]
    watch_set.upsert(make_watch(3, "bridge NEAR/2 flood"))
    assert ids(watch_set, "flood at the bridge") == [1, 2, 3]
    watch_set.upsert(make_watch(1, "fire"))  # an edit replaces the old version
    assert ids(watch_set, "flood at the bridge") == [2, 3]
    watch_set.remove(2)
    assert ids(watch_set, "flood at the bridge") == [3]
    assert ids(watch_set, "fire") == [1]
    assert len(watch_set) == 2


def test_a_bad_query_in_an_incremental_set_is_reported_and_matches_nothing():
    watch_set = IncrementalWatchSet([make_watch(1, "flood")])
    error = watch_set.upsert(make_watch(1, "flood AND"))
    assert error is not None and watch_set.errors[1] is error
    assert ids(watch_set, "flood") == []
    assert watch_set.upsert(make_watch(1, "flood")) is None
    assert watch_set.errors == {}
    assert ids(watch_set, "flood") == [1]


def test_a_big_delta_is_folded_into_a_new_base_in_the_background():
    watch_set = IncrementalWatchSet([make_watch(i, f"word{i}") for i in range(1, 50)], max_delta=10)
    watch_set.update(upserts=[make_watch(i, f"other{i}") for i in range(1, 12)], removals=[40])
    assert ids(watch_set, "other3 word3 word40 word45") == [3, 45]  # visible before the rebuild ends
    watch_set.rebuild(wait=True, timeout=30)
    assert watch_set.rebuilds >= 1
    assert watch_set.delta_size == 0
    assert ids(watch_set, "other3 word3 word40 word45") == [3, 45]


def test_inactive_watches_are_skipped_in_an_incremental_set():
    watch_set = IncrementalWatchSet([make_watch(1, "flood", expires_at=NOW + timedelta(seconds=1))])
    assert [h.watch_id for h in watch_set.match(make_post("flood"), now=NOW)] == [1]
    assert watch_set.match(make_post("flood"), now=NOW + timedelta(seconds=1)) == []


def test_watch_ids_are_required():
    with pytest.raises(ValueError, match="has no id"):
        IncrementalWatchSet([Watch(name="w", query="flood", purpose="p", legal_basis="b", owner="o")])


def test_term_hits_carry_their_spans_in_batches_with_other_scripts():
    watch_set = compile_watch_set([make_watch(1, "flood")])
    batch = [make_post("東京の洪水 flood"), make_post("Überschwemmung — FLOOD!")]
    found = watch_set.match_many(batch, now=NOW)
    assert found[0][0].explanation.hits == (TermHit("flood", "term", ((6, 11),)),)
    assert found[1][0].explanation.hits == (TermHit("flood", "term", ((17, 22),)),)
