"""Reading untrusted JSON from platforms: every wrong type or missing field becomes a
:class:`~watchfloor.model.MalformedEvent` whose reason names the field's path.

Strings are checked so that any store can hold them (no NUL, no lone surrogate from a
JSON ``\\ud800`` escape), and texts are bounded, so a hostile payload cannot make the
pipeline fail further down.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from watchfloor.model import MalformedEvent

JsonObject = dict[str, Any]
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_TEXT_CHARS = 100_000

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d{1,20}))?"
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?"
)


def load_json(payload: bytes | str, what: str = "payload") -> Any:
    """Decode UTF-8 JSON, any value."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedEvent(f"{what} too large ({len(payload)} bytes, limit {MAX_PAYLOAD_BYTES})")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedEvent(f"{what}: invalid UTF-8 at byte {error.start}") from None
    try:
        return json.loads(payload)
    except json.JSONDecodeError as error:
        raise MalformedEvent(f"{what}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    except RecursionError:
        raise MalformedEvent(f"{what}: invalid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer with too many digits
        raise MalformedEvent(f"{what}: invalid JSON: {str(error)[:80]}") from None


def load_object(payload: bytes | str, what: str = "payload") -> JsonObject:
    """Decode UTF-8 JSON that must be an object."""
    value = load_json(payload, what)
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} is {type_name(value)}, not an object")
    return value


def text(obj: JsonObject, key: str, path: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    if key not in obj or obj[key] is None:
        raise MalformedEvent(f"{path} missing")
    return checked_text(obj[key], path, limit=limit)


def optional_text(obj: JsonObject, key: str, path: str, *, limit: int = MAX_TEXT_CHARS) -> str | None:
    value = obj.get(key)
    return None if value is None else checked_text(value, path, limit=limit)


def checked_text(value: object, path: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise MalformedEvent(f"{path} is {type_name(value)}, not a string")
    if len(value) > limit:
        raise MalformedEvent(f"{path} too long ({len(value)} characters, limit {limit})")
    if "\x00" in value:
        raise MalformedEvent(f"{path} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent(f"{path} contains a lone surrogate") from None
    return value


def identifier(obj: JsonObject, key: str, path: str) -> str:
    """A platform id given as a string or an integer, returned as a non-empty string."""
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    found = text(obj, key, path, limit=512)
    if not found.strip():
        raise MalformedEvent(f"{path} is empty")
    return found


def optional_identifier(obj: JsonObject, key: str, path: str) -> str | None:
    return None if obj.get(key) in (None, "") else identifier(obj, key, path)


def child(obj: JsonObject, key: str, path: str) -> JsonObject:
    if key not in obj:
        raise MalformedEvent(f"{path} missing")
    value = obj[key]
    if not isinstance(value, dict):
        raise MalformedEvent(f"{path} is {type_name(value)}, not an object")
    return value


def optional_child(obj: JsonObject, key: str, path: str) -> JsonObject | None:
    return None if obj.get(key) is None else child(obj, key, path)


def items(obj: JsonObject, key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedEvent(f"{path} is {type_name(value)}, not a list")
    return value


def objects(obj: JsonObject, key: str, path: str) -> list[JsonObject]:
    found = items(obj, key, path)
    for index, item in enumerate(found):
        if not isinstance(item, dict):
            raise MalformedEvent(f"{path}[{index}] is {type_name(item)}, not an object")
    return found


def texts(obj: JsonObject, key: str, path: str) -> list[str]:
    return [checked_text(item, f"{path}[{i}]", limit=2048) for i, item in enumerate(items(obj, key, path))]


def parse_time(value: object, path: str) -> datetime:
    """An ISO 8601 / RFC 3339 time; without a zone it is taken as UTC."""
    if not isinstance(value, str):
        raise MalformedEvent(f"{path} is {type_name(value)}, not a time")
    match = _ISO.fullmatch(value.strip())
    if match is None:
        raise MalformedEvent(f"{path} {short(value)} is not an ISO 8601 time")
    clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    zone = match["zone"] or "+00:00"
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        return datetime.fromisoformat(f"{match['date']}T{clock}.{fraction}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise MalformedEvent(f"{path} {short(value)} is not a valid time") from None


def from_epoch(value: object, path: str) -> datetime:
    """Seconds since 1970 (an int or a float) as a UTC time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent(f"{path} is {type_name(value)}, not a number of seconds")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise MalformedEvent(f"{path} {str(value)[:30]} is out of range") from None


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def short(value: str, limit: int = 40) -> str:
    """A value quoted for a reason, cut so a reason stays one short line."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def unique(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def compact(value: Any) -> bytes:
    """JSON as platforms send it: compact UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
