"""The part of the repository that keeps what accountability needs.

:class:`~watchfloor.store.base.Store` includes this protocol. Callers are the modules of
:mod:`watchfloor.governance`; they hold the rules (who may approve, what a reveal needs,
how entries are hashed), the store only keeps and counts:

- watch approvals (status, approver, the second reviewer of a held watch, the
  authorization of an account-targeted watch);
- sealed identities (the encrypted clear account behind a pseudonym);
- authorizations, their decisions and their reveal counts;
- the audit log: entries, the tree head, signed checkpoints;
- retention: deletions by data class, each returning how many rows it removed (or would);
- aggregate figures for the transparency report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from watchfloor.model import (
    AlertStatus,
    Authorization,
    AuthorizationKind,
    AuthorizationStatus,
    Checkpoint,
    SealedIdentity,
    Watch,
)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored audit entry: its position, canonical bytes and stored leaf hash."""

    seq: int
    entry: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class AlertTally:
    """How many alerts of one watch, raised in a period, are in one status."""

    watch_id: int
    status: AlertStatus
    count: int
    overdue: int  # of those, still open past their due time
    sla_met: int = 0  # first triaged by their due time
    sla_missed: int = 0  # first triaged late, or still open past their due time


class GovernanceRepository(Protocol):
    # ---------------------------------------------------------------- watch approval
    def save_watch_approval(self, watch: Watch) -> Watch:
        """Write ``watch``'s approval fields (status, created_by, approver, approved_at,
        reviewed_by, hold, authorization_id) and its expiry; the watch revision changes, so a running
        pipeline picks the change up. StoreError when there is no such watch."""
        ...

    # ---------------------------------------------------------------- sealed identities
    def add_identities(self, identities: Sequence[SealedIdentity]) -> int:
        """Store identities not stored yet (same pseudonym and epoch: kept as is)."""
        ...

    def identities_of(self, pseudonym: str) -> list[SealedIdentity]: ...

    def count_identities(self) -> dict[int, int]:
        """Sealed identities per epoch."""
        ...

    def delete_identities_of_epoch(self, epoch: int) -> int: ...

    # ---------------------------------------------------------------- authorizations
    def add_authorization(self, authorization: Authorization) -> Authorization: ...

    def get_authorization(self, authorization_id: int) -> Authorization | None: ...

    def list_authorizations(
        self,
        *,
        kind: AuthorizationKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Authorization]:
        """Newest first; ``since``/``until`` bound ``requested_at``."""
        ...

    def decide_authorization(
        self,
        authorization_id: int,
        *,
        status: AuthorizationStatus,
        approver: str,
        decided_at: datetime,
        note: str | None,
        expires_at: datetime | None = None,
        max_reveals: int | None = None,
    ) -> Authorization:
        """Record a decision on a *requested* authorization (StoreError otherwise)."""
        ...

    def count_reveal(self, authorization_id: int, *, now: datetime) -> Authorization:
        """Add one reveal, atomically, if the authorization is approved, unexpired and
        below its reveal limit; StoreError (nothing counted) otherwise."""
        ...

    # ---------------------------------------------------------------- audit log
    def append_audit(self, at: str, action: str, make_entry: Callable[[int, bytes], bytes]) -> AuditRow:
        """Append one entry in one transaction: ``make_entry(seq, root_before)`` returns the
        canonical bytes, which the store hashes into the tree."""
        ...

    def audit_head(self) -> tuple[int, bytes]:
        """(size, root) as the store recorded them with the newest entry."""
        ...

    def audit_rows(self, start: int = 0, end: int | None = None) -> Iterator[AuditRow]:
        """Stored entries in storage order (by seq), from ``start`` up to ``end``."""
        ...

    def audit_rows_by_action(
        self, actions: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRow]: ...

    def audit_count(self, *, since: datetime | None = None, until: datetime | None = None) -> int:
        """Entries written in [since, until)."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a signed tree head (one per tree size; a repeat is ignored)."""
        ...

    def list_checkpoints(self) -> list[Checkpoint]:
        """Oldest first."""
        ...

    # ---------------------------------------------------------------- retention
    def purge_decided_alerts(self, status: AlertStatus, before: datetime, *, dry_run: bool) -> int:
        """Dismissed or false-positive alerts decided before ``before`` (not in a case),
        with their triage history; their counts are kept for :meth:`alert_tallies`."""
        ...

    def purge_closed_cases(self, before: datetime, *, dry_run: bool) -> dict[str, int]:
        """Cases closed (or merged away) before ``before``, with their alerts, evidence,
        notes, tasks, timeline and export records; counts by kind."""
        ...

    def purge_notifications(self, before: datetime, *, dry_run: bool) -> int:
        """Delivered or failed outbox messages and inbox items created before ``before``."""
        ...

    def purge_unreferenced_posts(self, *, dry_run: bool) -> int:
        """Stored posts no alert refers to any more."""
        ...

    def purge_tombstoned_posts(self, *, dry_run: bool) -> int:
        """Stored posts the platform deleted (a tombstone exists): upstream deletes honoured."""
        ...

    def purge_dead_letters(self, before: datetime, *, dry_run: bool) -> int: ...

    def purge_orphan_identities(self, now: datetime, *, dry_run: bool) -> int:
        """Sealed identities no stored post carries and no authorization in force covers."""
        ...

    # ---------------------------------------------------------------- report figures
    def alert_tallies(self, since: datetime, until: datetime, now: datetime) -> list[AlertTally]:
        """Alerts raised in [since, until), by watch and status — including those retention
        has deleted since (kept as counts by day, so whole days for those)."""
        ...
