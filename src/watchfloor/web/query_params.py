"""One value per query parameter on the JSON API.

Every query parameter of ``/api/`` takes one value (the schema says so: none is an array).
Given twice — ``/api/audit?action=watch.&action=token.`` — FastAPI would quietly use the
last one, so a client (or a mistaken link) gets an answer to a question it did not ask.
The API refuses it instead, as any other request that does not fit the schema (422).
"""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.exceptions import RequestValidationError

API_PREFIX = "/api/"


def one_value_each(request: Request) -> None:
    """An app-wide dependency: 422 for an API request that repeats a query parameter."""
    if not request.url.path.startswith(API_PREFIX):
        return
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = [name for name, times in counts.items() if times > 1]
    if repeated:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("query", name), "msg": f"given {counts[name]} times; give it once"}
                for name in repeated
            ]
        )
