""":class:`~watchfloor.store.governance_repo.GovernanceRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0004_governance.sql)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from watchfloor.governance.merkle import Frontier, leaf_hash
from watchfloor.model import (
    AlertStatus,
    Authorization,
    AuthorizationKind,
    AuthorizationStatus,
    Checkpoint,
    SealedIdentity,
    Watch,
    utcnow,
)
from watchfloor.store.base import StoreError
from watchfloor.store.dialect import INTEGRITY_ERRORS, Connection, Dialect, count_if
from watchfloor.store.governance_repo import AlertTally, AuditRow
from watchfloor.store.rows import must_ts, parse_ts, ts

IDENTITY_COLUMNS = ("pseudonym", "epoch", "nonce", "ciphertext", "first_seen")


def identity_row(identity: SealedIdentity) -> tuple[object, ...]:
    return (identity.pseudonym, identity.epoch, identity.nonce, identity.ciphertext, ts(identity.first_seen))


# the transparency report's SLA figures of alerts (``:now``: the report's time)
_OVERDUE = count_if("status = 'open' AND due_at <= :now")
_MET = count_if("triaged_at IS NOT NULL AND triaged_at <= due_at")
_MISSED = count_if(
    "(triaged_at IS NOT NULL AND triaged_at > due_at) OR (triaged_at IS NULL AND status = 'open' AND due_at <= :now)"
)
# "no limit" as a number both databases take (SQLite's -1 is not PostgreSQL's)
_NO_LIMIT = 2**62


class SQLGovernanceMixin:
    """Approvals, identities, authorizations, audit log, retention and report figures."""

    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

        def _bump_watches_revision(self, conn: Connection) -> int: ...

        def get_watch(self, watch_id: int) -> Watch | None: ...

    # ------------------------------------------------------------------ watch approval
    def save_watch_approval(self, watch: Watch) -> Watch:
        if watch.id is None:
            raise StoreError("the watch has no id")
        with self._write() as conn:
            revision = self._bump_watches_revision(conn)  # first: the order of revisions (SQLStore)
            cur = conn.execute(
                """UPDATE watches SET status = ?, created_by = ?, approver = ?, approved_at = ?, reviewed_by = ?,
                       hold = ?, authorization_id = ?, expires_at = ?, updated_at = ?, revision = ?
                   WHERE id = ?""",
                (
                    watch.status.value,
                    watch.created_by,
                    watch.approver,
                    ts(watch.approved_at),
                    watch.reviewed_by,
                    watch.hold,
                    watch.authorization_id,
                    ts(watch.expires_at),
                    ts(utcnow()),
                    revision,
                    watch.id,
                ),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no watch with id {watch.id}")
        stored = self.get_watch(watch.id)
        assert stored is not None
        return stored

    # ------------------------------------------------------------------ sealed identities
    def _insert_identities(self, conn: Connection, identities: Sequence[SealedIdentity]) -> int:
        """Inside a caller's transaction (the ingest batch's, so a post never lacks its identity)."""
        if not identities:
            return 0
        return conn.executemany(
            f"INSERT INTO identities ({', '.join(IDENTITY_COLUMNS)}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [identity_row(i) for i in identities],
        ).rowcount

    def add_identities(self, identities: Sequence[SealedIdentity]) -> int:
        with self._write() as conn:
            return self._insert_identities(conn, identities)

    def identities_of(self, pseudonym: str) -> list[SealedIdentity]:
        rows = self._conn.execute("SELECT * FROM identities WHERE pseudonym = ? ORDER BY epoch", (pseudonym,))
        return [
            SealedIdentity(
                pseudonym=r["pseudonym"],
                epoch=r["epoch"],
                nonce=bytes(r["nonce"]),
                ciphertext=bytes(r["ciphertext"]),
                first_seen=must_ts(r["first_seen"]),
            )
            for r in rows
        ]

    def count_identities(self) -> dict[int, int]:
        rows = self._conn.execute("SELECT epoch, COUNT(*) FROM identities GROUP BY epoch ORDER BY epoch")
        return {int(r[0]): int(r[1]) for r in rows}

    def delete_identities_of_epoch(self, epoch: int) -> int:
        with self._write() as conn:
            return conn.execute("DELETE FROM identities WHERE epoch = ?", (epoch,)).rowcount

    # ------------------------------------------------------------------ authorizations
    def add_authorization(self, authorization: Authorization) -> Authorization:
        a = authorization
        with self._write() as conn:
            new_id = conn.execute(
                """INSERT INTO authorizations (kind, requester, purpose, pseudonyms, case_id, legal_basis, legal_ref,
                       reason, status, requested_at, expires_at, max_reveals)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (
                    a.kind.value,
                    a.requester,
                    a.purpose,
                    json.dumps(list(a.pseudonyms)),
                    a.case_id,
                    a.legal_basis,
                    a.legal_ref,
                    a.reason,
                    a.status.value,
                    ts(a.requested_at),
                    ts(a.expires_at),
                    a.max_reveals,
                ),
            ).fetchone()[0]
        stored = self.get_authorization(int(new_id))
        assert stored is not None
        return stored

    def get_authorization(self, authorization_id: int) -> Authorization | None:
        row = self._conn.execute("SELECT * FROM authorizations WHERE id = ?", (authorization_id,)).fetchone()
        return None if row is None else _authorization_from_row(row)

    def list_authorizations(
        self,
        *,
        kind: AuthorizationKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Authorization]:
        sql = "SELECT * FROM authorizations WHERE 1 = 1"
        args: list[object] = []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind.value)
        if since is not None:
            sql += " AND requested_at >= ?"
            args.append(ts(since))
        if until is not None:
            sql += " AND requested_at < ?"
            args.append(ts(until))
        return [_authorization_from_row(r) for r in self._conn.execute(sql + " ORDER BY id DESC", args)]

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
        try:
            with self._write() as conn:
                cur = conn.execute(
                    """UPDATE authorizations SET status = ?, approver = ?, decided_at = ?, decision_note = ?,
                           expires_at = COALESCE(?, expires_at), max_reveals = COALESCE(?, max_reveals)
                       WHERE id = ? AND status = 'requested'""",
                    (status.value, approver, ts(decided_at), note, ts(expires_at), max_reveals, authorization_id),
                )
                if cur.rowcount == 0:
                    raise StoreError(f"authorization {authorization_id} does not exist or was decided already")
        except INTEGRITY_ERRORS as exc:
            raise StoreError(f"authorization {authorization_id}: {exc}") from exc
        stored = self.get_authorization(authorization_id)
        assert stored is not None
        return stored

    def count_reveal(self, authorization_id: int, *, now: datetime) -> Authorization:
        with self._write() as conn:
            cur = conn.execute(
                """UPDATE authorizations SET reveals = reveals + 1
                   WHERE id = ? AND status = 'approved' AND expires_at > ? AND reveals < max_reveals""",
                (authorization_id, ts(now)),
            )
            if cur.rowcount == 0:
                raise StoreError(f"authorization {authorization_id} is not in force or has no reveals left")
        stored = self.get_authorization(authorization_id)
        assert stored is not None
        return stored

    # ------------------------------------------------------------------ audit log
    def append_audit(self, at: str, action: str, make_entry: Callable[[int, bytes], bytes]) -> AuditRow:
        with self._write() as conn:
            # The head is read and rewritten in one transaction, with its row locked, so appends
            # from any number of processes take leaf indexes one after another.
            head = conn.execute(
                "SELECT size, root, frontier FROM audit_head WHERE id = 1" + self.dialect.lock_rows
            ).fetchone()
            size, root = int(head["size"]), bytes(head["root"])
            frontier = Frontier.from_hex(size, json.loads(head["frontier"]))
            entry = make_entry(size, root)
            leaf = leaf_hash(entry)
            frontier.append(leaf)
            conn.execute(
                "INSERT INTO audit_log (seq, at, action, entry, leaf_hash) VALUES (?, ?, ?, ?, ?)",
                (size, at, action, entry, leaf),
            )
            conn.execute(
                "UPDATE audit_head SET size = ?, root = ?, frontier = ? WHERE id = 1",
                (frontier.size, frontier.root(), json.dumps(frontier.to_hex())),
            )
        return AuditRow(seq=size, entry=entry, leaf_hash=leaf)

    def audit_head(self) -> tuple[int, bytes]:
        row = self._conn.execute("SELECT size, root FROM audit_head WHERE id = 1").fetchone()
        return int(row["size"]), bytes(row["root"])

    def audit_rows(self, start: int = 0, end: int | None = None) -> Iterator[AuditRow]:
        # seq is the rowid: storage order. Verification compares each entry's own seq with
        # its position, so a deleted, reordered or inserted entry shows.
        limit = _NO_LIMIT if end is None else max(0, end - start)
        cursor = self._conn.execute(
            "SELECT seq, entry, leaf_hash FROM audit_log ORDER BY seq LIMIT ? OFFSET ?", (limit, start)
        )
        for row in cursor:
            yield AuditRow(seq=int(row[0]), entry=bytes(row[1]), leaf_hash=bytes(row[2]))

    def audit_rows_by_action(
        self, actions: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditRow]:
        if not actions:
            return []
        sql = f"SELECT seq, entry, leaf_hash FROM audit_log WHERE action IN ({', '.join('?' for _ in actions)})"
        args: list[object] = list(actions)
        if since is not None:
            sql += " AND at >= ?"
            args.append(ts(since))
        if until is not None:
            sql += " AND at < ?"
            args.append(ts(until))
        return [AuditRow(int(r[0]), bytes(r[1]), bytes(r[2])) for r in self._conn.execute(sql + " ORDER BY seq", args)]

    def audit_count(self, *, since: datetime | None = None, until: datetime | None = None) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM audit_log WHERE at >= ? AND at < ?",
            (ts(since) if since else "", ts(until) if until else "~"),
        ).fetchone()
        return int(row[0])

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO audit_checkpoints (tree_size, root, created_at, note) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (checkpoint.tree_size, checkpoint.root_hash, ts(checkpoint.created_at), checkpoint.note),
            )

    def list_checkpoints(self) -> list[Checkpoint]:
        rows = self._conn.execute("SELECT * FROM audit_checkpoints ORDER BY tree_size")
        return [
            Checkpoint(
                tree_size=r["tree_size"],
                root_hash=bytes(r["root"]),
                created_at=must_ts(r["created_at"]),
                note=r["note"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ retention
    def _purge(self, table: str, where: str, args: Sequence[object], *, dry_run: bool) -> int:
        if dry_run:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0])
        with self._write() as conn:
            return conn.execute(f"DELETE FROM {table} WHERE {where}", args).rowcount

    def _delete_alerts(self, conn: Connection, where: str, args: Sequence[object]) -> int:
        """Delete alerts and their triage history (which refers to them) in ``conn``'s transaction."""
        ids = [r[0] for r in conn.execute(f"SELECT id FROM alerts WHERE {where}", args)]
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            marks = ", ".join("?" for _ in chunk)
            # the counts outlive the alerts (the transparency report of past periods)
            conn.execute(
                "INSERT INTO retained_alert_counts (day, watch_id, status, alerts, sla_met, sla_missed)"
                " SELECT substr(created_at, 1, 10), watch_id, status, COUNT(*),"
                f"   {count_if('triaged_at IS NOT NULL AND triaged_at <= due_at')},"
                f"   {count_if('triaged_at IS NULL OR triaged_at > due_at')}"
                f" FROM alerts WHERE id IN ({marks}) GROUP BY 1, 2, 3"
                " ON CONFLICT (day, watch_id, status) DO UPDATE SET"
                "   alerts = retained_alert_counts.alerts + excluded.alerts,"
                "   sla_met = retained_alert_counts.sla_met + excluded.sla_met,"
                "   sla_missed = retained_alert_counts.sla_missed + excluded.sla_missed",
                chunk,
            )
            for table in ("triage_events", "sla_breaches", "case_alerts"):
                conn.execute(f"DELETE FROM {table} WHERE alert_id IN ({marks})", chunk)
            conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", chunk)
        return len(ids)

    def purge_decided_alerts(self, status: AlertStatus, before: datetime, *, dry_run: bool) -> int:
        if status not in (AlertStatus.dismissed, AlertStatus.false_positive):
            raise StoreError("only dismissed and false-positive alerts are purged by age")
        # Age counts from the disposition (from the alert itself when none was recorded);
        # an alert in a case is held by the case.
        where = "status = ? AND COALESCE(disposed_at, created_at) < ? AND case_id IS NULL"
        args = (status.value, ts(before))
        if dry_run:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM alerts WHERE {where}", args).fetchone()[0])
        with self._write() as conn:
            return self._delete_alerts(conn, where, args)

    def purge_closed_cases(self, before: datetime, *, dry_run: bool) -> dict[str, int]:
        where = "status IN ('closed', 'merged') AND updated_at < ?"
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT id FROM cases WHERE {where}", (ts(before),))]
            counts = {"cases": len(ids), "alerts": 0, "evidence": 0}
            for case_id in ids:
                counts["evidence"] += conn.execute(
                    "SELECT COUNT(*) FROM evidence WHERE case_id = ?", (case_id,)
                ).fetchone()[0]
                counts["alerts"] += conn.execute(
                    "SELECT COUNT(*) FROM alerts WHERE case_id = ? OR id IN"
                    " (SELECT alert_id FROM case_alerts WHERE case_id = ?)",
                    (case_id, case_id),
                ).fetchone()[0]
                if dry_run:
                    continue
                in_case = "case_id = ? OR id IN (SELECT alert_id FROM case_alerts WHERE case_id = ?)"
                self._delete_alerts(conn, in_case, (case_id, case_id))
                for table in ("evidence", "case_notes", "case_tasks", "case_events", "evidence_exports"):
                    conn.execute(f"DELETE FROM {table} WHERE case_id = ?", (case_id,))
                conn.execute("UPDATE cases SET merged_into = NULL WHERE merged_into = ?", (case_id,))
                conn.execute("DELETE FROM cases WHERE id = ?", (case_id,))
        return counts

    def purge_notifications(self, before: datetime, *, dry_run: bool) -> int:
        outbox = "(delivered_at IS NOT NULL OR failed_at IS NOT NULL) AND created_at < ?"
        if dry_run:
            return int(
                self._conn.execute(
                    f"SELECT (SELECT COUNT(*) FROM notification_outbox WHERE {outbox})"
                    " + (SELECT COUNT(*) FROM inbox WHERE created_at < ?)",
                    (ts(before), ts(before)),
                ).fetchone()[0]
            )
        with self._write() as conn:
            n = conn.execute(f"DELETE FROM notification_outbox WHERE {outbox}", (ts(before),)).rowcount
            return n + conn.execute("DELETE FROM inbox WHERE created_at < ?", (ts(before),)).rowcount

    def _purge_posts(self, where: str, *, dry_run: bool) -> int:
        if dry_run:
            return self._purge("posts", where, (), dry_run=True)
        with self._write() as conn:
            n = conn.execute(f"DELETE FROM posts WHERE {where}").rowcount
            # the signals of a post follow it (0005_signals.sql)
            conn.execute(
                "DELETE FROM post_signals WHERE NOT EXISTS (SELECT 1 FROM posts p"
                " WHERE p.platform = post_signals.platform AND p.native_id = post_signals.native_id"
                " AND p.version = post_signals.version)"
            )
            return n

    def purge_unreferenced_posts(self, *, dry_run: bool) -> int:
        where = (
            "NOT EXISTS (SELECT 1 FROM alerts a WHERE a.platform = posts.platform"
            " AND a.native_id = posts.native_id AND a.version = posts.version)"
        )
        return self._purge_posts(where, dry_run=dry_run)

    def purge_tombstoned_posts(self, *, dry_run: bool) -> int:
        where = (
            "EXISTS (SELECT 1 FROM tombstones t WHERE t.platform = posts.platform AND t.native_id = posts.native_id)"
        )
        return self._purge_posts(where, dry_run=dry_run)

    def purge_dead_letters(self, before: datetime, *, dry_run: bool) -> int:
        return self._purge("dead_letters", "received_at < ?", (ts(before),), dry_run=dry_run)

    def purge_orphan_identities(self, now: datetime, *, dry_run: bool) -> int:
        in_scope = self.dialect.json_texts("a.pseudonyms", "j")  # the pseudonyms an authorization names
        where = (
            "pseudonym NOT IN (SELECT author FROM posts)"
            f" AND pseudonym NOT IN (SELECT j.value FROM authorizations a, {in_scope}"
            "   WHERE a.status IN ('requested', 'approved') AND a.expires_at > ?)"
        )
        return self._purge("identities", where, (ts(now),), dry_run=dry_run)

    # ------------------------------------------------------------------ report figures
    def alert_tallies(self, since: datetime, until: datetime, now: datetime) -> list[AlertTally]:
        live = self._conn.execute(
            f"""SELECT watch_id, status, COUNT(*) AS n, {_OVERDUE} AS overdue, {_MET} AS met, {_MISSED} AS missed
               FROM alerts WHERE created_at >= :since AND created_at < :until
               GROUP BY watch_id, status""",
            {"now": ts(now), "since": ts(since), "until": ts(until)},
        )
        # alerts retention deleted, counted by the day they were raised
        last_day = (until - timedelta(microseconds=1)).date().isoformat()
        gone = self._conn.execute(
            """SELECT watch_id, status, SUM(alerts) AS n, 0 AS overdue, SUM(sla_met) AS met, SUM(sla_missed) AS missed
               FROM retained_alert_counts WHERE day >= ? AND day <= ? GROUP BY watch_id, status""",
            (since.date().isoformat(), last_day),
        )
        tallies: dict[tuple[int, str], list[int]] = {}
        for r in [*live, *gone]:
            t = tallies.setdefault((int(r["watch_id"]), r["status"]), [0, 0, 0, 0])
            for i, key in enumerate(("n", "overdue", "met", "missed")):
                t[i] += int(r[key])
        return [
            AlertTally(watch_id, AlertStatus(status), count=n, overdue=overdue, sla_met=met, sla_missed=missed)
            for (watch_id, status), (n, overdue, met, missed) in sorted(tallies.items())
        ]


def _authorization_from_row(row: Any) -> Authorization:
    return Authorization(
        id=row["id"],
        kind=AuthorizationKind(row["kind"]),
        requester=row["requester"],
        purpose=row["purpose"],
        pseudonyms=tuple(json.loads(row["pseudonyms"])),
        case_id=row["case_id"],
        legal_basis=row["legal_basis"],
        legal_ref=row["legal_ref"],
        reason=row["reason"],
        status=AuthorizationStatus(row["status"]),
        approver=row["approver"],
        decided_at=parse_ts(row["decided_at"]),
        decision_note=row["decision_note"],
        requested_at=must_ts(row["requested_at"]),
        expires_at=must_ts(row["expires_at"]),
        max_reveals=row["max_reveals"],
        reveals=row["reveals"],
    )
