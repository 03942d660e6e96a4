"""The keyring in ``$WATCHFLOOR_HOME/keys/``: pseudonym keys by epoch, identity keys by
epoch, and the audit log's Ed25519 signing key.

    keys/
      keyring.json                   what exists (no secrets): class, epochs, origin
      pseudonym/epoch-0001.key       HMAC-SHA256 key: account -> pseudonym      (mode 600)
      identity/epoch-0001.key        AES-256-GCM key: seals the clear account   (mode 600)
      audit/signing.key              Ed25519 private key (32-byte seed, hex)    (mode 600)
      audit/signing.pub              Ed25519 public key (hex), for witnesses

An *epoch* is one pair of keys. ``rotate`` starts a new epoch: new posts get pseudonyms
no one can link to the old ones, and the previous epoch's pseudonym key is destroyed at
once (nothing is pseudonymised under it again, so keeping it would only let someone test
a guessed account against old pseudonyms). Its identity key stays, so authorised unmasks
of old pseudonyms still work, until ``destroy`` crypto-shreds it: the sealed identities of
that epoch become unreadable forever (the store also deletes their ciphertexts).

Key files are written with O_EXCL and mode 600 in folders of mode 700; a destroyed key
file is overwritten with zeros before it is unlinked (a best effort on journaled or
copy-on-write file systems, which is why the store's ciphertexts are deleted too and why
backups of ``keys/`` must follow the same schedule).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from watchfloor.model import utcnow

KEYS_DIR = "keys"  # under $WATCHFLOOR_HOME
KEYRING_FILE = "keyring.json"
LEGACY_PSEUDONYM_KEY = "pseudonym.key"  # v1's single deployment key: adopted as epoch 1
KEY_BYTES = 32
ED25519_SIGNATURE_TYPE = b"\x01"  # c2sp.org/signed-note


class KeyringError(RuntimeError):
    """A key is missing, destroyed or unreadable; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class EpochInfo:
    epoch: int
    purpose_class: str
    created_at: datetime
    rotated_at: datetime | None = None  # when a newer epoch replaced it
    pseudonym_key_destroyed_at: datetime | None = None
    identity_key_destroyed_at: datetime | None = None

    @property
    def shredded(self) -> bool:
        return self.identity_key_destroyed_at is not None


