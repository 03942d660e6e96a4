"""Stored media references carry no EXIF and no precise geotags: one function, applied
where every store writes a post (store/rows.py post_row)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchfloor.governance.media import LOCATION_REMOVED, sanitise_media, sanitise_url, strip_location_text
from watchfloor.model import MediaRef, Post
from watchfloor.store import IngestBatch, Store


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://cdn.example/i.jpg?lat=51.50735&lon=-0.12776&w=600", "https://cdn.example/i.jpg?w=600"),
        ("https://cdn.example/i.jpg?GPSLatitude=1&GPSLongitude=2&exif=1", "https://cdn.example/i.jpg"),
        ("https://cdn.example/i.jpg?ll=51.5,-0.1#map=15/51.5/-0.1", "https://cdn.example/i.jpg"),
        ("https://user:secret@cdn.example/i.jpg", "https://cdn.example/i.jpg"),
        ("https://cdn.example/i.jpg?size=large&v=%20x", "https://cdn.example/i.jpg?size=large&v=%20x"),  # untouched
        ("at-blob:bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", None),  # None: unchanged
        ("data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ==", "DROPPED"),
        ("geo:51.50735,-0.12776", "DROPPED"),
    ],
)
def test_urls(url: str, clean: str | None) -> None:
    result = sanitise_url(url)
    if clean == "DROPPED":
        assert result is None
    else:
        assert result == (url if clean is None else clean)


def test_coordinates_in_alt_text_are_removed() -> None:
    assert strip_location_text("Flooded street, 51.50735, -0.12776, this morning") == (
        f"Flooded street, {LOCATION_REMOVED}, this morning"
    )
    assert LOCATION_REMOVED in strip_location_text("taken at 51°30′26″N 0°7′39″W")
    assert strip_location_text("Water 1.5 m deep at 10:30") == "Water 1.5 m deep at 10:30"  # not a place


def test_every_stored_post_goes_through_it(store: Store) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    media = (
        MediaRef(
            "https://cdn.example/a.jpg?lat=51.50735&lng=-0.12776",
            "image/jpeg",
            "sha256:aa",
            "river at 51.50735,-0.12776",
        ),
        MediaRef("data:image/jpeg;base64,/9j/4AAQ", "image/jpeg"),
        MediaRef("at-blob:bafkreiabc", "image/png", "bafkreiabc", "a map"),
    )
    post = Post(
        platform="bluesky",
        native_id="at://x/app.bsky.feed.post/1",
        version="1",
        created_at=now,
        received_at=now,
        text="flood",
        author="p:0000000000000001",
        media=media,
    )
    store.commit_batch(IngestBatch(source="t", cursor="1", posts=[post]))
    stored = store.get_post("bluesky", "at://x/app.bsky.feed.post/1", "1")
    assert stored is not None
    assert (
        stored.media
        == sanitise_media(media)
        == (
            MediaRef("https://cdn.example/a.jpg", "image/jpeg", "sha256:aa", f"river at {LOCATION_REMOVED}"),
            MediaRef("at-blob:bafkreiabc", "image/png", "bafkreiabc", "a map"),
        )
    )
