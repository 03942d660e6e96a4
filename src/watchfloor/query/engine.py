"""The matching engine: a set of watches compiled into Hyperscan databases.

A post is matched in three steps:

1. Its text becomes a *word stream* (:func:`~watchfloor.query.text.word_stream`):
   the folded words joined by single spaces, `` like this ``.  In it a word is the
   literal `` word ``, a phrase `` two words ``, a prefix `` evacuat``, an inner
   wildcard `` evac[^ ]*ate `` and a regex `` (?:...) ``: word boundaries become
   plain characters, so no word-boundary assertion is ever compiled.
2. Every distinct *atom* (term, phrase or regex) of every watch is one pattern of a
   multi-pattern automaton (Hyperscan, shipped as Vectorscan by the ``hyperscan``
   wheel): literals go to a literal database, wildcards and regexes to a regex
   database.  The streams of a whole batch of posts are scanned in one call,
   separated by line breaks that no pattern can cross.  Atoms are split in two
   passes: *anchors* (for every watch, a set of atoms one of which any match must
   contain) are scanned for every post; the other atoms (the rest of an AND, the
   words under NOT) only for posts that hit an anchor.
3. Only the watches anchored by a hit are evaluated: the boolean tree, filters and
   NEAR distances, over the hits.  Explanations (which parts matched, where) are
   built only for watches that match.

What "matches" means is defined by :mod:`watchfloor.query.reference`, the slow
evaluator this engine is tested against.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import hyperscan

from ..model import Explanation, Post, TermHit, Watch, WatchHit
from .fields import domain_matches, has, link_hosts, link_urls, post_hashtags, post_langs
from .languages import language_matches, normalise_language
from .patterns import WordPattern, glob_matches, pattern_kind, phrase_patterns, term_patterns
from .reference import label
from .regex import HYPERSCAN_REGEX_FLAGS, compile_regex
from .text import TokenSpans, light_fold, word_stream_bytes
from .tree import ANCHOR_FIELDS, And, Field, Near, Node, Not, Or, Phrase, Regex, Term

__all__ = ["Batch", "Entry", "LanguageHook", "PostText", "Segment", "make_entry", "prepare"]

# Languages for a post that declares none (``lang:`` and ``Watch.languages`` ask it lazily).
LanguageHook = Callable[[Post], tuple[str, ...]]

# Words so common that an AND never picks them as its anchor when it has another choice.
_COMMON_TEXT = (
    "a an and are as at be but by for from has have he her his i in is it its me my no not of on or our "
    "rt she so that the their them they this to us was we were what when who will with you your de da "
    "do das dos e em na no o os para por que se um uma la el en es los las y con del al le les des du "
    "et il elle est un une pour pas sur der die das und ist nicht ein eine zu den mit "
)
_COMMON_WORDS = frozenset(_COMMON_TEXT.split())


# --------------------------------------------------------------------------- posts


class PostText:
    """One post's text as the engine reads it, with the views computed on demand."""

    __slots__ = ("_detect", "_hashtags", "_hosts", "_langs", "_starts", "_tokens", "_urls", "data", "post")

    def __init__(self, post: Post, data: bytes | None = None, detect_language: LanguageHook | None = None) -> None:
        self.post = post
        self._detect = detect_language  # asked only when a filter needs the language of a post without one
        self.data = word_stream_bytes(post.text) if data is None else data  # the word stream, UTF-8
        self._starts: list[int] | None = None
        self._tokens: TokenSpans | None = None
        self._langs: tuple[str, ...] | None = None
        self._hashtags: frozenset[str] | None = None
        self._hosts: frozenset[str] | None = None
        self._urls: tuple[str, ...] | None = None

    @property
    def starts(self) -> list[int]:
        """Byte offset in the stream of the start of every word."""
        if self._starts is None:
            starts, at = [], 1
            if len(self.data) > 1:
                for word in self.data[1:-1].split(b" "):
                    starts.append(at)
                    at += len(word) + 1
            self._starts = starts
        return self._starts

    @property
    def tokens(self) -> TokenSpans:
        """Where the words are in the original text (the reference tokeniser, on demand)."""
        if self._tokens is None:
            text = self.post.text
            self._tokens = TokenSpans(text, self.data.decode().split() if text.isascii() else None)
            if len(self._tokens) != len(self.starts):  # pragma: no cover - the property tests guard this
                raise AssertionError(f"word stream and tokens disagree on {self.post.text!r}")
        return self._tokens

    @property
    def langs(self) -> tuple[str, ...]:
        if self._langs is None:
            langs = post_langs(self.post)
            if not langs and self._detect is not None:  # identified lazily (signals/language.py)
                langs = tuple(normalise_language(lang) for lang in self._detect(self.post))
            self._langs = langs
        return self._langs

    @property
    def hashtags(self) -> frozenset[str]:
        if self._hashtags is None:
            self._hashtags = post_hashtags(self.post) if self.post.hashtags else frozenset()
        return self._hashtags

    @property
    def hosts(self) -> frozenset[str]:
        if self._hosts is None:
            self._hosts = link_hosts(self.post) if self.post.links else frozenset()
        return self._hosts

    @property
    def urls(self) -> tuple[str, ...]:
        if self._urls is None:
            self._urls = link_urls(self.post) if self.post.links else ()
        return self._urls


