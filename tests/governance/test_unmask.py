"""Pseudonyms per purpose class and epoch, identities sealed with the posts that need them,
the two-person unmask (scope, expiry, count, audit), key rotation and crypto-shredding."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchfloor.governance.keys import KEYS_DIR, Keyring, KeyringError
from watchfloor.governance.pseudonyms import (
    HmacPseudonymiser,
    KeyedPseudonymiser,
    deployment_pseudonymiser,
    open_identity,
)
from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.model import AuthorizationKind, AuthorizationStatus, CaseStatus, Post, Watch, utcnow
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import IngestBatch

TEXTS = ["The river is flooding at the old mill", "Lovely weather for a picnic", "Flooding again on the river road"]


def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps(
            {
                "did": f"did:plc:author{i}",
                "time_us": 1764072000000000 + i,
                "kind": "commit",
                "commit": {
                    "rev": f"r{i}",
                    "operation": "create",
                    "collection": "app.bsky.feed.post",
                    "rkey": f"k{i}",
                    "cid": f"bafy{i}",
                    "record": {"text": t, "createdAt": "2026-11-25T12:00:00Z", "langs": ["en"]},
                },
            }
        )
        for i, t in enumerate(TEXTS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ingest(gov: Governance, home: Path, tmp_path: Path, clock) -> KeyedPseudonymiser:
    """Run the three posts through the real pipeline with the deployment's pseudonymiser."""
    w = gov.watches.propose(
        Watch(
            name="floods",
            query="flood* AND river",
            purpose="public-safety",
            legal_basis="public task",
            owner="desk",
            expires_at=clock.now + timedelta(days=9),
        ),
        by="ana",
    ).watch
    gov.watches.approve(w.id, by="sam")
    pseudonymise = deployment_pseudonymiser(home)
    pipeline = Pipeline(
        ReplaySource(events_file(tmp_path)),
        JetstreamNormaliser(pseudonymise),
        gov.store,
        batch_interval_s=0.01,
        clock=clock,
    )
    pipeline.before_commit.append(pseudonymise.seal_batch)
    asyncio.run(pipeline.run())
    return pseudonymise


def authors(gov: Governance) -> list[str]:
    return [v.post.author for v in gov.store.list_alerts(limit=10)]


def open_case(gov: Governance, clock) -> str:
    case, _ = gov.store.create_case("Flood threats", "sam", actor="sam", at=clock.now)
    return str(case.id)


def all_audit_bytes(gov: Governance) -> bytes:
    return b"\n".join(r.entry for r in gov.store.audit_rows())


# --------------------------------------------------------------------------- pseudonyms


def test_keyed_pseudonyms_are_the_v1_hmac_under_the_epoch_key(home: Path) -> None:
    keyring = Keyring(home / KEYS_DIR)
    epoch, key = keyring.pseudonym_key()
    p = KeyedPseudonymiser(keyring)
    assert epoch == 1 and p("bluesky", "did:plc:x") == HmacPseudonymiser(key)("bluesky", "did:plc:x")
    assert p("bluesky", "did:plc:x").startswith("p:") and len(p("bluesky", "did:plc:x")) == 18


def test_the_v1_key_is_adopted_not_copied(tmp_path: Path) -> None:
    legacy = tmp_path / "keys" / "pseudonym.key"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("ab" * 32 + "\n")
    before = HmacPseudonymiser(bytes.fromhex("ab" * 32))("bluesky", "did:plc:x")
    keyring = Keyring(tmp_path / "keys")
    assert any("adopted" in step for step in keyring.initialise("deployment"))
    assert not legacy.exists()  # moved: shredding epoch 1 leaves no copy behind
    assert KeyedPseudonymiser(keyring)("bluesky", "did:plc:x") == before
    assert keyring.initialise("deployment") == []  # safe to run again


def test_only_the_authors_of_stored_posts_are_sealed(
    gov: Governance, home: Path, tmp_path: Path, clock, raw_db
) -> None:
    ingest(gov, home, tmp_path, clock)
    stored = authors(gov)
    assert len(stored) == 2 and all(a.startswith("p:") for a in stored)
    sealed = {s.pseudonym for p in stored for s in gov.store.identities_of(p)}
    assert sealed == set(stored)
    assert gov.store.count_identities() == {1: 2}  # the picnic author (not matched) was never sealed
    dump = b"".join(bytes(str(tuple(row)), "utf-8") for row in raw_db.execute("SELECT * FROM identities"))
    assert b"did:plc:author" not in dump  # kept only encrypted


