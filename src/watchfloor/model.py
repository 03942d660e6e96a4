"""The DESIGN vocabulary as types: what flows through watchfloor and what it stores.

Every other module speaks these types; none of them knows about SQL, HTTP or a
platform's wire format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from watchfloor.pickling import pickled_by_fields


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only clock the code reads)."""
    return datetime.now(UTC)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event exactly as a source received it, plus where to resume after it."""

    source: str  # the source instance, e.g. "demo" or "replay:/path/file.jsonl"
    platform: str  # which normaliser reads the payload, e.g. "bluesky"
    cursor: str  # opaque position: resuming from it yields the events *after* this one
    payload: bytes  # the bytes as received, kept as evidence for matched posts
    received_at: datetime


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class PostKey:
    """The idempotency key of a stored post: a replay never stores the same key twice."""

    platform: str
    native_id: str
    version: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MediaRef:
    """A media attachment by reference only: never the bytes, never a face or a place."""

    url: str
    mime_type: str | None = None
    content_hash: str | None = None  # the platform's content id (e.g. a CID), if any
    alt: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Post:
    """One normalised public item. ``author`` and ``mentions`` hold pseudonyms only."""

    platform: str
    native_id: str
    version: str
    created_at: datetime
    received_at: datetime
    text: str
    author: str
    lang: str | None = None
    langs: tuple[str, ...] = ()
    url: str | None = None
    links: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    reply_to: str | None = None
    quote_of: str | None = None
    media: tuple[MediaRef, ...] = ()
    raw: bytes = b""

    @property
    def key(self) -> PostKey:
        return PostKey(self.platform, self.native_id, self.version)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Deletion:
    """The platform says this item is gone: every stored version of it is removed."""

    platform: str
    native_id: str
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed event that carries no post (a like, a follow, an identity change).

    It is counted by ``kind`` and never stored.
    """

    kind: str


Normalised = Post | Deletion | Ignored


class MalformedEvent(ValueError):
    """Raised by a normaliser for input it cannot read; the event goes to dead letters."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A quarantined event and the reason it could not be read."""

    source: str
    platform: str
    reason: str
    payload: bytes
    received_at: datetime
    id: int | None = None
    # Which event this is (:meth:`of`): the store keeps one dead letter per (source, key), so a
    # batch delivered again after its commit (a worker killed before its acks) adds none twice.
    key: str | None = None

    @classmethod
    def of(cls, event: RawEvent, reason: str) -> DeadLetter:
        """The dead letter of ``event``, keyed by its source, position and bytes."""
        digest = hashlib.sha256(f"{event.source}\x00{event.cursor}\x00".encode())
        digest.update(event.payload)
        return cls(event.source, event.platform, reason, event.payload, event.received_at, key=digest.hexdigest())


# --------------------------------------------------------------------------- watches


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"

    @property
    def weight(self) -> float:
        return {"low": 0.25, "medium": 0.5, "high": 0.75, "urgent": 1.0}[self.value]

    @property
    def default_sla_minutes(self) -> int:
        return {"low": 24 * 60, "medium": 4 * 60, "high": 60, "urgent": 30}[self.value]


class WatchStatus(StrEnum):
    """Where a watch is in its approval: only ``approved`` (and unexpired, enabled) ones match."""

    pending = "pending"  # proposed, waiting for a supervisor who is not its creator
    approved = "approved"
    rejected = "rejected"
    expired = "expired"  # reached its expiry; renewal is a new approval


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Watch:
    """A standing query with the purpose and limits it was approved for.

    ``purpose`` is a purpose of the deployment's policy; ``created_by`` proposed it (or
    asked for its current period, on renewal), ``approver`` (never the creator) approved
    it at ``approved_at``. A watch held by the
    protected-activity guard (``hold`` names the categories) needs a second supervisor:
    ``reviewed_by`` records the first of the two. An account-targeted watch (``author:``,
    ``mention:``) names its approved ``authorization_id``.
    """

    name: str
    query: str
    purpose: str
    legal_basis: str
    owner: str
    severity: Severity = Severity.medium
    sla_minutes: int = 240
    expires_at: datetime | None = None
    approver: str | None = None
    sources: tuple[str, ...] = ()  # empty: every source
    languages: tuple[str, ...] = ()  # empty: every language
    enabled: bool = True
    created_at: datetime = field(default_factory=utcnow)
    status: WatchStatus = WatchStatus.pending
    created_by: str | None = None
    approved_at: datetime | None = None
    reviewed_by: str | None = None
    hold: str | None = None  # protected-activity categories that need two-person review
    authorization_id: int | None = None
    id: int | None = None

    def is_active(self, now: datetime) -> bool:
        """Matches now: approved, enabled and not expired."""
        return (
            self.status == WatchStatus.approved and self.enabled and (self.expires_at is None or self.expires_at > now)
        )

    def state(self, now: datetime) -> str:
        """One word for people: active, pending, rejected, expired or disabled."""
        if self.status in (WatchStatus.rejected, WatchStatus.pending):
            return self.status.value
        if self.status == WatchStatus.expired or (self.expires_at is not None and self.expires_at <= now):
            return "expired"
        return "active" if self.enabled else "disabled"


