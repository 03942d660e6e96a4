""":class:`~watchfloor.store.web_accounts_repo.WebAccountsRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0006_web_accountability.sql)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchfloor.store.base import StoreError
from watchfloor.store.dialect import Connection, Dialect
from watchfloor.store.governance_repo import AuditRow
from watchfloor.store.rows import must_ts, parse_ts, ts
from watchfloor.store.web_accounts_repo import ApiToken, AuditQuery, LoginChallenge, TotpEnrolment


class SQLWebAccountsMixin:
    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ sessions
    def touch_session(self, token_hash: str, idle_expires_at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sessions SET idle_expires_at = ? WHERE token_hash = ?"
                " AND (idle_expires_at IS NULL OR idle_expires_at < ?)",
                (ts(idle_expires_at), token_hash, ts(idle_expires_at)),
            )

    def delete_user_sessions(self, username: str) -> int:
        with self._write() as conn:
            conn.execute("DELETE FROM login_challenges WHERE username = ?", (username,))
            return conn.execute("DELETE FROM sessions WHERE username = ?", (username,)).rowcount

    def delete_expired_sessions(self, now: datetime) -> int:
        at = ts(now)
        with self._write() as conn:
            conn.execute("DELETE FROM login_challenges WHERE expires_at <= ?", (at,))
            return conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR (idle_expires_at IS NOT NULL AND idle_expires_at <= ?)",
                (at, at),
            ).rowcount

    # ------------------------------------------------------------------ second factor
    def get_totp(self, username: str) -> TotpEnrolment | None:
        row = self._conn.execute("SELECT * FROM user_totp WHERE username = ?", (username,)).fetchone()
        if row is None:
            return None
        return TotpEnrolment(
            username=row["username"],
            nonce=bytes(row["nonce"]),
            ciphertext=bytes(row["ciphertext"]),
            created_at=must_ts(row["created_at"]),
            confirmed_at=parse_ts(row["confirmed_at"]),
            last_step=int(row["last_step"]),
        )

    def save_totp(self, enrolment: TotpEnrolment) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT confirmed_at FROM user_totp WHERE username = ?", (enrolment.username,)
            ).fetchone()
            if row is not None and row[0] is not None:
                raise StoreError(f"{enrolment.username!r} has a confirmed second factor already")
            conn.execute(
                "INSERT INTO user_totp (username, nonce, ciphertext, created_at, confirmed_at, last_step)"
                " VALUES (?, ?, ?, ?, NULL, 0) ON CONFLICT (username) DO UPDATE SET nonce = excluded.nonce,"
                " ciphertext = excluded.ciphertext, created_at = excluded.created_at, confirmed_at = NULL,"
                " last_step = 0",
                (enrolment.username, enrolment.nonce, enrolment.ciphertext, ts(enrolment.created_at)),
            )

    def confirm_totp(self, username: str, *, at: datetime, step: int) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE user_totp SET confirmed_at = ?, last_step = ? WHERE username = ? AND confirmed_at IS NULL",
                (ts(at), step, username),
            )
            return cur.rowcount == 1

    def use_totp_step(self, username: str, step: int) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE user_totp SET last_step = ? WHERE username = ? AND last_step < ?", (step, username, step)
            )
            return cur.rowcount == 1

    def delete_totp(self, username: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM user_totp WHERE username = ?", (username,)).rowcount == 1

    # ------------------------------------------------------------------ login challenges
    def add_login_challenge(self, challenge: LoginChallenge) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO login_challenges (token_hash, username, created_at, expires_at, failures)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    challenge.token_hash,
                    challenge.username,
                    ts(challenge.created_at),
                    ts(challenge.expires_at),
                    challenge.failures,
                ),
            )

    def get_login_challenge(self, token_hash: str) -> LoginChallenge | None:
        row = self._conn.execute("SELECT * FROM login_challenges WHERE token_hash = ?", (token_hash,)).fetchone()
        if row is None:
            return None
        return LoginChallenge(
            token_hash=row["token_hash"],
            username=row["username"],
            created_at=must_ts(row["created_at"]),
            expires_at=must_ts(row["expires_at"]),
            failures=int(row["failures"]),
        )

    def count_login_challenge_failure(self, token_hash: str) -> int:
        with self._write() as conn:
            row = conn.execute(
                "UPDATE login_challenges SET failures = failures + 1 WHERE token_hash = ? RETURNING failures",
                (token_hash,),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def delete_login_challenge(self, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM login_challenges WHERE token_hash = ?", (token_hash,))

    # ------------------------------------------------------------------ API tokens
    def add_api_token(self, token: ApiToken) -> ApiToken:
        with self._write() as conn:
            new_id = conn.execute(
                "INSERT INTO api_tokens (username, name, token_hash, scopes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    token.username,
                    token.name,
                    token.token_hash,
                    json.dumps(list(token.scopes)),
                    ts(token.created_at),
                    ts(token.expires_at),
                ),
            ).fetchone()[0]
        stored = self.get_api_token(int(new_id))
        assert stored is not None
        return stored

    def get_api_token(self, token_id: int) -> ApiToken | None:
        row = self._conn.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _token_from_row(row)

    def get_api_token_by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._conn.execute("SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
        return None if row is None else _token_from_row(row)

    def list_api_tokens(self, username: str) -> list[ApiToken]:
        rows = self._conn.execute("SELECT * FROM api_tokens WHERE username = ? ORDER BY id DESC", (username,))
        return [_token_from_row(r) for r in rows]

    def revoke_api_token(self, token_id: int, *, username: str, at: datetime) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND username = ? AND revoked_at IS NULL",
                (ts(at), token_id, username),
            )
            return cur.rowcount == 1

    def revoke_user_api_tokens(self, username: str, *, at: datetime) -> int:
        with self._write() as conn:
            return conn.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL", (ts(at), username)
            ).rowcount

    def note_api_token_used(self, token_id: int, at: datetime) -> None:
        with self._write() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (ts(at), token_id))

    # ------------------------------------------------------------------ the auditor's view
    def audit_page(self, query: AuditQuery) -> list[AuditRow]:
        sql = "SELECT seq, entry, leaf_hash FROM audit_log WHERE 1 = 1"
        args: list[object] = []
        if query.before is not None:
            sql += " AND seq < ?"
            args.append(query.before)
        if query.actor:
            sql += f" AND {self.dialect.audit_actor} = ?"  # the index audit_log_by_actor's expression
            args.append(query.actor)
        if query.action:
            if query.action.endswith("."):
                # a prefix as a range, so the (action, at) index serves it: '/' follows '.'
                sql += " AND action >= ? AND action < ?"
                args += [query.action, query.action[:-1] + "/"]
            else:
                sql += " AND action = ?"
                args.append(query.action)
        if query.since is not None:
            sql += " AND at >= ?"
            args.append(ts(query.since))
        if query.until is not None:
            sql += " AND at < ?"
            args.append(ts(query.until))
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(max(0, query.limit))
        return [AuditRow(int(r[0]), bytes(r[1]), bytes(r[2])) for r in self._conn.execute(sql, args)]

    def audit_actions(self) -> list[str]:
        # a skip-scan over the (action, at) index: one index seek per distinct action, not a scan
        rows = self._conn.execute(
            """WITH RECURSIVE seen(action) AS (
                   SELECT MIN(action) FROM audit_log
                   UNION ALL
                   SELECT (SELECT MIN(action) FROM audit_log WHERE action > seen.action) FROM seen
                   WHERE seen.action IS NOT NULL)
               SELECT action FROM seen WHERE action IS NOT NULL"""
        )
        return [r[0] for r in rows]

    def purpose_of_alert(self, alert_id: int) -> str | None:
        row = self._conn.execute(
            "SELECT w.purpose FROM alerts a JOIN watches w ON w.id = a.watch_id WHERE a.id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else str(row[0])


def _token_from_row(row: Any) -> ApiToken:
    return ApiToken(
        id=row["id"],
        username=row["username"],
        name=row["name"],
        token_hash=row["token_hash"],
        scopes=tuple(json.loads(row["scopes"])),
        created_at=must_ts(row["created_at"]),
        expires_at=must_ts(row["expires_at"]),
        last_used_at=parse_ts(row["last_used_at"]),
        revoked_at=parse_ts(row["revoked_at"]),
    )
