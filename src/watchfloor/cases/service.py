"""What analysts do with cases: open, add alerts (and so evidence), note, task, merge, split.

The store applies each change in one transaction and writes the timeline; this module
checks the input first (lengths, accounts, reasons) and turns store refusals into
:class:`~watchfloor.triage.errors.FloorError` with a status code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from watchfloor.cases.markdown import MAX_NOTE_CHARS
from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import (
    Case,
    CaseFile,
    CaseNote,
    CaseStatus,
    CaseTask,
    TaskStatus,
    User,
    utcnow,
)
from watchfloor.store import Store, StoreError
from watchfloor.store.cases_repo import UNSET
from watchfloor.store.triage_repo import Changed
from watchfloor.triage.actions import ActionResult, clean_ids, clean_reason, store_refusal
from watchfloor.triage.errors import FloorError

MAX_TITLE = 200


def clean_title(title: str | None, what: str = "title") -> str:
    text = " ".join((title or "").split())
    if not text:
        raise FloorError(400, f"the {what} is empty")
    if len(text) > MAX_TITLE:
        raise FloorError(400, f"the {what} is too long (at most {MAX_TITLE} characters)")
    return text


class Cases:
    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def _account(self, username: str, permission: Permission, what: str) -> str:
        role = self.store.account_roles().get(username)
        if role is None or not allowed(role, permission):
            raise FloorError(400, f"{username!r} is not an account that can {what}")
        return username

    def members(self) -> list[str]:
        """Accounts that can work on cases (owners, task assignees)."""
        return sorted(u for u, r in self.store.account_roles().items() if allowed(r, Permission.manage_cases))

    def file(self, case_id: int) -> CaseFile:
        found = self.store.case_file(case_id)
        if found is None:
            raise FloorError(404, f"no case with id {case_id}")
        return found

    def open(
        self, actor: User, title: str, *, alert_ids: Sequence[int] = (), reason: str = "", owner: str | None = None
    ) -> tuple[Case, Changed]:
        title = clean_title(title)
        owner = self._account(owner, Permission.manage_cases, "own cases") if owner else actor.username
        ids = clean_ids(alert_ids) if alert_ids else []
        why = clean_reason(reason, required=bool(ids), what="Opening a case")
        try:
            return self.store.create_case(
                title, owner, actor=actor.username, at=self.clock(), alert_ids=ids, reason=why
            )
        except StoreError as exc:
            raise store_refusal(exc) from None

    def add_alerts(self, actor: User, case_id: int, alert_ids: Sequence[int], reason: str | None) -> ActionResult:
        """Add alerts to a case: their posts are preserved as evidence."""
        why = clean_reason(reason, required=True, what="Adding to a case")
        ids = clean_ids(alert_ids)
        try:
            changed = self.store.add_alerts_to_case(case_id, ids, actor=actor.username, at=self.clock(), reason=why)
        except StoreError as exc:
            raise store_refusal(exc) from None
        return ActionResult.of("add_to_case", changed, case_id)

    def update(
        self,
        actor: User,
        case_id: int,
        *,
        title: str | None = None,
        status: CaseStatus | None = None,
        owner: str | None = None,
    ) -> Case:
        if status == CaseStatus.merged:
            raise FloorError(400, "a case becomes merged only by merging it into another")
        new_title = clean_title(title) if title is not None else None
        new_owner = self._account(owner, Permission.manage_cases, "own cases") if owner else None
        try:
            return self.store.update_case(
                case_id, actor=actor.username, at=self.clock(), title=new_title, status=status, owner=new_owner
            )
        except StoreError as exc:
            raise store_refusal(exc) from None

    def note(self, actor: User, case_id: int, body: str) -> CaseNote:
        text = (body or "").strip()
        if not text:
            raise FloorError(400, "the note is empty")
        if len(text) > MAX_NOTE_CHARS:
            raise FloorError(400, f"a note can have at most {MAX_NOTE_CHARS} characters")
        try:
            return self.store.add_case_note(case_id, text, actor=actor.username, at=self.clock())
        except StoreError as exc:
            raise store_refusal(exc) from None

    def add_task(
        self, actor: User, case_id: int, title: str, *, assignee: str | None = None, due_at: datetime | None = None
    ) -> CaseTask:
        text = clean_title(title, "task")
        who = self._account(assignee, Permission.manage_cases, "work on cases") if assignee else None
        try:
            return self.store.add_case_task(
                case_id, text, actor=actor.username, at=self.clock(), assignee=who, due_at=due_at
            )
        except StoreError as exc:
            raise store_refusal(exc) from None

    def update_task(
        self,
        actor: User,
        case_id: int,
        task_id: int,
        *,
        status: TaskStatus | None = None,
        assignee: str | object | None = UNSET,
        due_at: datetime | object | None = UNSET,
    ) -> CaseTask:
        if isinstance(assignee, str) and assignee:
            self._account(assignee, Permission.manage_cases, "work on cases")
        elif assignee == "":
            assignee = None
        try:
            return self.store.update_case_task(
                case_id, task_id, actor=actor.username, at=self.clock(), status=status, assignee=assignee, due_at=due_at
            )
        except StoreError as exc:
            raise store_refusal(exc) from None

    def merge(self, actor: User, source_id: int, target_id: int, reason: str | None = None) -> Case:
        why = clean_reason(reason, required=False, what="Merging")
        try:
            return self.store.merge_cases(source_id, target_id, actor=actor.username, at=self.clock(), reason=why)
        except StoreError as exc:
            raise store_refusal(exc) from None

    def split(self, actor: User, case_id: int, alert_ids: Sequence[int], title: str, reason: str | None = None) -> Case:
        text = clean_title(title)
        ids = clean_ids(alert_ids)
        why = clean_reason(reason, required=False, what="Splitting")
        try:
            return self.store.split_case(case_id, ids, text, actor=actor.username, at=self.clock(), reason=why)
        except StoreError as exc:
            raise store_refusal(exc) from None