# --------------------------------------------------------------------------- alerts


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TermHit:
    """One part of a watch query that matched, and where in the post's text."""

    term: str  # the query part as written, e.g. '"bomb threat"' or 'evacuat*'
    kind: str  # "term" | "phrase" | "prefix" | "filter"
    spans: tuple[tuple[int, int], ...] = ()  # [start, end) character offsets in Post.text


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an alert was raised: the matched parts and how the score was made."""

    hits: tuple[TermHit, ...]
    score_parts: tuple[tuple[str, float], ...] = ()  # (signal name, contribution)

    def to_dict(self) -> dict[str, object]:
        return {
            "hits": [{"term": h.term, "kind": h.kind, "spans": [list(s) for s in h.spans]} for h in self.hits],
            "score_parts": [{"name": n, "value": v} for n, v in self.score_parts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Explanation:
        hits = tuple(
            TermHit(
                term=str(h["term"]),
                kind=str(h["kind"]),
                spans=tuple((int(s[0]), int(s[1])) for s in h.get("spans", [])),
            )
            for h in data.get("hits", [])  # type: ignore[union-attr]
        )
        parts = tuple(
            (str(p["name"]), float(p["value"]))
            for p in data.get("score_parts", [])  # type: ignore[union-attr]
        )
        return cls(hits=hits, score_parts=parts)


@dataclass(frozen=True, slots=True)
class WatchHit:
    """The matcher's verdict for one watch on one post."""

    watch_id: int
    explanation: Explanation


class AlertStatus(StrEnum):
    open = "open"
    dismissed = "dismissed"
    false_positive = "false_positive"
    escalated = "escalated"
    case = "case"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Alert:
    """One post matched by one watch, with its score and explanation."""

    watch_id: int
    post: PostKey
    score: float
    explanation: Explanation
    created_at: datetime
    due_at: datetime
    status: AlertStatus = AlertStatus.open
    id: int | None = None

    # Two copies the pipeline makes of every alert, built directly: ``dataclasses.replace``
    # looks every field up again, several microseconds per alert on the pipeline's thread.
    def rescored(self, score: float, explanation: Explanation) -> Alert:
        """This alert with a new score and explanation (the signals rescore it)."""
        return Alert(self.watch_id, self.post, score, explanation, self.created_at, self.due_at, self.status, self.id)

    def with_id(self, id: int) -> Alert:
        """This alert as stored, with its id."""
        return Alert(
            self.watch_id, self.post, self.score, self.explanation, self.created_at, self.due_at, self.status, id
        )


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with what a reader needs beside it: the watch and the post (if kept)."""

    alert: Alert
    watch_name: str
    severity: Severity
    post: Post | None  # None once the post was deleted upstream or expired


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class SourceState:
    """What a source last committed: its cursor and its health figures."""

    source: str
    cursor: str | None
    events_total: int = 0
    posts_total: int = 0
    events_per_s: float = 0.0
    lag_s: float | None = None
    last_event_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreCounts:
    posts: int
    alerts: int
    open_alerts: int
    dead_letters: int
    watches: int
    active_watches: int


class Role(StrEnum):
    analyst = "analyst"
    supervisor = "supervisor"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    password_hash: str
    must_change_password: bool = False
    created_at: datetime = field(default_factory=utcnow)


# ---- triage and cases


class Disposition(StrEnum):
    """What an analyst decided about an alert. None of them acts on a person by itself."""

    dismiss = "dismiss"
    false_positive = "false_positive"  # counts against the watch's quality figures
    escalate = "escalate"  # to the supervisors
    open_case = "open_case"
    add_to_case = "add_to_case"

    @property
    def needs_reason(self) -> bool:
        """Dispositions that may affect a person need a written reason."""
        return self in (Disposition.escalate, Disposition.open_case, Disposition.add_to_case)

    @property
    def status(self) -> AlertStatus:
        return {
            "dismiss": AlertStatus.dismissed,
            "false_positive": AlertStatus.false_positive,
            "escalate": AlertStatus.escalated,
            "open_case": AlertStatus.case,
            "add_to_case": AlertStatus.case,
        }[self.value]


@dataclass(frozen=True, slots=True)
class TriageState:
    """Where an alert stands on the floor: who has it, what was decided, its SLA."""

    alert_id: int
    group_key: str | None = None
    assignee: str | None = None
    assigned_at: datetime | None = None
    disposition: Disposition | None = None
    reason: str | None = None
    disposed_by: str | None = None
    disposed_at: datetime | None = None
    case_id: int | None = None
    breached_at: datetime | None = None  # when the SLA breach was recorded (its deadline passed open)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One line of the queue: an alert, or a group of near-duplicates shown as one."""

    view: AlertView  # the group's most urgent open alert
    triage: TriageState
    count: int  # open alerts in the group (1 for a lone alert)
    alert_ids: tuple[int, ...]  # every open alert of the group, most urgent first
    assignees: tuple[str, ...] = ()  # who holds members of the group
    breached: int = 0  # members whose SLA breach is recorded


