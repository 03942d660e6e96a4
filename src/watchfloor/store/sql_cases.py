""":class:`~watchfloor.store.cases_repo.CasesRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0003_triage_cases.sql).

Evidence is copied out of ``posts`` when an alert joins a case: the raw bytes as
received, their SHA-256 and the post's normalised fields (pseudonymous author). The copy
is never a pointer, so an upstream delete or the posts' retention leaves it intact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watchfloor.model import (
    AlertStatus,
    AlertView,
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
    EvidenceExport,
    TaskStatus,
)
from watchfloor.store.base import StoreError
from watchfloor.store.cases_repo import UNSET
from watchfloor.store.dialect import Connection, Dialect, Row
from watchfloor.store.rows import must_ts, parse_ts, ts
from watchfloor.store.sql_triage import add_triage_event
from watchfloor.store.triage_repo import Changed

_LINKABLE = (AlertStatus.open.value, AlertStatus.escalated.value)


def add_case_event(conn: Connection, case_id: int, at: datetime, actor: str, kind: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO case_events (case_id, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (case_id, ts(at), actor, kind, detail),
    )


def _touch(conn: Connection, case_id: int, at: datetime) -> None:
    conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (ts(at), case_id))


def _preserve(conn: Connection, case_id: int, alert: Row, actor: str, at: datetime) -> str:
    """Copy the alert's post into the case's evidence; returns the timeline text."""
    post = conn.execute(
        "SELECT * FROM posts WHERE platform = ? AND native_id = ? AND version = ?",
        (alert["platform"], alert["native_id"], alert["version"]),
    ).fetchone()
    where = f"{alert['platform']} {alert['native_id']} (version {alert['version']})"
    if post is None:
        add_case_event(
            conn, case_id, at, "system", "evidence_unavailable", f"{where}: deleted upstream before it was preserved"
        )
        return ""
    raw = bytes(post["raw"])
    digest = hashlib.sha256(raw).hexdigest()
    conn.execute(
        "INSERT INTO evidence (case_id, alert_id, platform, native_id, version, source_url, raw, sha256,"
        " captured_at, preserved_at, preserved_by, text, author, lang, post_created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            case_id,
            alert["id"],
            post["platform"],
            post["native_id"],
            post["version"],
            post["url"],
            raw,
            digest,
            post["received_at"],
            ts(at),
            actor,
            post["text"],
            post["author"],
            post["lang"],
            post["created_at"],
        ),
    )
    add_case_event(conn, case_id, at, actor, "evidence_preserved", f"{where}: {len(raw)} bytes, SHA-256 {digest}")
    return digest


def link_alerts(
    conn: Connection,
    case_id: int,
    alert_ids: Sequence[int],
    *,
    actor: str,
    at: datetime,
    reason: str,
    disposition: Disposition,
) -> Changed:
    """Link alerts to a case inside the caller's transaction (see CasesRepository.add_alerts_to_case)."""
    result = Changed()
    for alert_id in dict.fromkeys(alert_ids):
        alert = conn.execute(
            "SELECT a.*, w.name AS watch_name, ca.case_id AS linked_case FROM alerts a"
            " JOIN watches w ON w.id = a.watch_id LEFT JOIN case_alerts ca ON ca.alert_id = a.id WHERE a.id = ?",
            (alert_id,),
        ).fetchone()
        if alert is None:
            result.skipped[alert_id] = "no such alert"
            continue
        if alert["linked_case"] is not None:
            linked = alert["linked_case"]
            result.skipped[alert_id] = "already in this case" if linked == case_id else f"already in case {linked}"
            continue
        if alert["status"] not in _LINKABLE:
            status = alert["status"].replace("_", " ")
            result.skipped[alert_id] = f"was decided as {status}: reopen it first"
            continue
        conn.execute(
            "INSERT INTO case_alerts (alert_id, case_id, added_by, added_at, reason) VALUES (?, ?, ?, ?, ?)",
            (alert_id, case_id, actor, ts(at), reason),
        )
        conn.execute(
            "UPDATE alerts SET status = 'case', case_id = ?, disposition = ?, disposition_reason = ?,"
            " disposed_by = ?, disposed_at = ?, triaged_at = COALESCE(triaged_at, ?) WHERE id = ?",
            (case_id, disposition.value, reason, actor, ts(at), ts(at), alert_id),
        )
        label = disposition.value.replace("_", " ")
        add_triage_event(conn, alert_id, at, actor, "disposed", f"{label} {case_id}: {reason}")
        add_case_event(conn, case_id, at, actor, "alert_added", f"alert {alert_id} ({alert['watch_name']}): {reason}")
        _preserve(conn, case_id, alert, actor, at)
        result.changed.append(alert_id)
    if result.changed:
        _touch(conn, case_id, at)
    return result


