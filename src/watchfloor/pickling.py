"""Pickling the dataclasses that cross to the helper processes, in C rather than in Python.

Every batch the match helper prepares (pipeline/match_process.py) travels back to the
pipeline as pickled ``Post``, ``Alert``, ``Explanation`` ... objects. A frozen, slotted
dataclass pickles through the ``__getstate__``/``__setstate__`` that ``dataclasses``
writes in Python, which looks the fields up again for every object: for a batch of 500
events that was about 0.6 ms in the helper and 0.4 ms in the pipeline, on the two
processes that are the bottleneck (docs/performance.md).

:func:`pickled_by_fields` gives a dataclass a ``__reduce__`` that hands pickle the class
and its field values in order (read by one ``operator.attrgetter``); unpickling calls the
class with them, as any code that builds one does. Pickles written before still load:
the dataclass keeps its ``__setstate__``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Make instances of the dataclass ``cls`` pickle as ``cls(*field values)``.

    Every field must be an ``__init__`` parameter (no ``field(init=False)``), the class
    must have no ``__post_init__`` whose work would run again on unpickling, and it must
    not be subclassed (a subclass would unpickle as ``cls``).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__} has a field that __init__ does not take")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    names = [f.name for f in fields]
    if not names:
        raise TypeError(f"{cls.__name__} has no fields")
    values: Callable[[Any], Any] = operator.attrgetter(*names)
    if len(names) == 1:  # attrgetter of one name returns the value, not a tuple
        one = values

        def values(obj: Any) -> tuple[Any]:
            return (one(obj),)

    def __reduce__(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls
