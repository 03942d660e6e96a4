"""The schema migrations, one folder of numbered SQL scripts per dialect (``sqlite``,
``postgresql``): ``NNNN_name.sql`` brings the schema to version NNNN. Both folders hold the
same versions (tests/store/test_store.py checks they agree)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

__all__ = ["scripts"]


def scripts(dialect: str) -> list[tuple[int, Traversable]]:
    """(version, script) of every migration of ``dialect``, in version order."""
    folder = resources.files(f"watchfloor.store.migrations.{dialect}")
    found = [(int(f.name.split("_", 1)[0]), f) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found, key=lambda item: item[0])