@dataclass(frozen=True, slots=True)
class TriageEvent:
    """One step in an alert's history: claimed, assigned, disposed, breached, reopened."""

    alert_id: int
    at: datetime
    actor: str  # a username, or "system" for the SLA checker
    kind: str
    detail: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class SlaBreach:
    alert_id: int
    watch_id: int
    due_at: datetime
    detected_at: datetime
    group_key: str | None = None


class CaseStatus(StrEnum):
    open = "open"
    on_hold = "on_hold"
    closed = "closed"
    merged = "merged"  # set by a merge only: its contents moved to ``merged_into``


@dataclass(frozen=True, slots=True)
class Case:
    title: str
    owner: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    status: CaseStatus = CaseStatus.open
    merged_into: int | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A post preserved in a case exactly as received: its own copy, not a pointer to ``posts``,
    so it survives the post's upstream delete (the case is the legal hold)."""

    case_id: int
    platform: str
    native_id: str
    version: str
    raw: bytes
    sha256: str  # of ``raw``, hex
    captured_at: datetime  # when watchfloor received the post
    preserved_at: datetime  # when it was added to the case
    preserved_by: str
    source_url: str | None = None
    text: str = ""
    author: str = ""  # the pseudonym, never a handle
    lang: str | None = None
    post_created_at: datetime | None = None
    alert_id: int | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CaseNote:
    case_id: int
    author: str
    body: str  # markdown, rendered safely
    created_at: datetime
    id: int | None = None


class TaskStatus(StrEnum):
    open = "open"
    done = "done"


@dataclass(frozen=True, slots=True)
class CaseTask:
    case_id: int
    title: str
    created_by: str
    created_at: datetime
    assignee: str | None = None
    due_at: datetime | None = None
    status: TaskStatus = TaskStatus.open
    done_at: datetime | None = None
    done_by: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One line of a case's timeline."""

    case_id: int
    at: datetime
    actor: str
    kind: str
    detail: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CaseAlert:
    """An alert linked to a case, with who linked it and why."""

    view: AlertView
    added_by: str
    added_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A case with everything in it, as its page, the API and an export show it."""

    case: Case
    alerts: tuple[CaseAlert, ...]
    evidence: tuple[Evidence, ...]
    notes: tuple[CaseNote, ...]
    tasks: tuple[CaseTask, ...]
    timeline: tuple[CaseEvent, ...]


@dataclass(frozen=True, slots=True)
class EvidenceExport:
    case_id: int
    exported_at: datetime
    exported_by: str
    manifest_sha256: str
    filename: str
    id: int | None = None


class NotificationChannel(StrEnum):
    webhook = "webhook"
    email = "email"
    inapp = "inapp"


class NotificationEvent(StrEnum):
    alert = "alert"  # a new alert (the first of a group of near-duplicates)
    sla_breach = "sla_breach"
    escalation = "escalation"


@dataclass(frozen=True, slots=True)
class NotificationRule:
    """Who hears about what: a channel and target, for one watch (or all) from a severity up."""

    channel: NotificationChannel
    target: str  # webhook URL, e-mail address or username
    created_by: str
    created_at: datetime
    events: tuple[NotificationEvent, ...] = (NotificationEvent.alert,)
    watch_id: int | None = None  # None: every watch
    min_severity: Severity = Severity.low
    include_content: bool = False  # post text and reasons in webhook/e-mail bodies
    secret: str | None = None  # webhook signing secret
    enabled: bool = True
    id: int | None = None

    def wants(self, event: NotificationEvent, watch_id: int, severity: Severity) -> bool:
        return (
            self.enabled
            and event in self.events
            and (self.watch_id is None or self.watch_id == watch_id)
            and severity.weight >= self.min_severity.weight
        )


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A webhook call or e-mail waiting to be delivered (at least once, with retries)."""

    rule_id: int
    channel: NotificationChannel
    target: str
    event: NotificationEvent
    subject: str  # what it is about, e.g. "alert:42"; (rule, event, subject) is unique
    payload: dict[str, object]
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """An in-app notification for one user."""

    username: str
    kind: str
    title: str
    created_at: datetime
    body: str = ""
    link: str | None = None
    subject: str | None = None  # (username, kind, subject) is written once; None: never deduplicated
    read_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class WatchFigures:
    """A watch's quality and timeliness figures (counts only: no personal data)."""

    watch_id: int
    watch_name: str
    severity: Severity
    sla_minutes: int
    alerts: int
    open: int
    triaged: int  # alerts that had a first disposition
    decided: int  # alerts whose disposition stands now (not reopened)
    median_time_to_triage_s: float | None
    p90_time_to_triage_s: float | None
    sla_met: int
    sla_missed: int
    false_positives: int

    @property
    def sla_compliance(self) -> float | None:
        decided = self.sla_met + self.sla_missed
        return None if decided == 0 else self.sla_met / decided

    @property
    def false_positive_rate(self) -> float | None:
        return None if self.decided == 0 else self.false_positives / self.decided


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """A line of the case list."""

    case: Case
    alerts: int
    evidence: int
    open_tasks: int


