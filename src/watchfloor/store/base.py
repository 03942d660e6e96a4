"""The one repository interface every store implements (SQLite and PostgreSQL).

Callers only ever see this protocol and the types of :mod:`watchfloor.model`; no SQL
leaves a store module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from watchfloor.model import (
    Alert,
    AlertView,
    DeadLetter,
    Deletion,
    Post,
    PostSignals,
    SealedIdentity,
    SourceState,
    Spike,
    StoreCounts,
    User,
    Watch,
)
from watchfloor.pickling import pickled_by_fields
from watchfloor.store.cases_repo import CasesRepository
from watchfloor.store.governance_repo import GovernanceRepository
from watchfloor.store.notify_repo import NotificationsRepository
from watchfloor.store.signals_repo import SignalsRepository
from watchfloor.store.sources_repo import SourcesRepository
from watchfloor.store.triage_repo import TriageRepository
from watchfloor.store.web_accounts_repo import WebAccountsRepository


@pickled_by_fields
@dataclass(slots=True)
class IngestBatch:
    """Everything one micro-batch of one source produced, committed in ONE transaction
    together with the source's cursor, so a crash loses or repeats nothing."""

    source: str
    cursor: str | None
    posts: list[Post] = field(default_factory=list)  # only posts that matched a watch
    alerts: list[Alert] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    identities: list[SealedIdentity] = field(default_factory=list)  # the sealed authors of ``posts``
    events: int = 0  # raw events read in this batch, for the source's figures
    events_per_s: float = 0.0
    lag_s: float | None = None
    last_event_at: datetime | None = None
    signals: list[PostSignals] = field(default_factory=list)  # of the matched posts (signals/stage.py)
    spikes: list[Spike] = field(default_factory=list)  # burst windows closed by this batch


@dataclass(frozen=True, slots=True)
class IngestResult:
    posts_added: int  # new (platform, native_id, version) keys
    alerts_added: list[Alert]  # with ids; repeats of known alerts are not in here
    posts_deleted: int
    dead_letters_added: int


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    username: str
    created_at: datetime
    expires_at: datetime
    csrf_token: str
    idle_expires_at: datetime | None = None  # pushed forward by activity; None: no idle limit


class StoreError(RuntimeError):
    """A store operation failed in a way the caller can report (not a bug)."""


class StoreUnavailable(StoreError):
    """The store cannot take this operation now, but the same call may well succeed later:
    SQLite locked or busy past its timeout, a full disk, an I/O error; PostgreSQL
    unreachable, restarting, or a transaction it undid (deadlock, serialisation failure).
    Nothing of the operation was stored. Writers that must never drop work (the embedded
    pipeline, the workers) keep what they hold and retry (pipeline/store_retry.py)."""


class Store(
    WebAccountsRepository,
    SignalsRepository,
    SourcesRepository,
    TriageRepository,
    CasesRepository,
    NotificationsRepository,
    GovernanceRepository,
    Protocol,
):
    """The repository: watches, ingest, alerts, dead letters, source state, accounts."""

    url: str

    def migrate(self) -> int:
        """Bring the schema up to date; return the schema version now in force."""
        ...

    def schema_version(self) -> int:
        """The schema version in force (0: an empty database, ``watchfloor init`` has not run)."""
        ...

    def close(self) -> None: ...

    # ---------------------------------------------------------------- watches
    def add_watch(self, watch: Watch) -> Watch:
        """Store a new watch; returns it with its id. Names are unique."""
        ...

    def get_watch(self, watch_id: int) -> Watch | None: ...

    def get_watch_by_name(self, name: str) -> Watch | None: ...

    def list_watches(self) -> list[Watch]: ...

    def watches_changed_since(self, revision: int) -> list[Watch]:
        """The watches written (added, enabled or disabled, approved, rejected, renewed, expired...)
        after ``revision`` of :meth:`watches_revision`, ordered by id; each as it is now.

        Every write of a watch stamps the row with the revision it bumps the counter to, and
        writes commit in revision order, so a reader that read :meth:`watches_revision` as R
        before calling this with an earlier revision misses no change up to R (it may also get
        rows newer than R). Watches are never deleted, so nothing is missing from the answer."""
        ...

    def set_watch_enabled(self, watch_id: int, enabled: bool) -> None: ...

    def watches_revision(self) -> int:
        """A number that changes whenever any watch changes (for hot reload)."""
        ...

    # ---------------------------------------------------------------- ingest
    def get_cursor(self, source: str) -> str | None: ...

    def commit_batch(self, batch: IngestBatch) -> IngestResult:
        """Idempotently store the batch and advance the cursor, atomically."""
        ...

    # ---------------------------------------------------------------- reading
    def list_alerts(
        self, *, after_id: int = 0, limit: int = 100, watch_id: int | None = None, newest_first: bool = False
    ) -> list[AlertView]: ...

    def get_alert(self, alert_id: int) -> AlertView | None: ...

    def get_post(self, platform: str, native_id: str, version: str) -> Post | None: ...

    def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]: ...

    def source_states(self) -> list[SourceState]: ...

    def counts(self) -> StoreCounts: ...

    # ---------------------------------------------------------------- accounts
    def add_user(self, user: User) -> None: ...

    def get_user(self, username: str) -> User | None: ...

    def set_password(self, username: str, password_hash: str, *, must_change: bool) -> None: ...

    def count_users(self) -> int: ...

    def add_session(self, session: Session) -> None: ...

    def get_session(self, token_hash: str) -> Session | None: ...

    def delete_session(self, token_hash: str) -> None: ...
