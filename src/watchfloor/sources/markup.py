"""HTML from platforms (Mastodon statuses, feed entries, YouTube comments) made safe.

- :func:`read_html` turns HTML into the plain text a watch is matched against, plus the
  links it carries (http and https only; mention and hashtag links, which point at
  people's profiles, are left out). Script, style and other non-text content is dropped.
- :func:`sanitise_html` is for any HTML that is *kept* (a feed entry's content in the
  raw payload kept as evidence): nh3 (the ammonia sanitiser) with an allowlist of
  text tags, no images or frames (nothing that loads from elsewhere when shown),
  ``href`` only with http, https or mailto, and no event handlers or styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import nh3

SAFE_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "li", "mark", "ol", "p",
        "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "time",
        "tr", "u", "ul",
    }
)  # fmt: skip
SAFE_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "time": {"datetime"}}
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_HTML_CHARS = 1_000_000

_BLOCK = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "dt", "dd", "table"}
)
_SKIP = frozenset({"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math", "head"})
_SKIP_LINK_CLASSES = ("mention", "hashtag")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b]+")


def sanitise_html(html: str) -> str:
    """``html`` reduced to safe text markup (see the module docs)."""
    return nh3.clean(
        html[:MAX_HTML_CHARS],
        tags=set(SAFE_TAGS),
        attributes={tag: set(names) for tag, names in SAFE_ATTRIBUTES.items()},
        url_schemes=set(SAFE_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@dataclass(frozen=True, slots=True)
class HtmlText:
    text: str
    links: tuple[str, ...]


def read_html(html: str) -> HtmlText:
    """The plain text of ``html`` (paragraphs as lines) and its http(s) links."""
    reader = _Reader()
    try:
        reader.feed(html[:MAX_HTML_CHARS])
        reader.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(reader.parts).split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return HtmlText(text=text, links=tuple(dict.fromkeys(reader.links)))


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
            return
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "a" and not self._skipping:
            values = dict(attrs)
            classes = (values.get("class") or "").split()
            href = (values.get("href") or "").strip()
            if href.lower().startswith(("http://", "https://")) and not any(
                c in _SKIP_LINK_CLASSES or c.startswith("u-url") for c in classes
            ):
                self.links.append(href)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data.replace("\r", ""))
