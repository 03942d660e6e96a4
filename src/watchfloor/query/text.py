"""Text folding and word tokenisation, shared by the query parser and the matcher.

Both sides of a match go through the same folding and the same word rule, so a
query word and a post word are equal exactly when their folded forms are equal.
Folding is:

1. NFKC (fullwidth, ligatures such as "ﬁ", mathematical letters, superscripts ...),
2. accent folding: NFD, then drop diacritical marks (Latin/Greek/Cyrillic accents,
   Hebrew points, Arabic harakat) and invisible format characters (zero-width
   space, soft hyphen, ...),
3. case folding ("ß" -> "ss", "İ" -> "i"), and a few letters that carry their
   "accent" inside the letter ("ł" -> "l", "ø" -> "o", "ı" -> "i", "æ" -> "ae"),
4. NFC, so that marks that are kept (e.g. Devanagari vowel signs, the Japanese
   voicing mark) recompose.

Marks that are part of spelling in other scripts (Indic, Thai, Japanese kana ...)
are kept and count as part of the word.

Words: a word is a run of letters, digits, "_" and kept marks in the folded text,
except in scripts written without spaces between words (Chinese, Japanese, Korean,
Thai, Lao, Khmer, Myanmar, Yi): there every character (with the marks on it) is a
word of its own, so a query word in those scripts is found inside any run of text,
without a word segmenter.

There are two implementations of the same function:

* :func:`tokenize` folds cluster by cluster and keeps ``[start, end)`` offsets into
  the *original* text (folding can change lengths: "ß" -> "ss", "ﬁ" -> "fi");
  it is the reference, used for explanations and by the reference evaluator;
* :func:`word_stream` folds the whole text with a few C-level passes and returns
  only the folded words, joined by single spaces: it is what the matching engine
  scans.  ``word_stream(t) == " " + " ".join(tok.text for tok in tokenize(t)) + " "``
  for every text (checked by property tests).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Token", "TokenSpans", "fold", "light_fold", "tokenize", "word_stream", "word_stream_bytes"]


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a text: its folded form and where it is in the original text."""

    text: str  # the folded word
    start: int  # [start, end) character offsets in the original text
    end: int


# --------------------------------------------------------------------------- tables

# Diacritic marks dropped by accent folding (only those of category Mn/Me in these
# blocks).  Marks outside them are part of spelling and kept.
_STRIPPED_MARK_RANGES: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F),  # Combining Diacritical Marks
    (0x0483, 0x0489),  # Cyrillic combining titlo etc.
    (0x0591, 0x05C7),  # Hebrew points and cantillation
    (0x0610, 0x061A),  # Arabic marks
    (0x064B, 0x065F),  # Arabic harakat
    (0x0670, 0x0670),  # Arabic superscript alef
    (0x06D6, 0x06ED),  # Arabic Quranic marks
    (0x1AB0, 0x1AFF),  # Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF),  # Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF),  # Combining Diacritical Marks for Symbols
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation etc.)
    (0xFE20, 0xFE2F),  # Combining Half Marks
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

# Scripts written without spaces between words: each character is a word of its own.
UNSEGMENTED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols (々, 〆, 〇 ...)
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA000, 0xA4CF),  # Yi
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xA9E0, 0xA9FF),  # Myanmar extended B
    (0xAA60, 0xAA7F),  # Myanmar extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF65, 0xFFDC),  # halfwidth Katakana and Hangul
    (0x16FE0, 0x16FFF),  # ideographic symbols
    (0x1B000, 0x1B16F),  # Kana supplement and extensions
    (0x20000, 0x3FFFF),  # CJK extensions B and later, compatibility supplement
)

# Letters whose "accent" is part of the letter, so NFD does not separate it.
_LETTER_FOLDS: dict[str, str] = {
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "ø": "o",
    "ħ": "h",
    "ŧ": "t",
    "ƀ": "b",
    "ı": "i",
    "æ": "ae",
    "œ": "oe",
}
_LETTER_FOLD_TABLE = str.maketrans(_LETTER_FOLDS)
# The same letters for case-sensitive comparison (upper case kept upper case).
_LIGHT_LETTER_FOLD_TABLE = str.maketrans(
    {**_LETTER_FOLDS, "Ł": "L", "Đ": "D", "Ð": "D", "Ø": "O", "Ħ": "H", "Ŧ": "T", "Ƀ": "B", "Æ": "AE", "Œ": "OE"}
)

_LAST_CODE_POINT = 0x40000  # no letter, digit or mark lies above (apart from stripped ones, listed)