class _Scan:
    """One post against one segment: the atoms that hit, where, and cached answers."""

    __slots__ = ("cache", "hits", "text")

    def __init__(self, text: PostText, hits: dict[int, list[tuple[int, int]]]) -> None:
        self.text = text
        self.hits = hits
        self.cache: dict[int, object] = {}


# --------------------------------------------------------------------------- compiled parts

Occurrences = set[tuple[int, int]]


class _Part:
    __slots__ = ()

    def test(self, scan: _Scan) -> bool:
        raise NotImplementedError

    def occurrences(self, scan: _Scan) -> Occurrences:
        raise NotImplementedError

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        """Append the hits of the positive parts of the branches that make this true."""
        raise NotImplementedError


def _spans(occurrences: Occurrences, tokens: TokenSpans) -> tuple[tuple[int, int], ...]:
    return tuple(sorted({(tokens.start(i), tokens.end(j - 1)) for i, j in occurrences}))


class _Atom(_Part):
    """A term, phrase or regex: one pattern of the automaton."""

    __slots__ = ("atom", "kind", "label", "width")

    def __init__(self, atom: int, width: int, label: str, kind: str) -> None:
        self.atom, self.width, self.label, self.kind = atom, width, label, kind

    def test(self, scan: _Scan) -> bool:
        return self.atom in scan.hits

    def occurrences(self, scan: _Scan) -> Occurrences:
        found = scan.hits.get(self.atom)
        if not found:
            return set()
        starts = scan.text.starts
        if self.width:  # a fixed number of words, ending where the match ends
            width = self.width
            return {
                (last - width + 1, last + 1) for _, end in found if (last := bisect_right(starts, end - 1) - 1) >= 0
            }
        return {(bisect_right(starts, start), bisect_right(starts, end - 1)) for start, end in found}

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        if self.atom in scan.hits:
            hits.append(TermHit(self.label, self.kind, _spans(self.occurrences(scan), scan.text.tokens)))


class _CaseSensitive(_Atom):
    """A ``{Word}``: the folded atom, then the case of the post's own letters checked."""

    __slots__ = ("cased",)

    def __init__(self, atom: int, patterns: Sequence[WordPattern], label: str, kind: str) -> None:
        super().__init__(atom, len(patterns), label, kind)
        self.cased = tuple(p.cased or "" for p in patterns)

    def occurrences(self, scan: _Scan) -> Occurrences:
        cached = scan.cache.get(id(self))
        if cached is None:
            found = _Atom.occurrences(self, scan)
            if found:
                text, tokens = scan.text.post.text, scan.text.tokens
                found = {
                    (i, j)
                    for i, j in found
                    if all(
                        glob_matches(cased, light_fold(text[tokens.start(i + k) : tokens.end(i + k)]))
                        for k, cased in enumerate(self.cased)
                    )
                }
            scan.cache[id(self)] = cached = found
        return cached  # type: ignore[return-value]

    def test(self, scan: _Scan) -> bool:
        return self.atom in scan.hits and bool(self.occurrences(scan))

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        found = self.occurrences(scan) if self.atom in scan.hits else None
        if found:
            hits.append(TermHit(self.label, self.kind, _spans(found, scan.text.tokens)))


