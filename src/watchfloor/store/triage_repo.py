"""The part of the repository behind the queue: triage state, near-duplicate groups,
dispositions, SLA breaches, the history of every step, and the floor's figures.

:class:`~watchfloor.store.base.Store` includes this protocol. Business rules (who may do
what, which dispositions need a reason) live in :mod:`watchfloor.triage`; these methods
apply a decided change atomically and re-check the state they change inside their
transaction, so two analysts acting at once never both win.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from watchfloor.model import (
    AlertStatus,
    AlertView,
    Disposition,
    FloorCounts,
    QueueItem,
    Role,
    Severity,
    SlaBreach,
    TriageEvent,
    TriageState,
    WatchFigures,
)
from watchfloor.store.notify_repo import Fanout

GroupKeyer = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    assignee: str | None = None  # only alerts held by this user
    unassigned: bool = False  # only alerts nobody holds
    watch_id: int | None = None
    severities: tuple[Severity, ...] = ()  # empty: all


@dataclass(slots=True)
class Changed:
    """What a triage write did: the alerts it changed and those it left alone, with why."""

    changed: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


class TriageRepository(Protocol):
    # ---------------------------------------------------------------- reading
    def fill_group_keys(self, keyer: GroupKeyer, *, limit: int = 2000) -> int:
        """Give alerts without a near-duplicate key one (from their post's text); returns how many."""
        ...

    def queue(self, flt: QueueFilter | None = None, *, limit: int = 200) -> list[QueueItem]:
        """Open alerts grouped by (watch, near-duplicate key), most urgent first."""
        ...

    def triage_state(self, alert_id: int) -> TriageState | None: ...

    def triage_history(self, alert_id: int) -> list[TriageEvent]: ...

    def alert_statuses(self, alert_ids: Sequence[int]) -> dict[int, AlertStatus]: ...

    def expand_groups(self, alert_ids: Sequence[int]) -> list[int]:
        """The ids plus every other OPEN alert in the same near-duplicate groups, in order."""
        ...

    def account_roles(self) -> dict[str, Role]:
        """Every account's role (to offer assignees and to find the supervisors)."""
        ...

    # ---------------------------------------------------------------- writing
    def assign_alerts(
        self, alert_ids: Sequence[int], assignee: str | None, *, actor: str, at: datetime, only_unclaimed: bool
    ) -> Changed:
        """Set (or with None clear) who holds open alerts. ``only_unclaimed`` leaves alone
        alerts someone else holds (a claim never steals)."""
        ...

    def dispose_alerts(
        self,
        alert_ids: Sequence[int],
        disposition: Disposition,
        reason: str,
        *,
        actor: str,
        at: datetime,
        fanout_for: Callable[[list[int]], Fanout] | None = None,
    ) -> Changed:
        """Record dismiss / false positive / escalate on open alerts (escalate also on none
        else); ``fanout_for(changed ids)`` gives the notifications to write with it."""
        ...

    def reopen_alerts(self, alert_ids: Sequence[int], reason: str, *, actor: str, at: datetime) -> Changed:
        """Put dismissed, false-positive or escalated alerts back in the queue."""
        ...

    def record_sla_breaches(
        self, now: datetime, *, fanout_for: Callable[[list[SlaBreach]], Fanout] | None = None
    ) -> list[SlaBreach]:
        """Record every open alert past its deadline that has no breach yet (idempotent);
        returns the new ones."""
        ...

    def fan_out_new_alerts(
        self,
        keyer: GroupKeyer,
        fanout_for: Callable[[list[tuple[AlertView, str, bool]]], Fanout],
        *,
        limit: int = 500,
    ) -> int:
        """For alerts committed since the last call: set their near-duplicate key and write
        their notifications, then move the cursor on, in one transaction. ``fanout_for`` gets
        (view, group key, is the first open alert of its group). Returns how many were handled."""
        ...

    # ---------------------------------------------------------------- figures
    def watch_figures(self, now: datetime, *, since: datetime | None = None) -> list[WatchFigures]:
        """Per watch: alerts, time to triage, SLA compliance, false positives (alerts raised since ``since``)."""
        ...

    def floor_counts(self, now: datetime) -> FloorCounts: ...

    def alert_volume(self, since: datetime, bucket_s: int) -> list[tuple[datetime, int]]:
        """Alerts raised per bucket from ``since`` (empty buckets included)."""
        ...

    def recent_breaches(self, *, limit: int = 20) -> list[tuple[SlaBreach, AlertView]]: ...