@dataclass(frozen=True, slots=True)
class FloorCounts:
    """The wall display's headline numbers."""

    open_alerts: int
    queue_items: int  # open alerts with near-duplicates counted once
    unassigned: int
    overdue: int  # open and past their deadline
    due_soon: int  # open, due within the next 15 minutes
    breaches_24h: int
    new_1h: int
    open_cases: int


# --------------------------------------------------------------------------- governance


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SealedIdentity:
    """An author's clear account, encrypted (AES-256-GCM) under its epoch's identity key.

    Only ever opened by an authorised, audited unmask; ``nonce`` and ``ciphertext`` are
    useless once the epoch's identity key is destroyed (crypto-shredding).
    """

    pseudonym: str
    epoch: int
    nonce: bytes
    ciphertext: bytes
    first_seen: datetime


class AuthorizationKind(StrEnum):
    unmask = "unmask"  # reveal the account behind one pseudonym, for one case
    account_watch = "account_watch"  # a watch that targets accounts (author:, mention:)


class AuthorizationStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    denied = "denied"
    revoked = "revoked"


@dataclass(frozen=True, slots=True)
class Authorization:
    """A recorded approval for an identity reveal or an account-targeted watch.

    The approver is a supervisor and never the requester; the scope is the pseudonym(s)
    and the case; it expires. ``reveals`` counts the unmasks made under it.
    """

    kind: AuthorizationKind
    requester: str
    purpose: str
    pseudonyms: tuple[str, ...]
    requested_at: datetime
    expires_at: datetime
    legal_basis: str = ""
    legal_ref: str | None = None  # a legal-process reference (warrant, court order, request number)
    case_id: str | None = None
    reason: str = ""
    status: AuthorizationStatus = AuthorizationStatus.requested
    approver: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    max_reveals: int = 0
    reveals: int = 0
    id: int | None = None

    def in_force(self, now: datetime) -> bool:
        return self.status == AuthorizationStatus.approved and self.expires_at > now


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the tamper-evident audit log, as decoded from its canonical bytes.

    Who did what to which object, for which purpose and case; never clear personal data.
    ``prev_root`` is the Merkle root of the log before this entry.
    """

    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None = None
    purpose: str | None = None
    case_id: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    prev_root: str = ""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head of the audit log (a c2sp.org/tlog-checkpoint signed note)."""

    tree_size: int
    root_hash: bytes
    created_at: datetime
    note: str  # the signed note text, signature lines included


# --------------------------------------------------------------------------- signals


@dataclass(frozen=True, slots=True)
class PostSignals:
    """What the signals computed for one matched post's *text* (never about its author).

    ``None`` means "not computed": sentiment, toxicity and threat are English-only, and
    language is ``None`` when the text is too short to tell.
    """

    post: PostKey
    computed_at: datetime
    lang: str | None = None  # identified language (ISO 639), whatever the post declared
    lang_confidence: float | None = None
    sentiment: float | None = None  # VADER compound score, -1 (negative) .. 1 (positive)
    toxicity: float | None = None  # 0 .. 1, see docs/signals.md for what it means
    threat: float | None = None  # 0 .. 1, see docs/signals.md for what it means
    near_duplicate_group: str | None = None  # "g:" + 16 hex digits, shared by near-identical texts
    minhash: bytes = b""  # the text's MinHash signature, to rebuild the near-duplicate index


@dataclass(frozen=True, slots=True)
class NearDuplicateGroup:
    """Posts whose texts are near-identical: one story copied many times is one group."""

    group_id: str
    count: int
    first_post: PostKey
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Spike:
    """A burst: a watch (or one of its terms) matched far more often than its baseline.

    Aggregate by construction: a count of alerts in a time window, never about a person.
    ``term`` is ``""`` for the watch as a whole.
    """

    watch_id: int
    term: str
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float  # expected alerts per window (EWMA of the previous windows)
    threshold: float  # the count above which a window is a spike
    excess: float  # count - baseline
    detected_at: datetime
    id: int | None = None
