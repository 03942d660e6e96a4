"""The near-duplicate key: reposts with other links, case, accents or spacing share a key."""

from __future__ import annotations

from watchfloor.triage.grouping import group_key, normalised_text


def test_reposts_share_a_key() -> None:
    base = group_key("Flood warning for the Riverside estate https://t.example/a1")
    assert group_key("flood  WARNING for the riverside estate\nhttps://t.example/zz9") == base
    assert group_key("Flood warning for the Riverside estate") == base
    assert group_key("Flood warning for the Riverside estate www.example.org/x") == base
    assert group_key("Flood warning for the Riverside estate!! 🌊") == base


def test_folding_follows_the_matcher() -> None:
    assert group_key("Évacuation du café") == group_key("evacuation du CAFE")
    assert normalised_text("  Die  Straße\tist gesperrt ") == "die strasse ist gesperrt"


def test_different_texts_differ_and_link_only_posts_are_not_lumped_together() -> None:
    assert group_key("Flood warning for Riverside") != group_key("Flood warning for Hillside")
    assert group_key("https://a.example/1") != group_key("https://b.example/2")


def test_the_key_is_versioned() -> None:
    key = group_key("anything")
    assert key.startswith("t1:") and len(key) == 3 + 32