class _Filter(_Part):
    __slots__ = ("label", "name", "value")

    def __init__(self, name: str, value: str, label: str) -> None:
        self.name, self.value, self.label = name, value, label

    def test(self, scan: _Scan) -> bool:
        text, name, value = scan.text, self.name, self.value
        if name == "lang":
            return language_matches(value, text.langs)
        if name == "platform":
            return text.post.platform.lower() == value
        if name == "hashtag":
            return value in text.hashtags
        if name == "domain":
            return domain_matches(value, text.hosts)
        if name == "author":
            return text.post.author == value
        if name == "mention":
            return value in text.post.mentions
        if name == "url":
            return any(url.startswith(value) for url in text.urls)
        return has(value, text.post)

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        if self.test(scan):
            hits.append(TermHit(self.label, "filter"))


class _All(_Part):
    __slots__ = ("children", "ordered")

    def __init__(self, children: Sequence[_Part]) -> None:
        self.children = tuple(children)  # query order, for explanations
        self.ordered = tuple(sorted(children, key=_cost))  # cheap and selective first

    def test(self, scan: _Scan) -> bool:
        return all(child.test(scan) for child in self.ordered)

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        if self.test(scan):
            for child in self.children:
                child.collect(scan, hits)


class _Any(_Part):
    __slots__ = ("children",)

    def __init__(self, children: Sequence[_Part]) -> None:
        self.children = tuple(children)

    def test(self, scan: _Scan) -> bool:
        return any(child.test(scan) for child in self.children)

    def occurrences(self, scan: _Scan) -> Occurrences:
        found: Occurrences = set()
        for child in self.children:
            found |= child.occurrences(scan)
        return found

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        for child in self.children:  # every true alternative is part of the why
            child.collect(scan, hits)


class _None(_Part):
    __slots__ = ("child",)

    def __init__(self, child: _Part) -> None:
        self.child = child

    def test(self, scan: _Scan) -> bool:
        return not self.child.test(scan)

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        return  # what is absent is never a hit


class _Near(_Part):
    __slots__ = ("distance", "label", "left", "ordered", "right")

    def __init__(self, left: _Part, right: _Part, distance: int, ordered: bool, label: str) -> None:
        self.left, self.right, self.distance, self.ordered, self.label = left, right, distance, ordered, label

    def occurrences(self, scan: _Scan) -> Occurrences:
        cached = scan.cache.get(id(self))
        if cached is not None:
            return cached  # type: ignore[return-value]
        found: Occurrences = set()
        lefts = self.left.occurrences(scan)
        rights = self.right.occurrences(scan) if lefts else set()
        distance, ordered = self.distance, self.ordered
        for a_start, a_end in lefts:
            for b_start, b_end in rights:
                if a_end <= b_start and b_start - a_end <= distance:
                    found.add((a_start, b_end))
                if not ordered and b_end <= a_start and a_start - b_end <= distance:
                    found.add((b_start, a_end))
        scan.cache[id(self)] = found
        return found

    def test(self, scan: _Scan) -> bool:
        return bool(self.occurrences(scan))

    def collect(self, scan: _Scan, hits: list[TermHit]) -> None:
        found = self.occurrences(scan)
        if found:
            hits.append(TermHit(self.label, "near", _spans(found, scan.text.tokens)))


def _cost(part: _Part) -> int:
    if isinstance(part, _Filter) or type(part) is _Atom:
        return 0
    if isinstance(part, _CaseSensitive | _Near):
        return 2
    return 1


# --------------------------------------------------------------------------- atoms


@dataclass(frozen=True, slots=True)
class _AtomSpec:
    pattern: bytes
    literal: bool  # goes to the literal database
    flags: int  # for the regex database
    width: int  # words per match (0: variable, start offsets reported)
    words: tuple[str, ...]  # folded words (for picking anchors); () for a regex


def _hs_text(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)


def _glob_spec(patterns: Sequence[WordPattern]) -> _AtomSpec:
    globs = [p.glob for p in patterns]
    words = tuple(g.split("*")[0] for g in globs)
    last = globs[-1]
    literal = all("*" not in g for g in globs[:-1]) and ("*" not in last or last.index("*") == len(last) - 1)
    if literal:
        text = " " + " ".join(globs)
        text = text[:-1] if text.endswith("*") else text + " "
        return _AtomSpec(text.encode(), True, 0, len(globs), words)
    pieces = ["[^ \\n]*".join(_hs_text(piece) for piece in glob.split("*")) for glob in globs]
    regex = " " + " ".join(pieces)
    regex = regex if last.endswith("*") else regex + " "
    return _AtomSpec(regex.encode(), False, hyperscan.HS_FLAG_UTF8, len(globs), words)