def _in_ranges(code: int, starts: list[int], ranges: tuple[tuple[int, int], ...]) -> bool:
    k = bisect_right(starts, code) - 1
    return k >= 0 and code <= ranges[k][1]


_STRIPPED_STARTS = [lo for lo, _ in _STRIPPED_MARK_RANGES]


def _is_stripped(ch: str) -> bool:
    """True for characters that folding removes: diacritics and invisible format chars."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return True
    if category not in ("Mn", "Me"):
        return False
    return _in_ranges(ord(ch), _STRIPPED_STARTS, _STRIPPED_MARK_RANGES)


def _ranges(codes: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for code in codes:
        if out and out[-1][1] == code - 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


def _mark_ranges() -> list[tuple[int, int]]:
    """Code point ranges of every combining mark (category M*), computed once."""
    return _ranges([c for c in (*range(0x20000), *range(0xE0000, 0xE1000)) if unicodedata.category(chr(c))[0] == "M"])


def _char_class(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges
    )


def _bmp(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(lo, min(hi, 0xFFFF)) for lo, hi in ranges if lo <= 0xFFFF]


_UNSEGMENTED_STARTS = [lo for lo, _ in UNSEGMENTED_RANGES]


def _in_unsegmented(code: int) -> bool:
    return _in_ranges(code, _UNSEGMENTED_STARTS, UNSEGMENTED_RANGES)


def _word_tables() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(word characters of unsegmented scripts, all other word characters)."""
    alone, joined = [], []
    for code in range(_LAST_CODE_POINT):
        ch = chr(code)
        if ch.isalnum() or ch == "_":  # exactly what ``\w`` means in ``re``
            (alone if _in_unsegmented(code) else joined).append(code)
    return _ranges(alone), _ranges(joined)


def _token_pattern(marks: list[tuple[int, int]], alone: list[tuple[int, int]], joined: list[tuple[int, int]]) -> str:
    m, a, j = _char_class(marks), _char_class(alone), _char_class(joined)
    return rf"[{a}][{m}]*|[{j}][{j}{m}]*"


_ASCII_WORD = re.compile(r"[A-Za-z0-9_]+")
_BEYOND_BMP_RUN = re.compile("[\U00010000-\U0010ffff]+")
_LETTER_FOLD_ANY = re.compile(f"[{''.join(_LETTER_FOLDS)}]")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


def _continues_cluster(ch: str) -> bool:
    """True if ``ch`` belongs to the cluster of the character before it.

    Invisible format characters (zero-width space, soft hyphen ...) join the cluster
    before them: folding drops them, so what follows composes as if they were absent.
    """
    category = unicodedata.category(ch)
    if category[0] == "M" or category == "Cf":
        return True
    code = ord(ch)
    # Hangul conjoining vowels and final consonants compose with the jamo before them.
    return 0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF


# --------------------------------------------------------------------------- folding (reference)


def _drop_stripped(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not _is_stripped(ch))


@lru_cache(maxsize=65536)
def _fold_cluster(cluster: str) -> str:
    """Fold one cluster (a base character and its marks); see the module docstring."""
    text = _drop_stripped(unicodedata.normalize("NFKC", cluster))
    # Case folding can create marks again ("İ" -> "i" + dot above), hence a second pass.
    text = _drop_stripped(text.casefold().translate(_LETTER_FOLD_TABLE))
    return unicodedata.normalize("NFC", text)