def test_pipelines_side_by_side_keep_their_own_accounts(home: Path) -> None:
    p = KeyedPseudonymiser(Keyring(home / KEYS_DIR))
    mine = p("bluesky", "did:plc:mine")
    done = threading.Event()

    def other_pipeline() -> None:
        p("bluesky", "did:plc:theirs")
        p.seal_batch(IngestBatch(source="other", cursor=None))  # seals nothing, forgets its own thread's
        done.set()

    threading.Thread(target=other_pipeline).start()
    assert done.wait(5)
    assert p.seal(mine) is not None


def reference(secret: bytes, platform: str, account: str) -> str:
    """The pseudonym as the module docstring defines it, with the standard library's HMAC."""
    message = platform.encode() + b"\x00" + account.encode()
    return "p:" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:16]


NO_SURROGATES = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def test_pseudonyms_have_not_changed() -> None:
    assert HmacPseudonymiser(b"k" * 32)("bluesky", "did:plc:x") == "p:659bfa1b084b2e44"
    assert HmacPseudonymiser(bytes(range(100)))("mastodon", "@a@b.example") == "p:ba4ad9aae5346264"  # key > 64 bytes


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=200), NO_SURROGATES, NO_SURROGATES, st.sampled_from([0, 1, 2, 100_000]))
def test_pseudonyms_are_the_hmac_whatever_the_secret_and_the_cache(
    secret: bytes, platform: str, account: str, cache: int
) -> None:
    p = HmacPseudonymiser(secret, cache=cache)
    expected = reference(secret, platform, account)
    assert p(platform, account) == expected
    assert p(platform, account) == expected  # from the cache, when there is one
    assert p(platform + "x", account) == reference(secret, platform + "x", account)
    assert p(platform, account) == expected


def test_the_cache_of_clear_accounts_is_bounded_and_can_be_cleared() -> None:
    p = HmacPseudonymiser(b"k" * 32, cache=3)
    pseudonyms = [p("bluesky", f"did:plc:{i}") for i in range(10)]
    assert list(p._cache) == [("bluesky", f"did:plc:{i}") for i in (7, 8, 9)]  # the most recent, no more
    assert [p("bluesky", f"did:plc:{i}") for i in range(10)] == pseudonyms
    p.clear()
    assert not p._cache
    assert HmacPseudonymiser(b"k" * 32, cache=0)("bluesky", "did:plc:1") == pseudonyms[1]


def post_by(author: str) -> Post:
    now = utcnow()
    return Post("bluesky", f"at://{author}", "v1", now, now, "text", author)


def test_a_pseudonym_from_the_cache_is_remembered_for_sealing(home: Path) -> None:
    keyring = Keyring(home / KEYS_DIR)
    p = KeyedPseudonymiser(keyring)
    first, second = p("bluesky", "did:plc:first"), p("bluesky", "did:plc:second")
    p.forget()  # a batch was committed
    assert p.seal(first) is None and p.seal(second) is None
    assert p("bluesky", "did:plc:first") == first  # the cached pseudonym, remembered again for this batch
    batch = IngestBatch(source="s", cursor=None, posts=[post_by(first), post_by(second), post_by(first)])
    p.seal_batch(batch)
    assert [s.pseudonym for s in batch.identities] == [first]  # second was not seen since the last forget
    assert open_identity(keyring, batch.identities[0]) == ("bluesky", "did:plc:first")
    assert p.seal(first) is None  # and everything is forgotten again


def test_a_rotation_starts_new_pseudonyms_and_drops_the_cached_accounts(home: Path) -> None:
    keyring = Keyring(home / KEYS_DIR)
    p = KeyedPseudonymiser(keyring)  # looks at the keyring every 5 s
    eager = KeyedPseudonymiser(keyring, refresh_s=0)  # on every call
    before = p("bluesky", "did:plc:x")
    assert eager("bluesky", "did:plc:x") == before
    old_epoch = p._current[1]
    assert keyring.rotate() == 2
    epoch, key = keyring.pseudonym_key()
    after = eager("bluesky", "did:plc:x")
    assert eager.epoch == epoch == 2 and after == HmacPseudonymiser(key)("bluesky", "did:plc:x") != before
    assert p("bluesky", "did:plc:x") == before  # not yet picked up
    p.refresh()
    assert p.epoch == 2 and p("bluesky", "did:plc:x") == after
    assert not old_epoch._cache  # the old epoch's clear accounts are gone with its key
    sealed = p.seal(after)
    assert sealed is not None and sealed.epoch == 2 and open_identity(keyring, sealed) == ("bluesky", "did:plc:x")


