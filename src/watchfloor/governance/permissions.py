"""Who may do what: every protected action is a Permission, every role a set of them.

The web app checks these server-side on every endpoint (``web/permissions.py``); the
CLI acts as the operator of the machine. The table is data so that the transparency
report can publish it and a test matrix can prove it (every endpoint x every role).

Auditors see the audit log, reports and policy — never content beyond what an audit needs.
"""

from __future__ import annotations

from enum import StrEnum

from watchfloor.model import Role


class Permission(StrEnum):
    read_alerts = "read_alerts"  # the feed, alert detail, the posts behind alerts
    triage = "triage"  # claim, assign, dispositions
    read_watches = "read_watches"
    propose_watch = "propose_watch"  # create / edit a watch (needs approval)
    approve_watch = "approve_watch"  # approve someone else's watch
    read_cases = "read_cases"
    manage_cases = "manage_cases"  # open, note, task, merge, split, add evidence
    export_evidence = "export_evidence"
    request_unmask = "request_unmask"
    approve_unmask = "approve_unmask"
    read_status = "read_status"  # source health, counts (no content)
    manage_sources = "manage_sources"
    read_audit = "read_audit"
    read_reports = "read_reports"  # transparency report and quality figures (no personal data)
    read_policy = "read_policy"
    manage_users = "manage_users"
    manage_policy = "manage_policy"
    read_inbox = "read_inbox"  # one's own in-app notifications
    manage_notifications = "manage_notifications"  # webhook, e-mail and in-app notification rules


_ANALYST = frozenset(
    {
        Permission.read_alerts,
        Permission.triage,
        Permission.read_watches,
        Permission.propose_watch,
        Permission.read_cases,
        Permission.manage_cases,
        Permission.request_unmask,
        Permission.read_status,
        Permission.read_reports,
        Permission.read_policy,
        Permission.read_inbox,
    }
)
_SUPERVISOR = _ANALYST | {
    Permission.approve_watch,
    Permission.export_evidence,
    Permission.approve_unmask,
    Permission.manage_sources,
    Permission.manage_notifications,
}
_AUDITOR = frozenset(
    {
        Permission.read_watches,  # what is watched and why (queries, purposes, legal bases)
        Permission.read_status,
        Permission.read_audit,
        Permission.read_reports,
        Permission.read_policy,
    }
)
_ADMIN = frozenset(
    {
        Permission.read_watches,
        Permission.read_status,
        Permission.manage_sources,
        Permission.read_reports,
        Permission.read_policy,
        Permission.manage_users,
        Permission.manage_policy,
        Permission.read_audit,
        # The demo and first-run experience: an admin can see the floor. Deployments that
        # separate administration from content set WATCHFLOOR_ADMIN_READS_CONTENT=0 (later).
        Permission.read_alerts,
        Permission.read_cases,
        Permission.read_inbox,
        Permission.manage_notifications,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.analyst: _ANALYST,
    Role.supervisor: frozenset(_SUPERVISOR),
    Role.auditor: _AUDITOR,
    Role.admin: _ADMIN,
}


def allowed(role: Role, permission: Permission) -> bool:
    """True when ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS[role]
