"""The watch language: parse -> tree -> compile -> match.

>>> from watchfloor.query import parse
>>> parse('"bomb threat" OR evacuat*')  # doctest: +ELLIPSIS
Or(children=(Phrase(words=('bomb', 'threat'), ...), Term(text='evacuat', wildcard=True, ...)), ...)
"""

from __future__ import annotations

from .compile import CompiledQuery, IncrementalWatchSet, WatchSet, compile_query, compile_watch_set
from .errors import QuerySyntaxError
from .parse import parse

__all__ = [
    "CompiledQuery",
    "IncrementalWatchSet",
    "QuerySyntaxError",
    "WatchSet",
    "compile_query",
    "compile_watch_set",
    "parse",
]