class SQLCasesMixin:
    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

        def get_alert(self, alert_id: int) -> AlertView | None: ...

    # ------------------------------------------------------------------ cases
    def _open_case_row(self, conn: Connection, case_id: int, *, for_change: bool = True) -> Row:
        row = conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            raise StoreError(f"no case with id {case_id}")
        if for_change and row["status"] == CaseStatus.merged.value:
            raise StoreError(f"case {case_id} was merged into case {row['merged_into']}")
        return row

    def create_case(
        self, title: str, owner: str, *, actor: str, at: datetime, alert_ids: Sequence[int] = (), reason: str = ""
    ) -> tuple[Case, Changed]:
        with self._write() as conn:
            case_id = int(
                conn.execute(
                    "INSERT INTO cases (title, status, owner, created_by, created_at, updated_at)"
                    " VALUES (?, 'open', ?, ?, ?, ?) RETURNING id",
                    (title, owner, actor, ts(at), ts(at)),
                ).fetchone()[0]
            )
            add_case_event(conn, case_id, at, actor, "opened", f"{title} (owner {owner})")
            changed = Changed()
            if alert_ids:
                changed = link_alerts(
                    conn, case_id, alert_ids, actor=actor, at=at, reason=reason, disposition=Disposition.open_case
                )
                if not changed.changed:
                    why = "; ".join(f"alert {k}: {v}" for k, v in changed.skipped.items())
                    raise StoreError(f"no case opened: none of the alerts could be added ({why})")
        case = self.get_case(case_id)
        assert case is not None
        return case, changed

    def add_alerts_to_case(
        self, case_id: int, alert_ids: Sequence[int], *, actor: str, at: datetime, reason: str
    ) -> Changed:
        with self._write() as conn:
            row = self._open_case_row(conn, case_id)
            if row["status"] == CaseStatus.closed.value:
                raise StoreError(f"case {case_id} is closed: reopen it first")
            return link_alerts(
                conn, case_id, alert_ids, actor=actor, at=at, reason=reason, disposition=Disposition.add_to_case
            )

    def get_case(self, case_id: int) -> Case | None:
        row = self._conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        return None if row is None else _case_from_row(row)

    def list_cases(self, *, status: CaseStatus | None = None, limit: int = 200) -> list[CaseSummary]:
        sql = (
            "SELECT c.*, (SELECT COUNT(*) FROM case_alerts x WHERE x.case_id = c.id) AS n_alerts,"
            " (SELECT COUNT(*) FROM evidence e WHERE e.case_id = c.id) AS n_evidence,"
            " (SELECT COUNT(*) FROM case_tasks t WHERE t.case_id = c.id AND t.status = 'open') AS n_tasks"
            " FROM cases c"
        )
        args: list[Any] = []
        if status is not None:
            sql += " WHERE c.status = ?"
            args.append(status.value)
        sql += " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?"
        args.append(limit)
        return [
            CaseSummary(case=_case_from_row(r), alerts=r["n_alerts"], evidence=r["n_evidence"], open_tasks=r["n_tasks"])
            for r in self._conn.execute(sql, args)
        ]

    def case_file(self, case_id: int) -> CaseFile | None:
        case = self.get_case(case_id)
        if case is None:
            return None
        conn = self._conn
        alerts: list[CaseAlert] = []
        for r in conn.execute("SELECT * FROM case_alerts WHERE case_id = ? ORDER BY added_at, alert_id", (case_id,)):
            view = self.get_alert(r["alert_id"])
            if view is not None:
                alerts.append(
                    CaseAlert(view=view, added_by=r["added_by"], added_at=must_ts(r["added_at"]), reason=r["reason"])
                )
        evidence = [
            _evidence_from_row(r)
            for r in conn.execute("SELECT * FROM evidence WHERE case_id = ? ORDER BY id", (case_id,))
        ]
        notes = [
            CaseNote(
                id=r["id"],
                case_id=r["case_id"],
                author=r["author"],
                body=r["body"],
                created_at=must_ts(r["created_at"]),
            )
            for r in conn.execute("SELECT * FROM case_notes WHERE case_id = ? ORDER BY created_at, id", (case_id,))
        ]
        tasks = [
            _task_from_row(r)
            for r in conn.execute("SELECT * FROM case_tasks WHERE case_id = ? ORDER BY id", (case_id,))
        ]
        timeline = [
            CaseEvent(
                id=r["id"],
                case_id=r["case_id"],
                at=must_ts(r["at"]),
                actor=r["actor"],
                kind=r["kind"],
                detail=r["detail"],
            )
            for r in conn.execute("SELECT * FROM case_events WHERE case_id = ? ORDER BY at, id", (case_id,))
        ]
        return CaseFile(
            case=case,
            alerts=tuple(alerts),
            evidence=tuple(evidence),
            notes=tuple(notes),
            tasks=tuple(tasks),
            timeline=tuple(timeline),
        )

    def update_case(
        self,
        case_id: int,
        *,
        actor: str,
        at: datetime,
        title: str | None = None,
        status: CaseStatus | None = None,
        owner: str | None = None,
    ) -> Case:
        if status == CaseStatus.merged:
            raise StoreError("a case becomes merged only by merging it")
        with self._write() as conn:
            row = self._open_case_row(conn, case_id)
            for column, value, kind in (
                ("title", title, "title_changed"),
                ("status", status, "status_changed"),
                ("owner", owner, "owner_changed"),
            ):
                if value is None:
                    continue
                new = value.value if isinstance(value, CaseStatus) else value
                if new == row[column]:
                    continue
                conn.execute(f"UPDATE cases SET {column} = ? WHERE id = ?", (new, case_id))
                add_case_event(conn, case_id, at, actor, kind, f"{row[column]} → {new}")
            _touch(conn, case_id, at)
        case = self.get_case(case_id)
        assert case is not None
        return case

    def add_case_note(self, case_id: int, body: str, *, actor: str, at: datetime) -> CaseNote:
        with self._write() as conn:
            self._open_case_row(conn, case_id)
            note_id = int(
                conn.execute(
                    "INSERT INTO case_notes (case_id, author, body, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                    (case_id, actor, body, ts(at)),
                ).fetchone()[0]
            )
            add_case_event(conn, case_id, at, actor, "note_added", f"note {note_id}")
            _touch(conn, case_id, at)
        return CaseNote(id=note_id, case_id=case_id, author=actor, body=body, created_at=at)

    def add_case_task(
        self,
        case_id: int,
        title: str,
        *,
        actor: str,
        at: datetime,
        assignee: str | None = None,
        due_at: datetime | None = None,
    ) -> CaseTask:
        with self._write() as conn:
            self._open_case_row(conn, case_id)
            task_id = int(
                conn.execute(
                    "INSERT INTO case_tasks (case_id, title, assignee, due_at, status, created_by, created_at)"
                    " VALUES (?, ?, ?, ?, 'open', ?, ?) RETURNING id",
                    (case_id, title, assignee, ts(due_at), actor, ts(at)),
                ).fetchone()[0]
            )
            extra = "".join([f", for {assignee}" if assignee else "", f", due {_when(due_at)}" if due_at else ""])
            add_case_event(conn, case_id, at, actor, "task_added", f"task {task_id}: {title}{extra}")
            _touch(conn, case_id, at)
            row = conn.execute("SELECT * FROM case_tasks WHERE id = ?", (task_id,)).fetchone()
        return _task_from_row(row)

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
    ) -> CaseTask:
        with self._write() as conn:
            self._open_case_row(conn, case_id)
            row = conn.execute("SELECT * FROM case_tasks WHERE id = ? AND case_id = ?", (task_id, case_id)).fetchone()
            if row is None:
                raise StoreError(f"case {case_id} has no task {task_id}")
            if status is not None and status.value != row["status"]:
                done = status == TaskStatus.done
                conn.execute(
                    "UPDATE case_tasks SET status = ?, done_at = ?, done_by = ? WHERE id = ?",
                    (status.value, ts(at) if done else None, actor if done else None, task_id),
                )
                kind = "task_done" if done else "task_reopened"
                add_case_event(conn, case_id, at, actor, kind, f"task {task_id}: {row['title']}")
            if assignee is not UNSET and assignee != row["assignee"]:
                conn.execute("UPDATE case_tasks SET assignee = ? WHERE id = ?", (assignee, task_id))
                add_case_event(conn, case_id, at, actor, "task_assigned", f"task {task_id} → {assignee or 'nobody'}")
            if due_at is not UNSET:
                new_due = due_at if isinstance(due_at, datetime) else None
                if ts(new_due) != row["due_at"]:
                    conn.execute("UPDATE case_tasks SET due_at = ? WHERE id = ?", (ts(new_due), task_id))
                    when = _when(new_due) if new_due else "never"
                    add_case_event(conn, case_id, at, actor, "task_due", f"task {task_id} due {when}")
            _touch(conn, case_id, at)
            updated = conn.execute("SELECT * FROM case_tasks WHERE id = ?", (task_id,)).fetchone()
        return _task_from_row(updated)

    def merge_cases(self, source_id: int, target_id: int, *, actor: str, at: datetime, reason: str = "") -> Case:
        if source_id == target_id:
            raise StoreError("a case cannot be merged into itself")
        with self._write() as conn:
            source = self._open_case_row(conn, source_id)
            self._open_case_row(conn, target_id)
            moved = {}
            for table in ("case_alerts", "evidence", "case_notes", "case_tasks"):
                moved[table] = conn.execute(
                    f"UPDATE {table} SET case_id = ? WHERE case_id = ?", (target_id, source_id)
                ).rowcount
            conn.execute("UPDATE alerts SET case_id = ? WHERE case_id = ?", (target_id, source_id))
            conn.execute(
                "UPDATE cases SET status = 'merged', merged_into = ?, updated_at = ? WHERE id = ?",
                (target_id, ts(at), source_id),
            )
            summary = (
                f"{moved['case_alerts']} alerts, {moved['evidence']} evidence records, "
                f"{moved['case_notes']} notes, {moved['case_tasks']} tasks"
            )
            why = f": {reason}" if reason else ""
            add_case_event(conn, source_id, at, actor, "merged_into", f"merged into case {target_id} ({summary}){why}")
            add_case_event(
                conn,
                target_id,
                at,
                actor,
                "merged_from",
                f"case {source_id} “{source['title']}” merged in ({summary}){why}",
            )
            _touch(conn, target_id, at)
        target = self.get_case(target_id)
        assert target is not None
        return target

    def split_case(
        self, case_id: int, alert_ids: Sequence[int], title: str, *, actor: str, at: datetime, reason: str = ""
    ) -> Case:
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            raise StoreError("choose at least one alert to split out")
        with self._write() as conn:
            self._open_case_row(conn, case_id)
            marks = ", ".join("?" for _ in ids)
            inside = {
                r[0]
                for r in conn.execute(
                    f"SELECT alert_id FROM case_alerts WHERE case_id = ? AND alert_id IN ({marks})", (case_id, *ids)
                )
            }
            missing = [i for i in ids if i not in inside]
            if missing:
                raise StoreError(f"case {case_id} does not hold alert(s) {', '.join(map(str, missing))}")
            total = conn.execute("SELECT COUNT(*) FROM case_alerts WHERE case_id = ?", (case_id,)).fetchone()[0]
            if total == len(ids):
                raise StoreError("a split must leave at least one alert in the case")
            new_id = int(
                conn.execute(
                    "INSERT INTO cases (title, status, owner, created_by, created_at, updated_at)"
                    " VALUES (?, 'open', ?, ?, ?, ?) RETURNING id",
                    (title, actor, actor, ts(at), ts(at)),
                ).fetchone()[0]
            )
            marks = ", ".join("?" for _ in ids)
            conn.execute(f"UPDATE case_alerts SET case_id = ? WHERE alert_id IN ({marks})", (new_id, *ids))
            conn.execute(f"UPDATE alerts SET case_id = ? WHERE id IN ({marks})", (new_id, *ids))
            n_evidence = conn.execute(
                f"UPDATE evidence SET case_id = ? WHERE case_id = ? AND alert_id IN ({marks})", (new_id, case_id, *ids)
            ).rowcount
            listed = ", ".join(map(str, ids))
            why = f": {reason}" if reason else ""
            add_case_event(conn, new_id, at, actor, "opened", f"{title} (owner {actor})")
            add_case_event(
                conn,
                new_id,
                at,
                actor,
                "split_from",
                f"split from case {case_id}: alerts {listed}, {n_evidence} evidence records{why}",
            )
            add_case_event(conn, case_id, at, actor, "split_to", f"alerts {listed} moved to new case {new_id}{why}")
            _touch(conn, case_id, at)
        case = self.get_case(new_id)
        assert case is not None
        return case

    # ------------------------------------------------------------------ exports
    def record_export(self, export: EvidenceExport) -> EvidenceExport:
        with self._write() as conn:
            new_id = int(
                conn.execute(
                    "INSERT INTO evidence_exports (case_id, exported_at, exported_by, manifest_sha256, filename)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (
                        export.case_id,
                        ts(export.exported_at),
                        export.exported_by,
                        export.manifest_sha256,
                        export.filename,
                    ),
                ).fetchone()[0]
            )
            add_case_event(
                conn,
                export.case_id,
                export.exported_at,
                export.exported_by,
                "exported",
                f"{export.filename}, manifest SHA-256 {export.manifest_sha256}",
            )
        return EvidenceExport(
            id=new_id,
            case_id=export.case_id,
            exported_at=export.exported_at,
            exported_by=export.exported_by,
            manifest_sha256=export.manifest_sha256,
            filename=export.filename,
        )

    def find_exports(self, manifest_sha256: str) -> list[EvidenceExport]:
        rows = self._conn.execute(
            "SELECT * FROM evidence_exports WHERE manifest_sha256 = ? ORDER BY id", (manifest_sha256,)
        )
        return [
            EvidenceExport(
                id=r["id"],
                case_id=r["case_id"],
                exported_at=must_ts(r["exported_at"]),
                exported_by=r["exported_by"],
                manifest_sha256=r["manifest_sha256"],
                filename=r["filename"],
            )
            for r in rows
        ]


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _case_from_row(row: Row) -> Case:
    return Case(
        id=row["id"],
        title=row["title"],
        status=CaseStatus(row["status"]),
        owner=row["owner"],
        created_by=row["created_by"],
        created_at=must_ts(row["created_at"]),
        updated_at=must_ts(row["updated_at"]),
        merged_into=row["merged_into"],
    )


def _evidence_from_row(row: Row) -> Evidence:
    return Evidence(
        id=row["id"],
        case_id=row["case_id"],
        alert_id=row["alert_id"],
        platform=row["platform"],
        native_id=row["native_id"],
        version=row["version"],
        source_url=row["source_url"],
        raw=bytes(row["raw"]),
        sha256=row["sha256"],
        captured_at=must_ts(row["captured_at"]),
        preserved_at=must_ts(row["preserved_at"]),
        preserved_by=row["preserved_by"],
        text=row["text"],
        author=row["author"],
        lang=row["lang"],
        post_created_at=parse_ts(row["post_created_at"]),
    )


def _task_from_row(row: Row) -> CaseTask:
    return CaseTask(
        id=row["id"],
        case_id=row["case_id"],
        title=row["title"],
        assignee=row["assignee"],
        due_at=parse_ts(row["due_at"]),
        status=TaskStatus(row["status"]),
        created_by=row["created_by"],
        created_at=must_ts(row["created_at"]),
        done_at=parse_ts(row["done_at"]),
        done_by=row["done_by"],
    )


__all__ = ["SQLCasesMixin", "add_case_event", "link_alerts"]
