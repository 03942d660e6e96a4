"""The optional second factor: TOTP (RFC 6238: 30-second steps, 6 digits, SHA-1), the codes
every authenticator app makes.

- Enrolment (/account): a new random secret is shown once — as text and as an
  ``otpauth://`` URI to paste into the app — and counts only after the first right code.
  From then on sign-in asks for a code after the password.
- The secret is kept sealed: AES-256-GCM under ``$WATCHFLOOR_HOME/keys/web/totp.key``
  (created on first use, mode 600), with the username as associated data, so a copy of the
  database alone does not give anyone the codes.
- A code is accepted for the step before, the current step and the step after (clock skew),
  and never twice: the newest accepted step is stored, and older or equal ones are refused.
- An administrator removes a lost factor with ``watchfloor user totp-reset NAME``, which
  also ends the account's sessions.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchfloor.store import Store
from watchfloor.store.web_accounts_repo import TotpEnrolment

KEY_FILE = Path("keys") / "web" / "totp.key"
STEP_S = 30
DIGITS = 6
SKEW_STEPS = 1
ISSUER = "watchfloor"
_AAD = b"watchfloor/totp/v1\x00"


class TotpError(RuntimeError):
    """The second factor cannot be used (its key is missing or the record does not open)."""


def _key(home: Path) -> bytes:
    path = home / KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise TotpError(f"{path} is not a hex key") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it just now
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def new_secret() -> str:
    """A random base32 secret (160 bits, what RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def seal(home: Path, username: str, secret: str, *, now: datetime) -> TotpEnrolment:
    nonce = os.urandom(12)
    ciphertext = AESGCM(_key(home)).encrypt(nonce, secret.encode("ascii"), _AAD + username.encode())
    return TotpEnrolment(username=username, nonce=nonce, ciphertext=ciphertext, created_at=now)


def unseal(home: Path, enrolment: TotpEnrolment) -> str:
    try:
        plain = AESGCM(_key(home)).decrypt(enrolment.nonce, enrolment.ciphertext, _AAD + enrolment.username.encode())
    except Exception:
        raise TotpError("the second-factor secret does not open (the key changed?)") from None
    return plain.decode("ascii")


def provisioning_uri(secret: str, username: str) -> str:
    """``otpauth://totp/watchfloor:NAME?secret=...&issuer=watchfloor`` for the authenticator app."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=username, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it in by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def step_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_S


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (now ± one) whose code ``code`` is, or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = step_of(now)
    found = None
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step).encode(), code.encode()):
            found = step  # no early exit: the same work for every code
    return found


@dataclass(frozen=True, slots=True)
class SecondFactor:
    """The second factor of the accounts of one deployment."""

    store: Store
    home: Path

    def enrolled(self, username: str) -> bool:
        """True when sign-in must ask ``username`` for a code (a confirmed enrolment)."""
        enrolment = self.store.get_totp(username)
        return enrolment is not None and enrolment.confirmed_at is not None

    def start(self, username: str, *, now: datetime) -> str:
        """A new, unconfirmed enrolment; returns its secret (to show once)."""
        secret = new_secret()
        self.store.save_totp(seal(self.home, username, secret, now=now))
        return secret

    def pending_secret(self, username: str) -> str | None:
        """The secret of an enrolment still waiting for its first code, or None."""
        enrolment = self.store.get_totp(username)
        if enrolment is None or enrolment.confirmed_at is not None:
            return None
        return unseal(self.home, enrolment)

    def confirm(self, username: str, code: str, *, now: datetime) -> bool:
        secret = self.pending_secret(username)
        step = None if secret is None else matching_step(secret, code, now)
        return step is not None and self.store.confirm_totp(username, at=now, step=step)

    def check(self, username: str, code: str, *, now: datetime) -> bool:
        """A right code, not used before, of the confirmed enrolment."""
        enrolment = self.store.get_totp(username)
        if enrolment is None or enrolment.confirmed_at is None:
            return False
        step = matching_step(unseal(self.home, enrolment), code, now)
        return step is not None and step > enrolment.last_step and self.store.use_totp_step(username, step)

    def remove(self, username: str) -> bool:
        return self.store.delete_totp(username)