def test_threads_share_the_cache_and_keep_their_own_accounts(home: Path) -> None:
    keyring = Keyring(home / KEYS_DIR)
    p = KeyedPseudonymiser(keyring, cache=16)  # small: evictions race between the threads
    key = keyring.pseudonym_key()[1]
    failures: list[str] = []

    def pipeline(n: int) -> None:
        mine = {p("bluesky", f"did:plc:{n}-{i % 40}") for i in range(3000)}
        if mine != {reference(key, "bluesky", f"did:plc:{n}-{i}") for i in range(40)}:
            failures.append(f"thread {n}: wrong pseudonyms")
        if any(p.seal(pseudonym) is None for pseudonym in mine):
            failures.append(f"thread {n}: an account was not remembered")

    threads = [threading.Thread(target=pipeline, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not failures and len(p._current[1]._cache) <= 16


# --------------------------------------------------------------------------- the unmask


def test_the_two_person_unmask(gov: Governance, home: Path, tmp_path: Path, clock) -> None:
    ingest(gov, home, tmp_path, clock)
    target, other = authors(gov)
    case = open_case(gov, clock)
    request = dict(
        kind=AuthorizationKind.unmask,
        purpose="public-safety",
        pseudonyms=[target],
        legal_basis="",
        legal_ref="Order 2026/114",
        expires_at=clock.now + timedelta(days=60),
    )
    with pytest.raises(GovernanceError, match="one case"):
        gov.authorizations.request(by="ana", **request)
    with pytest.raises(GovernanceError, match="legal basis or a legal-process reference"):
        gov.authorizations.request(by="ana", case_id=case, **(request | {"legal_ref": None}))
    auth = gov.authorizations.request(by="ana", case_id=case, reason="threats in case", **request)
    assert auth.status == AuthorizationStatus.requested
    assert auth.expires_at == clock.now + timedelta(days=14)  # capped by [unmask] max_days

    with pytest.raises(GovernanceError, match="requested, not approved"):
        gov.authorizations.reveal(target, authorization_id=auth.id, by="ana", case_id=case)
    with pytest.raises(GovernanceError, match="approve_unmask"):
        gov.authorizations.approve(auth.id, by="alf")  # another analyst
    approved = gov.authorizations.approve(auth.id, by="sam")
    assert approved.approver == "sam" and approved.max_reveals == 3

    for who, pseudonym, case_id, why in [
        ("alf", target, case, "only the requester"),
        ("ana", other, case, "outside the scope"),
        ("ana", target, "999", "is for case"),
    ]:
        with pytest.raises(GovernanceError, match=why):
            gov.authorizations.reveal(pseudonym, authorization_id=auth.id, by=who, case_id=case_id)
    reveal = gov.authorizations.reveal(target, authorization_id=auth.id, by="ana", case_id=case)
    assert (reveal.platform, reveal.account, reveal.epoch) == ("bluesky", reveal.account, 1)
    assert reveal.account.startswith("did:plc:author") and reveal.authorization.reveals == 1
    gov.authorizations.reveal(target, authorization_id=auth.id, by="ana", case_id=case)
    gov.authorizations.reveal(target, authorization_id=auth.id, by="ana", case_id=case)
    with pytest.raises(GovernanceError, match="no reveals left"):
        gov.authorizations.reveal(target, authorization_id=auth.id, by="ana", case_id=case)

    revealed = gov.audit.entries_by_action(["identity.revealed"])
    assert [(e.actor, e.target, e.case_id, e.details["reveal"]) for e in revealed] == [
        ("ana", f"pseudonym:{target}", case, n) for n in (1, 2, 3)
    ]
    assert len(gov.audit.entries_by_action(["identity.reveal_refused"])) == 5  # every refusal is recorded
    assert b"did:plc:" not in all_audit_bytes(gov)  # the audit log never holds the account


def test_a_requester_cannot_approve_and_expiry_ends_an_authorization(
    gov: Governance, home: Path, tmp_path: Path, clock
) -> None:
    ingest(gov, home, tmp_path, clock)
    target = authors(gov)[0]
    case = open_case(gov, clock)
    auth = gov.authorizations.request(
        kind=AuthorizationKind.unmask,
        by="sam",
        purpose="public-safety",
        pseudonyms=[target],
        case_id=case,
        legal_basis="threat to life",
        expires_at=clock.now + timedelta(days=2),
    )
    with pytest.raises(GovernanceError, match="a different supervisor"):
        gov.authorizations.approve(auth.id, by="sam")
    assert gov.audit.entries_by_action(["authorization.refused"])
    gov.authorizations.approve(auth.id, by="sue")
    clock.advance(days=2, seconds=1)
    with pytest.raises(GovernanceError, match="expired"):
        gov.authorizations.reveal(target, authorization_id=auth.id, by="sam", case_id=case)
    denied = gov.authorizations.request(
        kind=AuthorizationKind.unmask,
        by="ana",
        purpose="public-safety",
        pseudonyms=[target],
        case_id=case,
        legal_basis="curiosity",
        expires_at=clock.now + timedelta(days=2),
    )
    gov.authorizations.deny(denied.id, by="sue", reason="no legal basis")
    assert gov.store.get_authorization(denied.id).status == AuthorizationStatus.denied
    with pytest.raises(GovernanceError, match="denied"):
        gov.authorizations.reveal(target, authorization_id=denied.id, by="ana", case_id=case)


def test_a_closed_case_cannot_be_the_scope(gov: Governance, clock) -> None:
    case = open_case(gov, clock)
    gov.store.update_case(int(case), actor="sam", at=clock.now, status=CaseStatus.closed)
    with pytest.raises(GovernanceError, match="closed"):
        gov.authorizations.request(
            kind=AuthorizationKind.unmask,
            by="ana",
            purpose="public-safety",
            pseudonyms=["p:0123456789abcdef"],
            case_id=case,
            legal_basis="x",
            expires_at=clock.now + timedelta(days=1),
        )


# --------------------------------------------------------------------------- rotation and shredding


def grant(gov: Governance, clock, pseudonym: str, case: str) -> int:
    auth = gov.authorizations.request(
        kind=AuthorizationKind.unmask,
        by="ana",
        purpose="public-safety",
        pseudonyms=[pseudonym],
        case_id=case,
        legal_basis="threat to life",
        expires_at=clock.now + timedelta(days=3),
    )
    return gov.authorizations.approve(auth.id, by="sam").id


def test_rotation_starts_an_unlinkable_epoch_and_destroying_one_shreds_it(
    gov: Governance, home: Path, tmp_path: Path, clock, raw_db
) -> None:
    pseudonymise = ingest(gov, home, tmp_path, clock)
    target = authors(gov)[0]
    account = gov.authorizations.reveal(
        target, authorization_id=grant(gov, clock, target, open_case(gov, clock)), by="ana", case_id="1"
    ).account
    keyring = gov.keyring
    assert keyring.rotate(now=clock.now) == 2
    pseudonymise.refresh()
    assert pseudonymise.epoch == 2 and pseudonymise("bluesky", account) != target  # no linkage across epochs
    with pytest.raises(KeyringError, match="destroyed"):
        keyring.pseudonym_key(1)  # nothing can make epoch-1 pseudonyms any more
    assert (
        gov.authorizations.reveal(
            target, authorization_id=grant(gov, clock, target, "1"), by="ana", case_id="1"
        ).account
        == account
    )

    with pytest.raises(KeyringError, match="current epoch"):
        keyring.destroy(2)
    kept = raw_db.execute("SELECT * FROM identities WHERE epoch = ?", (1,)).fetchall()
    keyring.destroy(1, now=clock.now)
    assert not (home / KEYS_DIR / "identity" / "epoch-0001.key").exists()
    assert keyring.epoch(1).shredded
    # even a copy of the ciphertexts (a backup, say) no longer opens
    auth = grant(gov, clock, target, "1")
    with pytest.raises(GovernanceError, match="destroyed: its identities are crypto-shredded"):
        gov.authorizations.reveal(target, authorization_id=auth, by="ana", case_id="1")
    assert len(kept) == 2 and gov.store.delete_identities_of_epoch(1) == 2
    with pytest.raises(GovernanceError, match="no sealed identity"):
        gov.authorizations.reveal(target, authorization_id=auth, by="ana", case_id="1")
