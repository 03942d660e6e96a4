"""The transparency report: what was watched, why, on what legal basis, what it raised, how
it was handled, how often identities were revealed, what retention deleted, the policy in
force and how matching and scoring work — counts and rules only, no personal data.

    report = build_report(gov, since, until)
    write_report(report, out_dir)     # transparency.json + transparency.html (self-contained)

What is never in it: post text, pseudonyms, account handles, watch names and queries
(either may name a person or an account), usernames of staff, legal-process references.
Watches appear only as counts by purpose, legal basis and status.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from watchfloor.governance.permissions import ROLE_PERMISSIONS
from watchfloor.governance.service import is_system_actor
from watchfloor.model import AlertStatus, AuthorizationKind, AuthorizationStatus, Watch
from watchfloor.pipeline import scoring
from watchfloor.query.tree import ACCOUNT_FIELDS

if TYPE_CHECKING:
    from watchfloor.governance.service import Governance

REPORT_VERSION = 1
DECIDED = (AlertStatus.dismissed, AlertStatus.false_positive, AlertStatus.escalated, AlertStatus.case)

MATCHING = (
    "Every incoming public post is compared with the approved, unexpired watches. A watch is a "
    "boolean query (words, phrases, wildcards, NEAR/n, field filters) written in the watch "
    "language documented in docs/watch-language.md; it matches whole words after folding case "
    "and accents. Posts that match no watch are counted and dropped, never stored. Each alert "
    "records exactly which parts of the query matched and where in the text."
)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _watch_in_period(watch: Watch, since: datetime, until: datetime) -> bool:
    if watch.created_at >= until:
        return False
    return watch.expires_at is None or watch.expires_at > since


def _account_targeted(watch: Watch) -> bool:
    return any(f"{name}:" in watch.query.lower() for name in ACCOUNT_FIELDS)


def build_report(gov: Governance, since: datetime, until: datetime) -> dict[str, Any]:
    """The report for [since, until) as plain data (what the JSON file holds)."""
    store, policy = gov.store, gov.policy
    now = gov.now()
    as_of = min(now, until)  # statuses as of the end of the period, or now if it has not ended
    watches = [w for w in store.list_watches() if _watch_in_period(w, since, until)]
    by_id = {w.id: w for w in store.list_watches()}

    by_purpose: dict[str, dict[str, Any]] = {}
    for w in watches:
        entry = by_purpose.setdefault(
            w.purpose,
            {
                "purpose": w.purpose,
                "description": policy.purposes[w.purpose].description if w.purpose in policy.purposes else None,
                "watches": 0,
                "by_status": Counter(),
                "legal_bases": Counter(),
            },
        )
        entry["watches"] += 1
        entry["by_status"][w.state(as_of)] += 1
        entry["legal_bases"][w.legal_basis] += 1
    purposes = [
        {**e, "by_status": dict(e["by_status"]), "legal_bases": dict(e["legal_bases"])}
        for _, e in sorted(by_purpose.items())
    ]

    def audited(*actions: str) -> list[Any]:
        return gov.audit.entries_by_action(list(actions), since=since, until=until)

    refused = audited("watch.refused")
    refused_categories: Counter[str] = Counter()
    for entry in refused:
        refused_categories.update(entry.details.get("categories") or [])  # type: ignore[arg-type]

    tallies = store.alert_tallies(since, until, as_of)
    by_status: Counter[str] = Counter()
    alerts_by_purpose: Counter[str] = Counter()
    sla_met = sla_missed = overdue = 0
    for t in tallies:
        by_status[t.status.value] += t.count
        watch = by_id.get(t.watch_id)
        alerts_by_purpose[watch.purpose if watch else "unknown"] += t.count
        sla_met += t.sla_met
        sla_missed += t.sla_missed
        overdue += t.overdue
    raised = sum(by_status.values())
    decided = sum(by_status[s.value] for s in DECIDED)

    authorizations = store.list_authorizations(since=since, until=until)
    unmask = [a for a in authorizations if a.kind == AuthorizationKind.unmask]
    account = [a for a in authorizations if a.kind == AuthorizationKind.account_watch]

    def decisions(items: list[Any]) -> dict[str, int]:
        counts = Counter(a.status.value for a in items)
        return {
            "requested": len(items),
            "granted": counts[AuthorizationStatus.approved.value] + counts[AuthorizationStatus.revoked.value],
            "denied": counts[AuthorizationStatus.denied.value],
            "undecided": counts[AuthorizationStatus.requested.value],
        }

    deleted: Counter[str] = Counter()
    runs = audited("retention.run")
    for entry in runs:
        for key, value in entry.details.items():
            if key.startswith("deleted.") and isinstance(value, int):
                deleted[key.removeprefix("deleted.")] += value

    head_size, head_root = store.audit_head()
    checkpoints = [c for c in store.list_checkpoints() if c.created_at < until]
    approvals = audited("watch.approved")

    return {
        "report": "watchfloor transparency report",
        "version": REPORT_VERSION,
        "period": {"from": since.isoformat(), "to": until.isoformat()},
        "generated_at": now.isoformat(),
        "watches": {
            "in_period": len(watches),
            "by_purpose": purposes,
            "by_legal_basis": dict(Counter(w.legal_basis for w in watches)),
            "by_status_at_end": dict(Counter(w.state(as_of) for w in watches)),
            "proposed": len(audited("watch.proposed")),
            "approved": len(approvals),
            "approved_by_system_for_demo": sum(1 for e in approvals if e.details.get("system_approval")),
            "rejected": len(audited("watch.rejected")),
            "renewals_requested": len(audited("watch.renewal_requested")),
            "expired": len(audited("watch.expired")),
            "refused_by_protected_activity_guard": len(refused),
            "refused_by_category": dict(refused_categories),
            "held_for_two_person_review": sum(1 for e in audited("watch.proposed") if e.details.get("held_for_review")),
            "account_targeted": {
                "watches": sum(1 for w in watches if _account_targeted(w)),
                "authorizations": decisions(account),
            },
            "approved_without_second_person": sum(
                1
                for w in watches
                if w.approver is not None and not is_system_actor(w.approver) and w.approver == w.created_by
            ),
        },
        "alerts": {
            "raised": raised,
            "by_status": dict(by_status),
            "by_purpose": dict(alerts_by_purpose),
            "dispositions": {s.value: by_status[s.value] for s in DECIDED},
            "decided": decided,
            "false_positive_rate": _share(by_status[AlertStatus.false_positive.value], decided),
            "sla": {
                "met": sla_met,
                "missed": sla_missed,
                "compliance": _share(sla_met, sla_met + sla_missed),
                "open_past_deadline": overdue,
            },
        },
        "unmasking": {
            **decisions(unmask),
            "identities_revealed": len(audited("identity.revealed")),
            "reveal_attempts_refused": len(audited("identity.reveal_refused")),
        },
        "retention": {
            "runs": len(runs),
            "deleted": dict(deleted),
            "rules": {
                "unmatched_posts": "never stored",
                **{k: v for k, v in policy.data.get("retention", {}).items() if k != "run_every_minutes"},
                "audit_entries": "kept",
            },
        },
        "audit_log": {
            "entries_in_period": gov.store.audit_count(since=since, until=until),
            "tree_size_now": head_size,
            "root_now": head_root.hex(),
            "latest_checkpoint": checkpoints[-1].note if checkpoints else None,
        },
        "policy": policy.to_dict(),
        "roles": {role.value: sorted(p.value for p in perms) for role, perms in ROLE_PERMISSIONS.items()},
        "method": {
            "matching": MATCHING,
            "scoring": " ".join((scoring.__doc__ or "").split()),
            "score_formula": [{"name": p.name, "weight": p.weight, "what": p.what} for p in scoring.SCORE_FORMULA],
        },
        "notes": [
            "Counts cover watches that existed, and alerts raised, in the period; statuses are as of the end "
            "of the period or now, whichever is earlier.",
            "SLA compliance counts an alert as met when its first disposition came before its deadline.",
            "Watch names and queries are not published: either may name a person or an account.",
        ],
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("watchfloor.governance", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.1f} %"
    return env


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (no scripts, no external assets)."""
    return _environment().get_template("transparency.html").render(r=report)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "transparency.json"
    html_path = out_dir / "transparency.html"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return [json_path, html_path]