def _write_secret(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(data + "\n")


def _shred(path: Path) -> bool:
    """Overwrite ``path`` with zeros, flush it, unlink it; False when it was not there."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as fh:
        fh.write(b"\x00" * size)
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    return True


def _read_hex(path: Path, what: str) -> bytes:
    try:
        value = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise KeyringError(f"{what} is missing ({path})") from None
    except ValueError:
        raise KeyringError(f"{what} at {path} is not hex") from None
    if len(value) != KEY_BYTES:
        raise KeyringError(f"{what} at {path} is {len(value)} bytes, not {KEY_BYTES}")
    return value


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Keyring:
    """Reads and changes the key folder. Cheap to construct; reads the manifest on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    # ------------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.folder / KEYRING_FILE

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def _manifest(self) -> dict[str, object]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyringError(f"no keyring at {self.folder}: run `watchfloor init` first") from None
        except json.JSONDecodeError as exc:
            raise KeyringError(f"{self.manifest_path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise KeyringError(f"{self.manifest_path} must hold a JSON object")
        return data

    def _save(self, data: dict[str, object]) -> None:
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.manifest_path)

    def manifest_mtime(self) -> float:
        """Changes whenever the keyring changes (rotation, destruction): for cheap polling."""
        try:
            return self.manifest_path.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0

    # ------------------------------------------------------------------ creation
    def initialise(self, purpose_class: str, *, now: datetime | None = None) -> list[str]:
        """Create what is missing (safe to run again); return what was done."""
        now = now or utcnow()
        done: list[str] = []
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        if not self.exists():
            legacy = self.folder / LEGACY_PSEUDONYM_KEY
            target = self._pseudonym_path(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(target.parent, 0o700)
            if legacy.exists():
                _read_hex(legacy, "the v1 pseudonym key")  # refuse to adopt garbage
                os.replace(legacy, target)  # moved, not copied: shredding epoch 1 must leave no copy
                done.append(f"adopted {legacy} as the pseudonym key of epoch 1")
            else:
                _write_secret(target, secrets.token_hex(KEY_BYTES))
            _write_secret(self._identity_path(1), secrets.token_hex(KEY_BYTES))
            self._save(
                {
                    "version": 1,
                    "purpose_class": purpose_class,
                    "current_epoch": 1,
                    "epochs": [{"epoch": 1, "purpose_class": purpose_class, "created_at": _ts(now)}],
                }
            )
            done.append(f"created the keyring {self.folder} (pseudonym and identity keys of epoch 1, mode 600)")
        if not self.signing_key_path.exists():
            key = Ed25519PrivateKey.generate()
            seed = key.private_bytes_raw()
            _write_secret(self.signing_key_path, seed.hex())
            self.verify_key_path.write_text(key.public_key().public_bytes_raw().hex() + "\n", encoding="ascii")
            done.append(f"created the audit signing key {self.signing_key_path} (Ed25519, mode 600)")
        return done

    # ------------------------------------------------------------------ epochs
    def _pseudonym_path(self, epoch: int) -> Path:
        return self.folder / "pseudonym" / f"epoch-{epoch:04d}.key"

    def _identity_path(self, epoch: int) -> Path:
        return self.folder / "identity" / f"epoch-{epoch:04d}.key"

    @property
    def purpose_class(self) -> str:
        return str(self._manifest()["purpose_class"])

    @property
    def current_epoch(self) -> int:
        return int(self._manifest()["current_epoch"])  # type: ignore[call-overload]

    def epochs(self) -> list[EpochInfo]:
        rows = self._manifest().get("epochs", [])
        assert isinstance(rows, list)
        return [
            EpochInfo(
                epoch=int(r["epoch"]),
                purpose_class=str(r["purpose_class"]),
                created_at=_dt(r["created_at"]) or utcnow(),
                rotated_at=_dt(r.get("rotated_at")),
                pseudonym_key_destroyed_at=_dt(r.get("pseudonym_key_destroyed_at")),
                identity_key_destroyed_at=_dt(r.get("identity_key_destroyed_at")),
            )
            for r in rows
        ]

    def epoch(self, epoch: int) -> EpochInfo:
        for info in self.epochs():
            if info.epoch == epoch:
                return info
        raise KeyringError(f"there is no epoch {epoch}")

    def pseudonym_key(self, epoch: int | None = None) -> tuple[int, bytes]:
        """(epoch, HMAC key) — the current epoch's unless one is named."""
        epoch = self.current_epoch if epoch is None else epoch
        info = self.epoch(epoch)
        if info.pseudonym_key_destroyed_at is not None:
            raise KeyringError(f"the pseudonym key of epoch {epoch} was destroyed")
        return epoch, _read_hex(self._pseudonym_path(epoch), f"the pseudonym key of epoch {epoch}")

    def identity_key(self, epoch: int) -> bytes:
        info = self.epoch(epoch)
        if info.identity_key_destroyed_at is not None:
            raise KeyringError(f"the identity key of epoch {epoch} was destroyed: its identities are crypto-shredded")
        return _read_hex(self._identity_path(epoch), f"the identity key of epoch {epoch}")

    def rotate(self, *, purpose_class: str | None = None, now: datetime | None = None) -> int:
        """Start a new epoch (optionally for a new purpose class); returns its number."""
        now = now or utcnow()
        data = self._manifest()
        rows = data["epochs"]
        assert isinstance(rows, list)
        old = int(data["current_epoch"])  # type: ignore[call-overload]
        new = max(int(r["epoch"]) for r in rows) + 1
        new_class = purpose_class or str(data["purpose_class"])
        _write_secret(self._pseudonym_path(new), secrets.token_hex(KEY_BYTES))
        _write_secret(self._identity_path(new), secrets.token_hex(KEY_BYTES))
        for row in rows:
            if int(row["epoch"]) == old:
                row["rotated_at"] = _ts(now)
                _shred(self._pseudonym_path(old))
                if row.get("pseudonym_key_destroyed_at") is None:
                    row["pseudonym_key_destroyed_at"] = _ts(now)
        rows.append({"epoch": new, "purpose_class": new_class, "created_at": _ts(now)})
        data["current_epoch"] = new
        data["purpose_class"] = new_class
        self._save(data)
        return new

    def destroy(self, epoch: int, *, now: datetime | None = None) -> None:
        """Crypto-shred ``epoch``: destroy its identity key (and pseudonym key, if still there).

        The current epoch cannot be destroyed: rotate first."""
        now = now or utcnow()
        data = self._manifest()
        if int(data["current_epoch"]) == epoch:  # type: ignore[call-overload]
            raise KeyringError(f"epoch {epoch} is the current epoch: `watchfloor keys rotate` first")
        rows = data["epochs"]
        assert isinstance(rows, list)
        for row in rows:
            if int(row["epoch"]) == epoch:
                if row.get("identity_key_destroyed_at") is not None:
                    raise KeyringError(f"epoch {epoch} was destroyed already")
                _shred(self._pseudonym_path(epoch))
                _shred(self._identity_path(epoch))
                if row.get("pseudonym_key_destroyed_at") is None:
                    row["pseudonym_key_destroyed_at"] = _ts(now)
                row["identity_key_destroyed_at"] = _ts(now)
                self._save(data)
                return
        raise KeyringError(f"there is no epoch {epoch}")

    # ------------------------------------------------------------------ audit signing
    @property
    def signing_key_path(self) -> Path:
        return self.folder / "audit" / "signing.key"

    @property
    def verify_key_path(self) -> Path:
        return self.folder / "audit" / "signing.pub"

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(_read_hex(self.signing_key_path, "the audit signing key"))

    def verify_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(_read_hex(self.verify_key_path, "the audit verification key"))


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of c2sp.org/signed-note: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    raw = public_key.public_bytes_raw()
    return hashlib.sha256(name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + raw).digest()[:4]


def verifier_key_string(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key in the golang.org/x/mod/sumdb/note form: ``name+hash+base64(0x01||key)``
    — what a witness is given to check this log's checkpoints."""
    raw = public_key.public_bytes_raw()
    return f"{name}+{note_key_id(name, public_key).hex()}+{base64.b64encode(ED25519_SIGNATURE_TYPE + raw).decode()}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """(name, public key) from :func:`verifier_key_string`'s form; KeyringError when malformed."""
    try:
        name, key_id, encoded = text.strip().split("+", 2)  # base64 may hold "+" too
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise KeyringError("a verifier key looks like name+1a2b3c4d+base64") from None
    if len(raw) != 33 or raw[:1] != ED25519_SIGNATURE_TYPE:
        raise KeyringError("only Ed25519 verifier keys are supported")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if note_key_id(name, public).hex() != key_id.lower():
        raise KeyringError("the verifier key's id does not match its name and key")
    return name, public
