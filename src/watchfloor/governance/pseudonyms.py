"""Keyed pseudonyms for accounts, and the sealed clear identities behind them.

    pseudonym = "p:" + hex(HMAC-SHA256(key[purpose class, epoch], platform || 0x00 || account))[:16]

The same account maps to the same pseudonym within one epoch of one purpose class, and
the mapping cannot be reversed or tested without that key. Rotating the keyring starts a
new epoch: new pseudonyms, unlinkable to the old ones (docs/accountability.md).

The clear account is never stored in clear. :class:`KeyedPseudonymiser` remembers, for the
batch being processed only, which account each pseudonym came from; before the batch is
committed, :meth:`KeyedPseudonymiser.seal_batch` encrypts the *authors of the matched posts*
(AES-256-GCM under the epoch's identity key, a key separate from the pseudonym key) into
the batch, and forgets the rest. So identities are kept exactly for stored posts and are
committed in the same transaction as those posts. To spare the HMAC for accounts seen
again, :class:`HmacPseudonymiser` also keeps a bounded cache of recent (platform, account)
→ pseudonym pairs of its one key: clear accounts too, but in memory only, never on disk,
and emptied when :class:`KeyedPseudonymiser` picks up a rotation.

Which key: normalisers pseudonymise before matching, so the pseudonym cannot depend on
which watch (and purpose) a post will match; one post may match watches of several
purposes. The key is therefore chosen per *purpose class*: one class per deployment
(``[pseudonyms] purpose_class`` in the policy), every purpose of the deployment in it.
Purposes that must be unlinkable from each other belong in separate deployments.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchfloor.governance.keys import KEYS_DIR, Keyring, KeyringError
from watchfloor.model import SealedIdentity, utcnow
from watchfloor.store.base import IngestBatch

PSEUDONYM_PREFIX = "p:"
IDENTITY_AAD = b"watchfloor-identity-v1"
NONCE_BYTES = 12


class HmacPseudonymiser:
    """HMAC-SHA256(secret, platform || 0x00 || account), shown as ``p:`` + 16 hex digits.

    The keyed HMAC state is set up once and copied for each account (the standard library's
    ``hmac``; setting it up afresh on every call costs more). The pseudonyms of the ``cache`` most recently computed
    (platform, account) pairs are kept, so an account seen again costs a dictionary lookup:
    that cache holds clear accounts, in memory only (never on disk), at most ``cache`` of
    them, the oldest going first; :meth:`clear` empties it. ``cache=0`` keeps none.
    Pickled (to the match helper process, pipeline/match_process.py), it takes its secret
    along and leaves its cache behind.
    """

    def __init__(self, secret: bytes, *, cache: int = 100_000) -> None:
        if len(secret) < 32:
            raise ValueError("the pseudonym secret must be at least 32 bytes")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._secret = secret
        self._cache_size = cache
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._cache_lock = threading.Lock()  # a miss's evict-and-insert, so the bound holds across threads

    def __call__(self, platform: str, account: str) -> str:
        cache = self._cache
        pseudonym = cache.get((platform, account))
        if pseudonym is None:
            mac = self._keyed.copy()
            mac.update(platform.encode() + b"\x00" + account.encode())
            pseudonym = PSEUDONYM_PREFIX + mac.digest()[:8].hex()  # the first 16 hex digits
            if self._cache_size > 0:
                with self._cache_lock:
                    while len(cache) >= self._cache_size:
                        cache.popitem(last=False)  # the oldest
                    cache[platform, account] = pseudonym
        return pseudonym

    def __reduce__(self) -> tuple[object, ...]:
        # to a helper process (pipeline/match_process.py): the secret, without the cache
        return (HmacPseudonymiser, (self._secret,), {"_cache_size": self._cache_size})

    def __setstate__(self, state: dict[str, int]) -> None:
        self._cache_size = state["_cache_size"]

    def clear(self) -> None:
        """Forget the cached accounts."""
        with self._cache_lock:
            self._cache.clear()


class IdentityError(RuntimeError):
    """A sealed identity that cannot be opened (key destroyed, or the record was altered)."""


def _aad(pseudonym: str, epoch: int) -> bytes:
    return IDENTITY_AAD + b"\x00" + pseudonym.encode() + b"\x00" + str(epoch).encode()


def seal_identity(
    key: bytes, *, pseudonym: str, epoch: int, platform: str, account: str, now: datetime
) -> SealedIdentity:
    """Encrypt (platform, account) for ``pseudonym``; the pseudonym and epoch are bound as
    associated data, so a ciphertext moved to another pseudonym does not open."""
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps({"platform": platform, "account": account}, sort_keys=True).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(pseudonym, epoch))
    return SealedIdentity(pseudonym=pseudonym, epoch=epoch, nonce=nonce, ciphertext=ciphertext, first_seen=now)


def open_identity(keyring: Keyring, sealed: SealedIdentity) -> tuple[str, str]:
    """(platform, account) of a sealed identity. Only :mod:`watchfloor.governance.authorizations`
    calls this, after checking the authorization and recording the reveal."""
    try:
        key = keyring.identity_key(sealed.epoch)
    except KeyringError as exc:
        raise IdentityError(str(exc)) from None
    try:
        plaintext = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.pseudonym, sealed.epoch))
    except InvalidTag:
        raise IdentityError("the sealed identity does not open: it was altered or belongs elsewhere") from None
    data = json.loads(plaintext)
    return str(data["platform"]), str(data["account"])


class KeyedPseudonymiser:
    """The normalisers' pseudonymiser for a deployment: the current epoch's key of its
    purpose class, picked up again within ``refresh_s`` of a rotation.

    It keeps the accounts of at most ``remember`` recent pseudonyms in memory (never on
    disk) until :meth:`seal_batch` seals those a batch stores and forgets them all. That
    memory is per thread: a pipeline normalises, matches and seals one batch in one call of
    ``Pipeline.process`` on one thread, so pipelines running side by side never see (or
    forget) each other's accounts. Every call is remembered there, whether its pseudonym was
    computed or found in the current epoch's :class:`HmacPseudonymiser` cache (at most
    ``cache`` clear accounts, in memory only, shared by the threads and emptied when a
    rotation is picked up).

    A call takes the lock only when, every ``refresh_s`` seconds, it looks at the keyring.
    Pickled (to the match helper process, pipeline/match_process.py), it is the keyring's
    folder and its options: no key and no clear account leave this process that way.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] = utcnow,
        refresh_s: float = 5.0,
        remember: int = 100_000,
        cache: int = 100_000,
    ) -> None:
        self._keyring = keyring
        self._clock = clock
        self._refresh_s = refresh_s
        self._remember = remember
        self._cache = cache
        self._lock = threading.Lock()
        self._local = threading.local()
        self._identity_keys: dict[int, bytes] = {}
        self._due = time.monotonic() + refresh_s
        self._load()

    def __reduce__(self) -> tuple[object, ...]:
        # to a helper process (pipeline/match_process.py): the keyring's folder, never a key;
        # the copy reads its keys there, and picks up rotations as this one does
        options = {"clock": self._clock, "refresh_s": self._refresh_s, "remember": self._remember, "cache": self._cache}
        return (_keyed_pseudonymiser, (self._keyring, options))

    def _load(self) -> None:
        mtime = self._keyring.manifest_mtime()
        epoch, key = self._keyring.pseudonym_key()
        identity_key = self._keyring.identity_key(epoch)
        previous: tuple[int, HmacPseudonymiser] | None = getattr(self, "_current", None)
        self._mtime, self.epoch = mtime, epoch
        self._current = (epoch, HmacPseudonymiser(key, cache=self._cache))  # read in one step, without the lock
        self._identity_keys[epoch] = identity_key
        if previous is not None:
            previous[1].clear()  # the old epoch's clear accounts go with its key

    def refresh(self) -> None:
        """Reload the keys if the keyring changed (a rotation)."""
        with self._lock:
            self._due = time.monotonic() + self._refresh_s
            if self._keyring.manifest_mtime() != self._mtime:
                self._load()

    def _accounts(self) -> dict[str, tuple[str, str, int]]:
        accounts: dict[str, tuple[str, str, int]] | None = getattr(self._local, "accounts", None)
        if accounts is None:
            accounts = self._local.accounts = {}
        return accounts

    def __call__(self, platform: str, account: str) -> str:
        if time.monotonic() >= self._due:
            self.refresh()
        epoch, pseudonymise = self._current
        pseudonym = pseudonymise(platform, account)
        try:
            accounts: dict[str, tuple[str, str, int]] = self._local.accounts
        except AttributeError:
            accounts = self._accounts()
        if pseudonym not in accounts and len(accounts) >= self._remember:
            del accounts[next(iter(accounts))]  # the oldest
        accounts[pseudonym] = (platform, account, epoch)
        return pseudonym

    def seal(self, pseudonym: str) -> SealedIdentity | None:
        """The sealed identity of a pseudonym made (on this thread) since the last
        :meth:`forget`, else None."""
        known = self._accounts().get(pseudonym)
        if known is None:
            return None
        platform, account, epoch = known
        with self._lock:
            key = self._identity_keys.get(epoch)
            if key is None:
                key = self._identity_keys[epoch] = self._keyring.identity_key(epoch)
        now = self._clock()
        return seal_identity(key, pseudonym=pseudonym, epoch=epoch, platform=platform, account=account, now=now)

    def forget(self) -> None:
        """Forget the accounts remembered on this thread."""
        self._accounts().clear()

    def seal_batch(self, batch: IngestBatch) -> None:
        """Add the sealed authors of ``batch.posts`` to ``batch.identities``; forget the rest.

        Installed as the pipeline's ``before_commit`` hook, so identities are committed in
        the same transaction as the posts that carry the pseudonyms."""
        seen: set[str] = set()
        for post in batch.posts:
            if post.author in seen:
                continue
            seen.add(post.author)
            sealed = self.seal(post.author)
            if sealed is not None:
                batch.identities.append(sealed)
        self.forget()


def _keyed_pseudonymiser(keyring: Keyring, options: dict[str, Any]) -> KeyedPseudonymiser:
    return KeyedPseudonymiser(keyring, **options)


def deployment_pseudonymiser(home: Path) -> KeyedPseudonymiser:
    """The pseudonymiser of the deployment in ``home`` (its keyring in ``home/keys``);
    KeyringError (saying to run ``watchfloor init``) when there is none."""
    return KeyedPseudonymiser(Keyring(home / KEYS_DIR))
