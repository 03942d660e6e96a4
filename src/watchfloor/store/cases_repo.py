"""The part of the repository behind cases: alerts linked to a case, preserved evidence,
notes, tasks, the timeline, merges and splits, and the record of evidence exports.

:class:`~watchfloor.store.base.Store` includes this protocol. Every change writes a line
to the case's timeline in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from watchfloor.model import (
    Case,
    CaseFile,
    CaseNote,
    CaseStatus,
    CaseSummary,
    CaseTask,
    EvidenceExport,
    TaskStatus,
)
from watchfloor.store.triage_repo import Changed

UNSET: object = object()  # "leave as it is" for optional updates that may be set to None


class CasesRepository(Protocol):
    def create_case(
        self, title: str, owner: str, *, actor: str, at: datetime, alert_ids: Sequence[int] = (), reason: str = ""
    ) -> tuple[Case, Changed]:
        """Open a case; the alerts are linked to it (disposition "open case") and their posts
        preserved as evidence."""
        ...

    def add_alerts_to_case(
        self, case_id: int, alert_ids: Sequence[int], *, actor: str, at: datetime, reason: str
    ) -> Changed:
        """Link alerts (disposition "add to case" for open or escalated ones) and preserve
        their posts as evidence. Alerts in another case, dismissed or false positives are skipped."""
        ...

    def get_case(self, case_id: int) -> Case | None: ...

    def list_cases(self, *, status: CaseStatus | None = None, limit: int = 200) -> list[CaseSummary]: ...

    def case_file(self, case_id: int) -> CaseFile | None: ...

    def update_case(
        self,
        case_id: int,
        *,
        actor: str,
        at: datetime,
        title: str | None = None,
        status: CaseStatus | None = None,
        owner: str | None = None,
    ) -> Case: ...

    def add_case_note(self, case_id: int, body: str, *, actor: str, at: datetime) -> CaseNote: ...

    def add_case_task(
        self,
        case_id: int,
        title: str,
        *,
        actor: str,
        at: datetime,
        assignee: str | None = None,
        due_at: datetime | None = None,
    ) -> CaseTask: ...

    def update_case_task(
        self,
        case_id: int,
        task_id: int,
        *,
        actor: str,
        at: datetime,
        status: TaskStatus | None = None,
        assignee: str | object | None = UNSET,
        due_at: datetime | object | None = UNSET,
    ) -> CaseTask: ...

    def merge_cases(self, source_id: int, target_id: int, *, actor: str, at: datetime, reason: str = "") -> Case:
        """Move everything of ``source_id`` into ``target_id``; the source is marked merged."""
        ...

    def split_case(
        self, case_id: int, alert_ids: Sequence[int], title: str, *, actor: str, at: datetime, reason: str = ""
    ) -> Case:
        """Move these alerts (and their evidence) into a new case; returns it."""
        ...

    def record_export(self, export: EvidenceExport) -> EvidenceExport: ...

    def find_exports(self, manifest_sha256: str) -> list[EvidenceExport]: ...
