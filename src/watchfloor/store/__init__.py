"""Stores: one repository interface (:mod:`.base`), one module per database."""

from watchfloor.store.base import IngestBatch, IngestResult, Session, Store, StoreError
from watchfloor.store.open import open_store

__all__ = ["IngestBatch", "IngestResult", "Session", "Store", "StoreError", "open_store"]
