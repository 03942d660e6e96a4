"""The one error a watch query can raise, pointing at where it went wrong."""

from __future__ import annotations

import unicodedata

__all__ = ["QuerySyntaxError"]


def _display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide CJK characters count twice)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf":
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class QuerySyntaxError(ValueError):
    """A watch query that cannot be used, with the 0-based character offset of the problem.

    ``str()`` shows the message, then the query with a caret under ``position``.
    """

    def __init__(self, message: str, position: int, query: str | None = None) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position
        self.query = query

    def with_query(self, query: str) -> QuerySyntaxError:
        """This error, carrying the query it is about (for the caret line)."""
        return QuerySyntaxError(self.message, self.position, query)

    def __str__(self) -> str:
        head = f"{self.message} (at position {self.position})"
        if self.query is None:
            return head
        # One line, same length, so the caret stays under the right character.
        line = "".join(" " if ch.isspace() else ch for ch in self.query)
        caret = " " * _display_width(line[: self.position]) + "^"
        return f"{head}\n  {line}\n  {caret}"
