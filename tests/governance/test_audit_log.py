"""The audit log: canonical entries, RFC 9162 tree head, signed checkpoints, and
`verify` finding AND locating every kind of tampering: a changed byte, a deleted,
reordered or inserted entry, a truncated tail, and a history forked from a witnessed
checkpoint. Tampering goes through a second raw connection to the database (SQLite or
PostgreSQL), as an attacker's would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from watchfloor.governance import merkle
from watchfloor.governance.audit import (
    AuditError,
    CheckpointError,
    decode_entry,
    parse_checkpoint,
    verify_log,
)
from watchfloor.governance.service import Governance
from watchfloor.model import Checkpoint
from watchfloor.store.dialect import INTEGRITY_ERRORS

CLI = [sys.executable, "-m", "watchfloor"]
ENTRIES = 12


def fill(gov: Governance, n: int = ENTRIES, *, start: int = 0, actor: str = "ana") -> None:
    for i in range(start, start + n):
        gov.audit.record(
            actor=actor,
            action="alert.read",
            target=f"alert:{i}",
            purpose="public-safety",
            case_id=None,
            details={"n": i},
        )


TRIGGERS = {
    "audit_log_is_append_only_update": "audit_log",
    "audit_log_is_append_only_delete": "audit_log",
    "audit_checkpoints_are_kept": "audit_checkpoints",
}


@pytest.fixture
def attacker(raw_db):
    """The attacker's connection: the append-only triggers dropped."""
    for trigger, table in TRIGGERS.items():
        on = "" if isinstance(raw_db, sqlite3.Connection) else f" ON {table}"
        raw_db.execute(f"DROP TRIGGER IF EXISTS {trigger}{on}")
    return raw_db


