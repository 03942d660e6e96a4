"""The tamper-evident audit log: every read, search, export, change, authorization and
disposition is one entry; the entries form an RFC 9162 Merkle tree whose signed tree heads
(checkpoints) can be handed to an outside witness.

One line per action, from anywhere::

    audit.record(actor="ana", action="alert.read", target="alert:42", purpose="public-safety", case_id="7")

An entry is canonical JSON (sorted keys, no spaces, UTF-8; integers, strings, booleans,
null and lists of strings only — no floats, whose text form is not canonical)::

    {"action":"alert.read","actor":"ana","at":"2026-11-25T12:00:00.000000+00:00","case":"7",
     "details":{},"prev":"<hex root of the log before this entry>","purpose":"public-safety",
     "seq":41,"target":"alert:42","v":1}

``seq`` (its position) and ``prev`` (the Merkle root of everything before it) make every
entry commit to the whole history before it, which is what lets :func:`verify_log` say
*where* a log was changed, not only that it was. Entries hold who, when, what, purpose and
case, never clear personal data: targets are ids and pseudonyms; details are counts,
reasons and references. :data:`FORBIDDEN_DETAIL_KEYS` refuses the obvious mistakes.

Checkpoints are c2sp.org/tlog-checkpoint signed notes (Ed25519, c2sp.org/signed-note)::

    watchfloor/1a2b3c4d5e6f7a8b
    1042
    <base64 root hash>

    — watchfloor/1a2b3c4d5e6f7a8b <base64 key id || signature>
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from watchfloor.governance import merkle
from watchfloor.governance.keys import note_key_id
from watchfloor.model import AuditEntry, Checkpoint, utcnow

if TYPE_CHECKING:
    from watchfloor.store import Store

ENTRY_VERSION = 1
FORBIDDEN_DETAIL_KEYS = frozenset(
    {"handle", "account", "did", "username_clear", "identity", "text", "email", "password", "phone", "address"}
)
MAX_TEXT = 2000  # characters of any one string in an entry

DetailValue = str | int | bool | None | list[str]


class AuditError(ValueError):
    """An entry that cannot be written or read."""


# --------------------------------------------------------------------------- entries


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check_text(value: str | None, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise AuditError(f"{what} must be a string of at most {MAX_TEXT} characters")
    return value


def _check_details(details: Mapping[str, object] | None) -> dict[str, DetailValue]:
    checked: dict[str, DetailValue] = {}
    for key, value in (details or {}).items():
        if key.lower() in FORBIDDEN_DETAIL_KEYS:
            raise AuditError(f"audit details must not hold {key!r}: no clear personal data in the audit log")
        if isinstance(value, float):
            raise AuditError(f"audit detail {key!r} is a float: give a whole number or a string")
        if isinstance(value, tuple | list):
            if not all(isinstance(v, str) for v in value):
                raise AuditError(f"audit detail {key!r}: lists hold strings only")
            checked[key] = [_check_text(v, f"detail {key!r}") or "" for v in value]
        elif value is None or isinstance(value, bool | int):
            checked[key] = value
        elif isinstance(value, str):
            checked[key] = _check_text(value, f"detail {key!r}")
        else:
            raise AuditError(f"audit detail {key!r} has type {type(value).__name__}")
    return checked


def encode_entry(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    prev_root: bytes,
    target: str | None = None,
    purpose: str | None = None,
    case_id: str | None = None,
    details: Mapping[str, object] | None = None,
) -> bytes:
    if not actor or not action:
        raise AuditError("an audit entry needs an actor and an action")
    return canonical_json(
        {
            "v": ENTRY_VERSION,
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": _check_text(actor, "actor"),
            "action": _check_text(action, "action"),
            "target": _check_text(target, "target"),
            "purpose": _check_text(purpose, "purpose"),
            "case": _check_text(case_id, "case"),
            "details": _check_details(details),
            "prev": prev_root.hex(),
        }
    )


def decode_entry(data: bytes) -> AuditEntry:
    """The entry in ``data``; AuditError when the bytes are not a well-formed entry."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"not an audit entry: {exc}") from None
    if not isinstance(obj, dict) or obj.get("v") != ENTRY_VERSION:
        raise AuditError("not an audit entry of version 1")
    try:
        entry = AuditEntry(
            seq=int(obj["seq"]),
            at=datetime.fromisoformat(obj["at"]),
            actor=str(obj["actor"]),
            action=str(obj["action"]),
            target=obj.get("target"),
            purpose=obj.get("purpose"),
            case_id=obj.get("case"),
            details=dict(obj.get("details") or {}),
            prev_root=str(obj["prev"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"audit entry field missing or malformed: {exc}") from None
    if canonical_json(obj) != data:
        raise AuditError("the entry is not in canonical form")
    return entry


def entry_dict(entry: AuditEntry) -> dict[str, object]:
    """An entry for JSON output (``audit show --json``, the auditor's UI)."""
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "purpose": entry.purpose,
        "case": entry.case_id,
        "details": entry.details,
    }


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(ValueError):
    """A checkpoint note that is malformed or not signed by the expected key."""


def log_origin(public_key: Ed25519PublicKey) -> str:
    """This log's origin line and signing key name: stable for a deployment's key."""
    return "watchfloor/" + hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(size: int, root: bytes, key: Ed25519PrivateKey, *, now: datetime) -> Checkpoint:
    public = key.public_key()
    origin = log_origin(public)
    body = checkpoint_body(origin, size, root)
    signature = note_key_id(origin, public) + key.sign(body.encode())
    note = f"{body}\n\u2014 {origin} {base64.b64encode(signature).decode()}\n"
    return Checkpoint(tree_size=size, root_hash=root, created_at=now, note=note)


def parse_checkpoint(note: str, public_key: Ed25519PublicKey, *, name: str | None = None) -> Checkpoint:
    """Read and verify a signed checkpoint note; CheckpointError says what is wrong."""
    name = name or log_origin(public_key)
    if "\n\n" not in note:
        raise CheckpointError("not a signed note (no blank line before the signatures)")
    body, _, signatures = note.rpartition("\n\n")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a tree size and a root hash")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if origin != name:
        raise CheckpointError(f"the checkpoint is for log {origin!r}, not {name!r}")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"tree size {size_text!r} is not a number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise CheckpointError("the root hash is not base64") from None
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointError("the root hash is not 32 bytes")
    key_id = note_key_id(name, public_key)
    verified = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise CheckpointError(f"malformed signature line {line[:40]!r}")
        try:
            signer, encoded = line[2:].split(" ")
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise CheckpointError("malformed signature line") from None
        if signer != name or raw[:4] != key_id:
            continue  # another key's signature (a witness cosignature): not ours to check
        try:
            public_key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise CheckpointError("the signature does not verify: the checkpoint was altered") from None
        verified = True
    if not verified:
        raise CheckpointError(f"the checkpoint carries no signature of {name}")
    return Checkpoint(tree_size=int(size_text), root_hash=root, created_at=utcnow(), note=note)


# --------------------------------------------------------------------------- the log


class AuditLog:
    """Writes and reads the store's audit log. ``clock`` is the only time source."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str | None = None,
        purpose: str | None = None,
        case_id: str | int | None = None,
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Append one entry and return it (with its seq)."""
        at = self.clock()
        case = None if case_id is None else str(case_id)
        checked = _check_details(details)  # fail before the transaction, not inside it

        def make(seq: int, prev_root: bytes) -> bytes:
            return encode_entry(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                prev_root=prev_root,
                target=target,
                purpose=purpose,
                case_id=case,
                details=checked,
            )

        row = self.store.append_audit(at.isoformat(timespec="microseconds"), action, make)
        return decode_entry(row.entry)

    def entries(self, start: int = 0, end: int | None = None) -> list[AuditEntry]:
        return [decode_entry(r.entry) for r in self.store.audit_rows(start, end)]

    def tail(self, limit: int = 50) -> list[AuditEntry]:
        size, _ = self.store.audit_head()
        return self.entries(max(0, size - limit))

    def entries_by_action(
        self, actions: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> list[AuditEntry]:
        return [decode_entry(r.entry) for r in self.store.audit_rows_by_action(actions, since=since, until=until)]

    def head(self) -> tuple[int, bytes]:
        return self.store.audit_head()

    def leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(r.entry) for r in self.store.audit_rows()]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return merkle.inclusion_proof(self.leaves(), index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return merkle.consistency_proof(self.leaves(), old_size, new_size)

    def checkpoint(self, key: Ed25519PrivateKey) -> Checkpoint:
        """Sign the current tree head, keep the checkpoint, and return it."""
        size, root = self.store.audit_head()
        checkpoint = sign_checkpoint(size, root, key, now=self.clock())
        self.store.add_checkpoint(checkpoint)
        return checkpoint


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the log, and where: entry positions ``first``..``last`` (inclusive)."""

    kind: str  # changed | missing | inserted | reordered | truncated | forked | checkpoint
    message: str
    first: int | None = None
    last: int | None = None

    def where(self) -> str:
        if self.first is None:
            return "log"
        return f"entry {self.first}" if self.last in (None, self.first) else f"entries {self.first}-{self.last}"


@dataclass
class VerifyReport:
    size: int
    root: bytes
    problems: list[Problem] = field(default_factory=list)
    checkpoints_checked: int = 0
    witnessed_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Row:
    position: int
    seq: int | None
    prev: str | None
    leaf: bytes
    stored_leaf: bytes
    error: str | None


def verify_log(
    store: Store,
    public_key: Ed25519PublicKey | None,
    *,
    witnessed: Iterable[Checkpoint] = (),
) -> VerifyReport:
    """Check the whole log: every entry's bytes against its leaf hash, its seq against its
    position, its ``prev`` against the history before it, the stored tree head, every stored
    checkpoint (signature and root), and every ``witnessed`` checkpoint (already
    signature-checked by :func:`parse_checkpoint`). Each problem says where it is, as entry
    numbers: an entry's number is its seq, which is its position in an untouched log."""
    rows: list[_Row] = []
    for position, stored in enumerate(store.audit_rows()):
        leaf = merkle.leaf_hash(stored.entry)
        try:
            entry = decode_entry(stored.entry)
            rows.append(_Row(position, entry.seq, entry.prev_root, leaf, stored.leaf_hash, None))
        except AuditError as exc:
            rows.append(_Row(position, None, None, leaf, stored.leaf_hash, str(exc)))
    head_size, head_root = store.audit_head()
    stored_checkpoints = store.list_checkpoints()
    witnessed = list(witnessed)
    wanted_sizes = {c.tree_size for c in (*stored_checkpoints, *witnessed)}

    # the tree over the entries as stored, and the first entry that does not commit to it
    frontier = merkle.Frontier()
    roots_at: dict[int, bytes] = {}
    chain_break: int | None = None
    for r in rows:
        if frontier.size in wanted_sizes:
            roots_at[frontier.size] = frontier.root()
        if chain_break is None and r.prev is not None and r.prev != frontier.root().hex():
            chain_break = r.position
        frontier.append(r.leaf)
    if frontier.size in wanted_sizes:
        roots_at[frontier.size] = frontier.root()
    size, root = frontier.size, frontier.root()

    problems: list[Problem] = []
    located: set[int] = set()

    def report(kind: str, message: str, first: int | None = None, last: int | None = None) -> None:
        last = first if last is None else last
        problems.append(Problem(kind, message, first, last))
        if first is not None:
            located.update(range(first, (last if last is not None else first) + 1))

    # 1. bytes: an entry that no longer hashes to its stored leaf hash, or is no entry at all
    for r in rows:
        if r.error is not None:
            report("changed", f"entry at position {r.position} is unreadable: {r.error}", r.position)
        elif r.leaf != r.stored_leaf:
            report("changed", f"entry at position {r.position} does not match its stored leaf hash", r.position)

    # 2. numbering: inserted, deleted and reordered entries
    bound = max(len(rows), head_size)
    positions: dict[int, list[int]] = {}
    for r in rows:
        if r.seq is None:
            continue
        if not 0 <= r.seq < bound:
            report("inserted", f"entry at position {r.position} claims seq {r.seq}, outside the log", r.position)
            continue
        positions.setdefault(r.seq, []).append(r.position)
    for seq, ps in sorted(positions.items()):
        if len(ps) == 1:
            continue
        if chain_break is not None and chain_break - 1 in ps:
            odd = [chain_break - 1]
        elif chain_break is not None and chain_break in ps:
            odd = [chain_break]
        else:
            odd = ps[1:]
        for extra in odd:
            others = [p for p in ps if p != extra]
            report("inserted", f"entry at position {extra} repeats seq {seq} (also at position {others[0]})", extra)
    highest = max(positions, default=-1)
    seq = 0
    while seq <= highest:
        if seq in positions:
            seq += 1
            continue
        run_end = seq
        while run_end + 1 <= highest and run_end + 1 not in positions:
            run_end += 1
        what = f"entry {seq} was" if run_end == seq else f"entries {seq}-{run_end} were"
        report("missing", f"{what} deleted", seq, run_end)
        seq = run_end + 1
    highest_seen = -1
    for r in rows:
        if r.seq is None or r.seq not in positions or len(positions[r.seq]) > 1:
            continue
        if r.seq < highest_seen:
            report("reordered", f"entry {r.seq} is stored after entry {highest_seen} (position {r.position})", r.seq)
        highest_seen = max(highest_seen, r.seq)

    # 3. the chain: an entry that does not commit to the history before it, with nothing
    # else to explain it, means the entry before it was rewritten (hash included)
    if chain_break is not None and not located & {chain_break - 1, chain_break, chain_break + 1}:
        report(
            "changed",
            f"entry at position {chain_break} does not commit to the history before it: "
            f"the entry at position {chain_break - 1} was rewritten",
            max(0, chain_break - 1),
        )

    # 4. the stored tree head (a difference the numbering already explains is not repeated)
    missing_total = sum((p.last or 0) - (p.first or 0) + 1 for p in problems if p.kind == "missing")
    inserted_total = sum(1 for p in problems if p.kind == "inserted")
    if head_size == size + missing_total - inserted_total and head_size != size:
        pass
    elif head_size > size:
        report("truncated", f"the log ends after {size} entries, but its head records {head_size}", size, head_size - 1)
    elif head_size < size:
        report("inserted", f"{size - head_size} entries after the recorded head ({head_size})", head_size, size - 1)
    elif head_root != root and not problems:
        report("changed", "the entries do not hash to the recorded head", max(0, size - 1))

    # 5. checkpoints: stored ones (signature and root) and witnessed ones (root; their
    # signature was checked when they were read). A divergence is placed after the
    # largest checkpoint the log still agrees with (only witnessed ones bound a fork).
    good_stored: list[Checkpoint] = []
    for cp in stored_checkpoints:
        if public_key is not None:
            try:
                parse_checkpoint(cp.note, public_key)
            except CheckpointError as exc:
                report("checkpoint", f"stored checkpoint at size {cp.tree_size}: {exc}")
                continue
        good_stored.append(cp)
    for cp in good_stored:
        _check_against(cp, "stored checkpoint", size, roots_at, [*good_stored, *witnessed], report, kind="changed")
    for cp in witnessed:
        _check_against(cp, "witnessed checkpoint", size, roots_at, witnessed, report, kind="forked")
        twin = next((s for s in good_stored if s.tree_size == cp.tree_size), None)
        if twin is not None and twin.root_hash != cp.root_hash:
            report(
                "forked",
                f"the stored checkpoint at size {cp.tree_size} differs from the witnessed one: "
                "history was rewritten and re-signed",
            )
    return VerifyReport(size, root, problems, len(good_stored), len(witnessed))


def _check_against(
    cp: Checkpoint,
    what: str,
    size: int,
    roots_at: Mapping[int, bytes],
    trusted: Sequence[Checkpoint],
    report: Callable[..., None],
    *,
    kind: str,
) -> None:
    if cp.tree_size > size:
        report(
            "truncated",
            f"the {what} covers {cp.tree_size} entries but the log has {size}: "
            f"entries {size}-{cp.tree_size - 1} are gone",
            size,
            cp.tree_size - 1,
        )
    elif roots_at.get(cp.tree_size) != cp.root_hash:
        low = max(
            (t.tree_size for t in trusted if t.tree_size < cp.tree_size and roots_at.get(t.tree_size) == t.root_hash),
            default=0,
        )
        report(
            kind,
            f"the log's first {cp.tree_size} entries do not hash to the {what}'s root "
            f"({cp.root_hash.hex()[:16]}…): the history diverges within entries {low}-{cp.tree_size - 1}",
            low,
            cp.tree_size - 1,
        )
