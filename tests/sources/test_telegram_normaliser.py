"""Telegram: the normaliser on Telethon ``Message`` objects built in-process and serialised
exactly as TelegramSource does. What is NOT tested here: the MTProto conversation with
Telegram's servers (no server or recording exists to test against)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telethon.tl import types

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post, RawEvent
from watchfloor.sources.base import SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.telegram import (
    TelegramNormaliser,
    TelegramSource,
    deletion_payload,
    message_payload,
    parse_cursor,
    utf16_slice,
)

PSEUDONYMISE = HmacPseudonymiser(b"t" * 32)
CHANNEL = 1234567890
WHEN = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def event(payload: bytes) -> RawEvent:
    return RawEvent("tg", "telegram", "", payload, WHEN)


def message(text: str, entities: list, **kw) -> types.Message:
    return types.Message(
        id=kw.pop("id", 501),
        peer_id=types.PeerChannel(channel_id=CHANNEL),
        date=kw.pop("date", datetime(2026, 11, 25, 9, 0, tzinfo=UTC)),
        message=text,
        entities=entities,
        **kw,
    )


def test_a_channel_post_with_entities() -> None:
    text = "Überflutung 🌊 #Hochwasser an der Brücke: https://example.org/lage @stadtwerke und Amt"
    utf16 = lambda s: len(s.encode("utf-16-le")) // 2  # noqa: E731
    start_tag = utf16(text[: text.index("#")])
    start_url = utf16(text[: text.index("https")])
    start_at = utf16(text[: text.index("@")])
    start_amt = utf16(text[: text.index("Amt")])
    msg = message(
        text,
        [
            types.MessageEntityHashtag(offset=start_tag, length=11),
            types.MessageEntityUrl(offset=start_url, length=len("https://example.org/lage")),
            types.MessageEntityMention(offset=start_at, length=len("@stadtwerke")),
            types.MessageEntityMentionName(offset=start_amt, length=3, user_id=777),
            types.MessageEntityTextUrl(offset=0, length=11, url="https://example.org/more"),
        ],
        reply_to=types.MessageReplyHeader(reply_to_msg_id=480),
        post_author="Anna Example",
        views=1200,
    )
    post = TelegramNormaliser(PSEUDONYMISE).normalise(event(message_payload(CHANNEL, msg)))
    assert isinstance(post, Post)
    assert post.native_id == f"{CHANNEL}:501" and post.version == "original"
    assert post.text == text and post.created_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert post.hashtags == ("Hochwasser",)  # offsets are UTF-16 units: the emoji counts twice
    assert post.links == ("https://example.org/lage", "https://example.org/more")
    assert post.mentions == (
        PSEUDONYMISE("telegram", "username:stadtwerke"),
        PSEUDONYMISE("telegram", "user:777"),
    )
    assert post.author == PSEUDONYMISE("telegram", f"channel:{CHANNEL}")
    assert post.reply_to == f"{CHANNEL}:480" and post.url == f"https://t.me/c/{CHANNEL}/501"
    assert "Anna Example" not in post.raw.decode()  # the signature is not kept


def test_edits_media_forwards_service_messages_and_deletions() -> None:
    normaliser = TelegramNormaliser(PSEUDONYMISE)
    edited = message(
        "corrected",
        [],
        edit_date=datetime(2026, 11, 25, 9, 45, tzinfo=UTC),
        from_id=types.PeerUser(user_id=42),
        media=types.MessageMediaDocument(
            document=types.Document(
                id=99, access_hash=1, file_reference=b"\x01\x02", date=WHEN, mime_type="video/mp4",
                size=1000, dc_id=2, attributes=[],
            )
        ),
        fwd_from=types.MessageFwdHeader(date=WHEN, from_id=types.PeerChannel(channel_id=555), channel_post=9,
                                        from_name="Someone"),
    )  # fmt: skip
    post = normaliser.normalise(event(message_payload(CHANNEL, edited, edited=True)))
    assert post.version == "2026-11-25T09:45:00+00:00"
    assert post.author == PSEUDONYMISE("telegram", "user:42")
    assert post.media[0].url == "tg-document:99" and post.media[0].mime_type == "video/mp4"
    assert post.quote_of == "555:9" and "Someone" not in post.raw.decode()
    service = types.MessageService(
        id=7, peer_id=types.PeerChannel(channel_id=CHANNEL), date=WHEN, action=types.MessageActionPinMessage()
    )
    assert normaliser.normalise(event(message_payload(CHANNEL, service))) == Ignored("telegram:MessageService")
    assert normaliser.normalise(event(deletion_payload(CHANNEL, 501))) == Deletion("telegram", f"{CHANNEL}:501", WHEN)
    with pytest.raises(MalformedEvent, match="offset"):
        bad = message("x", [types.MessageEntityHashtag(offset=-1, length=2)])
        normaliser.normalise(event(message_payload(CHANNEL, bad)))
    with pytest.raises(MalformedEvent, match="channel_id"):
        normaliser.normalise(event(b'{"channel_id": "one", "event": "message", "message": {}}'))


def test_helpers_and_the_source_without_credentials(tmp_path) -> None:
    assert utf16_slice("a😀b#tag", 4, 4) == "#tag"
    assert parse_cursor('{"12": 5}') == {"12": 5} and parse_cursor(None) == {}
    source = TelegramSource("tg", ["@somechannel"], api_id=None, api_hash=None, session=tmp_path / "s.session")
    with pytest.raises(SourceFailed, match="WATCHFLOOR_TELEGRAM_API_ID"):
        source.client()
    wrong = TelegramSource("tg", ["x"], api_id=Secret("abc"), api_hash=Secret("h"), session=tmp_path / "s.session")
    with pytest.raises(SourceFailed, match="a number"):
        wrong.client()
    client = TelegramSource(
        "tg", ["https://t.me/somechannel"], api_id=Secret("12345"), api_hash=Secret("0123456789abcdef"),
        session=tmp_path / "keys" / "tg.session",
    )  # fmt: skip
    assert client.channels == ["somechannel"]
    built = client.client()  # a real Telethon client, not connected
    assert not built.is_connected()