def _regex_spec(pattern: str) -> _AtomSpec:
    return _AtomSpec(compile_regex(pattern).hyperscan.encode(), False, HYPERSCAN_REGEX_FLAGS, 0, ())


def _atom_rarity(spec: _AtomSpec) -> float:
    """Lower is better as an anchor: long, uncommon words are rare."""
    if not spec.words:
        return 5.0  # a regex: unknown, and slower to scan
    best = max(spec.words, key=len)
    if all(word in _COMMON_WORDS for word in spec.words):
        return 50.0
    return 1.0 / (1 + len(best))


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class Entry:
    """A watch with its parsed query, ready to compile into a segment."""

    watch: Watch
    tree: Node
    languages: tuple[str, ...]
    sources: frozenset[str]


def make_entry(watch: Watch, tree: Node) -> Entry:
    return Entry(
        watch=watch,
        tree=tree,
        languages=tuple(normalise_language(lang) for lang in watch.languages),
        sources=frozenset(watch.sources),
    )


Anchor = tuple[str, object]  # ("atom", atom index) or (field name, value)


class _Compiler:
    """Turns trees into parts, sharing one atom per distinct pattern."""

    def __init__(self) -> None:
        self.specs: list[_AtomSpec] = []
        self._index: dict[tuple[bytes, bool, int], int] = {}

    def atom(self, spec: _AtomSpec) -> int:
        key = (spec.pattern, spec.literal, spec.flags)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.specs)
            self.specs.append(spec)
        return found

    def part(self, node: Node) -> _Part:
        if isinstance(node, Term | Phrase):
            patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
            atom = self.atom(_glob_spec(patterns))
            kind = pattern_kind(node)
            if isinstance(node, Term) and node.case_sensitive:
                return _CaseSensitive(atom, patterns, label(node), kind)
            return _Atom(atom, len(patterns), label(node), kind)
        if isinstance(node, Regex):
            return _Atom(self.atom(_regex_spec(node.pattern)), 0, label(node), "regex")
        if isinstance(node, Field):
            return _Filter(node.name, node.value, label(node))
        if isinstance(node, And):
            return _All([self.part(child) for child in node.children])
        if isinstance(node, Or):
            return _Any([self.part(child) for child in node.children])
        if isinstance(node, Not):
            return _None(self.part(node.child))
        if isinstance(node, Near):
            return _Near(self.part(node.left), self.part(node.right), node.distance, node.ordered, label(node))
        raise TypeError(f"not a query node: {node!r}")

    def anchors(self, node: Node) -> frozenset[Anchor] | None:
        """Anchors of which every match of ``node`` contains at least one (None: no such set)."""
        if isinstance(node, Term | Phrase):
            patterns = term_patterns(node) if isinstance(node, Term) else phrase_patterns(node)
            return frozenset([("atom", self.atom(_glob_spec(patterns)))])
        if isinstance(node, Regex):
            return frozenset([("atom", self.atom(_regex_spec(node.pattern)))])
        if isinstance(node, Field):
            return frozenset([(node.name, node.value)]) if node.name in ANCHOR_FIELDS else None
        if isinstance(node, Near):
            options = [a for a in (self.anchors(node.left), self.anchors(node.right)) if a is not None]
            return min(options, key=self._weight) if options else None
        if isinstance(node, And):
            options = [a for a in map(self.anchors, node.children) if a is not None]
            return min(options, key=self._weight) if options else None
        if isinstance(node, Or):
            union: set[Anchor] = set()
            for child in node.children:
                anchors = self.anchors(child)
                if anchors is None:
                    return None
                union |= anchors
            return frozenset(union)
        return None

    def _weight(self, anchors: frozenset[Anchor]) -> float:
        return sum(_atom_rarity(self.specs[v]) if k == "atom" else 0.5 for k, v in anchors)  # type: ignore[index]


# --------------------------------------------------------------------------- databases


def _append_match(atom: int, start: int, end: int, flags: int, found: list[tuple[int, int, int]]) -> None:
    found.append((atom, start, end))