def entry_at(conn, seq: int) -> bytes:
    return bytes(conn.execute("SELECT entry FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])


def kinds(report) -> list[tuple[str, int | None, int | None]]:
    return [(p.kind, p.first, p.last) for p in report.problems]


def check(gov: Governance, witnessed: list[Checkpoint] | None = None):
    return verify_log(gov.store, gov.keyring.verify_key(), witnessed=witnessed or [])


# --------------------------------------------------------------------------- entries


def test_entries_are_canonical_json_with_their_place_in_the_tree(gov: Governance, clock) -> None:
    first = gov.audit.record(actor="ana", action="alert.read", target="alert:1", purpose="public-safety", case_id=7)
    second = gov.audit.record(actor="sam", action="watch.approved", target="watch:3", details={"k": ["a", "b"]})
    assert (first.seq, second.seq) == (0, 1)
    assert first.prev_root == merkle.EMPTY_ROOT.hex() and first.case_id == "7" and first.at == clock.now
    rows = list(gov.store.audit_rows())
    assert second.prev_root == merkle.leaf_hash(rows[0].entry).hex()
    data = rows[0].entry
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert decode_entry(data) == first
    size, root = gov.store.audit_head()
    assert size == 2 and root == merkle.root_of([r.leaf_hash for r in rows])


@pytest.mark.parametrize(
    "details",
    [{"handle": "someone.bsky.social"}, {"text": "a post"}, {"score": 0.5}, {"nested": {"a": 1}}],
)
def test_personal_data_and_non_canonical_values_are_refused(gov: Governance, details) -> None:
    with pytest.raises(AuditError):
        gov.audit.record(actor="ana", action="x", details=details)
    assert gov.store.audit_head()[0] == 0  # nothing half-written


def test_the_log_is_append_only_for_ordinary_writers(gov: Governance, raw_db) -> None:
    fill(gov, 2)
    gov.audit.checkpoint(gov.keyring.signing_key())
    with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
        raw_db.execute("DELETE FROM audit_log WHERE seq = 0")
    with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
        raw_db.execute("UPDATE audit_log SET action = 'x' WHERE seq = 1")
    with pytest.raises(INTEGRITY_ERRORS, match="kept"):
        raw_db.execute("DELETE FROM audit_checkpoints")
    assert gov.store.audit_head()[0] == 2 and check(gov).ok


def test_checkpoints_are_signed_notes_that_verify_and_detect_edits(gov: Governance) -> None:
    fill(gov, 5)
    cp = gov.audit.checkpoint(gov.keyring.signing_key())
    lines = cp.note.split("\n")
    assert lines[0].startswith("watchfloor/") and lines[1] == "5" and lines[3] == ""
    assert lines[4].startswith("\u2014 " + lines[0] + " ")
    parsed = parse_checkpoint(cp.note, gov.keyring.verify_key())
    assert (parsed.tree_size, parsed.root_hash) == (5, gov.store.audit_head()[1])
    with pytest.raises(CheckpointError, match="altered"):
        parse_checkpoint(cp.note.replace("\n5\n", "\n6\n"), gov.keyring.verify_key())
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(CheckpointError):
        parse_checkpoint(cp.note, Ed25519PrivateKey.generate().public_key())


def test_inclusion_and_consistency_proofs_of_the_log(gov: Governance) -> None:
    fill(gov, 9)
    size, root = gov.store.audit_head()
    leaves = gov.audit.leaves()
    for i in range(size):
        assert merkle.verify_inclusion(i, size, leaves[i], gov.audit.inclusion_proof(i), root)
    old_root = merkle.root_of(leaves[:5])
    assert merkle.verify_consistency(5, size, old_root, root, gov.audit.consistency_proof(5))


# --------------------------------------------------------------------------- verification


def test_an_intact_log_verifies(gov: Governance) -> None:
    fill(gov)
    gov.store.add_checkpoint(gov.audit.checkpoint(gov.keyring.signing_key()))
    fill(gov, 3, start=ENTRIES)
    report = check(gov)
    assert report.ok, report.problems
    assert report.size == ENTRIES + 3 and report.root == gov.store.audit_head()[1]
    assert report.checkpoints_checked == 1


def test_a_changed_byte_is_found_at_its_entry(gov: Governance, attacker) -> None:
    fill(gov)
    conn = attacker
    data = bytearray(entry_at(conn, 5))
    data[data.index(b"alert:5") + 6] = ord("9")  # alert:5 -> alert:9, one byte
    conn.execute("UPDATE audit_log SET entry = ? WHERE seq = 5", (bytes(data),))
    report = check(gov)
    assert kinds(report) == [("changed", 5, 5)]
    assert "position 5" in report.problems[0].message


def test_a_changed_byte_with_its_hash_recomputed_is_found_by_the_next_entry(gov: Governance, attacker) -> None:
    fill(gov)
    conn = attacker
    data = entry_at(conn, 5).replace(b'"actor":"ana"', b'"actor":"eve"')
    conn.execute("UPDATE audit_log SET entry = ?, leaf_hash = ? WHERE seq = 5", (data, merkle.leaf_hash(data)))
    report = check(gov)
    assert kinds(report) == [("changed", 5, 5)]
    assert "position 6 does not commit" in report.problems[0].message


def test_a_rewritten_newest_entry_is_found_by_the_head(gov: Governance, attacker) -> None:
    fill(gov)
    conn = attacker
    data = entry_at(conn, ENTRIES - 1).replace(b'"actor":"ana"', b'"actor":"eve"')
    conn.execute(
        "UPDATE audit_log SET entry = ?, leaf_hash = ? WHERE seq = ?", (data, merkle.leaf_hash(data), ENTRIES - 1)
    )
    assert kinds(check(gov)) == [("changed", ENTRIES - 1, ENTRIES - 1)]


def test_a_deleted_entry_is_named(gov: Governance, attacker) -> None:
    fill(gov)
    attacker.execute("DELETE FROM audit_log WHERE seq = 5")
    report = check(gov)
    assert kinds(report) == [("missing", 5, 5)]
    assert "entry 5 was deleted" in report.problems[0].message


def test_reordered_entries_are_named(gov: Governance, attacker) -> None:
    fill(gov)
    conn = attacker
    a, b = conn.execute("SELECT entry, leaf_hash FROM audit_log WHERE seq IN (3, 4) ORDER BY seq").fetchall()
    conn.execute("UPDATE audit_log SET entry = ?, leaf_hash = ? WHERE seq = 3", b)
    conn.execute("UPDATE audit_log SET entry = ?, leaf_hash = ? WHERE seq = 4", a)
    report = check(gov)
    assert kinds(report) == [("reordered", 3, 3)]
    assert "entry 3 is stored after entry 4" in report.problems[0].message


def test_an_inserted_entry_is_found_even_when_it_commits_to_the_history_before_it(gov: Governance, attacker) -> None:
    fill(gov)
    conn = attacker
    # make room at position 5, then forge an entry that claims seq 5 and the right prev root
    conn.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
    conn.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000")
    prev = merkle.root_of([merkle.leaf_hash(entry_at(conn, i)) for i in range(5)])
    forged = json.loads(entry_at(conn, 6))
    forged.update({"actor": "eve", "target": "alert:999", "prev": prev.hex()})
    data = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    conn.execute(
        "INSERT INTO audit_log (seq, at, action, entry, leaf_hash) VALUES (5, ?, ?, ?, ?)",
        (forged["at"], forged["action"], data, merkle.leaf_hash(data)),
    )
    report = check(gov)
    assert kinds(report) == [("inserted", 5, 5)]
    assert "position 5 repeats seq 5" in report.problems[0].message


def test_a_truncated_tail_is_found_by_the_head(gov: Governance, attacker) -> None:
    fill(gov)
    attacker.execute("DELETE FROM audit_log WHERE seq >= 9")
    assert kinds(check(gov)) == [("truncated", 9, ENTRIES - 1)]


def test_a_truncated_tail_with_the_head_rolled_back_is_found_by_a_checkpoint(gov: Governance, attacker) -> None:
    fill(gov)
    gov.audit.checkpoint(gov.keyring.signing_key())  # the scheduler does this every 10 minutes
    witnessed = parse_checkpoint(gov.store.list_checkpoints()[-1].note, gov.keyring.verify_key())
    conn = attacker
    conn.execute("DELETE FROM audit_log WHERE seq >= 9")
    frontier = merkle.Frontier()
    for (leaf,) in conn.execute("SELECT leaf_hash FROM audit_log ORDER BY seq"):
        frontier.append(bytes(leaf))
    conn.execute(
        "UPDATE audit_head SET size = ?, root = ?, frontier = ?",
        (frontier.size, frontier.root(), json.dumps(frontier.to_hex())),
    )
    report = check(gov)
    assert kinds(report) == [("truncated", 9, ENTRIES - 1)]
    conn.execute("DELETE FROM audit_checkpoints")  # the attacker removes the stored checkpoints too
    assert check(gov).ok  # ... and only a witness can tell now
    assert kinds(check(gov, [witnessed])) == [("truncated", 9, ENTRIES - 1)]


def rewrite_history_from(gov: Governance, attacker, first: int) -> None:
    """What an attacker with the host (and its signing key) can do: rewrite every entry from
    ``first`` on, consistently (seqs, prev roots, hashes, head), and re-sign checkpoints."""
    conn = attacker
    n = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    conn.execute("DELETE FROM audit_log WHERE seq >= ?", (first,))
    conn.execute("DELETE FROM audit_checkpoints")
    frontier = merkle.Frontier()
    for (leaf,) in conn.execute("SELECT leaf_hash FROM audit_log ORDER BY seq"):
        frontier.append(bytes(leaf))
    conn.execute(
        "UPDATE audit_head SET size = ?, root = ?, frontier = ?",
        (frontier.size, frontier.root(), json.dumps(frontier.to_hex())),
    )
    fill(gov, n - first, start=100, actor="eve")
    gov.audit.checkpoint(gov.keyring.signing_key())


def test_a_history_forked_from_a_witnessed_checkpoint_is_found_and_bounded(gov: Governance, attacker) -> None:
    fill(gov, 4)
    at_4 = gov.audit.checkpoint(gov.keyring.signing_key())
    fill(gov, 6, start=4)
    at_10 = gov.audit.checkpoint(gov.keyring.signing_key())
    fill(gov, 2, start=10)
    witness = [parse_checkpoint(c.note, gov.keyring.verify_key()) for c in (at_4, at_10)]
    rewrite_history_from(gov, attacker, 6)
    assert check(gov).ok  # consistent and re-signed: nothing on the host can tell ...
    report = check(gov, witness)  # ... but the witness can
    assert not report.ok
    assert ("forked", 4, 9) in kinds(report)
    fork = next(p for p in report.problems if p.kind == "forked" and p.first == 4)
    assert "first 10 entries do not hash to the witnessed checkpoint" in fork.message


def test_audit_verify_on_the_command_line_exits_non_zero_and_says_where(
    gov: Governance, home: Path, tmp_path: Path, attacker
) -> None:
    fill(gov, 6)
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "WATCHFLOOR_DB": gov.store.url, "COLUMNS": "200"}
    env["NO_COLOR"] = "1"
    witness = tmp_path / "witness.txt"
    ok = subprocess.run([*CLI, "audit", "checkpoint", "--out", str(witness)], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fill(gov, 4, start=6)
    good = subprocess.run(
        [*CLI, "audit", "verify", "--checkpoint", str(witness)], env=env, capture_output=True, text=True
    )
    assert good.returncode == 0 and "OK" in good.stdout, good.stderr
    attacker.execute("DELETE FROM audit_log WHERE seq = 3")
    bad = subprocess.run(
        [*CLI, "audit", "verify", "--checkpoint", str(witness), "--json"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    result = json.loads(bad.stdout)
    assert not result["ok"]
    assert {k: result["problems"][0][k] for k in ("kind", "where", "first", "last")} == {
        "kind": "missing",
        "where": "entry 3",
        "first": 3,
        "last": 3,
    }


def test_every_verifier_key_parses_back_even_with_a_plus_in_its_base64() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from watchfloor.governance.audit import log_origin
    from watchfloor.governance.keys import parse_verifier_key, verifier_key_string

    with_plus = 0
    for _ in range(200):
        public = Ed25519PrivateKey.generate().public_key()
        text = verifier_key_string(log_origin(public), public)
        with_plus += text.count("+") > 2
        name, parsed = parse_verifier_key(text)
        assert name == log_origin(public) and parsed.public_bytes_raw() == public.public_bytes_raw()
    assert with_plus > 0  # about 4 in 10 keys have one
