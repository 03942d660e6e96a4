"""Folding and tokenisation: folded words, and offsets that point into the original text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watchfloor.query.text import Token, TokenSpans, _tokenize_slowly, fold, tokenize, word_stream


def words(text: str) -> list[tuple[str, str]]:
    """(folded word, original characters it came from) for every token of ``text``."""
    return [(t.text, text[t.start : t.end]) for t in tokenize(text)]


def test_ascii_words_are_lower_cased_and_split_on_punctuation():
    assert tokenize("Hello, World! snake_case 42x") == [
        Token("hello", 0, 5),
        Token("world", 7, 12),
        Token("snake_case", 14, 24),
        Token("42x", 25, 28),
    ]


def test_sharp_s_folds_to_ss_and_keeps_the_original_span():
    assert words("Die Straße!") == [("die", "Die"), ("strasse", "Straße")]
    assert fold("STRASSE") == fold("straße") == "strasse"


def test_ligatures_fold_to_letters_and_map_back_to_the_ligature():
    text = "ﬁre and ﬂood"
    assert words(text) == [("fire", "ﬁre"), ("and", "and"), ("flood", "ﬂood")]
    assert tokenize(text)[2] == Token("flood", 8, 12)


def test_combining_accents_are_dropped_and_the_span_keeps_them():
    decomposed = "e\u0301cole cafe\u0301 ok"
    assert words(decomposed) == [("ecole", "e\u0301cole"), ("cafe", "cafe\u0301"), ("ok", "ok")]
    assert tokenize(decomposed)[1] == Token("cafe", 7, 12)
    assert words("École CAFÉ") == [("ecole", "École"), ("cafe", "CAFÉ")]


def test_emoji_next_to_words_separates_them():
    text = "fire🔥flood 🔥#evacuate🔥"
    assert words(text) == [("fire", "fire"), ("flood", "flood"), ("evacuate", "evacuate")]
    assert tokenize(text)[1] == Token("flood", 5, 10)
    assert tokenize(text)[2] == Token("evacuate", 13, 21)


def test_turkish_dotted_and_dotless_i_fold_to_plain_i():
    assert words("İstanbul ISTANBUL ıstanbul") == [
        ("istanbul", "İstanbul"),
        ("istanbul", "ISTANBUL"),
        ("istanbul", "ıstanbul"),
    ]


def test_hashtags_and_mentions_contain_the_plain_word():
    assert words("#Flood @river") == [("flood", "Flood"), ("river", "river")]


def test_invisible_characters_inside_a_word_do_not_split_it():
    text = "b\u200bomb un\u00adsafe"  # zero-width space, soft hyphen
    assert words(text) == [("bomb", "b\u200bomb"), ("unsafe", "un\u00adsafe")]


def test_fullwidth_and_mathematical_letters_fold_to_plain_letters():
    assert [t.text for t in tokenize("ｂｏｍｂ 𝐛𝐨𝐦𝐛")] == ["bomb", "bomb"]
    assert tokenize("𝐛𝐨𝐦𝐛!")[0] == Token("bomb", 0, 4)  # offsets count code points


def test_letters_with_built_in_strokes_fold():
    assert [t.text for t in tokenize("Łódź Ærø Søren")] == ["lodz", "aero", "soren"]


def test_one_character_that_folds_to_several_words_gives_each_its_span():
    assert tokenize("½") == [Token("1", 0, 1), Token("2", 0, 1)]


def test_greek_and_cyrillic_accents_fold():
    assert fold("Ἀθῆναι") == "αθηναι"
    assert fold("Ёлка") == "елка"


def test_marks_that_spell_words_are_kept_and_do_not_split_words():
    hindi = "हिंदी समाचार"
    assert words(hindi) == [("हिंदी", "हिंदी"), ("समाचार", "समाचार")]
    assert fold("が") != fold("か")  # the Japanese voicing mark changes the word


def test_empty_and_wordless_texts_have_no_tokens():
    assert tokenize("") == []
    assert tokenize("🔥 !!! ... ") == []


@given(st.text())
def test_token_spans_are_ordered_and_inside_the_text(text: str):
    tokens = tokenize(text)
    for token in tokens:
        assert 0 <= token.start < token.end <= len(text)
        assert token.text
        # Folding just the token's original characters gives that word back.
        assert token.text in [t.text for t in tokenize(text[token.start : token.end])]
    starts = [t.start for t in tokens]
    assert starts == sorted(starts)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_fast_path_agrees_with_the_general_path(text: str):
    assert tokenize(text) == _tokenize_slowly(text)


@given(st.text())
def test_folding_a_token_again_changes_nothing(text: str):
    for token in tokenize(text):
        assert [t.text for t in tokenize(token.text)] == [token.text]


@given(
    st.text() | st.text(alphabet=st.sampled_from(list("aZé\u0301ß İıł🔥\u200b東京地震ไฟไหม้서울ｂ½ﬁ#-'.\n\u1100\u1161")))
)
def test_token_spans_agree_with_the_tokeniser(text: str):
    tokens = tokenize(text)
    words = [t.text for t in tokens]
    for spans in (TokenSpans(text), TokenSpans(text, words)):
        assert len(spans) == len(tokens)
        for i in reversed(range(len(tokens))):  # any order: spans are worked out on demand
            assert (spans.start(i), spans.end(i)) == (tokens[i].start, tokens[i].end)


@given(st.text())
def test_the_word_stream_holds_the_tokens(text: str):
    words = [t.text for t in tokenize(text)]
    assert word_stream(text) == (" " + " ".join(words) + " " if words else " ")


def test_cjk_and_thai_characters_are_words_of_their_own():
    assert [t.text for t in tokenize("東京で地震5強 iPhone手机")] == [
        "東",
        "京",
        "で",
        "地",
        "震",
        "5",
        "強",
        "iphone",
        "手",
        "机",
    ]
    assert [t.text for t in tokenize("ไฟไหม้")] == ["ไ", "ฟ", "ไ", "ห", "ม้"]
    assert [t.text for t in tokenize("서울에서")] == ["서", "울", "에", "서"]
    assert word_stream("東京 🔥 Fire!") == " 東 京 fire "


def test_characters_read_in_place_really_fold_to_themselves():
    from watchfloor.query.text import _fold_cluster, _is_separator, _tables

    for code in range(0x80, 0x10000):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF or _tables().not_in_place_bmp.match(ch) or _is_separator(ch):
            continue
        assert _fold_cluster.__wrapped__(ch) == ch, hex(code)


def test_the_shipped_character_tables_are_those_of_this_python():
    import unicodedata

    from watchfloor.query import _unicode_tables
    from watchfloor.query.text import compute_character_ranges

    assert unicodedata.unidata_version == _unicode_tables.UNIDATA_VERSION, "run write_character_ranges()"
    assert compute_character_ranges() == _unicode_tables.RANGES
