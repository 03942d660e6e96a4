"""MinHash LSH grouping: copies with small edits are one group, different stories are not."""

from __future__ import annotations

import gc
import random
import types
from collections import Counter, OrderedDict
from zlib import crc32

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from watchfloor.signals.near_duplicates import NearDuplicateIndex, group_id_for, shingles

STORY = (
    "Breaking: the dam above Hollow Creek is leaking and the valley will flood within hours, "
    "the authorities are hiding it, share before they delete this"
)


def variants(n: int, seed: int = 3) -> list[str]:
    """``n`` copies of the story as people repost it: links, handles, case, punctuation, emoji."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = STORY
        if rng.random() < 0.5:
            text = text.upper()
        if rng.random() < 0.5:
            text = text.replace(",", "") + "!!!"
        if rng.random() < 0.5:
            text = f"@user{i} {text}"
        if rng.random() < 0.7:
            text += f" https://short.example/{rng.randrange(10**6)}"
        if rng.random() < 0.3:
            text = "RT " + text + " 😱"
        out.append(text)
    return out


def test_a_story_copied_500_times_is_one_group() -> None:
    index = NearDuplicateIndex()
    groups = {index.add(f"k{i}", text) for i, text in enumerate(variants(500))}
    assert groups == {group_id_for("k0")}  # one group, named after its first post


def test_different_stories_are_different_groups() -> None:
    index = NearDuplicateIndex()
    rng = random.Random(11)
    vocabulary = "river road bridge school flood water power storm council market train station fire smoke"
    words = [*vocabulary.split(), "street", "park", "library", "hospital", "warning", "closed", "tonight"]
    texts = [" ".join(rng.choice(words) for _ in range(20)) for _ in range(300)]
    groups = [index.add(f"t{i}", t) for i, t in enumerate(texts)]
    assert len(set(groups)) >= 295  # random texts from a small vocabulary: (almost) never grouped
    assert index.add("story", STORY) == group_id_for("story")


def test_same_key_again_keeps_its_group_and_empty_text_has_none() -> None:
    index = NearDuplicateIndex()
    g = index.add("a", STORY)
    assert index.add("a", "something else entirely, about gardening and tomatoes") == g
    assert index.add("b", "   ") is None
    assert index.add("c", "https://example.org/only-a-link @someone") is None
    assert shingles("Hi") == {b"hi"}


def test_signatures_round_trip_and_old_items_are_forgotten() -> None:
    index = NearDuplicateIndex(max_items=10)
    m = index.signature(STORY)
    assert m is not None
    back = index.from_bytes(index.to_bytes(m))
    assert back.jaccard(m) == 1.0
    assert np.array_equal(back.hashvalues, m.hashvalues) and back.hashvalues.dtype == m.hashvalues.dtype
    assert back.permutations is m.permutations  # shared, as for a signature computed here
    other = index.signature("a completely different story about tomatoes in the garden")
    assert other is not None and back.jaccard(other) == m.jaccard(other) < 0.5
    # what the text helper sends is a signature like any other: it groups with its near-duplicate
    assert index.add_signature("sent", back) == index.add("here", STORY + "!")
    with pytest.raises(ValueError, match="not 128"):
        index.from_bytes(index.to_bytes(m)[:-4])
    for i in range(30):
        index.add(f"x{i}", f"unrelated text number {i} about the weather in town number {i * 7919}")
    assert len(index) == 10
    assert index.group_of("x0") is None and index.group_of("x29") is not None


def datasketch_signature(text: str, num_perm: int, seed: int) -> MinHash | None:
    """The signature as datasketch computes it (and as the index once did): ``update_batch``
    over the shingles, one ``crc32`` call each."""
    items = shingles(text)
    if not items:
        return None
    permutations = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    m = MinHash(num_perm=num_perm, hashfunc=crc32, permutations=permutations, scheme="affine32")
    m.update_batch(sorted(items))
    return m


def varied_texts(seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    texts = ["", "   ", "!!!", "Hi", "hello", "hello!", "héllo", "東京", "東京で地震", "東京で地震が", "😱😱", "a b"]
    texts += ["https://example.org/only-a-link @someone", "www.example.org", "Ça va? Très bien — à demain!"]
    texts += ["ab " * 2000, "spam! " * 900, "東京 " * 1200]  # long, repeating: few distinct shingles
    texts += [" ".join(f"w{rng.randrange(10**6)}" for _ in range(900))]  # long, nearly all distinct (cut at 5,000)
    texts += ["".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(700))]  # long CJK
    texts += variants(60, seed=seed)
    pieces = ["flood", "BRIDGE", "closed", "東京", "😱", "ﬁne", "@handle", "https://x.example/1", "—", "l'eau", "é"]
    texts += [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(150)]
    return texts


@pytest.mark.parametrize(("num_perm", "seed"), [(128, 1), (64, 7)])
def test_signatures_are_datasketchs_to_the_bit(num_perm: int, seed: int) -> None:
    """The index's one-pass NumPy signature equals datasketch's own ``update_batch``: same
    values (so the same stored bytes, LSH buckets and Jaccard estimates) and the same kind of MinHash."""
    index = NearDuplicateIndex(num_perm=num_perm, seed=seed)
    for text in varied_texts():
        expected = datasketch_signature(text, num_perm, seed)
        got = index.signature(text)
        if expected is None:
            assert got is None, text
            continue
        assert got is not None, text
        assert got.hashvalues.dtype == expected.hashvalues.dtype == np.uint32
        assert np.array_equal(got.hashvalues, expected.hashvalues), text
        assert got == expected and got.jaccard(expected) == 1.0  # scheme, seed, values
        assert np.array_equal(got.permutations, expected.permutations) and got.hashfunc(b"shingle") == crc32(b"shingle")
        assert index.to_bytes(got) == index.to_bytes(expected)


def test_signatures_do_not_share_their_values() -> None:
    index = NearDuplicateIndex()
    a, b = index.signature("the bridge is closed"), index.signature("the bridge is open again")
    assert a is not None and b is not None and a.hashvalues is not b.hashvalues
    before = b.hashvalues.copy()
    a.update(b"more")  # a MinHash stays usable as one
    assert np.array_equal(b.hashvalues, before) and index.signature("the bridge is closed") != a


class DatasketchGrouping:
    """The grouping as it was built on datasketch's ``MinHashLSH`` (an ``OrderedDict`` of
    the newest texts), with ties going to the oldest text: the reference for the index."""

    def __init__(self, index: NearDuplicateIndex, max_items: int) -> None:
        self.index, self.max_items = index, max_items
        self.lsh = MinHashLSH(threshold=index.threshold, num_perm=index.num_perm)
        self.items: OrderedDict[str, tuple[MinHash, str, int]] = OrderedDict()
        self.added = 0

    def add(self, key: str, text: str) -> str | None:
        minhash = self.index.signature(text)
        if minhash is None:
            return None
        if key in self.items:
            return self.items[key][1]
        best: tuple[float, int, str] | None = None  # (similarity, -order, group)
        for candidate in self.lsh.query(minhash):
            other, group, order = self.items[candidate]
            similarity = minhash.jaccard(other)
            if similarity >= self.index.threshold and (best is None or (similarity, -order) > best[:2]):
                best = (similarity, -order, group)
        group = best[2] if best else group_id_for(key)
        self.lsh.insert(key, minhash, check_duplication=False)
        self.items[key] = (minhash, group, self.added)
        self.added += 1
        while len(self.items) > self.max_items:
            old, _ = self.items.popitem(last=False)
            self.lsh.remove(old)
        return group


def mixed_stream(seed: int) -> list[tuple[str, str]]:
    """Keys and texts: stories reposted with edits among unrelated texts, some keys repeated."""
    rng = random.Random(seed)
    stories = [STORY, *(" ".join(rng.choice(STORY.split()) for _ in range(25)) for _ in range(6))]
    out: list[tuple[str, str]] = []
    for i in range(400):
        roll = rng.random()
        if roll < 0.55:
            text = rng.choice(stories)
            words = text.split()
            for _ in range(rng.randint(0, 6)):  # small edits: some copies stay above the threshold, some fall below
                words[rng.randrange(len(words))] = f"w{rng.randrange(50)}"
            text = " ".join(words)
        elif roll < 0.95:
            text = " ".join(f"u{rng.randrange(10**5)}" for _ in range(12))
        else:
            text = "@only https://a.example/link"  # no words: no signature, no group
        key = f"k{rng.randrange(i + 1)}" if rng.random() < 0.05 else f"k{i}"  # now and then a key again
        out.append((key, text))
    return out


@pytest.mark.parametrize(("seed", "max_items"), [(1, 50_000), (2, 40), (3, 7), (4, 1)])
def test_groups_are_those_of_datasketchs_lsh(seed: int, max_items: int) -> None:
    index = NearDuplicateIndex(max_items=max_items)
    reference = DatasketchGrouping(NearDuplicateIndex(), max_items)
    got = [index.add(key, text) for key, text in mixed_stream(seed)]
    expected = [reference.add(key, text) for key, text in mixed_stream(seed)]
    assert got == expected
    sizes = Counter(g for g in got if g)
    assert sum(1 for n in sizes.values() if n > 1) >= 10 and None in got  # groups of several, texts alone, no text
    assert len(index) == min(max_items, len(reference.items)) == len(reference.items)
    for key in reference.items:
        assert index.group_of(key) == reference.items[key][1]


def test_a_forgotten_text_leaves_no_trace_in_the_bands() -> None:
    index = NearDuplicateIndex(max_items=3)
    first = index.add("a", STORY)
    assert index.add("b", STORY + " again") == first  # a near-duplicate joins the group
    for key in ("c", "d", "e"):
        index.add(key, f"something else entirely, number {key}, about gardening and tomatoes in {key}")
    assert len(index) == 3 and index.group_of("a") is None and index.group_of("b") is None
    assert index.add("f", STORY) == group_id_for("f")  # nothing left to join: a new group
    assert index.add("a", STORY) == index.group_of("f")  # "a" is new again, and joins "f"
    buckets = [
        n for table in index._tables for there in table.values() for n in (there if type(there) is tuple else (there,))
    ]
    assert sorted(set(buckets)) == list(range(index._oldest, index._next))  # only kept texts are in the bands


def tracked_within(root: object) -> int:
    """The objects the garbage collector tracks among those ``root`` holds, however deep
    (classes, modules and functions, shared by everything, left out). Counted from the
    index itself, so other threads of the test process cannot change the answer."""
    seen, todo, tracked = {id(root)}, [root], 0
    while todo:
        obj = todo.pop()
        tracked += gc.is_tracked(obj)
        for held in gc.get_referents(obj):
            if id(held) not in seen and not isinstance(held, (type, types.ModuleType, types.FunctionType)):
                seen.add(id(held))
                todo.append(held)
    return tracked


def test_a_full_index_gives_the_garbage_collector_nothing_to_visit() -> None:
    """A full index of the old kind held ~18 tracked objects per text (a set per band, a list,
    the MinHash); each full collection of the pipeline's process walked them all."""
    index = NearDuplicateIndex(max_items=2_000)
    rng = random.Random(8)
    for i in range(3_000):
        index.add(f"k{i}", " ".join(f"w{rng.randrange(10**4)}" for _ in range(15)))
    gc.collect()  # the collector untracks what holds nothing it must follow (tuples of ints ...)
    assert len(index) == 2_000
    assert tracked_within(index) < 100
