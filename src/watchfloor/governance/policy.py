"""The deployment's policy: purposes, limits, retention, SLA limits, the protected-activity
guard and the roles — read from TOML, which is data, not code.

The shipped default (``default_policy.toml`` in this package) is merged with the
deployment's override ``$WATCHFLOOR_HOME/policy.toml`` when there is one:

- tables merge key by key; a value in the override replaces the default's;
- purposes and protected categories the override names are added (or changed);
- a protected category of the default can never be removed, and an override's
  ``terms`` are *added* to the default's: an override can widen the guard, never narrow it.

Every key is checked: a misspelt key is an error, not a silent default.
:func:`load_policy` raises :class:`PolicyError` listing every problem found.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from watchfloor.model import Role, Severity

OVERRIDE_FILE = "policy.toml"
DEFAULT_POLICY_RESOURCE = "default_policy.toml"
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class PolicyError(ValueError):
    """The policy cannot be used; ``problems`` says every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class GuardAction(StrEnum):
    refuse = "refuse"
    review = "review"  # held until two supervisors (neither the creator) approve


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    description: str
    max_watch_days: int
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ProtectedCategory:
    key: str
    label: str
    action: GuardAction
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    dismissed_alert_days: int
    false_positive_alert_days: int
    case_closed_days: int
    dead_letter_days: int
    notification_days: int
    upstream_delete_hours: int
    run_every_minutes: int


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    purpose_class: str
    unmask_max_days: int
    unmask_max_reveals: int
    account_watch_max_days: int
    purposes: Mapping[str, Purpose]
    retention: RetentionPolicy
    sla_max_minutes: Mapping[Severity, int]
    roles: Mapping[str, str]
    protected: tuple[ProtectedCategory, ...]
    sources: tuple[str, ...] = ()  # where it was read from
    data: Mapping[str, Any] = field(default_factory=dict)  # the merged TOML, as published

    @property
    def digest(self) -> str:
        """SHA-256 of the merged policy (canonical JSON): names the policy in force."""
        canonical = json.dumps(self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def purpose(self, key: str) -> Purpose:
        """The enabled purpose ``key``; PolicyError naming the choices otherwise."""
        found = self.purposes.get(key)
        if found is None or not found.enabled:
            choices = ", ".join(k for k, p in self.purposes.items() if p.enabled)
            raise PolicyError([f"purpose {key!r} is not in the policy; choose one of: {choices}"])
        return found

    def to_dict(self) -> dict[str, Any]:
        """What the transparency report and ``policy show --json`` publish."""
        return {"digest": self.digest, "sources": list(self.sources), **json.loads(json.dumps(self.data))}


# --------------------------------------------------------------------------- reading


def default_policy_text() -> str:
    return resources.files("watchfloor.governance").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"{origin}: {exc}"]) from None