class _Databases:
    """The literal and the regex database of one pass, scanned together."""

    def __init__(self, specs: Sequence[_AtomSpec], atoms: Sequence[int]) -> None:
        self.literal: hyperscan.Database | None = None
        self.regex: hyperscan.Database | None = None
        literal = [a for a in atoms if specs[a].literal]
        regex = [a for a in atoms if not specs[a].literal]
        if literal:
            self.literal = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.literal.compile(
                expressions=[specs[a].pattern for a in literal],
                ids=literal,
                elements=len(literal),
                flags=0,
                literal=True,
            )
        if regex:
            self.regex = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.regex.compile(
                expressions=[specs[a].pattern for a in regex],
                ids=regex,
                elements=len(regex),
                flags=[specs[a].flags for a in regex],
            )
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.literal is not None or self.regex is not None

    def scan(self, data: bytes) -> list[tuple[int, int, int]]:
        """Every (atom, start, end) in ``data``; start is 0 for atoms of fixed width."""
        found: list[tuple[int, int, int]] = []
        if not data:
            return found
        with self._lock:  # a database's scratch space serves one scan at a time
            if self.literal is not None:
                self.literal.scan(data, match_event_handler=_append_match, context=found)
            if self.regex is not None:
                self.regex.scan(data, match_event_handler=_append_match, context=found)
        return found


def _distribute(
    found: list[tuple[int, int, int]], bases: list[int], into: list[dict[int, list[tuple[int, int]]]]
) -> None:
    """File every match under its post (``bases``: where each post starts in the buffer)."""
    if len(bases) == 1:
        hits = into[0]
        for atom, start, end in found:
            hits.setdefault(atom, []).append((start, end))
        return
    for atom, start, end in found:
        k = bisect_right(bases, end - 1) - 1
        base = bases[k]
        into[k].setdefault(atom, []).append((start - base if start else 0, end - base))


def _join(streams: Sequence[bytes]) -> tuple[bytes, list[int]]:
    bases, at = [], 0
    for stream in streams:
        bases.append(at)
        at += len(stream) + 1
    return b"\n".join(streams), bases


@dataclass(frozen=True, slots=True)
class Batch:
    """Posts prepared for matching: their word streams, joined for one scan per pass."""

    posts: Sequence[Post]
    streams: list[bytes]
    data: bytes
    bases: list[int]
    detect_language: LanguageHook | None = None


def prepare(posts: Sequence[Post], detect_language: LanguageHook | None = None) -> Batch:
    streams = [word_stream_bytes(post.text) for post in posts]
    data, bases = _join(streams)
    return Batch(posts, streams, data, bases, detect_language)


# --------------------------------------------------------------------------- segments


class _Compiled:
    __slots__ = ("entry", "order", "root")

    def __init__(self, entry: Entry, root: _Part, order: int) -> None:
        self.entry, self.root, self.order = entry, root, order


