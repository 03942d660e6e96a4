"""The JSON API shapes of the watch floor: queue, cases, wall, figures, notifications.

What /openapi.json documents for those endpoints; field descriptions are part of the API.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from watchfloor.cases.markdown import MAX_NOTE_CHARS, render_markdown
from watchfloor.cases.service import MAX_TITLE
from watchfloor.model import (
    Case,
    CaseAlert,
    CaseEvent,
    CaseFile,
    CaseNote,
    CaseStatus,
    CaseSummary,
    CaseTask,
    Disposition,
    Evidence,
    FloorCounts,
    InboxMessage,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    QueueItem,
    Severity,
    TaskStatus,
    TriageEvent,
    TriageState,
    WatchFigures,
)
from watchfloor.triage.actions import MAX_IDS, ActionResult
from watchfloor.web.api_models import AlertOut, ApiIn, Id, JsonDatetime

AlertIds = Field(min_length=1, max_length=MAX_IDS, description=f"Alert ids (1 to {MAX_IDS}).")


# ----------------------------------------------------------------------------- queue


class QueueItemOut(BaseModel):
    alert: AlertOut = Field(description="The group's most urgent open alert.")
    count: int = Field(description="Open alerts in this queue item (near-duplicates are grouped).")
    alert_ids: list[int] = Field(description="Every open alert of the item, most urgent first.")
    assignee: str | None = Field(description="Who holds the lead alert.")
    assignees: list[str] = Field(description="Everyone who holds an alert of the item.")
    breached: int = Field(description="Alerts of the item whose SLA breach is recorded.")
    time_left_s: float = Field(description="Seconds to the lead alert's deadline (negative: overdue).")

    @classmethod
    def of(cls, item: QueueItem, now: datetime) -> QueueItemOut:
        return cls(
            alert=AlertOut.of(item.view),
            count=item.count,
            alert_ids=list(item.alert_ids),
            assignee=item.triage.assignee,
            assignees=list(item.assignees),
            breached=item.breached,
            time_left_s=round((item.view.alert.due_at - now).total_seconds(), 1),
        )


class QueueOut(BaseModel):
    now: datetime = Field(description="The server's time the countdowns were computed at.")
    items: list[QueueItemOut] = Field(description="Most urgent first: severity, score, time left.")


class AlertIdsIn(ApiIn):
    alert_ids: list[Id] = AlertIds
    include_duplicates: bool = Field(
        False, strict=True, description="Also act on the other open alerts of each alert's near-duplicate group."
    )


class AssignIn(AlertIdsIn):
    assignee: str = Field(description="An account that can triage.")


class DisposeIn(AlertIdsIn):
    disposition: Disposition
    reason: str | None = Field(
        None, description="Required (5+ characters) for escalate, open_case and add_to_case: they may affect a person."
    )
    case_id: Id | None = Field(None, description="For add_to_case: the case.")
    case_title: str | None = Field(None, description="For open_case: the new case's title (default: from the alert).")


class ReopenIn(ApiIn):
    alert_ids: list[Id] = AlertIds
    reason: str = Field(description="Why the decision is undone (5+ characters).")


class SkippedOut(BaseModel):
    alert_id: int
    reason: str


class ActionOut(BaseModel):
    action: str
    changed: list[int] = Field(description="Alerts the action changed.")
    skipped: list[SkippedOut] = Field(description="Alerts left alone, and why.")
    case_id: int | None = None
    summary: str

    @classmethod
    def of(cls, result: ActionResult) -> ActionOut:
        return cls(
            action=result.action,
            changed=result.changed,
            case_id=result.case_id,
            summary=result.summary(),
            skipped=[SkippedOut(alert_id=k, reason=v) for k, v in result.skipped.items()],
        )


class TriageEventOut(BaseModel):
    at: datetime
    actor: str
    kind: str = Field(description="claimed | released | assigned | disposed | reopened | sla_breach")
    detail: str

    @classmethod
    def of(cls, e: TriageEvent) -> TriageEventOut:
        return cls(at=e.at, actor=e.actor, kind=e.kind, detail=e.detail)


class TriageOut(BaseModel):
    alert_id: int
    status: str
    group_key: str | None
    assignee: str | None
    assigned_at: datetime | None
    disposition: Disposition | None
    reason: str | None
    disposed_by: str | None
    disposed_at: datetime | None
    case_id: int | None
    breached_at: datetime | None = Field(description="When the SLA breach was recorded, if it was.")
    history: list[TriageEventOut]

    @classmethod
    def of(cls, status: str, state: TriageState, history: list[TriageEvent]) -> TriageOut:
        return cls(
            alert_id=state.alert_id,
            status=status,
            group_key=state.group_key,
            assignee=state.assignee,
            assigned_at=state.assigned_at,
            disposition=state.disposition,
            reason=state.reason,
            disposed_by=state.disposed_by,
            disposed_at=state.disposed_at,
            case_id=state.case_id,
            breached_at=state.breached_at,
            history=[TriageEventOut.of(e) for e in history],
        )


class AssigneesOut(BaseModel):
    assignees: list[str] = Field(description="Accounts that can hold alerts.")


# ----------------------------------------------------------------------------- cases


class CaseOut(BaseModel):
    id: int
    title: str
    status: CaseStatus
    owner: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    merged_into: int | None

    @classmethod
    def of(cls, c: Case) -> CaseOut:
        return cls(
            id=c.id or 0,
            title=c.title,
            status=c.status,
            owner=c.owner,
            created_by=c.created_by,
            created_at=c.created_at,
            updated_at=c.updated_at,
            merged_into=c.merged_into,
        )


class CaseSummaryOut(CaseOut):
    alerts: int
    evidence: int
    open_tasks: int

    @classmethod
    def of_summary(cls, s: CaseSummary) -> CaseSummaryOut:
        return cls(**CaseOut.of(s.case).model_dump(), alerts=s.alerts, evidence=s.evidence, open_tasks=s.open_tasks)


class CasesOut(BaseModel):
    cases: list[CaseSummaryOut]


class EvidenceOut(BaseModel):
    id: int
    alert_id: int | None
    platform: str
    native_id: str
    version: str
    source_url: str | None
    sha256: str = Field(description="SHA-256 of the raw bytes as received, taken when preserved.")
    size: int = Field(description="Bytes preserved.")
    captured_at: datetime = Field(description="When watchfloor received the post.")
    preserved_at: datetime
    preserved_by: str
    author: str = Field(description="A keyed pseudonym.")
    lang: str | None
    text: str
    post_created_at: datetime | None

    @classmethod
    def of(cls, e: Evidence) -> EvidenceOut:
        return cls(
            id=e.id or 0,
            alert_id=e.alert_id,
            platform=e.platform,
            native_id=e.native_id,
            version=e.version,
            source_url=e.source_url,
            sha256=e.sha256,
            size=len(e.raw),
            captured_at=e.captured_at,
            preserved_at=e.preserved_at,
            preserved_by=e.preserved_by,
            author=e.author,
            lang=e.lang,
            text=e.text,
            post_created_at=e.post_created_at,
        )


class NoteOut(BaseModel):
    id: int
    author: str
    created_at: datetime
    markdown: str
    html: str = Field(description="The markdown rendered and sanitised.")

    @classmethod
    def of(cls, n: CaseNote) -> NoteOut:
        return cls(
            id=n.id or 0, author=n.author, created_at=n.created_at, markdown=n.body, html=str(render_markdown(n.body))
        )


class TaskOut(BaseModel):
    id: int
    title: str
    status: TaskStatus
    assignee: str | None
    due_at: datetime | None
    created_by: str
    created_at: datetime
    done_at: datetime | None
    done_by: str | None

    @classmethod
    def of(cls, t: CaseTask) -> TaskOut:
        return cls(
            id=t.id or 0,
            title=t.title,
            status=t.status,
            assignee=t.assignee,
            due_at=t.due_at,
            created_by=t.created_by,
            created_at=t.created_at,
            done_at=t.done_at,
            done_by=t.done_by,
        )


class CaseEventOut(BaseModel):
    at: datetime
    actor: str
    kind: str
    detail: str

    @classmethod
    def of(cls, e: CaseEvent) -> CaseEventOut:
        return cls(at=e.at, actor=e.actor, kind=e.kind, detail=e.detail)


class CaseAlertOut(BaseModel):
    alert: AlertOut
    added_by: str
    added_at: datetime
    reason: str

    @classmethod
    def of(cls, ca: CaseAlert) -> CaseAlertOut:
        return cls(alert=AlertOut.of(ca.view), added_by=ca.added_by, added_at=ca.added_at, reason=ca.reason)


class CaseFileOut(BaseModel):
    case: CaseOut
    alerts: list[CaseAlertOut]
    evidence: list[EvidenceOut]
    notes: list[NoteOut]
    tasks: list[TaskOut]
    timeline: list[CaseEventOut] = Field(description="Every change to the case, oldest first.")

    @classmethod
    def of(cls, cf: CaseFile) -> CaseFileOut:
        return cls(
            case=CaseOut.of(cf.case),
            alerts=[CaseAlertOut.of(a) for a in cf.alerts],
            evidence=[EvidenceOut.of(e) for e in cf.evidence],
            notes=[NoteOut.of(n) for n in cf.notes],
            tasks=[TaskOut.of(t) for t in cf.tasks],
            timeline=[CaseEventOut.of(e) for e in cf.timeline],
        )


class CaseIn(ApiIn):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    owner: str | None = Field(None, description="Default: you.")
    alert_ids: list[Id] = Field(default_factory=list, max_length=MAX_IDS, description="Alerts to open it with.")
    reason: str | None = Field(None, description="Required when alert_ids are given.")


class CaseUpdateIn(ApiIn):
    title: str | None = None
    status: CaseStatus | None = Field(None, description="open | on_hold | closed (merged only by merging).")
    owner: str | None = None


class NoteIn(ApiIn):
    markdown: str = Field(min_length=1, max_length=MAX_NOTE_CHARS, description="The note, in markdown (no raw HTML).")


class TaskIn(ApiIn):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    assignee: str | None = None
    due_at: JsonDatetime | None = None


class TaskUpdateIn(ApiIn):
    status: TaskStatus | None = None
    assignee: str | None = Field(None, description="Send null to unassign; leave out to keep.")
    due_at: JsonDatetime | None = Field(None, description="Send null to clear; leave out to keep.")


class EvidenceIn(ApiIn):
    alert_ids: list[Id] = AlertIds
    reason: str = Field(description="Why these posts belong in the case (5+ characters).")


class MergeIn(ApiIn):
    into_case_id: Id = Field(description="The case that receives everything of this one.")
    reason: str | None = None


class SplitIn(ApiIn):
    alert_ids: list[Id] = AlertIds
    title: str = Field(min_length=1, max_length=MAX_TITLE, description="The new case's title.")
    reason: str | None = None


# ----------------------------------------------------------------------------- wall and figures


class FloorCountsOut(BaseModel):
    open_alerts: int
    queue_items: int = Field(description="Open alerts with near-duplicates counted once.")
    unassigned: int
    overdue: int = Field(description="Open alerts past their deadline.")
    due_soon: int = Field(description="Open alerts due within 15 minutes.")
    breaches_24h: int
    new_1h: int
    open_cases: int

    @classmethod
    def of(cls, c: FloorCounts) -> FloorCountsOut:
        return cls(
            open_alerts=c.open_alerts,
            queue_items=c.queue_items,
            unassigned=c.unassigned,
            overdue=c.overdue,
            due_soon=c.due_soon,
            breaches_24h=c.breaches_24h,
            new_1h=c.new_1h,
            open_cases=c.open_cases,
        )


class BreachOut(BaseModel):
    alert_id: int
    watch: str
    severity: Severity
    due_at: datetime
    detected_at: datetime
    status: str = Field(description="The alert's status now.")


class SourceHealthOut(BaseModel):
    source: str
    status: str | None = Field(description="connected, backoff, rate_limited, failed, … (null: never reported)")
    events_per_s: float
    lag_s: float | None
    last_event_at: datetime | None
    errors: int
    gaps: int


class VolumeOut(BaseModel):
    start: datetime
    alerts: int


class WallOut(BaseModel):
    now: datetime
    counts: FloorCountsOut
    queue: list[QueueItemOut]
    breaches: list[BreachOut]
    sources: list[SourceHealthOut]
    bucket_s: int
    volume: list[VolumeOut] = Field(description="Alerts raised per bucket, oldest first.")


class WatchFiguresOut(BaseModel):
    watch_id: int
    watch: str
    severity: Severity
    sla_minutes: int
    alerts: int
    open: int
    triaged: int = Field(description="Alerts that had a first disposition.")
    median_time_to_triage_s: float | None
    p90_time_to_triage_s: float | None
    sla_met: int
    sla_missed: int = Field(description="Triaged after the deadline, or still open past it.")
    sla_compliance: float | None = Field(description="sla_met / (sla_met + sla_missed); null without any.")
    false_positives: int
    false_positive_rate: float | None = Field(description="False positives / alerts with a standing disposition.")

    @classmethod
    def of(cls, f: WatchFigures) -> WatchFiguresOut:
        return cls(
            watch_id=f.watch_id,
            watch=f.watch_name,
            severity=f.severity,
            sla_minutes=f.sla_minutes,
            alerts=f.alerts,
            open=f.open,
            triaged=f.triaged,
            median_time_to_triage_s=f.median_time_to_triage_s,
            p90_time_to_triage_s=f.p90_time_to_triage_s,
            sla_met=f.sla_met,
            sla_missed=f.sla_missed,
            sla_compliance=f.sla_compliance,
            false_positives=f.false_positives,
            false_positive_rate=f.false_positive_rate,
        )


class FiguresOut(BaseModel):
    generated_at: datetime
    since: datetime | None = Field(description="Only alerts raised since then (null: all).")
    watches: list[WatchFiguresOut]


# ----------------------------------------------------------------------------- notifications


class InboxMessageOut(BaseModel):
    id: int
    kind: str = Field(description="alert | sla_breach | escalation")
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, m: InboxMessage) -> InboxMessageOut:
        return cls(
            id=m.id or 0,
            kind=m.kind,
            title=m.title,
            body=m.body,
            link=m.link,
            created_at=m.created_at,
            read_at=m.read_at,
        )


class InboxOut(BaseModel):
    unread: int
    messages: list[InboxMessageOut] = Field(description="Newest first.")


class MarkReadIn(ApiIn):
    ids: list[Id] | None = Field(None, description="These messages; null: all of yours.")


class MarkedOut(BaseModel):
    marked: int


class RuleIn(ApiIn):
    channel: NotificationChannel
    target: str = Field(max_length=2000, description="webhook: an http(s) URL; email: an address; inapp: a username.")
    events: list[NotificationEvent] = Field(min_length=1)
    watch_id: Id | None = Field(None, description="Only this watch (null: every watch).")
    min_severity: Severity = Severity.low
    include_content: bool = Field(
        False, strict=True, description="Put the post's text and reasons into webhook/e-mail bodies."
    )


class RuleOut(BaseModel):
    id: int
    channel: NotificationChannel
    target: str
    events: list[NotificationEvent]
    watch_id: int | None
    min_severity: Severity
    include_content: bool
    enabled: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, r: NotificationRule) -> RuleOut:
        return cls(
            id=r.id or 0,
            channel=r.channel,
            target=r.target,
            events=list(r.events),
            watch_id=r.watch_id,
            min_severity=r.min_severity,
            include_content=r.include_content,
            enabled=r.enabled,
            created_by=r.created_by,
            created_at=r.created_at,
        )


class RuleCreatedOut(RuleOut):
    secret: str | None = Field(description="The webhook signing secret. Shown only now: store it with the receiver.")


class RulesOut(BaseModel):
    rules: list[RuleOut]