def merge_policy(default: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``default`` (see the module docstring for the rules)."""
    merged: dict[str, Any] = json.loads(json.dumps(default))
    _merge_into(merged, override, path=())
    return merged


def _merge_into(target: dict[str, Any], override: Mapping[str, Any], path: tuple[str, ...]) -> None:
    for key, value in override.items():
        here = (*path, key)
        if len(here) == 3 and here[0] == "protected" and key == "terms" and isinstance(target.get(key), list):
            target[key] = target[key] + [t for t in value if t not in target[key]]
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, here)
        else:
            target[key] = json.loads(json.dumps(value))


def load_policy(home: Path | None = None, *, override_path: Path | None = None) -> Policy:
    """The policy in force: the default merged with ``home/policy.toml`` (or ``override_path``)."""
    default = _parse(default_policy_text(), DEFAULT_POLICY_RESOURCE)
    sources = [f"watchfloor:{DEFAULT_POLICY_RESOURCE}"]
    path = override_path or (home / OVERRIDE_FILE if home is not None else None)
    data = default
    if path is not None and path.exists():
        override = _parse(path.read_text(encoding="utf-8"), str(path))
        data = merge_policy(default, override)
        sources.append(str(path))
    return build_policy(data, sources=tuple(sources), default=default)


def check_policy_file(path: Path) -> Policy:
    """Read ``path`` as an override of the default (or as a complete policy) and check it;
    PolicyError lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([f"{path}: {exc.strerror or exc}"]) from None
    default = _parse(default_policy_text(), DEFAULT_POLICY_RESOURCE)
    data = merge_policy(default, _parse(text, str(path)))
    return build_policy(data, sources=(f"watchfloor:{DEFAULT_POLICY_RESOURCE}", str(path)), default=default)


# --------------------------------------------------------------------------- checking

_TOP_KEYS = {
    "policy",
    "pseudonyms",
    "unmask",
    "account_watches",
    "purposes",
    "retention",
    "sla",
    "roles",
    "protected",
}
_RETENTION_KEYS = {
    "dismissed_alert_days",
    "false_positive_alert_days",
    "case_closed_days",
    "dead_letter_days",
    "notification_days",
    "upstream_delete_hours",
    "run_every_minutes",
}


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            self.problems.append(f"[{key}] must be a table")
            return {}
        return value

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                self.problems.append(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    def text(self, table: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where}.{key} must be a non-empty string")
            return ""
        return value

    def positive(self, table: Mapping[str, Any], key: str, where: str, *, upper: int = 100_000) -> int:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
            self.problems.append(f"{where}.{key} must be a whole number from 1 to {upper}")
            return 1
        return value


def build_policy(
    data: Mapping[str, Any], *, sources: tuple[str, ...] = (), default: Mapping[str, Any] | None = None
) -> Policy:
    """Check merged policy ``data`` and build the :class:`Policy`; PolicyError lists every problem."""
    c = _Checker()
    c.unknown(data, _TOP_KEYS, "policy file")
    meta = c.table(data, "policy")
    c.unknown(meta, {"name", "version"}, "[policy]")
    pseudonyms = c.table(data, "pseudonyms")
    c.unknown(pseudonyms, {"purpose_class"}, "[pseudonyms]")
    purpose_class = c.text(pseudonyms, "purpose_class", "pseudonyms")
    if purpose_class and not _KEY.fullmatch(purpose_class):
        c.problems.append("pseudonyms.purpose_class must be lower-case letters, digits, - or _")
    unmask = c.table(data, "unmask")
    c.unknown(unmask, {"max_days", "max_reveals"}, "[unmask]")
    unmask_max_days = c.positive(unmask, "max_days", "unmask", upper=365)
    unmask_max_reveals = c.positive(unmask, "max_reveals", "unmask", upper=1000)
    account = c.table(data, "account_watches")
    c.unknown(account, {"max_days"}, "[account_watches]")
    account_max_days = c.positive(account, "max_days", "account_watches", upper=3660)

    purposes: dict[str, Purpose] = {}
    for key, table in c.table(data, "purposes").items():
        where = f"purposes.{key}"
        if not _KEY.fullmatch(key):
            c.problems.append(f"{where}: a purpose key is lower-case letters, digits, - or _")
        if not isinstance(table, Mapping):
            c.problems.append(f"[{where}] must be a table")
            continue
        c.unknown(table, {"description", "max_watch_days", "enabled"}, f"[{where}]")
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            c.problems.append(f"{where}.enabled must be true or false")
        purposes[key] = Purpose(
            key=key,
            description=c.text(table, "description", where),
            max_watch_days=c.positive(table, "max_watch_days", where, upper=3660),
            enabled=bool(enabled),
        )
    if not any(p.enabled for p in purposes.values()):
        c.problems.append("the policy lists no enabled purpose: no watch could be approved")

    retention_table = c.table(data, "retention")
    c.unknown(retention_table, _RETENTION_KEYS, "[retention]")
    retention = RetentionPolicy(**{k: c.positive(retention_table, k, "retention") for k in sorted(_RETENTION_KEYS)})

    sla = c.table(data, "sla")
    c.unknown(sla, {"max_minutes"}, "[sla]")
    sla_table = c.table(sla, "max_minutes")
    c.unknown(sla_table, {s.value for s in Severity}, "[sla.max_minutes]")
    sla_max = {s: c.positive(sla_table, s.value, "sla.max_minutes", upper=60 * 24 * 30) for s in Severity}

    roles_table = c.table(data, "roles")
    roles = {str(k): str(v) for k, v in roles_table.items()}
    missing_roles = {r.value for r in Role} - set(roles)
    if missing_roles:
        c.problems.append(f"[roles] must describe every role; missing: {', '.join(sorted(missing_roles))}")
    c.unknown(roles_table, {r.value for r in Role}, "[roles]")

    protected: list[ProtectedCategory] = []
    protected_table = c.table(data, "protected")
    if default is not None:
        for key in c.table(default, "protected"):
            if key not in protected_table:
                c.problems.append(f"protected.{key}: a protected category of the default policy cannot be removed")
    for key, table in protected_table.items():
        where = f"protected.{key}"
        if not isinstance(table, Mapping):
            c.problems.append(f"[{where}] must be a table")
            continue
        c.unknown(table, {"label", "action", "terms"}, f"[{where}]")
        action = table.get("action")
        if action not in {a.value for a in GuardAction}:
            c.problems.append(f"{where}.action must be \"refuse\" or \"review\"")
        terms = table.get("terms", [])
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
            c.problems.append(f"{where}.terms must be a non-empty list of words or phrases")
            terms = []
        protected.append(
            ProtectedCategory(
                key=key,
                label=c.text(table, "label", where),
                action=GuardAction(action) if action in {a.value for a in GuardAction} else GuardAction.refuse,
                terms=tuple(terms),
            )
        )
    if c.problems:
        raise PolicyError(c.problems)
    return Policy(
        name=str(meta.get("name", "unnamed policy")),
        version=str(meta.get("version", "")),
        purpose_class=purpose_class,
        unmask_max_days=unmask_max_days,
        unmask_max_reveals=unmask_max_reveals,
        account_watch_max_days=account_max_days,
        purposes=purposes,
        retention=retention,
        sla_max_minutes=sla_max,
        roles=roles,
        protected=tuple(protected),
        sources=sources,
        data=json.loads(json.dumps(data)),
    )