class Segment:
    """Watches compiled together: matched with one scan per pass over a batch of posts.

    Immutable once built; :class:`~watchfloor.query.watchset.IncrementalWatchSet`
    combines a large base segment with a small delta segment.
    """

    def __init__(self, entries: Iterable[Entry]) -> None:
        compiler = _Compiler()
        self.compiled: list[_Compiled] = []
        by_anchor: dict[Anchor, list[int]] = {}
        always: list[int] = []
        for order, entry in enumerate(entries):
            index = len(self.compiled)
            self.compiled.append(_Compiled(entry, compiler.part(entry.tree), order))
            anchors = compiler.anchors(entry.tree)
            if anchors is None:  # only possible for trees built by hand
                always.append(index)
                continue
            for anchor in anchors:
                by_anchor.setdefault(anchor, []).append(index)
        self.always = tuple(always)
        self.by_atom: dict[int, tuple[int, ...]] = {}
        self.by_field: dict[str, dict[object, tuple[int, ...]]] = {}
        for (kind, value), indexes in by_anchor.items():
            if kind == "atom":
                self.by_atom[value] = tuple(indexes)  # type: ignore[index]
            else:
                self.by_field.setdefault(kind, {})[value] = tuple(indexes)
        anchor_atoms = sorted(self.by_atom)
        anchor_set = set(anchor_atoms)
        other_atoms = [a for a in range(len(compiler.specs)) if a not in anchor_set]
        self.first = _Databases(compiler.specs, anchor_atoms)
        self.second = _Databases(compiler.specs, other_atoms)
        self.atom_count = len(compiler.specs)

    def __len__(self) -> int:
        return len(self.compiled)

    def _field_candidates(self, text: PostText, found: set[int]) -> None:
        by_field, post = self.by_field, text.post
        if "hashtag" in by_field and post.hashtags:
            table = by_field["hashtag"]
            for tag in text.hashtags:
                found.update(table.get(tag, ()))
        if "author" in by_field:
            found.update(by_field["author"].get(post.author, ()))
        if "mention" in by_field and post.mentions:
            table = by_field["mention"]
            for mention in post.mentions:
                found.update(table.get(mention, ()))
        if "domain" in by_field and post.links:
            table = by_field["domain"]
            for host in text.hosts:
                labels = host.split(".")
                for k in range(len(labels)):
                    found.update(table.get(".".join(labels[k:]), ()))
        if "url" in by_field and post.links:
            table = by_field["url"]
            for url in text.urls:
                for k in range(1, len(url) + 1):
                    indexes = table.get(url[:k])
                    if indexes:
                        found.update(indexes)

    def _may_hit_fields(self, post: Post) -> bool:
        by_field = self.by_field
        return bool(
            ("author" in by_field)
            or (post.hashtags and "hashtag" in by_field)
            or (post.mentions and "mention" in by_field)
            or (post.links and ("domain" in by_field or "url" in by_field))
        )

    def match_batch(
        self,
        batch: Batch,
        now: datetime,
        source: str | None,
        hidden: frozenset[int] = frozenset(),
    ) -> dict[int, list[tuple[int, WatchHit]]]:
        """Post index -> (order, hit) of every watch of this segment that matches that post.

        ``hidden``: ids of watches to leave out (their current version is elsewhere).
        """
        results: dict[int, list[tuple[int, WatchHit]]] = {}
        if not self.compiled:
            return results
        posts = batch.posts
        hits: list[dict[int, list[tuple[int, int]]]] = [{} for _ in posts]
        if self.first:
            _distribute(self.first.scan(batch.data), batch.bases, hits)
        by_atom, by_field, always = self.by_atom, self.by_field, self.always
        candidates: list[tuple[int, PostText, dict[int, list[tuple[int, int]]], set[int]]] = []
        for k, post in enumerate(posts):
            post_hits = hits[k]
            fields = bool(by_field) and self._may_hit_fields(post)
            if not (post_hits or fields or always):
                continue
            found: set[int] = set(always)
            for atom in post_hits:
                indexes = by_atom.get(atom)
                if indexes:
                    found.update(indexes)
            text = PostText(post, batch.streams[k], batch.detect_language)
            if fields:
                self._field_candidates(text, found)
            if found:
                candidates.append((k, text, post_hits, found))
        if not candidates:
            return results
        if self.second:
            sub_data, sub_bases = _join([text.data for _, text, _, _ in candidates])
            _distribute(self.second.scan(sub_data), sub_bases, [post_hits for _, _, post_hits, _ in candidates])
        compiled = self.compiled
        for k, text, post_hits, found in candidates:
            scan = _Scan(text, post_hits)
            matched: list[tuple[int, WatchHit]] = []
            for index in sorted(found):
                item = compiled[index]
                entry = item.entry
                watch = entry.watch
                if hidden and watch.id in hidden:
                    continue
                if not watch.is_active(now):
                    continue
                if entry.sources and source not in entry.sources:
                    continue
                if entry.languages and not any(language_matches(lang, text.langs) for lang in entry.languages):
                    continue
                if not item.root.test(scan):
                    continue
                assert watch.id is not None
                matched.append((item.order, WatchHit(watch_id=watch.id, explanation=_explain(item.root, scan))))
            if matched:
                results[k] = matched
        return results


def _explain(root: _Part, scan: _Scan) -> Explanation:
    hits: list[TermHit] = []
    root.collect(scan, hits)
    unique: dict[tuple[str, str], TermHit] = {}
    for hit in hits:  # a part written twice in the query is listed once
        unique.setdefault((hit.term, hit.kind), hit)
    return Explanation(hits=tuple(unique.values()))
