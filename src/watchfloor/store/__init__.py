"""Stores: one repository interface (:mod:`.base`), one module per database."""

from watchfloor.store.base import IngestBatch, IngestResult, Session, Store, StoreError, StoreUnavailable
from watchfloor.store.open import open_store

__all__ = ["IngestBatch", "IngestResult", "Session", "Store", "StoreError", "StoreUnavailable", "open_store"]
