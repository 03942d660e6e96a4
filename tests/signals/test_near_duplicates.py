"""MinHash LSH grouping: copies with small edits are one group, different stories are not."""

from __future__ import annotations

import random

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
    assert index.from_bytes(index.to_bytes(m)).jaccard(m) == 1.0
    for i in range(30):
        index.add(f"x{i}", f"unrelated text number {i} about the weather in town number {i * 7919}")
    assert len(index) == 10
    assert index.group_of("x0") is None and index.group_of("x29") is not None
