"""The store's part of web accountability (0006_web_accountability.sql) on both backends:
second-factor steps that are never accepted twice, API tokens, and the auditor's queries of
the log (served by indexes, so the log's size does not matter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.governance.audit import AuditLog, decode_entry
from watchfloor.model import Role, User
from watchfloor.store import Store, StoreError
from watchfloor.store.web_accounts_repo import ApiToken, AuditQuery, TotpEnrolment

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    any_store.add_user(User("ana", Role.analyst, "hash"))
    return any_store


def query_plan(store: Store, sql: str, args: tuple[object, ...]) -> str:
    """The database's plan of ``sql``, as one string of index and step names."""
    conn = store._conn  # type: ignore[attr-defined]
    if store.dialect.name == "sqlite":  # type: ignore[attr-defined]
        return " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    conn.execute("SET enable_seqscan = off")  # a handful of rows: tell it that a scan is not cheap
    return " ".join(str(row[0]) for row in conn.execute(f"EXPLAIN {sql}", args))


def test_a_totp_step_is_accepted_once_and_a_confirmed_enrolment_is_kept(store: Store) -> None:
    store.save_totp(TotpEnrolment("ana", b"n" * 12, b"sealed", NOW))
    store.save_totp(TotpEnrolment("ana", b"m" * 12, b"again", NOW))  # an unconfirmed one is replaced
    assert store.get_totp("ana").ciphertext == b"again"  # type: ignore[union-attr]
    assert store.confirm_totp("ana", at=NOW, step=100)
    assert not store.confirm_totp("ana", at=NOW, step=101)  # confirmed already
    with pytest.raises(StoreError):
        store.save_totp(TotpEnrolment("ana", b"x" * 12, b"over", NOW))
    assert not store.use_totp_step("ana", 100)  # the confirming code
    assert store.use_totp_step("ana", 101)
    assert not store.use_totp_step("ana", 101) and not store.use_totp_step("ana", 99)
    assert store.delete_totp("ana") and store.get_totp("ana") is None


def test_api_tokens(store: Store) -> None:
    token = store.add_api_token(ApiToken("ana", "script", "h1", ("read_alerts",), NOW, NOW + timedelta(days=1)))
    assert store.get_api_token_by_hash("h1") == token and token.usable(NOW)
    assert not store.revoke_api_token(token.id or 0, username="someone-else", at=NOW)
    assert store.revoke_api_token(token.id or 0, username="ana", at=NOW)
    assert not store.get_api_token(token.id or 0).usable(NOW)  # type: ignore[union-attr]
    assert [t.name for t in store.list_api_tokens("ana")] == ["script"]


def test_the_auditor_s_queries_of_the_log(store: Store) -> None:
    log = AuditLog(store, clock=lambda: NOW)
    for n in range(6):
        action = f"watch.{'approved' if n % 3 else 'proposed'}"
        log.record(actor="ana" if n % 2 else "sam", action=action, target=f"w:{n}")
    log.record(actor="ana", action="watchlist.read")  # shares a prefix without the dot
    seqs = [r.seq for r in store.audit_page(AuditQuery(actor="ana"))]
    assert seqs == [6, 5, 3, 1]
    assert [r.seq for r in store.audit_page(AuditQuery(actor="ana", before=5, limit=1))] == [3]
    assert [decode_entry(r.entry).action for r in store.audit_page(AuditQuery(action="watch."))] == [
        "watch.approved", "watch.approved", "watch.proposed", "watch.approved", "watch.approved", "watch.proposed",
    ]  # fmt: skip
    assert len(store.audit_page(AuditQuery(action="watch.proposed"))) == 2
    assert store.audit_page(AuditQuery(since=NOW + timedelta(seconds=1))) == []
    assert store.audit_actions() == ["watch.approved", "watch.proposed", "watchlist.read"]
    actor = store.dialect.audit_actor  # type: ignore[attr-defined]
    plan = query_plan(store, f"SELECT seq FROM audit_log WHERE {actor} = ? ORDER BY seq DESC LIMIT 5", ("ana",))
    assert "audit_log_by_actor" in plan
    plan = query_plan(
        store, "SELECT seq FROM audit_log WHERE action = ? AND seq < ? ORDER BY seq DESC LIMIT 5", ("web.read", 100)
    )
    assert "audit_log_by_action_seq" in plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan  # no sort


def test_an_entry_with_a_nul_someone_typed_is_logged_and_found_by_its_actor(store: Store) -> None:
    log = AuditLog(store, clock=lambda: NOW)
    log.record(actor="ana", action="watch.proposed", target="watch:junk\x00name")
    (row,) = store.audit_page(AuditQuery(actor="ana"))
    assert decode_entry(row.entry).target == "watch:junk\x00name"


def test_sessions_of_one_account_end_together(store: Store) -> None:
    from watchfloor.store import Session

    store.add_user(User("sam", Role.supervisor, "hash"))
    for name, user in (("a1", "ana"), ("a2", "ana"), ("s1", "sam")):
        store.add_session(Session(name, user, NOW, NOW + timedelta(hours=12), "c", NOW + timedelta(minutes=30)))
    store.touch_session("a1", NOW + timedelta(minutes=45))
    store.touch_session("a1", NOW + timedelta(minutes=40))  # never backwards
    assert store.get_session("a1").idle_expires_at == NOW + timedelta(minutes=45)  # type: ignore[union-attr]
    assert store.delete_user_sessions("ana") == 2
    assert store.get_session("s1") is not None
