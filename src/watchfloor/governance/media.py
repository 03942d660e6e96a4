"""Media references as stored: no EXIF, no precise geotags.

watchfloor never stores media bytes (so no EXIF block can be stored), only references:
URL, MIME type, content hash and alt text. Those can still carry a place: a URL's query
(``?lat=51.50735&lon=-0.12776``, ``exif=…``), a ``data:`` URL with the image bytes and
their EXIF inside, or coordinates typed into alt text. :func:`sanitise_media` removes them.

It is applied in exactly one place: :func:`watchfloor.store.rows.post_row`, which every
store uses to write a post, so no path can persist a reference it has not seen.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from watchfloor.model import MediaRef

LOCATION_REMOVED = "[location removed]"

# Query parameters that carry a place or image metadata (compared lower-cased).
METADATA_PARAMS = frozenset(
    {
        "lat", "latitude", "lon", "lng", "long", "longitude", "latlng", "latlon", "ll", "coord", "coords",
        "coordinates", "geo", "geotag", "geolocation", "gps", "gpslatitude", "gpslongitude", "gpsaltitude",
        "location", "loc", "position", "pos", "place", "place_id", "altitude", "exif", "xmp", "iptc", "metadata",
    }
)  # fmt: skip

_DECIMAL_PAIR = re.compile(r"[-+]?\d{1,2}\.\d{3,}\s*[,;/ ]\s*[-+]?\d{1,3}\.\d{3,}")
_DMS = re.compile(
    r"\d{1,3}\s*°\s*\d{1,2}\s*['′]\s*(?:\d{1,2}(?:[.,]\d+)?\s*(?:\"|″|''))?\s*[NSEWnsew]"
    r"(?:[\s,;]*\d{1,3}\s*°\s*\d{1,2}\s*['′]\s*(?:\d{1,2}(?:[.,]\d+)?\s*(?:\"|″|''))?\s*[NSEWnsew])?"
)
_GEO_URI = re.compile(r"\bgeo:[-+]?\d+(?:\.\d+)?,[-+]?\d+(?:\.\d+)?\S*", re.IGNORECASE)


def strip_location_text(text: str) -> str:
    """``text`` with coordinates (decimal pairs, degrees-minutes-seconds, geo: URIs) removed."""
    for pattern in (_GEO_URI, _DMS, _DECIMAL_PAIR):
        text = pattern.sub(LOCATION_REMOVED, text)
    return text


def sanitise_url(url: str) -> str | None:
    """``url`` without location or metadata query parameters, user info or fragment;
    None for a ``data:`` URL (it would hold the bytes, EXIF included)."""
    stripped = url.strip()
    if stripped[:5].lower() == "data:" or _GEO_URI.match(stripped):
        return None
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep user:password@
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in METADATA_PARAMS]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    if netloc == parts.netloc and query == parts.query and not parts.fragment:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def sanitise_media_ref(ref: MediaRef) -> MediaRef | None:
    url = sanitise_url(ref.url)
    if url is None:
        return None
    alt = strip_location_text(ref.alt) if ref.alt else ref.alt
    if url == ref.url and alt == ref.alt:
        return ref
    return MediaRef(url=url, mime_type=ref.mime_type, content_hash=ref.content_hash, alt=alt)


def sanitise_media(refs: tuple[MediaRef, ...]) -> tuple[MediaRef, ...]:
    """The references fit to store: metadata stripped, byte-carrying references dropped."""
    return tuple(clean for ref in refs if (clean := sanitise_media_ref(ref)) is not None)
