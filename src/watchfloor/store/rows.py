"""Mapping between model types and flat database rows, shared by every SQL store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from watchfloor.governance.media import sanitise_media
from watchfloor.model import (
    Alert,
    AlertStatus,
    Explanation,
    MediaRef,
    Post,
    PostKey,
    Role,
    Severity,
    User,
    Watch,
    WatchStatus,
)


def ts(value: datetime | None) -> str | None:
    """A timestamp as stored: ISO 8601 in UTC, microseconds, sortable as text."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def must_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _json_list(values: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def post_row(post: Post) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "native_id": post.native_id,
        "version": post.version,
        "created_at": ts(post.created_at),
        "received_at": ts(post.received_at),
        "text": post.text,
        "author": post.author,
        "lang": post.lang,
        "langs": _json_list(post.langs),
        "url": post.url,
        "links": _json_list(post.links),
        "hashtags": _json_list(post.hashtags),
        "mentions": _json_list(post.mentions),
        "reply_to": post.reply_to,
        "quote_of": post.quote_of,
        "media": json.dumps(
            [
                {"url": m.url, "mime_type": m.mime_type, "content_hash": m.content_hash, "alt": m.alt}
                for m in sanitise_media(post.media)  # no EXIF or geotags in stored references
            ],
            ensure_ascii=False,
        ),
        "raw": post.raw,
    }


def post_from_row(row: Mapping[str, Any]) -> Post:
    return Post(
        platform=row["platform"],
        native_id=row["native_id"],
        version=row["version"],
        created_at=must_ts(row["created_at"]),
        received_at=must_ts(row["received_at"]),
        text=row["text"],
        author=row["author"],
        lang=row["lang"],
        langs=tuple(json.loads(row["langs"])),
        url=row["url"],
        links=tuple(json.loads(row["links"])),
        hashtags=tuple(json.loads(row["hashtags"])),
        mentions=tuple(json.loads(row["mentions"])),
        reply_to=row["reply_to"],
        quote_of=row["quote_of"],
        media=tuple(MediaRef(**m) for m in json.loads(row["media"])),
        raw=bytes(row["raw"]),
    )


def watch_row(watch: Watch) -> dict[str, Any]:
    return {
        "name": watch.name,
        "query": watch.query,
        "purpose": watch.purpose,
        "legal_basis": watch.legal_basis,
        "owner": watch.owner,
        "approver": watch.approver,
        "severity": watch.severity.value,
        "sla_minutes": watch.sla_minutes,
        "expires_at": ts(watch.expires_at),
        "sources": _json_list(watch.sources),
        "languages": _json_list(watch.languages),
        "enabled": 1 if watch.enabled else 0,
        "created_at": ts(watch.created_at),
        "status": watch.status.value,
        "created_by": watch.created_by,
        "approved_at": ts(watch.approved_at),
        "reviewed_by": watch.reviewed_by,
        "hold": watch.hold,
        "authorization_id": watch.authorization_id,
    }


def watch_from_row(row: Mapping[str, Any]) -> Watch:
    return Watch(
        id=row["id"],
        name=row["name"],
        query=row["query"],
        purpose=row["purpose"],
        legal_basis=row["legal_basis"],
        owner=row["owner"],
        approver=row["approver"],
        severity=Severity(row["severity"]),
        sla_minutes=row["sla_minutes"],
        expires_at=parse_ts(row["expires_at"]),
        sources=tuple(json.loads(row["sources"])),
        languages=tuple(json.loads(row["languages"])),
        enabled=bool(row["enabled"]),
        created_at=must_ts(row["created_at"]),
        status=WatchStatus(row["status"]),
        created_by=row["created_by"],
        approved_at=parse_ts(row["approved_at"]),
        reviewed_by=row["reviewed_by"],
        hold=row["hold"],
        authorization_id=row["authorization_id"],
    )


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "watch_id": alert.watch_id,
        "platform": alert.post.platform,
        "native_id": alert.post.native_id,
        "version": alert.post.version,
        "score": alert.score,
        "explanation": json.dumps(alert.explanation.to_dict(), ensure_ascii=False),
        "created_at": ts(alert.created_at),
        "due_at": ts(alert.due_at),
        "status": alert.status.value,
    }


def alert_from_row(row: Mapping[str, Any]) -> Alert:
    return Alert(
        id=row["id"],
        watch_id=row["watch_id"],
        post=PostKey(row["platform"], row["native_id"], row["version"]),
        score=row["score"],
        explanation=Explanation.from_dict(json.loads(row["explanation"])),
        created_at=must_ts(row["created_at"]),
        due_at=must_ts(row["due_at"]),
        status=AlertStatus(row["status"]),
    )


def user_from_row(row: Mapping[str, Any]) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        must_change_password=bool(row["must_change_password"]),
        created_at=must_ts(row["created_at"]),
    )