def _clusters(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into clusters, as (start, end) pairs."""
    out: list[tuple[int, int]] = []
    i = start
    while i < end:
        j = i + 1
        while j < end and _continues_cluster(text[j]):
            j += 1
        out.append((i, j))
        i = j
    return out


class _OffsetMap:
    """Maps offsets of the folded text back to [start, end) ranges of the original.

    The folded text is a sequence of segments.  A *linear* segment maps character
    for character (ASCII runs, one character folding to one character); any other
    segment is one cluster, and every folded character in it maps to the whole
    cluster.
    """

    __slots__ = ("_folded_starts", "_linear", "_original")

    def __init__(self) -> None:
        self._folded_starts: list[int] = []
        self._original: list[tuple[int, int]] = []
        self._linear: list[bool] = []

    def add(self, folded_start: int, folded_len: int, start: int, end: int, linear: bool) -> None:
        if folded_len == 0:
            return
        if linear and self._linear and self._linear[-1]:
            last_start, last_end = self._original[-1]
            last_folded_end = self._folded_starts[-1] + (last_end - last_start)
            if last_end == start and last_folded_end == folded_start:
                self._original[-1] = (last_start, end)
                return
        self._folded_starts.append(folded_start)
        self._original.append((start, end))
        self._linear.append(linear)

    def span(self, offset: int) -> tuple[int, int]:
        """The original [start, end) of the folded character at ``offset``."""
        k = bisect_right(self._folded_starts, offset) - 1
        start, end = self._original[k]
        if self._linear[k]:
            at = start + offset - self._folded_starts[k]
            return at, at + 1
        return start, end


def _fold_with_offsets(text: str) -> tuple[str, _OffsetMap]:
    pieces: list[str] = []
    offsets = _OffsetMap()
    folded_len = 0

    def add_ascii(start: int, end: int) -> None:
        nonlocal folded_len
        if start < end:
            pieces.append(text[start:end].lower())
            offsets.add(folded_len, end - start, start, end, linear=True)
            folded_len += end - start

    def add_clusters(start: int, end: int) -> None:
        nonlocal folded_len
        for c_start, c_end in _clusters(text, start, end):
            folded = _fold_cluster(text[c_start:c_end])
            linear = len(folded) == 1 and c_end - c_start == 1
            pieces.append(folded)
            offsets.add(folded_len, len(folded), c_start, c_end, linear)
            folded_len += len(folded)

    done = 0
    for run in _NON_ASCII_RUN.finditer(text):
        start = run.start()
        # A combining mark after an ASCII letter belongs to that letter's cluster.
        if start > done and _continues_cluster(text[start]):
            start -= 1
        add_ascii(done, start)
        add_clusters(start, run.end())
        done = run.end()
    add_ascii(done, len(text))
    return "".join(pieces), offsets


def fold(text: str) -> str:
    """``text`` folded for matching: NFKC, accents dropped, case folded."""
    if text.isascii():
        return text.lower()
    return _fold_with_offsets(text)[0]


def light_fold(text: str) -> str:
    """``text`` folded like :func:`fold` but keeping upper and lower case (for ``{Word}``)."""
    text = unicodedata.normalize("NFKC", text)
    text = _drop_stripped(text).translate(_LIGHT_LETTER_FOLD_TABLE)
    return unicodedata.normalize("NFC", _drop_stripped(text))


def tokenize(text: str) -> list[Token]:
    """The words of ``text``, folded, with [start, end) offsets into ``text`` itself.

    A word is a run of letters, digits, "_" and combining marks in the folded text
    (so "#flood" holds the word "flood" and "don't" holds "don" and "t"); in
    Chinese, Japanese, Korean, Thai, Lao, Khmer and Myanmar text every character
    is a word.  One original character may yield several words ("½" -> "1", "2");
    they then share its offsets.
    """
    if text.isascii():
        return [Token(m.group().lower(), m.start(), m.end()) for m in _ASCII_WORD.finditer(text)]
    return _tokenize_slowly(text)


def _tokenize_slowly(text: str) -> list[Token]:
    """:func:`tokenize` without the ASCII fast path (for tests of that fast path)."""
    folded, offsets = _fold_with_offsets(text)
    return [
        Token(m.group(), offsets.span(m.start())[0], offsets.span(m.end() - 1)[1])
        for m in _tables().token.finditer(folded)
    ]


class TokenSpans:
    """Where each word of a text lies in the original text, worked out only as far as asked.

    ``spans.start(i)``/``spans.end(i)`` equal ``tokenize(text)[i].start``/``.end``.  Texts
    whose folding keeps every character in place (ASCII, emoji and punctuation, most
    Chinese and Japanese, ...) are read with plain string searches; others take the
    cluster-by-cluster path of :func:`tokenize`.
    """

    __slots__ = ("_done", "_folded", "_offsets", "_spans", "_words")

    def __init__(self, text: str, words: list[str] | None = None) -> None:
        self._offsets: _OffsetMap | None = None
        self._words = words  # the folded words, when the caller has them
        self._spans: list[tuple[int, int]] = []
        self._done = False
        if text.isascii():
            self._folded = text.lower()
            if words is None:
                self._spans = [m.span() for m in _ASCII_WORD.finditer(self._folded)]
                self._done = True
            return
        in_place = _fold_in_place(text)
        if in_place is not None:
            self._folded = in_place
            tables = _tables()
            pattern = tables.token if _BEYOND_BMP.search(in_place) else tables.token_bmp
            self._spans = [m.span() for m in pattern.finditer(in_place)]
        else:
            self._folded, self._offsets = _fold_with_offsets(text)
            self._spans = [m.span() for m in _tables().token.finditer(self._folded)]
        self._done = True

    def _span(self, i: int) -> tuple[int, int]:
        spans = self._spans
        if not self._done and i >= len(spans):
            words, folded = self._words or [], self._folded
            at = spans[-1][1] if spans else 0
            while len(spans) <= i and len(spans) < len(words):
                word = words[len(spans)]
                found = folded.find(word, at)  # the next word starts at the next letter or digit
                spans.append((found, found + len(word)))
                at = found + len(word)
        return spans[i]

    def __len__(self) -> int:
        if not self._done:
            return len(self._words or ())
        return len(self._spans)

    def start(self, i: int) -> int:
        start = self._span(i)[0]
        return start if self._offsets is None else self._offsets.span(start)[0]

    def end(self, i: int) -> int:
        end = self._span(i)[1]
        return end if self._offsets is None else self._offsets.span(end - 1)[1]


def _folds_to_itself(ch: str) -> bool:
    code = ord(ch)
    if 0x1100 <= code <= 0x11FF or 0xA960 <= code <= 0xA97F or 0xD7B0 <= code <= 0xD7FF:
        return False  # conjoining Hangul jamo compose with their neighbours
    if ch.lower() != ch or ch in _LETTER_FOLDS or _continues_cluster(ch) or _is_stripped(ch):
        return False
    if unicodedata.normalize("NFKC", ch) != ch or ch.casefold() != ch:
        return False
    # A canonical decomposition is fine if folding drops nothing from it and NFC puts it
    # back together (kana with a voicing mark, Hangul syllables).
    return not any(_is_stripped(part) for part in unicodedata.normalize("NFD", ch))


@lru_cache(maxsize=4096)
def _in_place_beyond_bmp(ch: str) -> str | None:
    return " " if _is_separator(ch) else ch if _folds_to_itself(ch) else None


def _fold_in_place(text: str) -> str | None:
    """The folded text if folding keeps every character in its place, else None."""
    tables = _tables()
    if tables.not_in_place_bmp.search(text):
        return None
    if _BEYOND_BMP.search(text):
        moved = False

        def in_place(match: re.Match[str]) -> str:
            nonlocal moved
            out = [_in_place_beyond_bmp(ch) for ch in match.group()]
            if None in out:
                moved = True
                return match.group()
            return "".join(out)  # type: ignore[arg-type]

        text = _BEYOND_BMP_RUN.sub(in_place, text)
        if moved:
            return None
    return tables.bmp_separator.sub(" ", text).lower()


# --------------------------------------------------------------------------- folding (fast)


def _is_separator(ch: str) -> bool:
    """True for characters folding leaves alone and that never belong to a word (emoji,
    symbols, punctuation ...): the fast path turns them into spaces before folding."""
    category = unicodedata.category(ch)
    if category[0] in "LNM" or category in ("Cf", "Cs") or ch.isalnum() or ch == "_":
        return False
    return unicodedata.normalize("NFKD", ch) == ch and ch.casefold() == ch and ch not in _LETTER_FOLDS


@lru_cache(maxsize=4096)
def _fold_beyond_bmp_char(ch: str) -> str:
    return " " if _is_separator(ch) else "" if _is_stripped(ch) else ch


def _fold_beyond_bmp(match: re.Match[str]) -> str:
    """Separators beyond the BMP (most emoji) become spaces, stripped ones go."""
    return "".join(map(_fold_beyond_bmp_char, match.group()))


Ranges = list[tuple[int, int]]


def compute_character_ranges() -> dict[str, Ranges]:
    """Every character table folding and word splitting need, as code point ranges.

    Looking at every code point takes about half a second, so the result for the Unicode
    version of this Python is shipped in :mod:`watchfloor.query._unicode_tables` (and
    recomputed on first use under any other version); :func:`write_character_ranges`
    writes that module.
    """
    marks = _mark_ranges()
    alone, joined = _word_tables()
    separators = [c for c in range(0x80, 0x10000) if _is_separator(chr(c))]
    stripped = [c for c in range(0x10000) if _is_stripped(chr(c))]
    in_place = [c for c in range(0x80, 0x10000) if _is_separator(chr(c)) or _folds_to_itself(chr(c))]
    return {
        "marks": marks,
        "alone": alone,
        "joined": joined,
        "bmp_separators": _ranges(separators),
        "bmp_stripped": _ranges(stripped),
        "bmp_in_place": _ranges(in_place),
    }


def _character_ranges() -> dict[str, Ranges]:
    try:
        from . import _unicode_tables as shipped
    except ImportError:  # pragma: no cover - the module is part of the package
        shipped = None
    if shipped is not None and unicodedata.unidata_version == shipped.UNIDATA_VERSION:
        return shipped.RANGES
    return compute_character_ranges()


class _Tables:
    """The compiled patterns of folding and word splitting, built on first use."""

    def __init__(self) -> None:
        ranges = _character_ranges()
        marks, alone, joined = ranges["marks"], ranges["alone"], ranges["joined"]
        # A word: one character of an unsegmented script with the marks on it, or a run of
        # other letters, digits, "_" and marks that starts with a letter, digit or "_".
        self.token = re.compile(_token_pattern(marks, alone, joined))
        # The same for texts without characters beyond the BMP (``re`` is much faster on
        # classes that stay inside the BMP).
        self.token_bmp = re.compile(_token_pattern(_bmp(marks), _bmp(alone), _bmp(joined)))
        self.bmp_separator = re.compile(f"[{_char_class(ranges['bmp_separators'])}]")
        self.bmp_stripped = re.compile(f"[{_char_class(ranges['bmp_stripped'])}]+")
        # A BMP character that folding changes or moves (not ASCII, not a separator, not itself).
        self.not_in_place_bmp = re.compile(
            "[^\\x00-\\x7f" + _char_class(ranges["bmp_in_place"]) + "\\U00010000-\\U0010ffff]"
        )


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


def _fold_fast(text: str) -> str:
    """The folded text with every separator written as a space (not offset-preserving)."""
    text = _BEYOND_BMP_RUN.sub(_fold_beyond_bmp, text)
    tables = _tables()
    text = tables.bmp_separator.sub(" ", text)
    if text.isascii():
        return text.lower()
    text = tables.bmp_stripped.sub("", unicodedata.normalize("NFKD", text))
    if text.isascii():
        return text.lower()
    text = text.casefold()
    if _LETTER_FOLD_ANY.search(text):
        text = text.translate(_LETTER_FOLD_TABLE)
    text = tables.bmp_stripped.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text)


# ASCII bytes -> the same byte lower-cased if it is a letter, digit or "_", else a space.
_ASCII_WORD_BYTES = bytes(
    (c | 0x20 if 65 <= c <= 90 else c) if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95) else 32
    for c in range(256)
)


def word_stream_bytes(text: str) -> bytes:
    """The folded words of ``text`` joined by single spaces, with a space before and after, in UTF-8.

    This is what the matching engine scans: a word is `` word `` in it, a phrase
    `` two words ``, whatever the punctuation, emoji or case in the post.
    """
    if text.isascii():
        words = text.encode().translate(_ASCII_WORD_BYTES).split()
    else:
        folded = _fold_fast(text)
        if folded.isascii():
            words = folded.encode().translate(_ASCII_WORD_BYTES).split()
        else:
            tables = _tables()
            pattern = tables.token if _BEYOND_BMP.search(folded) else tables.token_bmp
            found = pattern.findall(folded)
            return (" " + " ".join(found) + " ").encode() if found else b" "
    return b" " + b" ".join(words) + b" " if words else b" "


def word_stream(text: str) -> str:
    """:func:`word_stream_bytes` as text."""
    return word_stream_bytes(text).decode()


def write_character_ranges(path: str | None = None) -> None:
    """Write :mod:`watchfloor.query._unicode_tables` for this Python's Unicode version.

    Run ``python -c "from watchfloor.query.text import write_character_ranges as w; w()"``.
    """
    import os

    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_unicode_tables.py")
    lines = [
        '"""Character ranges for :mod:`watchfloor.query.text`, generated by ``write_character_ranges()``.',
        "",
        "Do not edit: regenerate when Python's Unicode version changes (text.py recomputes them",
        'on first use when the version here does not match)."""',
        "",
        f'UNIDATA_VERSION = "{unicodedata.unidata_version}"',
        "",
        "# fmt: off",
        "RANGES: dict[str, list[tuple[int, int]]] = {",
    ]
    for name, ranges in compute_character_ranges().items():
        lines.append(f'    "{name}": [')
        for k in range(0, len(ranges), 4):
            lines.append("        " + " ".join(f"({lo:#x}, {hi:#x})," for lo, hi in ranges[k : k + 4]))
        lines.append("    ],")
    lines += ["}", "# fmt: on"]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
